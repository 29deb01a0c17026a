@preconcurrency import Crypto
import BrokerCore

/// Keyed fingerprints of shared values: HMAC-SHA-256 over category and value.
///
/// The share log holds the fingerprint, never the value. With the key, compliance
/// can ask "was this value shared?" by fingerprinting it and searching; without
/// the key, a fingerprint reveals nothing (a plain hash of a phone number would be
/// brute-forced in seconds).
public struct Fingerprinter: @unchecked Sendable {
    /// The HMAC keyed once; each fingerprint copies it (the key schedule is not redone per field).
    private let keyed: HMAC<SHA256>

    public init(key: [UInt8]) { self.keyed = HMAC<SHA256>(key: SymmetricKey(data: key)) }

    /// Hex HMAC of `category` ‖ 0x1F ‖ value's canonical text.
    public func fingerprint(category: String, value: FieldValue) -> String {
        var mac = keyed
        // Fed from the strings' own UTF-8 storage: no intermediate arrays.
        var category = category
        category.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: Self.separator) { mac.update(data: $0) }
        var text = value.canonicalText
        text.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return mac.finalize().withUnsafeBytes { Hex.encode($0) }
    }

    private static let separator: UInt8 = 0x1f
}

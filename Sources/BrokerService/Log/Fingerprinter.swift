@preconcurrency import Crypto
import BrokerCore

/// Keyed fingerprints of shared values: HMAC-SHA-256 over category and value.
///
/// The share log holds the fingerprint, never the value. With the key, compliance
/// can ask "was this value shared?" by fingerprinting it and searching; without
/// the key, a fingerprint reveals nothing (a plain hash of a phone number would be
/// brute-forced in seconds).
public struct Fingerprinter: @unchecked Sendable {
    /// HMAC-SHA-256 (RFC 2104) from its two midstates: SHA-256 after the key's inner pad and after
    /// its outer pad, computed once. A fingerprint copies them and hashes only its own bytes (two
    /// compressions for a short value) on the concrete `SHA256`, where `HMAC<SHA256>` redid the
    /// outer pad per call through unspecialised generics (18 k → ~4 k instructions per print).
    private let inner: SHA256
    private let outer: SHA256

    public init(key: [UInt8]) {
        var block = key.count > Self.blockSize ? Array(SHA256.hash(data: key)) : key
        block += [UInt8](repeating: 0, count: Self.blockSize - block.count)
        var inner = SHA256(), outer = SHA256()
        inner.update(data: block.map { $0 ^ 0x36 })
        outer.update(data: block.map { $0 ^ 0x5c })
        self.inner = inner
        self.outer = outer
    }

    /// Hex HMAC of `category` ‖ 0x1F ‖ value's canonical text.
    public func fingerprint(category: String, value: FieldValue) -> String {
        mac(category: category, value: value).withUnsafeBytes { Hex.encode($0) }
    }

    /// The short print of the same HMAC: its first 6 bytes, base64url without padding (8 characters).
    ///
    /// A folded log entry (one path repeated, `message.token[*]` ×1000) lists its distinct
    /// values by these, 11 bytes each in the record where a full fingerprint costs 80: the
    /// record stays bounded whatever the body. 48 bits answer "was this value shared?" with
    /// a false match about once in 2⁴⁸ per listed value, and hold no more about the value
    /// than the full print (the key stays needed).
    public func shortPrint(category: String, value: FieldValue) -> String {
        mac(category: category, value: value).withUnsafeBytes { Self.shortPrint(digest: $0) }
    }

    /// The short print of a full (hex) fingerprint, as `fingerprint_of` searches folded entries;
    /// `nil` for text that is not a fingerprint.
    public static func shortPrint(ofFingerprint hex: String) -> String? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(shortBytes)
        for i in 0..<shortBytes {
            guard let high = nibble(digits[2 * i]), let low = nibble(digits[2 * i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes.withUnsafeBytes { shortPrint(digest: $0) }
    }

    private func mac(category: String, value: FieldValue) -> SHA256Digest {
        var hash = inner
        // Fed from the strings' own UTF-8 storage: no intermediate arrays.
        var category = category
        category.withUTF8 { hash.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: Self.separator) { hash.update(bufferPointer: $0) }
        var text = value.canonicalText
        text.withUTF8 { hash.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        let innerDigest = hash.finalize()
        var mac = outer
        innerDigest.withUnsafeBytes { mac.update(bufferPointer: $0) }
        return mac.finalize()
    }

    /// Base64url (no padding) of the digest's first `shortBytes` bytes: 6 bytes, 8 characters.
    private static func shortPrint(digest: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: shortBytes / 3 * 4) { out in
            var o = 0
            for i in stride(from: 0, to: shortBytes, by: 3) {
                let triple = UInt32(digest[i]) << 16 | UInt32(digest[i + 1]) << 8 | UInt32(digest[i + 2])
                for shift in [18, 12, 6, 0] {
                    out[o] = base64url[Int(triple >> UInt32(shift) & 0x3f)]
                    o += 1
                }
            }
            return o
        }
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    private static let separator: UInt8 = 0x1f
    private static let blockSize = 64
    /// A multiple of 3, so the base64 has no padding.
    private static let shortBytes = 6
    private static let base64url = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
}

extension Fingerprinter {
    /// What the share log holds for a subject id the broker did not know (`subject_unknown`): the id's
    /// keyed fingerprint behind `SubjectID.unknownMarker`'s `~`. Compliance finds those records with
    /// `GET /v1/shares?unknown_subject=ID`.
    public func unknownSubjectMarker(_ id: String) -> String {
        SubjectID.unknownMarker(fingerprint: fingerprint(category: "subject", value: .string(id)))
    }
}

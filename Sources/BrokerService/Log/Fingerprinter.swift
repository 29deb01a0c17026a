@preconcurrency import Crypto
import BrokerCore

/// Keyed fingerprints of shared values: HMAC-SHA-256 over category and value.
///
/// The share log holds the fingerprint, never the value. With the key, compliance
/// can ask "was this value shared?" by fingerprinting it and searching; without
/// the key, a fingerprint reveals nothing (a plain hash of a phone number would be
/// brute-forced in seconds).
public struct Fingerprinter: @unchecked Sendable {
    private let hmac: KeyedHash

    public init(key: [UInt8]) { hmac = KeyedHash(key: key) }

    /// Hex HMAC of `category` ‖ 0x1F ‖ value's canonical text.
    public func fingerprint(category: String, value: FieldValue) -> String {
        mac(category: category, value: value).withUnsafeBytes { Hex.encode($0) }
    }

    /// The print a share record keeps for a personal value: the first 16 bytes of the same HMAC,
    /// base64url without padding (22 characters, where the hex of all 32 took 64). 128 bits answer
    /// "was this value shared?" with a false match about once in 2¹²⁸ per record, and hold no more
    /// about the value than the full HMAC (the key stays needed). Records written before 2026-12-07
    /// hold the full hex; `fingerprint_of` searches both forms.
    public func recordPrint(category: String, value: FieldValue) -> String {
        mac(category: category, value: value).withUnsafeBytes { Self.base64url($0, bytes: Self.recordBytes) }
    }

    /// The short print of the same HMAC: its first 6 bytes, base64url without padding (8 characters).
    ///
    /// A folded log entry (one path repeated, `message.token[*]` ×1000) lists its distinct
    /// values by these, 11 bytes each in the record where a record print costs 25: the
    /// record stays bounded whatever the body. 48 bits answer "was this value shared?" with
    /// a false match about once in 2⁴⁸ per listed value, and hold no more about the value
    /// than the full print (the key stays needed).
    public func shortPrint(category: String, value: FieldValue) -> String {
        mac(category: category, value: value).withUnsafeBytes { Self.base64url($0, bytes: Self.shortBytes) }
    }

    /// Every form a share record may hold `value`'s print in, from one HMAC: what `fingerprint_of`
    /// searches for. `hex` in entries written before 2026-12-07, `record` in entries written since,
    /// `short` in folded entries' `fingerprints`.
    public func prints(category: String, value: FieldValue) -> (hex: String, record: String, short: String) {
        mac(category: category, value: value).withUnsafeBytes {
            (Hex.encode($0), Self.base64url($0, bytes: Self.recordBytes), Self.base64url($0, bytes: Self.shortBytes))
        }
    }

    private func mac(category: String, value: FieldValue) -> SHA256Digest {
        hmac.mac { update in
            // Fed from the strings' own UTF-8 storage: no intermediate arrays.
            var category = category
            category.withUTF8 { update(UnsafeRawBufferPointer($0)) }
            withUnsafeBytes(of: Self.separator) { update($0) }
            var text = value.canonicalText
            text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
        }
    }

    /// Base64url (RFC 4648 §5, no padding) of the first `count` bytes of `digest`.
    private static func base64url(_ digest: UnsafeRawBufferPointer, bytes count: Int) -> String {
        String(unsafeUninitializedCapacity: (count * 4 + 2) / 3) { out in
            var o = 0
            var i = 0
            while i < count {
                let available = min(3, count - i)
                var triple = UInt32(digest[i]) << 16
                if available > 1 { triple |= UInt32(digest[i + 1]) << 8 }
                if available > 2 { triple |= UInt32(digest[i + 2]) }
                // 3 bytes give 4 characters; a final 1 or 2 give 2 or 3.
                for k in 0...available {
                    out[o] = base64url[Int(triple >> UInt32(18 - 6 * k) & 0x3f)]
                    o += 1
                }
                i += 3
            }
            return o
        }
    }

    private static let separator: UInt8 = 0x1f
    private static let shortBytes = 6
    private static let recordBytes = 16
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

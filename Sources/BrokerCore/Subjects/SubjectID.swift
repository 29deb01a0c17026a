/// The one rule for a subject id, on every channel (`X-Share-Subject`, the proxy user name's
/// `subject=`, an SDK decision's `subject`, the subject routes and an end user's token `sub`):
/// 1–128 bytes of ASCII letters, digits and `-` `_` `.` `:` `|`.
///
/// A subject id is an opaque account identifier. The rule bounds what one request can make the
/// permanent log hold, and keeps obvious personal data out of an id (a space, a name in CJK, an
/// e-mail's `@`). A refused id is answered 400 `invalid_subject` before anything is logged.
public enum SubjectID {
    public static let maxBytes = 128
    /// The rule as the API states it.
    public static let rule = "1–128 characters: ASCII letters, digits and - _ . : |"

    public static func isValid(_ id: some StringProtocol) -> Bool {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= maxBytes else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "|"):
                return true
            default:
                return false
            }
        }
    }

    /// What the share log holds instead of an id the broker does not know: `~` (outside the
    /// rule, so never a real id) and the id's keyed fingerprint, so a caller's typo or a phone
    /// number sent as an id is never stored in clear, yet compliance can still find the attempts.
    public static func unknownMarker(fingerprint: String) -> String { "~" + fingerprint.prefix(32) }
}

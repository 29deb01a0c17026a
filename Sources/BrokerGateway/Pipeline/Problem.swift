import BrokerCore
import BrokerService

/// An error answer, independent of HTTP framing: RFC 9457 problem details with a stable code.
///
/// The HTTP layer renders it as `application/problem+json` in one place.
/// `detail` never contains a personal value.
public struct Problem: Error, Sendable {
    public struct Field: Sendable, Hashable, Codable {
        public var path: String
        public var location: String
        public var category: String?
        public var reason: String
    }

    public var statusCode: Int
    public var code: String
    /// The title given, else the code's (`defaultTitle`), worked out only when a body is rendered:
    /// most refusals are answered from `RenderedProblems`, keyed by the code and `customTitle`.
    public var title: String {
        get { customTitle ?? Problem.defaultTitle(code) }
        set { customTitle = newValue }
    }
    public private(set) var customTitle: String?
    public var detail: String
    public var shareID: String?
    /// The first `maxListedFields` denied fields; `fieldsTotal` counts them all.
    public var fields: [Field]
    public var fieldsTotal: Int
    /// Further members of the problem object (RFC 9457 extension members), never a personal value.
    public var extra: [String: Member] = [:]

    /// An extension member's value.
    public enum Member: Sendable, Hashable {
        case string(String)
        case int(Int)
        case objects([[String: Member]])
    }

    /// A problem body names at most this many fields (a share of 260,000 denied fields answers
    /// with the first ones and the count, not a 29 MB list).
    public static let maxListedFields = 50

    /// `fields` beyond `maxListedFields` are dropped; `fieldsTotal` says how many there were (default: all given).
    public init(status: Int, code: String, title: String? = nil, detail: String, shareID: String? = nil,
                fields: [Field] = [], fieldsTotal: Int? = nil) {
        self.statusCode = status
        self.code = code
        self.customTitle = title
        self.detail = detail
        self.shareID = shareID
        self.fields = Array(fields.prefix(Self.maxListedFields))
        self.fieldsTotal = fieldsTotal ?? fields.count
    }

    /// The refusal of a blocked decision.
    public init(decision: ShareDecision, shareID: String?) {
        let code = decision.code ?? .undeclaredField
        let denied = decision.deniedFields
        self.init(status: decision.status, code: code.rawValue, detail: decision.message ?? code.rawValue,
                  shareID: shareID,
                  fields: denied.prefix(Self.maxListedFields).map {
                      Field(path: $0.path.description, location: $0.location.rawValue, category: $0.category,
                            reason: $0.reason?.rawValue ?? "denied")
                  },
                  fieldsTotal: denied.count)
    }

    public static func logUnavailable(_ detail: String) -> Problem {
        Problem(status: 503, code: "log_unavailable",
                detail: "the share log cannot be written, so nothing was shared (\(detail))")
    }

    /// `consent_revoked` → `Consent revoked`: the words between underscores, joined by spaces, the
    /// first letter upper-cased. Codes are ASCII, written in one pass over their bytes (splitting,
    /// `uppercased()` and joining cost ~10k instructions on every refusal); anything else as before.
    static func defaultTitle(_ code: String) -> String {
        let bytes = code.utf8
        guard bytes.allSatisfy({ $0 < 0x80 }) else {
            let words = code.split(separator: "_").map(String.init)
            guard let first = words.first else { return code }
            return ([first.prefix(1).uppercased() + first.dropFirst()] + words.dropFirst()).joined(separator: " ")
        }
        var title: [UInt8] = []
        title.reserveCapacity(bytes.count)
        var pendingSpace = false
        for byte in bytes {
            if byte == UInt8(ascii: "_") { pendingSpace = !title.isEmpty; continue }
            if pendingSpace { title.append(UInt8(ascii: " ")); pendingSpace = false }
            let first = title.isEmpty && byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            title.append(first ? byte - 32 : byte)
        }
        return title.isEmpty ? code : String(decoding: title, as: UTF8.self)
    }
}

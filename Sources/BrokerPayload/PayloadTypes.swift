/// Size and nesting limits applied to every body and query string the broker inspects.
///
/// Why: a body is parsed before any policy decision, so an unbounded body or nesting
/// is a denial-of-service vector. Invariants: both limits are positive; `maxBytes`
/// is checked before any parsing; `maxDepth` counts nested objects and arrays (a
/// top-level `{}` has depth 1) and applies on its own to every embedded JSON document.
public struct PayloadLimits: Sendable, Hashable {
    /// Largest accepted body or query string, in bytes (default 1 MiB).
    public var maxBytes: Int
    /// Deepest accepted nesting of objects and arrays (default 64).
    public var maxDepth: Int
    /// Most fields (leaf values, or form and query parameters) accepted (default: no limit).
    public var maxFields: Int

    public init(maxBytes: Int = 1_048_576, maxDepth: Int = 64, maxFields: Int = Int.max) {
        self.maxBytes = max(0, maxBytes)
        self.maxDepth = max(1, maxDepth)
        self.maxFields = max(1, maxFields)
    }
}

/// Why a body or query string was refused by the payload codecs.
///
/// Why: the broker must refuse anything two parsers could read differently, and
/// say precisely why, without leaking the body. Invariant: `message` names what is
/// wrong and where (byte offset and/or a field path declared by the adapter) and
/// never contains a value, key text or any other byte sequence copied from the body,
/// so it can be logged and returned to the caller as is.
public struct PayloadError: Error, Sendable, Equatable {
    /// Stable machine-readable reason, mapped by the HTTP layer to a problem code.
    public enum Code: String, Sendable {
        /// 400: not strictly valid (syntax, duplicate keys, invalid UTF-8, depth, numbers).
        case malformedBody = "malformed_body"
        /// 413: larger than `PayloadLimits.maxBytes`.
        case bodyTooLarge = "body_too_large"
        /// 413: more fields than `PayloadLimits.maxFields`.
        case tooManyFields = "too_many_fields"
    }

    public let code: Code
    /// Human-readable reason; never contains data from the body.
    public let message: String
    /// Byte offset in the inspected bytes where the problem was found, when known.
    /// `nil` for problems inside an embedded JSON document (the message then gives
    /// the field path and the offset inside the decoded embedded value).
    public let offset: Int?

    public init(code: Code, message: String, offset: Int?) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    static func malformed(_ what: String, at offset: Int) -> PayloadError {
        PayloadError(code: .malformedBody, message: "\(what) at byte offset \(offset)", offset: offset)
    }

    static func tooLarge(_ count: Int, limit: Int) -> PayloadError {
        PayloadError(code: .bodyTooLarge,
                     message: "body of \(count) bytes exceeds the limit of \(limit) bytes",
                     offset: nil)
    }
}

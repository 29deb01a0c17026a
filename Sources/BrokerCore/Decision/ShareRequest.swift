import Foundation

/// One header line of a request.
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// Everything `PolicyEngine.evaluate` decides on: one attempted share, as received.
public struct ShareRequest: Sendable {
    /// How the operation is identified.
    public enum Target: Sendable {
        /// A proxied request: method, path (no query) and the raw query string.
        case http(method: String, path: String, query: String?)
        /// An SDK decision: the operation named directly; the body is the fields document,
        /// and `query` the parameters of an operation that takes them in the URL.
        case operation(String, query: String? = nil)
    }

    /// `nil` when the caller did not authenticate.
    public var caller: Caller?
    public var provider: String
    public var target: Target
    public var headers: [HeaderField]
    public var contentType: String?
    public var body: [UInt8]
    /// From `X-Share-Subject`.
    public var subject: String?
    /// From `X-Share-Purpose`.
    public var purpose: String?
    public var time: Date

    public init(caller: Caller?, provider: String, target: Target, headers: [HeaderField] = [],
                contentType: String? = nil, body: [UInt8] = [], subject: String?, purpose: String? = nil, time: Date) {
        self.caller = caller; self.provider = provider; self.target = target; self.headers = headers
        self.contentType = contentType; self.body = body; self.subject = subject; self.purpose = purpose
        self.time = time
    }
}

/// The subject's record and grants as stored when the share was decided.
public struct SubjectContext: Sendable {
    public var subject: Subject?
    public var grants: [Grant]
    public init(subject: Subject?, grants: [Grant]) { self.subject = subject; self.grants = grants }
    public static let none = SubjectContext(subject: nil, grants: [])
    /// The broker knows the subject: it has their record, or a grant (recording a grant creates the record).
    public var isKnown: Bool { subject != nil || !grants.isEmpty }
}

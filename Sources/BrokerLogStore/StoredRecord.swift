import Foundation

/// One row of the share log as stored: the indexed columns, the canonical body and the chain links.
public struct StoredRecord: Sendable, Hashable {
    public var stream: String
    public var seq: Int64
    /// `share` (an intent or a blocked share), `outcome` or `revocation` (whose `shareID` is empty).
    public var kind: String
    public var shareID: String
    public var time: Date
    public var subject: String?
    public var provider: String?
    public var purpose: String?
    public var decision: String?
    public var caller: String?
    public var channel: String?
    /// The canonical JSON that was hashed.
    public var body: String
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    public var prevHash: String
    /// Hex SHA-256 of `prevHash`'s bytes followed by `body`'s.
    public var hash: String

    public init(stream: String, seq: Int64, kind: String, shareID: String, time: Date, subject: String?, provider: String?,
                purpose: String?, decision: String?, caller: String?, channel: String?, body: String, prevHash: String,
                hash: String) {
        self.stream = stream; self.seq = seq; self.kind = kind; self.shareID = shareID; self.time = time
        self.subject = subject; self.provider = provider; self.purpose = purpose; self.decision = decision
        self.caller = caller; self.channel = channel; self.body = body; self.prevHash = prevHash; self.hash = hash
    }
}

import BrokerLogStore
import BrokerFields
import Foundation
import GRDB

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

    init(row: Row) {
        stream = row["stream"]
        seq = row["seq"]
        kind = row["kind"]
        shareID = row["share_id"] ?? ""
        time = Microseconds.date(row["time_us"])
        subject = row["subject"]
        provider = row["provider"]
        purpose = row["purpose"]
        decision = row["decision"]
        caller = row["caller"]
        channel = row["channel"]
        body = row["body"]
        prevHash = Hex.encode(row["prev_hash"] as Data)
        hash = Hex.encode(row["hash"] as Data)
    }
}

import BrokerLogStore
import BrokerFields
import Foundation
import GRDB

extension StoredRecord {
    init(row: Row) {
        self.init(stream: row["stream"], seq: row["seq"], kind: row["kind"], shareID: row["share_id"] ?? "",
                  time: Microseconds.date(row["time_us"]), subject: row["subject"], provider: row["provider"],
                  purpose: row["purpose"], decision: row["decision"], caller: row["caller"], channel: row["channel"],
                  body: row["body"], prevHash: Hex.encode(row["prev_hash"] as Data), hash: Hex.encode(row["hash"] as Data))
    }
}

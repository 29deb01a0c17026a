import BrokerCore
import BrokerService
import Foundation
import GRDB

extension SQLiteStore: RevocationStore {
    /// One write transaction: the grants are marked revoked and the job is recorded
    /// over every share made under them. SQLite's single writer orders it against
    /// every intent batch (whose fence re-reads the grants), so a share either
    /// committed before — and is in `share_grants`, hence in the job — or sees the revoke.
    public func revoke(subject: String, _ target: RevocationTarget, revocationID: String,
                       at time: Date) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal> {
        let at = Microseconds.from(time)
        do {
            return try await pool.write { db -> Result<RevocationReceipt, RevocationRefusal> in
                let matching: [Row]
                switch target {
                case .grant(let id):
                    matching = try Row.fetchAll(db, sql: "SELECT id, revoked_at FROM grants WHERE subject_id = ? AND id = ?",
                                                arguments: [subject, id])
                case .provider(let provider):
                    matching = try Row.fetchAll(db, sql: "SELECT id, revoked_at FROM grants WHERE subject_id = ? AND provider = ?",
                                                arguments: [subject, provider])
                }
                guard !matching.isEmpty else { return .failure(.notFound) }
                let active: [String] = matching.compactMap { row in
                    (row["revoked_at"] as Int64?) == nil ? (row["id"] as String) : nil
                }
                guard !active.isEmpty else { return .failure(.alreadyRevoked) }
                let ids = String(decoding: CanonicalJSON.array(active.map { .string($0) }).bytes, as: UTF8.self)
                try db.execute(sql: "UPDATE grants SET revoked_at = ? WHERE id IN (SELECT value FROM json_each(?))",
                               arguments: [at, ids])
                try db.execute(sql: "INSERT INTO revocations (id, subject_id, grant_ids, created_at) VALUES (?, ?, ?, ?)",
                               arguments: [revocationID, subject, ids, at])
                // Every share made under the grants, except those whose outcome proves nothing was delivered.
                try db.execute(sql: """
                    INSERT OR IGNORE INTO revocation_shares (revocation_id, share_id, provider)
                    SELECT ?, sg.share_id, sg.provider FROM share_grants sg
                    WHERE sg.grant_id IN (SELECT value FROM json_each(?))
                      AND NOT EXISTS (SELECT 1 FROM share_log o WHERE o.share_id = sg.share_id AND o.kind = 'outcome'
                                      AND json_extract(o.body, '$.result') = 'error'
                                      AND json_extract(o.body, '$.error') = 'upstream_unreachable')
                    """, arguments: [revocationID, ids])
                return .success(try Self.fetchRevocation(revocationID, db)!)
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "revoking a grant")
        }
    }

    public func revocation(_ id: String) async throws(LogUnavailable) -> RevocationReceipt? {
        do {
            return try await pool.read { db in try Self.fetchRevocation(id, db) }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading a revocation")
        }
    }

    static func fetchRevocation(_ id: String, _ db: Database) throws -> RevocationReceipt? {
        guard let row = try Row.fetchOne(db, sql: "SELECT subject_id, grant_ids, created_at FROM revocations WHERE id = ?",
                                         arguments: [id]) else { return nil }
        let grantIDs = (try? JSONDecoder().decode([String].self, from: Data((row["grant_ids"] as String).utf8))) ?? []
        var shares: [String: String] = [:]
        for share in try Row.fetchAll(db, sql: "SELECT share_id, provider FROM revocation_shares WHERE revocation_id = ?",
                                      arguments: [id]) {
            shares[share["share_id"]] = share["provider"]
        }
        return RevocationReceipt(id: id, subject: row["subject_id"], grantIDs: grantIDs,
                                 createdAt: Microseconds.date(row["created_at"]), shares: shares)
    }
}

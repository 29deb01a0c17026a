import BrokerLogStore
import BrokerCore
import BrokerService
import Foundation
import GRDB

extension SQLiteStore: RevocationStore {
    /// Revokes in the share log's own batch transaction: SQLite's single writer and
    /// the batch order put it strictly before or after each intent (whose fence
    /// re-reads the grants), so a share either committed before — and is in
    /// `share_grants`, hence in the job — or sees the revoke.
    public func revoke(subject: String, _ target: RevocationTarget, revocationID: String, origin: String,
                       propagating: Set<String>, at time: Date) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal> {
        let command = RevokeCommand(subject: subject, target: target, revocationID: revocationID, origin: origin,
                                    propagating: propagating, time: time)
        switch try await submit(.revoke(command)) {
        case .revocation(let result): return result
        default: throw LogUnavailable("internal error: unexpected result for a revoke")
        }
    }

    func revoke(_ command: RevokeCommand, _ insert: BoundStatement, _ db: Database,
                _ chain: inout ChainTip) throws -> Result<RevocationReceipt, RevocationRefusal> {
        let at = Microseconds.from(command.time)
        let matching: [Row]
        var replacing: Subject?
        switch command.target {
        case .grant(let id):
            matching = try Row.fetchAll(db, sql: "SELECT id, revoked_at FROM grants WHERE subject_id = ? AND id = ?",
                                        arguments: [command.subject, id])
        case .provider(let provider):
            matching = try Row.fetchAll(db, sql: "SELECT id, revoked_at FROM grants WHERE subject_id = ? AND provider = ?",
                                        arguments: [command.subject, provider])
        case .everything(let record):
            matching = try Row.fetchAll(db, sql: "SELECT id, revoked_at FROM grants WHERE subject_id = ?",
                                        arguments: [command.subject])
            replacing = record
        }
        let active: [String] = matching.compactMap { row in
            (row["revoked_at"] as Int64?) == nil ? (row["id"] as String) : nil
        }
        if replacing == nil {
            guard !matching.isEmpty else { return .failure(.notFound) }
            guard !active.isEmpty else { return .failure(.alreadyRevoked) }
        }
        if let record = replacing {
            try db.execute(sql: """
                INSERT INTO subjects (id, birth_date, minor, region, deleted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET birth_date = excluded.birth_date, minor = excluded.minor,
                    region = excluded.region, deleted_at = excluded.deleted_at, updated_at = excluded.updated_at
                """, arguments: [command.subject, record.birthDate?.description, record.minor, record.region,
                                 record.deletedAt.map(Microseconds.from), at])
        }
        let ids = String(decoding: CanonicalJSON.array(active.map { .string($0) }).bytes, as: UTF8.self)
        try db.execute(sql: "UPDATE grants SET revoked_at = ? WHERE id IN (SELECT value FROM json_each(?))",
                       arguments: [at, ids])
        try db.execute(sql: "INSERT INTO revocations (id, subject_id, grant_ids, created_at) VALUES (?, ?, ?, ?)",
                       arguments: [command.revocationID, command.subject, ids, at])
        // Every share made under the grants (for `everything`, under every grant the subject ever
        // had). Even a failed upstream call may have delivered the request before failing (a reset
        // after sending), and a deletion of what never arrived is harmless.
        let covered = replacing == nil ? active : matching.map { $0["id"] as String }
        try db.execute(sql: """
            INSERT OR IGNORE INTO revocation_shares (revocation_id, share_id, provider, grant_id)
            SELECT ?, sg.share_id, sg.provider, sg.grant_id FROM share_grants sg
            WHERE sg.grant_id IN (SELECT value FROM json_each(?))
            """, arguments: [command.revocationID,
                             String(decoding: CanonicalJSON.array(covered.map { .string($0) }).bytes, as: UTF8.self)])
        let providers = try String.fetchAll(db, sql: "SELECT DISTINCT provider FROM revocation_shares WHERE revocation_id = ? ORDER BY provider",
                                            arguments: [command.revocationID])
        for provider in providers {
            let automatic = command.propagating.contains(provider)
            try db.execute(sql: """
                INSERT INTO revocation_jobs (revocation_id, provider, status, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [command.revocationID, provider,
                                 (automatic ? PropagationStatus.pending : .manualRequired).rawValue,
                                 automatic ? at : nil, at])
        }
        guard let receipt = try Self.fetchRevocation(command.revocationID, db) else {
            throw LogUnavailable("internal error: the revocation just written is missing")
        }
        _ = try append(receipt.record(origin: command.origin, time: command.time), insert, &chain)
        return .success(receipt)
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
        let subject: String = row["subject_id"]
        var shares: [String: String] = [:]
        var byProvider: [String: [String]] = [:]
        for share in try Row.fetchAll(db, sql: "SELECT share_id, provider FROM revocation_shares WHERE revocation_id = ? ORDER BY share_id",
                                      arguments: [id]) {
            shares[share["share_id"]] = share["provider"]
            byProvider[share["provider"], default: []].append(share["share_id"])
        }
        let jobs = try Row.fetchAll(db, sql: """
            SELECT provider, status, attempts, next_attempt_at, last_error, updated_at
            FROM revocation_jobs WHERE revocation_id = ? ORDER BY provider
            """, arguments: [id]).map { job in
            let provider: String = job["provider"]
            var propagation = PropagationJob(
                revocationID: id, provider: provider, subject: subject,
                status: PropagationStatus(rawValue: job["status"]) ?? .pending, attempts: job["attempts"],
                nextAttemptAt: (job["next_attempt_at"] as Int64?).map(Microseconds.date),
                lastError: job["last_error"], updatedAt: Microseconds.date(job["updated_at"]),
                shareIDs: byProvider[provider] ?? [])
            if let span = try Row.fetchOne(db, sql: """
                SELECT min(l.time_us) AS first, max(l.time_us) AS last FROM revocation_shares rs
                JOIN share_log l ON l.share_id = rs.share_id AND l.kind = 'share'
                WHERE rs.revocation_id = ? AND rs.provider = ?
                """, arguments: [id, provider]) {
                propagation.firstShareAt = (span["first"] as Int64?).map(Microseconds.date)
                propagation.lastShareAt = (span["last"] as Int64?).map(Microseconds.date)
            }
            propagation.categories = try String.fetchAll(db, sql: """
                SELECT DISTINCT json_extract(f.value, '$.category') AS category FROM revocation_shares rs
                JOIN share_log l ON l.share_id = rs.share_id AND l.kind = 'share', json_each(\(Self.bodyText("l")), '$.fields') f
                WHERE rs.revocation_id = ? AND rs.provider = ? AND json_extract(f.value, '$.action') IN ('sent', 'minimised')
                  AND \(Self.personalField) AND category IS NOT NULL
                ORDER BY category
                """, arguments: [id, provider])
            return propagation
        }
        return RevocationReceipt(id: id, subject: subject, grantIDs: grantIDs,
                                 createdAt: Microseconds.date(row["created_at"]), shares: shares, jobs: jobs)
    }

    // MARK: The propagation outbox

    public func dueJobs(at time: Date, limit: Int) async throws(LogUnavailable) -> [PropagationJob] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT j.revocation_id, j.provider, j.status, j.attempts, j.next_attempt_at, j.last_error, j.updated_at,
                           r.subject_id,
                           (SELECT group_concat(rs.share_id, char(31)) FROM revocation_shares rs
                            WHERE rs.revocation_id = j.revocation_id AND rs.provider = j.provider) AS shares
                    FROM revocation_jobs j JOIN revocations r ON r.id = j.revocation_id
                    WHERE j.status IN ('pending', 'sent') AND j.next_attempt_at <= ?
                    ORDER BY j.next_attempt_at LIMIT ?
                    """, arguments: [Microseconds.from(time), limit]).map { row in
                    PropagationJob(revocationID: row["revocation_id"], provider: row["provider"], subject: row["subject_id"],
                                   status: PropagationStatus(rawValue: row["status"]) ?? .pending, attempts: row["attempts"],
                                   nextAttemptAt: (row["next_attempt_at"] as Int64?).map(Microseconds.date),
                                   lastError: row["last_error"], updatedAt: Microseconds.date(row["updated_at"]),
                                   shareIDs: (row["shares"] as String?)?.split(separator: "\u{1F}").map(String.init) ?? [])
                }
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading due revocation jobs")
        }
    }

    public func nextDueTime() async throws(LogUnavailable) -> Date? {
        do {
            return try await pool.read { db in
                try Int64.fetchOne(db, sql: """
                    SELECT min(next_attempt_at) FROM revocation_jobs WHERE status IN ('pending', 'sent')
                    """).map(Microseconds.date)
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading revocation jobs")
        }
    }

    public func jobSummary() async throws(LogUnavailable) -> [RevocationJobSummary] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT j.provider, j.status, count(*), sum(j.attempts),
                           min(CASE WHEN j.status IN ('pending', 'sent') THEN r.created_at END)
                    FROM revocation_jobs j JOIN revocations r ON r.id = j.revocation_id
                    GROUP BY j.provider, j.status ORDER BY j.provider, j.status
                    """).compactMap { row -> RevocationJobSummary? in
                    guard let status = PropagationStatus(rawValue: row[1]) else { return nil }
                    return RevocationJobSummary(provider: row[0], status: status, jobs: row[2], attempts: row[3],
                                                oldestRevokedAt: (row[4] as Int64?).map(Microseconds.date))
                }
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading revocation jobs")
        }
    }

    public func resumeInterruptedJobs(at time: Date) async throws(LogUnavailable) -> Int {
        do {
            return try await pool.write { db in
                try db.execute(sql: "UPDATE revocation_jobs SET next_attempt_at = ?, updated_at = ? WHERE status = 'sent'",
                               arguments: [Microseconds.from(time), Microseconds.from(time)])
                return db.changesCount
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "resuming revocation jobs")
        }
    }

    public func beginAttempt(_ job: PropagationJob, at time: Date, leaseUntil: Date) async throws(LogUnavailable) -> Int {
        let at = Microseconds.from(time)
        let lease = Microseconds.from(leaseUntil)
        let (revocationID, provider) = (job.revocationID, job.provider)
        // Through the batch writer: concurrent attempts share one commit.
        switch try await submit(.statement { db in
            try db.execute(sql: """
                UPDATE revocation_jobs SET status = 'sent', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
                WHERE revocation_id = ? AND provider = ? AND status IN ('pending', 'sent') AND next_attempt_at <= ?
                """, arguments: [lease, at, revocationID, provider, at])
            // Claimed by someone else (another node), or finished meanwhile: not ours to attempt.
            guard db.changesCount == 1 else { return 0 }
            let attempt = try Int.fetchOne(db, sql: "SELECT attempts FROM revocation_jobs WHERE revocation_id = ? AND provider = ?",
                                           arguments: [revocationID, provider]) ?? 1
            try db.execute(sql: """
                INSERT OR REPLACE INTO revocation_attempts (revocation_id, provider, attempt, started_at) VALUES (?, ?, ?, ?)
                """, arguments: [revocationID, provider, attempt, at])
            return attempt
        }) {
        case .value(let attempt): return attempt
        default: throw LogUnavailable("internal error: unexpected result for a revocation attempt")
        }
    }

    public func sealedKeys(revocationID: String, provider: String) async throws(LogUnavailable) -> [String: StoredRevocationKeys] {
        do {
            return try await pool.read { db in
                var keys: [String: StoredRevocationKeys] = [:]
                // Through the share's grant link (its key set, as the outcome left it), or a box stored
                // per share before key sets.
                for row in try Row.fetchAll(db, sql: """
                    SELECT rs.share_id, k.key_set, coalesce(k.sealed, old.sealed) AS sealed FROM revocation_shares rs
                    LEFT JOIN share_grants sg ON sg.grant_id = rs.grant_id AND sg.share_id = rs.share_id
                    LEFT JOIN revocation_key_sets k ON k.grant_id = sg.grant_id AND k.key_set = sg.key_set
                    LEFT JOIN revocation_keys old ON old.share_id = rs.share_id AND k.sealed IS NULL
                    WHERE rs.revocation_id = ? AND rs.provider = ? AND (k.sealed IS NOT NULL OR old.sealed IS NOT NULL)
                    """, arguments: [revocationID, provider]) {
                    keys[row["share_id"]] = StoredRevocationKeys(sealed: Array(row["sealed"] as Data), keySet: row["key_set"])
                }
                return keys
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading revocation keys")
        }
    }

    public func acknowledgedCalls(revocationID: String, provider: String) async throws(LogUnavailable) -> Set<String> {
        do {
            return try await pool.read { db in
                Set(try String.fetchAll(db, sql: "SELECT call_key FROM revocation_calls WHERE revocation_id = ? AND provider = ?",
                                        arguments: [revocationID, provider]))
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading acknowledged revocation calls")
        }
    }

    public func acknowledgeCall(revocationID: String, provider: String, key: String, status: Int,
                                at time: Date) async throws(LogUnavailable) {
        let at = Microseconds.from(time)
        _ = try await submit(.statement { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO revocation_calls (revocation_id, provider, call_key, upstream_status, acknowledged_at)
                VALUES (?, ?, ?, ?, ?)
                """, arguments: [revocationID, provider, key, status, at])
            return 0
        })
    }

    public func finishAttempt(_ job: PropagationJob, attempt: Int, _ result: PropagationResult, calls: Int,
                              at time: Date) async throws(LogUnavailable) {
        let command = FinishCommand(job: job, attempt: attempt, result: result, calls: calls, time: time)
        switch try await submit(.finishPropagation(command)) {
        case .done: return
        default: throw LogUnavailable("internal error: unexpected result for a propagation attempt")
        }
    }

    func finishPropagation(_ command: FinishCommand, _ insert: BoundStatement, _ db: Database, _ chain: inout ChainTip) throws {
        let at = Microseconds.from(command.time)
        let job = command.job
        let (status, resultText, error, next) = command.effect
        try db.execute(sql: """
            UPDATE revocation_jobs SET status = ?, next_attempt_at = ?, last_error = ?, updated_at = ?
            WHERE revocation_id = ? AND provider = ? AND attempts = ?
            """, arguments: [status.rawValue, next, error, at, job.revocationID, job.provider, command.attempt])
        let ownsJob = db.changesCount == 1
        try db.execute(sql: """
            UPDATE revocation_attempts SET finished_at = ?, result = ?, error = ?, calls = ?
            WHERE revocation_id = ? AND provider = ? AND attempt = ?
            """, arguments: [at, resultText, error, command.calls, job.revocationID, job.provider, command.attempt])
        // A later attempt owns the job now (this one outlived its lease): the attempt is recorded, nothing else changes.
        guard ownsJob else { return }
        if status == .acknowledged {
            // The keys served their purpose: delete those no other unfinished job still needs. A key
            // set belongs to one grant, which this revocation revoked: no later share can name it.
            try db.execute(sql: """
                DELETE FROM revocation_key_sets WHERE (grant_id, key_set) IN (
                    SELECT sg.grant_id, sg.key_set FROM revocation_shares rs
                    JOIN share_grants sg ON sg.grant_id = rs.grant_id AND sg.share_id = rs.share_id
                    WHERE rs.revocation_id = ? AND rs.provider = ? AND sg.key_set IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM revocation_jobs j CROSS JOIN revocation_shares o
                                        ON o.revocation_id = j.revocation_id AND o.provider = j.provider
                                      WHERE j.status IN ('pending', 'sent') AND j.revocation_id <> rs.revocation_id
                                        AND o.grant_id = sg.grant_id))
                """, arguments: [job.revocationID, job.provider])
            try db.execute(sql: """
                DELETE FROM revocation_keys WHERE share_id IN (
                    SELECT rs.share_id FROM revocation_shares rs WHERE rs.revocation_id = ? AND rs.provider = ?
                      AND NOT EXISTS (SELECT 1 FROM revocation_shares o JOIN revocation_jobs j
                                        ON j.revocation_id = o.revocation_id AND j.provider = o.provider
                                      WHERE o.share_id = rs.share_id AND o.revocation_id <> rs.revocation_id
                                        AND j.status IN ('pending', 'sent')))
                """, arguments: [job.revocationID, job.provider])
        }
        guard status.isFinal else { return }
        _ = try append(command.record(), insert, &chain)
    }

    public func attempts(revocationID: String, provider: String) async throws(LogUnavailable) -> [PropagationAttempt] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT attempt, started_at, finished_at, result, error, calls FROM revocation_attempts
                    WHERE revocation_id = ? AND provider = ? ORDER BY attempt
                    """, arguments: [revocationID, provider]).map { row in
                    PropagationAttempt(attempt: row["attempt"], startedAt: Microseconds.date(row["started_at"]),
                                       finishedAt: (row["finished_at"] as Int64?).map(Microseconds.date),
                                       result: row["result"], error: row["error"], calls: row["calls"])
                }
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading revocation attempts")
        }
    }

    public func purgeExpiredKeys(at time: Date) async throws(LogUnavailable) -> Int {
        do {
            return try await pool.write { db in
                // Past retention, unless an unfinished revocation still needs them.
                try db.execute(sql: """
                    DELETE FROM revocation_keys WHERE expires_at <= ? AND NOT EXISTS (
                        SELECT 1 FROM revocation_shares rs JOIN revocation_jobs j
                          ON j.revocation_id = rs.revocation_id AND j.provider = rs.provider
                        WHERE rs.share_id = revocation_keys.share_id AND j.status IN ('pending', 'sent'))
                    """, arguments: [Microseconds.from(time)])
                let perShare = db.changesCount
                try db.execute(sql: """
                    DELETE FROM revocation_key_sets WHERE expires_at <= ? AND NOT EXISTS (
                        SELECT 1 FROM revocation_jobs j CROSS JOIN revocation_shares rs
                          ON rs.revocation_id = j.revocation_id AND rs.provider = j.provider
                        WHERE j.status IN ('pending', 'sent') AND rs.grant_id = revocation_key_sets.grant_id)
                    """, arguments: [Microseconds.from(time)])
                return perShare + db.changesCount
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "purging expired revocation keys")
        }
    }

    public func grants(provider: String, accountFingerprint: String,
                       grantedBefore: Date) async throws(LogUnavailable) -> [(subject: String, grantID: String)] {
        let before = Microseconds.from(grantedBefore)
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT subject_id, id FROM grants
                    WHERE provider = ? AND account_fingerprint = ? AND revoked_at IS NULL AND granted_at <= ?
                    ORDER BY granted_at
                    """, arguments: [provider, accountFingerprint, before]).map { (subject: $0[0], grantID: $0[1]) }
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "finding grants by provider account")
        }
    }

    /// How many sealed boxes of revocation keys are stored: key sets, and boxes stored per share
    /// before key sets (for tests and the operator).
    public func storedRevocationKeyCount() async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT (SELECT count(*) FROM revocation_keys) + (SELECT count(*) FROM revocation_key_sets)") ?? 0
        }
    }
}

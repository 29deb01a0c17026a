import BrokerCore
import BrokerLogStore
import BrokerService
import Foundation
import NIOCore
import PostgresNIO

extension PostgresStore: RevocationStore {
    /// Revokes in a batch transaction of this node's log (its record is chained there): the
    /// grants' rows are taken `FOR UPDATE` in id order, which waits for every batch, on any
    /// node, that share-locked them for its intents (see `appendIntent`); the shares made under
    /// the grants are then read from `share_grants` by a later statement, which sees those
    /// batches' commits. Intents later in the same batch see the revoke.
    public func revoke(subject: String, _ target: RevocationTarget, revocationID: String, origin: String,
                       propagating: Set<String>, at time: Date) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal> {
        let command = RevokeCommand(subject: subject, target: target, revocationID: revocationID, origin: origin,
                                    propagating: propagating, time: time)
        switch try await submit(.revoke(command)) {
        case .revocation(let result): return result
        default: throw LogUnavailable("internal error: unexpected result for a revoke")
        }
    }

    func revoke(_ command: RevokeCommand, _ connection: PostgresConnection) async throws -> Result<RevocationReceipt, RevocationRefusal> {
        let at = Microseconds.from(command.time)
        let rows: PostgresRowSequence
        var replacing: Subject?
        switch command.target {
        case .grant(let id):
            rows = try await connection.query("""
                SELECT id, revoked_at IS NOT NULL FROM grants WHERE subject_id = \(command.subject) AND id = \(id)
                ORDER BY id FOR UPDATE
                """, logger: logger)
        case .provider(let provider):
            rows = try await connection.query("""
                SELECT id, revoked_at IS NOT NULL FROM grants WHERE subject_id = \(command.subject) AND provider = \(provider)
                ORDER BY id FOR UPDATE
                """, logger: logger)
        case .everything(let record):
            rows = try await connection.query("""
                SELECT id, revoked_at IS NOT NULL FROM grants WHERE subject_id = \(command.subject) ORDER BY id FOR UPDATE
                """, logger: logger)
            replacing = record
        }
        var matching: [String] = []
        var active: [String] = []
        for try await (id, revoked) in rows.decode((String, Bool).self) {
            matching.append(id)
            if !revoked { active.append(id) }
        }
        if replacing == nil {
            guard !matching.isEmpty else { return .failure(.notFound) }
            guard !active.isEmpty else { return .failure(.alreadyRevoked) }
        }
        if let record = replacing {
            let deletedAt = record.deletedAt.map(Microseconds.from)
            try await connection.query("""
                INSERT INTO subjects (id, birth_date, minor, region, deleted_at, updated_at)
                VALUES (\(command.subject), \(record.birthDate?.description), \(record.minor), \(record.region), \(deletedAt), \(at))
                ON CONFLICT (id) DO UPDATE SET birth_date = excluded.birth_date, minor = excluded.minor,
                    region = excluded.region, deleted_at = excluded.deleted_at, updated_at = excluded.updated_at
                """, logger: logger)
        }
        let idsText = String(decoding: CanonicalJSON.array(active.map { .string($0) }).bytes, as: UTF8.self)
        try await connection.query("UPDATE grants SET revoked_at = \(at) WHERE id = ANY(\(active))", logger: logger)
        try await connection.query("""
            INSERT INTO revocations (id, subject_id, grant_ids, created_at)
            VALUES (\(command.revocationID), \(command.subject), \(idsText), \(at))
            """, logger: logger)
        // Every share made under the grants (for `everything`, under every grant the subject ever
        // had; even a failed upstream call may have delivered it).
        let covered = replacing == nil ? active : matching
        try await connection.query("""
            INSERT INTO revocation_shares (revocation_id, share_id, provider, grant_id)
            SELECT \(command.revocationID), share_id, provider, grant_id FROM share_grants WHERE grant_id = ANY(\(covered))
            ON CONFLICT DO NOTHING
            """, logger: logger)
        var providers: [String] = []
        for try await provider in try await connection.query("""
            SELECT DISTINCT provider FROM revocation_shares WHERE revocation_id = \(command.revocationID) ORDER BY provider
            """, logger: logger).decode(String.self) {
            providers.append(provider)
        }
        for provider in providers {
            let automatic = command.propagating.contains(provider)
            let status = (automatic ? PropagationStatus.pending : .manualRequired).rawValue
            let next: Int64? = automatic ? at : nil
            try await connection.query("""
                INSERT INTO revocation_jobs (revocation_id, provider, status, next_attempt_at, updated_at)
                VALUES (\(command.revocationID), \(provider), \(status), \(next), \(at))
                """, logger: logger)
        }
        guard let receipt = try await fetchRevocation(command.revocationID, connection) else {
            throw LogUnavailable("internal error: the revocation just written is missing")
        }
        return .success(receipt)
    }

    public func revocation(_ id: String) async throws(LogUnavailable) -> RevocationReceipt? {
        try await run("reading a revocation") { connection in try await self.fetchRevocation(id, connection) }
    }

    func fetchRevocation(_ id: String, _ connection: PostgresConnection) async throws -> RevocationReceipt? {
        let head = try await connection.query("""
            SELECT subject_id, grant_ids, created_at FROM revocations WHERE id = \(id)
            """, logger: logger).collect()
        guard let row = head.first else { return nil }
        let (subject, grantIDsText, createdAt) = try row.decode((String, String, Int64).self)
        let grantIDs = (try? JSONDecoder().decode([String].self, from: Data(grantIDsText.utf8))) ?? []
        var shares: [String: String] = [:]
        var byProvider: [String: [String]] = [:]
        for try await (shareID, provider) in try await connection.query("""
            SELECT share_id, provider FROM revocation_shares WHERE revocation_id = \(id) ORDER BY share_id
            """, logger: logger).decode((String, String).self) {
            shares[shareID] = provider
            byProvider[provider, default: []].append(shareID)
        }
        var jobs: [PropagationJob] = []
        let jobRows = try await connection.query("""
            SELECT provider, status, attempts, next_attempt_at, last_error, updated_at
            FROM revocation_jobs WHERE revocation_id = \(id) ORDER BY provider
            """, logger: logger).collect()
        for job in jobRows {
            let (provider, status, attempts, next, lastError, updatedAt) =
                try job.decode((String, String, Int32, Int64?, String?, Int64).self)
            var propagation = PropagationJob(
                revocationID: id, provider: provider, subject: subject, status: PropagationStatus(rawValue: status) ?? .pending,
                attempts: Int(attempts), nextAttemptAt: next.map(Microseconds.date), lastError: lastError,
                updatedAt: Microseconds.date(updatedAt), shareIDs: byProvider[provider] ?? [])
            if let span = try await connection.query("""
                SELECT min(l.time_us), max(l.time_us) FROM revocation_shares rs
                JOIN share_log l ON l.share_id = rs.share_id AND l.kind = 'share'
                WHERE rs.revocation_id = \(id) AND rs.provider = \(provider)
                """, logger: logger).collect().first {
                let (first, last) = try span.decode((Int64?, Int64?).self)
                propagation.firstShareAt = first.map(Microseconds.date)
                propagation.lastShareAt = last.map(Microseconds.date)
            }
            var categories: [String] = []
            for try await category in try await connection.query("""
                SELECT DISTINCT f->>'category' AS category FROM revocation_shares rs
                JOIN share_log l ON l.share_id = rs.share_id AND l.kind = 'share',
                     jsonb_array_elements(l.body::jsonb -> 'fields') f
                WHERE rs.revocation_id = \(id) AND rs.provider = \(provider) AND f->>'action' IN ('sent', 'minimised')
                  AND (f->>'fingerprint' IS NOT NULL OR f->'fingerprints' IS NOT NULL) AND f->>'category' IS NOT NULL
                ORDER BY category
                """, logger: logger).decode(String.self) {
                categories.append(category)
            }
            propagation.categories = categories
            jobs.append(propagation)
        }
        return RevocationReceipt(id: id, subject: subject, grantIDs: grantIDs, createdAt: Microseconds.date(createdAt),
                                 shares: shares, jobs: jobs)
    }

    // MARK: The propagation outbox, shared by every node

    public func dueJobs(at time: Date, limit: Int) async throws(LogUnavailable) -> [PropagationJob] {
        let at = Microseconds.from(time)
        return try await run("reading due revocation jobs") { connection in
            var jobs: [PropagationJob] = []
            let rows = try await connection.query("""
                SELECT j.revocation_id, j.provider, j.status, j.attempts, j.next_attempt_at, j.last_error, j.updated_at,
                       r.subject_id,
                       (SELECT coalesce(array_agg(rs.share_id ORDER BY rs.share_id), '{}') FROM revocation_shares rs
                        WHERE rs.revocation_id = j.revocation_id AND rs.provider = j.provider)
                FROM revocation_jobs j JOIN revocations r ON r.id = j.revocation_id
                WHERE j.status IN ('pending', 'sent') AND j.next_attempt_at <= \(at)
                ORDER BY j.next_attempt_at LIMIT \(limit)
                """, logger: self.logger)
            for try await row in rows {
                let columns = PostgresRandomAccessRow(row)
                jobs.append(PropagationJob(
                    revocationID: try columns[0].decode(String.self), provider: try columns[1].decode(String.self),
                    subject: try columns[7].decode(String.self),
                    status: PropagationStatus(rawValue: try columns[2].decode(String.self)) ?? .pending,
                    attempts: Int(try columns[3].decode(Int32.self)),
                    nextAttemptAt: try columns[4].decode(Int64?.self).map(Microseconds.date),
                    lastError: try columns[5].decode(String?.self), updatedAt: Microseconds.date(try columns[6].decode(Int64.self)),
                    shareIDs: try columns[8].decode([String].self)))
            }
            return jobs
        }
    }

    public func nextDueTime() async throws(LogUnavailable) -> Date? {
        try await run("reading revocation jobs") { connection in
            try await connection.query("""
                SELECT min(next_attempt_at) FROM revocation_jobs WHERE status IN ('pending', 'sent')
                """, logger: self.logger).collect().first?.decode(Int64?.self).map(Microseconds.date)
        }
    }

    public func jobSummary() async throws(LogUnavailable) -> [RevocationJobSummary] {
        try await run("reading revocation jobs") { connection in
            try await connection.query("""
                SELECT j.provider, j.status, count(*)::bigint, sum(j.attempts)::bigint,
                       min(CASE WHEN j.status IN ('pending', 'sent') THEN r.created_at END)
                FROM revocation_jobs j JOIN revocations r ON r.id = j.revocation_id
                GROUP BY j.provider, j.status ORDER BY j.provider, j.status
                """, logger: self.logger).collect().compactMap { row -> RevocationJobSummary? in
                let (provider, status, jobs, attempts, oldest) = try row.decode((String, String, Int64, Int64, Int64?).self)
                guard let status = PropagationStatus(rawValue: status) else { return nil }
                return RevocationJobSummary(provider: provider, status: status, jobs: Int(jobs), attempts: Int(attempts),
                                            oldestRevokedAt: oldest.map(Microseconds.date))
            }
        }
    }

    /// On several nodes a `sent` job may be another node's attempt in flight: only jobs whose
    /// lease has run out are made due again (a node's own interrupted attempts among them).
    public func resumeInterruptedJobs(at time: Date) async throws(LogUnavailable) -> Int {
        let at = Microseconds.from(time)
        return try await run("resuming revocation jobs") { connection in
            try await connection.query("""
                UPDATE revocation_jobs SET next_attempt_at = \(at), updated_at = \(at)
                WHERE status = 'sent' AND next_attempt_at <= \(at) RETURNING 1
                """, logger: self.logger).collect().count
        }
    }

    /// Claims the job for one attempt until `leaseUntil`: the row is taken `FOR UPDATE SKIP
    /// LOCKED`, so while one node claims it another passes over it instead of waiting, and the
    /// claim's conditions (still open, due) are checked on the locked row. 0 when not claimed.
    public func beginAttempt(_ job: PropagationJob, at time: Date, leaseUntil: Date) async throws(LogUnavailable) -> Int {
        let at = Microseconds.from(time)
        let lease = Microseconds.from(leaseUntil)
        return try await transaction("beginning a revocation attempt") { connection in
            let claimed = try await connection.query("""
                UPDATE revocation_jobs SET status = 'sent', attempts = attempts + 1, next_attempt_at = \(lease), updated_at = \(at)
                WHERE (revocation_id, provider) IN (
                    SELECT revocation_id, provider FROM revocation_jobs
                    WHERE revocation_id = \(job.revocationID) AND provider = \(job.provider)
                      AND status IN ('pending', 'sent') AND next_attempt_at <= \(at)
                    FOR UPDATE SKIP LOCKED)
                RETURNING attempts
                """, logger: self.logger).collect()
            guard let row = claimed.first else { return 0 }
            let attempt = Int(try row.decode(Int32.self))
            try await connection.query("""
                INSERT INTO revocation_attempts (revocation_id, provider, attempt, started_at)
                VALUES (\(job.revocationID), \(job.provider), \(attempt), \(at))
                ON CONFLICT (revocation_id, provider, attempt) DO UPDATE SET started_at = excluded.started_at,
                    finished_at = NULL, result = NULL, error = NULL, calls = 0
                """, logger: self.logger)
            return attempt
        }
    }

    public func sealedKeys(revocationID: String, provider: String) async throws(LogUnavailable) -> [String: StoredRevocationKeys] {
        try await run("reading revocation keys") { connection in
            var keys: [String: StoredRevocationKeys] = [:]
            // Through the share's grant link (its key set, as the outcome left it), or a box stored per
            // share before key sets.
            for try await (shareID, keySet, sealed) in try await connection.query("""
                SELECT rs.share_id, k.key_set, coalesce(k.sealed, old.sealed) FROM revocation_shares rs
                LEFT JOIN share_grants sg ON sg.grant_id = rs.grant_id AND sg.share_id = rs.share_id
                LEFT JOIN revocation_key_sets k ON k.grant_id = sg.grant_id AND k.key_set = sg.key_set
                LEFT JOIN revocation_keys old ON old.share_id = rs.share_id AND k.sealed IS NULL
                WHERE rs.revocation_id = \(revocationID) AND rs.provider = \(provider)
                  AND (k.sealed IS NOT NULL OR old.sealed IS NOT NULL)
                """, logger: self.logger).decode((String, Int64?, ByteBuffer).self) {
                keys[shareID] = StoredRevocationKeys(sealed: Array(sealed.readableBytesView), keySet: keySet)
            }
            return keys
        }
    }

    public func acknowledgedCalls(revocationID: String, provider: String) async throws(LogUnavailable) -> Set<String> {
        try await run("reading acknowledged revocation calls") { connection in
            var keys: Set<String> = []
            for try await key in try await connection.query("""
                SELECT call_key FROM revocation_calls WHERE revocation_id = \(revocationID) AND provider = \(provider)
                """, logger: self.logger).decode(String.self) {
                keys.insert(key)
            }
            return keys
        }
    }

    /// Recorded (committed) before the worker makes its next call: a node that takes the job
    /// over after a crash skips every call acknowledged here.
    public func acknowledgeCall(revocationID: String, provider: String, key: String, status: Int,
                                at time: Date) async throws(LogUnavailable) {
        let at = Microseconds.from(time)
        try await run("recording an acknowledged revocation call") { connection in
            try await connection.query("""
                INSERT INTO revocation_calls (revocation_id, provider, call_key, upstream_status, acknowledged_at)
                VALUES (\(revocationID), \(provider), \(key), \(status), \(at)) ON CONFLICT DO NOTHING
                """, logger: self.logger)
        }
    }

    public func finishAttempt(_ job: PropagationJob, attempt: Int, _ result: PropagationResult, calls: Int,
                              at time: Date) async throws(LogUnavailable) {
        let command = FinishCommand(job: job, attempt: attempt, result: result, calls: calls, time: time)
        switch try await submit(.finishPropagation(command)) {
        case .done: return
        default: throw LogUnavailable("internal error: unexpected result for a propagation attempt")
        }
    }

    /// The end of an attempt, in a batch transaction; `true` when a final state is to be logged.
    func finishPropagation(_ command: FinishCommand, _ connection: PostgresConnection) async throws -> Bool {
        let at = Microseconds.from(command.time)
        let job = command.job
        let (status, resultText, error, next) = command.effect
        let owns = try await connection.query("""
            UPDATE revocation_jobs SET status = \(status.rawValue), next_attempt_at = \(next), last_error = \(error), updated_at = \(at)
            WHERE revocation_id = \(job.revocationID) AND provider = \(job.provider) AND attempts = \(command.attempt)
            RETURNING 1
            """, logger: logger).collect().count == 1
        try await connection.query("""
            UPDATE revocation_attempts SET finished_at = \(at), result = \(resultText), error = \(error), calls = \(command.calls)
            WHERE revocation_id = \(job.revocationID) AND provider = \(job.provider) AND attempt = \(command.attempt)
            """, logger: logger)
        // A later attempt owns the job now (this one outlived its lease): the attempt is recorded, nothing else changes.
        guard owns else { return false }
        if status == .acknowledged {
            // The keys served their purpose: delete those no other unfinished job still needs. A key
            // set belongs to one grant, which this revocation revoked: no later share can name it.
            try await connection.query("""
                DELETE FROM revocation_key_sets WHERE (grant_id, key_set) IN (
                    SELECT sg.grant_id, sg.key_set FROM revocation_shares rs
                    JOIN share_grants sg ON sg.grant_id = rs.grant_id AND sg.share_id = rs.share_id
                    WHERE rs.revocation_id = \(job.revocationID) AND rs.provider = \(job.provider) AND sg.key_set IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM revocation_jobs j JOIN revocation_shares o
                                        ON o.revocation_id = j.revocation_id AND o.provider = j.provider
                                      WHERE j.status IN ('pending', 'sent') AND j.revocation_id <> rs.revocation_id
                                        AND o.grant_id = sg.grant_id))
                """, logger: logger)
            try await connection.query("""
                DELETE FROM revocation_keys WHERE share_id IN (
                    SELECT rs.share_id FROM revocation_shares rs WHERE rs.revocation_id = \(job.revocationID)
                      AND rs.provider = \(job.provider)
                      AND NOT EXISTS (SELECT 1 FROM revocation_shares o JOIN revocation_jobs j
                                        ON j.revocation_id = o.revocation_id AND j.provider = o.provider
                                      WHERE o.share_id = rs.share_id AND o.revocation_id <> rs.revocation_id
                                        AND j.status IN ('pending', 'sent')))
                """, logger: logger)
        }
        return status.isFinal
    }

    public func attempts(revocationID: String, provider: String) async throws(LogUnavailable) -> [PropagationAttempt] {
        try await run("reading revocation attempts") { connection in
            var attempts: [PropagationAttempt] = []
            for try await (attempt, started, finished, result, error, calls) in try await connection.query("""
                SELECT attempt, started_at, finished_at, result, error, calls FROM revocation_attempts
                WHERE revocation_id = \(revocationID) AND provider = \(provider) ORDER BY attempt
                """, logger: self.logger).decode((Int32, Int64, Int64?, String?, String?, Int32).self) {
                attempts.append(PropagationAttempt(attempt: Int(attempt), startedAt: Microseconds.date(started),
                                                   finishedAt: finished.map(Microseconds.date), result: result, error: error,
                                                   calls: Int(calls)))
            }
            return attempts
        }
    }

    public func purgeExpiredKeys(at time: Date) async throws(LogUnavailable) -> Int {
        let at = Microseconds.from(time)
        return try await run("purging expired revocation keys") { connection in
            try await connection.query("""
                DELETE FROM revocation_keys WHERE expires_at <= \(at) AND NOT EXISTS (
                    SELECT 1 FROM revocation_shares rs JOIN revocation_jobs j
                      ON j.revocation_id = rs.revocation_id AND j.provider = rs.provider
                    WHERE rs.share_id = revocation_keys.share_id AND j.status IN ('pending', 'sent'))
                RETURNING 1
                """, logger: self.logger).collect().count
                + connection.query("""
                DELETE FROM revocation_key_sets WHERE expires_at <= \(at) AND NOT EXISTS (
                    SELECT 1 FROM revocation_jobs j JOIN revocation_shares rs
                      ON rs.revocation_id = j.revocation_id AND rs.provider = j.provider
                    WHERE j.status IN ('pending', 'sent') AND rs.grant_id = revocation_key_sets.grant_id)
                RETURNING 1
                """, logger: self.logger).collect().count
        }
    }

    public func grants(provider: String, accountFingerprint: String,
                       grantedBefore: Date) async throws(LogUnavailable) -> [(subject: String, grantID: String)] {
        let before = Microseconds.from(grantedBefore)
        return try await run("finding grants by provider account") { connection in
            var found: [(subject: String, grantID: String)] = []
            for try await (subject, id) in try await connection.query("""
                SELECT subject_id, id FROM grants
                WHERE provider = \(provider) AND account_fingerprint = \(accountFingerprint) AND revoked_at IS NULL
                  AND granted_at <= \(before)
                ORDER BY granted_at, ord
                """, logger: self.logger).decode((String, String).self) {
                found.append((subject: subject, grantID: id))
            }
            return found
        }
    }
}

import BrokerLogStore
import BrokerService
import Foundation
import PostgresNIO

/// The log's follower on PostgreSQL: as on SQLite (`SQLiteStore+Follower`), each node folds its own
/// stream's committed share records into the shared aggregates, in batches, with its stream's
/// mark in the same transaction. The mark's row is locked for the fold (`FOR UPDATE`), so two
/// folds of one stream never overlap; the aggregate rows are upserted in key order, so nodes
/// folding at once lock shared rows in the same order.
extension PostgresStore {
    /// Hands a committed batch's share entries to the follower and schedules a fold.
    func follow(_ entries: [(seq: Int64, entry: ShareEntry)], resolved: [String], through seq: Int64) {
        let delay: Duration
        switch follower.withLock({ $0.receive(entries, resolved: resolved, through: seq) }) {
        case .none: return
        case .now: delay = .zero
        case .after(let after): delay = after
        }
        let task = Task { [weak self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            guard !Task.isCancelled, let self else { return }
            _ = try? await self.fold()
        }
        tasks.withLock { tasks in
            tasks.removeAll { $0.isCancelled }
            tasks.append(task)
        }
    }

    /// How long after a commit the follower folds; `nil` stops automatic folds (tests).
    public func setFoldDelay(_ delay: Duration?) { follower.withLock { $0.delay = delay } }

    /// Folds everything committed and not yet folded, now. Returns the share records folded.
    @discardableResult
    public func foldNow() async throws(LogUnavailable) -> Int { try await fold() }

    func fold() async throws(LogUnavailable) -> Int {
        // One fold of this store at a time (the mark's row lock also orders folds across processes).
        while !follower.withLock({ buffer -> Bool in
            if buffer.folding { return false }
            buffer.folding = true
            return true
        }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        defer { follower.withLock { $0.folding = false } }
        guard let taken = follower.withLock({ $0.take() }) else { return 0 }
        let stream = self.stream
        do {
            let (folded, through, learned) = try await transaction("folding the aggregates") { connection in
                try await connection.query("""
                    INSERT INTO log_follower (stream, seq) VALUES (\(stream), 0) ON CONFLICT DO NOTHING
                    """, logger: self.logger)
                let mark = try await connection.query("""
                    SELECT seq FROM log_follower WHERE stream = \(stream) FOR UPDATE
                    """, logger: self.logger).collect().first?.decode(Int64.self) ?? 0
                var tally = SharingTally()
                var folded = 0
                var through = taken.through
                if let entries = taken.entries(after: mark) {
                    for entry in entries { tally.count(entry) }
                    folded = entries.count
                } else {
                    // Read the committed records past the mark (bounded: what the last fold left).
                    through = try await connection.query("""
                        SELECT coalesce(max(seq), 0) FROM share_log WHERE stream = \(stream)
                        """, logger: self.logger).collect().first?.decode(Int64.self) ?? mark
                    let rows = try await connection.query("""
                        SELECT body FROM share_log WHERE stream = \(stream) AND seq > \(mark) AND seq <= \(through)
                          AND kind = 'share' ORDER BY seq
                        """, logger: self.logger)
                    for try await body in rows.decode(String.self) {
                        if let record = FoldRecord(body: body) { tally.count(record); folded += 1 }
                    }
                }
                through = max(through, mark)
                let learned = try await self.write(tally, connection)
                try await connection.query("""
                    UPDATE log_follower SET seq = \(through), resolved = greatest(resolved, \(taken.resolvedThrough ?? 0))
                    WHERE stream = \(stream)
                    """, logger: self.logger)
                return (folded, through, learned)
            }
            follower.withLock { $0.folded(through: through) }
            if !learned.isEmpty { knownSubjectRows.withLock { $0.learn(learned) } }
            return folded
        } catch {
            follower.withLock { $0.failed() }
            logger.error("share log follower could not fold", metadata: ["log.stream": "\(stream)", "error.message": "\(error.message)"])
            throw error
        }
    }
}

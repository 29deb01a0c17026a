import BrokerLogStore
import BrokerService
import Dispatch
import Foundation
import GRDB

/// The log's follower: the aggregates (the sharing list's, the exposure report's) are derived
/// from committed share records, not written in the intent's transaction.
///
/// Each batch hands the entries it committed to the follower (in memory); at most every
/// second (or at once when `foldEvery` are waiting) a fold job on the writer queue adds them up (`SharingTally`, one upsert per
/// distinct key) and writes the aggregates and the stream's mark (`log_follower`: every share
/// record up to this seq is in the aggregates) in one transaction. So an intent's commit no
/// longer pays for the aggregates, and a fold of a few hundred shares writes each hot key once.
/// Queries add the records past the mark, so answers stay exact while the fold is pending.
/// Nothing is lost in a crash: the entries in memory are only a shortcut, and a fold that
/// finds them discontinuous (at open, after a failed fold) reads the records past the stored
/// mark instead, which also bounds start-up work by that tail instead of the log's size.
extension SQLiteStore {
    /// Hands a committed batch's share entries (with the seq of each) and the share ids it wrote
    /// outcomes for to the follower, and schedules a fold.
    func follow(_ entries: [(seq: Int64, entry: ShareEntry)], resolved: [String], through seq: Int64) {
        let next = follower.withLock { $0.receive(entries, resolved: resolved, through: seq) }
        switch next {
        case .none: break
        case .now: pool.asyncWriteWithoutTransaction { db in _ = self.fold(db) }
        case .after(let delay):
            // A task's sleep (the process's executor timers), not a dispatch timer: the fold itself is a
            // job on the writer queue like the batches.
            Task { [self] in
                try? await Task.sleep(for: delay)
                pool.asyncWriteWithoutTransaction { db in _ = self.fold(db) }
            }
        }
    }

    /// How long after a commit the follower folds; `nil` stops automatic folds (tests that count statements).
    public func setFoldDelay(_ delay: Duration?) { follower.withLock { $0.delay = delay } }

    /// Folds everything committed and not yet folded, now (tests, the bench, and `close`).
    @discardableResult
    public func foldNow() async throws -> Int {
        try await pool.writeWithoutTransaction { db in self.fold(db) }
    }

    /// On the writer queue: no batch is running, so every committed record is either in the
    /// buffer or past the stored mark. Returns the records folded.
    func fold(_ db: Database) -> Int {
        guard let taken = follower.withLock({ $0.take() }) else { return 0 }
        var learned: [SharingTally.SubjectKey] = []
        var folded = 0
        var through = taken.through
        do {
            try Self.inImmediateTransaction(db) {
                var tally = SharingTally()
                let mark = try Int64.fetchOne(db, sql: "SELECT seq FROM log_follower WHERE stream = ?", arguments: [stream]) ?? 0
                if let entries = taken.entries(after: mark) {
                    for entry in entries { tally.count(entry) }
                    folded = entries.count
                } else {
                    // Read the committed records past the mark (bounded: what the last fold left).
                    through = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM share_log WHERE stream = ?", arguments: [stream]) ?? mark
                    let bodies = try String.fetchCursor(db, sql: """
                        SELECT \(Self.bodyText("l")) FROM share_log l WHERE stream = ? AND seq > ? AND seq <= ? AND kind = 'share' ORDER BY seq
                        """, arguments: [stream, mark, through])
                    while let body = try bodies.next() {
                        if let record = FoldRecord(body: body) { tally.count(record); folded += 1 }
                    }
                }
                through = max(through, mark)
                learned = try tally.write(db, known: knownSubjectRows.withLock { $0.rows })
                try db.cachedStatement(sql: """
                    INSERT INTO log_follower (stream, seq, resolved) VALUES (?, ?, ?)
                    ON CONFLICT DO UPDATE SET seq = excluded.seq, resolved = max(resolved, excluded.resolved)
                    """).execute(arguments: [stream, through, taken.resolvedThrough ?? 0])
            }
        } catch {
            // Nothing was written: the next fold reads the records past the stored mark.
            follower.withLock { $0.failed() }
            logger.error("share log follower could not fold",
                         metadata: ["log.stream": "\(stream)", "error.message": "\(LogUnavailable.sqlite(error, during: "folding the aggregates").message)"])
            return 0
        }
        follower.withLock { $0.folded(through: through) }
        if !learned.isEmpty { knownSubjectRows.withLock { $0.learn(learned) } }
        return folded
    }

    /// The exposure aggregates of every share record already logged (the migration that adds them, v12:
    /// before v15, every body is still text, and `bodyText`'s `dict` column does not exist yet).
    static func backfillExposure(_ db: Database) throws {
        var tally = SharingTally()
        let bodies = try String.fetchCursor(db, sql: "SELECT body FROM share_log WHERE kind = 'share' ORDER BY stream, seq")
        var pending = 0
        while let body = try bodies.next() {
            guard let record = FoldRecord(body: body) else { continue }
            tally.count(record)
            pending += 1
            if pending == 10_000 { try tally.writeExposure(db); tally = SharingTally(); pending = 0 }
        }
        try tally.writeExposure(db)
    }
}

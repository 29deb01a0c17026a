import BrokerLogStore
import BrokerService
import Dispatch
import Foundation
import GRDB

/// What the follower has been handed and not yet folded.
struct FollowerBuffer: Sendable {
    /// The share entries of batches committed since the last fold, in log order.
    var entries: [ShareEntry] = []
    /// The seq of this stream's last committed record those batches reached.
    var through: Int64 = 0
    /// The entries continue the stored mark: no committed batch was missed (false at open and
    /// after a failed fold, when the next fold reads the records past the mark instead).
    var continuous = false
    var scheduled = false
    var urgent = false
    var closed = false
    /// How long after the first unfolded commit the fold runs at the latest; `nil`: only when asked
    /// (`foldNow`, tests). Under load it runs sooner, every `foldEvery` entries.
    var delay: Duration? = .seconds(1)
    /// The allowed or redacted intents committed by this process still without an outcome (share id → seq).
    var unresolved: [String: Int64] = [:]
    /// Start has resolved every earlier intent of the stream (`resolveDanglingIntents`): only then
    /// does `unresolved` know every intent without an outcome, and may the resolved mark advance.
    var resolvedKnown = false
}

/// When the next fold runs.
enum FoldSchedule: Sendable {
    case none
    case now
    case after(Duration)
}

/// Folds run at most `delay` after the first entry they fold, and at once when `foldEvery` are waiting.
let foldEvery = 512

extension FollowerBuffer {
    mutating func schedule() -> FoldSchedule {
        guard !closed, let delay else { return .none }
        if entries.count >= foldEvery, !urgent { urgent = true; return .now }
        if scheduled { return .none }
        scheduled = true
        return .after(delay)
    }
}

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
        let next = follower.withLock { buffer -> FoldSchedule in
            for (seq, entry) in entries {
                buffer.entries.append(entry)
                if entry.decision != .blocked { buffer.unresolved[entry.shareID] = seq }
            }
            for shareID in resolved { buffer.unresolved.removeValue(forKey: shareID) }
            buffer.through = seq
            return buffer.schedule()
        }
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
    /// buffer (when continuous) or past the stored mark. Returns the records folded.
    func fold(_ db: Database) -> Int {
        let (buffer, resolvedThrough) = follower.withLock { buffer -> (FollowerBuffer, Int64?) in
            let taken = buffer
            buffer.entries = []
            buffer.scheduled = false
            buffer.urgent = false
            // Every intent of the stream up to here has its outcome: before the oldest still waiting.
            var resolved: Int64?
            if buffer.resolvedKnown && buffer.continuous {
                resolved = buffer.unresolved.values.min().map { $0 - 1 } ?? buffer.through
            }
            return (taken, resolved)
        }
        guard !buffer.closed, !(buffer.continuous && buffer.entries.isEmpty && resolvedThrough == nil) else { return 0 }
        var learned: [SharingTally.SubjectKey] = []
        var folded = 0
        do {
            try Self.inImmediateTransaction(db) {
                var tally = SharingTally()
                var through = buffer.through
                if buffer.continuous {
                    for entry in buffer.entries { tally.count(entry) }
                    folded = buffer.entries.count
                } else {
                    // Read the committed records past the mark (bounded: what the last fold left).
                    let mark = try Int64.fetchOne(db, sql: "SELECT seq FROM log_follower WHERE stream = ?", arguments: [stream]) ?? 0
                    through = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM share_log WHERE stream = ?", arguments: [stream]) ?? mark
                    let bodies = try String.fetchCursor(db, sql: """
                        SELECT body FROM share_log WHERE stream = ? AND seq > ? AND kind = 'share' ORDER BY seq
                        """, arguments: [stream, mark])
                    while let body = try bodies.next() {
                        if let record = FoldRecord(body: body) { tally.count(record); folded += 1 }
                    }
                }
                learned = try tally.write(db, known: knownSubjectRows.withLock { $0.rows })
                try db.cachedStatement(sql: """
                    INSERT INTO log_follower (stream, seq) VALUES (?, ?) ON CONFLICT DO UPDATE SET seq = max(seq, excluded.seq)
                    """).execute(arguments: [stream, through])
                if let resolvedThrough {
                    try db.cachedStatement(sql: "UPDATE log_follower SET resolved = max(resolved, ?) WHERE stream = ?")
                        .execute(arguments: [resolvedThrough, stream])
                }
            }
        } catch {
            // Nothing was written: the next fold reads the records past the stored mark.
            follower.withLock { $0.continuous = false }
            logger.error("share log follower could not fold",
                         metadata: ["log.stream": "\(stream)", "error.message": "\(LogUnavailable.sqlite(error, during: "folding the aggregates").message)"])
            return 0
        }
        if !buffer.continuous { follower.withLock { $0.continuous = true } }
        if !learned.isEmpty { knownSubjectRows.withLock { $0.learn(learned) } }
        return folded
    }

    /// The exposure aggregates of every share record already logged (the migration that adds them).
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

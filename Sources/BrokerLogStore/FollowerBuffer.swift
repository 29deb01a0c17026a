import BrokerCore
import BrokerService

/// When a store's next fold runs.
package enum FoldSchedule: Sendable {
    case none
    case now
    case after(Duration)
}

/// What a store's log follower has been handed and not yet folded (both stores; see
/// `SQLiteStore+Follower`): the share entries of committed batches, and the intents of this
/// process still waiting for their outcome, for the resolved mark.
package struct FollowerBuffer: Sendable {
    /// Folds run at most `delay` after the first entry they fold, and at once when this many wait.
    package static let foldEvery = 512

    /// Share entries of committed batches, with their seq, in log order.
    package private(set) var entries: [(seq: Int64, entry: ShareEntry)] = []
    /// The seq of this stream's last committed record those batches reached.
    package private(set) var through: Int64 = 0
    /// The stored mark the entries continue from; `nil` when unknown (at open, after a failed
    /// fold): the next fold then reads the records past the stored mark instead.
    private var from: Int64?
    private var scheduled = false
    private var urgent = false
    /// One fold at a time, where nothing else serialises them (PostgreSQL; SQLite's writer queue does).
    package var folding = false
    package var closed = false
    /// How long after the first unfolded commit the fold runs at the latest; `nil`: only when asked
    /// (`foldNow`, tests).
    package var delay: Duration? = .seconds(1)
    /// The allowed or redacted intents committed by this process still without an outcome (share id → seq).
    private var unresolved: [String: Int64] = [:]
    /// Start has resolved every earlier intent of the stream: only then does `unresolved` know every
    /// intent without an outcome, and may the resolved mark advance.
    package var resolvedKnown = false

    package init() {}

    /// Takes a committed batch: its share entries, the share ids it wrote outcomes for, and the
    /// seq it reached. Returns when the next fold should run.
    package mutating func receive(_ committed: [(seq: Int64, entry: ShareEntry)], resolved: [String],
                                  through seq: Int64) -> FoldSchedule {
        entries.append(contentsOf: committed)
        for (seq, entry) in committed where entry.decision != .blocked { unresolved[entry.shareID] = seq }
        for shareID in resolved { unresolved.removeValue(forKey: shareID) }
        through = max(through, seq)
        guard !closed, let delay else { return .none }
        if entries.count >= Self.foldEvery, !urgent { urgent = true; return .now }
        if scheduled { return .none }
        scheduled = true
        return .after(delay)
    }

    /// A fold's share of the buffer, or `nil` when there is nothing to fold.
    package struct Taken: Sendable {
        package let entries: [(seq: Int64, entry: ShareEntry)]
        package let from: Int64?
        package let through: Int64
        /// Where the resolved mark may move: just before the oldest intent still waiting.
        package let resolvedThrough: Int64?

        /// The entries to fold over the stored `mark`; `nil` when they do not continue it and the
        /// records past the mark must be read from the log instead.
        package func entries(after mark: Int64) -> [ShareEntry]? {
            guard from == mark else { return nil }
            return entries.filter { $0.seq > mark }.map(\.entry)
        }
    }

    package mutating func take() -> Taken? {
        var resolvedThrough: Int64?
        if resolvedKnown, from != nil { resolvedThrough = unresolved.values.min().map { $0 - 1 } ?? through }
        let taken = Taken(entries: entries, from: from, through: through, resolvedThrough: resolvedThrough)
        entries = []
        scheduled = false
        urgent = false
        guard !closed, !(from != nil && taken.entries.isEmpty && resolvedThrough == nil) else { return nil }
        return taken
    }

    /// The fold committed everything up to `seq`: entries committed meanwhile continue from there
    /// (a catch-up may already have read some of them from the log).
    package mutating func folded(through seq: Int64) {
        from = seq
        entries.removeAll { $0.seq <= seq }
    }

    /// The fold failed: the next one reads the records past the stored mark.
    package mutating func failed() { from = nil }
}

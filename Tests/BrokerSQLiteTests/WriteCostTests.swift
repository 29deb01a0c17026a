import BrokerCore
import BrokerService
import BrokerLogStore
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

/// The write path's cost in SQL statements, counted by SQLite itself (`sqlite3_trace_v2` on
/// the writer connection), so a later change cannot quietly put work back on the hot path.
///
/// The design's numbers, for an allowed share under one grant with revocation keys:
/// - per share: the intent record, its `share_grants` row, its sealed keys, the outcome record (4);
/// - per batch: `BEGIN` and `COMMIT`, one fence lookup per distinct grant, one `sharing_daily`
///   upsert per distinct (day, provider, purpose, category, action), and a subject's sharing
///   rows only the first time this store commits them.
@Suite struct WriteCostTests {
    static let perShare = 4

    func entry(_ n: Int, grant: String = "g-1", subject: String = "subject-1") -> ShareEntry {
        var entry = makeEntry(n, grantIDs: [grant], subject: subject)
        entry.revocationKeys = SealedRevocationKeys(sealed: Array(repeating: 7, count: 48), keySet: 7,
                                                    expiresAt: baseTime.addingTimeInterval(86_400))
        return entry
    }

    @Test func oneShareAtATimeRunsExactlyTheDesignedStatements() async throws {
        try await withStore { store, _ in
            store.setFoldDelay(nil)
            _ = try await store.appendIntent(entry(0))
            _ = try await store.appendOutcome(ShareOutcome(shareID: "share-0", time: baseTime, result: .ok, upstreamStatus: 200))
            let before = store.commitStats
            for n in 1...20 {
                _ = try await store.appendIntent(entry(n))
                _ = try await store.appendOutcome(ShareOutcome(shareID: "share-\(n)", time: baseTime, result: .ok, upstreamStatus: 200))
            }
            let after = store.commitStats
            // Intent batch: BEGIN, fence, record, share_grants, keys, COMMIT; outcome batch: BEGIN, record, COMMIT.
            // The aggregates are the follower's, folded apart.
            #expect(after.statements - before.statements == 20 * 9)
            #expect(after.commits - before.commits == 40)
            // One fold for all of them: BEGIN, the mark read, one statement per aggregate row, the mark, COMMIT.
            #expect(try await store.foldNow() == 21)
            let folded = store.commitStats.statements - after.statements
            let keys = try await store.pool.read { db in
                try Int.fetchOne(db, sql: """
                    SELECT (SELECT count(*) FROM sharing_daily) + (SELECT count(*) FROM sharing_subjects)
                         + (SELECT count(*) FROM sharing_subject_span) + (SELECT count(*) FROM exposure_span)
                         + (SELECT count(*) FROM exposure_daily)
                    """)!
            }
            #expect(folded == keys + 4, "\(folded) statements to fold \(keys) aggregate rows")
            #expect(try await store.verify().isIntact)
        }
    }

    @Test func concurrentSharesStayWithinTheDesignedStatements() async throws {
        try await withStore { store, _ in
            let count = 64
            store.setFoldDelay(nil)
            let before = store.commitStats
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<count {
                    group.addTask {
                        // Four subjects under four grants: a batch checks each grant once.
                        _ = try await store.appendIntent(entry(n, grant: "g-\(n % 4)", subject: "subject-\(n % 4)"))
                    }
                }
                try await group.waitForAll()
            }
            _ = try await store.appendOutcomes((0..<count).map {
                ShareOutcome(shareID: "share-\($0)", time: baseTime, result: .ok, upstreamStatus: 200)
            })
            let after = store.commitStats
            let commits = after.commits - before.commits
            let statements = after.statements - before.statements
            // Per batch at most: BEGIN, COMMIT, 4 fence lookups; once each, the intents' and the outcomes'
            // dictionary (`RecordPacking`): a lookup and an insert.
            let allowed = Self.perShare * count + commits * (2 + 4) + 2 * 2
            #expect(statements <= allowed, "\(statements) statements for \(count) shares in \(commits) commits")
            #expect(commits < count, "group commit: \(commits) commits for \(count) intents")
            // Exact before the fold (the records past the mark are read) and after it.
            #expect(try await store.sharingList(since: nil, until: nil).first?.sent == count)
            #expect(try await store.sharingList(since: nil, until: nil).first?.subjects == 4)
            #expect(try await store.foldNow() == count)
            #expect(try await store.sharingList(since: nil, until: nil).first?.sent == count)
            #expect(try await store.sharingList(since: nil, until: nil).first?.subjects == 4)
        }
    }

    /// Outcome records stay out of the share indexes (two B-trees per outcome, not six), and the
    /// queries those indexes serve still use them.
    @Test func outcomesStayOutOfTheShareIndexes() async throws {
        try await withStore { store, _ in
            _ = try await store.appendIntent(entry(1))
            _ = try await store.appendOutcome(ShareOutcome(shareID: "share-1", time: baseTime, result: .ok, upstreamStatus: 200))
            try await store.pool.read { db in
                #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM share_log") == 2)
                for (index, condition) in [("share_log_subject_seq", "subject IS NOT NULL"),
                                           ("share_log_provider_seq", "provider IS NOT NULL"),
                                           ("share_log_time", "kind = 'share'")] {
                    let entries = try Int.fetchOne(db, sql: "SELECT count(*) FROM share_log INDEXED BY \(index) WHERE \(condition)")
                    #expect(entries == 1, "\(index) holds the share only")
                }
                for (sql, index) in [("SELECT seq FROM share_log WHERE subject = 's' AND time_us > 0", "share_log_subject_seq"),
                                     ("SELECT min(seq) FROM share_log WHERE kind = 'share' AND time_us >= 0 AND time_us < 9", "share_log_time")] {
                    let plan = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String? ?? "" }.joined(separator: " | ")
                    #expect(plan.contains(index), "\(sql): \(plan)")
                }
            }
        }
    }

    /// A record's insert checks its constraints in place: SQLite builds a temporary B-tree for every
    /// `IN (three or more constants)` it evaluates, per row (migration v14 writes them as comparisons).
    /// The constraints still refuse what they refused.
    @Test func aRecordInsertBuildsNoTemporaryTree() async throws {
        try await withStore { store, directory in
            _ = try await store.appendIntent(entry(1))
            try await store.pool.read { db in
                let nulls = StatementArguments(Array(repeating: DatabaseValue.null, count: 14))
                let program = try Row.fetchAll(db, sql: "EXPLAIN " + SQLiteStore.insertSQL, arguments: nulls)
                    .map { $0["opcode"] as String? ?? "" }
                #expect(!program.isEmpty)
                #expect(!program.contains("OpenEphemeral"), "\(program)")
            }
            func insert(_ seq: Int, kind: String, decision: String) throws {
                try tamper(directory, """
                    INSERT INTO share_log (stream, seq, kind, share_id, time_us, provider, decision, caller, channel, body, prev_hash, hash)
                    VALUES ('node-9', \(seq), '\(kind)', 's-\(seq)', 0, 'p', '\(decision)', 'c', 'proxy', '{}', zeroblob(32), zeroblob(32))
                    """)
            }
            try insert(1, kind: "share", decision: "redacted")
            #expect(throws: (any Error).self) { try insert(2, kind: "bogus", decision: "allowed") }
            #expect(throws: (any Error).self) { try insert(3, kind: "share", decision: "maybe") }
        }
    }

    /// Start looks for intents without an outcome past the follower's resolved mark only: the mark
    /// advances to just before the oldest intent still waiting once start has resolved the stream.
    @Test func theResolvedMarkBoundsTheSearchForDanglingIntents() async throws {
        try await withStore { store, _ in
            store.setFoldDelay(nil)
            #expect(try await store.resolveDanglingIntents(at: baseTime) == 0)
            for n in 1...5 {
                _ = try await store.appendIntent(entry(n))
                if n != 4 { _ = try await store.appendOutcome(ShareOutcome(shareID: "share-\(n)", time: baseTime, result: .ok)) }
            }
            try await store.foldNow()
            let (seq, resolved, intent4) = try await store.pool.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT seq, resolved FROM log_follower WHERE stream = 'node-1'")!
                let seq4 = try Int64.fetchOne(db, sql: "SELECT seq FROM share_log WHERE share_id = 'share-4' AND kind = 'share'")!
                return (row[0] as Int64, row[1] as Int64, seq4)
            }
            #expect(seq == 9 && resolved == intent4 - 1, "seq \(seq), resolved \(resolved), share-4 at \(intent4)")
            _ = try await store.appendOutcome(ShareOutcome(shareID: "share-4", time: baseTime, result: .ok))
            try await store.foldNow()
            let after = try await store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT resolved FROM log_follower")! }
            #expect(after == 10, "every intent has its outcome: the mark is the stream's last record")
        }
    }

    /// The records past the follower's mark are one key range of the log per stream, whatever the
    /// query wraps around them (not a walk of every share by another index).
    @Test func theFollowersTailIsAKeyRange() async throws {
        try await withStore { store, _ in
            try await appendIntents(store, count: 3)
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, sql: """
                    EXPLAIN QUERY PLAN SELECT count(*) FROM (\(SQLiteStore.followerTail) AND l.provider = 'p' AND l.time_us >= 0
                        AND l.time_us < 9) WHERE subject > ''
                    """)
                    .map { $0["detail"] as String? ?? "" }
            }
            #expect(plan.first == "SCAN m", "the marks outside: \(plan)")
            #expect(plan.contains { $0.contains("share_log") && $0.contains("(stream=? AND seq>?)") }, "\(plan)")
        }
    }

    /// A page of a subject's history, oldest or newest first, with or without a cursor, is one
    /// range of the subject index: no sort of the subject's whole history (no temp B-tree).
    @Test func historyPagesAreOneIndexRange() async throws {
        try await withStore { store, _ in
            try await appendIntents(store, count: 3)
            let cursor = ShareCursor(stream: "node-1", seq: 2)
            for newest in [false, true] {
                var filter = ShareFilter()
                filter.subject = "subject-1"
                filter.newestFirst = newest
                var windowed = filter
                windowed.since = baseTime
                for (query, ranges) in [(filter, nil), (windowed, [(stream: "node-1", low: Int64(1), high: Int64(3))])] {
                    for page in [nil, cursor] {
                        let (sql, values) = try #require(SQLiteStore.sharesQuery(query, after: page, limit: 20, ranges: ranges))
                        let plan = try await store.pool.read { db in
                            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: StatementArguments(values))
                                .map { $0["detail"] as String? ?? "" }.joined(separator: " | ")
                        }
                        #expect(plan.contains("share_log_subject_seq"), "\(sql): \(plan)")
                        #expect(!plan.contains("TEMP B-TREE"), "\(sql): \(plan)")
                    }
                }
            }
            // And the pages themselves: newest first, then on from the cursor.
            var newest = ShareFilter()
            newest.subject = "subject-1"
            newest.newestFirst = true
            let first = try await store.shares(newest, after: nil, limit: 2)
            #expect(first.map(\.position.seq) == [3, 2])
            let next = try await store.shares(newest, after: ShareCursor(stream: "node-1", seq: 2), limit: 2)
            #expect(next.map(\.position.seq) == [1])
        }
    }
}

@Suite struct CommitLatencyTests {
    @Test func quantilesAreTheUpperEdgesOfPowerOfTwoBuckets() {
        let latency = CommitLatency()
        #expect(latency.quantile(0.5) == 0)
        for _ in 0..<98 { latency.record(.microseconds(300)) }    // bucket (256, 512]
        latency.record(.milliseconds(3))                          // (2048, 4096]
        latency.record(.milliseconds(40))                         // (32768, 65536]
        #expect(latency.quantile(0.5) == 512)
        #expect(latency.quantile(0.99) == 4096)
        #expect(latency.quantile(1.0) == 65536)
    }

    @Test func aStoreReportsItsCommitLatency() async throws {
        try await withStore { store, _ in
            try await appendIntents(store, count: 5)
            let stats = store.commitStats
            #expect(stats.commitP50Us > 0 && stats.commitP99Us >= stats.commitP50Us)
        }
    }
}

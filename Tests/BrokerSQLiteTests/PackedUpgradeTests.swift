import BrokerLogStore
import BrokerService
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

/// A log written before packed records (migration v15): text bodies and a stored `prev_hash` in
/// every row. Opening it migrates without rewriting a row; new records are packed after the old
/// ones, and the one chain verifies across the boundary, in one range and in parallel ranges.
@Suite struct PackedUpgradeTests {
    @Test func aLogFromBeforePackingVerifiesWithPackedRecordsAfterIt() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: (directory.databasePath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        // The file as v14 left it, with six records written the old way.
        let queue = try DatabaseQueue(path: directory.databasePath)
        try SQLiteSchema.migrator.migrate(queue, upTo: "v14-share-log-checks")
        try await queue.write { db in
            var tip = ChainTip.genesis
            for n in 1...6 {
                let entry = makeEntry(n)
                let parts = LogRow(entry).canonicalParts(stream: "node-1")
                let record = tip.next(parts, stream: "node-1")
                try db.execute(sql: """
                    INSERT INTO share_log (stream, seq, kind, share_id, time_us, subject, provider, purpose, decision,
                                           caller, channel, body, prev_hash, hash)
                    VALUES ('node-1', ?, 'share', ?, ?, ?, ?, ?, 'allowed', ?, 'proxy', ?, ?, ?)
                    """, arguments: [Int64(n), entry.shareID, Microseconds.from(entry.time), entry.subject, entry.provider,
                                     entry.purpose, entry.caller, String(decoding: record.body, as: UTF8.self),
                                     record.prevHash, record.hash])
            }
        }
        try queue.close()

        let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        try await appendIntents(store, count: 6, from: 7)
        let (types, copies) = try await store.pool.read { db in
            (try String.fetchAll(db, sql: "SELECT typeof(body) FROM share_log ORDER BY seq"),
             try Int.fetchOne(db, sql: "SELECT count(prev_hash) FROM share_log")!)
        }
        #expect(types == Array(repeating: "text", count: 6) + Array(repeating: "blob", count: 6))
        #expect(copies == 6, "old rows keep their prev_hash copy; new rows store none")
        let records = try await store.records(stream: "node-1")
        #expect(records.map(\.seq) == Array(1...12))
        #expect(zip(records.dropFirst(), records).allSatisfy { $0.prevHash == $1.hash })
        for record in records {
            #expect(record.body.contains("\"share_id\":\"share-\(record.seq)\""))
        }
        let page = try await store.shares(ShareFilter(subject: "subject-1"), after: nil, limit: 20)
        #expect(page.count == 12)
        #expect(try await store.verify().isIntact)
        try store.close()
        // Ranges of two records each: some start on an old row, one on the first packed row.
        let queues = try (0..<3).map { _ in try DatabaseQueue(path: directory.databasePath) }
        let parallel = try await LogVerifier.verify(queues, checkpoints: [], publicKey: nil, minimumRange: 2, progress: nil)
        #expect(parallel.isIntact && parallel.records == 12)
        // An old row's stored copy is still checked.
        try tamper(directory, "UPDATE share_log SET prev_hash = zeroblob(32) WHERE seq = 4")
        #expect(try await SQLiteStore.verify(path: directory.databasePath).firstBad == BadRecord(stream: "node-1", seq: 4, reason: .prevHashMismatch))
    }
}

import BrokerFields
import BrokerService
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

@Suite struct VerifyTests {
    /// A store with 10 records on `node-1` and 3 on `node-2`, then `sql` applied as tampering.
    private func verifyAfter(_ sql: String?, unpacking: Bool = true) async throws -> (VerifyReport, VerifyReport) {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        try await appendIntents(store, count: 10)
        let other = try SQLiteStore(path: directory.databasePath, stream: "node-2", logger: testLogger)
        try await appendIntents(other, count: 3, from: 100)
        if let sql { try tamper(directory, sql, unpacking: unpacking) }
        let report = try await store.verify()
        let offline = try await SQLiteStore.verify(path: directory.databasePath)
        return (report, offline)
    }

    @Test func anUntouchedChainVerifies() async throws {
        let progress = Locked<[Int64]>([])
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        try await appendIntents(store, count: 5)
        let report = try await store.verify { checked, total in
            #expect(total == 5)
            progress.withLock { $0.append(checked) }
        }
        #expect(report.isIntact)
        #expect(report.streams == 1 && report.records == 5)
        #expect(report.recordsPerSecond > 0)
        #expect(progress.withLock { $0 }.last == 5)

        let (both, offline) = try await verifyAfter(nil)
        #expect(both.isIntact && offline.isIntact)
        #expect(both.streams == 2 && both.records == 13)
    }

    @Test func oneAlteredByteOfABodyIsFound() async throws {
        let (report, offline) = try await verifyAfter(
            "UPDATE share_log SET body = replace(body, '\"operation\":\"send\"', '\"operation\":\"sent\"') WHERE stream = 'node-1' AND seq = 4")
        #expect(report.firstBad == BadRecord(stream: "node-1", seq: 4, reason: .hashMismatch))
        #expect(offline.firstBad == report.firstBad)
    }

    /// Records are stored packed (`RecordPacking`): a changed byte of a packed body, or of the
    /// dictionary it unpacks against, changes the canonical bytes, which no longer hash to the chain.
    @Test func anAlteredPackedBodyOrDictionaryIsFound() async throws {
        let (body, offline) = try await verifyAfter("""
            UPDATE share_log SET body = substr(body, 1, 20) || CAST(x'00' AS BLOB) || substr(body, 22)
            WHERE stream = 'node-1' AND seq = 4 AND typeof(body) = 'blob'
            """, unpacking: false)
        #expect(body.firstBad == BadRecord(stream: "node-1", seq: 4, reason: .hashMismatch))
        #expect(offline.firstBad == body.firstBad)
        // The intents' dictionary (every record here is an intent of one operation): the first record breaks.
        let (dictionary, _) = try await verifyAfter("""
            DROP TRIGGER log_dictionaries_no_update;
            UPDATE log_dictionaries SET bytes = CAST(replace(CAST(bytes AS TEXT), 'push-service', 'push-servicf') AS BLOB)
            """, unpacking: false)
        #expect(dictionary.firstBad == BadRecord(stream: "node-1", seq: 1, reason: .hashMismatch))
        // A second row under the same id (the key dropped), the altered one first, as a reader's lookup would
        // find it: verify uses neither, so the records naming that id fail.
        let (twice, _) = try await verifyAfter("""
            CREATE TABLE saved AS SELECT * FROM log_dictionaries;
            DROP TABLE log_dictionaries;
            CREATE TABLE log_dictionaries (id INTEGER, bytes BLOB);
            INSERT INTO log_dictionaries SELECT id, CAST(replace(CAST(bytes AS TEXT), 'push-service', 'push-servicf') AS BLOB) FROM saved;
            INSERT INTO log_dictionaries SELECT * FROM saved;
            """, unpacking: false)
        #expect(twice.firstBad == BadRecord(stream: "node-1", seq: 1, reason: .hashMismatch))
        // A record that names a dictionary the store does not hold cannot be read back.
        let (missing, _) = try await verifyAfter("UPDATE share_log SET dict = 42 WHERE stream = 'node-2' AND seq = 2", unpacking: false)
        #expect(missing.firstBad == BadRecord(stream: "node-2", seq: 2, reason: .hashMismatch))
    }

    @Test func anAlteredIndexedColumnIsFound() async throws {
        let (report, _) = try await verifyAfter(
            "UPDATE share_log SET provider = 'other-provider' WHERE stream = 'node-2' AND seq = 2")
        #expect(report.firstBad == BadRecord(stream: "node-2", seq: 2, reason: .columnMismatch))
        let (subject, _) = try await verifyAfter("UPDATE share_log SET subject = NULL WHERE stream = 'node-1' AND seq = 9")
        #expect(subject.firstBad == BadRecord(stream: "node-1", seq: 9, reason: .columnMismatch))
    }

    @Test func aRemovedRecordIsFound() async throws {
        let (report, _) = try await verifyAfter("DELETE FROM share_log WHERE stream = 'node-1' AND seq = 5")
        #expect(report.firstBad == BadRecord(stream: "node-1", seq: 5, reason: .seqGap))
    }

    @Test func swappedBodiesAreFound() async throws {
        let (report, _) = try await verifyAfter("""
            UPDATE share_log SET body = CASE seq
                WHEN 3 THEN (SELECT body FROM share_log WHERE stream = 'node-1' AND seq = 6)
                ELSE (SELECT body FROM share_log WHERE stream = 'node-1' AND seq = 3) END
            WHERE stream = 'node-1' AND seq IN (3, 6)
            """)
        #expect(report.firstBad == BadRecord(stream: "node-1", seq: 3, reason: .hashMismatch))
    }

    @Test func aReorderedOrRelinkedRecordIsFound() async throws {
        // Swap two whole records' positions (body, hash and all): the links break. Record 8's hash was
        // made from record 7's, not from 6's (records keep no copy of the previous hash since 2026-12-08).
        let (report, _) = try await verifyAfter("""
            UPDATE share_log SET seq = seq + 1000 WHERE stream = 'node-1' AND seq IN (7, 8);
            UPDATE share_log SET seq = CASE seq WHEN 1007 THEN 8 ELSE 7 END WHERE stream = 'node-1' AND seq IN (1007, 1008);
            """)
        #expect(report.firstBad == BadRecord(stream: "node-1", seq: 7, reason: .hashMismatch))
    }

    @Test func verifyingAMissingFileFails() async throws {
        await #expect(throws: LogUnavailable.self) {
            try await SQLiteStore.verify(path: "/nonexistent/broker.sqlite")
        }
    }

    /// Long streams are checked in parallel ranges: a break inside a range, at a range's first record,
    /// and a relinked boundary are all found, with the same answer as one range.
    @Test func parallelRangesFindWhatOneRangeFinds() async throws {
        for (sql, expected) in [
            ("DELETE FROM share_log WHERE stream = 'node-1' AND seq = 6", BadRecord(stream: "node-1", seq: 6, reason: .seqGap)),
            ("UPDATE share_log SET hash = zeroblob(32) WHERE stream = 'node-1' AND seq = 8", BadRecord(stream: "node-1", seq: 8, reason: .hashMismatch)),
            ("UPDATE share_log SET prev_hash = zeroblob(32) WHERE stream = 'node-1' AND seq = 6", BadRecord(stream: "node-1", seq: 6, reason: .prevHashMismatch)),
        ] as [(String, BadRecord)] {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
            try await appendIntents(store, count: 10)
            try store.close()
            try tamper(directory, sql)
            let queues = try (0..<2).map { _ in try DatabaseQueue(path: directory.databasePath) }
            let parallel = try await LogVerifier.verify(queues, checkpoints: [], publicKey: nil, minimumRange: 2, progress: nil)
            let single = try await LogVerifier.verify(Array(queues.prefix(1)), checkpoints: [], publicKey: nil, minimumRange: 1_000,
                                                      progress: nil)
            #expect(parallel.firstBad == expected, "\(sql)")
            #expect(single.firstBad == expected, "\(sql)")
        }
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        try await appendIntents(store, count: 10)
        let intact = try await LogVerifier.verify([store.pool, store.pool], checkpoints: [], publicKey: nil, minimumRange: 2, progress: nil)
        #expect(intact.isIntact && intact.records == 10)
    }
}

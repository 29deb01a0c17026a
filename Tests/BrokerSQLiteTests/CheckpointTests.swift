import BrokerFields
import BrokerService
import BrokerLogStore
@testable import BrokerSQLite
@preconcurrency import Crypto
import Foundation
import GRDB
import Testing

/// Issue 4: Ed25519-signed checkpoints, and what `verify` catches with them that the chain alone cannot.
@Suite struct CheckpointTests {
    let signer = CheckpointSigner(secret: Array("test-checkpoint-key".utf8))

    /// A store with checkpoints every 10 records and 35 records, closed with a checkpoint.
    func signedStore(_ directory: TempDirectory) async throws -> SQLiteStore {
        let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        store.enableCheckpoints(signer: signer, every: 10)
        _ = try await appendIntents(store, count: 35)
        try await store.checkpointNow()
        return store
    }

    @Test func checkpointsAreSignedEveryNRecordsAndAtShutdown() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try await signedStore(directory)
        let checkpoints = try await store.checkpoints()
        #expect(checkpoints.map(\.size) == [10, 20, 30, 35])
        #expect(checkpoints.allSatisfy { $0.isSigned(by: signer.publicKey) && $0.keyID == signer.keyID })
        let records = try await store.records(stream: "node-1")
        #expect(checkpoints.last?.head == records.last?.hash)
        try await store.checkpointNow()
        #expect(try await store.checkpoints().count == 4, "no second checkpoint of the same head")
        let report = try await store.verify(publicKey: signer.publicKey)
        #expect(report.isIntact && report.checkpoints == 4 && report.signaturesChecked)
        let other = CheckpointSigner(secret: Array("another-key".utf8))
        let wrongKey = try await store.verify(publicKey: other.publicKey)
        #expect(wrongKey.firstBad?.reason == .checkpointSignature)
    }

    @Test func aTruncatedLogFailsAgainstItsCheckpoint() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try await signedStore(directory).close()
        try tamper(directory, "DELETE FROM share_log WHERE stream = 'node-1' AND seq > 32")
        let report = try await SQLiteStore.verify(path: directory.databasePath, publicKey: signer.publicKey)
        #expect(report.firstBad == BadRecord(stream: "node-1", seq: 35, reason: .truncated))
    }

    @Test func aRewrittenChainFailsAgainstTheSignedHead() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try await signedStore(directory).close()
        // The attacker alters record 5 and recomputes every hash after it: the chain holds again.
        let queue = try DatabaseQueue(path: directory.databasePath)
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "DROP TRIGGER share_log_no_update")
            try unpackBodies(db)
            var prev: Data = try Data.fetchOne(db, sql: "SELECT hash FROM share_log WHERE stream = 'node-1' AND seq = 4")!
            for seq in 5...35 {
                var body: String = try String.fetchOne(db, sql: "SELECT body FROM share_log WHERE stream = 'node-1' AND seq = ?", arguments: [seq])!
                if seq == 5 { body = body.replacingOccurrences(of: "\"decision\":\"allowed\"", with: "\"decision\":\"blocked\"") }
                let hash = ChainHash.hash(prev: prev, body: Array(body.utf8))
                try db.execute(sql: "UPDATE share_log SET body = ?, hash = ?, decision = ? WHERE stream = 'node-1' AND seq = ?",
                               arguments: [body, hash, seq == 5 ? "blocked" : "allowed", seq])
                prev = hash
            }
        }
        try queue.close()
        let chainOnly = try await SQLiteStore.verify(path: directory.databasePath, publicKey: nil)
        #expect(chainOnly.firstBad?.reason == .checkpointMismatch, "the stored checkpoint at 10 names the old head")
        #expect(chainOnly.firstBad?.seq == 10)
    }

    @Test func aRolledBackCopyFailsOnlyAgainstExportedCheckpoints() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        store.enableCheckpoints(signer: signer, every: 10)
        _ = try await appendIntents(store, count: 20)
        let old = directory.url.appendingPathComponent("old.sqlite").path
        try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [old]) }
        _ = try await appendIntents(store, count: 15, from: 21)
        try await store.checkpointNow()
        let exported = try await store.checkpoints()

        let alone = try await SQLiteStore.verify(path: old, publicKey: signer.publicKey)
        #expect(alone.isIntact, "an old copy is consistent with itself")
        let against = try await SQLiteStore.verify(path: old, checkpoints: exported, publicKey: signer.publicKey)
        #expect(against.firstBad == BadRecord(stream: "node-1", seq: 30, reason: .truncated))

        // A forged exported checkpoint does not pass either.
        var forged = exported
        forged[0].head = String(repeating: "0", count: 64)
        let bad = try await SQLiteStore.verify(path: directory.databasePath, checkpoints: forged, publicKey: signer.publicKey)
        #expect(bad.firstBad?.reason == .checkpointSignature)
        let unsignedCheck = try await SQLiteStore.verify(path: directory.databasePath, checkpoints: forged, publicKey: nil)
        #expect(unsignedCheck.firstBad?.reason == .checkpointMismatch)
    }
}

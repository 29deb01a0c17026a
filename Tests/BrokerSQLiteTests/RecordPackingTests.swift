import BrokerLogStore
import BrokerService
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

/// Records are stored packed against a dictionary (`RecordPacking`, `LogDictionaries`); every
/// reader gets the canonical bytes back, byte for byte.
@Suite struct RecordPackingTests {
    @Test func aPackedBodyUnpacksToItsCanonicalBytes() throws {
        let dictionaries = LogDictionaries(stream: "node-1")
        for n in [1, 99, 12_345_678] {
            let entry = makeEntry(n, fieldCount: 1 + n % 7)
            let parts = dictionaries.packedParts(entry)
            let packed = try #require(parts.packed)
            for seq: Int64 in [1, 9, 10, 4_000_000_001] {
                let unpacked = RecordPacking.unpack(packed.bytes, seq: seq, dictionary: packed.dictionary.bytes)
                #expect(unpacked == LogRow(entry).canonicalBytes(stream: "node-1", seq: seq))
            }
            // Another dictionary, a cut or a lengthened body: not these bytes.
            let other = LogDictionary(bytes: Array("{\"something\":\"else\"}".utf8))
            #expect(RecordPacking.unpack(packed.bytes, seq: 1, dictionary: other.bytes)
                    != LogRow(entry).canonicalBytes(stream: "node-1", seq: 1))
            #expect(RecordPacking.unpack(Array(packed.bytes.dropLast(3)), seq: 1, dictionary: packed.dictionary.bytes) == nil)
            #expect(RecordPacking.unpack(packed.bytes + [1, 2, 3], seq: 1, dictionary: packed.dictionary.bytes) == nil)
        }
        let outcome = ShareOutcome(shareID: "share-1", time: baseTime, result: .error, upstreamStatus: 503, latencyMs: 1200,
                                   error: "upstream said no")
        let parts = dictionaries.packedParts(outcome)
        let packed = try #require(parts.packed)
        #expect(RecordPacking.unpack(packed.bytes, seq: 7, dictionary: packed.dictionary.bytes)
                == LogRow(outcome).canonicalBytes(stream: "node-1", seq: 7))
    }

    /// The template holds what shares of one operation have in common, never who or what was shared.
    @Test func aDictionaryHoldsNoSubjectShareOrFingerprint() {
        var entry = makeEntry(5, subject: "subject-secret-4711", fieldCount: 4)
        entry.fields[0].fingerprint = "PRINT-OF-A-VALUE"
        // Keys the caller chose are logged as keyed prints (`SharePipeline.loggedPath`).
        entry.fields[2].path = "contacts.<k:KEYPRINT0001>.name"
        entry.fields[3].path = "<undeclared:UNDECLARED000001>"
        let dictionary = LogDictionaries(stream: "node-1").dictionary(for: entry)
        let text = String(decoding: dictionary.bytes, as: UTF8.self)
        for secret in ["subject-secret-4711", "share-5", "PRINT-OF-A-VALUE", "g-1", "KEYPRINT0001", "UNDECLARED000001"] {
            #expect(!text.contains(secret), "\(secret) is in the dictionary")
        }
        #expect(text.contains("message.token[0]") && text.contains("user.device.push_token") && text.contains("c0ffee"))
    }

    /// A row planted under a dictionary's id with other bytes (ids are content hashes) is not used:
    /// the records that would name it are stored as text, and the log goes on and verifies.
    @Test func aPlantedDictionaryRowIsNotUsed() async throws {
        try await withStore { store, _ in
            let outcomeDictionary = LogDictionaries(stream: "node-1").outcome
            try await store.pool.write { db in
                try db.execute(sql: "INSERT INTO log_dictionaries (id, bytes) VALUES (?, ?)",
                               arguments: [outcomeDictionary.id, Data("{\"planted\":1}".utf8)])
            }
            _ = try await store.appendIntent(makeEntry(1))
            _ = try await store.appendOutcome(ShareOutcome(shareID: "share-1", time: baseTime, result: .ok, upstreamStatus: 200))
            let types = try await store.pool.read { db in try String.fetchAll(db, sql: "SELECT typeof(body) FROM share_log ORDER BY seq") }
            #expect(types == ["blob", "text"])
            #expect(try await store.verify().isIntact)
            #expect(try await store.records(stream: "node-1").last?.body.contains("\"result\":\"ok\"") == true)
        }
    }

    /// What the store writes: a packed BLOB naming a stored dictionary, about a fifth of the text for a
    /// push-sized record, and read back (queries, `records`, verify) as the canonical text.
    @Test func theStoreWritesPackedRecordsAndReadsBackTheirText() async throws {
        try await withStore { store, _ in
            var entries: [ShareEntry] = []
            for n in 1...20 {
                var entry = makeEntry(n, fieldCount: 10)
                for i in entry.fields.indices { entry.fields[i].fingerprint = String(UUID().uuidString.prefix(22)) }
                entries.append(entry)
                _ = try await store.appendIntent(entry)
                _ = try await store.appendOutcome(ShareOutcome(shareID: entry.shareID, time: baseTime, result: .ok,
                                                               upstreamStatus: 200, latencyMs: 12))
            }
            let (types, stored, text, dictionaries) = try await store.pool.read { db in
                (try String.fetchAll(db, sql: "SELECT DISTINCT typeof(body) FROM share_log"),
                 try Int.fetchOne(db, sql: "SELECT sum(length(body)) FROM share_log WHERE kind = 'share'")!,
                 try Int.fetchOne(db, sql: "SELECT sum(length(CAST(\(SQLiteStore.bodyText("l")) AS BLOB))) FROM share_log l WHERE kind = 'share'")!,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM log_dictionaries")!)
            }
            #expect(types == ["blob"])
            #expect(dictionaries == 2, "one for the operation's intents, one for outcomes")
            #expect(stored * 4 < text, "packed \(stored) bytes for \(text) bytes of text")
            let records = try await store.records(stream: "node-1")
            for (index, entry) in entries.enumerated() {
                let record = records[index * 2]
                #expect(Array(record.body.utf8) == LogRow(entry).canonicalBytes(stream: "node-1", seq: record.seq))
            }
            #expect(zip(records.dropFirst(), records).allSatisfy { $0.prevHash == $1.hash })
            let page = try await store.shares(ShareFilter(subject: "subject-1"), after: nil, limit: 5)
            #expect(page.count == 5 && page[0].record.contains("\"share_id\":\"share-1\"") && page[0].outcome?.contains("\"ok\"") == true)
            #expect(try await store.verify().isIntact)
        }
    }
}

import BrokerCore
import BrokerFields
import BrokerLogStore
import BrokerPostgres
import BrokerService
import BrokerSQLite
import BrokerTesting
import Crypto
import Dispatch
import Foundation
import Logging
import PostgresNIO
import Testing

let storeLogger = Logger(label: "broker-store-tests")

/// The stores one test body runs against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A store under test: the log and grants, and its records as stored.
struct StoreUnderTest: Sendable {
    let kind: StoreKind
    let log: any ShareLog & GrantStore & RevocationStore & ShareQueries
    let records: @Sendable (String) async throws -> [StoredRecord]
    let close: @Sendable () async -> Void
    /// Folds what the log's follower has not folded yet, now.
    let fold: @Sendable () async throws -> Void
    /// Stops (nil) or sets the follower's automatic folds.
    let foldDelay: @Sendable (Duration?) -> Void
}

/// A fresh database for one test, of either kind: a new SQLite file in a temp folder, or a new
/// database on the test cluster (`scripts/with-postgres`, which `make test` runs `swift test` in).
struct TestDatabase: Sendable {
    let kind: StoreKind
    let sqlitePath: String?
    let postgres: PostgresLocation?

    static func make(_ kind: StoreKind) async throws -> TestDatabase {
        switch kind {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("broker-store-\(UUID().uuidString)")
            return TestDatabase(kind: kind, sqlitePath: folder.appendingPathComponent("broker.sqlite").path, postgres: nil)
        case .postgres:
            return TestDatabase(kind: kind, sqlitePath: nil, postgres: try await PostgresTestCluster.freshDatabase())
        }
    }

    func open(stream: String = "node-1", lease: Duration = .seconds(15)) async throws -> StoreUnderTest {
        switch kind {
        case .sqlite:
            let store = try SQLiteStore(path: sqlitePath!, stream: stream, logger: storeLogger)
            return StoreUnderTest(kind: kind, log: store, records: { try await store.records(stream: $0) },
                                  close: { try? store.close() }, fold: { try await store.foldNow() },
                                  foldDelay: { store.setFoldDelay($0) })
        case .postgres:
            let store = try await PostgresStore.open(postgres!, stream: stream, logger: storeLogger, lease: lease)
            return StoreUnderTest(kind: kind, log: store, records: { try await store.records(stream: $0) },
                                  close: { await store.close() }, fold: { try await store.foldNow() },
                                  foldDelay: { store.setFoldDelay($0) })
        }
    }

    func remove() {
        if let sqlitePath { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: sqlitePath).deletingLastPathComponent().path) }
    }
}

/// Runs `body` against a new store of `kind`, then closes it and removes its database.
func withStore<T>(_ kind: StoreKind, stream: String = "node-1",
                  _ body: (StoreUnderTest, TestDatabase) async throws -> T) async throws -> T {
    let database = try await TestDatabase.make(kind)
    defer { database.remove() }
    let store = try await database.open(stream: stream)
    do {
        let result = try await body(store, database)
        await store.close()
        return result
    } catch {
        await store.close()
        throw error
    }
}

let storeBaseTime = Date(timeIntervalSince1970: 1_726_000_000.123456)

func entry(_ n: Int, decision: ShareDecision.Verdict = .allowed, grantIDs: [String] = ["g-1"],
           subject: String = "subject-1", node: String = "node-1") -> ShareEntry {
    let fields = (0..<2).map { i in
        LoggedField(location: .body, path: "message.token[\(i)]", category: "user.device.push_token",
                    action: decision == .blocked ? .blocked : .sent, reason: decision == .blocked ? .consentMissing : nil,
                    fingerprint: String(repeating: "ab", count: 32))
    }
    return ShareEntry(
        shareID: "\(node)-share-\(n)", time: storeBaseTime.addingTimeInterval(Double(n)), node: node, caller: "push-service",
        channel: .proxy, provider: "demo-push", operation: "send", purpose: "essential.service.notifications.push",
        subject: subject, decision: decision, code: decision == .blocked ? .consentMissing : nil,
        reasons: decision == .blocked ? [.consentMissing] : [], fields: fields, grantIDs: grantIDs,
        contractVersion: "2024-09-30", contractHash: "c0ffee", adapterHash: "beef")
}

func grant(_ id: String, subject: String = "subject-1", categories: [String]? = ["user.device.push_token"],
           at offset: Double = 0) -> Grant {
    Grant(id: id, subject: subject, provider: "demo-push", purpose: "essential.service.notifications.push",
          categories: categories, evidence: "consent-screen v3", grantedAt: storeBaseTime.addingTimeInterval(offset))
}

extension IntentResult {
    var position: ChainPosition {
        switch self {
        case .committed(let position), .grantRevoked(_, let position): return position
        }
    }
}

/// Checks a stream as `log verify` does: seq from 1 without gaps, each record's `prev_hash` the
/// previous `hash`, each `hash` the SHA-256 of the previous hash's bytes and the body's.
func chainIsIntact(_ records: [StoredRecord]) -> Bool {
    var previous = Data(repeating: 0, count: 32)
    for (i, record) in records.enumerated() {
        guard record.seq == Int64(i + 1), record.prevHash == Hex.encode(previous) else { return false }
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: Data(record.body.utf8))
        let hash = Data(hasher.finalize())
        guard Hex.encode(hash) == record.hash else { return false }
        previous = hash
    }
    return true
}

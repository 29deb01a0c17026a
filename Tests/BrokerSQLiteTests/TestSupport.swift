import BrokerCore
import BrokerService
@testable import BrokerSQLite
import Foundation
import GRDB
import Logging

/// A fresh folder under the system temp directory, removed by `remove()`.
struct TempDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("broker-sqlite-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// A database path one folder down, so the store has to create the folder.
    var databasePath: String { url.appendingPathComponent("db/broker.sqlite").path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

let testLogger = Logger(label: "broker-sqlite-tests")

/// Runs `body` with a new store in a new temp folder, then removes the folder.
func withStore<T>(stream: String = "node-1",
                  _ body: (SQLiteStore, TempDirectory) async throws -> T) async throws -> T {
    let directory = try TempDirectory()
    defer { directory.remove() }
    let store = try SQLiteStore(path: directory.databasePath, stream: stream, logger: testLogger)
    return try await body(store, directory)
}

/// Raw SQL on the store's file through a separate connection, as an attacker
/// with file access would do it (the append-only triggers dropped first, and
/// every body unpacked to its text, so `sql` can edit bodies as text).
func tamper(_ directory: TempDirectory, _ sql: String, unpacking: Bool = true) throws {
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)   // the store's follower may be folding a moment
    let queue = try DatabaseQueue(path: directory.databasePath, configuration: configuration)
    try queue.writeWithoutTransaction { db in
        try db.execute(sql: """
            DROP TRIGGER IF EXISTS share_log_no_update;
            DROP TRIGGER IF EXISTS share_log_no_delete;
            """)
        if unpacking { try unpackBodies(db) }
        try db.execute(sql: sql)
    }
    try queue.close()
}

/// Stores every packed body as its canonical text (`dict` NULL): the same records, as verify sees them.
func unpackBodies(_ db: Database) throws {
    SQLiteStore.registerLogFunctions(db)
    try db.execute(sql: "UPDATE share_log SET body = \(SQLiteStore.bodyText("share_log")), dict = NULL WHERE dict IS NOT NULL")
}

let baseTime = Date(timeIntervalSince1970: 1_726_000_000.123456)

func makeEntry(_ n: Int, decision: ShareDecision.Verdict = .allowed, grantIDs: [String] = ["g-1"],
               subject: String = "subject-1", provider: String = "demo-push", fieldCount: Int = 2) -> ShareEntry {
    let fields = (0..<fieldCount).map { i in
        LoggedField(location: .body, path: "message.token[\(i)]", category: "user.device.push_token",
                    action: decision == .blocked ? .blocked : .sent, reason: decision == .blocked ? .consentMissing : nil,
                    fingerprint: String(repeating: "ab", count: 32))
    }
    return ShareEntry(
        shareID: "share-\(n)", time: baseTime.addingTimeInterval(Double(n)), node: "node-1", caller: "push-service",
        channel: .proxy, provider: provider, operation: "send", purpose: "essential.service.notifications.push",
        subject: subject, decision: decision, code: decision == .blocked ? .consentMissing : nil,
        reasons: decision == .blocked ? [.consentMissing] : [], fields: fields, grantIDs: grantIDs,
        contractVersion: "2024-09-30", contractHash: "c0ffee", adapterHash: "beef")
}

extension IntentResult {
    var position: ChainPosition {
        switch self {
        case .committed(let position), .grantRevoked(_, let position): return position
        }
    }
}

/// Appends `count` intents one after the other.
@discardableResult
func appendIntents(_ store: SQLiteStore, count: Int, from first: Int = 1) async throws -> [ChainPosition] {
    var positions: [ChainPosition] = []
    for n in first..<(first + count) { positions.append(try await store.appendIntent(makeEntry(n)).position) }
    return positions
}

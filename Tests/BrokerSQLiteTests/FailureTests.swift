import BrokerService
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

@Suite struct FailureTests {
    /// A genuine SQLite write failure that works as root too (chmod does not
    /// stop root): cap the writer's `max_page_count` at the current size, so
    /// the next insert that needs a page fails with SQLITE_FULL.
    @Test func aFullDatabaseFailsEveryWaiterWithLogUnavailableAndRecovers() async throws {
        try await withStore { store, _ in
            try await appendIntents(store, count: 2)
            try await store.pool.writeWithoutTransaction { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            }
            let secret = "subject-secret-4711"
            let failures = await withTaskGroup(of: LogUnavailable?.self) { group in
                for n in 10..<30 {
                    group.addTask {
                        do {
                            // Fingerprints that differ: a packed record is then as large as its prints, and needs pages.
                            var entry = makeEntry(n, subject: secret, fieldCount: 200)
                            for i in entry.fields.indices { entry.fields[i].fingerprint = UUID().uuidString + UUID().uuidString }
                            _ = try await store.appendIntent(entry)
                            return nil
                        } catch let error as LogUnavailable {
                            return error
                        } catch {
                            return LogUnavailable("unexpected error type: \(type(of: error))")
                        }
                    }
                }
                return await group.reduce(into: [LogUnavailable?]()) { $0.append($1) }
            }
            #expect(failures.count == 20)
            #expect(failures.allSatisfy { $0 != nil }, "every waiter is resumed with LogUnavailable")
            for failure in failures.compactMap({ $0 }) {
                #expect(failure.message.contains("SQLITE_FULL"))
                #expect(!failure.description.contains(secret))
            }

            // Space again: the chain continues without a gap from the failed batches.
            try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
            let next = try await store.appendIntent(makeEntry(3)).position
            #expect(next.seq == 3)
            #expect(try await store.verify().isIntact)
        }
    }

    @Test func aClosedStoreRefusesWrites() async throws {
        try await withStore { store, _ in
            try store.close()
            await #expect(throws: LogUnavailable.self) { try await store.appendIntent(makeEntry(1)) }
        }
    }

    @Test func aPathThatCannotBeADatabaseIsRefused() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        // The database's folder is a regular file: even root cannot create the database.
        let blocker = directory.url.appendingPathComponent("db")
        try Data("not a folder".utf8).write(to: blocker)
        #expect(throws: LogUnavailable.self) {
            _ = try SQLiteStore(path: directory.databasePath, stream: "node-1", logger: testLogger)
        }
    }
}

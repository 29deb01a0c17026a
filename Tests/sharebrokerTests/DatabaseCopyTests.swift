import BrokerPostgres
import BrokerTesting
import Foundation
import Testing

/// Issue 11: moving up from one node — `sharebroker db copy` from SQLite to PostgreSQL.
@Suite(.enabled(if: PostgresTestCluster.available)) struct DatabaseCopyTests {
    @Test func aSeededLogCopiesWithItsHashesAndVerifiesOnPostgres() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-copy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sqlite = directory.appendingPathComponent("broker.sqlite").path
        // In the test's own folder (its keys land there, not in the repository), with the repository's policy.
        let root = CheckCommandTests.root.path
        let seeded = try await offPool { try CheckCommandTests.run(["log", "seed", "--database", sqlite, "--records", "3000",
                                                                    "--adapters", root + "/adapters", "--contracts", root + "/contracts"],
                                                                   in: directory) }
        #expect(seeded.status == 0, "\(seeded.output)")
        let before = try await offPool { try CheckCommandTests.run(["log", "verify", "--database", sqlite], in: directory) }
        let records = before.output.components(separatedBy: " records in ").first?.components(separatedBy: " ").last ?? "?"

        let target = try await PostgresTestCluster.freshDatabase()
        let url = "postgres://\(target.username):\(target.password ?? "")@\(target.host):\(target.port)/\(target.database)?sslmode=disable"
        let copied = try await offPool { try CheckCommandTests.run(["db", "copy", "--from", "sqlite:" + sqlite, "--to", url], in: directory) }
        #expect(copied.status == 0, "\(copied.output)")
        #expect(copied.output.contains("copied share_log: \(records) rows"), "\(copied.output)")

        // The same records, the same hashes: the copy verifies (and is not empty).
        let verified = try await offPool { try CheckCommandTests.run(["log", "verify", "--database", url], in: directory) }
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.contains("ok: \(records) records in 1 stream(s), chain intact"), "\(verified.output)")

        // A second copy into the now non-empty database is refused.
        let again = try await offPool { try CheckCommandTests.run(["db", "copy", "--from", sqlite, "--to", url], in: directory) }
        #expect(again.status != 0)
        #expect(again.output.contains("only into an empty database"), "\(again.output)")
    }
}

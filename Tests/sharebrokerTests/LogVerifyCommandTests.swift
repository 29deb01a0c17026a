import BrokerTesting
import Foundation
import Testing

/// Issue 4: `log seed`, `log checkpoints` and `log verify --checkpoints` as a compliance officer uses them.
@Suite(.serialized) struct LogVerifyCommandTests {
    @Test func aRolledBackDatabaseIsCaughtByExportedCheckpoints() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = CheckCommandTests.root.path
        let seed = ["log", "seed", "--records", "300", "--checkpoint-every", "50",
                    "--adapters", root + "/adapters", "--contracts", root + "/contracts"]
        let first = try await offPool { try CheckCommandTests.run(seed, in: directory) }
        #expect(first.status == 0 && first.output.contains("seeded"), "\(first.output)")
        let database = directory.appendingPathComponent(".sharebroker/broker.sqlite")
        let copy = directory.appendingPathComponent("old.sqlite")
        try FileManager.default.copyItem(at: database, to: copy)
        _ = try await offPool { try CheckCommandTests.run(seed, in: directory) }

        let exported = try await offPool { try CheckCommandTests.run(["log", "checkpoints"], in: directory) }
        #expect(exported.status == 0 && exported.output.contains("\"public_key\""))
        try exported.output.write(to: directory.appendingPathComponent("checkpoints.json"), atomically: true, encoding: .utf8)

        let current = try await offPool { try CheckCommandTests.run(["log", "verify", "--checkpoints", "checkpoints.json"], in: directory) }
        #expect(current.status == 0, "\(current.output)")
        #expect(current.output.contains("chain intact") && current.output.contains("signatures checked"))
        #expect(current.output.contains("records/s"))

        let table = try await offPool {
            try CheckCommandTests.run(["report", "sharing-list", "--adapters", root + "/adapters", "--contracts", root + "/contracts"],
                                      in: directory)
        }
        #expect(table.status == 0 && table.output.contains("provider") && table.output.contains("huawei-push"), "\(table.output)")
        #expect(table.output.contains("sent without a contract that allows it"))
        let csv = try await offPool {
            try CheckCommandTests.run(["report", "sharing-list", "--csv", "--adapters", root + "/adapters", "--contracts",
                                       root + "/contracts"], in: directory)
        }
        #expect(csv.output.hasPrefix("provider,purpose,category,sent,stripped,blocked,subjects"))

        let alone = try await offPool { try CheckCommandTests.run(["log", "verify", "--database", "old.sqlite"], in: directory) }
        #expect(alone.status == 0, "the old copy is consistent with itself")
        let rolledBack = try await offPool {
            try CheckCommandTests.run(["log", "verify", "--database", "old.sqlite", "--checkpoints", "checkpoints.json"], in: directory)
        }
        #expect(rolledBack.status != 0)
        #expect(rolledBack.output.contains("TAMPERED") && rolledBack.output.contains("truncated or rolled back"), "\(rolledBack.output)")
    }

    /// `log seed --database` takes the forms every other command takes: `sqlite:/abs/path` opens that
    /// file (it used to create a folder named `sqlite:`), and a plain relative path works too.
    @Test func seedTakesTheSameDatabaseFormsAsEveryCommand() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-seed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = CheckCommandTests.root.path
        let absolute = directory.appendingPathComponent("abs.sqlite").path
        for (form, file) in [("sqlite:" + absolute, absolute), ("rel.sqlite", directory.appendingPathComponent("rel.sqlite").path)] {
            let seeded = try await offPool {
                try CheckCommandTests.run(["log", "seed", "--records", "40", "--database", form,
                                           "--adapters", root + "/adapters", "--contracts", root + "/contracts"], in: directory)
            }
            #expect(seeded.status == 0 && seeded.output.contains("seeded"), "\(seeded.output)")
            #expect(FileManager.default.fileExists(atPath: file), "\(form)")
            let verified = try await offPool { try CheckCommandTests.run(["log", "verify", "--database", form], in: directory) }
            #expect(verified.status == 0 && verified.output.contains("chain intact"), "\(verified.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("sqlite:").path))
    }
}

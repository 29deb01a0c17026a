import ArgumentParser
import BrokerSQLite
import Foundation
import Logging

/// `sharebroker log …`: the share log from the command line.
struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "Inspect the share log.", subcommands: [Verify.self, Show.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain of every stream; name the first bad record.")

        @Option(help: "The SQLite database.")
        var database: String = ".sharebroker/broker.sqlite"

        func run() async throws {
            guard FileManager.default.fileExists(atPath: database) else {
                print("\(database): no such database")
                throw ExitCode(1)
            }
            let report = try await SQLiteStore.verify(path: database) { checked, total in
                if total >= 100_000 && checked % 100_000 == 0 {
                    FileHandle.standardError.write(Data("verified \(checked)/\(total)\r".utf8))
                }
            }
            let rate = Int(report.recordsPerSecond)
            if let bad = report.firstBad {
                print("TAMPERED: first bad record \(bad) (\(report.records) records checked, \(rate) records/s)")
                throw ExitCode(1)
            }
            print("ok: \(report.records) records in \(report.streams) stream(s), chain intact (\(rate) records/s)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the last records (no personal values are stored).")

        @Option(help: "The SQLite database.")
        var database: String = ".sharebroker/broker.sqlite"

        @Option(help: "The log stream (node id).")
        var stream: String = "node-1"

        @Option(help: "How many records.")
        var last: Int = 10

        func run() async throws {
            guard FileManager.default.fileExists(atPath: database) else {
                print("\(database): no such database")
                throw ExitCode(1)
            }
            let store = try SQLiteStore(path: database, stream: stream, logger: Logger(label: "sharebroker.log"))
            let records = try await store.records(stream: stream).suffix(max(0, last))
            for record in records { print("#\(record.seq) \(record.kind) \(record.body)") }
        }
    }
}

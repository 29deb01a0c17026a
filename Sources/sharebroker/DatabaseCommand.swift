import ArgumentParser
import BrokerPostgres
import BrokerSQLite
import BrokerService
import Foundation
import GRDB
import Logging
import NIOCore
import PostgresNIO

/// `sharebroker db …`: moving a broker's database.
struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "db", abstract: "Move the broker's database.",
                                                    subcommands: [Copy.self])

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy an embedded SQLite database into an empty PostgreSQL one (moving up to several nodes).",
            discussion: """
                Copies subjects, grants (in their order), the share log with its hashes untouched, the revocations,
                their jobs, attempts, calls and sealed keys, the checkpoints and the sharing aggregates. Refuses a
                target that already holds subjects or log records. Stop the broker first. Afterwards
                `sharebroker log verify --database postgres://…` checks the copy (with --signing-key for the
                SQLite node's checkpoints), and the old node's stream continues under the same `node:` name.
                """)

        @Option(help: "The SQLite database: sqlite:PATH or PATH.")
        var from: String

        @Option(help: "The PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password else from PGPASSWORD).")
        var to: String

        /// The tables in foreign-key order, each with the order its rows are read in (grants in
        /// insertion order, so the copy's tie-break column numbers them the same way).
        static let tables: [(name: String, order: String)] = [
            ("subjects", "rowid"), ("grants", "rowid"), ("share_log", "stream, seq"), ("share_grants", "grant_id, share_id"),
            ("revocations", "rowid"), ("revocation_shares", "revocation_id, share_id"), ("revocation_keys", "share_id"),
            ("revocation_key_sets", "grant_id, key_set"),
            ("revocation_jobs", "revocation_id, provider"), ("revocation_attempts", "revocation_id, provider, attempt"),
            ("revocation_calls", "revocation_id, provider, call_key"), ("log_checkpoints", "stream, size"),
            ("sharing_daily", "day, provider, purpose, category, action"),
            ("sharing_subjects", "day, provider, purpose, category, subject"),
            ("sharing_subject_span", "provider, purpose, category, subject"),
            ("exposure_span", "provider, subject, category"), ("exposure_daily", "provider, subject, day, category"),
            ("log_follower", "stream"),
        ]

        func run() async throws {
            let path = from.hasPrefix("sqlite:") ? String(from.dropFirst("sqlite:".count)) : from
            guard FileManager.default.fileExists(atPath: path) else { say("\(path): no such database"); throw ExitCode(1) }
            guard var location = PostgresLocation(to) else { say("\(to): not a postgres://USER@HOST[:PORT]/DB URL"); throw ExitCode(1) }
            if location.password == nil { location.password = ProcessInfo.processInfo.environment["PGPASSWORD"] }
            var logger = Logger(label: "sharebroker.db")
            logger.logLevel = .error
            var configuration = Configuration()
            configuration.readonly = true
            configuration.prepareDatabase { db in SQLiteStore.registerLogFunctions(db) }
            let source = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? source.close() }
            let target: PostgresStore
            do { target = try await PostgresStore.openForMigration(location, logger: logger) } catch {
                say("\(location): \(error.message)"); throw ExitCode(1)
            }
            do {
                try await copy(source, into: target)
            } catch let error as LogUnavailable {
                say("copy failed: \(error.message)")
                await target.close()
                throw ExitCode(1)
            }
            await target.close()
        }

        func copy(_ source: DatabaseQueue, into target: PostgresStore) async throws {
            let held = try await target.connection("checking the target") { connection in
                try await connection.query("SELECT (SELECT count(*) FROM subjects) + (SELECT count(*) FROM share_log)",
                                           logger: Logger(label: "sharebroker.db")).collect().first?.decode(Int64.self) ?? 0
            }
            guard held == 0 else {
                throw LogUnavailable("the target already holds subjects or log records: copy only into an empty database")
            }
            for (table, order) in Self.tables {
                let exists = try await source.read { db in try db.tableExists(table) }
                guard exists else { continue }
                let types = try await target.connection("reading \(table)'s columns") { connection in
                    var types: [String: String] = [:]
                    for try await (name, type) in try await connection.query("""
                        SELECT column_name, data_type FROM information_schema.columns WHERE table_name = \(table)
                        """, logger: Logger(label: "sharebroker.db")).decode((String, String).self) {
                        types[name] = type
                    }
                    return types
                }
                let total = try await source.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0 }
                var copied = 0
                while copied < total {
                    let offset = copied
                    // GRDB's synchronous read: rows are not Sendable, and this command has no event loop to keep free.
                    let rows = try source.read { db in
                        // The log's records as text with their previous hash (SQLite stores them packed since v15;
                        // a file not migrated yet, opened read-only here, has neither `dict` nor packed records).
                        let packed = try table == "share_log" && db.columns(in: "share_log").contains { $0.name == "dict" }
                        let columns = packed ? SQLiteStore.portableRecordColumns : "*"
                        return try Row.fetchAll(db, sql: "SELECT \(columns) FROM \(table) l ORDER BY \(order) LIMIT 2000 OFFSET \(offset)")
                    }
                    guard let first = rows.first else { break }
                    let columns = first.columnNames.filter { types[$0] != nil }
                    var bindings = PostgresBindings()
                    var placeholders: [String] = []
                    for row in rows {
                        var slots: [String] = []
                        for column in columns {
                            try Self.bind(row[column] as DatabaseValue, as: types[column] ?? "text", into: &bindings)
                            slots.append("$\(bindings.count)")
                        }
                        placeholders.append("(" + slots.joined(separator: ",") + ")")
                    }
                    let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES " + placeholders.joined(separator: ",")
                    let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
                    try await target.connection("copying \(table)") { connection in
                        try await connection.query(query, logger: Logger(label: "sharebroker.db"))
                    }
                    copied += rows.count
                    FileHandle.standardError.write(Data("copying \(table): \(copied)/\(total)\r".utf8))
                }
                say("copied \(table): \(copied) rows" + String(repeating: " ", count: 12))
            }
        }

        /// A SQLite value as the PostgreSQL column's type wants it (SQLite keeps booleans as 0/1).
        static func bind(_ value: DatabaseValue, as type: String, into bindings: inout PostgresBindings) throws {
            switch value.storage {
            case .null: bindings.appendNull()
            case .int64(let n):
                switch type {
                case "boolean": bindings.append(n != 0)
                case "integer": bindings.append(Int32(truncatingIfNeeded: n))
                default: bindings.append(n)
                }
            case .double(let d): bindings.append(d)
            case .string(let s): bindings.append(s)
            case .blob(let data): bindings.append(ByteBuffer(bytes: data))
            }
        }
    }
}

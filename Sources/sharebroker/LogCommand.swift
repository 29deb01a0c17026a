import ArgumentParser
import BrokerService
import BrokerPostgres
import BrokerSQLite
@preconcurrency import Crypto
import Foundation
import Logging

/// `sharebroker log …`: the share log from the command line.
struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "Inspect the share log.", subcommands: [Verify.self, Show.self, Checkpoints.self, Seed.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain of every stream and every signed checkpoint; name the first bad record.",
            discussion: """
                Detects modified, removed and reordered records from the chain, and truncation from the
                checkpoints stored in the database. A database rolled back to an older copy (checkpoints
                and all) is only caught against checkpoints exported earlier: --checkpoints FILE
                (from `sharebroker log checkpoints` or GET /v1/log/checkpoints).
                """)

        @Option(name: .customLong("database"),
                help: "The SQLite file, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password else the config's, else PGPASSWORD): every node's stream. Default: the config's database.")
        var databaseOption: String?

        @Option(help: "Checkpoints exported earlier (JSON), checked against this database.")
        var checkpoints: String?

        @Option(help: "The log's Ed25519 public key (hex). Default: the exported file's, else derived from --signing-key.")
        var publicKey: String?

        @Option(name: .customLong("signing-key"), help: "The checkpoint signing key file, to derive the public key from (default: the config's).")
        var signingKeyOption: String?

        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            let settings = try configFile.settings()
            let database = settings.commandDatabase(databaseOption)
            let signingKey = signingKeyOption ?? settings.signingKeyPath
            let postgres = database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
            guard postgres || FileManager.default.fileExists(atPath: database) else {
                say("\(database): no such database")
                throw ExitCode(1)
            }
            var given: [Checkpoint] = []
            var key = publicKey.flatMap(CheckpointDocument.publicKey(hex:))
            if publicKey != nil && key == nil {
                say("--public-key: not 64 hex digits of an Ed25519 key")
                throw ExitCode(1)
            }
            if let checkpoints {
                guard let data = FileManager.default.contents(atPath: checkpoints),
                      let document = try? JSONDecoder().decode(CheckpointDocument.self, from: data) else {
                    say("\(checkpoints): not a checkpoint export")
                    throw ExitCode(1)
                }
                given = document.checkpoints
                if key == nil { key = document.publicKey.flatMap(CheckpointDocument.publicKey(hex:)) }
            }
            if key == nil, let secret = FileManager.default.contents(atPath: signingKey) {
                key = CheckpointSigner(secret: Array(secret)).publicKey
            }
            if postgres {
                try await Self.verifyPostgres(database, password: settings.commandDatabasePassword, given: given, key: key)
                return
            }
            let report = try await SQLiteStore.verify(path: database, checkpoints: given, publicKey: key) { checked, total in
                if total >= 100_000 && checked % 100_000 == 0 {
                    FileHandle.standardError.write(Data("verified \(checked)/\(total) records\r".utf8))
                }
            }
            let rate = Int(report.recordsPerSecond)
            let signatures = report.checkpoints == 0
                ? "no checkpoint yet (one is signed every checkpoint_every records and at shutdown)"
                : (report.signaturesChecked ? "signatures checked" : "signatures NOT checked (no public key)")
            if let bad = report.firstBad {
                say("TAMPERED: first bad record \(bad) (\(report.records) records checked, \(rate) records/s)")
                throw ExitCode(1)
            }
            say("ok: \(report.records) records in \(report.streams) stream(s), chain intact, \(report.checkpoints) checkpoint(s) hold, \(signatures) (\(rate) records/s)")
        }

        static func verify(_ location: PostgresLocation, key: Curve25519.Signing.PublicKey?, given: [Checkpoint],
                           logger: Logger) async -> Result<LogVerification, LogUnavailable> {
            let store: PostgresStore
            do throws(LogUnavailable) {
                store = try await PostgresStore.openForReading(location, logger: logger)
            } catch {
                return .failure(error)
            }
            var result: Result<LogVerification, LogUnavailable>
            do throws(LogUnavailable) {
                result = .success(try await store.verify(publicKey: key, exported: given))
            } catch {
                result = .failure(error)
            }
            await store.close()
            return result
        }

        /// Every node's stream in the PostgreSQL database, beside the live nodes (nothing is taken or written).
        static func verifyPostgres(_ database: String, password: String?, given: [Checkpoint],
                                   key: Curve25519.Signing.PublicKey?) async throws {
            guard var location = PostgresLocation(database) else {
                say("\(database): not a postgres://USER@HOST[:PORT]/DB URL")
                throw ExitCode(1)
            }
            if location.password == nil { location.password = password }
            var logger = Logger(label: "sharebroker.log")
            logger.logLevel = .error
            let outcome = await Self.verify(location, key: key, given: given, logger: logger)
            guard case .success(let report) = outcome else {
                if case .failure(let error) = outcome { say("\(location): \(error.message)") }
                throw ExitCode(1)
            }
            let rate = Int(report.recordsPerSecond)
            if let bad = report.firstBad {
                say("TAMPERED: first bad record \(bad) (\(report.records) records checked, \(rate) records/s)")
                throw ExitCode(1)
            }
            let signatures = report.checkpoints == 0
                ? "no checkpoint yet (each node signs one every checkpoint_every records and at shutdown)"
                : "signatures checked with each node's registered key"
                    + (key.map { " and key \(CheckpointSigner.keyID(of: $0))" } ?? "")
            say("ok: \(report.records) records in \(report.streams) stream(s), chain intact, \(report.checkpoints) checkpoint(s) hold, \(signatures) (\(rate) records/s)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the last records (no personal values are stored).")

        @Option(name: .customLong("database"), help: "The SQLite database (default: the config's).")
        var databaseOption: String?

        @Option(name: .customLong("stream"), help: "The log stream (node id; default: the config's node).")
        var streamOption: String?

        @Option(help: "How many records.")
        var last: Int = 10

        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            let settings = try configFile.settings()
            let database = settings.commandDatabase(databaseOption)
            let stream = streamOption ?? settings.node
            if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
                say("log show reads a SQLite file; on PostgreSQL use GET /v1/shares (compliance API) or `log verify --database`")
                throw ExitCode(1)
            }
            guard FileManager.default.fileExists(atPath: database) else {
                print("\(database): no such database")
                throw ExitCode(1)
            }
            let store = try SQLiteStore(path: database, stream: stream, logger: Logger(label: "sharebroker.log"))
            let records = try await store.records(stream: stream).suffix(max(0, last))
            for record in records { print("#\(record.seq) \(record.kind) \(record.body)") }
        }
    }

    struct Checkpoints: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the signed checkpoints as JSON (keep a copy: `log verify --checkpoints` checks against it).")

        @Option(name: .customLong("database"), help: "The SQLite database (default: the config's).")
        var databaseOption: String?

        @Option(name: .customLong("signing-key"), help: "The checkpoint signing key file, to include the public key (default: the config's).")
        var signingKeyOption: String?

        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            let settings = try configFile.settings()
            let database = settings.commandDatabase(databaseOption)
            let signingKey = signingKeyOption ?? settings.signingKeyPath
            guard FileManager.default.fileExists(atPath: database) else {
                say("\(database): no such database")
                throw ExitCode(1)
            }
            let checkpoints = try await SQLiteStore.checkpoints(path: database)
            let key = FileManager.default.contents(atPath: signingKey).map { CheckpointSigner(secret: Array($0)).publicKey }
            say(String(decoding: CheckpointDocument(publicKey: key, checkpoints: checkpoints).encoded(), as: UTF8.self))
        }
    }

    struct Seed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append N realistic share records through the real write path (for benchmarks).")

        @Option(name: .customLong("database"), help: "sqlite:PATH, a path, or postgres://USER@HOST[:PORT]/DB (default: the config's).")
        var databaseOption: String?

        @Option(help: "About how many records to append (shares and their outcomes).")
        var records: Int

        @Option(help: "How many distinct subjects (default: records / 40).")
        var subjects: Int?

        @Option(help: "Spread the shares over this many past days.")
        var days: Int = 30

        @Option(help: "The log stream (node id).")
        var stream: String = "node-1"

        @OptionGroup var policy: PolicyOptions

        @Option(name: .customLong("signing-key"), help: "The checkpoint signing key file, created if missing (default: the config's).")
        var signingKeyOption: String?

        @Option(help: "Sign a checkpoint every this many records.")
        var checkpointEvery: Int = 1000

        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            var settings = try configFile.settings()
            let database = settings.commandDatabase(databaseOption)
            settings.database = database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") ? database : "sqlite:" + database
            settings.node = stream
            let signingKey = signingKeyOption ?? settings.signingKeyPath
            let bundle = try policy.bundle(settings)
            var logger = Logger(label: "sharebroker.seed")
            logger.logLevel = .warning
            let store = try await NodeStore.open(settings, password: settings.commandDatabasePassword, logger: logger)
            let signer = CheckpointSigner(secret: try SecretResolver().keyOrCreate(.file(signingKey), defaultPath: signingKey))
            store.enableCheckpoints(signer, checkpointEvery)
            let started = ContinuousClock.now
            let written: Int
            do {
                // As serve does at start: from here on the follower knows every intent without an outcome.
                _ = try await store.log.resolveDanglingIntents(at: Date())
                written = try await LogSeeder.seed(
                    log: store.log, bundle: bundle, records: records, subjects: subjects ?? max(1, records / 40), days: days,
                    node: stream, fingerprinter: Fingerprinter(key: Array("seed-fingerprint-key".utf8))) { count in
                        FileHandle.standardError.write(Data("seeded \(count) records\r".utf8))
                    }
                try await store.checkpointNow()
            } catch {
                await store.close()
                throw error
            }
            await store.close()
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            say("seeded \(written) records in \(Int(seconds)) s (\(Int(Double(written) / max(seconds, 0.001))) records/s) into \(database)")
        }
    }
}

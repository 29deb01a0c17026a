import ArgumentParser
import BrokerPostgres
import BrokerService
import BrokerSQLite
import Foundation
import Logging

/// A `--since`/`--until` value as a time; exit 1 naming the flag when it is not RFC 3339.
func rfc3339(_ text: String?, flag: String) throws -> Date? {
    guard let text else { return nil }
    guard let date = ISO8601DateFormatter().date(from: text) else {
        say("--\(flag) '\(text)' is not an RFC 3339 time: give a date and time with its zone, such as 2026-01-31T00:00:00Z")
        throw ExitCode(1)
    }
    return date
}

/// Opens a command's database for reading, runs `body` on it and closes it: a SQLite path, or a
/// `postgres://` URL (its password else the config's, else PGPASSWORD), every node's stream.
func withReadStore<T>(_ database: String, settings: BrokerConfig,
                      _ body: (any ShareQueries & GrantStore) async throws -> T) async throws -> T {
    // `sqlite:PATH` as in the config and `serve --database`, or the plain path.
    let database = database.hasPrefix("sqlite:") ? String(database.dropFirst("sqlite:".count)) : database
    var logger = Logger(label: "sharebroker.read")
    logger.logLevel = .warning
    if database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") {
        guard var location = PostgresLocation(database) else { say("\(database): not a postgres:// URL"); throw ExitCode(1) }
        if location.password == nil { location.password = settings.commandDatabasePassword }
        let store = try await PostgresStore.openForReading(location, logger: logger)
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
    guard FileManager.default.fileExists(atPath: database) else { say("\(database): no such database"); throw ExitCode(1) }
    let store = try SQLiteStore(path: database, stream: "node-1", logger: logger)
    return try await body(store)
}

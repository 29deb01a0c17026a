import BrokerPostgres
import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL cluster `scripts/with-postgres` started, named by `SHAREBROKER_TEST_POSTGRES`.
public enum PostgresTestCluster {
    static let logger = Logger(label: "postgres-test-cluster")

    public static let url = ProcessInfo.processInfo.environment["SHAREBROKER_TEST_POSTGRES"]
    /// `make test` sets this: without a cluster the PostgreSQL tests fail instead of being skipped.
    public static let required = ProcessInfo.processInfo.environment["SHAREBROKER_REQUIRE_POSTGRES"] == "1"
    public static var available: Bool { url != nil || required }

    public struct Missing: Error, CustomStringConvertible {
        public var description: String { "SHAREBROKER_TEST_POSTGRES is not set: run the tests through `make test` (scripts/with-postgres)" }
    }

    /// A new, empty database on the cluster (each test its own: they run in parallel).
    public static func freshDatabase() async throws -> PostgresLocation {
        guard let url, var location = PostgresLocation(url) else { throw Missing() }
        let name = "sbt_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await admin { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        location.database = name
        return location
    }

    /// Runs `body` on a connection to the cluster's own database.
    @discardableResult
    public static func admin<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        guard let url, let location = PostgresLocation(url) else { throw Missing() }
        return try await connect(location, body)
    }

    /// Runs `body` on a new connection to `location` (outside any store: what another client does).
    @discardableResult
    public static func connect<T: Sendable>(_ location: PostgresLocation,
                                     _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let configuration = PostgresConnection.Configuration(host: location.host, port: location.port,
                                                             username: location.username, password: location.password,
                                                             database: location.database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}


import BrokerPostgres
import BrokerService
import BrokerSQLite
import Foundation
import Logging

/// The store a node runs on, opened from `database:`: the embedded SQLite file, or a
/// PostgreSQL database that several nodes share (each its own `node:` stream).
struct NodeStore: Sendable {
    let log: any ShareLog & GrantStore & RevocationStore & ShareQueries & LogAudit
    /// Where, for the start-up line (never a password).
    let description: String
    let enableCheckpoints: @Sendable (CheckpointSigner, Int) -> Void
    let checkpointNow: @Sendable () async throws(LogUnavailable) -> Void
    /// `/readyz`: the store answers.
    let ready: @Sendable () async -> Bool
    /// The closing line's counters.
    let closingMetadata: @Sendable () -> Logger.Metadata
    let close: @Sendable () async -> Void

    /// Opens `settings.database`; `password` fills in a PostgreSQL URL that has none.
    static func open(_ settings: BrokerConfig, password: String?, logger: Logger) async throws -> NodeStore {
        if let path = settings.sqlitePath {
            let store = try SQLiteStore(path: path, stream: settings.node, logger: logger)
            return NodeStore(
                log: store, description: path,
                enableCheckpoints: { store.enableCheckpoints(signer: $0, every: $1) },
                checkpointNow: { () async throws(LogUnavailable) in try await store.checkpointNow() },
                ready: { await store.isReachable() },
                closingMetadata: {
                    let stats = store.commitStats
                    return ["log.commits": "\(stats.commits)", "log.records": "\(stats.records)",
                            "log.records_per_commit": "\(Double(Int(stats.recordsPerCommit * 10)) / 10)",
                            "log.intents": "\(stats.intents)", "log.statements": "\(stats.statements)",
                            "log.commit_p50_us": "\(stats.commitP50Us)", "log.commit_p99_us": "\(stats.commitP99Us)"]
                },
                close: { try? store.close() })
        }
        guard var location = PostgresLocation(settings.database) else {
            throw LogUnavailable("database \(settings.database) is neither sqlite:PATH nor postgres://USER@HOST[:PORT]/DB")
        }
        if location.password == nil { location.password = password }
        let store = try await PostgresStore.open(location, stream: settings.node, logger: logger)
        return NodeStore(
            log: store, description: "\(location), stream \(settings.node)",
            enableCheckpoints: { store.enableCheckpoints(signer: $0, every: $1) },
            checkpointNow: { () async throws(LogUnavailable) in try await store.checkpointNow() },
            ready: { await store.isReachable() },
            closingMetadata: {
                let stats = store.commitStats
                let latency = store.commitLatencyUs
                return ["log.commits": "\(stats.commits)", "log.records": "\(stats.records)", "log.intents": "\(stats.intents)",
                        "log.commit_p50_us": "\(latency.p50)", "log.commit_p99_us": "\(latency.p99)"]
            },
            close: { await store.close() })
    }
}

import BrokerLogStore
import BrokerFields
import BrokerCore
import BrokerService
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// The embedded store: the share log, subjects and grants in one SQLite file (GRDB).
///
/// One `DatabasePool` in WAL mode: a single writer connection, on which every
/// write runs through GRDB's own serial queue (never on the Swift cooperative
/// pool or an event loop), and up to five reader connections.
///
/// Durability: every connection runs with `PRAGMA synchronous = FULL`, so each
/// commit fsyncs the WAL before it returns. GRDB's `DatabasePool` resets the
/// writer to `NORMAL` while it sets up WAL mode, *after* `prepareDatabase`,
/// so FULL is set in `prepareDatabase` (readers, and the writer
/// before WAL set-up) and set again on the writer once the pool is open, then
/// read back: the store refuses to open if the writer is not at FULL. GRDB never
/// reopens the writer connection, so the setting holds for the pool's life.
///
/// The share log is one hash chain per `stream` (this node's id): only this
/// store appends to its stream, which is why the chain tip is kept in memory
/// after being read once. Two stores must never share a stream.
public final class SQLiteStore: ShareLog, GrantStore, Sendable {
    /// This node's log stream.
    public let stream: String
    let pool: DatabasePool
    let logger: Logger
    let now: @Sendable () -> Date
    /// Batches share-log writes; its batches run as jobs on GRDB's writer queue.
    let committer: GroupCommitter<LogWrite, LogWriteOutput, Database>
    /// The last record of `stream`, once read; only touched by the batch writer.
    let tip = Locked<ChainTip?>(nil)
    let stats = Locked(CommitStats())
    /// How long the log's write transactions take, fsync included.
    let commitLatency = CommitLatency()
    /// SQL statements the writer connection has run (SQLite's own trace counts them).
    let statements = StatementCounter()
    /// Sharing-aggregate subject rows already committed (the writer skips re-inserting them).
    let knownSubjectRows = Locked(KnownSubjectRows())
    /// Committed share entries the follower has not folded into the aggregates yet.
    let follower = Locked(FollowerBuffer())
    /// Signs a checkpoint every `every` records, when set (`enableCheckpoints`).
    let checkpointing = Locked<(signer: CheckpointSigner, every: Int64)?>(nil)
    /// The dictionaries this stream's records are packed against.
    let dictionaries: LogDictionaries

    /// Opens (creating the file and its folder if needed) and migrates the store.
    ///
    /// - Parameters:
    ///   - path: the SQLite file.
    ///   - stream: this node's log stream, e.g. `node-1`.
    ///   - now: the clock for `updated_at` stamps.
    /// - Throws: `LogUnavailable` when the file cannot be opened, migrated, or made durable.
    public init(path: String, stream: String, logger: Logger,
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        guard !stream.isEmpty else { throw LogUnavailable("the log stream name is empty") }
        self.stream = stream
        self.logger = logger
        self.now = now
        dictionaries = LogDictionaries(stream: stream)
        // Owner-only from the first byte: folders it makes 0700, the file 0600 before SQLite opens
        // it (SQLite gives its -wal and -shm files the database file's mode). It holds grants and birth dates.
        do { try PrivateFile.createIfAbsent(path) } catch {
            throw LogUnavailable("could not create the database file: \(error.message)")
        }
        do {
            var configuration = Configuration()
            configuration.foreignKeysEnabled = true
            configuration.busyMode = .timeout(5)
            configuration.label = "sharebroker"
            configuration.prepareDatabase { db in
                // Holds on readers; on the writer it is undone by the WAL set-up, and redone below.
                try db.execute(sql: "PRAGMA synchronous = FULL")
                Self.registerLogFunctions(db)
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            let writer = pool
            committer = GroupCommitter { job in writer.asyncWriteWithoutTransaction { db in job(db) } }
            try pool.barrierWriteWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // On whatever the platform's build defaults to (Debian's is on, SQLite's own is off): an
                // overwritten or deleted row of a subject leaves zeros in the file, not its old bytes.
                try db.execute(sql: "PRAGMA secure_delete = ON")
                let mode = try Int.fetchOne(db, sql: "PRAGMA synchronous")
                guard mode == Self.synchronousFull else {
                    throw LogUnavailable("could not set PRAGMA synchronous = FULL on the writer")
                }
                guard try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") == true else {
                    throw LogUnavailable("could not enable foreign keys")
                }
                statements.attach(to: db)
            }
            try SQLiteSchema.migrator.migrate(pool)
            // Whatever the follower had not folded when the last process stopped (a bounded tail).
            _ = pool.writeWithoutTransaction { db in fold(db) }
        } catch {
            throw LogUnavailable.sqlite(error, during: "opening the database")
        }
        logger.info("share log opened", metadata: ["log.stream": "\(stream)"])
    }

    /// `PRAGMA synchronous` value of FULL.
    static let synchronousFull = 2

    /// The writer connection's `PRAGMA synchronous` (2 = FULL, what the store requires).
    public func synchronousMode() async throws -> Int {
        try await pool.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
        }
    }

    /// Closes every connection; later calls fail with `LogUnavailable`.
    public func close() throws {
        // What the follower has not folded stays past its mark: the next open folds it (one path for
        // a clean stop and a crash).
        follower.withLock { $0.closed = true }
        do { try pool.close() } catch { throw LogUnavailable.sqlite(error, during: "closing the database") }
    }

    /// Write transactions and records the log has committed since open.
    public var commitStats: CommitStats {
        var current = stats.snapshot
        current.statements = statements.count
        current.commitP50Us = commitLatency.quantile(0.5)
        current.commitP99Us = commitLatency.quantile(0.99)
        return current
    }

    /// Write transactions the log has committed since open (group commit makes it far less than appends).
    public var commitCount: Int { commitStats.commits }

    /// `/readyz`: the database answers (one read; never a count of the log, which grows with it).
    public func isReachable() async -> Bool {
        (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM log_follower") }) != nil
    }

    /// How many records the share log holds, every stream included.
    public func count() async throws -> Int64 {
        do {
            return try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM share_log") ?? 0 }
        } catch {
            throw LogUnavailable.sqlite(error, during: "counting log records")
        }
    }

    /// Every record of one stream in `seq` order (meant for tests and small logs).
    public func records(stream: String) async throws -> [StoredRecord] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT \(Self.portableRecordColumns) FROM share_log l WHERE stream = ? ORDER BY seq
                    """, arguments: [stream]).map(StoredRecord.init(row:))
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading log records")
        }
    }
}

/// Counters of the log's write transactions since the store opened.
public struct CommitStats: Sendable, Hashable {
    /// Committed write transactions of the share log.
    public var commits = 0
    /// Records those transactions appended.
    public var records = 0
    /// Share intents among those records.
    public var intents = 0
    /// SQL statements the writer connection ran (every write, not only the log's), as SQLite counts them.
    public var statements = 0
    /// Write transactions' duration, fsync included (µs, power-of-two buckets' upper edges).
    public var commitP50Us: Int64 = 0
    public var commitP99Us: Int64 = 0
    /// Records per transaction, on average.
    public var recordsPerCommit: Double { commits == 0 ? 0 : Double(records) / Double(commits) }
}

/// Counts the statements one connection runs, through `sqlite3_trace_v2`: SQLite calls it
/// as each statement starts, whoever prepared it (GRDB or the log's bound statements), so
/// tests and the bench can hold the write path to a number of statements per share.
final class StatementCounter: Sendable {
    private let value = Locked(0)

    var count: Int { value.snapshot }

    /// Installs the trace on `db`'s connection (the writer). The counter lives as long as the process
    /// (one small object per store opened): the connection may outlive the store's other references.
    func attach(to db: Database) {
        let context = Unmanaged.passRetained(self).toOpaque()
        sqlite3_trace_v2(db.sqliteConnection, UInt32(SQLITE_TRACE_STMT), { _, context, _, _ in
            if let context { Unmanaged<StatementCounter>.fromOpaque(context).takeUnretainedValue().value.withLock { $0 += 1 } }
            return 0
        }, context)
    }
}

extension SQLiteStore: ShareLogMetrics {
    public func observeCommits(_ observer: @escaping @Sendable (_ records: Int, _ duration: Duration) -> Void) {
        commitLatency.observe(observer)
    }

    public var queuedWrites: Int { committer.queued }
}

import BrokerFields
import BrokerLogStore
import BrokerService
import Foundation
import Logging
import PostgresNIO

/// The share log, subjects and grants in PostgreSQL: several broker nodes, one database.
///
/// Each node appends its own hash-chained stream (`stream`, the node's name). It holds the
/// stream by a lease row in `log_streams`: taken at open (refused while another live process
/// holds it), renewed inside every batch's transaction and by a heartbeat, released at close.
/// A batch whose renewal finds the lease gone (another process took the stream after this one
/// stalled past its expiry) fails as `log_unavailable` and writes nothing; and `(stream, seq)`
/// is the primary key, so two writers of one stream can never fork its chain.
///
/// Writes to the log are group-committed per node: the intents queued while a transaction is
/// in flight share the next one, a handful of multi-row statements and one commit (PostgreSQL
/// waits for its WAL flush: `synchronous_commit` is checked at open and must be on). The
/// connection pool (PostgresNIO's `PostgresClient`) reconnects by itself: while the database
/// is unreachable every write fails with `LogUnavailable` (the gateway answers 503, nothing is
/// forwarded) and the next write after it is back succeeds.
public final class PostgresStore: ShareLog, GrantStore, Sendable {
    public let stream: String
    public let location: PostgresLocation
    let client: PostgresClient
    let logger: Logger
    let now: @Sendable () -> Date
    /// This process's claim on `stream` (random per open).
    let holder: String
    let lease: Duration
    /// How long one operation (a read, a batch's transaction) may take before it fails.
    let operationTimeout: Duration
    let committer: GroupCommitter<LogWrite, LogWriteOutput, Void>
    /// The last record of `stream`, once read; only touched by the batch writer.
    let tip = Locked<ChainTip?>(nil)
    let knownSubjectRows = Locked(KnownSubjectRows())
    let counters = Locked((commits: 0, records: 0, intents: 0))
    /// How long the log's batch transactions take, commit included (µs buckets).
    let commitLatency = CommitLatency()
    /// Signs a checkpoint every `every` records of this node's stream, when set (`enableCheckpoints`).
    let checkpointing = Locked<(signer: CheckpointSigner, every: Int64)?>(nil)
    let tasks: Locked<[Task<Void, Never>]>
    /// Committed share entries this node's follower has not folded into the aggregates yet.
    let follower = Locked(FollowerBuffer())

    /// Connects, runs the migrations (the first node to start; the others wait on the advisory
    /// lock), checks `synchronous_commit`, and takes `stream`'s lease.
    ///
    /// - Throws: `LogUnavailable` when the database cannot be reached or migrated, when commits
    ///   would not wait for durability, or when another live node holds `stream`.
    public static func open(_ location: PostgresLocation, stream: String, logger: Logger,
                            lease: Duration = .seconds(15), operationTimeout: Duration = .seconds(5),
                            now: @escaping @Sendable () -> Date = { Date() }) async throws(LogUnavailable) -> PostgresStore {
        guard !stream.isEmpty else { throw LogUnavailable("the log stream name is empty") }
        let store = PostgresStore(location: location, stream: stream, logger: logger, lease: lease,
                                  operationTimeout: operationTimeout, now: now)
        do {
            try await store.prepare()
        } catch {
            store.stopTasks()
            throw error
        }
        return store
    }

    /// Connects for reading only (`log verify`, an operator's queries): no migrations, no stream
    /// taken, so it runs beside live nodes; any write through it fails (it holds no stream).
    public static func openForReading(_ location: PostgresLocation, logger: Logger) async throws(LogUnavailable) -> PostgresStore {
        let store = PostgresStore(location: location, stream: "-", logger: logger, lease: .seconds(1),
                                  operationTimeout: .seconds(30), now: { Date() })
        do {
            try await store.run("connecting to the database") { connection in
                try await connection.query("SELECT 1 FROM share_log LIMIT 1", logger: store.logger)
            }
        } catch {
            store.stopTasks()
            throw error
        }
        return store
    }

    /// Connects and runs the migrations, taking no stream: for `db copy`, which writes every
    /// table itself (`connection(_:)`). Any write through the store's log fails (it holds no stream).
    public static func openForMigration(_ location: PostgresLocation, logger: Logger) async throws(LogUnavailable) -> PostgresStore {
        let store = PostgresStore(location: location, stream: "-", logger: logger, lease: .seconds(1),
                                  operationTimeout: .seconds(60), now: { Date() })
        do {
            try await store.migrate()
        } catch {
            store.stopTasks()
            throw error
        }
        return store
    }

    /// Runs `body` on a pooled connection, within the store's deadline (tools that move whole tables).
    @discardableResult
    public func connection<T: Sendable>(_ operation: String,
                                        _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(LogUnavailable) -> T {
        try await run(operation, body)
    }

    /// `/readyz`: the database answers (one round trip; never a count of the log).
    public func isReachable() async -> Bool {
        (try? await run("checking the database") { connection in
            try await connection.query("SELECT 1", logger: self.logger)
        }) != nil
    }

    private init(location: PostgresLocation, stream: String, logger: Logger, lease: Duration, operationTimeout: Duration,
                 now: @escaping @Sendable () -> Date) {
        self.stream = stream
        self.location = location
        self.logger = logger
        self.lease = lease
        self.operationTimeout = operationTimeout
        self.now = now
        holder = Self.randomHolder()
        // The pool's own log (each failed connection attempt, at info) only from warnings up.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: location.clientConfiguration, backgroundLogger: poolLogger)
        self.client = client
        tasks = Locked([Task { await client.run() }])
        // The batches run one at a time (the committer starts the next only when the last is done).
        committer = GroupCommitter { job in job(()) }
    }

    private func prepare() async throws(LogUnavailable) {
        // Reachable at all, within the usual deadline, before the migrations' long one.
        try await run("connecting to the database") { connection in
            try await connection.query("SELECT 1", logger: self.logger)
        }
        try await migrate()
        let synchronous = try await run("checking synchronous_commit") { connection in
            try await connection.query("SHOW synchronous_commit", logger: self.logger).collect().first?.decode(String.self)
        }
        guard synchronous == "on" || synchronous == "remote_apply" || synchronous == "remote_write" else {
            throw LogUnavailable("PostgreSQL's synchronous_commit is \(synchronous ?? "unknown"): a commit would not wait "
                                 + "for durability; set it to on for the broker's role or database")
        }
        try await takeLease()
        let heartbeat = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                try? await Task.sleep(for: self.lease / 3)
                if Task.isCancelled { return }
                do throws(LogUnavailable) { try await self.renewLease() } catch {
                    self.logger.warning("log stream lease not renewed", metadata: ["log.stream": "\(self.stream)",
                                                                                   "error.message": "\(error.message)"])
                }
            }
        }
        tasks.withLock { $0.append(heartbeat) }
        // Whatever this stream's follower had not folded when its last process stopped (a bounded tail).
        _ = try await fold()
        logger.info("share log opened", metadata: ["log.stream": "\(stream)", "log.database": "\(location)"])
    }

    /// Releases the stream (when this process holds it) and closes the connections.
    public func close() async {
        // The heartbeat and pending folds first (the pool, the first task, stays for the release); and the
        // holder goes with the lease, so a renewal already on its way finds nothing to renew instead of
        // taking the stream back.
        for task in tasks.snapshot.dropFirst() { task.cancel() }
        _ = try? await run("releasing the log stream") { connection in
            try await connection.query("""
                UPDATE log_streams SET expires_at = 0, holder = '' WHERE stream = \(self.stream) AND holder = \(self.holder)
                """, logger: self.logger)
        }
        stopTasks()
    }

    private func stopTasks() {
        for task in tasks.snapshot { task.cancel() }
    }

    /// Runs the migrations not yet applied, each in its own transaction, under the advisory lock.
    private func migrate() async throws(LogUnavailable) {
        // Once per database, and the other nodes wait for it on the lock: a deadline of its own.
        try await run("migrating the database", timeout: .seconds(120)) { connection in
            try await connection.query("SELECT pg_advisory_lock(\(PostgresSchema.migrationLock))", logger: self.logger)
            do {
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at bigint NOT NULL)
                    """, logger: self.logger)
                var applied: Set<String> = []
                for try await name in try await connection.query("SELECT name FROM schema_migrations",
                                                                 logger: self.logger).decode(String.self) {
                    applied.insert(name)
                }
                for migration in PostgresSchema.migrations where !applied.contains(migration.name) {
                    try await connection.withTransaction(logger: self.logger) { connection in
                        for statement in PostgresSchema.statements(migration.sql) {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                        }
                        try await connection.query("""
                            INSERT INTO schema_migrations (name, applied_at) VALUES (\(migration.name), \(Microseconds.from(self.now())))
                            """, logger: self.logger)
                    }
                    self.logger.info("database migrated", metadata: ["db.migration": "\(migration.name)"])
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(PostgresSchema.migrationLock))", logger: self.logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(PostgresSchema.migrationLock))", logger: self.logger)
        }
    }

    /// Takes `stream`, waiting for a lease held by a process that may be gone; refuses only a live holder.
    ///
    /// A node restarted after a crash finds its own old lease. When that holder was a process of this
    /// machine that no longer runs, the stream is taken at once. A holder of another machine (a
    /// rescheduled container) cannot be asked, so the node watches the lease until it ends: a live
    /// holder renews it meanwhile (every third of its lease, and with every batch) and is refused,
    /// a dead one lets it expire and the stream is taken. So a supervisor's restart never
    /// crash-loops on a dead process's lease, and two live processes with one name never share a stream.
    private func takeLease() async throws(LogUnavailable) {
        let host = ProcessInfo.processInfo.hostName
        var watched: (holder: String, expires: Int64)?
        while true {
            let nowUs = Microseconds.from(now())
            let expires = nowUs + lease.microseconds
            let taken = try await run("taking the log stream") { connection in
                try await connection.query("""
                    INSERT INTO log_streams (stream, holder, host, started_at, expires_at)
                    VALUES (\(self.stream), \(self.holder), \(host), \(nowUs), \(expires))
                    ON CONFLICT (stream) DO UPDATE SET holder = excluded.holder, host = excluded.host,
                        started_at = excluded.started_at, expires_at = excluded.expires_at
                    WHERE log_streams.expires_at < \(nowUs)
                    RETURNING holder
                    """, logger: self.logger).collect().count == 1
            }
            if taken {
                if watched != nil { logger.notice("log stream taken after its previous holder's lease ended", metadata: ["log.stream": "\(stream)"]) }
                return
            }
            guard let other = try await run("reading the log stream's holder", { connection in
                try await connection.query("SELECT host, expires_at, holder FROM log_streams WHERE stream = \(self.stream)",
                                           logger: self.logger).collect().first?.decode((String, Int64, String).self)
            }) else { continue }   // released meanwhile: take it
            // A holder that was a process of this machine and is gone (a crash, SIGKILL, OOM): taken at
            // once. Only this holder's row is replaced; if it was not gone after all, its next renewal
            // finds the lease taken and its batches fail, and (stream, seq) stays unique.
            if other.0 == host, Self.isDeadHolderOnThisMachine(other.2) {
                let replaced = try await run("taking the log stream from a dead process") { connection in
                    try await connection.query("""
                        UPDATE log_streams SET holder = \(self.holder), host = \(host), started_at = \(nowUs), expires_at = \(expires)
                        WHERE stream = \(self.stream) AND holder = \(other.2) RETURNING 1
                        """, logger: self.logger).collect().count == 1
                }
                if replaced {
                    logger.warning("log stream taken from a process of this machine that is gone",
                                   metadata: ["log.stream": "\(stream)"])
                    return
                }
                continue
            }
            let seconds = max(0, (other.1 - nowUs) / 1_000_000)
            // Live for certain: a process of this boot that still runs, or a holder that renewed (or
            // changed) while this node watched.
            let renewed = watched.map { $0.holder != other.2 || $0.expires != other.1 } ?? false
            if renewed || Self.isLiveHolderOnThisMachine(other.2) {
                throw LogUnavailable("log stream \(stream) is held by a live node (on host \(other.0), lease for another "
                                     + "\(seconds) s): give this node another `node:` name, or stop the other one")
            }
            if watched == nil {
                logger.warning("log stream held by a node that may be gone: waiting for its lease to end", metadata: [
                    "log.stream": "\(stream)", "log.holder_host": "\(other.0)", "log.lease_remaining_s": "\(seconds)",
                ])
            }
            watched = (other.2, other.1)
            // Polled every second (a live holder renews within a third of its lease), or at the expiry.
            let wait = min(1_000_000, max(0, other.1 - nowUs) + 50_000)
            do { try await Task.sleep(for: .microseconds(wait)) } catch {
                throw LogUnavailable("stopped while waiting for log stream \(stream)'s lease")
            }
        }
    }

    private func renewLease() async throws(LogUnavailable) {
        let renewed = try await run("renewing the log stream's lease") { connection in
            try await self.renewLease(on: connection)
        }
        if !renewed { throw LogUnavailable("log stream \(stream) is no longer held by this node") }
    }

    /// Pushes the lease's expiry forward; false when this process no longer holds the stream.
    func renewLease(on connection: PostgresConnection) async throws -> Bool {
        let expires = Microseconds.from(now()) + lease.microseconds
        return try await connection.query("""
            UPDATE log_streams SET expires_at = \(expires) WHERE stream = \(stream) AND holder = \(holder) RETURNING 1
            """, logger: logger).collect().count == 1
    }

    /// Runs `body` on a pooled connection, within `operationTimeout`; every error leaves as
    /// `LogUnavailable`. The deadline is what keeps the broker failing closed instead of hanging
    /// while the database is unreachable: the pool keeps trying to connect for as long as a lease
    /// waits, and a query on a connection whose peer vanished without a reset waits for TCP.
    /// So the caller is answered at the deadline whatever the work is doing (the work is then
    /// cancelled and left to end on its own, as a task group would wait for it). A write cut off
    /// by it has an unknown fate, which the callers treat as not written (nothing is forwarded;
    /// an intent that did commit reads `unknown` once resolved).
    @discardableResult
    func run<T: Sendable>(_ operation: String, timeout: Duration? = nil,
                          _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(LogUnavailable) -> T {
        let client = self.client
        let timeout = timeout ?? operationTimeout
        let result: Result<T, any Error> = await withCheckedContinuation { continuation in
            let answered = Locked(false)
            let answer: @Sendable (Result<T, any Error>) -> Bool = { result in
                guard answered.withLock({ done in defer { done = true }; return !done }) else { return false }
                continuation.resume(returning: result)
                return true
            }
            let work = Locked<Task<Void, Never>?>(nil)
            let timer = Task {
                try await Task.sleep(for: timeout)
                let late = LogUnavailable("\(operation) took longer than \(timeout): the database is unreachable or overloaded")
                // Past the deadline the work is cancelled too (a lease still waiting gives up).
                if answer(.failure(late)) { work.snapshot?.cancel() }
            }
            let task = Task {
                do {
                    let value = try await client.withConnection { connection in try await body(connection) }
                    if answer(.success(value)) { timer.cancel() }
                } catch {
                    if answer(.failure(error)) { timer.cancel() }
                }
            }
            work.withLock { $0 = task }
        }
        switch result {
        case .success(let value): return value
        case .failure(let error): throw LogUnavailable.postgres(error, during: operation)
        }
    }

    /// Runs `body` in one transaction on a pooled connection.
    @discardableResult
    func transaction<T: Sendable>(_ operation: String,
                                  _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(LogUnavailable) -> T {
        try await run(operation) { connection in
            try await connection.withTransaction(logger: self.logger) { connection in try await body(connection) }
        }
    }

    /// How many records the share log holds, every stream included.
    public func count() async throws(LogUnavailable) -> Int64 {
        try await run("counting log records") { connection in
            try await connection.query("SELECT count(*) FROM share_log", logger: self.logger).collect().first?
                .decode(Int64.self) ?? 0
        }
    }

    /// Write transactions and records the log has committed since open.
    public var commitStats: (commits: Int, records: Int, intents: Int) { counters.snapshot }

    /// The batch transactions' p50 and p99 duration (µs, power-of-two buckets' upper edges).
    public var commitLatencyUs: (p50: Int64, p99: Int64) { (commitLatency.quantile(0.5), commitLatency.quantile(0.99)) }

    /// `BOOT_ID/PID/random`: which boot of which machine and which process holds the stream, so a
    /// restarted node can tell that the previous holder is gone.
    private static func randomHolder() -> String {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<4).map { _ in String(generator.next() as UInt32, radix: 16) }.joined(separator: "-")
        return "\(bootID)/\(getpid())/\(nonce)"
    }

    /// This boot of this machine (Linux); empty where unknown.
    static let bootID: String = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""

    /// True when `holder` names a process of this boot of this machine that no longer runs. A
    /// holder of another boot id (another machine with the same host name, say a rescheduled
    /// container) or of another form (an older version) is never taken as dead: its lease expires.
    static func isDeadHolderOnThisMachine(_ holder: String) -> Bool {
        guard let pid = processOfThisBoot(holder), pid != getpid() else { return false }
        return kill(pid, 0) == -1 && errno == ESRCH
    }

    /// True when `holder` names a process of this boot of this machine that still runs (this one included).
    static func isLiveHolderOnThisMachine(_ holder: String) -> Bool {
        guard let pid = processOfThisBoot(holder) else { return false }
        return pid == getpid() || kill(pid, 0) == 0 || errno == EPERM
    }

    /// The process id in a holder of this boot (`BOOT_ID/PID/random`), or nil.
    private static func processOfThisBoot(_ holder: String) -> Int32? {
        let parts = holder.split(separator: "/")
        guard parts.count == 3, !bootID.isEmpty, parts[0] == bootID, let pid = Int32(parts[1]), pid > 0 else { return nil }
        return pid
    }
}

extension PostgresSchema {
    /// A migration's statements: each ends with `;` at the end of a line (the extended protocol
    /// takes one statement per query, so they are sent one by one).
    static func statements(_ sql: String) -> [String] {
        // A function body between `$$` holds `;` at line ends of its own: it stays one statement.
        var joined: [String] = []
        for part in sql.components(separatedBy: ";\n") {
            if let last = joined.last, last.components(separatedBy: "$$").count % 2 == 0 {
                joined[joined.count - 1] = last + ";\n" + part
            } else {
                joined.append(part)
            }
        }
        return joined.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty && !$0.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") } }
    }
}

extension Duration {
    var microseconds: Int64 {
        let parts = components
        return parts.seconds * 1_000_000 + parts.attoseconds / 1_000_000_000_000
    }
}

extension LogUnavailable {
    /// A PostgreSQL failure as the broker reports it: the operation, the SQLSTATE and the
    /// server's message (never its detail, which can quote a row's values), or the connection failure.
    static func postgres(_ error: any Error, during operation: String) -> LogUnavailable {
        if let error = error as? LogUnavailable { return error }
        if error is CancellationError { return LogUnavailable("\(operation) was cancelled") }
        if let error = error as? PostgresTransactionError {
            // The transaction's own failure: what its body threw, or its BEGIN or COMMIT.
            if let cause = error.closureError ?? error.commitError ?? error.beginError { return postgres(cause, during: operation) }
        }
        if let error = error as? PSQLError {
            if let server = error.serverInfo {
                let state = server[.sqlState] ?? "?"
                let message = server[.message] ?? "error"
                return LogUnavailable("\(operation) failed: PostgreSQL \(state): \(message)")
            }
            return LogUnavailable("\(operation) failed: PostgreSQL \(error.code.description) (the database is unreachable or the connection was lost)")
        }
        return LogUnavailable("\(operation) failed: \(type(of: error))")
    }
}

extension PostgresStore: ShareLogMetrics {
    public func observeCommits(_ observer: @escaping @Sendable (_ records: Int, _ duration: Duration) -> Void) {
        commitLatency.observe(observer)
    }

    public var queuedWrites: Int { committer.queued }
}

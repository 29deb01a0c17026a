import BrokerCore
import BrokerFields
import BrokerLogStore
import BrokerPostgres
import BrokerService
import BrokerTesting
@preconcurrency import Crypto
import Foundation
import PostgresNIO
import Testing

/// The stores every body below runs against: SQLite always; PostgreSQL when the test cluster is
/// there (always under `make test`, which also makes its absence a failure).
let storeKinds: [StoreKind] = PostgresTestCluster.available ? [.sqlite, .postgres] : [.sqlite]

@Suite struct ShareLogStoreTests {
    @Test(arguments: storeKinds)
    func concurrentIntentsShareCommitsAndChainIntact(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.log.addGrant(grant("g-1"))
            let results = try await withThrowingTaskGroup(of: IntentResult.self) { group in
                for n in 1...40 { group.addTask { try await store.log.appendIntent(entry(n)) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.allSatisfy { if case .committed = $0 { true } else { false } })
            #expect(Set(results.map(\.position.seq)) == Set(1...40))
            let positions = try await store.log.appendOutcomes((1...40).map {
                ShareOutcome(shareID: "node-1-share-\($0)", time: storeBaseTime, result: .ok, upstreamStatus: 200, latencyMs: 3)
            })
            #expect(positions.map(\.seq) == Array(41...80))
            let records = try await store.records("node-1")
            #expect(records.count == 80)
            #expect(chainIsIntact(records))
            #expect(records.filter { $0.kind == "share" }.count == 40)
            #expect(records.last?.hash == positions.last?.hash)
        }
    }

    /// The same appends give the same bytes and hashes in both stores: a record's canonical body
    /// and its chain do not depend on where it is kept (so a copy between them verifies).
    @Test func bothStoresWriteTheSameRecords() async throws {
        guard PostgresTestCluster.available else { return }
        var written: [[StoredRecord]] = []
        for kind in StoreKind.allCases {
            written.append(try await withStore(kind) { store, _ in
                try await store.log.addGrant(grant("g-1"))
                for n in 1...5 { _ = try await store.log.appendIntent(entry(n, decision: n == 3 ? .blocked : .allowed)) }
                _ = try await store.log.appendOutcome(ShareOutcome(shareID: "node-1-share-1", time: storeBaseTime,
                                                                   result: .error, latencyMs: 12, error: "timeout"))
                return try await store.records("node-1")
            })
        }
        #expect(written[0].count == 6)
        #expect(written[0] == written[1])
    }

    @Test(arguments: storeKinds)
    func danglingIntentsResolveAtReopenAndTheChainResumes(_ kind: StoreKind) async throws {
        let database = try await TestDatabase.make(kind)
        defer { database.remove() }
        do {
            let store = try await database.open()
            try await store.log.addGrant(grant("g-1"))
            for n in 1...3 { _ = try await store.log.appendIntent(entry(n)) }
            _ = try await store.log.appendIntent(entry(4, decision: .blocked))
            _ = try await store.log.appendOutcome(ShareOutcome(shareID: "node-1-share-2", time: storeBaseTime, result: .ok))
            await store.close()
        }
        let store = try await database.open()
        #expect(try await store.log.resolveDanglingIntents(at: storeBaseTime) == 2)
        #expect(try await store.log.resolveDanglingIntents(at: storeBaseTime) == 0)
        #expect(try await store.log.appendIntent(entry(5)).position.seq == 8)
        let records = try await store.records("node-1")
        #expect(chainIsIntact(records))
        #expect(records.filter { $0.kind == "outcome" && $0.body.contains(#""result":"unknown""#) }.map(\.shareID)
                == ["node-1-share-1", "node-1-share-3"])
        // The follower now knows every intent without an outcome: the resolved mark stops before the
        // oldest (share 5), and the next start finds share 5 past it and nothing else.
        _ = try await store.log.appendIntent(entry(6))
        _ = try await store.log.appendOutcome(ShareOutcome(shareID: "node-1-share-6", time: storeBaseTime, result: .ok))
        try await store.fold()
        await store.close()
        let third = try await database.open()
        #expect(try await third.log.resolveDanglingIntents(at: storeBaseTime) == 1)
        let last = try await third.records("node-1").last
        #expect(last?.kind == "outcome" && last?.shareID == "node-1-share-5")
        await third.close()
    }
}

@Suite struct GrantStoreContractTests {
    @Test(arguments: storeKinds)
    func subjectsAndGrantsRoundTripInOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let subject = Subject(id: "subject-1", birthDate: CalendarDay("2001-02-03"), minor: false, region: "CN")
            try await store.log.putSubject(subject)
            #expect(try await store.log.subject("subject-1") == subject)
            #expect(try await store.log.subject("nobody") == nil)

            var later = grant("g-later", categories: nil, at: 10)
            later.expiresAt = storeBaseTime.addingTimeInterval(86_400)
            later.accountFingerprint = "acct-fp"
            var other = grant("g-other", at: 5)
            other.provider = "other-push"
            try await store.log.addGrant(later)
            try await store.log.addGrant(grant("g-b", at: 0))
            try await store.log.addGrant(grant("g-a", at: 0))
            try await store.log.addGrant(other)
            // Oldest first; the same instant in insertion order.
            #expect(try await store.log.grants(of: "subject-1").map(\.id) == ["g-b", "g-a", "g-other", "g-later"])
            let context = try await store.log.context(subject: "subject-1", provider: "demo-push")
            #expect(context.subject == subject)
            #expect(context.grants.map(\.id) == ["g-b", "g-a", "g-later"])
            #expect(context.grants.last == later)
            // A grant for a subject with no record creates an empty one.
            try await store.log.addGrant(grant("g-new", subject: "subject-2"))
            #expect(try await store.log.subject("subject-2") == Subject(id: "subject-2"))
            // Grant ids are unique.
            await #expect(throws: LogUnavailable.self) { try await store.log.addGrant(grant("g-a")) }
        }
    }
}

/// What only the PostgreSQL store has: several nodes on one database.
@Suite(.enabled(if: PostgresTestCluster.available)) struct PostgresNodeTests {
    @Test func twoNodesAppendTheirOwnStreamsToOneDatabase() async throws {
        let database = try await TestDatabase.make(.postgres)
        let a = try await database.open(stream: "node-a")
        let b = try await database.open(stream: "node-b")
        try await a.log.addGrant(grant("g-1"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...30 {
                group.addTask { _ = try await a.log.appendIntent(entry(n, node: "node-a")) }
                group.addTask { _ = try await b.log.appendIntent(entry(n, node: "node-b")) }
            }
            try await group.waitForAll()
        }
        let streamA = try await a.records("node-a")
        let streamB = try await b.records("node-b")
        #expect(streamA.count == 30 && streamB.count == 30)
        #expect(chainIsIntact(streamA) && chainIsIntact(streamB))
        // A grant added through one node is seen by the other (one database).
        #expect(try await b.log.grants(of: "subject-1").map(\.id) == ["g-1"])
        await a.close(); await b.close()
    }

    @Test func aSecondLiveNodeWithTheSameStreamIsRefused() async throws {
        let database = try await TestDatabase.make(.postgres)
        let first = try await database.open(stream: "node-1")
        do {
            _ = try await database.open(stream: "node-1")
            Issue.record("a second node opened a stream that is held")
        } catch let error as LogUnavailable {
            #expect(error.message.contains("held by a live node"))
            #expect(error.message.contains("node:"))
        }
        await first.close()
        // Released at close: the name can be used again at once, and the chain continues.
        let second = try await database.open(stream: "node-1")
        try await second.log.addGrant(grant("g-1"))
        #expect(try await second.log.appendIntent(entry(1)).position.seq == 1)
        await second.close()
    }

    /// Issue 25: a node killed with SIGKILL is restarted by its supervisor within a second; the
    /// stream's lease, held by the dead process of this machine, must not keep it out for 15 s. A
    /// holder that still runs keeps it out; one of another machine (another boot id), which cannot be
    /// asked, is waited for until its lease ends (and would be refused had it renewed meanwhile).
    @Test func aRestartTakesTheStreamFromADeadProcessOfThisMachine() async throws {
        let database = try await TestDatabase.make(.postgres)
        let host = ProcessInfo.processInfo.hostName
        let boot = ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!boot.isEmpty, "Linux has a boot id")
        let exited = Process()
        exited.executableURL = URL(fileURLWithPath: "/bin/true")
        try exited.run()
        exited.waitUntilExit()
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["600"]   // alive however slow the machine: the test ends it
        // Not holding the test runner's output pipe: were this process to die, the runner would wait for it.
        sleeper.standardOutput = FileHandle.nullDevice
        sleeper.standardError = FileHandle.nullDevice
        try sleeper.run()
        // SIGKILL, not terminate(): the runner's blocked SIGTERM is inherited, and sleep would outlive the test.
        defer { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        func held(by holder: String, for lease: Duration = .seconds(600)) async throws {
            // 600 s: alive for the whole test, however slow the machine.
            let expires = Int64(Date().timeIntervalSince1970 * 1_000_000) + lease.components.seconds * 1_000_000
            try await PostgresTestCluster.connect(database.postgres!) { connection in
                try await connection.query("""
                    INSERT INTO log_streams (stream, holder, host, started_at, expires_at) VALUES ('node-1', \(holder), \(host), 0, \(expires))
                    ON CONFLICT (stream) DO UPDATE SET holder = excluded.holder, host = excluded.host, expires_at = excluded.expires_at
                    """, logger: storeLogger)
            }
        }
        // The schema first (a store that opens and closes), then a live holder of each kind.
        await (try await database.open(stream: "node-0")).close()
        try await held(by: "\(boot)/\(sleeper.processIdentifier)/live")
        let refusedAt = ContinuousClock.now
        await #expect(throws: LogUnavailable.self) { _ = try await database.open(stream: "node-1") }
        #expect(ContinuousClock.now - refusedAt < .seconds(5), "a running process of this machine is refused at once")
        // Holders that cannot be asked: the node waits for their leases to end, then takes the stream.
        for holder in ["another-boot/\(exited.processIdentifier)/x", "an-old-holder"] {
            try await held(by: holder, for: .seconds(2))
            let started = ContinuousClock.now
            let store = try await database.open(stream: "node-1")
            #expect(ContinuousClock.now - started >= .seconds(1), "\(holder): taken only once its lease ended")
            await store.close()
        }
        try await held(by: "\(boot)/\(exited.processIdentifier)/gone")
        let restarted = try await database.open(stream: "node-1")
        try await restarted.log.addGrant(grant("g-1"))
        #expect(try await restarted.log.appendIntent(entry(1)).position.seq == 1)
        await restarted.close()
    }

    /// A holder of another machine that renews its lease while the new node waits is live: refused.
    @Test func aHolderThatRenewsWhileWatchedIsRefused() async throws {
        let database = try await TestDatabase.make(.postgres)
        await (try await database.open(stream: "node-0")).close()
        let renewing = Task {
            // Another machine's node (another boot id) renewing its 3 s lease every half second.
            for _ in 0..<40 where !Task.isCancelled {
                let expires = Int64(Date().timeIntervalSince1970 * 1_000_000) + 3_000_000
                try await PostgresTestCluster.connect(database.postgres!) { connection in
                    try await connection.query("""
                        INSERT INTO log_streams (stream, holder, host, started_at, expires_at)
                        VALUES ('node-1', 'another-boot/1/x', 'elsewhere', 0, \(expires))
                        ON CONFLICT (stream) DO UPDATE SET holder = excluded.holder, host = excluded.host, expires_at = excluded.expires_at
                        """, logger: storeLogger)
                }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        defer { renewing.cancel() }
        try await Task.sleep(for: .milliseconds(300))
        do {
            _ = try await database.open(stream: "node-1")
            Issue.record("a node took a stream whose holder renews its lease")
        } catch let error as LogUnavailable {
            #expect(error.message.contains("held by a live node") && error.message.contains("elsewhere"), "\(error.message)")
        }
    }

    @Test func aNodeThatLostItsStreamWritesNothing() async throws {
        let database = try await TestDatabase.make(.postgres)
        let store = try await database.open(stream: "node-1")
        try await store.log.addGrant(grant("g-1"))
        _ = try await store.log.appendIntent(entry(1))
        // Another process took the stream over (as after this node stalled past its lease).
        try await PostgresTestCluster.connect(database.postgres!) { connection in
            try await connection.query("UPDATE log_streams SET holder = 'someone-else' WHERE stream = 'node-1'",
                                       logger: storeLogger)
        }
        await #expect(throws: LogUnavailable.self) { try await store.log.appendIntent(entry(2)) }
        #expect(try await store.records("node-1").count == 1)
        await store.close()
    }

    /// The fence at the level it rests on: an intent whose grant a revoke is updating waits for
    /// the revoke's transaction, then sees the grant revoked and is logged as blocked.
    @Test func anIntentWaitsForAConcurrentRevokeAndIsFenced() async throws {
        let database = try await TestDatabase.make(.postgres)
        let store = try await database.open(stream: "node-1")
        try await store.log.addGrant(grant("g-1"))
        try await store.log.addGrant(grant("g-2"))
        let revokedAt = Int64(storeBaseTime.timeIntervalSince1970 * 1_000_000)
        let outcome = try await PostgresTestCluster.connect(database.postgres!) { connection in
            try await connection.query("BEGIN", logger: storeLogger)
            try await connection.query("UPDATE grants SET revoked_at = \(revokedAt) WHERE id = 'g-1'", logger: storeLogger)
            let finished = Locked(false)
            let intent = Task {
                defer { finished.withLock { $0 = true } }
                return try await store.log.appendIntent(entry(1, grantIDs: ["g-2", "g-1"]))
            }
            let other = try await store.log.appendIntent(entry(2, grantIDs: ["g-2"]))
            try await Task.sleep(for: .milliseconds(300))
            let waited = !finished.withLock { $0 }
            try await connection.query("COMMIT", logger: storeLogger)
            return (waited, try await intent.value, other)
        }
        #expect(outcome.0, "the intent did not wait for the revoke's transaction")
        guard case .grantRevoked(let grantID, _) = outcome.1 else {
            Issue.record("an intent committed under a grant revoked before it: \(String(describing: outcome.1))")
            return
        }
        #expect(grantID == "g-1")
        if case .committed = outcome.2 {} else { Issue.record("an intent under another grant was fenced") }
        // After the revoke, every new intent under the grant is fenced at once.
        guard case .grantRevoked = try await store.log.appendIntent(entry(3, grantIDs: ["g-1"])) else {
            Issue.record("an intent committed under a revoked grant")
            return
        }
        let records = try await store.records("node-1")
        #expect(chainIsIntact(records))
        #expect(records.filter { $0.decision == "blocked" }.map(\.shareID).sorted() == ["node-1-share-1", "node-1-share-3"])
        await store.close()
    }

    @Test func theShareLogIsAppendOnlyForOtherClientsToo() async throws {
        let database = try await TestDatabase.make(.postgres)
        let store = try await database.open()
        try await store.log.addGrant(grant("g-1"))
        _ = try await store.log.appendIntent(entry(1))
        for sql in ["DELETE FROM share_log", "UPDATE share_log SET provider = 'x'", "TRUNCATE share_log"] {
            await #expect(throws: PSQLError.self) {
                try await PostgresTestCluster.connect(database.postgres!) { connection in
                    try await connection.query(PostgresQuery(unsafeSQL: sql), logger: storeLogger)
                }
            }
        }
        #expect(try await store.records("node-1").count == 1)
        await store.close()
    }

    @Test func aDatabaseThatWouldNotWaitForDurabilityIsRefused() async throws {
        let database = try await TestDatabase.make(.postgres)
        let name = database.postgres!.database
        try await PostgresTestCluster.admin { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) SET synchronous_commit = off"),
                                       logger: storeLogger)
        }
        do {
            _ = try await database.open()
            Issue.record("a store opened with synchronous_commit off")
        } catch let error as LogUnavailable {
            #expect(error.message.contains("synchronous_commit"))
        }
    }

    @Test func anUnreachableDatabaseFailsToOpenQuickly() async throws {
        var location = try #require(PostgresLocation("postgres://sharebroker:x@127.0.0.1:1/none?sslmode=disable"))
        location.port = 1
        let started = ContinuousClock.now
        await #expect(throws: LogUnavailable.self) {
            _ = try await PostgresStore.open(location, stream: "node-1", logger: storeLogger)
        }
        // The 5 s connect deadline, not the migrations' 120 s: room for a loaded machine's late timers.
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func locationsParseAndHideTheirPassword() throws {
        let location = try #require(PostgresLocation("postgres://broker:p%40ss@db.internal:6432/share?sslmode=require"))
        #expect(location.host == "db.internal" && location.port == 6432 && location.username == "broker")
        #expect(location.password == "p@ss" && location.database == "share" && location.sslMode == .require)
        #expect(!location.description.contains("p@ss") && !location.description.contains("p%40ss"))
        #expect(PostgresLocation("postgres://db/share") == nil)       // no user
        #expect(PostgresLocation("postgres://u@db/") == nil)          // no database
        #expect(PostgresLocation("postgres://u@db/x?sslmode=maybe") == nil)
        #expect(PostgresLocation("mysql://u@db/x") == nil)
    }
}

@Suite(.enabled(if: PostgresTestCluster.available)) struct PostgresAuditTests {
    @Test func everyStreamVerifiesWithItsNodesCheckpointsAndTamperingIsFound() async throws {
        let database = try await TestDatabase.make(.postgres)
        let a = try await PostgresStore.open(database.postgres!, stream: "node-a", logger: storeLogger)
        let b = try await PostgresStore.open(database.postgres!, stream: "node-b", logger: storeLogger)
        let keyA = CheckpointSigner(secret: Array("node a's key".utf8))
        let keyB = CheckpointSigner(secret: Array("node b's key".utf8))
        a.enableCheckpoints(signer: keyA, every: 5)
        b.enableCheckpoints(signer: keyB, every: 5)
        try await a.addGrant(grant("g-1"))
        for n in 1...12 { _ = try await a.appendIntent(entry(n, node: "node-a")) }
        for n in 1...7 { _ = try await b.appendIntent(entry(n, node: "node-b")) }
        try await a.checkpointNow()
        try await b.checkpointNow()
        let checkpoints = try await a.checkpoints()
        #expect(checkpoints.map { "\($0.stream)@\($0.size)" } == ["node-a@5", "node-a@10", "node-a@12", "node-b@5", "node-b@7"])
        #expect(checkpoints.filter { $0.stream == "node-a" }.allSatisfy { $0.isSigned(by: keyA.publicKey) })
        let intact = try await b.verifyLog(publicKey: keyA.publicKey)
        #expect(intact.firstBad == nil && intact.records == 19 && intact.streams == 2 && intact.checkpoints == 5)

        // Someone with the database's owner rights rewrites a record of node B's stream.
        try await PostgresTestCluster.connect(database.postgres!) { connection in
            try await connection.query("ALTER TABLE share_log DISABLE TRIGGER share_log_no_change", logger: storeLogger)
            try await connection.query("""
                UPDATE share_log SET body = replace(body, '"allowed"', '"blocked"') WHERE stream = 'node-b' AND seq = 3
                """, logger: storeLogger)
        }
        let tampered = try await a.verifyLog(publicKey: nil)
        #expect(tampered.firstBad == "node-b#3: hash does not match its body")
        await a.close(); await b.close()
    }
}

@Suite(.enabled(if: PostgresTestCluster.available)) struct PostgresFailClosedTests {
    /// A store and its stream. Each try takes a stream of its own: a try that timed out may have
    /// taken its stream's lease (held by this live process until it expires) before it gave up.
    static func open(_ location: PostgresLocation, tries: Int) async throws -> (PostgresStore, String) {
        for attempt in 1..<tries {
            if let store = try? await PostgresStore.open(location, stream: "node-\(attempt)", logger: storeLogger,
                                                         operationTimeout: .seconds(2)) {
                return (store, "node-\(attempt)")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        let store = try await PostgresStore.open(location, stream: "node-\(tries)", logger: storeLogger, operationTimeout: .seconds(2))
        return (store, "node-\(tries)")
    }

    /// The database drops off the network under load and comes back: while it is gone every
    /// intent fails (the gateway answers 503, nothing forwarded), none hangs past the deadline;
    /// afterwards the same store writes again without a restart, and the chain is intact.
    @Test func theDatabaseGoesAwayMidLoadAndComesBack() async throws {
        var direct = try await PostgresTestCluster.freshDatabase()
        direct.sslMode = .disable
        let relay = try await TCPRelay.start(to: direct.host, port: direct.port)
        var relayed = direct
        relayed.port = relay.port
        // The 2 s deadline is what the test is about, but on a loaded machine the first connection may
        // itself take longer than that: opening gets three tries before the load starts.
        let (store, stream) = try await Self.open(relayed, tries: 3)
        try await store.addGrant(grant("g-1"))
        let counter = Locked(0)
        let load = Task {
            var outcomes: [Bool] = []
            while !Task.isCancelled {
                let n = counter.withLock { $0 += 1; return $0 }
                do { _ = try await store.appendIntent(entry(n)); outcomes.append(true) } catch { outcomes.append(false) }
            }
            return outcomes
        }
        try await Task.sleep(for: .milliseconds(300))
        await relay.cut()
        let cutAt = ContinuousClock.now
        await #expect(throws: LogUnavailable.self) { try await store.appendIntent(entry(100_000)) }
        #expect(ContinuousClock.now - cutAt < .seconds(5), "a write hung past its deadline")
        // Gone for longer than the 2 s deadline, so the load's writes fail too (not only this one).
        try await Task.sleep(for: .milliseconds(2500))
        try await relay.restore()
        var back = false
        let until = ContinuousClock.now + .seconds(20)
        while !back && ContinuousClock.now < until {
            back = (try? await store.appendIntent(entry(200_000))) != nil
            if !back { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(back, "the store did not write again after the database came back")
        try await Task.sleep(for: .milliseconds(300))
        load.cancel()
        let outcomes = await load.value
        #expect(outcomes.contains(true) && outcomes.contains(false))
        #expect(outcomes.last == true)
        await store.close()
        // Read directly: every committed record chains.
        let reader = try await PostgresStore.openForReading(direct, logger: storeLogger)
        let records = try await reader.records(stream: stream)
        #expect(chainIsIntact(records))
        #expect(records.count >= outcomes.filter { $0 }.count)
        await reader.close()
        await relay.cut()
    }
}

@Suite(.enabled(if: PostgresTestCluster.available)) struct PostgresNodeKeyTests {
    /// Each node registers the key it signs with; every node's checkpoints are checked with their
    /// own node's key, whichever key the verifier was given.
    @Test func everyNodesKeyIsPublishedAndChecksItsOwnCheckpoints() async throws {
        let database = try await TestDatabase.make(.postgres)
        let a = try await PostgresStore.open(database.postgres!, stream: "node-a", logger: storeLogger)
        let b = try await PostgresStore.open(database.postgres!, stream: "node-b", logger: storeLogger)
        let keyA = CheckpointSigner(secret: Array("key a".utf8)), keyB = CheckpointSigner(secret: Array("key b".utf8))
        a.enableCheckpoints(signer: keyA, every: 2)
        b.enableCheckpoints(signer: keyB, every: 2)
        try await a.addGrant(grant("g-1"))
        for n in 1...3 { _ = try await a.appendIntent(entry(n, node: "node-a")); _ = try await b.appendIntent(entry(n, node: "node-b")) }
        let keys = try await a.nodeKeys()
        #expect(keys == [NodeKey(stream: "node-a", keyID: keyA.keyID, publicKey: keyA.publicKeyHex),
                         NodeKey(stream: "node-b", keyID: keyB.keyID, publicKey: keyB.publicKeyHex)])
        #expect(try await a.verifyLog(publicKey: keyA.publicKey).firstBad == nil)
        // Node B's checkpoint signature replaced by a forgery: found though the verifier holds node A's key.
        let forged = keyA.sign(stream: "node-b", size: 2, head: "00", timeUs: 0)
        try await PostgresTestCluster.connect(database.postgres!) { connection in
            try await connection.query("""
                UPDATE log_checkpoints SET signature = decode(\(Data(base64Encoded: forged.signature)!.map { String(format: "%02x", $0) }.joined()), 'hex')
                WHERE stream = 'node-b' AND size = 2
                """, logger: storeLogger)
        }
        #expect(try await a.verifyLog(publicKey: keyA.publicKey).firstBad == "node-b#2: checkpoint signature does not verify")
        await a.close(); await b.close()
    }
}

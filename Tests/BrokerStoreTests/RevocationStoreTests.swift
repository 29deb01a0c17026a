import BrokerCore
import BrokerFields
import BrokerLogStore
import BrokerPostgres
import BrokerService
import BrokerTesting
import Foundation
import Testing

@Suite struct RevocationStoreContractTests {
    func keyed(_ n: Int, grantIDs: [String] = ["g-1"]) -> ShareEntry {
        var share = entry(n, grantIDs: grantIDs)
        share.revocationKeys = SealedRevocationKeys(sealed: [UInt8](repeating: UInt8(n), count: 40), keySet: Int64(n),
                                                    expiresAt: storeBaseTime.addingTimeInterval(86_400))
        return share
    }

    /// Account deletion at the store: every grant revoked, every share under any grant the subject
    /// ever had (one revoked before included) covered, the subject record replaced in the same
    /// transaction, and never refused (a second time: nothing left to revoke, still a revocation).
    @Test(arguments: storeKinds)
    func everythingCoversEveryGrantEverAndReplacesTheSubject(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let log = store.log
            try await log.addGrant(grant("g-1"))
            try await log.addGrant(grant("g-2"))
            _ = try await log.appendIntent(keyed(1))
            _ = try await log.appendIntent(keyed(2, grantIDs: ["g-2"]))
            let time = storeBaseTime.addingTimeInterval(100)
            _ = try await log.revoke(subject: "subject-1", .grant("g-2"), revocationID: "rev-early", origin: "user",
                                     propagating: ["demo-push"], at: time).get()
            var record = Subject(id: "subject-1", minor: false)
            record.deletedAt = time.addingTimeInterval(1)
            let receipt = try await log.revoke(subject: "subject-1", .everything(replacing: record), revocationID: "rev-all",
                                               origin: "account_deleted", propagating: ["demo-push"],
                                               at: time.addingTimeInterval(1)).get()
            #expect(receipt.grantIDs == ["g-1"], "only the grants still active are revoked now")
            #expect(receipt.shares.keys.sorted() == ["node-1-share-1", "node-1-share-2"], "the share under g-2 too")
            #expect(receipt.jobs.map(\.provider) == ["demo-push"])
            let stored = try #require(try await log.subject("subject-1"))
            #expect(stored.deletedAt != nil && stored.minor == false)
            #expect(try await log.grants(of: "subject-1").allSatisfy { $0.revokedAt != nil })
            let again = try await log.revoke(subject: "subject-1", .everything(replacing: record), revocationID: "rev-again",
                                             origin: "account_deleted", propagating: [], at: time.addingTimeInterval(2))
            #expect(try again.get().grantIDs.isEmpty)
        }
    }

    @Test(arguments: storeKinds)
    func aRevokeFencesLaterIntentsAndItsJobRunsOnce(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let log = store.log
            try await log.addGrant(grant("g-1"))
            try await log.addGrant(grant("g-2"))
            for n in 1...3 { _ = try await log.appendIntent(keyed(n)) }
            _ = try await log.appendIntent(keyed(4, grantIDs: ["g-2"]))
            let time = storeBaseTime.addingTimeInterval(100)
            let result = try await log.revoke(subject: "subject-1", .grant("g-1"), revocationID: "rev-1", origin: "user",
                                              propagating: ["demo-push"], at: time)
            let receipt = try result.get()
            #expect(receipt.grantIDs == ["g-1"])
            #expect(receipt.shares.keys.sorted() == ["node-1-share-1", "node-1-share-2", "node-1-share-3"])
            #expect(receipt.jobs.map(\.status) == [.pending])
            #expect(receipt.jobs.first?.categories == ["user.device.push_token"])
            #expect(try await log.revocation("rev-1") == receipt)
            // Refusals: again, and a grant that is not the subject's.
            #expect(try await log.revoke(subject: "subject-1", .grant("g-1"), revocationID: "rev-2", origin: "user",
                                         propagating: [], at: time) == .failure(.alreadyRevoked))
            #expect(try await log.revoke(subject: "subject-2", .grant("g-2"), revocationID: "rev-3", origin: "user",
                                         propagating: [], at: time) == .failure(.notFound))
            guard case .grantRevoked("g-1", _) = try await log.appendIntent(keyed(5)) else {
                Issue.record("an intent committed under a revoked grant"); return
            }
            if case .committed = try await log.appendIntent(keyed(6, grantIDs: ["g-2"])) {} else {
                Issue.record("an intent under another grant was fenced")
            }

            // The outbox: due at once, claimed by one attempt at a time.
            let due = try await log.dueJobs(at: time, limit: 10)
            #expect(due.count == 1 && due.first?.shareIDs.count == 3)
            let job = try #require(due.first)
            #expect(try await log.sealedKeys(revocationID: "rev-1", provider: "demo-push").count == 3)
            let attempt = try await log.beginAttempt(job, at: time, leaseUntil: time.addingTimeInterval(30))
            #expect(attempt == 1)
            #expect(try await log.beginAttempt(job, at: time, leaseUntil: time.addingTimeInterval(30)) == 0)
            #expect(try await log.dueJobs(at: time, limit: 10).isEmpty)
            try await log.acknowledgeCall(revocationID: "rev-1", provider: "demo-push", key: "call-a", status: 200, at: time)
            try await log.acknowledgeCall(revocationID: "rev-1", provider: "demo-push", key: "call-a", status: 200, at: time)
            #expect(try await log.acknowledgedCalls(revocationID: "rev-1", provider: "demo-push") == ["call-a"])
            try await log.finishAttempt(job, attempt: attempt, .acknowledged, calls: 3, at: time.addingTimeInterval(1))
            let finished = try #require(try await log.revocation("rev-1"))
            #expect(finished.jobs.first?.status == .acknowledged)
            #expect(try await log.sealedKeys(revocationID: "rev-1", provider: "demo-push").isEmpty)
            let attempts = try await log.attempts(revocationID: "rev-1", provider: "demo-push")
            #expect(attempts.map(\.result) == ["acknowledged"] && attempts.first?.calls == 3)
            #expect(try await log.nextDueTime() == nil)

            // The revoke and the final state are in the chain.
            let records = try await store.records("node-1")
            #expect(chainIsIntact(records))
            let events = records.filter { $0.kind == "revocation" }.map(\.body)
            #expect(events.count == 2)
            #expect(events.first?.contains(#""event":"revoked""#) == true)
            #expect(events.last?.contains(#""event":"acknowledged""#) == true)
        }
    }

    /// Revocation keys are kept once per grant and key set: shares that send the same set under one
    /// grant name one box, whose expiry follows the last of them; acknowledging a revocation deletes
    /// the revoked grant's sets only, so the same set under a grant still active stays.
    @Test(arguments: storeKinds)
    func keySetsAreStoredOncePerGrantAndOutliveAnotherGrantsRevocation(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let log = store.log
            try await log.addGrant(grant("g-1"))
            try await log.addGrant(grant("g-2"))
            func sending(_ n: Int, set: Int64, grant: String, expiring days: Double) -> ShareEntry {
                var share = entry(n, grantIDs: [grant])
                share.revocationKeys = SealedRevocationKeys(sealed: Array("box of set \(set)".utf8), keySet: set,
                                                            expiresAt: storeBaseTime.addingTimeInterval(days * 86_400))
                return share
            }
            _ = try await log.appendIntent(sending(1, set: 5, grant: "g-1", expiring: 1))
            _ = try await log.appendIntent(sending(2, set: 5, grant: "g-1", expiring: 3))
            _ = try await log.appendIntent(sending(3, set: 5, grant: "g-1", expiring: 2))
            _ = try await log.appendIntent(sending(4, set: 6, grant: "g-1", expiring: 1))
            _ = try await log.appendIntent(sending(5, set: 5, grant: "g-2", expiring: 1))
            _ = try await log.appendIntent(entry(6, grantIDs: ["g-1"]))   // carried no keys

            // Past the first share's retention, not the third's: g-1's set 5 stays; g-2's and set 6 go.
            #expect(try await log.purgeExpiredKeys(at: storeBaseTime.addingTimeInterval(1.5 * 86_400)) == 2)
            let time = storeBaseTime.addingTimeInterval(100)
            _ = try await log.revoke(subject: "subject-1", .grant("g-1"), revocationID: "rev-1", origin: "user",
                                     propagating: ["demo-push"], at: time).get()
            let keys = try await log.sealedKeys(revocationID: "rev-1", provider: "demo-push")
            #expect(keys.keys.sorted() == ["node-1-share-1", "node-1-share-2", "node-1-share-3"],
                    "the shares of set 5 name its box; set 6 is past retention; share 6 carried none")
            #expect(Set(keys.values) == [StoredRevocationKeys(sealed: Array("box of set 5".utf8), keySet: 5)])

            // A later share under g-2 stores set 5 again for g-2; g-1's acknowledgement leaves it.
            _ = try await log.appendIntent(sending(7, set: 5, grant: "g-2", expiring: 30))
            let job = try #require(try await log.dueJobs(at: time, limit: 1).first)
            let attempt = try await log.beginAttempt(job, at: time, leaseUntil: time.addingTimeInterval(30))
            try await log.finishAttempt(job, attempt: attempt, .acknowledged, calls: 1, at: time.addingTimeInterval(1))
            #expect(try await log.sealedKeys(revocationID: "rev-1", provider: "demo-push").isEmpty)
            _ = try await log.revoke(subject: "subject-1", .grant("g-2"), revocationID: "rev-2", origin: "user",
                                     propagating: ["demo-push"], at: time.addingTimeInterval(2)).get()
            let later = try await log.sealedKeys(revocationID: "rev-2", provider: "demo-push")
            let box = StoredRevocationKeys(sealed: Array("box of set 5".utf8), keySet: 5)
            #expect(later == ["node-1-share-5": box, "node-1-share-7": box],
                    "g-2's set was kept, and stored again by share 7 after share 5's retention had passed: both name it")
        }
    }

    @Test(arguments: storeKinds)
    func anAttemptThatOutlivedItsLeaseChangesNothing(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let log = store.log
            try await log.addGrant(grant("g-1"))
            _ = try await log.appendIntent(keyed(1))
            let time = storeBaseTime.addingTimeInterval(100)
            _ = try await log.revoke(subject: "subject-1", .provider("demo-push"), revocationID: "rev-1", origin: "user",
                                     propagating: ["demo-push"], at: time).get()
            let job = try #require(try await log.dueJobs(at: time, limit: 1).first)
            let first = try await log.beginAttempt(job, at: time, leaseUntil: time.addingTimeInterval(5))
            // The lease ran out (the node died): the job is due again, a second attempt takes it.
            let later = time.addingTimeInterval(6)
            #expect(try await log.resumeInterruptedJobs(at: later) == 1)
            let second = try await log.beginAttempt(job, at: later, leaseUntil: later.addingTimeInterval(5))
            #expect((first, second) == (1, 2))
            try await log.finishAttempt(job, attempt: first, .failed(error: "late"), calls: 0, at: later)
            #expect(try await log.revocation("rev-1")?.jobs.first?.status == .sent)
            try await log.finishAttempt(job, attempt: second, .acknowledged, calls: 1, at: later)
            #expect(try await log.revocation("rev-1")?.jobs.first?.status == .acknowledged)
        }
    }
}

@Suite(.enabled(if: PostgresTestCluster.available)) struct PostgresRevocationAcrossNodesTests {
    /// A revoke through node A, then a share through node B: refused by the fence.
    @Test func aRevokeOnOneNodeFencesTheOther() async throws {
        let database = try await TestDatabase.make(.postgres)
        let a = try await database.open(stream: "node-a")
        let b = try await database.open(stream: "node-b")
        try await a.log.addGrant(grant("g-1"))
        _ = try await b.log.appendIntent(entry(1, node: "node-b"))
        let receipt = try await a.log.revoke(subject: "subject-1", .grant("g-1"), revocationID: "rev-1", origin: "user",
                                             propagating: ["demo-push"], at: storeBaseTime).get()
        #expect(receipt.shares.keys.sorted() == ["node-b-share-1"])
        guard case .grantRevoked = try await b.log.appendIntent(entry(2, node: "node-b")) else {
            Issue.record("node B committed an intent under a grant revoked through node A"); return
        }
        // Node A's stream holds the revoke; node B's the share and the refusal.
        #expect(try await a.records("node-a").map(\.kind) == ["revocation"])
        #expect(try await b.records("node-b").map(\.decision) == ["allowed", "blocked"])
        await a.close(); await b.close()
    }

    /// Two nodes racing for one due job: exactly one claims each attempt.
    @Test func oneNodeClaimsAJobAtATime() async throws {
        let database = try await TestDatabase.make(.postgres)
        let a = try await database.open(stream: "node-a")
        let b = try await database.open(stream: "node-b")
        try await a.log.addGrant(grant("g-1"))
        _ = try await a.log.appendIntent(entry(1, node: "node-a"))
        _ = try await a.log.revoke(subject: "subject-1", .grant("g-1"), revocationID: "rev-1", origin: "user",
                                   propagating: ["demo-push"], at: storeBaseTime).get()
        let job = try #require(try await b.log.dueJobs(at: storeBaseTime, limit: 1).first)
        let lease = storeBaseTime.addingTimeInterval(30)
        let claims = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { try await a.log.beginAttempt(job, at: storeBaseTime, leaseUntil: lease) }
                group.addTask { try await b.log.beginAttempt(job, at: storeBaseTime, leaseUntil: lease) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(claims.filter { $0 != 0 } == [1])
        await a.close(); await b.close()
    }
}

@Suite(.enabled(if: PostgresTestCluster.available)) struct PostgresFenceRaceTests {
    /// 5 rounds of 50 intents split over two nodes racing a revoke through one of them: nothing
    /// started after the revoke returned is committed on either node, and every intent that did
    /// commit is in the revocation's shares (so its deletion is asked for).
    @Test func fiftyIntentsOverTwoNodesRacingARevoke() async throws {
        let database = try await TestDatabase.make(.postgres)
        let a = try await database.open(stream: "node-a")
        let b = try await database.open(stream: "node-b")
        var kinds: Set<String> = []
        for round in 1...5 {
            let grantID = "g-\(round)"
            try await a.log.addGrant(grant(grantID))
            let revokedAt = Locked<ContinuousClock.Instant?>(nil)
            let results = try await withThrowingTaskGroup(of: (String, ContinuousClock.Instant, IntentResult)?.self) { group in
                for n in 1...50 {
                    let node = n % 2 == 0 ? a : b
                    let name = n % 2 == 0 ? "node-a" : "node-b"
                    group.addTask {
                        try await Task.sleep(for: .microseconds(200 * n))
                        let started = ContinuousClock.now
                        let share = entry(round * 1000 + n, grantIDs: [grantID], node: name)
                        return (share.shareID, started, try await node.log.appendIntent(share))
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(4))
                    _ = try await a.log.revoke(subject: "subject-1", .grant(grantID), revocationID: "rev-\(round)", origin: "user",
                                               propagating: ["demo-push"], at: storeBaseTime).get()
                    revokedAt.withLock { $0 = ContinuousClock.now }
                    return nil
                }
                var all: [(String, ContinuousClock.Instant, IntentResult)] = []
                for try await result in group { if let result { all.append(result) } }
                return all
            }
            let returned = try #require(revokedAt.withLock { $0 })
            let receipt = try #require(try await b.log.revocation("rev-\(round)"))
            for (shareID, started, result) in results {
                switch result {
                case .committed:
                    kinds.insert("committed")
                    #expect(started < returned, "round \(round): \(shareID) started after the revoke returned and committed")
                    #expect(receipt.shares[shareID] != nil, "round \(round): committed \(shareID) is missing from the revocation")
                case .grantRevoked:
                    kinds.insert("fenced")
                    #expect(receipt.shares[shareID] == nil)
                }
            }
            #expect(results.count == 50)
        }
        #expect(kinds == ["committed", "fenced"], "the race never had both sides: \(kinds)")
        await a.close(); await b.close()
    }
}

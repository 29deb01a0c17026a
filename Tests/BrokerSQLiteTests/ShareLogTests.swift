import BrokerCore
import BrokerService
@testable import BrokerSQLite
import Foundation
import Testing

@Suite struct ShareLogTests {
    @Test func concurrentIntentsShareCommitsWithGapFreeSeqs() async throws {
        try await withStore { store, _ in
            let results = try await withThrowingTaskGroup(of: IntentResult.self) { group in
                for n in 1...200 { group.addTask { try await store.appendIntent(makeEntry(n)) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var seqs: [Int64] = []
            for result in results {
                guard case .committed(let position) = result else {
                    Issue.record("expected committed, got \(result)")
                    continue
                }
                #expect(position.stream == "node-1")
                seqs.append(position.seq)
            }
            #expect(seqs.sorted() == Array(1...200))
            let stats = store.commitStats
            #expect(stats.records == 200)
            #expect(stats.commits < 50, "group commit: \(stats.commits) transactions for 200 intents")
            #expect(try await store.count() == 200)
            // Every caller got its own record back.
            let records = try await store.records(stream: "node-1")
            let byShare = Dictionary(uniqueKeysWithValues: records.map { ($0.seq, $0.shareID) })
            #expect(Set(byShare.values).count == 200)
            #expect(try await store.verify().isIntact)
        }
    }

    @Test func positionsMatchTheStoredChain() async throws {
        try await withStore { store, _ in
            let positions = try await appendIntents(store, count: 3)
            let records = try await store.records(stream: "node-1")
            #expect(positions.map(\.hash) == records.map(\.hash))
            #expect(positions.map(\.seq) == [1, 2, 3])
            #expect(records.map(\.subject) == ["subject-1", "subject-1", "subject-1"])
        }
    }

    @Test func theRevocationFenceBlocksAnIntentUnderARevokedGrant() async throws {
        try await withStore { store, directory in
            let t0 = Date(timeIntervalSince1970: 1_726_000_000)
            for id in ["g-live", "g-revoked"] {
                try await store.addGrant(Grant(id: id, subject: "subject-1", provider: "demo-push",
                                               purpose: "essential.service.notifications.push", grantedAt: t0))
            }
            // A revoke as a later issue will do it: an UPDATE in its own transaction.
            try tamper(directory, "UPDATE grants SET revoked_at = 1726000100000000 WHERE id = 'g-revoked'")

            let fenced = try await store.appendIntent(makeEntry(1, grantIDs: ["g-live", "g-revoked"]))
            guard case .grantRevoked(let grantID, let position) = fenced else {
                Issue.record("expected grantRevoked, got \(fenced)")
                return
            }
            #expect(grantID == "g-revoked")
            #expect(position.seq == 1)
            let stored = try #require(try await store.records(stream: "node-1").first)
            #expect(stored.decision == "blocked")
            #expect(stored.body.contains(#""code":"consent_revoked""#))
            #expect(stored.body.contains(#""reasons":["consent_revoked"]"#))
            #expect(!stored.body.contains(#""action":"sent""#))

            // Redacted is fenced too; live grants and already-blocked shares pass unchanged.
            guard case .grantRevoked = try await store.appendIntent(makeEntry(2, decision: .redacted, grantIDs: ["g-revoked"])) else {
                Issue.record("a redacted share under a revoked grant must be fenced")
                return
            }
            guard case .committed = try await store.appendIntent(makeEntry(3, grantIDs: ["g-live"])),
                  case .committed = try await store.appendIntent(makeEntry(4, decision: .blocked, grantIDs: ["g-revoked"]))
            else {
                Issue.record("expected committed")
                return
            }
            let decisions = try await store.records(stream: "node-1").map(\.decision)
            #expect(decisions == ["blocked", "blocked", "allowed", "blocked"])
            #expect(try await store.verify().isIntact)
        }
    }

    @Test func danglingIntentsBecomeUnknownOutcomes() async throws {
        try await withStore { store, _ in
            try await appendIntents(store, count: 3)  // share-1…3 allowed
            _ = try await store.appendIntent(makeEntry(4, decision: .blocked))  // no outcome expected
            _ = try await store.appendOutcome(ShareOutcome(shareID: "share-2", time: baseTime, result: .ok, upstreamStatus: 200))
            let later = Date(timeIntervalSince1970: 1_726_000_500)

            #expect(try await store.resolveDanglingIntents(at: later) == 2)
            let outcomes = try await store.records(stream: "node-1").filter { $0.kind == "outcome" }
            #expect(outcomes.map(\.shareID) == ["share-2", "share-1", "share-3"])
            #expect(outcomes.dropFirst().allSatisfy { $0.body.contains(#""result":"unknown""#) && $0.time == later })
            #expect(try await store.resolveDanglingIntents(at: later) == 0)
            #expect(try await store.verify().isIntact)
        }
    }
}

import BrokerCore
import BrokerLogStore
import BrokerService
import BrokerTesting
import Foundation
import Testing

@Suite struct ShareQueriesContractTests {
    /// The exposure report at the store: per subject, what the provider received, paged by subject id.
    @Test(arguments: storeKinds)
    func exposureListsEachSubjectThatTheProviderReceivedDataAbout(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let log = store.log
            for subject in ["s-a", "s-b", "s-c"] { try await log.addGrant(grant("g-\(subject)", subject: subject)) }
            _ = try await log.appendIntent(entry(1, grantIDs: ["g-s-b"], subject: "s-b"))
            _ = try await log.appendIntent(entry(2, grantIDs: ["g-s-a"], subject: "s-a"))
            _ = try await log.appendIntent(entry(3, grantIDs: ["g-s-a"], subject: "s-a"))
            _ = try await log.appendIntent(entry(4, decision: .blocked, grantIDs: [], subject: "s-c"))
            let all = try await log.exposure(ExposureQuery(provider: "demo-push"), afterSubject: nil, limit: 10)
            #expect(all.map(\.subject) == ["s-a", "s-b"], "a blocked share sent nothing")
            #expect(all.map(\.shares) == [2, 1])
            #expect(all.first?.categories == ["user.device.push_token"])
            #expect(all.first?.firstShared == storeBaseTime.addingTimeInterval(2))
            #expect(all.first?.lastShared == storeBaseTime.addingTimeInterval(3))
            let page = try await log.exposure(ExposureQuery(provider: "demo-push"), afterSubject: "s-a", limit: 10)
            #expect(page.map(\.subject) == ["s-b"])
            let window = ExposureQuery(provider: "demo-push", since: storeBaseTime.addingTimeInterval(2.5))
            #expect(try await log.exposure(window, afterSubject: nil, limit: 10).map(\.shares) == [1])
            let other = ExposureQuery(provider: "demo-push", category: "user.location")
            #expect(try await log.exposure(other, afterSubject: nil, limit: 10).isEmpty)
        }
    }

    /// 30 shares over three days, two subjects, a blocked one every fifth, outcomes for the first ten.
    func seed(_ store: StoreUnderTest) async throws {
        try await store.log.addGrant(grant("g-1"))
        try await store.log.addGrant(grant("g-2", subject: "subject-2"))
        for n in 1...30 {
            var share = entry(n, decision: n % 5 == 0 ? .blocked : .allowed, grantIDs: [n % 2 == 0 ? "g-2" : "g-1"],
                              subject: n % 2 == 0 ? "subject-2" : "subject-1")
            share.time = storeBaseTime.addingTimeInterval(Double(n) * 7_200)
            if n % 3 == 0 { share.fields[0].fingerprint = "fp-\(n)" }
            _ = try await store.log.appendIntent(share)
        }
        _ = try await store.log.appendOutcomes((1...10).map {
            ShareOutcome(shareID: "node-1-share-\($0)", time: storeBaseTime, result: .ok, upstreamStatus: 200, latencyMs: 4)
        })
    }

    struct Answers: Equatable {
        var pages: [[String]] = []
        var filtered: [[String]] = []
        var one: String?
        var outcomeOfOne: String?
        var sharingList: [[String]] = []
    }

    func answers(_ store: StoreUnderTest) async throws -> Answers {
        var answers = Answers()
        var cursor: ShareCursor?
        repeat {
            let page = try await store.log.shares(ShareFilter(), after: cursor, limit: 7)
            answers.pages.append(page.map { "\($0.position.stream)#\($0.position.seq)" })
            cursor = page.last.map { ShareCursor(stream: $0.position.stream, seq: $0.position.seq) }
        } while !(answers.pages.last?.isEmpty ?? true)
        let window = (storeBaseTime.addingTimeInterval(20_000), storeBaseTime.addingTimeInterval(150_000))
        for filter in [ShareFilter(subject: "subject-2"), ShareFilter(decision: "blocked"), ShareFilter(category: "user.device"),
                       ShareFilter(category: "user.dev"), ShareFilter(fingerprints: ["fp-3", "fp-12"]),
                       ShareFilter(subject: "subject-1", since: window.0, until: window.1),
                       ShareFilter(provider: "demo-push", since: window.0, until: window.1), ShareFilter(fingerprints: [])] {
            answers.filtered.append(try await store.log.shares(filter, after: nil, limit: 100).map { "\($0.position.stream)#\($0.position.seq)" })
        }
        let one = try await store.log.share(id: "node-1-share-4")
        answers.one = one?.record
        answers.outcomeOfOne = one?.outcome
        for (since, until) in [(nil, nil), (window.0, window.1), (storeBaseTime.addingTimeInterval(86_400), nil)] as [(Date?, Date?)] {
            answers.sharingList.append(try await store.log.sharingList(since: since, until: until).map {
                "\($0.provider) \($0.purpose) \($0.category) sent=\($0.sent) blocked=\($0.blocked) subjects=\($0.subjects)"
            }.sorted().map { [$0] }.flatMap { $0 })
        }
        return answers
    }

    @Test(arguments: storeKinds)
    func queriesAnswerWhatTheLogHolds(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await seed(store)
            let found = try await answers(store)
            #expect(found.pages.map(\.count) == [7, 7, 7, 7, 2, 0])
            #expect(found.filtered[0].count == 15)                 // subject-2
            #expect(found.filtered[1].count == 6)                  // blocked
            #expect(found.filtered[2].count == 30)                 // category prefix
            #expect(found.filtered[3].isEmpty)                     // not a category boundary
            #expect(found.filtered[4].count == 2)                  // fingerprints
            #expect(found.filtered[7].isEmpty)
            #expect(found.one?.contains(#""share_id":"node-1-share-4""#) == true)
            #expect(found.outcomeOfOne?.contains(#""result":"ok""#) == true)
            #expect(found.sharingList[0] == [
                "demo-push essential.service.notifications.push user.device.push_token sent=24 blocked=6 subjects=2"])
        }
    }

    /// Both stores give the same answers to the same questions about the same log.
    @Test func bothStoresAnswerAlike() async throws {
        guard PostgresTestCluster.available else { return }
        var all: [Answers] = []
        for kind in StoreKind.allCases {
            all.append(try await withStore(kind) { store, _ in
                try await seed(store)
                return try await answers(store)
            })
        }
        #expect(all[0] == all[1])
    }
}

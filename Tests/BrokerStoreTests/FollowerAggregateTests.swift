import BrokerCore
import BrokerLogStore
import BrokerService
import BrokerTesting
import Foundation
import Testing

/// Issue 33: the aggregates (exposure, sharing list) are the log follower's, folded after the
/// intents commit; every answer stays exact whether a record is folded yet or not. The expected
/// answers are worked out here from the entries themselves (not from any SQL).
@Suite struct FollowerAggregateTests {
    static let categories = ["user.device.push_token", "user.content.notification", "user.content.title", "user.location.precise"]

    /// 90 shares of 7 subjects over 4 days, to demo-push and other-push; 1 in 6 blocked, 1 in 5
    /// redacted (its second field stripped), fields from the categories above in turn.
    static func entries() -> [ShareEntry] {
        (1...90).map { n in
            var share = entry(n, decision: n % 6 == 0 ? .blocked : .allowed, grantIDs: [], subject: "s-\(n * 7 % 7 + n % 7)")
            share.provider = n % 4 == 0 ? "other-push" : "demo-push"
            share.time = storeBaseTime.addingTimeInterval(Double(n) * 3_917)   // ~4 days, every hour or so
            share.fields[0].category = categories[n % categories.count]
            share.fields[1].category = categories[(n / 3) % categories.count]
            if n % 5 == 0, share.decision != .blocked { share.decision = .redacted; share.fields[1].action = .stripped }
            if n % 9 == 0 { share.fields[1].fingerprint = nil }   // a non-personal field
            return share
        }
    }

    /// The exposure report worked out from the entries.
    static func expected(_ entries: [ShareEntry], _ query: ExposureQuery) -> [ExposureRow] {
        let (from, to) = query.window
        var rows: [String: ExposureRow] = [:]
        for share in entries where share.provider == query.provider && share.decision != .blocked {
            let time = Microseconds.from(share.time)
            guard time >= from, time < to, let subject = share.subject else { continue }
            let matching = share.fields.filter { field in
                guard field.action.isSent, field.fingerprint != nil, let category = field.category else { return false }
                guard let filter = query.category else { return true }
                return category == filter || category.hasPrefix(filter + ".")
            }.compactMap(\.category)
            guard !matching.isEmpty else { continue }
            var row = rows[subject] ?? ExposureRow(subject: subject, categories: [], shares: 0, firstShared: share.time,
                                                   lastShared: share.time)
            row.shares += 1
            row.categories = Array(Set(row.categories + matching)).sorted()
            row.firstShared = min(row.firstShared, share.time)
            row.lastShared = max(row.lastShared, share.time)
            rows[subject] = row
        }
        return rows.values.sorted { $0.subject < $1.subject }
    }

    static let queries: [ExposureQuery] = {
        let day = 86_400.0
        let windows: [(Date?, Date?)] = [(nil, nil), (storeBaseTime.addingTimeInterval(0.6 * day), nil),
                                         (nil, storeBaseTime.addingTimeInterval(2.3 * day)),
                                         (storeBaseTime.addingTimeInterval(0.6 * day), storeBaseTime.addingTimeInterval(3.2 * day)),
                                         (storeBaseTime.addingTimeInterval(1.1 * day), storeBaseTime.addingTimeInterval(1.4 * day))]
        return ["demo-push", "other-push"].flatMap { provider in
            windows.flatMap { since, until in
                [nil, "user", "user.content", "user.content.title", "user.location"].map { category in
                    ExposureQuery(provider: provider, since: since, until: until, category: category)
                }
            }
        }
    }()

    /// Every query, read in pages of 2, against what the entries say.
    func check(_ log: any ShareQueries, _ entries: [ShareEntry], _ stage: String) async throws {
        for query in Self.queries {
            var pages: [ExposureRow] = []
            var after: String?
            while true {
                let page = try await log.exposure(query, afterSubject: after, limit: 2)
                pages += page
                guard page.count == 2, let last = page.last else { break }
                after = last.subject
            }
            let expected = Self.expected(entries, query)
            #expect(pages.map(\.subject) == expected.map(\.subject), "\(stage) \(query)")
            #expect(pages.map(\.shares) == expected.map(\.shares), "\(stage) \(query)")
            #expect(pages.map(\.categories) == expected.map(\.categories), "\(stage) \(query)")
            #expect(pages.map { Microseconds.from($0.firstShared) } == expected.map { Microseconds.from($0.firstShared) },
                    "\(stage) \(query)")
            #expect(pages.map { Microseconds.from($0.lastShared) } == expected.map { Microseconds.from($0.lastShared) },
                    "\(stage) \(query)")
        }
    }

    @Test(arguments: storeKinds)
    func exposureIsExactBeforeDuringAndAfterTheFold(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, database in
            store.foldDelay(nil)
            let entries = Self.entries()
            for share in entries[..<50] { _ = try await store.log.appendIntent(share) }
            try await check(store.log, Array(entries[..<50]), "all past the mark")
            try await store.fold()
            try await check(store.log, Array(entries[..<50]), "all folded")
            for share in entries[50...] { _ = try await store.log.appendIntent(share) }
            try await check(store.log, entries, "part folded")
            let list = try await store.log.sharingList(since: nil, until: nil)
            let windowed = try await store.log.sharingList(since: storeBaseTime.addingTimeInterval(30_000), until: nil)
            try await store.fold()
            try await check(store.log, entries, "folded again")
            #expect(Set(try await store.log.sharingList(since: nil, until: nil)) == Set(list), "the same folded or not")
            #expect(Set(try await store.log.sharingList(since: storeBaseTime.addingTimeInterval(30_000), until: nil)) == Set(windowed))
        }
    }

    /// A crash between an intent's commit and its fold loses nothing: the next open folds the
    /// records past the stored mark.
    @Test(arguments: storeKinds)
    func aRestartFoldsWhatTheLastProcessDidNot(_ kind: StoreKind) async throws {
        let database = try await TestDatabase.make(kind)
        defer { database.remove() }
        let entries = Self.entries()
        let first = try await database.open()
        first.foldDelay(nil)
        for share in entries[..<40] { _ = try await first.log.appendIntent(share) }
        try await first.fold()
        for share in entries[40...] { _ = try await first.log.appendIntent(share) }
        try await check(first.log, entries, "before the restart")
        let list = try await first.log.sharingList(since: nil, until: nil)
        // The second process reads the same database while the first has not folded its last 50.
        let second = try await database.open(stream: "node-1-reader")
        try await check(second.log, entries, "another process")
        #expect(Set(try await second.log.sharingList(since: nil, until: nil)) == Set(list))
        await second.close()
        await first.close()
        let third = try await database.open()
        try await check(third.log, entries, "after the restart")
        #expect(Set(try await third.log.sharingList(since: nil, until: nil)) == Set(list))
        await third.close()
    }
}

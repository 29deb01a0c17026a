import BrokerCore
import BrokerLogStore
import BrokerService
import BrokerTesting
import Foundation
import Testing

/// What the published list's drift gauge reads at each scrape (`disclosedTraffic(fromDay:)`): the
/// shares that sent each provider × purpose × category from a UTC day on, from the daily aggregates.
@Suite struct DisclosedTrafficTests {
    @Test(arguments: storeKinds)
    func countsTheSharesThatSentEachCategoryFromTheDayOn(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.log.addGrant(grant("g-1"))
            // storeBaseTime is 2024-09-10 20:26 UTC: shares 1–3 that day, 4–6 two days later, one blocked each day.
            for n in 1...6 {
                var share = entry(n, decision: n % 3 == 0 ? .blocked : .allowed, grantIDs: n % 3 == 0 ? [] : ["g-1"])
                share.time = storeBaseTime.addingTimeInterval(n <= 3 ? Double(n) : 2 * 86_400 + Double(n))
                if n == 2 { share.fields[1].action = .stripped }
                _ = try await store.log.appendIntent(share)
            }
            let traffic = try #require(store.log as? any DisclosedTrafficSource)
            let all = try await traffic.disclosedTraffic(fromDay: nil)
            #expect(all.count == 1)
            let row = try #require(all.first)
            #expect(row.provider == "demo-push" && row.purpose == "essential.service.notifications.push"
                    && row.category == "user.device.push_token")
            #expect(row.sent == 4, "the blocked shares sent nothing; a share counts once however many fields it sent")
            #expect(row.sent == (try await store.log.sharingList(since: nil, until: nil).first?.sent))

            let later = try #require(CalendarDay("2024-09-11"))
            #expect(try await traffic.disclosedTraffic(fromDay: later).map(\.sent) == [2], "from the day on only")
            #expect(try await traffic.disclosedTraffic(fromDay: later).first?.sent
                    == (try await store.log.sharingList(since: later.start, until: nil).first?.sent))
            #expect(try await traffic.disclosedTraffic(fromDay: CalendarDay("2024-09-13")).isEmpty)
        }
    }
}

import BrokerService
@testable import BrokerSQLite
import Foundation
import Testing

/// The sharing list reads whole days from the daily aggregates and partial days from the
/// records: any window must give what a count over the records gives.
@Suite struct SharingListTests {
    @Test func windowsWithPartialDaysAreExact() async throws {
        try await withStore { store, _ in
            let day: TimeInterval = 86_400
            let day0 = (Date().timeIntervalSince1970 / day).rounded(.down) * day - 3 * day
            let hours: [(Double, String)] = [(10, "a"), (24 + 1, "b"), (24 + 23, "a"), (48 + 5, "c"), (48 + 7, "a")]
            for (index, (hour, subject)) in hours.enumerated() {
                var entry = makeEntry(index + 1, subject: subject)
                entry.time = Date(timeIntervalSince1970: day0 + hour * 3600)
                _ = try await store.appendIntent(entry)
            }
            _ = try await store.appendIntent(makeEntry(99, decision: .blocked, subject: "d"))   // baseTime: long ago
            func count(_ from: Double?, _ to: Double?) async throws -> (sent: Int, subjects: Int, blocked: Int) {
                let rows = try await store.sharingList(since: from.map { Date(timeIntervalSince1970: day0 + $0 * 3600) },
                                                       until: to.map { Date(timeIntervalSince1970: day0 + $0 * 3600) })
                return (rows.map(\.sent).reduce(0, +), rows.map(\.subjects).reduce(0, +), rows.map(\.blocked).reduce(0, +))
            }
            #expect(try await count(nil, nil) == (5, 3, 1))
            #expect(try await count(12, 54) == (3, 3, 0), "day 1 whole, day 2 until 06:00")
            #expect(try await count(26, 46) == (0, 0, 0), "inside one day, between shares")
            #expect(try await count(24, 48) == (2, 2, 0), "exactly day 1")
            #expect(try await count(0, 10.5) == (1, 1, 0))
            #expect(try await count(47, nil) == (3, 2, 0))
        }
    }
}

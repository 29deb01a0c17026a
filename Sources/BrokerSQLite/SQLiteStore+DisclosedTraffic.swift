import BrokerCore
import BrokerLogStore
import BrokerService
import Foundation
import GRDB

/// The published list's drift gauge: shares that sent each provider × purpose × category from a day
/// on, from `sharing_daily` (its primary key starts with the day) and the follower's tail.
extension SQLiteStore: DisclosedTrafficSource {
    public func disclosedTraffic(fromDay day: CalendarDay?) async throws(LogUnavailable) -> [SharingListRow] {
        let from = day?.dayNumber ?? Int64.min / 2 / DayWindow.dayUs
        do {
            return try await pool.read { db in
                var list = SharingListRows()
                // A minimised field was sent too, as its coarser category.
                for row in try Row.fetchAll(db, sql: """
                    SELECT provider, purpose, category, sum(shares), min(first_us), max(last_us) FROM (
                        SELECT provider, purpose, category, shares, first_us, last_us FROM sharing_daily
                        WHERE day >= ? AND action IN ('sent', 'minimised')
                        UNION ALL
                        SELECT l.provider, l.purpose, json_extract(f.value, '$.category') AS category, count(DISTINCT l.share_id),
                               min(l.time_us), max(l.time_us)
                        FROM (\(Self.followerTail) AND l.time_us >= ? AND l.purpose IS NOT NULL) l, json_each(\(Self.bodyText("l")), '$.fields') f
                        WHERE json_extract(f.value, '$.action') IN ('sent', 'minimised') AND \(Self.personalField)
                          AND category IS NOT NULL
                        GROUP BY 1, 2, 3
                    ) GROUP BY provider, purpose, category
                    """, arguments: [from, from * DayWindow.dayUs]) {
                    list.add(provider: row[0], purpose: row[1], category: row[2], action: "sent", shares: row[3],
                             firstUs: row[4], lastUs: row[5], subjects: 0)
                }
                return list.rows
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading what the published list must disclose")
        }
    }
}

import BrokerCore
import BrokerLogStore
import BrokerService
import Foundation
import GRDB

/// The published list's drift gauge: shares that sent each provider × purpose × category from a day
/// on, from `sharing_daily` alone (its primary key starts with the day).
extension SQLiteStore: DisclosedTrafficSource {
    public func disclosedTraffic(fromDay day: CalendarDay?) async throws(LogUnavailable) -> [SharingListRow] {
        let from = day?.dayNumber ?? Int64.min / 2
        do {
            return try await pool.read { db in
                var list = SharingListRows()
                // A minimised field was sent too, as its coarser category.
                for row in try Row.fetchAll(db, sql: """
                    SELECT provider, purpose, category, sum(shares), min(first_us), max(last_us) FROM sharing_daily
                    WHERE day >= ? AND action IN ('sent', 'minimised') GROUP BY provider, purpose, category
                    """, arguments: [from]) {
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

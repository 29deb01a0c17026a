import BrokerCore
import BrokerLogStore
import BrokerService
import Foundation
import PostgresNIO

/// The published list's drift gauge: shares that sent each provider × purpose × category from a day
/// on, every node's, from `sharing_daily` (its primary key starts with the day) and the followers' tails.
extension PostgresStore: DisclosedTrafficSource {
    public func disclosedTraffic(fromDay day: CalendarDay?) async throws(LogUnavailable) -> [SharingListRow] {
        var query = QueryBuilder()
        // A minimised field was sent too, as its coarser category.
        let fromDay = day?.dayNumber ?? Int64.min / 2 / DayWindow.dayUs
        let sql = """
            SELECT provider, purpose, category, sum(shares)::bigint, min(first_us), max(last_us) FROM (
                SELECT provider, purpose, category, shares, first_us, last_us FROM sharing_daily
                WHERE day >= \(query.bind(fromDay)) AND action IN ('sent', 'minimised')
                UNION ALL
                SELECT l.provider, l.purpose, f->>'category', count(DISTINCT l.share_id), min(l.time_us), max(l.time_us)
                FROM (\(Self.followerTail) AND l.time_us >= \(query.bind(fromDay * DayWindow.dayUs)) AND l.purpose IS NOT NULL) l,
                     jsonb_array_elements(l.body::jsonb -> 'fields') f
                WHERE f->>'action' IN ('sent', 'minimised') AND (f->>'fingerprint' IS NOT NULL OR f->'fingerprints' IS NOT NULL)
                  AND f->>'category' IS NOT NULL
                GROUP BY 1, 2, 3) u
            GROUP BY provider, purpose, category
            """
        let statement = query.query(sql)
        return try await run("reading what the published list must disclose") { connection in
            var list = SharingListRows()
            for try await row in try await connection.query(statement, logger: self.logger) {
                let (provider, purpose, category, shares, firstUs, lastUs) =
                    try row.decode((String, String, String, Int64, Int64, Int64).self)
                list.add(provider: provider, purpose: purpose, category: category, action: "sent", shares: Int(shares),
                         firstUs: firstUs, lastUs: lastUs, subjects: 0)
            }
            return list.rows
        }
    }
}

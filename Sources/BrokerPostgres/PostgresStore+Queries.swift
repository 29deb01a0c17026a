import BrokerCore
import BrokerFields
import BrokerLogStore
import BrokerService
import Foundation
import NIOCore
import PostgresNIO

/// The compliance reads over every node's stream. Pages are in `(stream, seq)` order and a
/// cursor is a position in it, so a page never repeats or skips a record while nodes append:
/// a new record lands after its stream's last, and a cursor already past it never sees it twice.
extension PostgresStore: ShareQueries {
    public func shares(_ filter: ShareFilter, after cursor: ShareCursor?, limit: Int) async throws(LogUnavailable) -> [LoggedShare] {
        var query = QueryBuilder()
        var conditions = ["s.kind = 'share'"]
        for (column, value) in [("subject", filter.subject), ("provider", filter.provider), ("purpose", filter.purpose),
                                ("decision", filter.decision), ("caller", filter.caller)] {
            guard let value else { continue }
            conditions.append("s.\(column) = " + query.bind(value))
        }
        if let since = filter.since { conditions.append("s.time_us >= " + query.bind(Microseconds.from(since))) }
        if let until = filter.until { conditions.append("s.time_us < " + query.bind(Microseconds.from(until))) }
        var fieldConditions: [String] = []
        if let category = filter.category {
            let prefix = category.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + ".%"
            fieldConditions.append("(f->>'category' = \(query.bind(category)) OR f->>'category' LIKE \(query.bind(prefix)) ESCAPE '\\')")
        }
        if let fingerprints = filter.fingerprints {
            guard !fingerprints.isEmpty else { return [] }
            var matches = "f->>'fingerprint' = ANY(\(query.bind(fingerprints)))"
            if let short = filter.shortFingerprints, !short.isEmpty {
                // A folded entry lists its values' short prints instead.
                matches = "(\(matches) OR (f->'fingerprints') ?| \(query.bind(short)))"
            }
            fieldConditions.append(matches)
        }
        if !fieldConditions.isEmpty {
            conditions.append("EXISTS (SELECT 1 FROM jsonb_array_elements(s.body::jsonb -> 'fields') f WHERE "
                              + fieldConditions.joined(separator: " AND ") + ")")
        }
        if let cursor {
            conditions.append("(s.stream, s.seq) \(filter.newestFirst ? "<" : ">") (\(query.bind(cursor.stream)), \(query.bind(cursor.seq)))")
        }
        let sql = """
            SELECT s.stream, s.seq, s.hash, s.body, o.stream, o.seq, o.hash, o.body
            FROM share_log s
            LEFT JOIN share_log o ON o.share_id = s.share_id AND o.kind = 'outcome'
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(filter.newestFirst ? "s.stream DESC, s.seq DESC" : "s.stream, s.seq") LIMIT \(query.bind(Int64(max(1, limit))))
            """
        let statement = query.query(sql)
        return try await run("querying shares") { connection in
            try await Self.loggedShares(connection.query(statement, logger: self.logger))
        }
    }

    public func share(id: String) async throws(LogUnavailable) -> LoggedShare? {
        try await run("reading a share") { connection in
            try await Self.loggedShares(connection.query("""
                SELECT s.stream, s.seq, s.hash, s.body, o.stream, o.seq, o.hash, o.body
                FROM share_log s
                LEFT JOIN share_log o ON o.share_id = s.share_id AND o.kind = 'outcome'
                WHERE s.share_id = \(id) AND s.kind = 'share' LIMIT 1
                """, logger: self.logger)).first
        }
    }

    static func loggedShares(_ rows: PostgresRowSequence) async throws -> [LoggedShare] {
        var shares: [LoggedShare] = []
        for try await row in rows {
            let (stream, seq, hash, body, outcomeStream, outcomeSeq, outcomeHash, outcome) =
                try row.decode((String, Int64, ByteBuffer, String, String?, Int64?, ByteBuffer?, String?).self)
            var outcomePosition: ChainPosition?
            if let outcomeStream, let outcomeSeq, let outcomeHash {
                outcomePosition = ChainPosition(stream: outcomeStream, seq: outcomeSeq,
                                                hash: Hex.encode(Data(outcomeHash.readableBytesView)))
            }
            shares.append(LoggedShare(position: ChainPosition(stream: stream, seq: seq, hash: Hex.encode(Data(hash.readableBytesView))),
                                      record: body, outcome: outcome, outcomePosition: outcomePosition))
        }
        return shares
    }
}

extension PostgresStore: SharingListSource {
    /// Whole days from the daily aggregates (every node's batches add to the same rows), the
    /// partial days at the window's edges from the records themselves: exact for any window.
    public func exposure(_ query: ExposureQuery, afterSubject: String?, limit: Int) async throws(LogUnavailable) -> [ExposureRow] {
        let (from, to) = query.window
        let after = afterSubject ?? ""
        return try await run("reading an exposure report") { connection in
            var out: [ExposureRow] = []
            let rows = try await connection.query("""
                SELECT l.subject, string_agg(DISTINCT f->>'category', ','), count(DISTINCT l.share_id)::bigint,
                       min(l.time_us), max(l.time_us)
                FROM share_log l, jsonb_array_elements(l.body::jsonb -> 'fields') f
                WHERE l.kind = 'share' AND l.provider = \(query.provider) AND l.time_us >= \(from) AND l.time_us < \(to)
                  AND l.subject > \(after) AND l.decision IN ('allowed', 'redacted')
                  AND f->>'action' IN ('sent', 'minimised') AND (f->>'fingerprint' IS NOT NULL OR f->'fingerprints' IS NOT NULL)
                  AND (\(query.category)::text IS NULL OR f->>'category' = \(query.category) OR f->>'category' LIKE \(query.category) || '.%')
                GROUP BY l.subject ORDER BY l.subject LIMIT \(limit)
                """, logger: self.logger)
            for try await (subject, categories, shares, first, last) in rows.decode((String, String?, Int64, Int64, Int64).self) {
                out.append(ExposureRow(subject: subject, categories: (categories ?? "").split(separator: ",").map(String.init).sorted(),
                                       shares: Int(shares), firstShared: Microseconds.date(first), lastShared: Microseconds.date(last)))
            }
            return out
        }
    }

    public func sharingList(since: Date?, until: Date?) async throws(LogUnavailable) -> [SharingListRow] {
        let dayUs: Int64 = 86_400_000_000
        let from = since.map(Microseconds.from) ?? Int64.min / 2
        let to = until.map(Microseconds.from) ?? Int64.max / 2
        var firstDay = from >= 0 ? (from + dayUs - 1) / dayUs : from / dayUs
        var lastDay = (to >= 0 ? to / dayUs : (to - dayUs + 1) / dayUs) - 1
        if firstDay > lastDay { firstDay = Int64.max / dayUs; lastDay = firstDay - 1 }
        let edgeLow = (from, min(to, firstDay <= lastDay ? firstDay * dayUs : to))
        let edgeHigh = firstDay <= lastDay ? ((lastDay + 1) * dayUs, to) : (to, to)
        let whole = since == nil && until == nil
        var query = QueryBuilder()
        let raw = """
            SELECT s.provider, s.purpose, f->>'category' AS category, f->>'action' AS action, s.share_id, s.subject,
                   s.time_us
            FROM (SELECT * FROM share_log WHERE kind = 'share' AND time_us >= \(query.bind(edgeLow.0)) AND time_us < \(query.bind(edgeLow.1))
                  UNION ALL
                  SELECT * FROM share_log WHERE kind = 'share' AND time_us >= \(query.bind(edgeHigh.0)) AND time_us < \(query.bind(edgeHigh.1))) s,
                 jsonb_array_elements(s.body::jsonb -> 'fields') f
            WHERE s.purpose IS NOT NULL AND (f->>'fingerprint' IS NOT NULL OR f->'fingerprints' IS NOT NULL) AND f->>'category' IS NOT NULL
            """
        let days = "day BETWEEN \(query.bind(firstDay)) AND \(query.bind(lastDay))"
        let sql = """
            WITH raw AS (\(raw)),
            counts AS (
                SELECT provider, purpose, category, action, sum(shares)::bigint AS shares, min(first_us) AS first_us,
                       max(last_us) AS last_us FROM (
                    SELECT provider, purpose, category, action, shares, first_us, last_us FROM sharing_daily WHERE \(days)
                    UNION ALL
                    SELECT provider, purpose, category, action, count(DISTINCT share_id), min(time_us), max(time_us)
                    FROM raw GROUP BY provider, purpose, category, action) c
                GROUP BY provider, purpose, category, action),
            subjects AS (
                SELECT provider, purpose, category, count(DISTINCT subject)::bigint AS subjects FROM (
                    SELECT provider, purpose, category, subject FROM sharing_subject_span WHERE \(whole ? "true" : "false")
                    UNION ALL
                    SELECT provider, purpose, category, subject FROM sharing_subjects WHERE \(whole ? "false" : days)
                    UNION ALL
                    SELECT provider, purpose, category, subject FROM raw
                    WHERE \(whole ? "false" : "action IN ('sent', 'minimised') AND subject IS NOT NULL")) u
                GROUP BY provider, purpose, category)
            SELECT c.provider, c.purpose, c.category, c.action, c.shares, c.first_us, c.last_us, coalesce(s.subjects, 0)
            FROM counts c LEFT JOIN subjects s USING (provider, purpose, category)
            """
        let statement = query.query(sql)
        return try await run("building the sharing list") { connection in
            var list = SharingListRows()
            for try await row in try await connection.query(statement, logger: self.logger) {
                let (provider, purpose, category, action, shares, firstUs, lastUs, subjects) =
                    try row.decode((String, String, String, String, Int64, Int64, Int64, Int64).self)
                list.add(provider: provider, purpose: purpose, category: category, action: action, shares: Int(shares),
                         firstUs: firstUs, lastUs: lastUs, subjects: Int(subjects))
            }
            return list.rows
        }
    }
}

/// Dynamic SQL with bound values: `bind` appends a value and returns its placeholder.
struct QueryBuilder {
    private var bindings = PostgresBindings()

    mutating func bind<Value: PostgresDynamicTypeEncodable>(_ value: Value) -> String {
        bindings.append(value)
        return "$" + String(bindings.count)
    }

    func query(_ sql: String) -> PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}

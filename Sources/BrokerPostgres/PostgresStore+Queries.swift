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
    /// The share records the follower has not folded yet (past each stream's mark), as `l`; a
    /// query appends its own conditions after it (`AND …`).
    static let followerTail = """
        SELECT l.* FROM log_follower m JOIN share_log l ON l.stream = m.stream AND l.seq > m.seq WHERE l.kind = 'share'
        """

    /// From the exposure aggregates (`exposure_span` for the whole log, `exposure_daily`'s whole days
    /// for a window): the page's subjects first, then their rows; plus the records no aggregate
    /// holds yet (the window's partial days, the followers' tails). One REPEATABLE READ snapshot, so
    /// a fold committing meanwhile cannot move a record between the two reads.
    public func exposure(_ query: ExposureQuery, afterSubject: String?, limit: Int) async throws(LogUnavailable) -> [ExposureRow] {
        let (from, to) = query.window
        let window = DayWindow(from: from, to: to)
        let whole = query.since == nil && query.until == nil
        let after = afterSubject ?? ""
        let limit = Int64(max(1, limit))
        let key = query.category ?? ""
        return try await run("reading an exposure report") { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: self.logger)
            do {
                var page = ExposurePage(category: query.category, limit: Int(limit))
                let aggregates: PostgresRowSequence = whole
                    ? try await connection.query("""
                        WITH page AS (SELECT subject FROM exposure_span WHERE provider = \(query.provider) AND subject > \(after)
                                      AND category = \(key) ORDER BY subject LIMIT \(limit))
                        SELECT e.subject, e.category, e.shares, e.first_us, e.last_us, e.sent FROM exposure_span e JOIN page USING (subject)
                        WHERE e.provider = \(query.provider) AND (e.category = \(key) OR e.sent) ORDER BY e.subject
                        """, logger: self.logger)
                    : try await connection.query("""
                        WITH page AS (SELECT DISTINCT subject FROM exposure_daily WHERE provider = \(query.provider)
                                      AND subject > \(after) AND category = \(key) AND day BETWEEN \(window.firstDay) AND \(window.lastDay)
                                      ORDER BY subject LIMIT \(limit))
                        SELECT e.subject, e.category, sum(e.shares)::bigint, min(e.first_us), max(e.last_us), bool_or(e.sent)
                        FROM exposure_daily e JOIN page USING (subject)
                        WHERE e.provider = \(query.provider) AND e.day BETWEEN \(window.firstDay) AND \(window.lastDay)
                          AND (e.category = \(key) OR e.sent)
                        GROUP BY e.subject, e.category ORDER BY e.subject
                        """, logger: self.logger)
                for try await (subject, category, shares, first, last, sent) in aggregates.decode((String, String, Int64, Int64, Int64, Bool).self) {
                    _ = page.addAggregate(subject: subject, category: category, shares: shares, first: first, last: last, sent: sent)
                }
                let raw = try await connection.query("""
                    SELECT l.subject, l.share_id, l.time_us, f->>'category'
                    FROM (SELECT * FROM share_log WHERE provider = \(query.provider) AND kind = 'share'
                            AND time_us >= \(window.edgeLow.from) AND time_us < \(window.edgeLow.to)
                          UNION ALL
                          SELECT * FROM share_log WHERE provider = \(query.provider) AND kind = 'share'
                            AND time_us >= \(window.edgeHigh.from) AND time_us < \(window.edgeHigh.to)
                          UNION ALL
                          SELECT l.* FROM log_follower m JOIN share_log l ON l.stream = m.stream AND l.seq > m.seq
                          WHERE l.kind = 'share' AND l.provider = \(query.provider)
                            AND l.time_us >= \(window.wholeRange.from) AND l.time_us < \(window.wholeRange.to)) l,
                         jsonb_array_elements(l.body::jsonb -> 'fields') f
                    WHERE l.subject > \(after) AND l.decision IN ('allowed', 'redacted') AND f->>'action' IN ('sent', 'minimised')
                      AND (f->>'fingerprint' IS NOT NULL OR f->'fingerprints' IS NOT NULL)
                    """, logger: self.logger)
                for try await (subject, shareID, time, category) in raw.decode((String, String, Int64, String?).self) {
                    page.addRecordField(subject: subject, shareID: shareID, time: time, category: category)
                }
                try await connection.query("COMMIT", logger: self.logger)
                return page.rows
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    public func sharingList(since: Date?, until: Date?) async throws(LogUnavailable) -> [SharingListRow] {
        let window = DayWindow(from: since.map(Microseconds.from) ?? Int64.min / 2, to: until.map(Microseconds.from) ?? Int64.max / 2)
        let (firstDay, lastDay, edgeLow, edgeHigh) = (window.firstDay, window.lastDay, window.edgeLow, window.edgeHigh)
        let whole = since == nil && until == nil
        var query = QueryBuilder()
        let raw = """
            SELECT s.provider, s.purpose, f->>'category' AS category, f->>'action' AS action, s.share_id, s.subject,
                   s.time_us
            FROM (SELECT * FROM share_log WHERE kind = 'share' AND time_us >= \(query.bind(edgeLow.0)) AND time_us < \(query.bind(edgeLow.1))
                  UNION ALL
                  SELECT * FROM share_log WHERE kind = 'share' AND time_us >= \(query.bind(edgeHigh.0)) AND time_us < \(query.bind(edgeHigh.1))
                  UNION ALL
                  \(Self.followerTail) AND l.time_us >= \(query.bind(window.wholeRange.from)) AND l.time_us < \(query.bind(window.wholeRange.to))) s,
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
                    WHERE action IN ('sent', 'minimised') AND subject IS NOT NULL) u
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

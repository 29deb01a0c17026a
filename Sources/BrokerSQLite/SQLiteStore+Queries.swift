import BrokerLogStore
import BrokerCore
import BrokerService
import Foundation
import GRDB

extension SQLiteStore: ShareQueries {
    public func shares(_ filter: ShareFilter, after cursor: ShareCursor?, limit: Int) async throws(LogUnavailable) -> [LoggedShare] {
        // A time window becomes a seq range per stream first (from the time index), so each page
        // walks one index range in log order instead of sorting the whole window.
        let ranges = filter.since != nil || filter.until != nil ? try await seqRanges(filter) : nil
        guard let (sql, values) = Self.sharesQuery(filter, after: cursor, limit: limit, ranges: ranges) else { return [] }
        do {
            return try await pool.read { db in
                try Row.fetchAll(db.cachedStatement(sql: sql), arguments: StatementArguments(values)).map(Self.loggedShare)
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "querying shares")
        }
    }

    typealias SeqRange = (stream: String, low: Int64, high: Int64)

    /// The SQL of one page of `shares` and its arguments; `nil` when the page is certainly empty.
    /// With `ranges` (a time window's seq range per stream) the cursor narrows the ranges themselves.
    /// A page is one range of an index in `(stream, seq)` order, forwards or backwards: the subject's
    /// when there is a subject (a privacy centre page costs O(page) whatever the history's length),
    /// else the provider's, else the key.
    static func sharesQuery(_ filter: ShareFilter, after cursor: ShareCursor?, limit: Int,
                            ranges: [SeqRange]?) -> (String, [DatabaseValue])? {
        var conditions = ["s.kind = 'share'"]
        var arguments: [DatabaseValue] = []
        for (column, value) in [("subject", filter.subject), ("provider", filter.provider), ("purpose", filter.purpose),
                                ("decision", filter.decision), ("caller", filter.caller)] {
            guard let value else { continue }
            conditions.append("s.\(column) = ?")
            arguments.append(value.databaseValue)
        }
        if let since = filter.since { conditions.append("s.time_us >= ?"); arguments.append(Microseconds.from(since).databaseValue) }
        if let until = filter.until { conditions.append("s.time_us < ?"); arguments.append(Microseconds.from(until).databaseValue) }
        var fieldConditions: [String] = []
        if let category = filter.category {
            fieldConditions.append("(json_extract(f.value, '$.category') = ? OR json_extract(f.value, '$.category') LIKE ? ESCAPE '\\')")
            arguments.append(category.databaseValue)
            arguments.append((category.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + ".%").databaseValue)
        }
        if let fingerprints = filter.fingerprints {
            guard !fingerprints.isEmpty else { return nil }
            var matches = "json_extract(f.value, '$.fingerprint') IN (\(fingerprints.map { _ in "?" }.joined(separator: ",")))"
            arguments.append(contentsOf: fingerprints.map(\.databaseValue))
            if let short = filter.shortFingerprints, !short.isEmpty {
                // A folded entry lists its values' short prints instead.
                matches = "(\(matches) OR EXISTS (SELECT 1 FROM json_each(f.value, '$.fingerprints') p WHERE p.value IN ("
                    + short.map { _ in "?" }.joined(separator: ",") + ")))"
                arguments.append(contentsOf: short.map(\.databaseValue))
            }
            fieldConditions.append(matches)
        }
        if !fieldConditions.isEmpty {
            conditions.append("EXISTS (SELECT 1 FROM json_each(\(bodyText("s")), '$.fields') f WHERE \(fieldConditions.joined(separator: " AND ")))")
        }
        let backwards = filter.newestFirst
        let index = filter.subject != nil ? "share_log_subject_seq" : filter.provider != nil ? "share_log_provider_seq" : nil
        if var ranges {
            if let cursor {
                ranges = ranges.compactMap { range in
                    if backwards {
                        if range.stream > cursor.stream { return nil }
                        if range.stream < cursor.stream { return range }
                        let high = min(range.high, cursor.seq - 1)
                        return range.low <= high ? (range.stream, range.low, high) : nil
                    }
                    if range.stream < cursor.stream { return nil }
                    if range.stream > cursor.stream { return range }
                    let low = max(range.low, cursor.seq + 1)
                    return low <= range.high ? (range.stream, low, range.high) : nil
                }
            }
            guard !ranges.isEmpty else { return nil }
            conditions.append("(" + ranges.map { _ in "(s.stream = ? AND s.seq BETWEEN ? AND ?)" }.joined(separator: " OR ") + ")")
            for range in ranges {
                arguments.append(contentsOf: [range.stream.databaseValue, range.low.databaseValue, range.high.databaseValue])
            }
        } else if let cursor {
            conditions.append(backwards ? "(s.stream < ? OR (s.stream = ? AND s.seq < ?))" : "(s.stream > ? OR (s.stream = ? AND s.seq > ?))")
            arguments.append(contentsOf: [cursor.stream.databaseValue, cursor.stream.databaseValue, cursor.seq.databaseValue])
        }
        arguments.append(max(1, limit).databaseValue)
        let sql = """
            SELECT s.stream, s.seq, s.hash, \(bodyText("s")), o.stream, o.seq, o.hash, \(bodyText("o"))
            FROM share_log s\(index.map { " INDEXED BY " + $0 } ?? "")
            LEFT JOIN share_log o ON o.share_id = s.share_id AND o.kind = 'outcome'
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(backwards ? "s.stream DESC, s.seq DESC" : "s.stream, s.seq") LIMIT ?
            """
        return (sql, arguments)
    }

    /// Per stream, the first and last seq of the shares in the filter's time window (of every provider:
    /// a provider's page then walks its own index within the range, and checks the time of each row).
    func seqRanges(_ filter: ShareFilter) async throws(LogUnavailable) -> [SeqRange] {
        let from = filter.since.map(Microseconds.from) ?? Int64.min
        let to = filter.until.map(Microseconds.from) ?? Int64.max
        do {
            return try await pool.read { db in
                let sql = "SELECT stream, min(seq), max(seq) FROM share_log WHERE kind = 'share' AND time_us >= ? AND time_us < ? GROUP BY stream"
                return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: [from, to]).compactMap { row in
                    guard let low = row[1] as Int64?, let high = row[2] as Int64? else { return nil }
                    return (stream: row[0], low: low, high: high)
                }
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "querying shares")
        }
    }

    public func share(id: String) async throws(LogUnavailable) -> LoggedShare? {
        do {
            return try await pool.read { db in
                try Row.fetchOne(db.cachedStatement(sql: """
                    SELECT s.stream, s.seq, s.hash, \(Self.bodyText("s")), o.stream, o.seq, o.hash, \(Self.bodyText("o"))
                    FROM share_log s
                    LEFT JOIN share_log o ON o.share_id = s.share_id AND o.kind = 'outcome'
                    WHERE s.share_id = ? AND s.kind = 'share' LIMIT 1
                    """), arguments: [id]).map(Self.loggedShare)
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading a share")
        }
    }

    static func loggedShare(_ row: Row) -> LoggedShare {
        let outcomeStream: String? = row[4]
        let outcomePosition = outcomeStream.map { stream in
            ChainPosition(stream: stream, seq: row[5], hash: Hex.encode(row[6] as Data))
        }
        return LoggedShare(position: ChainPosition(stream: row[0], seq: row[1], hash: Hex.encode(row[2] as Data)),
                           record: row[3], outcome: row[7], outcomePosition: outcomePosition)
    }
}

extension SQLiteStore: SharingListSource {
    /// The share records the follower has not folded yet (past its mark, per stream), as `l`;
    /// a query appends its own conditions after it (`AND …`). The marks outside (`CROSS JOIN`
    /// keeps SQLite's loop order), and inside a key range of the log (`INDEXED BY` its primary
    /// key): left to itself, the planner walks every share of a provider or time by another index
    /// and tests each against the mark.
    static let followerTail = """
        SELECT l.* FROM log_follower m CROSS JOIN share_log l INDEXED BY sqlite_autoindex_share_log_1
            ON l.stream = m.stream AND l.seq > m.seq WHERE l.kind = 'share'
        """

    /// A logged field `f` of a personal value: it has a fingerprint, or (folded) its values' short prints.
    static let personalField = "(json_extract(f.value, '$.fingerprint') IS NOT NULL OR json_extract(f.value, '$.fingerprints') IS NOT NULL)"

    /// From the exposure aggregates (`exposure_span` for the whole log, `exposure_daily`'s whole days
    /// for a window) in subject order, plus the records no aggregate holds yet (the window's partial
    /// days, the follower's tail), so a page costs about its own rows and the answer is exact.
    public func exposure(_ query: ExposureQuery, afterSubject: String?, limit: Int) async throws(LogUnavailable) -> [ExposureRow] {
        let (from, to) = query.window
        let window = DayWindow(from: from, to: to)
        let whole = query.since == nil && query.until == nil
        let after = afterSubject ?? ""
        let limit = max(1, limit)
        do {
            return try await readSnapshot { db in
                var page = ExposurePage(category: query.category, limit: limit)
                // The aggregates, in subject order, until `limit` subjects are complete.
                // Cached statements: a report reads page after page, and each statement costs more to prepare
                // (the raw part's unions and json_each) than to run on a page.
                let rows = whole
                    ? try Row.fetchCursor(db.cachedStatement(sql: """
                        SELECT subject, category, shares, first_us, last_us, sent FROM exposure_span
                        WHERE provider = ? AND subject > ? AND (category = ? OR sent = 1) ORDER BY subject
                        """), arguments: [query.provider, after, query.category ?? ""])
                    : try Row.fetchCursor(db.cachedStatement(sql: """
                        SELECT subject, category, shares, first_us, last_us, sent FROM exposure_daily
                        WHERE provider = ? AND subject > ? AND day BETWEEN ? AND ? AND (category = ? OR sent = 1)
                        ORDER BY subject
                        """), arguments: [query.provider, after, window.firstDay, window.lastDay, query.category ?? ""])
                while let row = try rows.next() {
                    guard page.addAggregate(subject: row[0], category: row[1], shares: row[2], first: row[3], last: row[4],
                                            sent: row[5]) else { break }
                }
                // The records no aggregate holds: the partial days, and the tail inside the whole days.
                let raw = try Row.fetchCursor(db.cachedStatement(sql: """
                    SELECT l.subject, l.share_id, l.time_us, json_extract(f.value, '$.category')
                    FROM (SELECT * FROM share_log INDEXED BY share_log_time
                          WHERE provider = ? AND kind = 'share' AND time_us >= ? AND time_us < ?
                          UNION ALL SELECT * FROM share_log INDEXED BY share_log_time
                          WHERE provider = ? AND kind = 'share' AND time_us >= ? AND time_us < ?
                          UNION ALL \(Self.followerTail) AND l.provider = ? AND l.time_us >= ? AND l.time_us < ?) l,
                         json_each(\(Self.bodyText("l")), '$.fields') f
                    WHERE l.subject > ? AND l.decision IN ('allowed', 'redacted')
                      AND json_extract(f.value, '$.action') IN ('sent', 'minimised') AND \(Self.personalField)
                    """), arguments: [query.provider, window.edgeLow.from, window.edgeLow.to,
                                     query.provider, window.edgeHigh.from, window.edgeHigh.to,
                                     query.provider, window.wholeRange.from, window.wholeRange.to, after])
                while let row = try raw.next() {
                    page.addRecordField(subject: row[0], shareID: row[1], time: row[2], category: row[3])
                }
                return page.rows
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading an exposure report")
        }
    }

    public func sharingList(since: Date?, until: Date?) async throws(LogUnavailable) -> [SharingListRow] {
        let window = DayWindow(from: since.map(Microseconds.from) ?? Int64.min / 2, to: until.map(Microseconds.from) ?? Int64.max / 2)
        // The records no aggregate holds: the partial days at the edges, and the follower's tail
        // (records past its mark) inside the whole days. Each part on its own, so an index serves it.
        let raw = """
            SELECT s.provider AS provider, s.purpose AS purpose, json_extract(f.value, '$.category') AS category,
                   json_extract(f.value, '$.action') AS action, s.share_id AS share_id, s.subject AS subject, s.time_us AS time_us
            FROM (SELECT * FROM share_log WHERE kind = 'share' AND time_us >= ? AND time_us < ?
                  UNION ALL SELECT * FROM share_log WHERE kind = 'share' AND time_us >= ? AND time_us < ?
                  UNION ALL \(Self.followerTail) AND l.time_us >= ? AND l.time_us < ?) s, json_each(\(Self.bodyText("s")), '$.fields') f
            WHERE s.kind = 'share' AND s.purpose IS NOT NULL AND \(Self.personalField)
            """
        let edges: [Int64] = [window.edgeLow.from, window.edgeLow.to, window.edgeHigh.from, window.edgeHigh.to,
                              window.wholeRange.from, window.wholeRange.to]
        let whole = since == nil && until == nil
        do {
            return try await pool.read { db in
                let counts = try Row.fetchAll(db, sql: """
                    SELECT provider, purpose, category, action, sum(shares), min(first_us), max(last_us) FROM (
                        SELECT provider, purpose, category, action, shares, first_us, last_us FROM sharing_daily
                        WHERE day BETWEEN ? AND ?
                        UNION ALL
                        SELECT provider, purpose, category, action, count(DISTINCT share_id), min(time_us), max(time_us)
                        FROM (\(raw)) WHERE category IS NOT NULL GROUP BY provider, purpose, category, action
                    ) GROUP BY provider, purpose, category, action
                    """, arguments: StatementArguments([window.firstDay, window.lastDay] + edges))
                // The whole log: the span rows, plus the raw records' subjects they do not hold yet.
                let subjects = whole
                    ? try Row.fetchAll(db, sql: """
                        SELECT provider, purpose, category, sum(n) FROM (
                            SELECT provider, purpose, category, count(*) AS n FROM sharing_subject_span GROUP BY provider, purpose, category
                            UNION ALL
                            SELECT provider, purpose, category, count(DISTINCT subject) FROM (\(raw)) r
                            WHERE category IS NOT NULL AND action IN ('sent', 'minimised') AND subject IS NOT NULL
                              AND NOT EXISTS (SELECT 1 FROM sharing_subject_span p WHERE p.provider = r.provider
                                              AND p.purpose = r.purpose AND p.category = r.category AND p.subject = r.subject)
                            GROUP BY provider, purpose, category
                        ) GROUP BY provider, purpose, category
                        """, arguments: StatementArguments(edges))
                    : try Row.fetchAll(db, sql: """
                    SELECT provider, purpose, category, count(DISTINCT subject) FROM (
                        SELECT provider, purpose, category, subject FROM sharing_subjects WHERE day BETWEEN ? AND ?
                        UNION ALL
                        SELECT provider, purpose, category, subject FROM (\(raw))
                        WHERE category IS NOT NULL AND action IN ('sent', 'minimised') AND subject IS NOT NULL
                    ) GROUP BY provider, purpose, category
                    """, arguments: StatementArguments([window.firstDay, window.lastDay] + edges))
                var distinct: [String: Int] = [:]
                for row in subjects {
                    distinct[(row[0] as String) + "\u{0}" + (row[1] as String) + "\u{0}" + (row[2] as String)] = row[3]
                }
                var list = SharingListRows()
                for row in counts {
                    let provider: String = row[0], purpose: String = row[1], category: String = row[2]
                    list.add(provider: provider, purpose: purpose, category: category, action: row[3], shares: row[4],
                             firstUs: row[5], lastUs: row[6],
                             subjects: distinct[provider + "\u{0}" + purpose + "\u{0}" + category] ?? 0)
                }
                return list.rows
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "building the sharing list")
        }
    }
}

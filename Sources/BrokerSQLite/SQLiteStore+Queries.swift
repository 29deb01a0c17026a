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
            conditions.append("EXISTS (SELECT 1 FROM json_each(s.body, '$.fields') f WHERE \(fieldConditions.joined(separator: " AND ")))")
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
            SELECT s.stream, s.seq, s.hash, s.body, o.stream, o.seq, o.hash, o.body
            FROM share_log s\(index.map { " INDEXED BY " + $0 } ?? "")
            LEFT JOIN share_log o ON o.share_id = s.share_id AND o.kind = 'outcome'
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(backwards ? "s.stream DESC, s.seq DESC" : "s.stream, s.seq") LIMIT ?
            """
        return (sql, arguments)
    }

    /// Per stream, the first and last seq of the shares in the filter's time window (and provider).
    func seqRanges(_ filter: ShareFilter) async throws(LogUnavailable) -> [SeqRange] {
        let from = filter.since.map(Microseconds.from) ?? Int64.min
        let to = filter.until.map(Microseconds.from) ?? Int64.max
        let provider = filter.provider
        do {
            return try await pool.read { db in
                let sql = provider == nil
                    ? "SELECT stream, min(seq), max(seq) FROM share_log WHERE kind = 'share' AND time_us >= ? AND time_us < ? GROUP BY stream"
                    : "SELECT stream, min(seq), max(seq) FROM share_log WHERE provider = ? AND kind = 'share' AND time_us >= ? AND time_us < ? GROUP BY stream"
                let arguments: StatementArguments = provider.map { [$0, from, to] } ?? [from, to]
                return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).compactMap { row in
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
                    SELECT s.stream, s.seq, s.hash, s.body, o.stream, o.seq, o.hash, o.body
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
    /// A logged field `f` of a personal value: it has a fingerprint, or (folded) its values' short prints.
    static let personalField = "(json_extract(f.value, '$.fingerprint') IS NOT NULL OR json_extract(f.value, '$.fingerprints') IS NOT NULL)"

    /// Whole days inside the window come from the daily aggregates; the partial days at its
    /// edges from the records themselves, so the answer is exact for any `since`/`until`.
    public func exposure(_ query: ExposureQuery, afterSubject: String?, limit: Int) async throws(LogUnavailable) -> [ExposureRow] {
        let (from, to) = query.window
        do {
            return try await readSnapshot { db in
                // The provider's shares in the window (its time index), their sent personal fields
                // (a fingerprint marks a personal one), one row per subject.
                try Row.fetchAll(db, sql: """
                    SELECT l.subject, group_concat(DISTINCT json_extract(f.value, '$.category')), count(DISTINCT l.share_id),
                           min(l.time_us), max(l.time_us)
                    FROM share_log l, json_each(l.body, '$.fields') f
                    WHERE l.kind = 'share' AND l.provider = ? AND l.time_us >= ? AND l.time_us < ? AND l.subject > ?
                      AND l.decision IN ('allowed', 'redacted')
                      AND json_extract(f.value, '$.action') IN ('sent', 'minimised') AND \(Self.personalField)
                      AND (? IS NULL OR json_extract(f.value, '$.category') = ? OR json_extract(f.value, '$.category') LIKE ? || '.%')
                    GROUP BY l.subject ORDER BY l.subject LIMIT ?
                    """, arguments: [query.provider, from, to, afterSubject ?? "", query.category, query.category, query.category, limit])
                .map { row in
                    ExposureRow(subject: row[0], categories: ((row[1] as String?) ?? "").split(separator: ",").map(String.init).sorted(),
                                shares: row[2], firstShared: Microseconds.date(row[3]), lastShared: Microseconds.date(row[4]))
                }
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading an exposure report")
        }
    }

    public func sharingList(since: Date?, until: Date?) async throws(LogUnavailable) -> [SharingListRow] {
        let dayUs: Int64 = 86_400_000_000
        let from = since.map(Microseconds.from) ?? Int64.min / 2
        let to = until.map(Microseconds.from) ?? Int64.max / 2
        // Full days [firstDay, lastDay]; the raw edges are [from, firstDay) and [lastDay + 1, to).
        var firstDay = from >= 0 ? (from + dayUs - 1) / dayUs : from / dayUs
        var lastDay = (to >= 0 ? to / dayUs : (to - dayUs + 1) / dayUs) - 1
        if firstDay > lastDay { firstDay = Int64.max / dayUs; lastDay = firstDay - 1 }   // no full day: all raw
        let edgeLow = (from, min(to, firstDay <= lastDay ? firstDay * dayUs : to))
        let edgeHigh = firstDay <= lastDay ? ((lastDay + 1) * dayUs, to) : (to, to)
        // Each edge on its own, so the time index serves it (an OR of two ranges would scan).
        let raw = """
            SELECT s.provider AS provider, s.purpose AS purpose, json_extract(f.value, '$.category') AS category,
                   json_extract(f.value, '$.action') AS action, s.share_id AS share_id, s.subject AS subject, s.time_us AS time_us
            FROM (SELECT * FROM share_log WHERE kind = 'share' AND time_us >= ? AND time_us < ?
                  UNION ALL SELECT * FROM share_log WHERE kind = 'share' AND time_us >= ? AND time_us < ?) s, json_each(s.body, '$.fields') f
            WHERE s.kind = 'share' AND s.purpose IS NOT NULL AND \(Self.personalField)
            """
        let dayArguments: [Int64] = [firstDay, lastDay, edgeLow.0, edgeLow.1, edgeHigh.0, edgeHigh.1]
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
                    """, arguments: StatementArguments(dayArguments))
                let subjects = since == nil && until == nil
                    ? try Row.fetchAll(db, sql: """
                        SELECT provider, purpose, category, count(*) FROM sharing_subject_span GROUP BY provider, purpose, category
                        """)
                    : try Row.fetchAll(db, sql: """
                    SELECT provider, purpose, category, count(DISTINCT subject) FROM (
                        SELECT provider, purpose, category, subject FROM sharing_subjects WHERE day BETWEEN ? AND ?
                        UNION ALL
                        SELECT provider, purpose, category, subject FROM (\(raw))
                        WHERE category IS NOT NULL AND action IN ('sent', 'minimised') AND subject IS NOT NULL
                    ) GROUP BY provider, purpose, category
                    """, arguments: StatementArguments(dayArguments))
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

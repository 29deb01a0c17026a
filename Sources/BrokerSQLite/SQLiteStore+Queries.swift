import BrokerCore
import BrokerService
import Foundation
import GRDB

extension SQLiteStore: ShareQueries {
    public func shares(_ filter: ShareFilter, after cursor: ShareCursor?, limit: Int) async throws(LogUnavailable) -> [LoggedShare] {
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
            guard !fingerprints.isEmpty else { return [] }
            fieldConditions.append("json_extract(f.value, '$.fingerprint') IN (\(fingerprints.map { _ in "?" }.joined(separator: ",")))")
            arguments.append(contentsOf: fingerprints.map(\.databaseValue))
        }
        if !fieldConditions.isEmpty {
            conditions.append("EXISTS (SELECT 1 FROM json_each(s.body, '$.fields') f WHERE \(fieldConditions.joined(separator: " AND ")))")
        }
        if let cursor {
            conditions.append("(s.stream > ? OR (s.stream = ? AND s.seq > ?))")
            arguments.append(contentsOf: [cursor.stream.databaseValue, cursor.stream.databaseValue, cursor.seq.databaseValue])
        }
        arguments.append(max(1, limit).databaseValue)
        let sql = """
            SELECT s.stream, s.seq, s.hash, s.body, o.stream, o.seq, o.hash, o.body
            FROM share_log s
            LEFT JOIN share_log o ON o.share_id = s.share_id AND o.kind = 'outcome'
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY s.stream, s.seq LIMIT ?
            """
        let values = arguments
        do {
            return try await pool.read { db in
                try Row.fetchAll(db.cachedStatement(sql: sql), arguments: StatementArguments(values)).map(Self.loggedShare)
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
    public func sharingList(since: Date?, until: Date?) async throws(LogUnavailable) -> [SharingListRow] {
        let from = since.map(Microseconds.from) ?? Int64.min
        let to = until.map(Microseconds.from) ?? Int64.max
        do {
            return try await pool.read { db in
                // One pass over the shares in the window and their fields: per provider, purpose,
                // category and action, the shares, the subjects and the time span.
                let rows = try Row.fetchAll(db, sql: """
                    SELECT s.provider, s.purpose, json_extract(f.value, '$.category') AS category,
                           json_extract(f.value, '$.action') AS action,
                           count(DISTINCT s.share_id), count(DISTINCT s.subject), min(s.time_us), max(s.time_us)
                    FROM share_log s, json_each(s.body, '$.fields') f
                    WHERE s.kind = 'share' AND s.time_us >= ? AND s.time_us < ? AND s.purpose IS NOT NULL
                      AND category IS NOT NULL
                    GROUP BY s.provider, s.purpose, category, action
                    """, arguments: [from, to])
                var merged: [String: SharingListRow] = [:]
                for row in rows {
                    let provider: String = row[0], purpose: String = row[1], category: String = row[2]
                    let action: String = row[3]
                    let shares: Int = row[4], subjects: Int = row[5]
                    let first = Microseconds.date(row[6]), last = Microseconds.date(row[7])
                    let key = provider + "\u{0}" + purpose + "\u{0}" + category
                    var entry = merged[key] ?? SharingListRow(provider: provider, purpose: purpose, category: category, sent: 0,
                                                              stripped: 0, blocked: 0, subjects: 0, firstSeen: first, lastSeen: last)
                    switch action {
                    case "sent": entry.sent = shares; entry.subjects = subjects
                    case "stripped": entry.stripped = shares
                    default: entry.blocked = shares
                    }
                    entry.firstSeen = min(entry.firstSeen, first)
                    entry.lastSeen = max(entry.lastSeen, last)
                    merged[key] = entry
                }
                return Array(merged.values)
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "building the sharing list")
        }
    }
}

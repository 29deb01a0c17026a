import BrokerCore
import Foundation

/// The exposure report: every subject whose personal data one provider received in a window,
/// with the categories and the first and last time, and the totals. After a provider reports a
/// security incident, these are the people to notify. Streamed page by page (constant memory),
/// as JSON, NDJSON or CSV; the same text over HTTP and on the command line.
public enum ExposureReport {
    public enum Format: Sendable { case json, ndjson, csv }

    public static let csvHeader = "subject,categories,shares,first_shared,last_shared"
    static let page = 1000

    /// Writes the whole report through `write`, a page of subjects at a time.
    public static func stream(_ queries: any ShareQueries, _ query: ExposureQuery, format: Format,
                              write: (String) async throws -> Void) async throws {
        var after: String?
        var subjects = 0, shares = 0
        switch format {
        case .json:
            try await write(#"{"provider":"# + JSONText.quoted(query.provider) + #","category":"#
                + (query.category.map(JSONText.quoted) ?? "null") + #","since":"# + time(query.since) + #","until":"#
                + time(query.until) + #","subjects":["#)
        case .csv: try await write(csvHeader + "\r\n")
        case .ndjson: break
        }
        while true {
            let rows = try await queries.exposure(query, afterSubject: after, limit: page)
            var chunk = ""
            for row in rows {
                switch format {
                case .json: chunk += (subjects > 0 ? "," : "") + json(row)
                case .ndjson: chunk += json(row) + "\n"
                case .csv: chunk += csv(row)
                }
                subjects += 1
                shares += row.shares
            }
            if !chunk.isEmpty { try await write(chunk) }
            guard rows.count == page, let last = rows.last else { break }
            after = last.subject
        }
        if format == .json {
            try await write(#"],"totals":{"shares":\#(shares),"subjects":\#(subjects)}}"#)
        }
    }

    static func time(_ date: Date?) -> String {
        date.map { JSONText.quoted(iso.string(from: $0)) } ?? "null"
    }

    static func json(_ row: ExposureRow) -> String {
        #"{"categories":["# + row.categories.map(JSONText.quoted).joined(separator: ",") + #"],"first_shared":"#
            + JSONText.quoted(iso.string(from: row.firstShared)) + #","last_shared":"#
            + JSONText.quoted(iso.string(from: row.lastShared)) + #","shares":\#(row.shares),"subject":"#
            + JSONText.quoted(row.subject) + "}"
    }

    static func csv(_ row: ExposureRow) -> String {
        [CSVCell.escape(row.subject), CSVCell.escape(row.categories.joined(separator: " ")), String(row.shares),
         iso.string(from: row.firstShared), iso.string(from: row.lastShared)].joined(separator: ",") + "\r\n"
    }

    nonisolated(unsafe) static let iso: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}

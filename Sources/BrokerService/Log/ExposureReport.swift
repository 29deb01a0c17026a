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
            // A page's text is built as bytes and made a String once: the rows' own strings appended
            // through `String` and the times through `ISO8601DateFormatter` were most of a report's time.
            var chunk: [UInt8] = []
            chunk.reserveCapacity(rows.count * 160)
            for row in rows {
                switch format {
                case .json:
                    if subjects > 0 { chunk.append(UInt8(ascii: ",")) }
                    json(row, to: &chunk)
                case .ndjson:
                    json(row, to: &chunk)
                    chunk.append(UInt8(ascii: "\n"))
                case .csv: chunk.append(contentsOf: csv(row).utf8)
                }
                subjects += 1
                shares += row.shares
            }
            if !chunk.isEmpty { try await write(String(decoding: chunk, as: UTF8.self)) }
            guard rows.count == page, let last = rows.last else { break }
            after = last.subject
        }
        if format == .json {
            try await write(#"],"totals":{"shares":\#(shares),"subjects":\#(subjects)}}"#)
        }
    }

    static func time(_ date: Date?) -> String {
        date.map { JSONText.quoted(time($0)) } ?? "null"
    }

    /// `2026-11-17T18:03:33.025Z`.
    static func time(_ date: Date) -> String {
        var out: [UInt8] = []
        RFC3339.write(milliseconds: milliseconds(date), to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func json(_ row: ExposureRow, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"categories":["#.utf8)
        for (index, category) in row.categories.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.write(category, to: &out)
        }
        out.append(contentsOf: #"],"first_shared":""#.utf8)
        RFC3339.write(milliseconds: milliseconds(row.firstShared), to: &out)
        out.append(contentsOf: #"","last_shared":""#.utf8)
        RFC3339.write(milliseconds: milliseconds(row.lastShared), to: &out)
        out.append(contentsOf: #"","shares":\#(row.shares),"subject":"#.utf8)
        JSONText.write(row.subject, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func json(_ row: ExposureRow) -> String {
        var out: [UInt8] = []
        json(row, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func csv(_ row: ExposureRow) -> String {
        [CSVCell.escape(row.subject), CSVCell.escape(row.categories.joined(separator: " ")), String(row.shares),
         time(row.firstShared), time(row.lastShared)].joined(separator: ",") + "\r\n"
    }

    /// The millisecond `ISO8601DateFormatter` writes for `date`, computed as Foundation computes it (from
    /// the reference date, in doubles, rounded half up), so these times equal the other endpoints' to the digit.
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64(((date.timeIntervalSinceReferenceDate + 978_307_200) * 1000 + 0.5).rounded(.down))
    }
}

import BrokerCore
import Foundation

extension SharingListRow {
    /// Shares that disclosed a field of this category to the party: what the published list must name.
    /// Stripped and blocked fields never left, so they do not count.
    public var disclosed: Int { sent }
}

/// What the published list's drift gauge reads at each scrape: per provider × purpose × category,
/// the shares that sent it from a UTC day on (the whole log for `nil`), from the daily aggregates
/// alone (no record scan, no distinct-subject count), so a scrape stays cheap whatever the log's size.
/// Rows carry `sent`, their first and last day; `stripped`, `blocked` and `subjects` are 0.
public protocol DisclosedTrafficSource: Sendable {
    func disclosedTraffic(fromDay day: CalendarDay?) async throws(LogUnavailable) -> [SharingListRow]
}

extension CalendarDay {
    /// Days since 1970-01-01: the `day` of the sharing aggregates.
    public var dayNumber: Int64 { Int64((start.timeIntervalSince1970 / 86_400).rounded(.down)) }


    /// 00:00 UTC of the day.
    public var start: Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: year, month: month, day: day)) ?? Date(timeIntervalSince1970: 0)
    }
}

/// The third-party sharing list in the regulator's published-list form (第三方信息共享清单, MIIT):
/// one entry per third party × purpose that real traffic disclosed personal information to, with
/// the party's name, company, purpose, scenario, sharing method, the personal-information fields
/// actually sent and its privacy-policy link, from the contracts; in zh-CN or en, as JSON, CSV or
/// HTML; the same text over HTTP and on the command line. Beside it, **drift** against the list the
/// company has published (`contracts/published-sharing-list.yaml`): traffic to a party, a purpose or
/// a category that list does not disclose.
public enum PublishedSharingListReport {
    public enum Language: String, Sendable, CaseIterable {
        case zhCN = "zh-CN"
        case en
    }

    public enum Format: Sendable { case json, csv, html }

    public struct Field: Sendable, Hashable {
        public var category: String
        public var label: String
        /// Shares that sent it.
        public var shares: Int
    }

    public struct Entry: Sendable {
        public var provider: String
        public var purpose: String
        public var name: String
        public var company: String
        public var purposeLabel: String
        public var scenario: String
        public var sharingMethod: Contract.SharingMethod?
        public var fields: [Field]
        public var privacyPolicyURL: String?
    }

    /// One (party, purpose, category) that was sent but the published list does not disclose.
    public struct Drift: Sendable, Hashable {
        public var kind: PublishedSharingList.DriftKind
        public var provider: String
        public var purpose: String
        public var category: String
        public var shares: Int
    }

    public struct Report: Sendable {
        public var language: Language
        public var since: Date?
        public var until: Date?
        public var generatedAt: Date
        public var entries: [Entry]
        /// Nil when there is no published list: drift is then not checked.
        public var publishedList: PublishedSharingList?
        public var drift: [Drift]?
    }

    /// The traffic rows the list is made of: personal categories (the taxonomy decides) actually sent.
    static func disclosedRows(_ rows: [SharingListRow], bundle: PolicyBundle) -> [SharingListRow] {
        rows.filter { ($0.disclosed > 0) && (bundle.taxonomy.categories[$0.category]?.personal ?? true) }
            .sorted { ($0.provider, $0.purpose, $0.category) < ($1.provider, $1.purpose, $1.category) }
    }

    /// What `rows` sent that `list` does not disclose, in provider, purpose, category order.
    public static func drift(_ rows: [SharingListRow], bundle: PolicyBundle, list: PublishedSharingList) -> [Drift] {
        disclosedRows(rows, bundle: bundle).compactMap { row in
            list.undisclosed(provider: row.provider, purpose: row.purpose, category: row.category).map {
                Drift(kind: $0, provider: row.provider, purpose: row.purpose, category: row.category, shares: row.disclosed)
            }
        }
    }

    public static func build(_ rows: [SharingListRow], bundle: PolicyBundle, language: Language, since: Date?, until: Date?,
                             now: Date) -> Report {
        let lang = language.rawValue
        let words = Words(language)
        var entries: [Entry] = []
        for row in disclosedRows(rows, bundle: bundle) {
            let field = Field(category: row.category, label: bundle.taxonomy.categories[row.category]?.labels[lang] ?? row.category,
                              shares: row.disclosed)
            if let last = entries.last, last.provider == row.provider, last.purpose == row.purpose {
                entries[entries.count - 1].fields.append(field)
                continue
            }
            let contract = bundle.contracts[row.provider]
            func text(_ words: [String: String]?) -> String? { words?[lang].flatMap { $0.isEmpty ? nil : $0 } }
            entries.append(Entry(
                provider: row.provider, purpose: row.purpose, name: text(contract?.name) ?? row.provider,
                company: text(contract?.company) ?? words.notStated,
                purposeLabel: bundle.taxonomy.purposeLabels[row.purpose]?[lang] ?? row.purpose,
                scenario: text(contract?.scenario) ?? words.notStated, sharingMethod: contract?.sharingMethod,
                fields: [field], privacyPolicyURL: contract.flatMap { $0.privacyPolicyURL.isEmpty ? nil : $0.privacyPolicyURL }))
        }
        let list = bundle.publishedList
        return Report(language: language, since: since, until: until, generatedAt: now, entries: entries, publishedList: list,
                      drift: list.map { drift(rows, bundle: bundle, list: $0) })
    }

    public static func render(_ report: Report, format: Format) -> String {
        switch format {
        case .json: return json(report)
        case .csv: return csv(report)
        case .html: return html(report)
        }
    }

    public static func contentType(_ format: Format) -> String {
        switch format {
        case .json: return "application/json"
        case .csv: return "text/csv; charset=utf-8"
        case .html: return "text/html; charset=utf-8"
        }
    }

    // MARK: JSON

    static func json(_ report: Report) -> String {
        let words = Words(report.language)
        var out: [String: Any] = [
            "format": "published", "lang": report.language.rawValue, "title": words.title,
            "since": report.since.map { iso.string(from: $0) } ?? NSNull(), "until": report.until.map { iso.string(from: $0) } ?? NSNull(),
            "generated_at": iso.string(from: report.generatedAt),
        ]
        out["entries"] = report.entries.map { entry -> [String: Any] in
            [
                "provider": entry.provider, "name": entry.name, "company": entry.company, "purpose": entry.purpose,
                "purpose_label": entry.purposeLabel, "scenario": entry.scenario,
                "sharing_method": entry.sharingMethod?.rawValue ?? NSNull(), "sharing_method_label": words.method(entry.sharingMethod),
                "fields": entry.fields.map { ["category": $0.category, "label": $0.label, "shares": $0.shares] as [String: Any] },
                "privacy_policy_url": entry.privacyPolicyURL ?? NSNull(),
                "drift": driftOf(entry, report).map { items in items.map { ["kind": $0.kind.rawValue, "category": $0.category] } }
                    ?? NSNull(),
            ]
        }
        if let list = report.publishedList {
            out["published_list"] = ["file": list.file, "published_at": list.publishedAt?.description ?? NSNull(),
                                     "url": list.url ?? NSNull()] as [String: Any]
        } else {
            out["published_list"] = NSNull()
            out["published_list_note"] = words.noPublishedList
        }
        out["drift"] = report.drift.map { items in
            items.map { ["kind": $0.kind.rawValue, "provider": $0.provider, "purpose": $0.purpose, "category": $0.category,
                         "shares": $0.shares, "message": words.driftMessage($0)] as [String: Any] }
        } ?? NSNull()
        let data = (try? JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The drift items of one entry's party and purpose; nil when there is no published list.
    static func driftOf(_ entry: Entry, _ report: Report) -> [Drift]? {
        report.drift.map { $0.filter { $0.provider == entry.provider && $0.purpose == entry.purpose } }
    }

    // MARK: CSV

    /// The machine columns after the words: ids, so a program need not read the words.
    public static let csvMachineColumns = ["provider", "purpose_id", "categories", "drift"]

    /// A UTF-8 byte-order mark first (spreadsheets then read the Chinese text right), a header in the
    /// report's language and the machine columns, one row per entry, CRLF line ends. `drift` holds the
    /// entry's undisclosed items as `KIND:category` joined by `;`, or `no published list`.
    static func csv(_ report: Report) -> String {
        let words = Words(report.language)
        var text = "\u{FEFF}" + (words.columns + csvMachineColumns).map(CSVCell.escape).joined(separator: ",") + "\r\n"
        for entry in report.entries {
            let drift = driftOf(entry, report)?.map { "\($0.kind.rawValue):\($0.category)" }.joined(separator: ";")
                ?? "no published list"
            text += [entry.name, entry.company, entry.purposeLabel, entry.scenario, words.method(entry.sharingMethod),
                     entry.fields.map(\.label).joined(separator: words.listSeparator), entry.privacyPolicyURL ?? words.notStated,
                     entry.provider, entry.purpose, entry.fields.map(\.category).joined(separator: ";"), drift]
                .map(CSVCell.escape).joined(separator: ",") + "\r\n"
        }
        return text
    }

    // MARK: HTML

    static func html(_ report: Report) -> String {
        let words = Words(report.language)
        let h = escapeHTML
        let intro = words.period(report.since, report.until) + words.sentenceBreak + words.generated + " "
            + iso.string(from: report.generatedAt)
        var out = """
            <!doctype html>
            <html lang="\(h(report.language.rawValue))">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(h(words.title))</title>
            <style>
            body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; margin: 2rem; color: #1a1a1a; }
            table { border-collapse: collapse; width: 100%; }
            th, td { border: 1px solid #c8c8c8; padding: .4rem .6rem; text-align: left; vertical-align: top; }
            th { background: #f2f2f2; }
            .drift { color: #a40000; }
            </style>
            </head>
            <body>
            <h1>\(h(words.title))</h1>
            <p>\(h(intro))</p>
            <table>
            <thead><tr>\(words.columns.map { "<th>\(h($0))</th>" }.joined())</tr></thead>
            <tbody>

            """
        if report.entries.isEmpty {
            out += "<tr><td colspan=\"\(words.columns.count)\">\(h(words.noSharing))</td></tr>\n"
        }
        for entry in report.entries {
            let link = entry.privacyPolicyURL.map { "<a href=\"\(h($0))\" rel=\"noopener noreferrer\">\(h($0))</a>" } ?? h(words.notStated)
            let cells = [h(entry.name), h(entry.company), h(entry.purposeLabel), h(entry.scenario), h(words.method(entry.sharingMethod)),
                         h(entry.fields.map(\.label).joined(separator: words.listSeparator)), link]
            out += "<tr data-provider=\"\(h(entry.provider))\" data-purpose=\"\(h(entry.purpose))\">"
                + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        out += "</tbody>\n</table>\n<section id=\"drift\">\n<h2>\(h(words.driftTitle))</h2>\n"
        switch report.drift {
        case nil:
            out += "<p>\(h(words.noPublishedList))</p>\n"
        case let items? where items.isEmpty:
            out += "<p>\(h(words.noDrift))</p>\n"
        case let items?:
            out += "<ul>\n"
            for item in items {
                out += "<li class=\"drift\" data-kind=\"\(h(item.kind.rawValue))\" data-provider=\"\(h(item.provider))\" "
                    + "data-purpose=\"\(h(item.purpose))\" data-category=\"\(h(item.category))\">\(h(words.driftMessage(item)))</li>\n"
            }
            out += "</ul>\n"
        }
        if let list = report.publishedList {
            out += "<p>\(h(words.comparedWith + list.file))"
            if let at = list.publishedAt { out += " (\(h(at.description)))" }
            if let url = list.url { out += " <a href=\"\(h(url))\" rel=\"noopener noreferrer\">\(h(url))</a>" }
            out += "</p>\n"
        }
        return out + "</section>\n</body>\n</html>\n"
    }

    /// Text for HTML content and attribute values: `& < > " '` escaped.
    public static func escapeHTML(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    nonisolated(unsafe) static let iso: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter
    }()

    /// The report's fixed words in one language.
    struct Words {
        let language: Language
        init(_ language: Language) { self.language = language }
        var zh: Bool { language == .zhCN }

        var title: String { zh ? "第三方信息共享清单" : "Third-party information sharing list" }
        var columns: [String] {
            zh ? ["第三方名称", "第三方主体", "共享目的", "使用场景", "共享方式", "共享的个人信息字段", "第三方隐私政策链接"]
                : ["Third party", "Company", "Purpose", "Scenario", "Sharing method", "Personal information shared", "Privacy policy"]
        }
        var notStated: String { zh ? "未载明" : "not stated" }
        var listSeparator: String { zh ? "、" : "; " }
        var generated: String { zh ? "生成时间" : "generated" }
        var sentenceBreak: String { zh ? "；" : "; " }
        var noSharing: String { zh ? "此期间没有共享个人信息" : "No personal information was shared in this period" }
        var driftTitle: String { zh ? "与已公示清单的差异" : "Drift from the published list" }
        var noDrift: String {
            zh ? "实际共享均已在公示清单中披露。" : "Everything shared is disclosed in the published list."
        }
        var noPublishedList: String {
            zh ? "没有已公示的清单（contracts/\(PublishedSharingList.fileName)），未检查差异。"
                : "No published list (contracts/\(PublishedSharingList.fileName)): drift not checked."
        }
        var comparedWith: String { zh ? "对照的公示清单：" : "Compared with the published list " }

        func method(_ method: Contract.SharingMethod?) -> String {
            switch method {
            case .serverAPI?: return zh ? "服务端接口" : "Server-side interface"
            case .sdk?: return zh ? "SDK（设备端）" : "SDK on the device"
            case nil: return notStated
            }
        }

        func period(_ since: Date?, _ until: Date?) -> String {
            let from = since.map { iso.string(from: $0) }, to = until.map { iso.string(from: $0) }
            switch (from, to) {
            case (nil, nil): return zh ? "统计区间：全部共享记录" : "Period: the whole share log"
            case (let from?, nil): return zh ? "统计区间：\(from) 起" : "Period: from \(from)"
            case (nil, let to?): return zh ? "统计区间：\(to) 之前" : "Period: until \(to)"
            case (let from?, let to?): return zh ? "统计区间：\(from) 至 \(to)" : "Period: \(from) to \(to)"
            }
        }

        func driftMessage(_ item: Drift) -> String {
            let shares = zh ? "\(item.shares) 次共享" : "\(item.shares) share\(item.shares == 1 ? "" : "s")"
            switch item.kind {
            case .party:
                return zh ? "未公示的第三方：\(item.provider)（\(item.purpose)，\(item.category)，\(shares)）"
                    : "Party not disclosed: \(item.provider) (\(item.purpose), \(item.category), \(shares))"
            case .purpose:
                return zh ? "未公示的共享目的：\(item.provider) 的 \(item.purpose)（\(item.category)，\(shares)）"
                    : "Purpose not disclosed: \(item.purpose) for \(item.provider) (\(item.category), \(shares))"
            case .category:
                return zh ? "未公示的个人信息字段：\(item.provider) 的 \(item.purpose) 中的 \(item.category)（\(shares)）"
                    : "Field not disclosed: \(item.category) for \(item.provider), \(item.purpose) (\(shares))"
            }
        }
    }
}

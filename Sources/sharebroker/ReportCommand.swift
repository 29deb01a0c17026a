import ArgumentParser
import BrokerCore
import BrokerService
import BrokerPostgres
import BrokerSQLite
import Foundation
import Logging

/// `sharebroker report sharing-list`: the third-party sharing list from the share log.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Reports from the share log.", subcommands: [SharingListReport.self, ExposureCommand.self])

    struct SharingListReport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sharing-list",
            abstract: "Provider × purpose × category from real traffic, beside what the contracts in force allow.")

        @Option(name: .customLong("database"), help: "A SQLite path, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password else the config's, else PGPASSWORD). Default: the config's.")
        var databaseOption: String?

        @Option(help: "From this time (RFC 3339), inclusive.")
        var since: String?

        @Option(help: "Until this time (RFC 3339), exclusive.")
        var until: String?

        @Flag(help: "Print CSV instead of a table (with --published: instead of JSON).")
        var csv = false

        @Flag(help: "The regulator's published-list form (第三方信息共享清单): party, company, purpose, scenario, sharing method, fields sent, privacy policy; JSON unless --csv or --html; with the drift from contracts/published-sharing-list.yaml.")
        var published = false

        @Option(help: "With --published: zh-CN (default) or en.")
        var lang: String?

        @Flag(help: "With --published: an HTML page instead of JSON.")
        var html = false

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var configFile: ConfigOption

        var language: PublishedSharingListReport.Language? { lang.flatMap(PublishedSharingListReport.Language.init) }

        func validate() throws {
            if lang != nil, language == nil { throw ValidationError("--lang is zh-CN or en") }
            if !published, lang != nil || html { throw ValidationError("--lang and --html go with --published") }
            if csv && html { throw ValidationError("--csv or --html, not both") }
        }

        func run() async throws {
            let settings = try configFile.settings()
            let database = settings.commandDatabase(databaseOption)
            let bundle = try policy.bundle(settings)
            let from = try rfc3339(since, flag: "since"), to = try rfc3339(until, flag: "until")
            let traffic = try await withReadStore(database, settings: settings) { try await $0.sharingList(since: from, until: to) }
            if published {
                let report = PublishedSharingListReport.build(traffic, bundle: bundle, language: language ?? .zhCN, since: from,
                                                              until: to, now: Date())
                let text = PublishedSharingListReport.render(report, format: csv ? .csv : (html ? .html : .json))
                FileHandle.standardOutput.write(Data(text.utf8))
                if !csv && !html { say() }
                return
            }
            let entries = SharingList.build(traffic, bundle: bundle, at: to ?? Date())
            let day = { (date: Date) in String(ISO8601DateFormatter().string(from: date).prefix(10)) }
            if csv {
                say(SharingList.csvHeader)
                for entry in entries {
                    say([entry.row.provider, entry.row.purpose, entry.row.category, "\(entry.row.sent)", "\(entry.row.stripped)",
                         "\(entry.row.blocked)", "\(entry.row.subjects)", ISO8601DateFormatter().string(from: entry.row.firstSeen),
                         ISO8601DateFormatter().string(from: entry.row.lastSeen), "\(entry.allowedByContract)", "\(entry.drift)"]
                        .joined(separator: ","))
                }
                return
            }
            let header = ["provider", "purpose", "category", "sent", "stripped", "blocked", "subjects", "first", "last", "contract"]
            let rows = entries.map { entry in
                [entry.row.provider, entry.row.purpose, entry.row.category, "\(entry.row.sent)", "\(entry.row.stripped)",
                 "\(entry.row.blocked)", "\(entry.row.subjects)", day(entry.row.firstSeen), day(entry.row.lastSeen),
                 entry.drift ? "DRIFT: not allowed" : (entry.allowedByContract ? "allowed" : "not allowed (none sent)")]
            }
            let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
            for line in [header] + rows {
                say(line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
            let drift = entries.filter(\.drift).count
            say("\(entries.count) rows; \(drift) sent without a contract that allows it")
        }
    }

    /// `sharebroker report exposure --provider P`: the subjects whose personal data P received.
    struct ExposureCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exposure",
            abstract: "Whose personal data a provider received in a window, with the categories and times: who to notify after its incident.")

        @Option(name: .customLong("database"),
                help: "A SQLite path, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password else the config's, else PGPASSWORD). Default: the config's.")
        var databaseOption: String?

        @OptionGroup var configFile: ConfigOption

        @Option(help: "The provider (its adapter name).")
        var provider: String

        @Option(help: "From this time (RFC 3339), inclusive.")
        var since: String?

        @Option(help: "Until this time (RFC 3339), exclusive.")
        var until: String?

        @Option(help: "Only this personal category (and its sub-categories).")
        var category: String?

        @Flag(help: "CSV instead of JSON.")
        var csv = false

        @Flag(help: "One JSON object per subject and line.")
        var ndjson = false

        func run() async throws {
            let settings = try configFile.settings()
            let database = settings.commandDatabase(databaseOption)
            var query = ExposureQuery(provider: provider, category: category)
            query.since = try rfc3339(since, flag: "since")
            query.until = try rfc3339(until, flag: "until")
            let format: ExposureReport.Format = csv ? .csv : (ndjson ? .ndjson : .json)
            let out = FileHandle.standardOutput
            try await withReadStore(database, settings: settings) { store in
                try await ExposureReport.stream(store, query, format: format) { out.write(Data($0.utf8)) }
            }
            if format == .json { say() }
        }
    }
}

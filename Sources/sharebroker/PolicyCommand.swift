import ArgumentParser
import BrokerCore
import BrokerService
import Foundation

/// `sharebroker policy diff`: what a policy change would do to real traffic, before it is made.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Work on a policy change before it is installed.", subcommands: [Diff.self])

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Decide the logged shares again under a candidate adapters/ + contracts/ and report what would change.",
            discussion: """
                The log holds no values but everything a decision depends on (paths, categories, grants,
                contract and adapter versions), so each logged share is decided again under the candidate with
                the subject's grants as they stood at its time. The report counts, per provider × purpose ×
                category, the shares that would be newly blocked, newly stripped, newly minimised or newly
                allowed, with example share ids. Exit status 0 whatever changes (a report, not a check).
                """)

        @Option(help: "The candidate policy: a folder with adapters/ and contracts/ (taxonomy.yaml in contracts/).")
        var candidate: String

        @Option(help: "From this time (RFC 3339), inclusive.")
        var since: String?

        @Option(help: "Until this time (RFC 3339), exclusive.")
        var until: String?

        @Flag(help: "JSON instead of a table.")
        var json = false

        @Option(name: .customLong("database"),
                help: "A SQLite path, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB (password else the config's, else PGPASSWORD). Default: the config's.")
        var databaseOption: String?

        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            let settings = try configFile.settings()
            let adapters = (candidate as NSString).appendingPathComponent("adapters")
            let contracts = (candidate as NSString).appendingPathComponent("contracts")
            let loaded = PolicyLoader.load(adapters: adapters, contracts: contracts)
            guard let bundle = loaded.bundle else {
                for issue in loaded.issues { say(issue.description) }
                say("the candidate policy in \(candidate) has errors; nothing was compared")
                throw ExitCode(1)
            }
            let engine = PolicyEngine(bundle: bundle, homeRegion: settings.homeRegion, minorAge: settings.minorAge)
            let from = try rfc3339(since, flag: "since"), to = try rfc3339(until, flag: "until")
            let report = try await withReadStore(settings.commandDatabase(databaseOption), settings: settings) { store in
                try await PolicyDiff.run(queries: store, grants: store, candidate: engine, since: from, until: to)
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: report.json, options: [.sortedKeys, .prettyPrinted])
                say(String(decoding: data, as: UTF8.self))
                return
            }
            say("candidate \(report.candidateRevision): \(report.read) shares read, \(report.tally.shares) decided again "
                + "(\(report.skipped) refused for reasons no policy decides), \(report.tally.changed) would change")
            if !report.tally.counts.isEmpty { say(report.tally.table) }
        }
    }
}

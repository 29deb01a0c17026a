import ArgumentParser
import BrokerCore
import BrokerService
import Foundation

/// `sharebroker policy diff`: what a policy change would do to real traffic, before it is made.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Work on a policy change before it is installed.", subcommands: [Diff.self, Versions.self])

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

    /// `sharebroker policy versions`: the privacy policy's versions and what each changed, material or minor.
    struct Versions: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "versions",
            abstract: "List the privacy policy's versions (contracts/privacy-policy.yaml) and classify each change: material or minor, with the reasons.",
            discussion: """
                Between two versions, a new party, purpose, category, sensitive category or region is material:
                users are told 30 days before it takes effect, and a grant given under an older version does not
                cover it. A narrowing or a wording change is minor: nobody needs to be told, and continued use is
                acceptance.
                """)

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var configFile: ConfigOption

        @Flag(help: "JSON instead of text.")
        var json = false

        func run() throws {
            let bundle = try policy.bundle(try configFile.settings())
            guard let privacy = bundle.privacyPolicy else {
                say("no privacy policy: add contracts/\(PrivacyPolicy.fileName) (docs/policy-files.md)")
                throw ExitCode(1)
            }
            var entries: [[String: Any]] = []
            var previous: PrivacyPolicy.Version?
            for version in privacy.versions {
                let changes = previous.map { PrivacyPolicy.changes(from: $0, to: version, taxonomy: bundle.taxonomy) } ?? []
                let material = changes.contains(where: \.material)
                let notice = version.effective.daysSince(version.published)
                if json {
                    entries.append([
                        "id": version.id, "published": version.published.description, "effective": version.effective.description,
                        "notice_days": notice, "urls": version.urls, "parties": version.parties.count,
                        "change": previous == nil ? "first" : (material ? "material" : "minor"),
                        "changes": changes.map { change -> [String: Any] in
                            var entry: [String: Any] = ["kind": change.kind.rawValue, "material": change.material, "reason": change.reason]
                            if let provider = change.provider { entry["provider"] = provider }
                            if let purpose = change.purpose { entry["purpose"] = purpose }
                            if let category = change.category { entry["category"] = category }
                            return entry
                        },
                    ])
                } else {
                    let head = "\(version.id)  published \(version.published), effective \(version.effective) (\(notice) days' notice), "
                        + "\(version.parties.count) parties: "
                    say(head + (previous == nil ? "the first version" : (material ? "material" : "minor")))
                    for change in changes { say("  " + change.description) }
                }
                previous = version
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: ["versions": entries], options: [.sortedKeys, .prettyPrinted])
                say(String(decoding: data, as: UTF8.self))
            }
        }
    }
}

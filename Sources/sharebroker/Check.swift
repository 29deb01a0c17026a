import ArgumentParser
import BrokerCore
import BrokerService

/// `sharebroker check`: validates every adapter and contract and prints each problem.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate adapters/ and contracts/: shape, vocabulary, pairs, scopes, paths, credential references.")

    @OptionGroup var policy: PolicyOptions
    @OptionGroup var configFile: ConfigOption

    func run() throws {
        let (adapters, contracts) = policy.folders(try configFile.settings())
        let result = PolicyLoader.load(adapters: adapters, contracts: contracts)
        for issue in result.issues {
            print(issue.description)
        }
        guard let bundle = result.bundle, result.issues.isEmpty else {
            let count = result.issues.count
            print("\(count) error\(count == 1 ? "" : "s")")
            throw ExitCode(1)
        }
        for item in bundle.unconstrainedFreeText {
            print("\(adapters)/\(item.provider).yaml:\(item.line): warning: operation \(item.operation): \(item.path) is "
                  + "non-personal but takes any value; give it values, pattern, type or max_length (or a personal category)")
        }
        for provider in bundle.contracts.keys.sorted() {
            guard let missing = bundle.contracts[provider]?.missingPublishedListKeys, !missing.isEmpty else { continue }
            print("\(contracts)/\(provider).yaml:1: warning: no \(missing.joined(separator: ", ")): the published sharing list "
                  + "shows 'not stated' for them (give name, company and scenario as { zh-CN: …, en: … }, privacy_policy_url as https://…)")
        }
        if let list = bundle.publishedList {
            // One line per party, purpose, or party × purpose's categories the list leaves out that the contract allows.
            var gaps: [(key: String, line: Int, kind: PublishedSharingList.DriftKind, provider: String, purpose: String, categories: [String])] = []
            for gap in list.undisclosedScopes(of: bundle.contracts, taxonomy: bundle.taxonomy) {
                let key = "\(gap.kind) \(gap.provider) " + (gap.kind == .party ? "" : gap.purpose)
                if gaps.last?.key == key { gaps[gaps.count - 1].categories.append(gap.category); continue }
                gaps.append((key, list.partyLines[gap.provider] ?? 1, gap.kind, gap.provider, gap.purpose, [gap.category]))
            }
            for gap in gaps {
                let categories = gap.categories.joined(separator: ", ")
                let text: String
                switch gap.kind {
                case .party: text = "does not name \(gap.provider), whose contract allows \(categories)"
                case .purpose: text = "does not name \(gap.purpose) for \(gap.provider), whose contract allows \(categories) for it"
                case .category: text = "does not disclose \(categories) for \(gap.provider), \(gap.purpose), which its contract allows"
                }
                print("\(list.file):\(gap.line): warning: the published list \(text): sharing it would be drift")
            }
        }
        let operations = bundle.adapters.values.reduce(0) { $0 + $1.operations.count }
        let fields = bundle.adapters.values.reduce(0) { total, adapter in
            total + adapter.operations.reduce(0) { $0 + $1.declarations.count }
        }
        print("ok: \(bundle.adapters.count) adapters, \(bundle.contracts.count) contracts, "
              + "\(operations) operations, \(fields) declared fields, "
              + "\(bundle.taxonomy.categories.count) categories, \(bundle.taxonomy.purposes.count) purposes"
              + (bundle.publishedList.map { ", a published sharing list of \($0.parties.count) parties" } ?? ""))
    }
}

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
        for warning in bundle.checkWarnings(adapters: adapters, contracts: contracts) { print(warning) }
        let operations = bundle.adapters.values.reduce(0) { $0 + $1.operations.count }
        let fields = bundle.adapters.values.reduce(0) { total, adapter in
            total + adapter.operations.reduce(0) { $0 + $1.declarations.count }
        }
        print("ok: \(bundle.adapters.count) adapters, \(bundle.contracts.count) contracts, "
              + "\(operations) operations, \(fields) declared fields, "
              + "\(bundle.taxonomy.categories.count) categories, \(bundle.taxonomy.purposes.count) purposes"
              + (bundle.publishedList.map { ", a published sharing list of \($0.parties.count) parties" } ?? "")
              + (bundle.privacyPolicy.map { ", a privacy policy of \($0.versions.count) version\($0.versions.count == 1 ? "" : "s")" } ?? ""))
    }
}

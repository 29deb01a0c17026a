import ArgumentParser
import BrokerCore
import BrokerService

/// `--adapters` and `--contracts`, shared by the commands that read the policy.
struct PolicyOptions: ParsableArguments {
    @Option(help: "The adapters folder.")
    var adapters: String = "adapters"

    @Option(help: "The contracts folder (holds taxonomy.yaml).")
    var contracts: String = "contracts"

    /// The policy, or exit 1 after pointing at `sharebroker check`.
    func bundle() throws -> PolicyBundle {
        guard let bundle = PolicyLoader.load(adapters: adapters, contracts: contracts).bundle else {
            say("the policy in \(adapters)/ and \(contracts)/ has errors: see sharebroker check")
            throw ExitCode(1)
        }
        return bundle
    }
}

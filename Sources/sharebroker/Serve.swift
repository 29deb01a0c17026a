import ArgumentParser
import BrokerService

/// `sharebroker serve`: until the gateway lands, validates the policy and says so.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker (the HTTP gateway comes with the next milestone).")

    @Option(help: "The adapters folder.")
    var adapters: String = "adapters"

    @Option(help: "The contracts folder.")
    var contracts: String = "contracts"

    func run() throws {
        let result = PolicyLoader.load(adapters: adapters, contracts: contracts)
        for issue in result.issues { print(issue.description) }
        guard result.bundle != nil else { throw ExitCode(1) }
        print("policy ok. The HTTP gateway is not built yet: this milestone ships the decision core")
        print("(sharebroker check, the policy files, the tests and the benchmark). See README.md.")
    }
}

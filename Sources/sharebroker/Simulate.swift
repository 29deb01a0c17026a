import ArgumentParser
import BrokerTesting
import Foundation
import Logging

/// `sharebroker simulate`: the provider simulators on loopback, for trying adapters by hand.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the provider simulators on loopback and print their URLs and credentials' variable names.")

    func run() async throws {
        let logger = Logger(label: "sharebroker.simulate")
        let credentials = SimulatorCredentials.random()
        let simulators = try await ProviderSimulators.start(credentials: credentials, logger: logger)
        for simulator in simulators.all { print("\(simulator.provider)\t\(simulator.baseURL)") }
        print("credentials (export these for a broker pointed at the simulators):")
        // Single-quoted (a PEM key spans lines), so the lines can be pasted into a shell or sourced.
        for (name, value) in credentials.environment.sorted(by: { $0.key < $1.key }) {
            print("  export \(name)='\(value.replacingOccurrences(of: "'", with: "'\\''"))'")
        }
        print("Ctrl-C to stop.")
        // Written out now: redirected to a file, stdout is block-buffered and the process ends by a signal.
        fflush(nil)
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
        await simulators.shutdown()
    }
}

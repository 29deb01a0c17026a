import ArgumentParser
import BrokerGateway

/// The `sharebroker` command line.
@main
struct Sharebroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sharebroker",
        abstract: "A privacy gateway: every outbound share of personal data checked field by field, logged, revocable.",
        version: BrokerBuild.version,
        subcommands: [Check.self, ConfigCommand.self, Serve.self, LogCommand.self, DatabaseCommand.self, ReportCommand.self, PolicyCommand.self, Simulate.self, TLSCommand.self])
}

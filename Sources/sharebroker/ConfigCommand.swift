import ArgumentParser
import BrokerCore
import BrokerService
import Foundation

/// `sharebroker config check FILE`: everything wrong with a config file before `serve` meets it.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check a config file.", subcommands: [CheckFile.self])

    struct CheckFile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Report every problem of a config file at once, each with its key path; exit 1 on any error.",
            discussion: """
                Reads the file as serve does, then checks it on this machine: the files and environment
                variables its secrets name (paths relative to the current directory, as serve reads them),
                the policy folders and the policy in them (as sharebroker check), clients, and secrets that
                look like demo values (warnings). Every key is listed in docs/configuration.md.
                """)

        @Argument(help: "The config file serve would run with.")
        var file: String

        func run() throws {
            let lines = Self.report(file: file, environment: ProcessInfo.processInfo.environment)
            for line in lines.output { print(line) }
            if lines.errors > 0 { throw ExitCode(1) }
        }

        /// The lines to print and the number of errors among them.
        static func report(file: String, environment: [String: String]) -> (output: [String], errors: Int) {
            guard let data = FileManager.default.contents(atPath: file) else {
                let why = FileManager.default.fileExists(atPath: file) ? "cannot be read" : "does not exist"
                return (["\(file) \(why)", "1 error"], 1)
            }
            let (decoded, issues) = BrokerConfig.decode(yaml: String(decoding: data, as: UTF8.self), file: file)
            var output = issues.map(\.description)
            var errors = issues.count
            var warnings = 0
            if let config = decoded {
                let resolver = SecretResolver(environment: environment)
                let findings = config.audit(value: resolver.value, exists: { FileManager.default.fileExists(atPath: $0) })
                for finding in findings {
                    output.append("\(file): \(finding)")
                    if finding.severity == .error { errors += 1 } else { warnings += 1 }
                }
                let folders = [(config.adapters, config.contracts)] + (config.shadow.map { [($0.adapters, $0.contracts)] } ?? [])
                for (adapters, contracts) in folders
                where FileManager.default.fileExists(atPath: adapters) && FileManager.default.fileExists(atPath: contracts) {
                    let loaded = PolicyLoader.load(adapters: adapters, contracts: contracts)
                    output += loaded.issues.map(\.description)
                    errors += loaded.issues.count
                    if let bundle = loaded.bundle, loaded.issues.isEmpty {
                        let policyWarnings = bundle.checkWarnings(adapters: adapters, contracts: contracts)
                        output += policyWarnings
                        warnings += policyWarnings.count
                        // Every secret the adapters name must resolve, or that provider answers 502 credential_unavailable.
                        for reference in Set(bundle.adapters.values.flatMap(\.secretReferences)).sorted(by: { "\($0)" < "\($1)" })
                        where resolver.value(reference) == nil {
                            output.append("\(file): warning: \(adapters): \(resolver.missing(reference)): "
                                          + "the providers that need it answer 502 credential_unavailable")
                            warnings += 1
                        }
                    }
                }
            }
            let summary = errors == 0
                ? "ok: \(file)" + (warnings > 0 ? " (\(warnings) warning\(warnings == 1 ? "" : "s"))" : "")
                : "\(errors) error\(errors == 1 ? "" : "s")" + (warnings > 0 ? ", \(warnings) warning\(warnings == 1 ? "" : "s")" : "")
            return (output + [summary], errors)
        }
    }
}

import ArgumentParser
import Foundation
import BrokerCore
import BrokerService

/// `--adapters` and `--contracts`, shared by the commands that read the policy; without them, the
/// config's (`--config`), else `adapters` and `contracts`.
struct PolicyOptions: ParsableArguments {
    @Option(name: .customLong("adapters"), help: "The adapters folder (default: the config's, else adapters).")
    var adaptersOption: String?

    @Option(name: .customLong("contracts"), help: "The contracts folder, with taxonomy.yaml (default: the config's, else contracts).")
    var contractsOption: String?

    /// The two folders, the flags first, then `settings`.
    func folders(_ settings: BrokerConfig) -> (adapters: String, contracts: String) {
        (adaptersOption ?? settings.adapters, contractsOption ?? settings.contracts)
    }

    /// The policy, or exit 1 after pointing at `sharebroker check`.
    func bundle(_ settings: BrokerConfig = BrokerConfig()) throws -> PolicyBundle {
        let (adapters, contracts) = folders(settings)
        guard let bundle = PolicyLoader.load(adapters: adapters, contracts: contracts).bundle else {
            var isDirectory: ObjCBool = false
            let found = [adapters, contracts].allSatisfy { FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue }
            say(found ? "the policy in \(adapters)/ and \(contracts)/ has errors: see sharebroker check"
                : "no policy folders \(adapters)/ and \(contracts)/ here: run from the repository, or give --adapters and --contracts (or --config)")
            throw ExitCode(1)
        }
        return bundle
    }
}

/// `--config FILE`: the file `serve` runs with, so a command reads the deployment's database,
/// policy folders and checkpoint key without being told each (its flags still win).
struct ConfigOption: ParsableArguments {
    @Option(help: "The config file serve runs with: its database, adapters, contracts and signing key are the defaults.")
    var config: String?

    func settings() throws -> BrokerConfig { try Serve.loadConfig(config) }
}

extension BrokerConfig {
    /// The database a command reads: `sqlite:PATH` as the path, else the postgres URL.
    var commandDatabase: String { sqlitePath ?? database }

    /// The database a command was given with `--database` (`sqlite:PATH`, a plain path, or a
    /// `postgres://` URL, the same forms everywhere), else the config's: a SQLite database as its path.
    func commandDatabase(_ option: String?) -> String {
        guard let option else { return commandDatabase }
        return option.hasPrefix("sqlite:") ? String(option.dropFirst("sqlite:".count)) : option
    }

    /// A PostgreSQL password for a URL without one: `database_password`, else `PGPASSWORD`.
    var commandDatabasePassword: String? {
        databasePassword.flatMap { SecretResolver().value($0) } ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
    }

    /// The checkpoint signing key file of `log.signing_key` (a file reference), else the default.
    var signingKeyPath: String {
        if case .file(let path)? = log.signingKey { return path }
        return ".sharebroker/checkpoint.key"
    }
}

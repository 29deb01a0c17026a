import ArgumentParser
import BrokerService
import BrokerTLS
import Foundation
import Logging

/// `sharebroker tls ca-cert`: the interception CA's certificate, for clients' trust stores.
struct TLSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls", abstract: "TLS interception: the broker's own CA.", subcommands: [CACert.self])

    struct CACert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca-cert",
            abstract: "Print the interception CA's certificate (PEM), creating the CA in .sharebroker/ if there is none yet.")

        @Option(help: "The config file serve runs with (its tls_interception: section).")
        var config: String?

        func run() async throws {
            let settings = try Serve.loadConfig(config)
            var hosts: [String] = []
            if settings.tlsInterception.caCertificate == nil || settings.tlsInterception.caKey == nil {
                // The broker's own CA names only the adapters' hosts, so making or checking it needs the policy.
                let loaded = PolicyLoader.load(adapters: settings.adapters, contracts: settings.contracts)
                guard let bundle = loaded.bundle else {
                    for issue in loaded.issues { say(issue.description) }
                    say("the policy has errors: fix them (sharebroker check); the CA names the adapters' hosts")
                    throw ExitCode(1)
                }
                hosts = bundle.adapters.values.flatMap(\.tunnelHosts)
            }
            let ca = try InterceptionCAFiles.loadOrCreate(settings.tlsInterception, resolver: SecretResolver(), hosts: hosts)
            FileHandle.standardOutput.write(Data(try ca.certificatePEM.utf8))
        }
    }
}

/// Where the interception CA comes from: the config's two secrets, or `.sharebroker/tls-ca.pem`
/// and `.sharebroker/tls-ca.key`, created together on first use: the key owner-only (0600) from
/// its first byte, in an owner-only (0700) `.sharebroker/`.
///
/// A CA the broker makes permits only the adapters' hosts (`nameConstraints`). When the adapters
/// name a host it does not cover (a provider added since), or it has no constraints (made by an
/// older broker), it is made anew at start, replacing both files, and the log says so: clients
/// must then trust the new certificate. A CA given in the config is used as it is.
enum InterceptionCAFiles {
    static let certificatePath = ".sharebroker/tls-ca.pem"
    static let keyPath = ".sharebroker/tls-ca.key"

    static func loadOrCreate(_ settings: BrokerConfig.TLSInterception, resolver: SecretResolver, hosts: [String],
                             logger: Logger? = nil) throws -> InterceptionCA {
        do {
            if let certificate = settings.caCertificate, let key = settings.caKey {
                guard let certificatePEM = resolver.value(certificate) else {
                    throw TLSSetupError("tls_interception.ca_certificate: " + resolver.missing(certificate))
                }
                guard let keyPEM = resolver.value(key) else {
                    throw TLSSetupError("tls_interception.ca_key: " + resolver.missing(key))
                }
                return try InterceptionCA(certificatePEM: certificatePEM, keyPEM: keyPEM)
            }
            let hosts = Set(hosts.map { $0.lowercased() }).sorted()
            guard !hosts.isEmpty else { throw TLSSetupError("no adapter names a host: there is nothing to intercept") }
            let manager = FileManager.default
            switch (manager.contents(atPath: certificatePath), manager.contents(atPath: keyPath)) {
            case (let certificate?, let key?):
                let ca = try InterceptionCA(certificatePEM: String(decoding: certificate, as: UTF8.self),
                                            keyPEM: String(decoding: key, as: UTF8.self))
                if ca.permittedHosts != nil && hosts.allSatisfy(ca.permits) { return ca }
                let renewed = try create(hosts: hosts, replace: true)
                let reason = ca.permittedHosts == nil ? "it had no name constraints" : "the adapters name hosts it did not cover"
                if let logger {
                    logger.warning("the interception CA was made anew: clients must trust the new \(certificatePath)",
                                   metadata: ["reason": .string(reason), "tls.hosts": .stringConvertible(hosts.count)])
                } else {
                    say("TLS interception: the CA was made anew (\(reason)): clients must trust the new \(certificatePath)")
                }
                return renewed
            case (nil, nil):
                return try create(hosts: hosts, replace: false)
            default:
                throw TLSSetupError("only one of \(certificatePath) and \(keyPath) exists: restore the other, or remove both for a new CA (clients must then trust the new one)")
            }
        } catch let error as TLSSetupError {
            say("TLS interception: \(error.message)")
            throw ExitCode(1)
        }
    }

    /// The key first, owner-only from its first byte; then the certificate, which is public.
    private static func create(hosts: [String], replace: Bool) throws -> InterceptionCA {
        let ca = try InterceptionCA.generate(permittedHosts: hosts)
        do {
            try PrivateFile.makeDirectory(".sharebroker")
            try PrivateFile.store(Array(ca.keyPEM.utf8), at: keyPath, replace: replace)
            guard let certificate = try? ca.certificatePEM,
                  (try? Data(certificate.utf8).write(to: URL(fileURLWithPath: certificatePath), options: .atomic)) != nil else {
                throw TLSSetupError("could not write \(certificatePath)")
            }
        } catch let error as PrivateFile.Failure {
            throw TLSSetupError("could not write \(keyPath): \(error.message)")
        }
        return ca
    }
}

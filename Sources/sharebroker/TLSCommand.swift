import ArgumentParser
import BrokerService
import BrokerTLS
import Foundation

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
            let ca = try InterceptionCAFiles.loadOrCreate(settings.tlsInterception, resolver: SecretResolver())
            FileHandle.standardOutput.write(Data(try ca.certificatePEM.utf8))
        }
    }
}

/// Where the interception CA comes from: the config's two secrets, or `.sharebroker/tls-ca.pem`
/// and `.sharebroker/tls-ca.key` (mode 0600), created together on first use.
enum InterceptionCAFiles {
    static let certificatePath = ".sharebroker/tls-ca.pem"
    static let keyPath = ".sharebroker/tls-ca.key"

    static func loadOrCreate(_ settings: BrokerConfig.TLSInterception, resolver: SecretResolver) throws -> InterceptionCA {
        do {
            if let certificate = settings.caCertificate, let key = settings.caKey {
                guard let certificatePEM = resolver.value(certificate) else {
                    throw TLSSetupError("tls_interception: ca_certificate (\(certificate)) is not set")
                }
                guard let keyPEM = resolver.value(key) else { throw TLSSetupError("tls_interception: ca_key (\(key)) is not set") }
                return try InterceptionCA(certificatePEM: certificatePEM, keyPEM: keyPEM)
            }
            let manager = FileManager.default
            switch (manager.contents(atPath: certificatePath), manager.contents(atPath: keyPath)) {
            case (let certificate?, let key?):
                return try InterceptionCA(certificatePEM: String(decoding: certificate, as: UTF8.self),
                                          keyPEM: String(decoding: key, as: UTF8.self))
            case (nil, nil):
                let ca = try InterceptionCA.generate()
                try manager.createDirectory(atPath: ".sharebroker", withIntermediateDirectories: true)
                // The key first, owner-only; the certificate is public.
                guard manager.createFile(atPath: keyPath, contents: Data(ca.keyPEM.utf8), attributes: [.posixPermissions: 0o600]),
                      manager.createFile(atPath: certificatePath, contents: Data(try ca.certificatePEM.utf8),
                                         attributes: [.posixPermissions: 0o644]) else {
                    throw TLSSetupError("could not write \(keyPath) and \(certificatePath)")
                }
                return ca
            default:
                throw TLSSetupError("only one of \(certificatePath) and \(keyPath) exists: restore the other, or remove both for a new CA (clients must then trust the new one)")
            }
        } catch let error as TLSSetupError {
            say("TLS interception: \(error.message)")
            throw ExitCode(1)
        }
    }
}

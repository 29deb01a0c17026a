import BrokerCore
import Crypto
import Foundation

/// One problem of a config that decoded: a file that does not exist, a variable that is not set, no
/// client, a secret that looks like a demo value. Named by the key's path, never by a secret's value.
public struct ConfigFinding: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: Sendable, Hashable { case error, warning }
    public var severity: Severity
    /// The key's dotted path (`tls_interception.ca_certificate`, `clients[push-service].token`).
    public var key: String
    public var message: String

    public init(_ severity: Severity, _ key: String, _ message: String) {
        self.severity = severity; self.key = key; self.message = message
    }

    public var description: String { (severity == .warning ? "warning: " : "") + key + ": " + message }
}

extension BrokerConfig {
    /// A secret the config names, with where it is named and what happens when it is missing.
    public struct NamedSecret: Sendable {
        public var key: String
        public var reference: SecretReference
        /// `serve` makes a new key there when it is missing (the log's and the revocation key).
        public var createdWhenMissing: Bool
        /// The default file `serve` creates when an `env` reference is not set.
        public var defaultFile: String?
    }

    /// Every secret reference in the config, with its key path.
    public var namedSecrets: [NamedSecret] {
        var out: [NamedSecret] = []
        for client in clients {
            if case .token(let reference) = client.credential {
                out.append(NamedSecret(key: "clients[\(client.id)].token", reference: reference, createdWhenMissing: false))
            }
        }
        // Only a PostgreSQL database reads it (`serve --database sqlite:…` over a PostgreSQL config does not).
        if let reference = databasePassword, !database.hasPrefix("sqlite:") {
            out.append(NamedSecret(key: "database_password", reference: reference, createdWhenMissing: false))
        }
        if let reference = userJWT?.hs256Secret {
            out.append(NamedSecret(key: "users.jwt.hs256_secret", reference: reference, createdWhenMissing: false))
        }
        for (key, reference, file) in [("log.fingerprint_key", log.fingerprintKey, ".sharebroker/fingerprint.key"),
                                       ("log.signing_key", log.signingKey, ".sharebroker/checkpoint.key"),
                                       ("revocation.key", revocation.key, ".sharebroker/revocation.key")] {
            if let reference { out.append(NamedSecret(key: key, reference: reference, createdWhenMissing: true, defaultFile: file)) }
        }
        if tlsInterception.enabled {
            for (key, reference) in [("tls_interception.ca_certificate", tlsInterception.caCertificate),
                                     ("tls_interception.ca_key", tlsInterception.caKey)] {
                if let reference { out.append(NamedSecret(key: key, reference: reference, createdWhenMissing: false)) }
            }
        }
        return out
    }

    /// Values no deployment should run with: the sandbox's tokens and the usual placeholders.
    public static let demoSecretValues: Set<String> = [
        "demo-share-token", "demo-grants-token", "demo-compliance-token", "demo-admin-token", "demo-user-jwt-secret",
    ]

    /// Whether a secret looks like a demo value or a placeholder: a sandbox token, a value naming itself
    /// (`changeme`, `secret`, `password`, `example`, `demo`, `test`), an unfilled `<…>`, or fewer than 16 characters.
    public static func looksLikeDemo(_ secret: String) -> Bool {
        let lower = secret.lowercased()
        if demoSecretValues.contains(secret) || secret.count < 16 || lower.hasPrefix("<") { return true }
        return ["changeme", "change-me", "change_me", "secret", "password", "example", "demo", "test", "placeholder", "xxxx"]
            .contains { lower.contains($0) }
    }

    /// What is wrong with this config on this machine, every problem at once: secrets whose file does not
    /// exist or whose variable is not set, policy folders that do not exist, no client, demo-looking
    /// secrets. `value` resolves a reference (nil: missing); `exists` says whether a path exists.
    public func audit(value: (SecretReference) -> String?, exists: (String) -> Bool) -> [ConfigFinding] {
        var findings: [ConfigFinding] = []
        for secret in namedSecrets {
            let resolved = value(secret.reference)
            switch (secret.reference, resolved) {
            case (.file(let path), nil) where !exists(path):
                findings.append(secret.createdWhenMissing
                    ? ConfigFinding(.warning, secret.key, "\(path) does not exist: serve creates a new key there"
                                    + (secret.key == "log.signing_key" ? ""
                                       : " (every node of one database needs the same fingerprint_key and revocation.key)"))
                    : ConfigFinding(.error, secret.key, "\(path) does not exist"))
            case (.file(let path), nil):
                findings.append(ConfigFinding(.error, secret.key, "\(path) cannot be read"))
            case (.env(let name), nil):
                findings.append(secret.createdWhenMissing
                    ? ConfigFinding(.warning, secret.key, "the environment variable \(name) is not set: serve uses "
                                    + "\(secret.defaultFile ?? "a new key file"), creating it when missing")
                    : ConfigFinding(.error, secret.key, "the environment variable \(name) is not set"))
            case (_, let text?) where text.isEmpty:
                findings.append(ConfigFinding(.error, secret.key, "\(secret.reference) is empty"))
            case (_, let text?) where Self.looksLikeDemo(text) && !secret.key.hasPrefix("tls_interception"):
                findings.append(ConfigFinding(.warning, secret.key, "looks like a demo value or a placeholder "
                                              + "(a sandbox token, a word such as secret or changeme, or under 16 characters): "
                                              + "use a long random secret"))
            default:
                break
            }
        }
        for client in clients {
            if case .tokenSHA256(let digest) = client.credential,
               Self.demoSecretValues.contains(where: { Self.sha256Hex($0) == digest }) {
                findings.append(ConfigFinding(.warning, "clients[\(client.id)].token_sha256", "is the hash of a sandbox demo token"))
            }
        }
        for (key, path) in [("adapters", adapters), ("contracts", contracts)] + (shadow.map {
            [("shadow.adapters", $0.adapters), ("shadow.contracts", $0.contracts)]
        } ?? []) where !exists(path) {
            findings.append(ConfigFinding(.error, key, "the folder \(path) does not exist"))
        }
        if let tls = listenTLS {
            for (key, path) in [("listen_tls.certificate", tls.certificate), ("listen_tls.key", tls.key)]
                + (tls.clientCA.map { [("listen_tls.client_ca", $0)] } ?? []) where !exists(path) {
                findings.append(ConfigFinding(.error, key, "\(path) does not exist"))
            }
        }
        if case .file(let path)? = userJWT?.jwks, !exists(path) {
            findings.append(ConfigFinding(.error, "users.jwt.jwks.file", "\(path) does not exist"))
        }
        if clients.isEmpty {
            findings.append(ConfigFinding(.warning, "clients", Self.noClientsMessage))
        }
        return findings
    }

    public static let noClientsMessage = "no client is configured: every call answers 401 (serve --sandbox makes demo clients)"

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

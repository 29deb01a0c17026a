import BrokerCore
import Foundation

/// `sharebroker serve --config FILE`: every setting of a broker node, decoded once.
///
/// Every key has a default, so an empty or missing file is valid. Secrets are
/// references (`{ env: NAME }`, `{ file: PATH }`, or a literal for tests) that the
/// executable resolves at start; this type reads no environment.
public struct BrokerConfig: Sendable {
    public struct Client: Sendable {
        public enum Credential: Sendable, Hashable {
            case token(SecretReference)
            /// Hex SHA-256 of the token: the file never holds the token itself.
            case tokenSHA256(String)
            /// No token: the client is known by its certificate (`mtls`) or its listener (`listen`) only.
            case none
        }
        /// How a client certificate names this client (`mtls:`), one of three.
        public enum CertificateMatch: Sendable, Hashable {
            /// The subject's distinguished name as RFC 4514 writes it (`CN=payments,O=Example`).
            case subject(String)
            /// A `spiffe://` URI among the subject alternative names (a service mesh's workload identity).
            case spiffeID(String)
            /// The hex SHA-256 of the certificate's DER bytes (pinned).
            case sha256(String)
        }
        public var id: String
        public var credential: Credential
        public var roles: Set<Caller.Role>
        public var providers: Set<String>
        public var purposes: Set<String>?
        /// A client certificate that identifies this client on the TLS listener (`mtls:`).
        public var certificate: CertificateMatch?
        /// A loopback listener of its own (`listen:`): every connection to it is this client (sidecar mode).
        public var listen: Address?

        public init(id: String, credential: Credential, roles: Set<Caller.Role>, providers: Set<String> = [],
                    purposes: Set<String>? = nil, certificate: CertificateMatch? = nil, listen: Address? = nil) {
            self.id = id; self.credential = credential; self.roles = roles; self.providers = providers
            self.purposes = purposes; self.certificate = certificate; self.listen = listen
        }
    }

    /// A host and port to listen on.
    public struct Address: Sendable, Hashable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) { self.host = host; self.port = port }

        /// `HOST:PORT` (`[::1]:PORT` for IPv6), or nil.
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), colon > text.startIndex,
                  let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.host = host; self.port = port
        }

        /// A loopback address, as a literal (a name is resolved only at bind time): 127.0.0.0/8 or ::1.
        public var isLoopback: Bool {
            if host == "::1" { return true }
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        }
    }

    /// `listen_tls:`: a listener that speaks TLS (1.2 or later), beside the plain one.
    public struct TLSListener: Sendable {
        public var address: Address
        /// A PEM file: the server's certificate, then its chain.
        public var certificate: String
        /// A PEM file: the certificate's private key.
        public var key: String
        /// A PEM file of the CAs whose client certificates may identify clients (mutual TLS), or nil:
        /// then no client certificate is asked for.
        public var clientCA: String?

        public init(address: Address, certificate: String, key: String, clientCA: String? = nil) {
            self.address = address; self.certificate = certificate; self.key = key; self.clientCA = clientCA
        }
    }

    public struct UserJWT: Sendable {
        /// Where an identity provider publishes its public keys.
        public enum JWKS: Sendable, Hashable {
            case file(String)
            case url(String)
        }
        public var issuer: String
        public var audience: String
        public var algorithms: [String]
        public var hs256Secret: SecretReference?
        /// The identity provider's keys for RS256, ES256 and EdDSA tokens.
        public var jwks: JWKS?
        /// The longest the broker trusts a loaded key set, in seconds (`jwks_max_age_s`, default 300; a
        /// lower `Cache-Control: max-age` from the provider wins): a key the provider removes stops
        /// being trusted within this time, even if no token ever names an unknown key.
        public var jwksMaxAgeSeconds = 300

        public static let supported = ["HS256", "RS256", "ES256", "EdDSA"]

        public init(issuer: String, audience: String, algorithms: [String], hs256Secret: SecretReference?, jwks: JWKS? = nil) {
            self.issuer = issuer; self.audience = audience; self.algorithms = algorithms; self.hs256Secret = hs256Secret
            self.jwks = jwks
        }
    }

    public struct Limits: Sendable {
        public var maxBodyBytes = 1_048_576
        public var maxDepth = 64
        /// Most fields one share may carry (body, and again query); an operation's `max_fields` may lower it.
        public var maxFields = 2_000
        public var upstreamTimeoutMs = 10_000
        public var connectTimeoutMs = 3_000
        public var maxHeaderBytes = 16_384
        /// A connection that sends nothing for this long is closed: a stalled client, or an idle
        /// keep-alive connection between requests.
        public var clientTimeoutMs = 30_000
        /// A request's head (request line and headers) must arrive whole within this time of its
        /// first byte, and its body within `bodyTimeoutMs` of the head: deadlines for the whole part,
        /// not idle timers, so a client trickling a byte now and then is cut all the same. Past
        /// them: 408 `request_timeout` (when nothing was answered yet) and the connection closed.
        public var headTimeoutMs = 10_000
        public var bodyTimeoutMs = 30_000
        /// The request-body bytes all connections together may have in flight. A request reserves
        /// its `Content-Length` (a chunked one: `max_body_bytes`) when its head arrives, before any
        /// body is read, until its response ends; one that does not fit gets 503 `overloaded`
        /// (with `Retry-After`) and its connection closes. Bounds the memory slow clients can hold.
        public var maxInflightBodyBytes = 64 << 20
        public var maxResponseBytes = 8_388_608
    }

    public struct Log: Sendable {
        public var fingerprintKey: SecretReference?
        public var signingKey: SecretReference? = .file(".sharebroker/checkpoint.key")
        public var checkpointEvery = 1000
    }

    /// Revocation propagation: how deletion calls are sealed, retried and paced.
    public struct Revocation: Sendable {
        /// Seals revocation keys (AES-GCM); created on first start if missing.
        public var key: SecretReference? = .file(".sharebroker/revocation.key")
        public var maxAttempts = 10
        public var initialBackoffMs = 500
        public var maxBackoffMs = 300_000
        public var concurrency = 16
        /// Deletion calls sent to one provider per second, at most (a job of thousands of tokens is paced).
        public var callsPerSecond = 50
        /// How long an attempt holds its job before another node (or this one, restarted) may take it
        /// over; `nil`: 4 × the upstream timeout, at least 60 s.
        public var leaseMs: Int?
    }

    /// TLS interception: `CONNECT` tunnels to adapter hosts, terminated with the broker's own CA.
    public struct TLSInterception: Sendable {
        public var enabled = true
        /// The CA as PEM; both or neither. Neither: `.sharebroker/tls-ca.pem` and `tls-ca.key`, created on first start.
        public var caCertificate: SecretReference?
        public var caKey: SecretReference?
    }

    public var host = "127.0.0.1"
    public var port = 8080
    /// This node's log stream id.
    public var node = "node-1"
    public var homeRegion = "CN"
    public var minorAge = 18
    public var database = "sqlite:.sharebroker/broker.sqlite"
    /// The PostgreSQL password, when it is not in the `database` URL (`{ env: … }` or `{ file: … }`).
    public var databasePassword: SecretReference?
    public var adapters = "adapters"
    public var contracts = "contracts"
    public var clients: [Client] = []
    public var userJWT: UserJWT?
    public var limits = Limits()
    public var log = Log()
    public var revocation = Revocation()
    public var tlsInterception = TLSInterception()
    /// The TLS listener, if any.
    public var listenTLS: TLSListener?
    /// `log_format: json`: one JSON line per share on stdout (for a log shipper), besides the application log.
    public var decisionLinesJSON = false
    /// Origins that may frame the privacy center page (`privacy_center: { frame_ancestors: [...] }`); none by default.
    public var privacyFrameAncestors: [String] = []
    /// Host names the broker's own API answers under, besides the loopback names and `listen`'s host.
    public var serverNames: [String] = []
    /// Who may read `GET /metrics` (`metrics: { access: loopback | admin | open }`).
    public var metricsAccess = MetricsAccess.loopback
    /// A candidate policy every share is also decided under, without effect (`shadow: { adapters, contracts }`).
    public var shadow: Shadow?

    public struct Shadow: Sendable, Hashable {
        public var adapters: String
        public var contracts: String
        public init(adapters: String, contracts: String) { self.adapters = adapters; self.contracts = contracts }
    }

    public enum MetricsAccess: String, Sendable, CaseIterable {
        /// Anyone connecting from a loopback address; others need a client with role `admin`.
        case loopback
        /// A client with role `admin` only.
        case admin
        /// Anyone who can reach the port.
        case open
    }

    public init() {}

    /// The SQLite file path when `database` is `sqlite:PATH`.
    public var sqlitePath: String? {
        database.hasPrefix("sqlite:") ? String(database.dropFirst("sqlite:".count)) : nil
    }

    /// The keys each part of the file takes: the decoder accepts exactly these.
    enum Keys {
        static let top = ["listen", "server_names", "node", "home_region", "minor_age", "database", "database_password",
                          "adapters", "contracts", "clients", "users", "limits", "log", "revocation", "tls_interception",
                          "privacy_center", "log_format", "metrics", "shadow", "listen_tls"]
        static let clientRequired = ["id", "roles"]
        static let clientOptional = ["token", "token_sha256", "providers", "purposes", "mtls", "listen"]
        static let mtls = ["subject", "spiffe_id", "sha256"]
        static let listenTLSRequired = ["address", "certificate", "key"]
        static let listenTLSOptional = ["client_ca"]
        static let users = ["jwt"]
        static let jwtRequired = ["issuer", "audience", "algorithms"]
        static let jwtOptional = ["hs256_secret", "jwks", "jwks_max_age_s"]
        static let jwks = ["file", "url"]
        static let limits = ["max_body_bytes", "max_depth", "max_fields", "upstream_timeout_ms", "connect_timeout_ms",
                             "max_header_bytes", "client_timeout_ms", "head_timeout_ms", "body_timeout_ms",
                             "max_inflight_body_bytes", "max_response_bytes"]
        static let log = ["fingerprint_key", "signing_key", "checkpoint_every"]
        static let revocation = ["key", "max_attempts", "initial_backoff_ms", "max_backoff_ms", "concurrency",
                                 "calls_per_second", "lease_ms"]
        static let tlsInterception = ["enabled", "ca_certificate", "ca_key"]
        static let privacyCenter = ["frame_ancestors"]
        static let metrics = ["access"]
        static let shadow = ["adapters", "contracts"]
    }

    /// Every key the file may hold, as a dotted path (`limits.max_fields`; a client's keys as
    /// `clients[].id`): the configuration reference lists exactly these, and a test holds it to them.
    /// A section's own name is listed as well as its keys; a secret's `env`/`file` are not.
    public static var keyPaths: [String] {
        func under(_ prefix: String, _ keys: [String]) -> [String] { keys.map { prefix + "." + $0 } }
        return Keys.top
            + under("clients[]", Keys.clientRequired + Keys.clientOptional)
            + under("clients[].mtls", Keys.mtls)
            + under("listen_tls", Keys.listenTLSRequired + Keys.listenTLSOptional)
            + under("users", Keys.users)
            + under("users.jwt", Keys.jwtRequired + Keys.jwtOptional)
            + under("users.jwt.jwks", Keys.jwks)
            + under("limits", Keys.limits) + under("log", Keys.log) + under("revocation", Keys.revocation)
            + under("tls_interception", Keys.tlsInterception) + under("privacy_center", Keys.privacyCenter)
            + under("metrics", Keys.metrics) + under("shadow", Keys.shadow)
    }

    /// Decodes the YAML text; returns the config or every problem found.
    public static func decode(yaml: String, file: String) -> (config: BrokerConfig?, issues: [PolicyIssue]) {
        var config = BrokerConfig()
        let issues = IssueCollector()
        if yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return (config, []) }
        guard let root = YAMLNode.parse(yaml, file: file, issues: issues),
              let object = root.object("config", optional: Set(Keys.top)) else { return (nil, issues.issues) }
        if let node = object["listen"], let text = node.string("listen") {
            if let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
               (0...65535).contains(port), colon > text.startIndex {
                config.host = String(text[..<colon])
                config.port = port
            } else {
                node.error("listen must be HOST:PORT, not '\(text)'")
            }
        }
        if let text = object["node"]?.string("node") { config.node = text }
        if let names = object["server_names"]?.strings("server_names") { config.serverNames = names.map { $0.0.lowercased() } }
        if let node = object["home_region"], let text = node.string("home_region") {
            if text.count == 2, text == text.uppercased() { config.homeRegion = text } else {
                node.error("home_region must be an ISO 3166 alpha-2 code such as CN")
            }
        }
        if let value = object["minor_age"]?.int("minor_age", min: 0) { config.minorAge = value }
        if let node = object["database"], let text = node.string("database") {
            if text.hasPrefix("sqlite:") || text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
                config.database = text
            } else {
                node.error("database must be sqlite:PATH or postgres://…, not '\(text)'")
            }
        }
        if let node = object["database_password"] {
            config.databasePassword = SecretReference.decode(node, "database_password", allowLiteral: true)
        }
        if let text = object["adapters"]?.string("adapters") { config.adapters = text }
        if let text = object["contracts"]?.string("contracts") { config.contracts = text }
        var clientIDs: Set<String> = []
        var clientItems: [(Client, YAMLNode)] = []
        for item in object["clients"]?.sequence("clients") ?? [] {
            guard let client = decodeClient(item) else { continue }
            if !clientIDs.insert(client.id).inserted { item.error("client '\(client.id)' is listed twice") }
            config.clients.append(client)
            clientItems.append((client, item))
        }
        if let node = object["listen_tls"],
           let tls = node.object("listen_tls", required: Set(Keys.listenTLSRequired), optional: Set(Keys.listenTLSOptional)) {
            let address = tls["address"].flatMap { node in node.string("listen_tls: address").flatMap { text in
                Address(text) ?? { node.error("listen_tls: address must be HOST:PORT, not '\(text)'"); return nil }()
            } }
            if let address, let certificate = tls["certificate"]?.string("listen_tls: certificate"),
               let key = tls["key"]?.string("listen_tls: key") {
                config.listenTLS = TLSListener(address: address, certificate: certificate, key: key,
                                               clientCA: tls["client_ca"]?.string("listen_tls: client_ca"))
            }
        }
        for (client, item) in clientItems {
            if client.certificate != nil, config.listenTLS?.clientCA == nil {
                item.error("client \(client.id): mtls needs listen_tls with a client_ca")
            }
        }
        var certificateClients: [Client.CertificateMatch: String] = [:]
        for (client, item) in clientItems {
            guard let match = client.certificate else { continue }
            if let other = certificateClients[match] { item.error("client \(client.id): its mtls names the same certificates as client \(other)'s") }
            certificateClients[match] = client.id
        }
        var listeners: [Address: String] = [:]
        for (client, item) in clientItems {
            guard let address = client.listen else { continue }
            if let other = listeners[address] { item.error("client \(client.id): listen \(address.host):\(address.port) is client \(other)'s too") }
            if address == Address(host: config.host, port: config.port) || address == config.listenTLS?.address {
                item.error("client \(client.id): listen \(address.host):\(address.port) is the broker's own listener")
            }
            listeners[address] = client.id
        }
        if let users = object["users"]?.object("users", optional: Set(Keys.users)), let jwt = users["jwt"] {
            config.userJWT = decodeJWT(jwt)
        }
        if let limits = object["limits"]?.object("limits", optional: Set(Keys.limits)) {
            if let v = limits["max_fields"]?.int("limits: max_fields", min: 1) { config.limits.maxFields = v }
            if let v = limits["max_body_bytes"]?.int("limits: max_body_bytes", min: 1) { config.limits.maxBodyBytes = v }
            if let v = limits["max_depth"]?.int("limits: max_depth", min: 1) { config.limits.maxDepth = v }
            if let v = limits["upstream_timeout_ms"]?.int("limits: upstream_timeout_ms", min: 1) { config.limits.upstreamTimeoutMs = v }
            if let v = limits["connect_timeout_ms"]?.int("limits: connect_timeout_ms", min: 1) { config.limits.connectTimeoutMs = v }
            if let v = limits["max_header_bytes"]?.int("limits: max_header_bytes", min: 256) { config.limits.maxHeaderBytes = v }
            if let v = limits["client_timeout_ms"]?.int("limits: client_timeout_ms", min: 1) { config.limits.clientTimeoutMs = v }
            if let v = limits["head_timeout_ms"]?.int("limits: head_timeout_ms", min: 1) { config.limits.headTimeoutMs = v }
            if let v = limits["body_timeout_ms"]?.int("limits: body_timeout_ms", min: 1) { config.limits.bodyTimeoutMs = v }
            if let v = limits["max_inflight_body_bytes"]?.int("limits: max_inflight_body_bytes", min: 1) {
                config.limits.maxInflightBodyBytes = v
            }
            if let v = limits["max_response_bytes"]?.int("limits: max_response_bytes", min: 1) { config.limits.maxResponseBytes = v }
        }
        if let log = object["log"]?.object("log", optional: Set(Keys.log)) {
            if let node = log["fingerprint_key"] {
                config.log.fingerprintKey = SecretReference.decode(node, "log: fingerprint_key", allowLiteral: true)
            }
            if let node = log["signing_key"] {
                config.log.signingKey = SecretReference.decode(node, "log: signing_key", allowLiteral: true)
            }
            if let v = log["checkpoint_every"]?.int("log: checkpoint_every", min: 1) { config.log.checkpointEvery = v }
        }
        if let revocation = object["revocation"]?.object("revocation", optional: Set(Keys.revocation)) {
            if let node = revocation["lease_ms"], let v = node.int("revocation: lease_ms", min: 1) {
                // An attempt's calls must end before its lease can: twice the upstream timeout at least.
                let timeout = config.limits.upstreamTimeoutMs   // limits are read above
                if v < 2 * timeout {
                    node.error("revocation: lease_ms must be at least twice limits.upstream_timeout_ms (\(2 * timeout))")
                } else {
                    config.revocation.leaseMs = v
                }
            }
            if let v = revocation["calls_per_second"]?.int("revocation: calls_per_second", min: 1) { config.revocation.callsPerSecond = v }
            if let node = revocation["key"] {
                config.revocation.key = SecretReference.decode(node, "revocation: key", allowLiteral: true)
            }
            if let v = revocation["max_attempts"]?.int("revocation: max_attempts", min: 1) { config.revocation.maxAttempts = v }
            if let v = revocation["initial_backoff_ms"]?.int("revocation: initial_backoff_ms", min: 1) {
                config.revocation.initialBackoffMs = v
            }
            if let v = revocation["max_backoff_ms"]?.int("revocation: max_backoff_ms", min: 1) { config.revocation.maxBackoffMs = v }
            if let v = revocation["concurrency"]?.int("revocation: concurrency", min: 1) { config.revocation.concurrency = v }
        }
        if let node = object["tls_interception"],
           let tls = node.object("tls_interception", optional: Set(Keys.tlsInterception)) {
            if let enabled = tls["enabled"]?.bool("tls_interception: enabled") { config.tlsInterception.enabled = enabled }
            let certificate = tls["ca_certificate"].flatMap {
                SecretReference.decode($0, "tls_interception: ca_certificate", allowLiteral: false)
            }
            let key = tls["ca_key"].flatMap { SecretReference.decode($0, "tls_interception: ca_key", allowLiteral: false) }
            if (tls["ca_certificate"] == nil) != (tls["ca_key"] == nil) {
                node.error("tls_interception: give both ca_certificate and ca_key, or neither (the broker then creates its CA in .sharebroker/)")
            }
            config.tlsInterception.caCertificate = certificate
            config.tlsInterception.caKey = key
        }
        if let node = object["log_format"], let format = node.string("log_format") {
            switch format {
            case "json": config.decisionLinesJSON = true
            case "text": config.decisionLinesJSON = false
            default: node.error("log_format must be text or json, not '\(format)'")
            }
        }
        if let node = object["metrics"], let metrics = node.object("metrics", optional: Set(Keys.metrics)),
           let access = metrics["access"], let text = access.string("metrics: access") {
            if let value = MetricsAccess(rawValue: text) { config.metricsAccess = value } else {
                access.error("metrics: access must be loopback, admin or open, not '\(text)'")
            }
        }
        if let node = object["shadow"], let shadow = node.object("shadow", required: Set(Keys.shadow)),
           let adapters = shadow["adapters"]?.string("shadow: adapters"), let contracts = shadow["contracts"]?.string("shadow: contracts") {
            config.shadow = Shadow(adapters: adapters, contracts: contracts)
        }
        if let node = object["privacy_center"], let privacy = node.object("privacy_center", optional: Set(Keys.privacyCenter)) {
            for (origin, line) in privacy["frame_ancestors"]?.strings("privacy_center: frame_ancestors") ?? [] {
                // An origin as CSP writes it: scheme://host[:port], nothing that could end the directive.
                let valid = (origin.hasPrefix("https://") || origin.hasPrefix("http://"))
                    && !origin.contains(where: { $0 == ";" || $0 == "," || $0 == " " || $0 == "'" || $0.isNewline })
                if valid { config.privacyFrameAncestors.append(origin) } else {
                    issues.add(file, line, "privacy_center: frame_ancestors: '\(origin)' is not an origin (https://app.example.com)")
                }
            }
        }
        return issues.issues.isEmpty ? (config, []) : (nil, issues.issues)
    }

    private static func decodeClient(_ node: YAMLNode) -> Client? {
        guard let object = node.object("client", required: Set(Keys.clientRequired),
                                       optional: Set(Keys.clientOptional)) else { return nil }
        guard let id = object["id"]?.string("client: id") else { return nil }
        let what = "client \(id)"
        var credential: Client.Credential?
        switch (object["token"], object["token_sha256"]) {
        case (let token?, nil):
            credential = SecretReference.decode(token, what + ": token", allowLiteral: true).map { .token($0) }
        case (nil, let hash?):
            if let text = hash.string(what + ": token_sha256") {
                let lower = text.lowercased()
                if lower.count == 64, lower.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
                    credential = .tokenSHA256(lower)
                } else {
                    hash.error("\(what): token_sha256 must be 64 hex digits")
                }
            }
        case (nil, nil) where object["mtls"] != nil || object["listen"] != nil:
            credential = Client.Credential.none
        default:
            node.error("\(what): give exactly one of token or token_sha256 (or mtls or listen, which need neither)")
        }
        var certificate: Client.CertificateMatch?
        if let mtls = object["mtls"], let match = mtls.object(what + ": mtls", optional: Set(Keys.mtls)) {
            switch (match["subject"], match["spiffe_id"], match["sha256"]) {
            case (let subject?, nil, nil):
                certificate = subject.string(what + ": mtls: subject").map { .subject($0) }
            case (nil, let spiffe?, nil):
                if let text = spiffe.string(what + ": mtls: spiffe_id") {
                    if text.hasPrefix("spiffe://") { certificate = .spiffeID(text) } else {
                        spiffe.error("\(what): mtls: spiffe_id must be a spiffe:// URI")
                    }
                }
            case (nil, nil, let hash?):
                if let text = hash.string(what + ": mtls: sha256") {
                    let lower = text.lowercased().replacingOccurrences(of: ":", with: "")
                    if lower.count == 64, lower.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
                        certificate = .sha256(lower)
                    } else {
                        hash.error("\(what): mtls: sha256 must be 64 hex digits (the certificate's SHA-256 fingerprint)")
                    }
                }
            default:
                mtls.error("\(what): mtls takes exactly one of subject, spiffe_id or sha256")
            }
        }
        var listen: Address?
        if let node = object["listen"], let text = node.string(what + ": listen") {
            if let address = Address(text) {
                if address.isLoopback && address.port != 0 { listen = address } else {
                    node.error("\(what): listen must be a loopback HOST:PORT with a port (127.0.0.1:PORT or [::1]:PORT): every connection to it is this client")
                }
            } else {
                node.error("\(what): listen must be HOST:PORT, not '\(text)'")
            }
        }
        var roles: Set<Caller.Role> = []
        for (name, line) in object["roles"]?.strings(what + ": roles") ?? [] {
            if let role = Caller.Role(rawValue: name) { roles.insert(role) } else {
                node.issues.add(node.file, line, "\(what): unknown role '\(name)' (share, grants, compliance, admin)")
            }
        }
        let providers = Set(object["providers"]?.strings(what + ": providers")?.map(\.0) ?? [])
        let purposes = object["purposes"]?.strings(what + ": purposes").map { Set($0.map(\.0)) }
        if roles.contains(.share) && providers.isEmpty {
            node.error("\(what): role share needs the providers it may use")
        }
        guard let credential else { return nil }
        return Client(id: id, credential: credential, roles: roles, providers: providers, purposes: purposes,
                      certificate: certificate, listen: listen)
    }

    private static func decodeJWT(_ node: YAMLNode) -> UserJWT? {
        guard let object = node.object("users: jwt", required: Set(Keys.jwtRequired),
                                       optional: Set(Keys.jwtOptional)) else { return nil }
        let algorithms = object["algorithms"]?.strings("users: jwt: algorithms")?.map(\.0) ?? []
        for algorithm in algorithms where !UserJWT.supported.contains(algorithm) {
            object["algorithms"]?.error("users: jwt: algorithm \(algorithm) is not supported (\(UserJWT.supported.joined(separator: ", ")))")
        }
        if algorithms.isEmpty { node.error("users: jwt: algorithms must name at least one algorithm") }
        let secret = object["hs256_secret"].flatMap { SecretReference.decode($0, "users: jwt: hs256_secret", allowLiteral: true) }
        if algorithms.contains("HS256") && secret == nil { node.error("users: jwt: HS256 needs hs256_secret") }
        var jwks: UserJWT.JWKS?
        if let source = object["jwks"], let keys = source.object("users: jwt: jwks", optional: Set(Keys.jwks)) {
            switch (keys["file"]?.string("users: jwt: jwks: file"), keys["url"]?.string("users: jwt: jwks: url")) {
            case (let file?, nil): jwks = .file(file)
            case (nil, let url?):
                if let problem = JWKSURLRule.problem(url) { source.error("users: jwt: jwks: \(problem)") } else { jwks = .url(url) }
            default: source.error("users: jwt: jwks needs exactly one of file or url")
            }
        }
        if algorithms.contains(where: { $0 != "HS256" }) && object["jwks"] == nil {
            node.error("users: jwt: RS256, ES256 and EdDSA need jwks: { file: PATH } or { url: URL }")
        }
        guard let issuer = object["issuer"]?.string("users: jwt: issuer"),
              let audience = object["audience"]?.string("users: jwt: audience") else { return nil }
        var jwt = UserJWT(issuer: issuer, audience: audience, algorithms: algorithms, hs256Secret: secret, jwks: jwks)
        if let age = object["jwks_max_age_s"]?.int("users: jwt: jwks_max_age_s", min: 1) { jwt.jwksMaxAgeSeconds = age }
        return jwt
    }
}

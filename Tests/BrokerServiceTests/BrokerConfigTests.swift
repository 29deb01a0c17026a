import BrokerCore
import BrokerService
@preconcurrency import Crypto
import Testing

struct BrokerConfigTests {
    /// The configuration example the project started from.
    static let designExample = """
        listen: 127.0.0.1:8080
        home_region: CN
        minor_age: 18
        database: sqlite:.sharebroker/broker.sqlite     # or postgres://user@host:5432/db
        adapters: adapters
        contracts: contracts
        clients:
          - id: push-service
            token: { env: PUSH_SERVICE_TOKEN }           # or token_sha256: "<hex>"
            roles: [share]                               # share | grants | compliance | admin
            providers: [huawei-push, oppo-push]          # for role share
          - id: account-service
            token_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            roles: [grants]
        users:                                           # end users' JWTs
          jwt: { issuer: "https://id.example.com", audience: sharebroker,
                 algorithms: [HS256], hs256_secret: { env: USER_JWT_SECRET } }
        limits: { max_body_bytes: 1048576, max_depth: 64, upstream_timeout_ms: 10000 }
        log:
          fingerprint_key: { env: SHAREBROKER_FINGERPRINT_KEY }
          signing_key: { file: .sharebroker/checkpoint.key }   # created on first start if missing
          checkpoint_every: 1000
        """

    @Test func decodesTheDesignExample() throws {
        let (config, issues) = BrokerConfig.decode(yaml: Self.designExample, file: "broker.yaml")
        #expect(issues.isEmpty, "\(issues)")
        let decoded = try #require(config)
        #expect(decoded.host == "127.0.0.1" && decoded.port == 8080)
        #expect(decoded.sqlitePath == ".sharebroker/broker.sqlite")
        #expect(decoded.clients.map(\.id) == ["push-service", "account-service"])
        #expect(decoded.clients[0].credential == .token(.env("PUSH_SERVICE_TOKEN")))
        #expect(decoded.clients[0].providers == ["huawei-push", "oppo-push"])
        #expect(decoded.clients[1].roles == [.grants])
        #expect(decoded.userJWT?.audience == "sharebroker")
        #expect(decoded.log.fingerprintKey == .env("SHAREBROKER_FINGERPRINT_KEY"))
        #expect(decoded.log.checkpointEvery == 1000)
        #expect(decoded.limits.upstreamTimeoutMs == 10000)
    }

    @Test func databaseAndRevocationLeaseSettings() throws {
        let (config, issues) = BrokerConfig.decode(yaml: """
            database: postgres://broker@db.internal:5432/share
            database_password: { env: SB_DB_PASSWORD }
            limits: { upstream_timeout_ms: 1000 }
            revocation: { lease_ms: 2000 }
            """, file: "broker.yaml")
        #expect(issues.isEmpty)
        #expect(config?.database == "postgres://broker@db.internal:5432/share")
        #expect(config?.databasePassword == .env("SB_DB_PASSWORD"))
        #expect(config?.revocation.leaseMs == 2000)
        #expect(BrokerConfig().revocation.leaseMs == nil)        // then 4 × the upstream timeout, at least 60 s
        // A lease shorter than two upstream timeouts would let another node call while a call is in flight.
        let (_, short) = BrokerConfig.decode(yaml: "revocation: { lease_ms: 5000 }", file: "broker.yaml")
        #expect(short.map(\.message) == ["revocation: lease_ms must be at least twice limits.upstream_timeout_ms (20000)"])
    }

    /// Issue 13: an identity provider's JWKS, the algorithms allowed, the page's framing; and the mistakes.
    @Test func identityProviderKeysAndPrivacyCenterSettings() throws {
        let (config, issues) = BrokerConfig.decode(yaml: """
            users:
              jwt: { issuer: "https://id.example.com", audience: sharebroker, algorithms: [RS256, ES256, EdDSA],
                     jwks: { url: "https://id.example.com/.well-known/jwks.json" } }
            privacy_center: { frame_ancestors: ["https://app.example.com"] }
            """, file: "broker.yaml")
        #expect(issues.isEmpty, "\(issues)")
        #expect(config?.userJWT?.jwks == .url("https://id.example.com/.well-known/jwks.json"))
        #expect(config?.userJWT?.algorithms == ["RS256", "ES256", "EdDSA"])
        #expect(config?.privacyFrameAncestors == ["https://app.example.com"])
        let (_, wrong) = BrokerConfig.decode(yaml: """
            users:
              jwt: { issuer: i, audience: a, algorithms: [RS256, none], jwks: { url: "http://id.example.com/jwks" } }
            privacy_center: { frame_ancestors: ["https://a.example; script-src *"] }
            """, file: "broker.yaml")
        let text = wrong.map(\.description).joined(separator: "\n")
        #expect(text.contains("algorithm none is not supported"), "\(text)")
        #expect(text.contains("jwks: url must be https://"), "\(text)")
        #expect(text.contains("is not an origin"), "\(text)")
        let (_, missing) = BrokerConfig.decode(yaml: "users:\n  jwt: { issuer: i, audience: a, algorithms: [ES256] }\n", file: "b.yaml")
        #expect(missing.contains { $0.description.contains("need jwks") }, "\(missing)")
    }

    @Test func anEmptyFileIsAllDefaults() {
        let (config, issues) = BrokerConfig.decode(yaml: "", file: "broker.yaml")
        #expect(issues.isEmpty)
        #expect(config?.port == 8080 && config?.homeRegion == "CN" && config?.minorAge == 18)
    }

    @Test func reportsEveryMistakeWithItsLine() {
        let yaml = """
            listen: localhost
            minor_age: -3
            clients:
              - id: a
                token: x
                token_sha256: "00"
                roles: [share, wizard]
            limitz: {}
            """
        let (config, issues) = BrokerConfig.decode(yaml: yaml, file: "broker.yaml")
        #expect(config == nil)
        let text = issues.map(\.description)
        #expect(text.contains { $0.hasPrefix("broker.yaml:1:") && $0.contains("listen must be HOST:PORT") })
        #expect(text.contains { $0.hasPrefix("broker.yaml:2:") && $0.contains("minor_age must be at least 0") })
        #expect(text.contains { $0.contains("give exactly one of token or token_sha256") })
        #expect(text.contains { $0.hasPrefix("broker.yaml:7:") && $0.contains("unknown role 'wizard'") })
        #expect(text.contains { $0.contains("role share needs the providers") })
        #expect(text.contains { $0.hasPrefix("broker.yaml:8:") && $0.contains("unknown key 'limitz'") })
    }

    /// Issue 28: the TLS listener, clients named by certificate or by their own listener, and the
    /// mistakes each can hold.
    @Test func tlsListenerCertificateClientsAndOwnListeners() {
        let good = """
            listen: 127.0.0.1:8080
            listen_tls: { address: "0.0.0.0:8443", certificate: tls/server.pem, key: tls/server.key, client_ca: tls/clients.pem }
            clients:
              - { id: a, roles: [share], providers: [huawei-push], mtls: { subject: "CN=a,O=Example" } }
              - { id: b, roles: [grants], mtls: { spiffe_id: "spiffe://example.org/b" } }
              - { id: c, roles: [grants], token: t, mtls: { sha256: "DB:E4:34:D6:DE:9E:36:34:4B:38:4F:9D:50:27:26:37:60:F5:91:12:06:21:09:F8:08:32:8F:DA:27:96:46:DB" } }
              - { id: d, roles: [share], providers: [huawei-push], listen: "127.0.0.1:9001" }
            """
        let (config, issues) = BrokerConfig.decode(yaml: good, file: "broker.yaml")
        #expect(issues.isEmpty, "\(issues)")
        #expect(config?.listenTLS?.address == BrokerConfig.Address(host: "0.0.0.0", port: 8443))
        #expect(config?.listenTLS?.clientCA == "tls/clients.pem")
        #expect(config?.clients.map(\.certificate) == [.subject("CN=a,O=Example"), .spiffeID("spiffe://example.org/b"),
                                                       .sha256("dbe434d6de9e36344b384f9d5027263760f591120621 09f808328fda279646db".replacingOccurrences(of: " ", with: "")), nil])
        #expect(config?.clients.map(\.credential) == [.none, .none, .token(.literal("t")), .none])
        #expect(config?.clients.last?.listen == BrokerConfig.Address(host: "127.0.0.1", port: 9001))

        let bad = """
            listen: 127.0.0.1:8080
            clients:
              - { id: a, roles: [share], providers: [p], mtls: { subject: "CN=a" } }
              - { id: b, roles: [grants], mtls: { subject: "CN=b", sha256: "00" } }
              - { id: c, roles: [grants], listen: "0.0.0.0:9001" }
              - { id: d, roles: [grants], listen: "127.0.0.1:8080" }
              - { id: e, roles: [grants] }
              - { id: f, roles: [grants], mtls: { spiffe_id: "https://example.org/f" } }
              - { id: g, roles: [grants], listen: "127.example.com:9002" }
            """
        let text = BrokerConfig.decode(yaml: bad, file: "broker.yaml").issues.map(\.description)
        #expect(text.contains { $0.hasPrefix("broker.yaml:3:") && $0.contains("mtls needs listen_tls with a client_ca") }, "\(text)")
        #expect(text.contains { $0.contains("mtls takes exactly one of subject, spiffe_id or sha256") })
        #expect(text.contains { $0.contains("client c: listen must be a loopback HOST:PORT") })
        #expect(text.contains { $0.hasPrefix("broker.yaml:6:") && $0.contains("is the broker's own listener") })
        #expect(text.contains { $0.contains("client e: give exactly one of token or token_sha256 (or mtls or listen") })
        #expect(text.contains { $0.contains("spiffe_id must be a spiffe:// URI") })
        #expect(text.contains { $0.contains("client g: listen must be a loopback HOST:PORT") }, "a name is not a loopback literal")
        let twice = """
            listen_tls: { address: "0.0.0.0:8443", certificate: s.pem, key: s.key, client_ca: c.pem }
            clients:
              - { id: a, roles: [grants], mtls: { subject: "CN=a" } }
              - { id: b, roles: [share], providers: [p], mtls: { subject: "CN=a" } }
            """
        #expect(BrokerConfig.decode(yaml: twice, file: "broker.yaml").issues.map(\.description)
            .contains { $0.contains("client b: its mtls names the same certificates as client a's") })
    }

    @Test func fingerprintsAreKeyedHMACsOfCategoryAndValue() {
        let key = Array("k1".utf8)
        let fingerprinter = Fingerprinter(key: key)
        let value = FieldValue.string("13800138000")
        let expected = Hex.encode(HMAC<SHA256>.authenticationCode(
            for: Array("user.contact.phone_number".utf8) + [0x1f] + Array("13800138000".utf8), using: SymmetricKey(data: key)))
        #expect(fingerprinter.fingerprint(category: "user.contact.phone_number", value: value) == expected)
        #expect(fingerprinter.fingerprint(category: "user.contact.phone_number", value: value) == expected, "repeatable")
        #expect(fingerprinter.fingerprint(category: "user.name", value: value) != expected)
        #expect(Fingerprinter(key: Array("k2".utf8)).fingerprint(category: "user.contact.phone_number", value: value) != expected)
    }
}

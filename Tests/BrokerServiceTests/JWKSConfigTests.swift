import BrokerService
import Testing

/// Issue 23 §6: the JWKS URL is parsed, not prefix-matched, and its key set has a maximum age.
@Suite struct JWKSConfigTests {
    func load(_ url: String, extra: String = "") -> (url: String?, issues: String, maxAge: Int?) {
        let (config, issues) = BrokerConfig.decode(yaml: """
            users:
              jwt: { issuer: "https://id.example.com", audience: sharebroker, algorithms: [ES256],
                     jwks: { url: '\(url)' }\(extra) }
            """, file: "broker.yaml")
        var found: String?
        if case .url(let text)? = config?.userJWT?.jwks { found = text }
        return (found, issues.map(\.description).joined(separator: "\n"), config?.userJWT?.jwksMaxAgeSeconds)
    }

    @Test func userInformationAndRemoteHTTPHostsAreRefused() {
        for url in ["http://127.0.0.1@[::1]:18699/jwks.json", "http://127.0.0.1@example.com/", "http://localhost@example.com/jwks",
                    "https://user:secret@id.example.com/jwks", "http://127.0.0.1.example.com/jwks", "http://localhost.example.com/",
                    "http://127.1/jwks", "http://0177.0.0.1/jwks", "http://example.com/jwks", "http://[::2]/jwks",
                    "http://127.0.0.1\\@example.com/", "http://127.0.0.1 @example.com/", "ftp://127.0.0.1/jwks",
                    "http://127.0.0.1:8080/jwks#frag", "//127.0.0.1/jwks"] {
            let loaded = load(url)
            #expect(loaded.url == nil, "\(url) was accepted")
            #expect(loaded.issues.contains("users: jwt: jwks: "), "\(url): \(loaded.issues)")
        }
        let refused = load("http://127.0.0.1@example.com/")
        #expect(refused.issues.contains("user name or password"), "\(refused.issues)")
    }

    @Test func httpsAnywhereAndHTTPOnLoopbackAreTaken() {
        for url in ["https://id.example.com/.well-known/jwks.json", "http://127.0.0.1:8080/jwks.json", "http://127.9.8.7/jwks",
                    "http://localhost:9000/jwks", "http://LOCALHOST/jwks", "http://[::1]:18699/jwks.json",
                    "http://[0:0:0:0:0:0:0:1]/jwks"] {
            let loaded = load(url)
            #expect(loaded.url == url && loaded.issues.isEmpty, "\(url): \(loaded.issues)")
        }
    }

    @Test func theMaxAgeDefaultsToFiveMinutesAndIsConfigurable() {
        #expect(load("https://id.example.com/jwks").maxAge == 300)
        #expect(load("https://id.example.com/jwks", extra: ", jwks_max_age_s: 60").maxAge == 60)
        #expect(load("https://id.example.com/jwks", extra: ", jwks_max_age_s: 0").issues.contains("jwks_max_age_s must be at least 1"))
    }
}

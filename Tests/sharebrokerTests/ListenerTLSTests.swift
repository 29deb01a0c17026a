@preconcurrency import Crypto
import BrokerTesting
import Foundation
import SwiftASN1
import Testing
import X509

/// Issue 28, items 1–3, through the real `sharebroker serve`: the TLS listener (TLS ≥ 1.2, HSTS on
/// the privacy centre, a renewed certificate served without a restart), client certificates as
/// callers (by subject, SPIFFE id and pinned SHA-256; refused: unknown, expired, another CA), and
/// a client's own loopback listener (sidecar mode). Clients: curl and Python's `ssl`.
@Suite(.serialized) struct ListenerTLSTests {
    /// A CA and the certificates it issues, written as PEM files into `directory`.
    struct Authority {
        let name: String
        let key: P256.Signing.PrivateKey
        let certificate: Certificate

        init(_ name: String) throws {
            self.name = name
            let key = P256.Signing.PrivateKey()
            self.key = key
            let subject = try DistinguishedName { CommonName(name) }
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
                notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(86_400),
                issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true))
                    SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
        }

        /// Issues a leaf; writes NAME.pem and NAME.key; returns the certificate's DER SHA-256 (hex).
        @discardableResult
        func issue(_ file: String, in directory: URL, subject: DistinguishedName, names: [GeneralName],
                   usage: ExtendedKeyUsage.Usage, expired: Bool = false) throws -> String {
            let leafKey = P256.Signing.PrivateKey()
            let end = expired ? Date().addingTimeInterval(-60) : Date().addingTimeInterval(86_400)
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(leafKey.publicKey),
                notValidBefore: Date().addingTimeInterval(-7200), notValidAfter: end,
                issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([usage])
                    SubjectAlternativeNames(names)
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
            try leaf.serializeAsPEM().pemString.write(to: directory.appendingPathComponent("\(file).pem"), atomically: true, encoding: .utf8)
            try leafKey.pemRepresentation.write(to: directory.appendingPathComponent("\(file).key"), atomically: true, encoding: .utf8)
            var serializer = DER.Serializer()
            try serializer.serialize(leaf)
            return SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02x", $0) }.joined()
        }

        func write(_ file: String, in directory: URL) throws {
            try certificate.serializeAsPEM().pemString.write(to: directory.appendingPathComponent(file), atomically: true, encoding: .utf8)
        }
    }

    /// A free loopback port (bound and released).
    static func freePort() throws -> Int {
        let socket = try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/python3"),
                                             ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"],
                                             environment: [:])
        return Int(socket.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    struct Setup {
        let broker: ChildProcess
        let directory: URL
        let https: String
        let plain: String
        let sidecar: String
        let simulators: ProviderSimulators
        let huawei: ProviderSimulator

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        /// curl against the TLS listener, trusting its CA; `(http status, body)`, status 0 when no HTTP answer came.
        func curl(_ arguments: [String]) async throws -> (Int, String) {
            let result = try await offPool {
                try sharebrokerTests.curl(["-s", "--cacert", path("server-ca.pem"), "-w", "\n%{http_code}"] + arguments)
            }
            let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }

        func push(_ base: String, _ extra: [String]) async throws -> (Int, String) {
            try await curl(extra + ["-X", "POST", "\(base)/v1/proxy/huawei-push/v1/10086/messages:send",
                                    "-H", "X-Share-Subject: u-1", "-H", "Content-Type: application/json",
                                    "--data", #"{"message":{"token":["PUSH-TOKEN-1"],"notification":{"title":"Hi","body":"Parcel"}}}"#])
        }

        func client(_ name: String) -> [String] { ["--cert", path("\(name).pem"), "--key", path("\(name).key")] }
    }

    static func start() async throws -> Setup {
        let (simulators, huawei, directory, credentials) = try await TwoNodeTests.huaweiBroker()
        let serverCA = try Authority("Test Server CA")
        let clientCA = try Authority("Test Client CA")
        let otherCA = try Authority("Another CA")
        try serverCA.write("server-ca.pem", in: directory)
        try clientCA.write("client-ca.pem", in: directory)
        try serverCA.issue("server", in: directory, subject: try DistinguishedName { CommonName("localhost") },
                           names: [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))], usage: .serverAuth)
        try clientCA.issue("payments", in: directory, subject: try DistinguishedName { OrganizationName("Example"); CommonName("payments") },
                           names: [.dnsName("payments.internal")], usage: .clientAuth)
        try clientCA.issue("mesh", in: directory, subject: try DistinguishedName { CommonName("workload") },
                           names: [.uniformResourceIdentifier("spiffe://example.org/ns/prod/sa/accounts")], usage: .clientAuth)
        let pinned = try clientCA.issue("pinned", in: directory, subject: try DistinguishedName { CommonName("pinned") },
                                        names: [.dnsName("pinned.internal")], usage: .clientAuth)
        try clientCA.issue("stranger", in: directory, subject: try DistinguishedName { CommonName("stranger") },
                           names: [.dnsName("stranger.internal")], usage: .clientAuth)
        try clientCA.issue("expired", in: directory, subject: try DistinguishedName { OrganizationName("Example"); CommonName("payments") },
                           names: [.dnsName("payments.internal")], usage: .clientAuth, expired: true)
        try otherCA.issue("foreign", in: directory, subject: try DistinguishedName { OrganizationName("Example"); CommonName("payments") },
                          names: [.dnsName("payments.internal")], usage: .clientAuth)
        let sidecarPort = try freePort()
        try """
            listen: 127.0.0.1:0
            database: sqlite:broker.sqlite
            listen_tls: { address: "127.0.0.1:0", certificate: server.pem, key: server.key, client_ca: client-ca.pem }
            clients:
              - { id: payments, roles: [share], providers: [huawei-push], mtls: { subject: "CN=payments,O=Example" } }
              - { id: accounts, roles: [grants], mtls: { spiffe_id: "spiffe://example.org/ns/prod/sa/accounts" } }
              - { id: pinned, roles: [share], providers: [huawei-push], mtls: { sha256: "\(pinned)" } }
              - { id: sidecar, roles: [share], providers: [huawei-push], listen: "127.0.0.1:\(sidecarPort)" }
              - { id: app, token: share-token, roles: [share], providers: [huawei-push] }
              - { id: grants, token: grants-token, roles: [grants] }
            log: { fingerprint_key: test-key }
            revocation: { key: test-revocation-key }
            limits: { client_timeout_ms: 3000 }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        let (process, out) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml"], in: directory, environment: environment)
        let ports = try await offPool { try Self.ports(from: out) }
        let setup = Setup(broker: process, directory: directory, https: "https://localhost:\(ports.https)",
                          plain: "http://127.0.0.1:\(ports.plain)", sidecar: "http://127.0.0.1:\(sidecarPort)",
                          simulators: simulators, huawei: huawei)
        let grant = try await setup.curl(["-X", "POST", "\(setup.plain)/v1/subjects/u-1/grants", "-H", "Authorization: Bearer grants-token",
                                          "-H", "Content-Type: application/json", "--data",
                                          #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","categories":["user.device.push_token"],"separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#])
        #expect(grant.0 == 201, "\(grant)")
        return setup
    }

    /// The plain and TLS listeners' ports, from what `serve` prints once each listens (and the sidecar's line).
    static func ports(from pipe: Pipe) throws -> (plain: Int, https: Int) {
        // The plain listener's line names the database: the sidecar's, printed in any order, does not.
        let ports = try CrashRecoveryTests.listening(pipe, [#"listening on http://127\.0\.0\.1:\d+ \(database"#, #"listening on https://127\.0\.0\.1:\d+"#,
                                         #"listening on http://127\.0\.0\.1:\d+ for client sidecar only"#])
        return (ports[0], ports[1])
    }

    @Test func clientCertificatesAreCallersAndTheWrongOnesAreRefused() async throws {
        let setup = try await Self.start()
        defer { setup.broker.terminate(); try? FileManager.default.removeItem(at: setup.directory) }

        // Named by subject, and by pinned SHA-256: shares without a token.
        var answer = try await setup.push(setup.https, setup.client("payments"))
        #expect(answer.0 == 200, "\(answer)")
        answer = try await setup.push(setup.https, setup.client("pinned"))
        #expect(answer.0 == 200, "\(answer)")
        #expect(setup.huawei.requests().filter { $0.path.hasSuffix("messages:send") }.count == 2)
        // Named by SPIFFE id: a grants client reads the grants API with its certificate alone.
        let grants = try await setup.curl(setup.client("mesh") + ["\(setup.https)/v1/subjects/u-1/grants"])
        #expect(grants.0 == 200 && grants.1.contains("huawei-push"), "\(grants)")
        // …and its role still decides: it may not share.
        #expect(try await setup.push(setup.https, setup.client("mesh")).0 == 403)

        // A certificate of the right CA that names no client: the connection is anonymous, 401.
        answer = try await setup.push(setup.https, setup.client("stranger"))
        #expect(answer.0 == 401 && answer.1.contains(#""code":"unauthenticated""#), "\(answer)")
        // Expired, or from another CA: the handshake fails, no HTTP answer at all.
        #expect(try await setup.push(setup.https, setup.client("expired")).0 == 0)
        #expect(try await setup.push(setup.https, setup.client("foreign")).0 == 0)
        // No certificate: a token works as on the plain listener; nothing at all is 401.
        #expect(try await setup.push(setup.https, ["-H", "Authorization: Bearer share-token"]).0 == 200)
        #expect(try await setup.push(setup.https, []).0 == 401)
        // On the plain listener a certificate means nothing (and cannot be sent).
        #expect(try await setup.push(setup.plain, []).0 == 401)
        #expect(setup.huawei.requests().filter { $0.path.hasSuffix("messages:send") }.count == 3)

        // Python's own client-certificate option (ssl.SSLContext.load_cert_chain, as requests' cert=).
        let script = """
            import json, ssl, sys, urllib.request
            context = ssl.create_default_context(cafile=sys.argv[2])
            context.load_cert_chain(sys.argv[3], sys.argv[4])
            request = urllib.request.Request(sys.argv[1] + "/v1/proxy/huawei-push/v1/10086/messages:send", method="POST",
                data=json.dumps({"message": {"token": ["PUSH-TOKEN-2"]}}).encode(),
                headers={"X-Share-Subject": "u-1", "Content-Type": "application/json"})
            with urllib.request.urlopen(request, context=context) as response:
                print(response.status, response.headers["X-Share-Decision"])
            """
        let python = try await offPool {
            try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/python3"),
                                    ["-c", script, setup.https, setup.path("server-ca.pem"), setup.path("payments.pem"), setup.path("payments.key")],
                                    environment: [:])
        }
        #expect(python.output.hasPrefix("200 "), "\(python)")

        // HTTP/2 (ALPN h2): three shares as three streams of one connection, an API call, and a refusal
        // that is the stream's own answer (a problem body), not a connection error.
        func h2(_ name: String, _ urls: [String], _ extra: [String] = []) async throws -> [String] {
            let result = try await offPool {
                try sharebrokerTests.curl(["-s", "--http2", "-Z", "--cacert", setup.path("server-ca.pem")] + setup.client(name) + extra
                                          + urls.flatMap { ["-w", "%{http_version} %{http_code} %{num_connects}\n", "-o", "/dev/null", $0] })
            }
            return result.output.split(separator: "\n").map(String.init)
        }
        let send = "\(setup.https)/v1/proxy/huawei-push/v1/10086/messages:send"
        let shares = try await h2("payments", [send, send, send], ["-X", "POST", "-H", "X-Share-Subject: u-1", "-H", "Content-Type: application/json",
                                                                   "--data", #"{"message":{"token":["PUSH-TOKEN-3"]}}"#])
        #expect(shares.count == 3 && shares.allSatisfy { $0.hasPrefix("2 200") }, "\(shares)")
        let connects: [String] = shares.map { line in String(line.split(separator: " ").last ?? "") }
        #expect(connects.filter { $0 != "0" }.count == 1, "one connection: \(shares)")
        #expect(try await h2("mesh", ["\(setup.https)/v1/subjects/u-1/grants"]) == ["2 200 1"])
        let refused = try await offPool {
            try sharebrokerTests.curl(["-s", "--http2", "--cacert", setup.path("server-ca.pem")] + setup.client("stranger")
                                      + ["-w", "\n%{http_version} %{http_code}", "-X", "POST", "-H", "X-Share-Subject: u-1", send])
        }
        #expect(refused.output.contains(#""code":"unauthenticated""#) && refused.output.hasSuffix("\n2 401"), "\(refused)")
        #expect(setup.huawei.requests().filter { $0.path.hasSuffix("messages:send") }.count == 7)
        // A share whose provider takes longer than the client timeout (3 s here) is answered on its stream:
        // the idle timer is the connection's (no open streams), never a stream's with a share in flight.
        setup.huawei.setFault(.delay(.seconds(4)))
        let slow = try await h2("payments", [send], ["-X", "POST", "-H", "X-Share-Subject: u-1", "-H", "Content-Type: application/json",
                                                      "--data", #"{"message":{"token":["PUSH-TOKEN-4"]}}"#])
        let slowHTTP1 = try await setup.push(setup.https, setup.client("payments") + ["--http1.1"])
        setup.huawei.setFault(.none)
        #expect(slow == ["2 200 1"], "\(slow)")
        #expect(slowHTTP1.0 == 200, "\(slowHTTP1)")

        // A connection that never finishes a handshake is closed at the client timeout (3 s here).
        let silent = try await offPool {
            try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", """
                import socket, time
                s = socket.create_connection(("127.0.0.1", \(setup.https.split(separator: ":").last ?? "")))
                s.settimeout(15); started = time.time()
                print(s.recv(1) == b"", round(time.time() - started))
                """], environment: [:]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(["True 3", "True 4"].contains(silent), "\(silent)")

        // TLS 1.1 is refused; the privacy centre over TLS sets HSTS.
        #expect(try await setup.curl(["--tls-max", "1.1", "\(setup.https)/healthz"]).0 == 0)
        let page = try await setup.curl(["-D", "-", "-o", "/dev/null", "\(setup.https)/privacy"])
        #expect(page.1.lowercased().contains("strict-transport-security: max-age=31536000"), "\(page)")
        let plainPage = try await setup.curl(["-D", "-", "-o", "/dev/null", "\(setup.plain)/privacy"])
        #expect(!plainPage.1.lowercased().contains("strict-transport-security"))
    }

    @Test func aClientsOwnListenerIsThatClientAndARenewedCertificateIsServedWithoutARestart() async throws {
        let setup = try await Self.start()
        defer { setup.broker.terminate(); try? FileManager.default.removeItem(at: setup.directory) }
        // Sidecar mode: no credentials at all, and the client's role and providers still decide.
        #expect(try await setup.push(setup.sidecar, []).0 == 200)
        #expect(try await setup.curl(["\(setup.sidecar)/v1/subjects/u-1/grants"]).0 == 403, "a share client may not read grants")
        // HTTP/2 with prior knowledge (h2c) on loopback listeners: a share on the sidecar's, an API call on the plain one.
        let h2c = try await offPool {
            try sharebrokerTests.curl(["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                       "-X", "POST", "-H", "X-Share-Subject: u-1", "-H", "Content-Type: application/json",
                                       "--data", #"{"message":{"token":["PUSH-TOKEN-9"]}}"#,
                                       "\(setup.sidecar)/v1/proxy/huawei-push/v1/10086/messages:send"]).output
        }
        #expect(h2c == "2 200", "\(h2c)")
        let api = try await offPool {
            try sharebrokerTests.curl(["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                       "-H", "Authorization: Bearer grants-token", "\(setup.plain)/v1/subjects/u-1/grants"]).output
        }
        #expect(api == "2 200", "\(api)")
        // Never for a browser (a page on this machine, or its name rebound to 127.0.0.1): a request that
        // carries Origin or Sec-Fetch-Site, or names another host, does not get the listener's client.
        #expect(try await setup.push(setup.sidecar, ["-H", "Origin: https://evil.example"]).0 == 403)
        #expect(try await setup.push(setup.sidecar, ["-H", "Sec-Fetch-Site: same-origin"]).0 == 403)
        #expect(try await setup.push(setup.sidecar, ["-H", "Host: evil.example:8080"]).0 == 421)
        // A token sent on it still decides (another client's: its rights, not the listener's).
        #expect(try await setup.curl(["-H", "Authorization: Bearer grants-token", "\(setup.sidecar)/v1/subjects/u-1/grants"]).0 == 200)

        // A renewed server certificate (a new key, another CA) is served to new connections within seconds.
        let port = setup.https.split(separator: ":").last.map(String.init) ?? ""
        func served() async throws -> String {
            try await offPool {
                try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/python3"),
                                        ["-c", "import ssl; print(ssl.get_server_certificate(('127.0.0.1', \(port))))"],
                                        environment: [:]).output
            }
        }
        let before = try await served()
        let serverCA = try Authority("Renewed Server CA")
        try serverCA.issue("server", in: setup.directory, subject: try DistinguishedName { CommonName("localhost") },
                           names: [.dnsName("localhost")], usage: .serverAuth)
        var after = before
        for _ in 0..<40 where after == before {
            try await Task.sleep(for: .milliseconds(250))
            after = try await served()
        }
        #expect(after != before && after.contains("BEGIN CERTIFICATE"), "\(before) → \(after)")
    }
}

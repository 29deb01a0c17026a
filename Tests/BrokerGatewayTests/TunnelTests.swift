import BrokerTLS
import BrokerTesting
import Foundation
import NIOConcurrencyHelpers
import Testing
import X509

/// Issue 12: `CONNECT` tunnels to adapter hosts, terminated with the broker's own CA, and a
/// complete answer for every refused `CONNECT`.
@Suite(.serialized) struct TunnelTests {
    static let push = "essential.service.notifications.push"

    /// curl with the broker as its HTTPS proxy and the broker's CA as its only trust anchor, speaking
    /// HTTP/1.1 inside the tunnel (`http2InsideATunnel` has HTTP/2).
    func tunnelCurl(_ broker: Broker, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await curl(["-s", "-i", "--http1.1", "-x", broker.base, "-U", "test-app:\(Broker.shareToken)",
                  "--cacert", try #require(broker.caPath)] + arguments)
    }

    @Test func curlThroughATunnelIsAForwardProxyShare() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let url = "https://push-api.cloud.huawei.com/v1/10086/messages:send"
            func send(_ token: String) -> [String] {
                ["-x", broker.base, "-U", "test-app:\(Broker.shareToken)", "--cacert", broker.caPath ?? "",
                 "-H", "X-Share-Subject: u1", "-H", "Content-Type: application/json",
                 "--data", #"{"message":{"token":["\#(token)"],"notification":{"title":"Hi Ann"}}}"#, url]
            }
            // Two requests in one tunnel (keep-alive): curl reuses the connection for the second.
            let result = try await curl(["-s", "-i", "-v"] + send("AAA") + ["--next", "-s", "-i", "-v"] + send("BBB"))
            #expect(result.status == 0, "\(result.output)")
            let lines = result.output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(lines.filter { $0 == "< HTTP/1.1 200 Connection Established" }.count == 1, "one tunnel: \(result.output)")
            #expect(result.output.contains("Re-using existing connection"), "\(result.output)")
            #expect(lines.filter { $0.lowercased() == "x-share-decision: redacted" }.count == 2, "\(result.output)")
            #expect(result.output.contains("issuer: O=ShareBroker; CN=ShareBroker interception CA"), "\(result.output)")
            let requests = broker.simulator("huawei-push").requests().filter { $0.path.hasSuffix("messages:send") }
            #expect(requests.count == 2)
            #expect(requests.allSatisfy { !$0.contains("Ann") && $0.header("Proxy-Authorization") == nil })
            #expect(requests.map { $0.contains("AAA") } == [true, false] && requests.map { $0.contains("BBB") } == [false, true])
            let shares = try await broker.records().filter { $0.kind == "share" }
            #expect(shares.count == 2)
            #expect(shares.allSatisfy { $0.body.contains(#""channel":"proxy""#) && $0.body.contains(#""decision":"redacted""#) })
        }
    }

    /// A client that offers h2 inside the tunnel (as APNs clients must) gets HTTP/2: each stream is a
    /// share through the same checks, several streams share the tunnel, a refusal is its stream's
    /// answer, and a stream naming another authority is 421.
    @Test func http2InsideATunnel() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            try await broker.putSubject("nobody")
            let url = "https://push-api.cloud.huawei.com/v1/10086/messages:send"
            func send(_ subject: String, _ token: String) -> [String] {
                ["-x", broker.base, "-U", "test-app:\(Broker.shareToken)", "--cacert", broker.caPath ?? "", "--http2",
                 "-o", "/dev/null", "-w", "%{http_version} %{http_code} %header{x-share-decision}\n",
                 "-H", "X-Share-Subject: \(subject)", "-H", "Content-Type: application/json",
                 "--data", #"{"message":{"token":["\#(token)"],"notification":{"title":"Hi Ann"}}}"#, url]
            }
            let result = try await curl(["-s", "--no-progress-meter", "-Z"] + send("u1", "AAA") + ["--next", "-s"] + send("u1", "BBB")
                                        + ["--next", "-s"] + send("nobody", "CCC"))
            let lines = result.output.split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasPrefix("2 ") }.sorted()
            #expect(lines == ["2 200 redacted", "2 200 redacted", "2 403 blocked"], "\(result.output)")
            let requests = broker.simulator("huawei-push").requests().filter { $0.path.hasSuffix("messages:send") }
            #expect(requests.count == 2 && requests.allSatisfy { !$0.contains("Ann") && $0.header("Proxy-Authorization") == nil })
            let shares = try await broker.records().filter { $0.kind == "share" }
            #expect(shares.count == 3 && shares.allSatisfy { $0.body.contains(#""channel":"proxy""#) })
            // Another authority inside the tunnel: 421 on that stream.
            let other = try await curl(["-s", "-x", broker.base, "-U", "test-app:\(Broker.shareToken)", "--cacert", broker.caPath ?? "",
                                        "--http2", "-H", "Host: api.weixin.qq.com", "-w", "\n%{http_version} %{http_code}",
                                        "-H", "X-Share-Subject: u1", "--data", "{}", url])
            #expect(other.output.hasSuffix("\n2 421") && other.output.contains(#""code":"misdirected_request""#), "\(other.output)")
            #expect(broker.simulator("huawei-push").requests().filter { $0.path.hasSuffix("messages:send") }.count == 2)
        }
    }

    @Test func aRefusedShareInATunnelSendsNothing() async throws {
        try await withBroker { broker in
            try await broker.putSubject("nobody")
            let result = try await tunnelCurl(broker, ["-H", "X-Share-Subject: nobody", "-H", "Content-Type: application/json",
                                                 "--data", #"{"message":{"token":["AAA"]}}"#,
                                                 "https://push-api.cloud.huawei.com/v1/10086/messages:send"])
            #expect(result.output.contains("HTTP/1.1 403"), "\(result.output)")
            #expect(result.output.contains(#""code":"consent_missing""#), "\(result.output)")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
            #expect(try await broker.records().filter { $0.kind == "share" }.count == 1, "the refusal is logged")
        }
    }

    /// Every refused CONNECT gets a whole problem+json answer and then EOF; nothing reaches the
    /// host it named (a loopback canary that an open proxy would connect to sees no connection).
    @Test func everyRefusedConnectIsACompleteAnswerAndNothingIsTunnelled() async throws {
        try await withBroker { broker in
            let canary = try Canary()
            defer { canary.close() }
            let good = "Proxy-Authorization: Bearer \(Broker.shareToken)\r\n"
            let cases: [(String, Int, String)] = [
                ("CONNECT push-api.cloud.huawei.com:443 HTTP/1.1\r\nHost: push-api.cloud.huawei.com:443\r\n\r\n", 407, "unauthenticated"),
                ("CONNECT push-api.cloud.huawei.com:443 HTTP/1.1\r\nProxy-Authorization: Bearer nope\r\n\r\n", 407, "unauthenticated"),
                ("CONNECT example.org:443 HTTP/1.1\r\n\(good)\r\n", 403, "unknown_provider"),
                ("CONNECT 127.0.0.1:\(canary.port) HTTP/1.1\r\n\(good)\r\n", 403, "unknown_provider"),
                ("CONNECT localhost:\(canary.port) HTTP/1.1\r\n\(good)\r\n", 403, "unknown_provider"),
                ("CONNECT push-api.cloud.huawei.com:\(canary.port) HTTP/1.1\r\n\(good)\r\n", 403, "unknown_provider"),
                ("CONNECT push-api.cloud.huawei.com HTTP/1.1\r\n\(good)\r\n", 400, "invalid_host"),
                ("CONNECT push-api.cloud.huawei.com:443 HTTP/1.1\r\n\(good)\(good)\r\n", 400, "duplicate_header"),
                // Behind a keep-alive request: its answer first, then the refusal.
                ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nCONNECT example.org:443 HTTP/1.1\r\n\(good)\r\n", 403, "unknown_provider"),
            ]
            for (request, status, code) in cases {
                let (reply, closed) = try await HardeningTests.rawBytes(broker, Array(request.utf8))
                let last = reply.range(of: "HTTP/1.1 \(status) ").map { String(reply[$0.lowerBound...]) } ?? ""
                #expect(!last.isEmpty, "\(request): \(reply)")
                #expect(ClientLimitTests.isCompleteResponse(Array(last.utf8)), "incomplete answer: \(reply)")
                #expect(last.contains(#""code":"\#(code)""#), "\(reply)")
                #expect(last.lowercased().contains("content-type: application/problem+json"))
                #expect(closed, "the connection stays open after: \(reply)")
                if status == 407 { #expect(last.contains("Proxy-Authenticate: Basic")) }
            }
            #expect(!canary.wasContacted(), "the broker connected to the host a refused CONNECT named")
        }
    }

    /// Issue 23 §6: a tunnel is a share channel. A client without role `share` (grants, compliance,
    /// admin), or one that may not use the provider of the host, gets a complete 403 before any
    /// tunnel opens; the same client's allowed host still opens.
    @Test func connectNeedsRoleShareAndTheHostsProvider() async throws {
        try await withBroker { broker in
            let huawei = "push-api.cloud.huawei.com:443"
            for (token, target) in [(Broker.grantsToken, huawei), (Broker.complianceToken, huawei), (Broker.adminToken, huawei),
                                    (Broker.grantsToken, "example.org:443"), (Broker.narrowShareToken, huawei)] {
                let request = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\nProxy-Authorization: Bearer \(token)\r\n\r\n"
                let (reply, closed) = try await HardeningTests.rawBytes(broker, Array(request.utf8))
                #expect(reply.hasPrefix("HTTP/1.1 403 "), "\(token) → \(target): \(reply)")
                #expect(ClientLimitTests.isCompleteResponse(Array(reply.utf8)) && closed, "\(reply)")
                #expect(reply.lowercased().contains("content-type: application/problem+json"))
                #expect(reply.contains(#""code":"caller_not_permitted""#), "\(token) → \(target): \(reply)")
                #expect(!reply.contains("Connection Established"))
            }
            // Basic credentials (a proxy URL's user:token) are judged the same way.
            let basic = Data("test-accounts:\(Broker.grantsToken)".utf8).base64EncodedString()
            let (reply, _) = try await HardeningTests.rawBytes(
                broker, Array("CONNECT \(huawei) HTTP/1.1\r\nProxy-Authorization: Basic \(basic)\r\n\r\n".utf8))
            #expect(reply.hasPrefix("HTTP/1.1 403 ") && reply.contains(#""code":"caller_not_permitted""#), "\(reply)")
            // The narrow client's own provider opens.
            let (own, _) = try await HardeningTests.rawBytes(
                broker, Array("CONNECT api.weixin.qq.com:443 HTTP/1.1\r\nProxy-Authorization: Bearer \(Broker.narrowShareToken)\r\n\r\n".utf8))
            #expect(own.hasPrefix("HTTP/1.1 200 Connection Established"), "\(own)")
            // And curl, with the grants token as its proxy credential, gets no tunnel.
            let refused = try await curl(["-s", "-i", "-x", broker.base, "-U", "test-accounts:\(Broker.grantsToken)",
                                          "--cacert", try #require(broker.caPath), "-H", "X-Share-Subject: u1", "--data", "{}",
                                          "https://\(huawei)/v1/10086/messages:send"])
            #expect(refused.output.contains("403"), "\(refused.output)")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    @Test func insideATunnelTheSNIAndTheHostMustBeTheTunnelsHost() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let url = "https://push-api.cloud.huawei.com/v1/10086/messages:send"
            // The tunnel is opened to WeChat's host, the TLS handshake names Huawei's: refused.
            let sni = try await tunnelCurl(broker, ["--connect-to", "push-api.cloud.huawei.com:443:api.weixin.qq.com:443",
                                              "-H", "X-Share-Subject: u1", "--data", "{}", url])
            #expect(sni.status == 35, "curl: \(sni.status) \(sni.output)")
            // The right tunnel and handshake, but a request naming another Host: 421.
            let host = try await tunnelCurl(broker, ["-H", "Host: api.weixin.qq.com", "-H", "X-Share-Subject: u1",
                                               "-H", "Content-Type: application/json", "--data", #"{"message":{"token":["T"]}}"#, url])
            #expect(host.output.contains("HTTP/1.1 421"), "\(host.output)")
            #expect(host.output.contains(#""code":"misdirected_request""#))
            #expect(broker.simulator("huawei-push").requests().isEmpty)
            #expect(broker.simulator("wechat-login").requests().isEmpty)
        }
    }

    /// The subject may ride in the proxy user name (`client;subject=ID`) for SDKs that cannot add a
    /// header; a header that names another subject is refused.
    @Test func theSubjectInTheProxyUserName() async throws {
        try await withBroker { broker in
            try await broker.grant("u7", provider: "huawei-push", purpose: Self.push)
            let url = "https://push-api.cloud.huawei.com/v1/10086/messages:send"
            let common = ["-s", "-i", "--http1.1", "-x", broker.base, "--cacert", broker.caPath ?? "", "-H", "Content-Type: application/json",
                          "--data", #"{"message":{"token":["T7"]}}"#]
            let named = try await curl(common + ["-U", "test-app;subject=u7:\(Broker.shareToken)", url])
            #expect(named.output.contains("HTTP/1.1 200 OK"), "\(named.output)")
            let conflicting = try await curl(common + ["-U", "test-app;subject=u7:\(Broker.shareToken)", "-H", "X-Share-Subject: u8", url])
            #expect(conflicting.output.contains(#""code":"subject_mismatch""#), "\(conflicting.output)")
            let unknownParameter = try await curl(common + ["-U", "test-app;region=cn:\(Broker.shareToken)", url])
            #expect(unknownParameter.output.contains("HTTP/1.1 407"), "\(unknownParameter.output)")
            #expect(broker.simulator("huawei-push").requests().count == 1)
        }
    }

    /// Path form: `Proxy-Authorization` authenticates the caller, so an SDK can keep `Authorization`.
    @Test func pathFormTakesProxyAuthorization() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send", token: nil,
                                                 headers: [("Proxy-Authorization", "Bearer \(Broker.shareToken)"),
                                                           ("Authorization", "TC3-HMAC-SHA256 Credential=sdk-own"),
                                                           ("X-Share-Subject", "u1"), ("Content-Type", "application/json")],
                                                 body: #"{"message":{"token":["P1"]}}"#)
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            let request = try #require(broker.simulator("huawei-push").requests().last)
            #expect(request.header("Authorization")?.hasPrefix("Bearer ") == true, "the provider's credential, not the SDK's")
        }
    }

    @Test func theCACertificateIsPublished() async throws {
        try await withBroker { broker in
            let response = try await broker.call("GET", "/v1/tls/ca.pem", token: nil)
            #expect(response.status == 200)
            #expect(response.headerValue("Content-Type") == "application/x-pem-file")
            let file = try String(contentsOfFile: try #require(broker.caPath), encoding: .utf8)
            #expect(String(decoding: response.body, as: UTF8.self) == file)
        }
    }

    @Test func tunnelsOffIsA405AnsweredInFull() async throws {
        try await withBroker(tunnels: false) { broker in
            let (reply, closed) = try await HardeningTests.rawBytes(
                broker, Array("CONNECT push-api.cloud.huawei.com:443 HTTP/1.1\r\nProxy-Authorization: Bearer \(Broker.shareToken)\r\n\r\n".utf8))
            #expect(reply.hasPrefix("HTTP/1.1 405"), "\(reply)")
            #expect(ClientLimitTests.isCompleteResponse(Array(reply.utf8)) && closed, "\(reply)")
            #expect(reply.contains(#""code":"tunnel_not_inspectable""#))
            #expect(try await broker.call("GET", "/v1/tls/ca.pem", token: nil).status == 404)
        }
    }
}

/// The CA and its leaf certificates, without a server.
@Suite struct InterceptionCATests {
    @Test func leavesNameOneHostAreSignedByTheCAAndAreRenewedBeforeTheyEnd() throws {
        let ca = try InterceptionCA.generate()
        let clock = NIOLockedValueBox(Date())
        let certificates = TunnelCertificates(ca: ca, validity: 24 * 3600, renewBefore: 8 * 3600, now: { clock.withLockedValue { $0 } })
        let first = try certificates.certificate(for: "faceid.tencentcloudapi.com")
        #expect(try first.extensions.subjectAlternativeNames == SubjectAlternativeNames([.dnsName("faceid.tencentcloudapi.com")]))
        #expect(first.issuer == ca.certificate.subject)
        #expect(ca.certificate.publicKey.isValidSignature(first.signature, for: first))
        #expect(try first.extensions.basicConstraints == .notCertificateAuthority)
        #expect(first.notValidAfter.timeIntervalSince(first.notValidBefore) <= 24 * 3600 + 301)
        clock.withLockedValue { $0 += 15 * 3600 }
        #expect(try certificates.certificate(for: "faceid.tencentcloudapi.com").serialNumber == first.serialNumber, "cached")
        clock.withLockedValue { $0 += 2 * 3600 }
        let renewed = try certificates.certificate(for: "faceid.tencentcloudapi.com")
        #expect(renewed.serialNumber != first.serialNumber, "renewed within 8 hours of its end")
        #expect(renewed.notValidAfter > first.notValidAfter)
    }

    @Test func aGivenCAMustHaveItsOwnKey() throws {
        let ca = try InterceptionCA.generate()
        let again = try InterceptionCA(certificatePEM: try ca.certificatePEM, keyPEM: ca.keyPEM)
        #expect(again.certificate == ca.certificate)
        let other = try InterceptionCA.generate()
        #expect(throws: TLSSetupError.self) { try InterceptionCA(certificatePEM: try ca.certificatePEM, keyPEM: other.keyPEM) }
        #expect(throws: TLSSetupError.self) { try InterceptionCA(certificatePEM: "not pem", keyPEM: ca.keyPEM) }
    }
}


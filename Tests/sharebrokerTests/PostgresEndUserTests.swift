import BrokerCurl
import BrokerPostgres
import BrokerTesting
@preconcurrency import Crypto
import Foundation
import Logging
import Testing

/// Issue 13 through a real `serve` process on PostgreSQL: an end user signed in with an ES256
/// token whose key the broker fetches from the identity provider's JWKS URL deletes their
/// account; a subject found to be a minor loses every grant; the exposure report names both;
/// each deletion verified at the provider simulator.
@Suite(.serialized, .enabled(if: PostgresTestCluster.available)) struct PostgresEndUserTests {
    static func b64(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func es256(_ key: P256.Signing.PrivateKey, subject: String) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let input = b64(Data(#"{"alg":"ES256","kid":"idp-1","typ":"JWT"}"#.utf8)) + "."
            + b64(Data(#"{"aud":"sharebroker","exp":\#(now + 600),"iat":\#(now),"iss":"https://idp.test","sub":"\#(subject)"}"#.utf8))
        return input + "." + b64(try key.signature(for: Data(input.utf8)).rawRepresentation)
    }

    @Test func deletionMinorsAndExposureOnPostgresWithAJWKSFromAURL() async throws {
        let (simulators, huawei, directory, credentials) = try await TwoNodeTests.huaweiBroker()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The identity provider: its JWKS over HTTP on loopback (Python's http.server, a real server).
        let key = P256.Signing.PrivateKey()
        let point = key.publicKey.x963Representation
        let idp = directory.appendingPathComponent("idp")
        try FileManager.default.createDirectory(at: idp, withIntermediateDirectories: true)
        try #"{"keys":[{"kty":"EC","kid":"idp-1","crv":"P-256","x":"\#(Self.b64(point[1...32]))","y":"\#(Self.b64(point[33...64]))"}]}"#
            .write(to: idp.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
        let canary = try Canary()
        let idpPort = canary.port
        canary.close()
        let server = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"),
                                      ["python3", "-m", "http.server", String(idpPort), "--bind", "127.0.0.1", "--directory", idp.path],
                                      environment: ProcessInfo.processInfo.environment)
        defer { server.terminate() }

        try await TwoNodeTests.writeConfig(in: directory, more: """
            users:
              jwt: { issuer: "https://idp.test", audience: sharebroker, algorithms: [ES256],
                     jwks: { url: "http://127.0.0.1:\(idpPort)/jwks.json" } }
            """)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        let node = try await TwoNodeTests().startNode("node-a", in: directory, environment: environment)
        defer { node.process.terminate() }
        var logger = Logger(label: "pg-end-user")
        logger.logLevel = .critical
        let client = try CurlUpstreamClient(logger: logger)
        func call(_ method: String, _ path: String, token: String, subject: String? = nil, body: String = "") async throws -> UpstreamResponse {
            var headers = [HTTPHeaderLine("Authorization", "Bearer \(token)"), HTTPHeaderLine("Content-Type", "application/json")]
            if let subject { headers.append(HTTPHeaderLine("X-Share-Subject", subject)) }
            return try await client.send(UpstreamRequest(method: method, url: node.base + path, headers: headers, body: Array(body.utf8)))
        }
        func json(_ response: UpstreamResponse) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        }
        func acknowledged(_ id: String) async throws -> Bool {
            for _ in 0..<300 {
                if String(decoding: try await call("GET", "/v1/revocations/\(id)", token: "grants-token").body, as: UTF8.self)
                    .contains(#""status":"acknowledged""#) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        let grantBody = #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#
        let push = "/v1/proxy/huawei-push/v1/10086/messages:send"
        for subject in ["pg-u1", "pg-kid"] {
            #expect(try await call("POST", "/v1/subjects/\(subject)/grants", token: "grants-token", body: grantBody).status == 201)
            #expect(try await call("POST", push, token: "share-token", subject: subject,
                                   body: #"{"message":{"token":["TOK-\#(subject)"]}}"#).status == 200)
        }

        // The user, signed in at the identity provider, sees their grants and deletes their account.
        let token = try Self.es256(key, subject: "pg-u1")
        #expect(try await call("GET", "/v1/subjects/pg-u1/grants", token: token).status == 200, "the JWKS was fetched from its URL")
        #expect(try await call("GET", "/v1/subjects/pg-kid/grants", token: token).status == 404, "another subject")
        let deleted = try await call("DELETE", "/v1/subjects/pg-u1", token: token)
        #expect(deleted.status == 202, "\(String(decoding: deleted.body, as: UTF8.self))")
        #expect(try await acknowledged(try #require(json(deleted)["revocation_id"] as? String)))
        let after = try await call("POST", push, token: "share-token", subject: "pg-u1", body: #"{"message":{"token":["LATE"]}}"#)
        #expect(after.status == 403 && json(after)["code"] as? String == "subject_deleted")

        // A minor found: every grant revoked, their data deleted at the provider.
        let flagged = try await call("PUT", "/v1/subjects/pg-kid", token: "grants-token", body: #"{"minor":true}"#)
        #expect(try await acknowledged(try #require(json(flagged)["revocation_id"] as? String, "\(json(flagged))")))
        #expect(huawei.tokenDeletionCalls().map(\.token).sorted() == ["TOK-pg-kid", "TOK-pg-u1"])

        // Who Huawei received data about (both, before they were deleted).
        let exposure = try await call("GET", "/v1/reports/exposure?provider=huawei-push", token: "audit-token")
        #expect((json(exposure)["subjects"] as? [[String: Any]] ?? []).compactMap { $0["subject"] as? String } == ["pg-kid", "pg-u1"],
                "\(String(decoding: exposure.body, as: UTF8.self))")
        await client.shutdown()
        node.process.terminate()
        await offPool { node.process.waitUntilExit() }
        await simulators.shutdown()
    }
}

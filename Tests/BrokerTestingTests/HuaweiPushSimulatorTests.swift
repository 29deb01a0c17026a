@testable import BrokerTesting
import Foundation
import Testing

@Suite struct HuaweiPushSimulatorTests {
    static func token(_ sim: ProviderSimulator, _ creds: SimulatorCredentials, path: String = "/oauth2/v3/token") async throws -> String {
        let reply = try await SimulatorHTTP.form(sim, path, [
            ("grant_type", "client_credentials"), ("client_id", creds.huaweiClientID), ("client_secret", creds.huaweiClientSecret),
        ])
        #expect(reply.status == 200)
        #expect(reply["token_type"] == "Bearer")
        return try #require(reply["access_token"]?.stringValue)
    }

    static func send(_ sim: ProviderSimulator, bearer: String, body: String,
                     contentType: String = "application/json;charset=utf-8") async throws -> SimulatorReply {
        try await SimulatorHTTP.send(sim, .post, "/v1/10086/messages:send",
                                     headers: [("Authorization", "Bearer \(bearer)"), ("Content-Type", contentType)],
                                     body: Array(body.utf8))
    }

    static let message = #"{"validate_only":false,"message":{"token":["pushTokenA"],"notification":{"title":"Hi","body":"Ann"}}}"#

    @Test func goodSendSucceedsAndIsRecordedExactly() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds, tokenLifetime: .seconds(3600)) { sims in
            let sim = sims.simulator("huawei-push")
            let token = try await Self.token(sim, creds)
            let reply = try await Self.send(sim, bearer: token, body: Self.message)
            #expect(reply.status == 200)
            #expect(reply["code"] == "80000000")
            #expect(reply["msg"] == "Success")
            #expect(reply["requestId"]?.stringValue?.isEmpty == false)
            // v2 path accepted too, with expires_in from tokenLifetime
            let v2 = try await SimulatorHTTP.form(sim, "/oauth2/v2/token", [
                ("grant_type", "client_credentials"), ("client_id", creds.huaweiClientID), ("client_secret", creds.huaweiClientSecret),
            ])
            #expect(v2["expires_in"] == 3600)

            #expect(sim.tokenRequests().count == 2)
            let recorded = try #require(sim.requests().first)
            #expect(sim.requests().count == 1)
            #expect(recorded.method == "POST")
            #expect(recorded.path == "/v1/10086/messages:send")
            #expect(recorded.query == nil)
            #expect(recorded.body == Array(Self.message.utf8))
            #expect(recorded.header("authorization") == "Bearer \(token)")
            #expect(recorded.header("Host") == "127.0.0.1:\(sim.port)")
            #expect(recorded.contains("pushTokenA"))
            #expect(!recorded.contains("pushTokenB"))
        }
    }

    @Test func wrongClientSecretIsRefused() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("huawei-push")
            let reply = try await SimulatorHTTP.form(sim, "/oauth2/v3/token", [
                ("grant_type", "client_credentials"), ("client_id", creds.huaweiClientID), ("client_secret", "nope"),
            ])
            #expect(reply.status == 401)
            #expect(reply["error"] == 1101)
            #expect(reply["access_token"] == nil)
            let unknownClient = try await SimulatorHTTP.form(sim, "/oauth2/v3/token", [
                ("grant_type", "client_credentials"), ("client_id", "1"), ("client_secret", creds.huaweiClientSecret),
            ])
            #expect(unknownClient.status == 401)
            // JSON instead of a form is a malformed token request
            let json = try await SimulatorHTTP.send(sim, .post, "/oauth2/v3/token", headers: [("Content-Type", "application/json")],
                                                    body: Array(#"{"grant_type":"client_credentials"}"#.utf8))
            #expect(json.status == 400)
        }
    }

    @Test func unknownBearerIsRefusedWith80200001() async throws {
        try await withSimulators { sims in
            let sim = sims.simulator("huawei-push")
            let reply = try await Self.send(sim, bearer: "forged", body: Self.message)
            #expect(reply.status == 401)
            #expect(reply["code"] == "80200001")
            let missing = try await SimulatorHTTP.send(sim, .post, "/v1/10086/messages:send",
                                                       headers: [("Content-Type", "application/json")], body: Array(Self.message.utf8))
            #expect(missing.status == 401)
        }
    }

    @Test func expiredTokenIsRefusedWith80200003() async throws {
        let creds = SimulatorCredentials.random()
        // Long enough that the first send is inside it even on a loaded machine (the whole suite runs in parallel).
        try await withSimulators(credentials: creds, tokenLifetime: .seconds(8)) { sims in
            let sim = sims.simulator("huawei-push")
            let token = try await Self.token(sim, creds)
            #expect(try await Self.send(sim, bearer: token, body: Self.message).status == 200)
            try await Task.sleep(for: .milliseconds(8300))
            let reply = try await Self.send(sim, bearer: token, body: Self.message)
            #expect(reply.status == 401)
            #expect(reply["code"] == "80200003")
            #expect(reply["msg"] == "OAuth token expired")
        }
    }

    @Test func expireIssuedTokensExpiresWithoutWaiting() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("huawei-push")
            let token = try await Self.token(sim, creds)
            sim.expireIssuedTokens()
            #expect(try await Self.send(sim, bearer: token, body: Self.message)["code"] == "80200003")
        }
    }

    @Test(arguments: [
        #"{"message":{}}"#,                                                       // no target
        #"{"message":{"token":[]}}"#,                                             // empty token list
        #"{"message":{"token":["a"],"topic":"news"}}"#,                           // two targets
        #"{"message":{"token":"a"}}"#,                                            // token not an array
        #"{"message":{"token":[1]}}"#,                                            // token not a string
        #"{"validate_only":"yes","message":{"token":["a"]}}"#,                    // validate_only not a bool
        #"{"token":["a"]}"#,                                                      // no message
        #"{"message":{"token":["a"]}"#,                                           // truncated JSON
        #"[]"#,
    ])
    func invalidPayloadIsRefusedWith80100003(body: String) async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("huawei-push")
            let token = try await Self.token(sim, creds)
            let reply = try await Self.send(sim, bearer: token, body: body)
            #expect(reply.status == 400)
            #expect(reply["code"] == "80100003")
        }
    }

    @Test func thousandAndOneTokensAreRefusedAndTopicIsAccepted() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("huawei-push")
            let token = try await Self.token(sim, creds)
            let many = (0...1000).map { "\"t\($0)\"" }.joined(separator: ",")
            #expect(try await Self.send(sim, bearer: token, body: #"{"message":{"token":[\#(many)]}}"#).status == 400)
            #expect(try await Self.send(sim, bearer: token, body: #"{"message":{"topic":"news","data":"{}"}}"#).status == 200)
            #expect(try await Self.send(sim, bearer: token, body: Self.message, contentType: "text/plain").status == 400)
        }
    }

    @Test func tokenDeleteRecordsDeletionsIdempotently() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("huawei-push")
            let token = try await Self.token(sim, creds)
            func delete(_ pushToken: String, app: String = "10086") async throws -> SimulatorReply {
                try await SimulatorHTTP.send(sim, .post, "/v1/\(app)/token:delete",
                                             headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                                             body: Array(#"{"token":"\#(pushToken)"}"#.utf8))
            }
            #expect(try await delete("pushTokenA")["code"] == "80000000")
            #expect(try await delete("pushTokenA")["code"] == "80000000")
            #expect(try await delete("pushTokenB").status == 200)
            #expect(try await delete("pushTokenA", app: "999").status == 200)
            #expect(sim.deletedTokens() == [
                DeletedPushToken(appID: "10086", token: "pushTokenA"),
                DeletedPushToken(appID: "10086", token: "pushTokenB"),
                DeletedPushToken(appID: "999", token: "pushTokenA"),
            ])
            #expect(sim.tokenDeletionCalls().count == 4)
            #expect(sim.requests().count == 4)

            // A deletion without a valid token has no effect.
            let forged = try await SimulatorHTTP.send(sim, .post, "/v1/10086/token:delete",
                                                      headers: [("Authorization", "Bearer x"), ("Content-Type", "application/json")],
                                                      body: Array(#"{"token":"pushTokenC"}"#.utf8))
            #expect(forged.status == 401)
            #expect(sim.deletedTokens().count == 3)

            sim.reset()
            #expect(sim.deletedTokens().isEmpty && sim.tokenDeletionCalls().isEmpty && sim.requests().isEmpty)
            #expect(try await delete("pushTokenA").status == 200)   // the token survives reset
        }
    }
}

@testable import BrokerTesting
import Foundation
import Testing

@Suite struct OPPOPushSimulatorTests {
    static func nowMillis(offset: TimeInterval = 0) -> String {
        String(Int64((Date().timeIntervalSince1970 + offset) * 1000))
    }

    static func auth(_ sim: ProviderSimulator, appKey: String, masterSecret: String,
                     timestamp: String = nowMillis()) async throws -> SimulatorReply {
        let sign = OPPOAuthSign.sign(appKey: appKey, timestamp: timestamp, masterSecret: masterSecret)
        return try await SimulatorHTTP.form(sim, "/server/v1/auth", [("app_key", appKey), ("timestamp", timestamp), ("sign", sign)])
    }

    static func authToken(_ sim: ProviderSimulator, _ creds: SimulatorCredentials) async throws -> String {
        let reply = try await self.auth(sim, appKey: creds.oppoAppKey, masterSecret: creds.oppoMasterSecret)
        #expect(reply.status == 200)
        #expect(reply["code"] == 0)
        #expect(reply["data"]?["create_time"]?.intValue != nil)
        return try #require(reply["data"]?["auth_token"]?.stringValue)
    }

    static let message = #"{"target_type":2,"target_value":"regIdA","notification":{"title":"Hi","content":"Ann, your parcel"}}"#

    @Test func signMatchesAnIndependentComputation() {
        // printf 'key1700000000000secret' | sha256sum
        #expect(OPPOAuthSign.sign(appKey: "key", timestamp: "1700000000000", masterSecret: "secret")
            == "ee412f504f93d283888979ab4f37e98beb471243575d468a4048c57285abad84")
    }

    @Test func goodUnicastSucceedsAndIsRecordedExactly() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("oppo-push")
            let token = try await Self.authToken(sim, creds)
            let reply = try await SimulatorHTTP.form(sim, "/server/v1/message/notification/unicast",
                                                     [("auth_token", token), ("message", Self.message)])
            #expect(reply.status == 200)
            #expect(reply["code"] == 0)
            #expect(reply["data"]?["messageId"]?.stringValue?.isEmpty == false)
            let recorded = try #require(sim.requests().first)
            #expect(recorded.formParameter("message") == Self.message)
            #expect(recorded.formParameter("auth_token") == token)
            #expect(sim.tokenRequests().count == 1)
            // auth_token as a header is accepted too
            let viaHeader = try await SimulatorHTTP.form(sim, "/server/v1/message/notification/unicast",
                                                         [("message", Self.message)], headers: [("auth_token", token)])
            #expect(viaHeader["code"] == 0)
        }
    }

    @Test func wrongMasterSecretIsRefusedWithInvalidSignature() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("oppo-push")
            let reply = try await Self.auth(sim, appKey: creds.oppoAppKey, masterSecret: "wrong")
            #expect(reply.status == 200)
            #expect(reply["code"] == 16)
            #expect(reply["data"] == nil)
            #expect(try await Self.auth(sim, appKey: "other", masterSecret: creds.oppoMasterSecret)["code"] == 14)
            let stale = try await Self.auth(sim, appKey: creds.oppoAppKey, masterSecret: creds.oppoMasterSecret,
                                            timestamp: Self.nowMillis(offset: -11 * 60))
            #expect(stale["code"] == 19)
            let seconds = try await Self.auth(sim, appKey: creds.oppoAppKey, masterSecret: creds.oppoMasterSecret,
                                              timestamp: String(Int64(Date().timeIntervalSince1970)))
            #expect(seconds["code"] == 19)
            let unsigned = try await SimulatorHTTP.form(sim, "/server/v1/auth", [("app_key", creds.oppoAppKey), ("timestamp", Self.nowMillis())])
            #expect(unsigned["code"] == 17)
        }
    }

    @Test func invalidOrExpiredAuthTokenIsRefused() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("oppo-push")
            let forged = try await SimulatorHTTP.form(sim, "/server/v1/message/notification/unicast",
                                                      [("auth_token", "forged"), ("message", Self.message)])
            #expect(forged["code"] == 11)
            let missing = try await SimulatorHTTP.form(sim, "/server/v1/message/notification/unicast", [("message", Self.message)])
            #expect(missing["code"] == 29)
            let token = try await Self.authToken(sim, creds)
            sim.expireIssuedTokens()
            let expired = try await SimulatorHTTP.form(sim, "/server/v1/message/notification/unicast",
                                                       [("auth_token", token), ("message", Self.message)])
            #expect(expired["code"] == 11)
        }
    }

    @Test(arguments: [
        (#"{"target_type":2,"target_value":"r","notification":{"content":"c"}}"#, 40),      // title stripped
        (#"{"target_type":2,"target_value":"r","notification":{"title":"t"}}"#, 40),        // content stripped
        (#"{"target_type":2,"target_value":"r","notification":{}}"#, 40),
        (#"{"target_type":2,"target_value":"r"}"#, 40),
        (#"{"target_value":"r","notification":{"title":"t","content":"c"}}"#, 40),
        (#"{"target_type":2,"notification":{"title":"t","content":"c"}}"#, 40),
        (#"{"target_type":"2","target_value":"r","notification":{"title":"t","content":"c"}}"#, 41),
        (#"{"target_type":3,"target_value":"r","notification":{"title":"t","content":"c"}}"#, 41),
        (#"{"target_type":2,"target_value":"","notification":{"title":"t","content":"c"}}"#, 41),
        (#"{"target_type":2,"target_value":"r","notification":{"title":"t","content":""}}"#, 41),
        (#"{"target_type":2,"#, 41),
    ])
    func invalidMessageIsRefused(message: String, code: Int64) async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("oppo-push")
            let token = try await Self.authToken(sim, creds)
            let reply = try await SimulatorHTTP.form(sim, "/server/v1/message/notification/unicast",
                                                     [("auth_token", token), ("message", message)])
            #expect(reply.status == 200)
            #expect(reply["code"] == .int(code))
        }
    }
}

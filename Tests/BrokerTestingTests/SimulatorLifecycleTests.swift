@testable import BrokerTesting
import Foundation
import Logging
import Testing

@Suite struct SimulatorLifecycleTests {
    @Test func everySimulatorStartsOnADistinctLoopbackPortAndShutsDown() async throws {
        let creds = SimulatorCredentials.random()
        var logger = Logger(label: "lifecycle")
        logger.logLevel = .warning
        let sims = try await ProviderSimulators.start(credentials: creds, logger: logger)
        #expect(sims.all.map(\.provider) == ProviderSimulators.providers)
        #expect(Set(sims.all.map(\.port)).count == ProviderSimulators.providers.count)
        for sim in sims.all {
            #expect(sim.port > 0)
            #expect(sim.baseURL == "http://127.0.0.1:\(sim.port)")
            #expect(sims[sim.provider] === sim)
        }
        #expect(sims["no-such-provider"] == nil)
        let amap = sims.simulator("amap-location")
        #expect(try await SimulatorHTTP.get(amap, "/v3/ip", [("key", creds.amapKey)]).status == 200)
        let clock = ContinuousClock()
        let started = clock.now
        await sims.shutdown()
        // No server hangs in its shutdown (15 of them; 5 s was too tight on a loaded 2-core machine).
        #expect(clock.now - started < .seconds(15))
        await #expect(throws: (any Error).self) {
            _ = try await SimulatorHTTP.get(amap, "/v3/ip", [("key", creds.amapKey)])
        }
    }

    @Test func environmentNamesTheAdaptersVariables() {
        let creds = SimulatorCredentials.random()
        #expect(creds.environment == [
            "HUAWEI_CLIENT_ID": creds.huaweiClientID, "HUAWEI_CLIENT_SECRET": creds.huaweiClientSecret,
            "OPPO_APP_KEY": creds.oppoAppKey, "OPPO_MASTER_SECRET": creds.oppoMasterSecret,
            "AMAP_KEY": creds.amapKey,
            "TENCENT_SECRET_ID": creds.tencentSecretID, "TENCENT_SECRET_KEY": creds.tencentSecretKey,
            "WECHAT_APP_ID": creds.wechatAppID, "WECHAT_APP_SECRET": creds.wechatAppSecret,
            "ALIPAY_APP_ID": creds.alipayAppID, "ALIPAY_APP_PRIVATE_KEY": creds.alipayKeys.appPrivateKeyPEM,
            "ALIPAY_PUBLIC_KEY": creds.alipayKeys.alipayPublicKeyPEM,
            "GOOGLE_MAPS_KEY": creds.googleMapsKey, "XIAOMI_APP_SECRET": creds.xiaomiAppSecret,
            "TENCENT_LBS_KEY": creds.tencentLBSKey, "TENCENT_LBS_SECRET_KEY": creds.tencentLBSSecretKey,
            "VIVO_APP_ID": creds.vivoAppID, "VIVO_APP_KEY": creds.vivoAppKey, "VIVO_APP_SECRET": creds.vivoAppSecret,
            "FCM_CLIENT_EMAIL": creds.fcmClientEmail, "FCM_PRIVATE_KEY": ServiceAccountKey.privateKeyPEM,
            "ALIBABA_ACCESS_KEY_ID": creds.alibabaAccessKeyID, "ALIBABA_ACCESS_KEY_SECRET": creds.alibabaAccessKeySecret,
            "APPLE_TEAM_ID": creds.appleTeamID, "APPLE_KEY_ID": creds.appleKeyID, "APPLE_CLIENT_ID": creds.appleClientID,
            "APPLE_PRIVATE_KEY": creds.applePrivateKeyPEM,
            "GOOGLE_CLIENT_ID": creds.googleClientID, "GOOGLE_CLIENT_SECRET": creds.googleClientSecret,
            "APNS_TEAM_ID": creds.apnsTeamID, "APNS_KEY_ID": creds.apnsKeyID, "APNS_PRIVATE_KEY": creds.apnsPrivateKeyPEM,
        ])
        #expect(creds != SimulatorCredentials.random())
    }

    @Test func unknownPathsAre404AndRecorded() async throws {
        try await withSimulators { sims in
            // (APNs speaks HTTP/2 only: this HTTP/1.1 client cannot reach it; MoreProviderTests covers it.)
            for sim in sims.all where sim.provider != "apns" {
                let reply = try await SimulatorHTTP.send(sim, .get, "/nope?x=1")
                #expect(reply.status == 404)
                #expect(sim.requests().last?.path == "/nope")
                #expect(sim.requests().last?.query == "x=1")
            }
        }
    }

    @Test func statusFaultAnswersInProviderStyleWithoutActing() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let huawei = sims.simulator("huawei-push")
            huawei.setFault(.status(503))
            // The token call is not faulted.
            let token = try await HuaweiPushSimulatorTests.token(huawei, creds)
            let delete = try await SimulatorHTTP.send(huawei, .post, "/v1/1/token:delete",
                                                      headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                                                      body: Array(#"{"token":"t"}"#.utf8))
            #expect(delete.status == 503)
            #expect(delete["code"] == "81000001")
            #expect(huawei.deletedTokens().isEmpty)
            #expect(huawei.requests().count == 1)   // recorded even though faulted

            let wechat = sims.simulator("wechat-login")
            wechat.setFault(.status(500))
            let faulted = try await WeChatLoginSimulatorTests.exchange(wechat, creds, code: "k")
            #expect(faulted.status == 500)
            #expect(faulted["errcode"] == -1)
            wechat.setFault(.none)
            // Not acted on: the code is still unused.
            #expect(try await WeChatLoginSimulatorTests.exchange(wechat, creds, code: "k")["access_token"] != nil)

            let oppo = sims.simulator("oppo-push")
            oppo.setFault(.status(502))
            #expect(try await OPPOPushSimulatorTests.auth(oppo, appKey: creds.oppoAppKey, masterSecret: creds.oppoMasterSecret)["code"] == 0)
            let unicast = try await SimulatorHTTP.form(oppo, "/server/v1/message/notification/unicast", [("auth_token", "x")])
            #expect(unicast.status == 502)
            #expect(unicast["code"] == -1)

            let amap = sims.simulator("amap-location")
            amap.setFault(.status(503))
            #expect(try await SimulatorHTTP.get(amap, "/v3/ip", [("key", creds.amapKey)])["status"] == "0")

            let faceid = sims.simulator("tencent-faceid")
            faceid.setFault(.status(503))
            let reply = try await SimulatorHTTP.send(faceid, .post, "/", headers: [("Content-Type", "application/json")], body: [])
            #expect(reply.status == 503)
            #expect(TencentFaceIDSimulatorTests.errorCode(reply) == "InternalError")

            faceid.reset()
            #expect(faceid.requests().isEmpty)
            let afterReset = try await SimulatorHTTP.send(faceid, .post, "/", headers: [("Content-Type", "application/json")], body: [])
            #expect(afterReset.status == 200)   // fault cleared; refused in Tencent style instead
            #expect(TencentFaceIDSimulatorTests.errorCode(afterReset) == "MissingParameter")
        }
    }

    @Test func delayFaultDelaysThenAnswers() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let amap = sims.simulator("amap-location")
            amap.setFault(.delay(.milliseconds(600)))
            let clock = ContinuousClock()
            let start = clock.now
            let reply = try await SimulatorHTTP.get(amap, "/v3/ip", [("key", creds.amapKey), ("ip", "114.247.50.2")])
            #expect(clock.now - start >= .milliseconds(600))
            #expect(reply["status"] == "1")
        }
    }

    @Test func recordingKeepsExactBytesAndOrder() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let huawei = sims.simulator("huawei-push")
            let token = try await HuaweiPushSimulatorTests.token(huawei, creds)
            let bodies = [#"{"message":{"token":["a"],"data":"x\u0000y"}}"#, #"{"message":{"topic":"t"}, "validate_only" : true}"#]
            for body in bodies {
                _ = try await HuaweiPushSimulatorTests.send(huawei, bearer: token, body: body)
            }
            #expect(huawei.requests().map(\.body) == bodies.map { Array($0.utf8) })
            let recorded = huawei.requests()
            #expect(recorded[0].time <= recorded[1].time)
            let tokenCall = try #require(huawei.tokenRequests().first)
            #expect(tokenCall.formParameter("client_secret") == creds.huaweiClientSecret)
            #expect(tokenCall.header("Content-Type") == "application/x-www-form-urlencoded")
        }
    }
}

@testable import BrokerTesting
import Testing

@Suite struct WeChatLoginSimulatorTests {
    static func exchange(_ sim: ProviderSimulator, _ creds: SimulatorCredentials, code: String,
                         secret: String? = nil, appid: String? = nil) async throws -> SimulatorReply {
        try await SimulatorHTTP.get(sim, "/sns/oauth2/access_token", [
            ("appid", appid ?? creds.wechatAppID), ("secret", secret ?? creds.wechatAppSecret), ("code", code),
            ("grant_type", "authorization_code"),
        ])
    }

    @Test func codeExchangeRefreshAndUserinfoSucceed() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("wechat-login")
            let grant = try await Self.exchange(sim, creds, code: "code-1")
            #expect(grant.status == 200)
            #expect(grant["errcode"] == nil)
            #expect(grant["expires_in"] == 7200)
            #expect(grant["scope"] == "snsapi_login")
            let openid = try #require(grant["openid"]?.stringValue)
            #expect(openid.hasPrefix("o") && openid.count == 28)
            let accessToken = try #require(grant["access_token"]?.stringValue)
            let refreshToken = try #require(grant["refresh_token"]?.stringValue)

            let info = try await SimulatorHTTP.get(sim, "/sns/userinfo", [("access_token", accessToken), ("openid", openid), ("lang", "zh_CN")])
            #expect(info["openid"] == .string(openid))
            #expect(info["country"] == "CN")
            #expect(info["privilege"] == [])
            #expect(info["unionid"] == grant["unionid"])

            let refreshed = try await SimulatorHTTP.get(sim, "/sns/oauth2/refresh_token", [
                ("appid", creds.wechatAppID), ("grant_type", "refresh_token"), ("refresh_token", refreshToken),
            ])
            #expect(refreshed["openid"] == .string(openid))
            let newToken = try #require(refreshed["access_token"]?.stringValue)
            #expect(newToken != accessToken)
            #expect(try await SimulatorHTTP.get(sim, "/sns/userinfo", [("access_token", newToken), ("openid", openid)])["errcode"] == nil)

            // Every call is an API call of the adapter, recorded with its raw query.
            let recorded = sim.requests()
            #expect(recorded.count == 4)
            #expect(recorded[0].queryParameter("secret") == creds.wechatAppSecret)
            #expect(recorded[0].queryParameter("code") == "code-1")
            #expect(sim.tokenRequests().isEmpty)
        }
    }

    @Test func reusedCodeIsRefusedWith40163() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("wechat-login")
            #expect(try await Self.exchange(sim, creds, code: "once")["access_token"] != nil)
            let reused = try await Self.exchange(sim, creds, code: "once")
            #expect(reused.status == 200)
            #expect(reused["errcode"] == 40163)
            #expect(reused["access_token"] == nil)
        }
    }

    @Test func wrongCredentialsAndTokensAreRefused() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("wechat-login")
            #expect(try await Self.exchange(sim, creds, code: "a", secret: "wrong")["errcode"] == 40125)
            #expect(try await Self.exchange(sim, creds, code: "b", appid: "wx0")["errcode"] == 40013)
            #expect(try await Self.exchange(sim, creds, code: "")["errcode"] == 41008)
            let grant = try await Self.exchange(sim, creds, code: "c")
            let token = try #require(grant["access_token"]?.stringValue)
            let openid = try #require(grant["openid"]?.stringValue)
            #expect(try await SimulatorHTTP.get(sim, "/sns/userinfo", [("access_token", "forged"), ("openid", openid)])["errcode"] == 40001)
            #expect(try await SimulatorHTTP.get(sim, "/sns/userinfo", [("access_token", token), ("openid", "oOther")])["errcode"] == 40003)
            #expect(try await SimulatorHTTP.get(sim, "/sns/oauth2/refresh_token", [
                ("appid", creds.wechatAppID), ("grant_type", "refresh_token"), ("refresh_token", "forged"),
            ])["errcode"] == 40030)
            sim.expireIssuedTokens()
            #expect(try await SimulatorHTTP.get(sim, "/sns/userinfo", [("access_token", token), ("openid", openid)])["errcode"] == 42001)
        }
    }
}

import BrokerCore
import BrokerCurl
import Crypto
import Foundation
import Testing
@testable import BrokerCredentials

/// OPPO-style (form, sha256) and vivo-style (JSON, md5) signed token calls against
/// a loopback endpoint that checks the signature.
@Suite("signed_token_request")
struct SignedTokenRequestTests {
    static let oppoValues = ["OPPO_APP_KEY": "ak-123", "OPPO_MASTER_SECRET": "m@ster secret/42"]
    static let vivoValues = ["VIVO_APP_ID": "10004", "VIVO_APP_KEY": "vk-9", "VIVO_APP_SECRET": "vivo-s3cret"]

    static func oppoSpec(port: Int, inject: [String: CredentialSpec.Value] = ["form_field": .text("auth_token")],
                         tokenPath: String = "data.auth_token") -> CredentialSpec {
        CredentialSpec(kind: .signedTokenRequest, parameters: [
            "token_url": .text("http://127.0.0.1:\(port)/auth"),
            "request_body": .text("form"),
            "secrets": .table(["app_key": .secret(.env("OPPO_APP_KEY")), "master_secret": .secret(.env("OPPO_MASTER_SECRET"))]),
            "sign": .table(["algorithm": .text("sha256_hex"), "of": .list(["app_key", "timestamp", "master_secret"])]),
            "params": .list(["app_key", "timestamp", "sign"]),
            "token_path": .text(tokenPath),
            "lifetime_seconds": .number(86400),
            "inject": .table(inject),
        ])
    }

    static func vivoSpec(port: Int) -> CredentialSpec {
        CredentialSpec(kind: .signedTokenRequest, parameters: [
            "token_url": .text("http://127.0.0.1:\(port)/auth"),
            "request_body": .text("json"),
            "secrets": .table(["appId": .secret(.env("VIVO_APP_ID")), "appKey": .secret(.env("VIVO_APP_KEY")),
                               "appSecret": .secret(.env("VIVO_APP_SECRET"))]),
            "sign": .table(["algorithm": .text("md5_hex"), "of": .list(["appId", "appKey", "timestamp", "appSecret"])]),
            "params": .list(["appId", "appKey", "timestamp", "sign"]),
            "token_path": .text("authToken"),
            "lifetime_seconds": .number(86400),
            "inject": .table(["header": .text("authToken")]),
        ])
    }

    /// The provider's check: sign == sha256(app_key + timestamp + master_secret), timestamp in ms near `clock`.
    static func oppoVerifier(_ clock: TestClock) -> @Sendable ([String: String]) -> Bool {
        { params in
            guard let appKey = params["app_key"], let timestamp = params["timestamp"], let sign = params["sign"],
                  let ms = Int64(timestamp) else { return false }
            let expectedMs = Int64(clock.now.timeIntervalSince1970 * 1000)
            guard timestamp.count == 13, abs(ms - expectedMs) < 600_000 else { return false }
            return sign == hex(SHA256.hash(data: Data((appKey + timestamp + oppoValues["OPPO_MASTER_SECRET"]!).utf8)))
        }
    }

    @Test("form + sha256: signed call verified by the endpoint; token injected into an existing form body")
    func formSHA256IntoExistingBody() async throws {
        try await withProviderServer { port, state in
            let clock = TestClock()
            await state.setVerifyAuth(Self.oppoVerifier(clock))
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.oppoSpec(port: port), secrets: secrets(Self.oppoValues),
                                                  client: client, now: clock.function, logger: testLogger())
            let message = "message=" + "%7B%22target_type%22%3A2%7D"
            var request = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo",
                                          headers: [HTTPHeaderLine("Content-Type", "application/x-www-form-urlencoded")],
                                          body: Array(message.utf8), bodyFormat: .form)
            try await injector.authorize(&request, credentialFields: [field(.body, "auth_token")])
            #expect(String(decoding: request.body, as: UTF8.self) == message + "&auth_token=at-1")
            _ = try await client.send(request.upstreamRequest())

            let auth = try #require(await state.authRequests.first)
            #expect(auth.header("Content-Type") == "application/x-www-form-urlencoded")
            #expect(decodeForm(auth.bodyText).map(\.0) == ["app_key", "timestamp", "sign"])
            let echoed = try #require(await state.echoed.first)
            #expect(decodeForm(echoed.bodyText).map(\.0) == ["message", "auth_token"])
            #expect(decodeForm(echoed.bodyText).last?.1 == "at-1")

            // Cached for 90% of lifetime_seconds.
            clock.advance(86400 * 0.9 - 1)
            var again = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo", bodyFormat: .form)
            try await injector.authorize(&again, credentialFields: [])
            #expect(String(decoding: again.body, as: UTF8.self) == "auth_token=at-1")
            clock.advance(2)
            again = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo", bodyFormat: .form)
            try await injector.authorize(&again, credentialFields: [])
            #expect(String(decoding: again.body, as: UTF8.self) == "auth_token=at-2")
            #expect(await state.authRequests.count == 2)
            await client.shutdown()
        }
    }

    @Test("form_field into an empty body sets the body and a form Content-Type")
    func formFieldIntoEmptyBody() async throws {
        try await withProviderServer { port, state in
            let clock = TestClock()
            await state.setVerifyAuth(Self.oppoVerifier(clock))
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.oppoSpec(port: port), secrets: secrets(Self.oppoValues),
                                                  client: client, now: clock.function, logger: testLogger())
            var request = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo", bodyFormat: .none)
            try await injector.authorize(&request, credentialFields: [])
            #expect(String(decoding: request.body, as: UTF8.self) == "auth_token=at-1")
            #expect(request.headerValue("Content-Type") == "application/x-www-form-urlencoded")
            _ = try await client.send(request.upstreamRequest())
            let echoed = try #require(await state.echoed.first)
            #expect(echoed.bodyText == "auth_token=at-1")

            // A JSON body cannot carry a form field.
            var json = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo",
                                       body: Array("{}".utf8), bodyFormat: .json)
            await expectCredentialError(.misconfigured, secretValues: Array(Self.oppoValues.values) + ["at-1"]) {
                try await injector.authorize(&json, credentialFields: [])
            }
            await client.shutdown()
        }
    }

    @Test("a wrong signature (provider answers code 11, no token) is credential_unavailable without secrets")
    func rejectedSignature() async throws {
        try await withProviderServer { port, state in
            await state.setVerifyAuth { _ in false }
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.oppoSpec(port: port), secrets: secrets(Self.oppoValues),
                                                  client: client, logger: testLogger())
            let error = await expectCredentialError(.unavailable, secretValues: Array(Self.oppoValues.values)) {
                var request = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo", bodyFormat: .form)
                try await injector.authorize(&request, credentialFields: [])
            }
            #expect(error?.message.contains("data.auth_token") == true)
            await client.shutdown()
        }
    }

    @Test("JSON + md5: signed call verified; token read at a top-level path and sent as a header")
    func jsonMD5Header() async throws {
        try await withProviderServer { port, state in
            let clock = TestClock()
            await state.setVerifyAuth { params in
                guard let appID = params["appId"], let appKey = params["appKey"], let timestamp = params["timestamp"],
                      let sign = params["sign"] else { return false }
                let expectedMs = Int64(clock.now.timeIntervalSince1970 * 1000)
                guard Int64(timestamp) == expectedMs else { return false }
                let md5 = Insecure.MD5.hash(data: Data((appID + appKey + timestamp + Self.vivoValues["VIVO_APP_SECRET"]!).utf8))
                return sign == hex(md5)
            }
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.vivoSpec(port: port), secrets: secrets(Self.vivoValues),
                                                  client: client, now: clock.function, logger: testLogger())
            var request = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo",
                                          headers: [HTTPHeaderLine("Content-Type", "application/json")],
                                          body: Array(#"{"regId":"r"}"#.utf8), bodyFormat: .json)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("authToken") == "at-1")
            _ = try await client.send(request.upstreamRequest())
            let auth = try #require(await state.authRequests.first)
            #expect(auth.header("Content-Type") == "application/json")
            #expect(auth.bodyText.hasPrefix(#"{"appId":"10004","appKey":"vk-9","timestamp":"#))
            let echoed = try #require(await state.echoed.first)
            #expect(echoed.header("authToken") == "at-1")
            #expect(echoed.bodyText == #"{"regId":"r"}"#)
            await client.shutdown()
        }
    }

    @Test("query injection of a signed token")
    func queryInjection() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.oppoSpec(port: port, inject: ["query": .text("auth_token")]),
                                                  secrets: secrets(Self.oppoValues), client: client, logger: testLogger())
            var request = OutboundRequest(method: "GET", upstream: loopback(port), path: "/echo", query: "a=1")
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.query == "a=1&auth_token=at-1")
            await client.shutdown()
        }
    }

    @Test("the signed request body is exactly the declared params in order")
    func requestBodyShape() throws {
        let endpoint = try TokenEndpoint(url: "http://127.0.0.1:9/auth", client: NoNetworkClient(), credentialType: "signed_token_request")
        let call = SignedTokenRequest(endpoint: endpoint, bodyKind: .form,
                                      secrets: ["app_key": "ak-123", "master_secret": "m@ster secret/42"],
                                      algorithm: .sha256Hex, signOf: ["app_key", "timestamp", "master_secret"],
                                      params: ["app_key", "timestamp", "sign"], tokenPath: ["data", "auth_token"],
                                      lifetime: 86400, injection: .formField("auth_token"))
        let body = String(decoding: call.requestBody(timestampMilliseconds: 1_700_000_000_123), as: UTF8.self)
        let sign = hex(SHA256.hash(data: Data("ak-1231700000000123m@ster secret/42".utf8)))
        #expect(body == "app_key=ak-123&timestamp=1700000000123&sign=\(sign)")
    }
}

import BrokerCore
import BrokerCurl
import Foundation
import Testing
@testable import BrokerCredentials

/// `query`, `header`, `bearer`, and what `init` refuses.
@Suite("static credentials and configuration")
struct StaticCredentialTests {
    static let wechat = ["WECHAT_APP_ID": "wx1234", "WECHAT_APP_SECRET": "s3cr+t/&=é ?#"]

    static var wechatSpec: CredentialSpec {
        CredentialSpec(kind: .query, parameters: ["params": .table([
            "appid": .secret(.env("WECHAT_APP_ID")), "secret": .secret(.env("WECHAT_APP_SECRET"))])])
    }

    @Test("query: only declared credential names are added, percent-encoded, and arrive intact")
    func queryInjection() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.wechatSpec, secrets: secrets(Self.wechat), client: client,
                                                  logger: testLogger())
            // access_token declares appid and secret (and a non-credential code).
            var exchange = OutboundRequest(method: "GET", upstream: loopback(port), path: "/echo",
                                           query: "code=abc&grant_type=authorization_code")
            try await injector.authorize(&exchange, credentialFields: [field(.query, "appid"), field(.query, "secret")])
            #expect(exchange.query == "code=abc&grant_type=authorization_code&appid=wx1234&secret=s3cr%2Bt%2F%26%3D%C3%A9%20%3F%23")
            _ = try await client.send(exchange.upstreamRequest())
            let seen = try #require(await state.echoed.first)
            let pairs = decodeForm(seen.query)
            #expect(pairs.map(\.0) == ["code", "grant_type", "appid", "secret"])
            #expect(pairs.last?.1 == Self.wechat["WECHAT_APP_SECRET"])

            // refresh_token declares only appid: the secret is not added.
            var refresh = OutboundRequest(method: "GET", upstream: loopback(port), path: "/echo", query: "grant_type=refresh_token")
            try await injector.authorize(&refresh, credentialFields: [field(.query, "appid")])
            #expect(refresh.query == "grant_type=refresh_token&appid=wx1234")

            // userinfo declares none: nothing is added.
            var userinfo = OutboundRequest(method: "GET", upstream: loopback(port), path: "/echo", query: "openid=o1")
            try await injector.authorize(&userinfo, credentialFields: [])
            #expect(userinfo.query == "openid=o1")

            // A credential field in another location, or a param the adapter has no value for, is skipped.
            var other = OutboundRequest(method: "GET", upstream: loopback(port), path: "/echo")
            try await injector.authorize(&other, credentialFields: [field(.body, "secret"), field(.query, "sig"),
                                                                    field(.query, "appid"), field(.query, "appid")])
            #expect(other.query == "appid=wx1234")
            await client.shutdown()
        }
    }

    @Test("header with prefix and bearer arrive as headers, replacing a caller's line")
    func headerAndBearer() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let header = try CredentialInjector(
                spec: CredentialSpec(kind: .header, parameters: ["header": .text("Authorization"), "prefix": .text("key="),
                                                                 "secret": .secret(.env("MI_SECRET"))]),
                secrets: secrets(["MI_SECRET": "mi-secret"]), client: client, logger: testLogger())
            var request = OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo",
                                          headers: [HTTPHeaderLine("authorization", "caller-value")],
                                          body: Array("a=1".utf8), bodyFormat: .form)
            try await header.authorize(&request, credentialFields: [])
            #expect(request.headers.filter { $0.name.lowercased() == "authorization" }.map(\.value) == ["key=mi-secret"])
            _ = try await client.send(request.upstreamRequest())

            let bearer = try CredentialInjector(spec: CredentialSpec(kind: .bearer, parameters: ["token": .secret(.file("/run/t"))]),
                                                secrets: [.file("/run/t"): "static-token"], client: client, logger: testLogger())
            var second = OutboundRequest(method: "GET", upstream: loopback(port), path: "/echo")
            try await bearer.authorize(&second, credentialFields: [])
            _ = try await client.send(second.upstreamRequest())

            let echoed = await state.echoed
            #expect(echoed.count == 2)
            #expect(echoed.first?.header("Authorization") == "key=mi-secret")
            #expect(echoed.last?.header("Authorization") == "Bearer static-token")
            await client.shutdown()
        }
    }

    @Test("init refuses missing secrets and unsupported types, naming no secret value")
    func initErrors() async throws {
        let client = NoNetworkClient()
        let all = Array(Self.wechat.values)
        let missing = await expectCredentialError(.misconfigured, secretValues: all) {
            _ = try CredentialInjector(spec: Self.wechatSpec, secrets: secrets(["WECHAT_APP_ID": "wx1234"]),
                                       client: client, logger: testLogger())
        }
        #expect(missing?.message.contains("WECHAT_APP_SECRET") == true)
        for kind in [CredentialSpec.Kind.acs3HMACSHA256, .oauth2JWTBearer, .md5QuerySig] {
            let error = await expectCredentialError(.misconfigured, secretValues: []) {
                _ = try CredentialInjector(spec: CredentialSpec(kind: kind), secrets: [:], client: client, logger: testLogger())
            }
            #expect(error?.message.hasPrefix("credential type \(kind.rawValue): parameter ") == true, "\(error?.message ?? "")")
        }
        await expectCredentialError(.misconfigured, secretValues: ["bad\r\nX-Evil: 1"]) {
            _ = try CredentialInjector(spec: CredentialSpec(kind: .bearer, parameters: ["token": .secret(.env("T"))]),
                                       secrets: secrets(["T": "bad\r\nX-Evil: 1"]), client: client, logger: testLogger())
        }
        await expectCredentialError(.misconfigured, secretValues: []) {
            _ = try CredentialInjector(spec: CredentialSpec(kind: .tc3HMACSHA256, parameters: [
                "secret_id": .secret(.env("ID")), "secret_key": .secret(.env("KEY")), "service": .text("faceid")]),
                secrets: secrets(["ID": "i", "KEY": "k"]), client: client, logger: testLogger())
        }
        // `none` adds nothing.
        let none = try CredentialInjector(spec: CredentialSpec(kind: .none), secrets: [:], client: client, logger: testLogger())
        var request = OutboundRequest(method: "GET", upstream: UpstreamURL("https://example.com")!, path: "/x")
        try await none.authorize(&request, credentialFields: [])
        #expect(request.headers.isEmpty && request.query.isEmpty)
    }

    @Test("url and Host: default ports are omitted, others kept")
    func urlAndHost() {
        let https = OutboundRequest(method: "GET", upstream: UpstreamURL("https://api.example.com:443/base")!,
                                    path: "/base/v1", query: "a=1")
        #expect(https.url == "https://api.example.com/base/v1?a=1")
        #expect(https.hostHeader == "api.example.com")
        let custom = OutboundRequest(method: "POST", upstream: UpstreamURL("http://127.0.0.1:8080")!, path: "/")
        #expect(custom.url == "http://127.0.0.1:8080/")
        #expect(custom.hostHeader == "127.0.0.1:8080")
        #expect(custom.upstreamRequest().url == custom.url)
    }
}

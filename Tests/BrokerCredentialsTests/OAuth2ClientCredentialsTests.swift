import BrokerCore
import BrokerCurl
import Foundation
import Testing
@testable import BrokerCredentials

/// Huawei-style client-credentials grant against a real loopback token endpoint.
@Suite("oauth2_client_credentials")
struct OAuth2ClientCredentialsTests {
    static let clientSecret = "cl13nt/s3cr3t+&="
    static let values = ["HW_CLIENT_ID": "app-1234", "HW_CLIENT_SECRET": clientSecret]

    static func spec(port: Int, refreshBefore: Int? = nil) -> CredentialSpec {
        var parameters: [String: CredentialSpec.Value] = [
            "token_url": .text("http://127.0.0.1:\(port)/oauth/token"),
            "client_id": .secret(.env("HW_CLIENT_ID")),
            "client_secret": .secret(.env("HW_CLIENT_SECRET")),
        ]
        if let refreshBefore { parameters["refresh_before_seconds"] = .number(refreshBefore) }
        return CredentialSpec(kind: .oauth2ClientCredentials, parameters: parameters)
    }

    static func request(_ port: Int) -> OutboundRequest {
        OutboundRequest(method: "POST", upstream: loopback(port), path: "/echo",
                        headers: [HTTPHeaderLine("Content-Type", "application/json")],
                        body: Array(#"{"message":{"token":["t"]}}"#.utf8), bodyFormat: .json)
    }

    @Test("the token is fetched once, sent as Bearer, and reused")
    func fetchedOnceAndReused() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let clock = TestClock()
            let injector = try CredentialInjector(spec: Self.spec(port: port), secrets: secrets(Self.values),
                                                  client: client, now: clock.function, logger: testLogger())
            for _ in 0..<3 {
                var request = Self.request(port)
                try await injector.authorize(&request, credentialFields: [])
                #expect(request.headerValue("authorization") == "Bearer tok-1")
                let response = try await client.send(request.upstreamRequest())
                #expect(response.status == 200)
                clock.advance(60)
            }
            let tokenCalls = await state.tokenRequests
            #expect(tokenCalls.count == 1)
            let call = try #require(tokenCalls.first)
            #expect(call.method == "POST")
            #expect(call.header("Content-Type") == "application/x-www-form-urlencoded")
            let form = decodeForm(call.bodyText)
            #expect(form.map(\.0) == ["grant_type", "client_id", "client_secret"])
            #expect(form.map(\.1) == ["client_credentials", "app-1234", Self.clientSecret])
            let echoed = await state.echoed
            #expect(echoed.count == 3)
            #expect(echoed.allSatisfy { $0.header("Authorization") == "Bearer tok-1" })
            await client.shutdown()
        }
    }

    @Test("refreshed when less than refresh_before_seconds remain, and never later than half the lifetime")
    func refreshNearExpiry() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let clock = TestClock()
            let injector = try CredentialInjector(spec: Self.spec(port: port, refreshBefore: 300), secrets: secrets(Self.values),
                                                  client: client, now: clock.function, logger: testLogger())
            var request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-1")
            clock.advance(3299)                     // 301 s left: still fresh
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-1")
            clock.advance(2)                        // 299 s left: refresh
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-2")
            #expect(await state.tokenRequests.count == 2)

            // A 400 s token with refresh_before 300: refreshed after 200 s (half), not 100 s.
            await state.configure(expiresIn: 400)
            await injector.invalidate()
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-3")
            clock.advance(199)
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-3")
            clock.advance(2)
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-4")
            await client.shutdown()
        }
    }

    @Test("50 concurrent requests during a refresh cause exactly one token request")
    func singleFlight() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let clock = TestClock()
            let injector = try CredentialInjector(spec: Self.spec(port: port), secrets: secrets(Self.values),
                                                  client: client, now: clock.function, logger: testLogger())
            var first = Self.request(port)
            try await injector.authorize(&first, credentialFields: [])
            #expect(await state.tokenRequests.count == 1)

            clock.advance(3500)                     // due for refresh
            await state.configure(delay: .milliseconds(300))
            let tokens = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        var request = Self.request(port)
                        try await injector.authorize(&request, credentialFields: [])
                        return request.headerValue("Authorization")
                    }
                }
                var all: [String?] = []
                for try await token in group { all.append(token) }
                return all
            }
            #expect(tokens.count == 50)
            #expect(Set(tokens) == ["Bearer tok-2"])
            #expect(await state.tokenRequests.count == 2)
            await client.shutdown()
        }
    }

    @Test("a failing token endpoint gives credential_unavailable, then the next call recovers")
    func failureThenRecovery() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.spec(port: port), secrets: secrets(Self.values),
                                                  client: client, logger: testLogger())
            await state.configure(mode: .fail)
            let error = await expectCredentialError(.unavailable, secretValues: Array(Self.values.values)) {
                var request = Self.request(port)
                try await injector.authorize(&request, credentialFields: [])
            }
            #expect(error?.message.contains("HTTP 500") == true)
            #expect(error?.message.contains("127.0.0.1") == true)

            await state.configure(mode: .ok)
            var request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-1")
            #expect(await state.tokenRequests.count == 2)
            await client.shutdown()
        }
    }

    @Test("an unreachable token endpoint gives credential_unavailable without secrets")
    func unreachable() async throws {
        let client = try makeClient()
        // Port 1 on loopback: connection refused.
        let injector = try CredentialInjector(spec: Self.spec(port: 1), secrets: secrets(Self.values),
                                              client: client, logger: testLogger())
        let error = await expectCredentialError(.unavailable, secretValues: Array(Self.values.values)) {
            var request = Self.request(1)
            try await injector.authorize(&request, credentialFields: [])
        }
        #expect(error?.message.contains("upstream_unreachable") == true)
        await client.shutdown()
    }

    @Test("invalidate() forces a new token")
    func invalidateForcesNewToken() async throws {
        try await withProviderServer { port, state in
            let client = try makeClient()
            let injector = try CredentialInjector(spec: Self.spec(port: port), secrets: secrets(Self.values),
                                                  client: client, logger: testLogger())
            var request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-1")
            await injector.invalidate()
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-2")
            request = Self.request(port)
            try await injector.authorize(&request, credentialFields: [])
            #expect(request.headerValue("Authorization") == "Bearer tok-2")
            #expect(await state.tokenRequests.count == 2)
            await client.shutdown()
        }
    }
}

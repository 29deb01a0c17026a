import BrokerCurl
import BrokerGateway
@preconcurrency import Crypto
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

/// Issue 23 §6: a key the identity provider removes from its JWKS stops being trusted within the
/// key set's maximum age, fetched from a real HTTP server by the broker's own curl client.
@Suite(.serialized) struct JWKSMaxAgeTests {
    /// A JWKS endpoint on 127.0.0.1: `document` is what it serves now, `cacheControl` its header.
    final class JWKSServer: Sendable {
        let document: NIOLockedValueBox<String>
        let cacheControl: NIOLockedValueBox<String?>
        let fetches: NIOLockedValueBox<Int>
        let port: Int
        private let group: ServiceGroup
        private let task: Task<Void, any Error>

        private init(document: NIOLockedValueBox<String>, cacheControl: NIOLockedValueBox<String?>, fetches: NIOLockedValueBox<Int>,
                     port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
            self.document = document; self.cacheControl = cacheControl; self.fetches = fetches
            self.port = port; self.group = group; self.task = task
        }

        var url: String { "http://127.0.0.1:\(port)/jwks.json" }

        static func start(_ text: String) async throws -> JWKSServer {
            let document = NIOLockedValueBox(text), cacheControl = NIOLockedValueBox<String?>(nil), fetches = NIOLockedValueBox(0)
            let router = Router()
            router.get("/jwks.json") { _, _ -> Response in
                fetches.withLockedValue { $0 += 1 }
                var headers = HTTPFields()
                headers[.contentType] = "application/json"
                if let value = cacheControl.withLockedValue({ $0 }) { headers[.cacheControl] = value }
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: document.withLockedValue { $0 })))
            }
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            var logger = Logger(label: "jwks-server")
            logger.logLevel = .critical
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { channel in
                                      if let port = channel.localAddress?.port { continuation.yield(port) }
                                      continuation.finish()
                                  }, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            let task = Task { defer { continuation.finish() }; try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                task.cancel()
                throw CocoaError(.fileReadUnknown)
            }
            return JWKSServer(document: document, cacheControl: cacheControl, fetches: fetches, port: port, group: group, task: task)
        }

        func stop() async {
            await group.triggerGracefulShutdown()
            _ = await task.result
        }
    }

    static func jwks(_ keys: [(kid: String, key: P256.Signing.PrivateKey)]) -> String {
        let list = keys.map { kid, key in
            let point = key.publicKey.x963Representation
            return #"{"kty":"EC","kid":"\#(kid)","crv":"P-256","x":"\#(IdentityProviderTokenTests.b64(point[1...32]))","y":"\#(IdentityProviderTokenTests.b64(point[33...64]))"}"#
        }
        return #"{"keys":["# + list.joined(separator: ",") + "]}"
    }

    static func token(kid: String, key: P256.Signing.PrivateKey) throws -> String {
        try IdentityProviderTokenTests.Provider().token(alg: "ES256", kid: kid) { data in try key.signature(for: data).rawRepresentation }
    }

    func withJWKS(_ body: (JWKSServer, CurlUpstreamClient, P256.Signing.PrivateKey, P256.Signing.PrivateKey) async throws -> Void)
        async throws {
        let (r1, r2) = (P256.Signing.PrivateKey(), P256.Signing.PrivateKey())
        let server = try await JWKSServer.start(Self.jwks([("r1", r1), ("r2", r2)]))
        var logger = Logger(label: "jwks-test")
        logger.logLevel = .critical
        let client = try CurlUpstreamClient(options: CurlClientOptions(totalTimeout: .seconds(5)), logger: logger)
        do { try await body(server, client, r1, r2) } catch {
            await client.shutdown(); await server.stop(); throw error
        }
        await client.shutdown()
        await server.stop()
    }

    @Test func aRemovedKeyStopsBeingTrustedAfterTheMaxAge() async throws {
        try await withJWKS { server, client, r1, r2 in
            let keys = IdentityProviderKeys.fetching(server.url, with: client, refreshFloor: 1, maxAge: 60)
            let verifier = UserTokenVerifier(secret: nil, issuer: "https://idp.test", audience: "sharebroker",
                                             algorithms: ["ES256"], jwks: keys)
            let start = Date()
            let old = try Self.token(kid: "r1", key: r1), new = try Self.token(kid: "r2", key: r2)
            #expect(await verifier.subject(of: old, now: start) == .success("u-idp"))
            // The provider drops r1 (a leaked key); tokens naming known kids do not force a reload.
            server.document.withLockedValue { $0 = Self.jwks([("r2", r2)]) }
            #expect(await verifier.subject(of: old, now: start.addingTimeInterval(35)) == .success("u-idp"), "within the max age")
            #expect(server.fetches.withLockedValue { $0 } == 1)
            // Past the max age the set is fetched again: r1 is gone, r2 still verifies.
            #expect(await verifier.subject(of: old, now: start.addingTimeInterval(61)) == .failure(.signature))
            #expect(await verifier.subject(of: new, now: start.addingTimeInterval(62)) == .success("u-idp"))
            #expect(server.fetches.withLockedValue { $0 } == 2)
        }
    }

    @Test func aLowerCacheControlMaxAgeWinsAndAStaleSetThatCannotReloadIsNotUsed() async throws {
        try await withJWKS { server, client, r1, r2 in
            server.cacheControl.withLockedValue { $0 = "public, max-age=10" }
            let keys = IdentityProviderKeys.fetching(server.url, with: client, refreshFloor: 1, maxAge: 300)
            let verifier = UserTokenVerifier(secret: nil, issuer: "https://idp.test", audience: "sharebroker",
                                             algorithms: ["ES256"], jwks: keys)
            let start = Date()
            let old = try Self.token(kid: "r1", key: r1)
            #expect(await verifier.subject(of: old, now: start) == .success("u-idp"))
            server.document.withLockedValue { $0 = Self.jwks([("r2", r2)]) }
            #expect(await verifier.subject(of: old, now: start.addingTimeInterval(11)) == .failure(.signature),
                    "Cache-Control: max-age=10 is lower than the configured 300 s")
            // The provider is down past the set's age: nothing is trusted (fail closed), not the old set.
            server.document.withLockedValue { $0 = Self.jwks([("r1", r1), ("r2", r2)]) }
            #expect(await verifier.subject(of: old, now: start.addingTimeInterval(12)) == .success("u-idp"))
            await server.stop()
            #expect(await verifier.subject(of: old, now: start.addingTimeInterval(30)) == .failure(.signature))
        }
    }

    /// Concurrent tokens at the moment the set ages out share one fetch and all verify.
    @Test func tokensArrivingTogetherShareOneReload() async throws {
        try await withJWKS { server, client, r1, _ in
            let keys = IdentityProviderKeys.fetching(server.url, with: client, refreshFloor: 1, maxAge: 5)
            let verifier = UserTokenVerifier(secret: nil, issuer: "https://idp.test", audience: "sharebroker",
                                             algorithms: ["ES256"], jwks: keys)
            let token = try Self.token(kid: "r1", key: r1)
            let later = Date().addingTimeInterval(6)
            #expect(await verifier.subject(of: token, now: Date()) == .success("u-idp"))
            let results = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 { group.addTask { await verifier.subject(of: token, now: later) == .success("u-idp") } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.allSatisfy { $0 }, "\(results)")
            #expect(server.fetches.withLockedValue { $0 } == 2)
        }
    }

    @Test func cacheControlIsRead() {
        #expect(IdentityProviderKeys.maxAge(cacheControl: ["public, max-age=120"]) == 120)
        #expect(IdentityProviderKeys.maxAge(cacheControl: ["max-age=600", "max-age=60"]) == 60)
        #expect(IdentityProviderKeys.maxAge(cacheControl: ["no-store"]) == 0)
        #expect(IdentityProviderKeys.maxAge(cacheControl: ["max-age=-5", "max-age=1e9"]) == nil)
        #expect(IdentityProviderKeys.maxAge(cacheControl: []) == nil)
    }
}

import BrokerCore
import Crypto
import Foundation
import Testing
@testable import BrokerCredentials

/// APNs-style provider JWT (ES256, kid, iss, iat), minted locally and cached.
@Suite("jwt_es256")
struct ES256TokenTests {
    static func decodeBase64URL(_ text: Substring) -> Data? {
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        return Data(base64Encoded: base)
    }

    @Test("a verifiable ES256 JWT with kid and iss/iat, reused for 50 minutes")
    func mintsAndCaches() async throws {
        let key = P256.Signing.PrivateKey()
        let clock = TestClock()
        let spec = CredentialSpec(kind: .jwtES256, parameters: [
            "key_id": .text("ABC123DEFG"), "team_id": .secret(.env("TEAM")), "private_key": .secret(.file("/keys/apns.p8"))])
        let injector = try CredentialInjector(spec: spec, secrets: [.env("TEAM"): "TEAM123456", .file("/keys/apns.p8"): key.pemRepresentation],
                                              client: NoNetworkClient(), now: clock.function, logger: testLogger())
        var request = OutboundRequest(method: "POST", upstream: UpstreamURL("https://api.push.apple.com")!, path: "/3/device/abc")
        try await injector.authorize(&request, credentialFields: [])
        let authorization = try #require(request.headerValue("Authorization"))
        #expect(authorization.hasPrefix("bearer "))
        let jwt = authorization.dropFirst("bearer ".count)
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3)
        let header = try #require(Self.decodeBase64URL(parts[0]))
        let claims = try #require(Self.decodeBase64URL(parts[1]))
        #expect(String(decoding: header, as: UTF8.self) == #"{"alg":"ES256","kid":"ABC123DEFG"}"#)
        #expect(String(decoding: claims, as: UTF8.self) == #"{"iss":"TEAM123456","iat":1700000000}"#)
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: try #require(Self.decodeBase64URL(parts[2])))
        #expect(key.publicKey.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8)))

        clock.advance(49 * 60)
        var again = OutboundRequest(method: "POST", upstream: UpstreamURL("https://api.push.apple.com")!, path: "/3/device/abc")
        try await injector.authorize(&again, credentialFields: [])
        #expect(again.headerValue("Authorization") == authorization)
        clock.advance(2 * 60)
        try await injector.authorize(&again, credentialFields: [])
        #expect(again.headerValue("Authorization") != authorization)
    }

    @Test("a private key that is not PEM P-256 is refused at init without echoing it")
    func badKey() async {
        let spec = CredentialSpec(kind: .jwtES256, parameters: [
            "key_id": .text("K"), "team_id": .text("T"), "private_key": .secret(.env("KEY"))])
        await expectCredentialError(.misconfigured, secretValues: ["not-a-key-0123"]) {
            _ = try CredentialInjector(spec: spec, secrets: secrets(["KEY": "not-a-key-0123"]), client: NoNetworkClient(),
                                       logger: testLogger())
        }
    }
}

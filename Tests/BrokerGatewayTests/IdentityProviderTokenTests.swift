import BrokerGateway
@preconcurrency import Crypto
import _CryptoExtras
import Foundation
import NIOConcurrencyHelpers
import Testing

/// Issue 13: end users' tokens from a real identity provider — RS256, ES256 and EdDSA with keys
/// from its JWKS, besides HS256 — and the attacks on them. Tokens are signed here with
/// swift-crypto straight from RFC 7515, independently of the verifier's jwt-kit.
@Suite struct IdentityProviderTokenTests {
    static func b64(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    struct Provider: @unchecked Sendable {
        let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        let ec = P256.Signing.PrivateKey()
        let ed = Curve25519.Signing.PrivateKey()
        let rotated = P256.Signing.PrivateKey()

        func jwks(withRotated: Bool = false) throws -> String {
            let primitives = try rsa.publicKey.getKeyPrimitives()
            let (n, e) = (primitives.modulus, primitives.publicExponent)
            let point = ec.publicKey.x963Representation
            var keys = [
                #"{"kty":"RSA","kid":"rsa-1","use":"sig","n":"\#(b64(n))","e":"\#(b64(e))"}"#,
                #"{"kty":"EC","kid":"ec-1","crv":"P-256","x":"\#(b64(point[1...32]))","y":"\#(b64(point[33...64]))"}"#,
                #"{"kty":"OKP","kid":"ed-1","crv":"Ed25519","x":"\#(b64(ed.publicKey.rawRepresentation))"}"#,
                // A symmetric key in a JWKS is never taken as one.
                #"{"kty":"oct","kid":"oct-1","k":"\#(b64(Data("shared".utf8)))"}"#,
            ]
            if withRotated {
                let p = rotated.publicKey.x963Representation
                keys.append(#"{"kty":"EC","kid":"ec-2","crv":"P-256","x":"\#(b64(p[1...32]))","y":"\#(b64(p[33...64]))"}"#)
            }
            return #"{"keys":["# + keys.joined(separator: ",") + "]}"
        }

        func token(alg: String, kid: String?, claims: [String: Any] = [:], sign: ((Data) throws -> Data)? = nil) throws -> String {
            var header: [String: Any] = ["alg": alg, "typ": "JWT"]
            if let kid { header["kid"] = kid }
            let now = Int(Date().timeIntervalSince1970)
            let body: [String: Any] = ["sub": "u-idp", "iss": "https://idp.test", "aud": "sharebroker", "iat": now, "exp": now + 600]
                .merging(claims) { _, new in new }
            let input = b64(try JSONSerialization.data(withJSONObject: header, options: .sortedKeys)) + "."
                + b64(try JSONSerialization.data(withJSONObject: body, options: .sortedKeys))
            let data = Data(input.utf8)
            let signature: Data
            if let sign { signature = try sign(data) } else {
                switch alg {
                case "RS256": signature = try rsa.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation
                case "ES256": signature = try ec.signature(for: data).rawRepresentation
                case "EdDSA": signature = try ed.signature(for: data)
                default: signature = Data()
                }
            }
            return input + "." + b64(signature)
        }
    }

    static func verifier(_ provider: Provider, algorithms: Set<String> = ["HS256", "RS256", "ES256", "EdDSA"],
                         loads: NIOLockedValueBox<Int> = NIOLockedValueBox(0), rotated: NIOLockedValueBox<Bool> = NIOLockedValueBox(false),
                         failing: NIOLockedValueBox<Bool> = NIOLockedValueBox(false), floor: TimeInterval = 30) -> UserTokenVerifier {
        let keys = IdentityProviderKeys(refreshFloor: floor) {
            loads.withLockedValue { $0 += 1 }
            if failing.withLockedValue({ $0 }) { throw CocoaError(.fileReadNoSuchFile) }
            return try provider.jwks(withRotated: rotated.withLockedValue { $0 })
        }
        return UserTokenVerifier(secret: Array("hs-secret".utf8), issuer: "https://idp.test", audience: "sharebroker",
                                 algorithms: algorithms, jwks: keys)
    }

    @Test func eachKeyTypeVerifies() async throws {
        let provider = Provider()
        let verifier = Self.verifier(provider)
        for (alg, kid) in [("RS256", "rsa-1"), ("ES256", "ec-1"), ("EdDSA", "ed-1")] {
            #expect(await verifier.subject(of: try provider.token(alg: alg, kid: kid), now: Date()) == .success("u-idp"), "\(alg)")
        }
    }

    @Test func theAttacksAreRefused() async throws {
        let provider = Provider()
        let verifier = Self.verifier(provider)
        let now = Date()
        // alg: none, with or without a signature.
        #expect(await verifier.subject(of: try provider.token(alg: "none", kid: "rsa-1"), now: now) != .success("u-idp"))
        #expect(await verifier.subject(of: try provider.token(alg: "none", kid: "rsa-1") { _ in Data("x".utf8) }, now: now)
                == .failure(.algorithm))
        // RS256's public key used as the HMAC secret of an HS256 token (algorithm confusion).
        let pem = Data(provider.rsa.publicKey.pemRepresentation.utf8)
        let confused = try provider.token(alg: "HS256", kid: "rsa-1") { data in
            Data(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: pem)))
        }
        #expect(await verifier.subject(of: confused, now: now) == .failure(.signature))
        #expect(await Self.verifier(provider, algorithms: ["RS256"]).subject(of: confused, now: now) == .failure(.algorithm))
        // A key's kid with another algorithm, a signature by another key, the JWKS's symmetric key.
        let ecSignedAsRSA = try provider.token(alg: "ES256", kid: "rsa-1")
        #expect(await verifier.subject(of: ecSignedAsRSA, now: now) == .failure(.signature))
        let wrongKey = try provider.token(alg: "ES256", kid: "ec-1") { data in try P256.Signing.PrivateKey().signature(for: data).rawRepresentation }
        #expect(await verifier.subject(of: wrongKey, now: now) == .failure(.signature))
        let symmetric = try provider.token(alg: "HS256", kid: "oct-1") { data in
            Data(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: Data("shared".utf8))))
        }
        #expect(await verifier.subject(of: symmetric, now: now) == .failure(.signature))
        // Unknown and injected kids; no kid on an asymmetric token.
        for kid in ["rsa-9", "../../../../etc/passwd", "rsa-1' OR '1'='1", ""] {
            #expect(await verifier.subject(of: try provider.token(alg: "RS256", kid: kid), now: now) == .failure(.signature), "\(kid)")
        }
        #expect(await verifier.subject(of: try provider.token(alg: "RS256", kid: nil), now: now) == .failure(.signature))
        // Claims.
        #expect(await verifier.subject(of: try provider.token(alg: "ES256", kid: "ec-1", claims: ["exp": 1_000]), now: now) == .failure(.expired))
        #expect(await verifier.subject(of: try provider.token(alg: "ES256", kid: "ec-1", claims: ["aud": "other"]), now: now) == .failure(.claims))
        #expect(await verifier.subject(of: try provider.token(alg: "ES256", kid: "ec-1", claims: ["iss": "https://evil.test"]), now: now)
                == .failure(.claims))
    }

    @Test func unknownKidsReloadTheJWKSAtMostOncePerFloorAndAFailingJWKSFailsClosed() async throws {
        let provider = Provider()
        let loads = NIOLockedValueBox(0), rotated = NIOLockedValueBox(false), failing = NIOLockedValueBox(true)
        let verifier = Self.verifier(provider, loads: loads, rotated: rotated, failing: failing, floor: 30)
        let start = Date()
        // The JWKS does not load: every asymmetric token is refused.
        #expect(await verifier.subject(of: try provider.token(alg: "RS256", kid: "rsa-1"), now: start) == .failure(.signature))
        failing.withLockedValue { $0 = false }
        #expect(await verifier.subject(of: try provider.token(alg: "RS256", kid: "rsa-1"), now: start.addingTimeInterval(1))
                == .failure(.signature), "within the floor: no reload yet")
        #expect(loads.withLockedValue { $0 } == 1)
        #expect(await verifier.subject(of: try provider.token(alg: "RS256", kid: "rsa-1"), now: start.addingTimeInterval(31)) == .success("u-idp"))
        #expect(loads.withLockedValue { $0 } == 2)
        // The provider rotates in a new key: its first token reloads the JWKS and verifies.
        rotated.withLockedValue { $0 = true }
        let fresh = try provider.token(alg: "ES256", kid: "ec-2") { data in try provider.rotated.signature(for: data).rawRepresentation }
        #expect(await verifier.subject(of: fresh, now: start.addingTimeInterval(62)) == .success("u-idp"))
        // Garbage kids cannot make it fetch the JWKS again and again.
        for n in 0..<5 {
            _ = await verifier.subject(of: try provider.token(alg: "RS256", kid: "junk-\(n)"), now: start.addingTimeInterval(63))
        }
        #expect(loads.withLockedValue { $0 } == 3)
    }
}

import BrokerFields
import BrokerPayload
import BrokerCredentials
import BrokerCurl
@preconcurrency import Crypto
import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// End users' JWTs (docs/http-api.md, docs/privacy-center.md): `sub` is their subject id, signed by the company's
/// identity provider: HS256 with a shared secret, or RS256, ES256 or EdDSA with keys from the
/// provider's JWKS (`users.jwt.jwks`), the signature checked by jwt-kit.
///
/// Before any signature work the token must be strict JSON (a claim sent twice is refused,
/// never read as either) and its `alg` one the configuration allows: `alg: none` never is. An
/// asymmetric token must name its key (`kid`), and its `alg` must be that key's algorithm, so
/// an RS256 key's public half can never serve as an HMAC secret (the classic confusion). An
/// unknown `kid` reloads the JWKS (at most every `refreshFloor`) and is refused if still
/// unknown; the key set is trusted for at most its maximum age (`users.jwt.jwks_max_age_s`);
/// a JWKS that does not load refuses every asymmetric token (fail closed). The claims
/// need `iss` and `aud` as configured, a numeric `exp` in the future (60 s leeway), `nbf` and
/// `iat` not in the future, and a non-empty `sub`.
public final class UserTokenVerifier: Sendable {
    public enum Failure: Error, Equatable { case malformed, algorithm, signature, claims, expired }

    let key: SymmetricKey?
    let issuer: String
    let audience: String
    let algorithms: Set<String>
    let identityProvider: IdentityProviderKeys?
    let leeway: TimeInterval = 60

    public init(secret: [UInt8]?, issuer: String, audience: String, algorithms: Set<String> = ["HS256"],
                jwks: IdentityProviderKeys? = nil) {
        self.key = secret.map { SymmetricKey(data: $0) }
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.identityProvider = jwks
    }

    public convenience init(secret: [UInt8], issuer: String, audience: String) {
        self.init(secret: Optional(secret), issuer: issuer, audience: audience)
    }

    /// True when `token` looks like a compact JWS (three Base64url parts), so it is judged as one.
    static func looksLikeJWT(_ token: String) -> Bool {
        token.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }

    /// The subject of a valid token.
    public func subject(of token: String, now: Date) async -> Result<String, Failure> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.base64url(parts[0]), let claimsData = Self.base64url(parts[1]),
              let signature = Self.base64url(parts[2]),
              // Strict JSON first: a claim sent twice (`"sub":"u-1","sub":"u-2"`) is refused, never resolved
              // to either value, and so is a number that cannot be kept exactly.
              Self.isStrictJSON(headerData), let strictClaims = Self.strictJSON(claimsData),
              let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any],
              let claims = (try? JSONSerialization.jsonObject(with: claimsData)) as? [String: Any]
        else { return .failure(.malformed) }
        guard let algorithm = header["alg"] as? String, algorithms.contains(algorithm), header["crit"] == nil,
              (header["typ"] as? String).map({ $0.uppercased() == "JWT" }) ?? true
        else { return .failure(.algorithm) }
        if algorithm == "HS256" {
            let signed = Data((parts[0] + "." + parts[1]).utf8)
            guard let key, HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) else {
                return .failure(.signature)
            }
        } else {
            guard let kid = header["kid"] as? String, !kid.isEmpty, let identityProvider,
                  let keys = await identityProvider.keys(kid: kid, algorithm: algorithm, now: now) else {
                return .failure(.signature)
            }
            do { _ = try await keys.verify(token, as: SignatureOnly.self) } catch { return .failure(.signature) }
        }
        guard claims["iss"] as? String == issuer else { return .failure(.claims) }
        let audiences = (claims["aud"] as? String).map { [$0] } ?? (claims["aud"] as? [String] ?? [])
        guard audiences.contains(audience) else { return .failure(.claims) }
        guard let subject = claims["sub"] as? String, !subject.isEmpty else { return .failure(.claims) }
        let time = now.timeIntervalSince1970
        guard let exp = Self.seconds("exp", in: strictClaims) else { return .failure(.claims) }
        guard Double(exp) + leeway > time else { return .failure(.expired) }
        for name in ["nbf", "iat"] where claims[name] != nil {
            guard let number = Self.seconds(name, in: strictClaims), Double(number) - leeway <= time else { return .failure(.claims) }
        }
        return .success(subject)
    }

    /// jwt-kit checks the signature only: the claims are checked above, on the strict parse.
    struct SignatureOnly: JWTPayload {
        init(from decoder: any Decoder) throws {}
        func encode(to encoder: any Encoder) throws {}
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A NumericDate as a whole number of seconds within years 1970–9999 (RFC 7519 allows
    /// fractions; nobody sends them, and `1e308` must not mean "never expires").
    static func seconds(_ claim: String, in claims: JSONBody) -> Int64? {
        let path = FieldPath(keys: claim)
        guard let field = claims.fields.first(where: { $0.path == path }), case .number(let text) = field.value,
              !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let seconds = Int64(text), seconds <= 253_402_300_799 else { return nil }
        return seconds
    }

    static func strictJSON(_ data: Data) -> JSONBody? {
        try? JSONBody(Array(data), limits: PayloadLimits(maxBytes: 16_384, maxDepth: 8))
    }

    static func isStrictJSON(_ data: Data) -> Bool { strictJSON(data) != nil }

    /// A token this verifier accepts (HS256 is symmetric): for the sandbox's demo user.
    public func mint(subject: String, expires: Date) -> String {
        func encode(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let header = encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let claims = encode(Data(("{\"aud\":" + JSONText.quoted(audience) + ",\"exp\":" + String(Int(expires.timeIntervalSince1970))
            + ",\"iss\":" + JSONText.quoted(issuer) + ",\"sub\":" + JSONText.quoted(subject) + "}").utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data((header + "." + claims).utf8), using: key ?? SymmetricKey(size: .bits256))   // no secret: a token nobody accepts
        return header + "." + claims + "." + encode(Data(mac))
    }

    static func base64url(_ text: Substring) -> Data? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 == 0x2d || $0 == 0x5f || ($0 >= 0x30 && $0 <= 0x39)
            || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// An identity provider's public keys (a JWKS, RFC 7517): loaded on first use, trusted for at
/// most `maxAge` (or the provider's lower `Cache-Control: max-age`), reloaded when a token names a
/// `kid` not in it or the set has aged out. Reloads are rate-limited to one per `refreshFloor` and
/// shared: tokens that arrive while one runs wait for it rather than starting their own.
///
/// A key the provider removes stops being trusted within `maxAge`, even if no token ever names an
/// unknown key. A key set past its age whose reload fails is not used (fail closed: asymmetric
/// tokens are refused until a reload succeeds, retried at most once per `refreshFloor`). Only RSA,
/// P-256 and Ed25519 keys are taken (never a symmetric one), each bound to its one algorithm (its
/// `alg`, else RS256, ES256 or EdDSA by key type).
public final class IdentityProviderKeys: Sendable {
    /// One fetch of the JWKS: its text, and how long its publisher lets it be kept (`Cache-Control`), if it says.
    public struct Document: Sendable {
        public var text: String
        public var maxAge: TimeInterval?
        public init(text: String, maxAge: TimeInterval? = nil) { self.text = text; self.maxAge = maxAge }
    }

    let load: @Sendable () async throws -> Document
    let refreshFloor: TimeInterval
    let maxAge: TimeInterval

    struct State: Sendable {
        var keys = JWTKeyCollection()
        var algorithms: [String: String] = [:]
        /// The loaded set is trusted before this time; nil until a load succeeds.
        var trustedUntil: Date?
        var lastAttempt: Date?
        var reloading: Task<Void, Never>?
    }
    private let state = NIOLockedValueBox(State())

    public init(refreshFloor: TimeInterval = 30, maxAge: TimeInterval = 300,
                loadDocument: @escaping @Sendable () async throws -> Document) {
        self.maxAge = max(1, maxAge)
        self.refreshFloor = min(refreshFloor, self.maxAge)
        self.load = loadDocument
    }

    /// A source that gives no cache lifetime (a file): `maxAge` alone bounds the set's age.
    public convenience init(refreshFloor: TimeInterval = 30, maxAge: TimeInterval = 300,
                            load: @escaping @Sendable () async throws -> String) {
        self.init(refreshFloor: refreshFloor, maxAge: maxAge) { Document(text: try await load()) }
    }

    /// The JWKS at `url`, fetched with `upstream` (the broker's own client, so its timeouts and
    /// size limits hold); a 200 only, its `Cache-Control: max-age` (or `no-store`/`no-cache`) kept.
    public static func fetching(_ url: String, with upstream: any UpstreamClient, refreshFloor: TimeInterval = 30,
                                maxAge: TimeInterval = 300) -> IdentityProviderKeys {
        IdentityProviderKeys(refreshFloor: refreshFloor, maxAge: maxAge) {
            let response = try await upstream.send(UpstreamRequest(method: "GET", url: url, headers: [HTTPHeaderLine("Accept", "application/json")]))
            guard response.status == 200 else { throw CocoaError(.fileReadUnknown) }
            let cacheControl = response.headers.filter { $0.name.lowercased() == "cache-control" }.map(\.value)
            return Document(text: String(decoding: response.body, as: UTF8.self), maxAge: Self.maxAge(cacheControl: cacheControl))
        }
    }

    /// The lowest `max-age` the `Cache-Control` values give (0 for `no-store` or `no-cache`), or nil.
    public static func maxAge(cacheControl values: [String]) -> TimeInterval? {
        var lowest: TimeInterval?
        for directive in values.flatMap({ $0.split(separator: ",") }) {
            let text = directive.trimmingCharacters(in: .whitespaces).lowercased()
            var seconds: TimeInterval?
            if text == "no-store" || text == "no-cache" { seconds = 0 }
            if text.hasPrefix("max-age=") {
                let digits = text.dropFirst("max-age=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if !digits.isEmpty, digits.count <= 10, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let value = Int(digits) {
                    seconds = TimeInterval(value)
                }
            }
            if let seconds { lowest = min(lowest ?? seconds, seconds) }
        }
        return lowest
    }

    /// The key collection holding `kid`, when `kid` is a key for `algorithm` and the set is not past its age.
    func keys(kid: String, algorithm: String, now: Date) async -> JWTKeyCollection? {
        let running = state.withLockedValue { state -> Task<Void, Never>? in
            let fresh = state.trustedUntil.map { now < $0 } ?? false
            guard !fresh || state.algorithms[kid] == nil else { return nil }
            if let reloading = state.reloading { return reloading }
            guard state.lastAttempt.map({ now.timeIntervalSince($0) >= refreshFloor }) ?? true else { return nil }
            state.lastAttempt = now
            // Awaited below by this caller and any that arrive meanwhile: one fetch serves them all.
            let task = Task { _ = await self.reload(now: now) }
            state.reloading = task
            return task
        }
        if let running { await running.value }
        return state.withLockedValue { state in
            guard let trustedUntil = state.trustedUntil, now < trustedUntil, state.algorithms[kid] == algorithm else { return nil }
            return state.keys
        }
    }

    /// Loads the JWKS now; on failure the keys stay as they were, trusted only until their age runs out.
    @discardableResult
    public func reload(now: Date = Date()) async -> Bool {
        defer { state.withLockedValue { $0.reloading = nil } }
        do {
            let document = try await load()
            // Each key on its own: a key of a type this broker does not take (a symmetric one, an
            // encryption key) is skipped, not a reason to drop the whole set.
            guard let object = try JSONSerialization.jsonObject(with: Data(document.text.utf8)) as? [String: Any],
                  let list = object["keys"] as? [Any] else { return false }
            var algorithms: [String: String] = [:]
            var accepted: [JWK] = []
            for item in list {
                guard let object = item as? [String: Any], object["use"] as? String ?? "sig" == "sig",
                      let data = try? JSONSerialization.data(withJSONObject: object),
                      let jwk = try? JSONDecoder().decode(JWK.self, from: data),
                      let kid = jwk.keyIdentifier?.string, let algorithm = Self.algorithm(of: jwk) else { continue }
                algorithms[kid] = algorithm
                accepted.append(jwk)
            }
            let keys = JWTKeyCollection()
            _ = try await keys.add(jwks: JWKS(keys: accepted))
            // The provider may shorten the age, never lengthen it; a zero age still lasts one
            // refresh floor, so that a `no-store` provider is not asked again for every token.
            let age = max(min(maxAge, document.maxAge ?? maxAge), refreshFloor)
            state.withLockedValue { state in
                state.keys = keys
                state.algorithms = algorithms
                state.trustedUntil = now.addingTimeInterval(age)
            }
            return true
        } catch {
            return false
        }
    }

    static func algorithm(of jwk: JWK) -> String? {
        switch jwk.keyType {
        case .rsa:
            guard jwk.algorithm == nil || jwk.algorithm == .rs256 else { return nil }
            return "RS256"
        case .ecdsa:
            guard jwk.curve?.rawValue == "P-256", jwk.algorithm == nil || jwk.algorithm == .es256 else { return nil }
            return "ES256"
        case .octetKeyPair:
            guard jwk.curve?.rawValue == "Ed25519", jwk.algorithm == nil || jwk.algorithm == .eddsa else { return nil }
            return "EdDSA"
        default:
            return nil
        }
    }
}

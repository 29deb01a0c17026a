import BrokerFields
import BrokerPayload
@preconcurrency import Crypto
import Foundation

/// End users' JWTs (DESIGN §6, §8): `sub` is their subject id.
///
/// Only HS256 is accepted (the configured allowlist can hold nothing else), so
/// `alg: none` and algorithm confusion (an RS/ES token checked with the HMAC secret
/// as a "public key") are refused before any signature work. The header must be a
/// JSON object whose `alg` is exactly `HS256` (and `typ`, if present, `JWT`); the
/// claims need `iss` and `aud` as configured, a numeric `exp` in the future (60 s
/// leeway), `nbf` and `iat` not in the future, and a non-empty `sub`.
public struct UserTokenVerifier: Sendable {
    public enum Failure: Error, Equatable { case malformed, algorithm, signature, claims, expired }

    let key: SymmetricKey
    let issuer: String
    let audience: String
    let leeway: TimeInterval = 60

    public init(secret: [UInt8], issuer: String, audience: String) {
        self.key = SymmetricKey(data: secret)
        self.issuer = issuer
        self.audience = audience
    }

    /// True when `token` looks like a compact JWS (three Base64url parts), so it is judged as one.
    static func looksLikeJWT(_ token: String) -> Bool {
        token.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }

    /// The subject of a valid token.
    public func subject(of token: String, now: Date) -> Result<String, Failure> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.base64url(parts[0]), let claimsData = Self.base64url(parts[1]),
              let signature = Self.base64url(parts[2]),
              // Strict JSON first: a claim sent twice (`"sub":"u-1","sub":"u-2"`) is refused, never resolved
              // to either value, and so is a number that cannot be kept exactly.
              Self.isStrictJSON(headerData), let strictClaims = Self.strictJSON(claimsData),
              let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any],
              let claims = (try? JSONSerialization.jsonObject(with: claimsData)) as? [String: Any]
        else { return .failure(.malformed) }
        guard header["alg"] as? String == "HS256", header["crit"] == nil,
              (header["typ"] as? String).map({ $0.uppercased() == "JWT" }) ?? true
        else { return .failure(.algorithm) }
        let signed = Data((parts[0] + "." + parts[1]).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) else {
            return .failure(.signature)
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
        let mac = HMAC<SHA256>.authenticationCode(for: Data((header + "." + claims).utf8), using: key)
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

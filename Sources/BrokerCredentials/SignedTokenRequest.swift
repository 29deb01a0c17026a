import BrokerFields
@preconcurrency import Crypto
import Foundation

/// A token call signed with a digest of secrets and a timestamp, as several push
/// services use instead of OAuth.
///
/// The request carries `params` in order: a secret's value, `timestamp`
/// (milliseconds since the epoch, the same value that is signed) or `sign` =
/// lower-case hex of `algorithm(concatenation of the sign.of parts)`. The token
/// is read at `tokenPath` of the JSON answer, kept for `lifetime` seconds
/// (replaced after 90% of it) and injected where `injection` says.
struct SignedTokenRequest: Sendable {
    enum BodyKind: String, Sendable { case form, json }
    enum Algorithm: String, Sendable {
        case sha256Hex = "sha256_hex"
        case md5Hex = "md5_hex"

        func digest(_ bytes: [UInt8]) -> String {
            switch self {
            case .sha256Hex: return Hex.encode(SHA256.hash(data: bytes))
            case .md5Hex: return Hex.encode(Insecure.MD5.hash(data: bytes))
            }
        }
    }
    enum Injection: Sendable, Equatable {
        case formField(String)
        case header(String)
        case query(String)
    }

    let endpoint: TokenEndpoint
    let bodyKind: BodyKind
    /// Secret name → resolved value.
    let secrets: [String: String]
    let algorithm: Algorithm
    let signOf: [String]
    let params: [String]
    let tokenPath: [String]
    let lifetime: Int
    let injection: Injection

    /// The token request body for a given time (milliseconds since the epoch).
    func requestBody(timestampMilliseconds: Int64) -> [UInt8] {
        let timestamp = String(timestampMilliseconds)
        func part(_ name: String) -> String { name == "timestamp" ? timestamp : secrets[name] ?? "" }
        let sign = algorithm.digest(Array(signOf.map(part).joined().utf8))
        func value(_ name: String) -> String { name == "sign" ? sign : part(name) }
        switch bodyKind {
        case .form:
            let pairs = params.map { PercentEncoding.encode($0) + "=" + PercentEncoding.encode(value($0)) }
            return Array(pairs.joined(separator: "&").utf8)
        case .json:
            // The timestamp is a JSON number (milliseconds); every other value a string.
            let members = params.map { name in
                JSONText.quoted(name) + ":" + (name == "timestamp" ? timestamp : JSONText.quoted(value(name)))
            }
            return Array(("{" + members.joined(separator: ",") + "}").utf8)
        }
    }

    func fetch(now: @Sendable () -> Date) async -> Result<IssuedToken, CredentialError> {
        let started = now()
        let milliseconds = Int64((started.timeIntervalSince1970 * 1000).rounded(.down))
        let contentType = bodyKind == .form ? "application/x-www-form-urlencoded" : "application/json"
        let object: [String: Any]
        switch await endpoint.post(contentType: contentType, body: requestBody(timestampMilliseconds: milliseconds)) {
        case .success(let value): object = value
        case .failure(let error): return .failure(error)
        }
        guard let token = TokenResponse.text(TokenResponse.value(at: tokenPath, in: object)),
              TokenResponse.isUsableToken(token) else {
            return .failure(.unavailable("credential type \(endpoint.credentialType): token endpoint \(endpoint.host) "
                                         + "answered without a usable token at \(tokenPath.joined(separator: "."))"))
        }
        let keep = TimeInterval(lifetime) * 0.9
        return .success(IssuedToken(value: token, refreshAt: started.addingTimeInterval(keep)))
    }
}


@preconcurrency import Crypto
import BrokerFields
import Foundation

/// Sign in with Apple's REST API (`appleid.apple.com`): the code exchange and token revocation.
///
/// Both calls are form posts authenticated by `client_id` and `client_secret`, an ES256 JWT the
/// app signs with its Sign in with Apple key: header `kid` = the key id, claims `iss` = the team
/// id, `sub` = the client id, `aud` = `https://appleid.apple.com`, `iat` not in the future, `exp`
/// after now and at most six months after `iat`. A bad client answers 400
/// `{"error":"invalid_client"}`, as Apple does.
/// - `POST /auth/token`, `grant_type=authorization_code` with a one-time `code` (else 400
///   `invalid_grant`) → `{access_token, token_type:"Bearer", expires_in:3600, refresh_token,
///   id_token}`; `grant_type=refresh_token` with an issued, unrevoked refresh token → a new
///   access token.
/// - `POST /auth/revoke`, `token` and `token_type_hint` (`refresh_token` or `access_token`) →
///   200 with an empty body, also for a token already revoked or unknown (Apple answers so);
///   the revoked tokens are recorded (`revokedTokens()`), each once.
final class AppleLoginBehavior: ProviderBehavior {
    let provider = "apple-login"

    private struct State {
        var usedCodes: Set<String> = []
        var refreshTokens: Set<String> = []
        var revoked: [String] = []
    }

    private let teamID: String
    private let keyID: String
    private let clientID: String
    private let publicKey: P256.Signing.PublicKey
    private let now: @Sendable () -> Date
    private let state = Locked(State())

    init(teamID: String, keyID: String, clientID: String, privateKeyPEM: String, now: @escaping @Sendable () -> Date) {
        self.teamID = teamID; self.keyID = keyID; self.clientID = clientID; self.now = now
        self.publicKey = try! P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM).publicKey
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        request.path == "/auth/token" || request.path == "/auth/revoke" ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse { .json(["error": "server_error"], status: status) }

    func resetEffects() { state.withLock { $0.revoked = [] } }

    /// The tokens `/auth/revoke` revoked, in order, each once.
    func revokedTokens() -> [String] { state.withLock { $0.revoked } }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST", request.mediaType == "application/x-www-form-urlencoded", let form = request.formParameters else {
            return .json(["error": "invalid_request"], status: 400)
        }
        guard form.first("client_id") == clientID, validSecret(form.first("client_secret") ?? "") else {
            return .json(["error": "invalid_client"], status: 400)
        }
        return request.path == "/auth/token" ? token(form) : revoke(form)
    }

    private func validSecret(_ jwt: String) -> Bool {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerBytes = FCMBehavior.base64URL(parts[0]), let claimBytes = FCMBehavior.base64URL(parts[1]),
              let signature = FCMBehavior.base64URL(parts[2]),
              let header = try? JSONValue.parse(headerBytes), let claims = try? JSONValue.parse(claimBytes),
              header["alg"]?.stringValue == "ES256", header["kid"]?.stringValue == keyID,
              let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
              publicKey.isValidSignature(ecdsa, for: Array((parts[0] + "." + parts[1]).utf8)) else { return false }
        let seconds = Int64(now().timeIntervalSince1970)
        guard claims["iss"]?.stringValue == teamID, claims["sub"]?.stringValue == clientID,
              claims["aud"]?.stringValue == "https://appleid.apple.com",
              let iat = claims["iat"]?.intValue, let exp = claims["exp"]?.intValue,
              iat <= seconds + 60, exp > seconds, exp - iat <= 15_777_000 else { return false }
        return true
    }

    private func token(_ form: [(name: String, value: String)]) -> SimulatorResponse {
        switch form.first("grant_type") {
        case "authorization_code":
            guard let code = form.first("code"), !code.isEmpty, state.withLock({ $0.usedCodes.insert(code).inserted }) else {
                return .json(["error": "invalid_grant"], status: 400)
            }
            let refresh = "r" + RandomText.hex(bytes: 24) + ".0.nrxtt." + RandomText.alphanumeric(22)
            state.withLock { _ = $0.refreshTokens.insert(refresh) }
            return .json(["access_token": .string("a" + RandomText.hex(bytes: 24) + ".0.nrxtt." + RandomText.alphanumeric(22)),
                          "token_type": "Bearer", "expires_in": 3600, "refresh_token": .string(refresh),
                          "id_token": .string("eyJraWQiOiJXNldjT0tCIiwiYWxnIjoiUlMyNTYifQ." + RandomText.alphanumeric(40) + "." + RandomText.alphanumeric(40))])
        case "refresh_token":
            guard let refresh = form.first("refresh_token"), state.withLock({ $0.refreshTokens.contains(refresh) }) else {
                return .json(["error": "invalid_grant"], status: 400)
            }
            return .json(["access_token": .string("a" + RandomText.hex(bytes: 24)), "token_type": "Bearer", "expires_in": 3600])
        default:
            return .json(["error": "unsupported_grant_type"], status: 400)
        }
    }

    private func revoke(_ form: [(name: String, value: String)]) -> SimulatorResponse {
        guard let token = form.first("token"), !token.isEmpty else { return .json(["error": "invalid_request"], status: 400) }
        if let hint = form.first("token_type_hint"), hint != "refresh_token", hint != "access_token" {
            return .json(["error": "invalid_request"], status: 400)
        }
        state.withLock { state in
            if state.refreshTokens.remove(token) != nil { state.revoked.append(token) }
        }
        return SimulatorResponse(status: 200, body: [], contentType: "text/plain")
    }
}

/// Google's OAuth 2.0 endpoints (`oauth2.googleapis.com`): the code exchange and token revocation.
/// - `POST /token`, form `grant_type=authorization_code`, a one-time `code`, `client_id` and
///   `client_secret` (else 401 `{"error":"invalid_client"}`), `redirect_uri` → `{access_token,
///   expires_in:3599, refresh_token, scope, token_type:"Bearer", id_token}`.
/// - `POST /revoke`, the `token` in the query or the form body (an issued access or refresh
///   token; revoking the access token revokes its refresh token too) → 200 `{}`; an unknown or
///   revoked token → 400 `{"error":"invalid_token","error_description":"Token expired or revoked"}`.
final class GoogleLoginBehavior: ProviderBehavior {
    let provider = "google-login"
    let jsonContentType = "application/json; charset=utf-8"

    private struct State {
        var usedCodes: Set<String> = []
        var pairs: [String: String] = [:]   // access token → refresh token
        var revoked: [String] = []
    }

    private let clientID: String
    private let clientSecret: String
    private let state = Locked(State())

    init(clientID: String, clientSecret: String) { self.clientID = clientID; self.clientSecret = clientSecret }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        request.path == "/token" || request.path == "/revoke" ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse { .json(["error": "internal_failure"], status: status) }

    func resetEffects() { state.withLock { $0.revoked = [] } }

    /// The access tokens `/revoke` revoked, in order, each once.
    func revokedTokens() -> [String] { state.withLock { $0.revoked } }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST" else { return .json(["error": "invalid_request"], status: 405) }
        let form = request.body.isEmpty ? [] : (request.formParameters ?? [])
        if request.path == "/revoke" {
            guard let token = request.queryParameters?.first("token") ?? form.first("token"), !token.isEmpty else {
                return .json(["error": "invalid_request", "error_description": "Missing required parameter: token"], status: 400)
            }
            let revoked = state.withLock { state -> Bool in
                if state.pairs.removeValue(forKey: token) != nil { state.revoked.append(token); return true }
                if let access = state.pairs.first(where: { $0.value == token })?.key {
                    state.pairs.removeValue(forKey: access); state.revoked.append(access); return true
                }
                return false
            }
            return revoked ? .json([:]) : .json(["error": "invalid_token", "error_description": "Token expired or revoked"], status: 400)
        }
        guard request.mediaType == "application/x-www-form-urlencoded" else { return .json(["error": "invalid_request"], status: 400) }
        guard form.first("client_id") == clientID, form.first("client_secret") == clientSecret else {
            return .json(["error": "invalid_client", "error_description": "The OAuth client was not found."], status: 401)
        }
        guard form.first("grant_type") == "authorization_code", let code = form.first("code"), !code.isEmpty,
              state.withLock({ $0.usedCodes.insert(code).inserted }) else {
            return .json(["error": "invalid_grant", "error_description": "Malformed auth code."], status: 400)
        }
        let access = "ya29." + RandomText.alphanumeric(80)
        let refresh = "1//0" + RandomText.alphanumeric(60)
        state.withLock { $0.pairs[access] = refresh }
        return .json(["access_token": .string(access), "expires_in": 3599, "refresh_token": .string(refresh),
                      "scope": "openid https://www.googleapis.com/auth/userinfo.email", "token_type": "Bearer",
                      "id_token": .string("eyJhbGciOiJSUzI1NiJ9." + RandomText.alphanumeric(40) + "." + RandomText.alphanumeric(40))])
    }
}

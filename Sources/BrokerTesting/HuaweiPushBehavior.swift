import BrokerFields
import Foundation

/// Huawei Push Kit (HMS) v1, on one port: the OAuth 2.0 client-credentials call
/// of `oauth-login.cloud.huawei.com` and the push API of `push-api.cloud.huawei.com`.
///
/// - `POST /oauth2/v3/token` (and `/oauth2/v2/token`): form body
///   `grant_type=client_credentials&client_id=&client_secret=` → 200
///   `{"access_token","expires_in","token_type":"Bearer"}`. Errors use Huawei's
///   OAuth style `{"error":1101|1102,"sub_error":…,"error_description":…}`: 401 for
///   an unknown client id or wrong secret, 400 for a malformed request. (The
///   sub_error numbers are a best guess: the public sources cite only 1101/12304.)
/// - `POST /v1/{appId}/messages:send`: `Authorization: Bearer <issued, unexpired
///   token>` (else 401 `80200001` unknown / `80200003` expired), `Content-Type:
///   application/json` (parameters allowed), a JSON object with a `message` object
///   that targets exactly one of `token` (1–1000 non-empty strings), `topic` or
///   `condition`; `validate_only` must be a boolean if present. Invalid → 400
///   `80100003`. Success → 200 `{"code":"80000000","msg":"Success","requestId"}`.
///   Notification title/body are not required (Huawei falls back between
///   `notification` and `android.notification`), so a stripped title still sends.
/// - `POST /v1/{appId}/token:delete` with `{"token":"…"}` and a valid Bearer → 200
///   `{"code":"80000000","msg":"Success"}`; every call and each distinct (appId,
///   token) pair are recorded; deleting twice succeeds without a second effect.
/// The appId in the path is not compared with the client id.
final class HuaweiPushBehavior: ProviderBehavior {
    let provider = "huawei-push"

    private struct State {
        var tokens: [String: Date] = [:]          // access token → expiry
        var deletionCalls: [DeletedPushToken] = []
        var deleted: [DeletedPushToken] = []
        var deletedSet: Set<DeletedPushToken> = []
    }

    private let clientID: String
    private let clientSecret: String
    private let tokenLifetime: Duration
    private let now: @Sendable () -> Date
    private let state = Locked(State())

    init(clientID: String, clientSecret: String, tokenLifetime: Duration, now: @escaping @Sendable () -> Date) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.tokenLifetime = tokenLifetime
        self.now = now
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        if request.path == "/oauth2/v3/token" || request.path == "/oauth2/v2/token" { return .token }
        if self.apiCall(request.path) != nil { return .api }
        return .unknown
    }

    private enum APICall { case send(appID: String), delete(appID: String) }

    private func apiCall(_ path: String) -> APICall? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, parts[1] == "v1", !parts[2].isEmpty else { return nil }
        let appID = String(parts[2])
        switch parts[3] {
        case "messages:send": return .send(appID: appID)
        case "token:delete": return .delete(appID: appID)
        default: return nil
        }
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST" else {
            return request.path.hasPrefix("/oauth2/")
                ? self.oauthError(400, error: 1102, sub: 20001, "method must be POST")
                : self.pushError(405, "80100000", "Method Not Allowed")
        }
        switch self.route(request) {
        case .token: return self.token(request)
        case .unknown: return .notFound
        case .api:
            switch self.apiCall(request.path) {
            case .send(let appID)?: return self.send(request, appID: appID)
            case .delete(let appID)?: return self.delete(request, appID: appID)
            case nil: return .notFound
            }
        }
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        self.pushError(status, "81000001", "System inner error")
    }

    func expireIssuedTokens() {
        let past = self.now().addingTimeInterval(-1)
        self.state.withLock { state in
            for key in state.tokens.keys { state.tokens[key] = past }
        }
    }

    func resetEffects() {
        self.state.withLock {
            $0.deletionCalls = []
            $0.deleted = []
            $0.deletedSet = []
        }
    }

    func deletions() -> (distinct: [DeletedPushToken], calls: [DeletedPushToken]) {
        self.state.withLock { ($0.deleted, $0.deletionCalls) }
    }

    // MARK: OAuth

    private func token(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.mediaType == "application/x-www-form-urlencoded" else {
            return self.oauthError(400, error: 1102, sub: 20001, "Content-Type must be application/x-www-form-urlencoded")
        }
        guard let form = request.formParameters else {
            return self.oauthError(400, error: 1102, sub: 20001, "malformed form body")
        }
        guard let grantType = form.first("grant_type") else {
            return self.oauthError(400, error: 1102, sub: 20002, "missing required parameter: grant_type")
        }
        guard grantType == "client_credentials" else {
            return self.oauthError(400, error: 1102, sub: 20003, "unsupported grant_type")
        }
        guard let clientID = form.first("client_id"), !clientID.isEmpty else {
            return self.oauthError(400, error: 1102, sub: 20002, "missing required parameter: client_id")
        }
        guard let secret = form.first("client_secret"), !secret.isEmpty else {
            return self.oauthError(400, error: 1102, sub: 20002, "missing required parameter: client_secret")
        }
        guard clientID == self.clientID else {
            return self.oauthError(401, error: 1101, sub: 20152, "invalid client")
        }
        guard secret == self.clientSecret else {
            return self.oauthError(401, error: 1101, sub: 12304, "invalid client_secret")
        }
        let token = RandomText.base64(bytes: 48)
        let expiry = self.now().addingTimeInterval(self.tokenLifetime.seconds)
        self.state.withLock { $0.tokens[token] = expiry }
        return .json([
            "access_token": .string(token),
            "expires_in": .int(Int64(self.tokenLifetime.seconds.rounded())),
            "token_type": "Bearer",
        ])
    }

    private func oauthError(_ status: Int, error: Int64, sub: Int64, _ description: String) -> SimulatorResponse {
        .json(["sub_error": .int(sub), "error_description": .string(description), "error": .int(error)], status: status)
    }

    // MARK: Push API

    private func pushError(_ status: Int, _ code: String, _ message: String) -> SimulatorResponse {
        .json(["code": .string(code), "msg": .string(message), "requestId": .string(self.requestID())], status: status)
    }

    private func requestID() -> String {
        String(UInt64.random(in: 100_000_000_000_000...999_999_999_999_999)) + "00000000"
    }

    /// nil when the Bearer token is valid; else the refusal.
    private func checkBearer(_ request: SimulatorRequest) -> SimulatorResponse? {
        guard let header = request.header("Authorization"), header.hasPrefix("Bearer ") else {
            return self.pushError(401, "80200001", "Oauth authentication error")
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        let now = self.now()
        let expiry = self.state.withLock { $0.tokens[token] }
        guard let expiry else { return self.pushError(401, "80200001", "Oauth authentication error") }
        guard expiry > now else { return self.pushError(401, "80200003", "OAuth token expired") }
        return nil
    }

    private func jsonBody(_ request: SimulatorRequest) throws(Refusal) -> JSONValue {
        guard request.mediaType == "application/json" else {
            throw Refusal(self.pushError(400, "80100003", "Illegal payload, Content-Type must be application/json"))
        }
        guard let body = try? JSONValue.parse(request.body), body.isObject else {
            throw Refusal(self.pushError(400, "80100003", "Illegal payload, the request body is not a JSON object"))
        }
        return body
    }

    private func send(_ request: SimulatorRequest, appID: String) -> SimulatorResponse {
        if let refusal = self.checkBearer(request) { return refusal }
        let body: JSONValue
        do throws(Refusal) { body = try self.jsonBody(request) } catch { return error.response }
        if let validateOnly = body["validate_only"] {
            guard case .bool = validateOnly else {
                return self.pushError(400, "80100003", "Illegal payload, validate_only must be a boolean")
            }
        }
        guard let message = body["message"], message.isObject else {
            return self.pushError(400, "80100003", "Illegal payload, message is mandatory")
        }
        let targets = ["token", "topic", "condition"].filter { message[$0] != nil }
        guard targets.count == 1 else {
            return self.pushError(400, "80100003", "Illegal payload, exactly one of token, topic and condition is required")
        }
        if let tokens = message["token"] {
            guard let array = tokens.arrayValue, (1...1000).contains(array.count),
                  array.allSatisfy({ ($0.stringValue.map { !$0.isEmpty }) ?? false })
            else {
                return self.pushError(400, "80100003", "Illegal payload, token must be an array of 1 to 1000 non-empty strings")
            }
        } else {
            let target = message["topic"] ?? message["condition"]
            guard let text = target?.stringValue, !text.isEmpty else {
                return self.pushError(400, "80100003", "Illegal payload, topic and condition must be non-empty strings")
            }
        }
        return .json(["code": "80000000", "msg": "Success", "requestId": .string(self.requestID())])
    }

    private func delete(_ request: SimulatorRequest, appID: String) -> SimulatorResponse {
        if let refusal = self.checkBearer(request) { return refusal }
        let body: JSONValue
        do throws(Refusal) { body = try self.jsonBody(request) } catch { return error.response }
        guard let token = body["token"]?.stringValue, !token.isEmpty else {
            return self.pushError(400, "80100003", "Illegal payload, token is mandatory")
        }
        let deletion = DeletedPushToken(appID: appID, token: token)
        self.state.withLock { state in
            state.deletionCalls.append(deletion)
            if state.deletedSet.insert(deletion).inserted {
                state.deleted.append(deletion)
            }
        }
        return .json(["code": "80000000", "msg": "Success", "requestId": .string(self.requestID())])
    }
}

extension Duration {
    /// The duration in seconds, as a `TimeInterval`.
    var seconds: TimeInterval {
        let parts = self.components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}

@preconcurrency import Crypto
import _CryptoExtras
import BrokerFields
import Foundation

/// A Google service account's RSA key for the simulators: made once per process (2048-bit RSA
/// takes a moment), handed to the broker as `FCM_PRIVATE_KEY` (PKCS #8 PEM, as Google's JSON has it).
public enum ServiceAccountKey {
    static let shared = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    public static var privateKeyPEM: String { shared.pkcs8PEMRepresentation }
}

/// Firebase Cloud Messaging HTTP v1 (`fcm.googleapis.com`) and the Google OAuth token endpoint it
/// needs (`oauth2.googleapis.com/token`), on one port.
/// - `POST /token`, form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`:
///   the JWT's header is `alg` RS256, its signature verifies with the service account's public
///   key, `iss` is the account's email, `aud` is `https://oauth2.googleapis.com/token`, `scope`
///   names `…/auth/firebase.messaging` or `…/auth/cloud-platform`, `iat` is not in the future
///   (60 s leeway) and `exp` is after now and at most an hour after `iat`; else 400
///   `{"error":"invalid_grant","error_description":…}` as Google answers →
///   `{"access_token":"ya29.…","expires_in":3599,"token_type":"Bearer"}`.
/// - `POST /v1/projects/{project}/messages:send` with `Authorization: Bearer <issued token>` (else
///   401 UNAUTHENTICATED), the project the account belongs to (else 403 PERMISSION_DENIED), a JSON
///   body `{validate_only?, message}` whose message names exactly one of `token`, `fid` (the
///   installation id firebase-admin 7.7 sends instead of `token`), `topic`, `condition`, whose `data` values are all strings, and that has no member FCM does not define
///   (else 400 INVALID_ARGUMENT) → `{"name":"projects/P/messages/0:…"}`. Errors are Google's
///   `{"error":{"code","message","status","details"}}`.
final class FCMBehavior: ProviderBehavior {
    let provider = "fcm"
    let jsonContentType = "application/json; charset=UTF-8"

    static let tokenPath = "/token"
    static let audience = "https://oauth2.googleapis.com/token"
    static let messageKeys: Set<String> = ["name", "data", "notification", "android", "webpush", "apns", "fcm_options",
                                           "token", "fid", "topic", "condition"]

    private let projectID: String
    private let clientEmail: String
    private let publicKey: _RSA.Signing.PublicKey
    private let now: @Sendable () -> Date
    private let tokens: IssuedTokens

    init(projectID: String, clientEmail: String, now: @escaping @Sendable () -> Date) {
        self.projectID = projectID; self.clientEmail = clientEmail; self.now = now
        self.tokens = IssuedTokens(now: now)
        self.publicKey = ServiceAccountKey.shared.publicKey
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        if request.path == Self.tokenPath { return .token }
        return request.path.hasPrefix("/v1/projects/") && request.path.hasSuffix("/messages:send") ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        Self.error(status, "The service is currently unavailable.", "UNAVAILABLE")
    }

    func expireIssuedTokens() { tokens.expireAll() }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST" else { return Self.error(405, "Method not allowed.", "INVALID_ARGUMENT") }
        return request.path == Self.tokenPath ? token(request) : send(request)
    }

    static func error(_ code: Int, _ message: String, _ status: String) -> SimulatorResponse {
        .json(["error": ["code": .int(Int64(code)), "message": .string(message), "status": .string(status)]], status: code)
    }

    private func grantError(_ description: String) -> SimulatorResponse {
        .json(["error": "invalid_grant", "error_description": .string(description)], status: 400)
    }

    private func token(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.mediaType == "application/x-www-form-urlencoded", let form = request.formParameters else {
            return .json(["error": "invalid_request", "error_description": "Invalid Content-Type"], status: 400)
        }
        guard form.first("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" else {
            return .json(["error": "unsupported_grant_type", "error_description": "Invalid grant_type"], status: 400)
        }
        let parts = (form.first("assertion") ?? "").split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerBytes = Self.base64URL(parts[0]), let claimBytes = Self.base64URL(parts[1]),
              let signature = Self.base64URL(parts[2]),
              let header = try? JSONValue.parse(headerBytes), let claims = try? JSONValue.parse(claimBytes)
        else { return grantError("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.") }
        guard header["alg"]?.stringValue == "RS256",
              publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature),
                                         for: Data((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5)
        else { return grantError("Invalid JWT Signature.") }
        guard claims["iss"]?.stringValue == clientEmail else { return grantError("Invalid JWT: iss is not a known service account.") }
        guard claims["aud"]?.stringValue == Self.audience else { return grantError("Invalid JWT: aud must be \(Self.audience).") }
        let scopes = (claims["scope"]?.stringValue ?? "").split(separator: " ")
        guard scopes.contains("https://www.googleapis.com/auth/firebase.messaging")
                || scopes.contains("https://www.googleapis.com/auth/cloud-platform") else {
            return .json(["error": "invalid_scope", "error_description": "Invalid OAuth scope or ID token audience provided."], status: 400)
        }
        let nowSeconds = Int64(now().timeIntervalSince1970)
        guard let iat = claims["iat"]?.intValue, let exp = claims["exp"]?.intValue, iat <= nowSeconds + 60, exp > nowSeconds,
              exp - iat <= 3600 else {
            return grantError("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
        }
        let token = tokens.issue("ya29." + RandomText.alphanumeric(60), lifetime: 3599)
        return .json(["access_token": .string(token), "expires_in": 3599, "token_type": "Bearer"])
    }

    private func send(_ request: SimulatorRequest) -> SimulatorResponse {
        let bearer = request.header("Authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard tokens.isValid(bearer) else {
            return Self.error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "UNAUTHENTICATED")
        }
        let project = request.path.dropFirst("/v1/projects/".count).dropLast("/messages:send".count)
        guard project == projectID else {
            return Self.error(403, "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/\(project)' (or it may not exist).", "PERMISSION_DENIED")
        }
        guard request.mediaType == "application/json", let body = try? JSONValue.parse(request.body), let members = body.objectMembers,
              let message = body["message"], let fields = message.objectMembers else {
            return Self.error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        }
        if let unknown = members.first(where: { $0.0 != "message" && $0.0 != "validate_only" }) {
            return Self.error(400, "Invalid JSON payload received. Unknown name \"\(unknown.0)\": Cannot find field.", "INVALID_ARGUMENT")
        }
        if let unknown = fields.first(where: { !Self.messageKeys.contains($0.0) }) {
            return Self.error(400, "Invalid JSON payload received. Unknown name \"\(unknown.0)\" at 'message': Cannot find field.", "INVALID_ARGUMENT")
        }
        let targets = fields.filter { ["token", "fid", "topic", "condition"].contains($0.0) }
        guard targets.count == 1, let target = targets.first?.1.stringValue, !target.isEmpty else {
            return Self.error(400, "Request contains an invalid argument.", "INVALID_ARGUMENT")
        }
        if let data = message["data"], !(data.objectMembers?.allSatisfy { $0.1.stringValue != nil } ?? false) {
            return Self.error(400, "Invalid value at 'message.data': values must be strings.", "INVALID_ARGUMENT")
        }
        return .json(["name": .string("projects/\(projectID)/messages/0:\(UInt64.random(in: 1_000_000_000_000...9_999_999_999_999))%\(RandomText.hex(bytes: 8))")])
    }

    static func base64URL(_ text: String) -> [UInt8]? {
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        return Data(base64Encoded: base).map(Array.init)
    }
}

@preconcurrency import Crypto
import BrokerFields
import Foundation

/// Apple Push Notification service, provider API (`api.push.apple.com`), token-based: HTTP/2
/// only (this simulator serves HTTP/2 with prior knowledge and nothing else, so an HTTP/1.1
/// client cannot even be answered), `POST /3/device/{device token}` — the token is in the
/// path. APNs answers 200 with an `apns-id` header and an empty body, errors as `{"reason"}`
/// with their status, so does this simulator. Checks, in order:
/// - `authorization: bearer <JWT>`: ES256, header `kid` the key id, claims `iss` the team id and
///   `iat`, signed with the team's key (else 403 `InvalidProviderToken`), issued within the last
///   hour (else 403 `ExpiredProviderToken`) and not in the future; missing → 403
///   `MissingProviderToken`;
/// - the device token is 64 or more hex digits (else 400 `BadDeviceToken`); one made unregistered
///   (`unregister(_:)`) → 410 `Unregistered` with a `timestamp`;
/// - `apns-topic` is the app's bundle id (else 400 `MissingTopic` / `DeviceTokenNotForTopic`),
///   `apns-push-type` one of Apple's (else 400 `InvalidPushType`), `apns-priority` 10, 5 or 1
///   (else 400 `BadPriority`), `apns-expiration` digits (400 `BadExpirationDate`);
/// - the body is a JSON object with an `aps` object (400 `PayloadEmpty` / `BadPayload`… as
///   `BadMessageId` is for ids) of at most 4096 bytes (413 `PayloadTooLarge`); an `alert` push
///   needs `aps.alert`, a `background` push `aps.content-available` 1.
final class APNsBehavior: ProviderBehavior {
    let provider = "apns"
    let speaksHTTP2Only = true
    static let pushTypes: Set<String> = ["alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity",
                                         "pushtotalk", "location", "widgets", "controls"]

    private let teamID: String
    private let keyID: String
    private let topic: String
    private let publicKey: P256.Signing.PublicKey
    private let now: @Sendable () -> Date
    private let unregistered = Locked([String: Int64]())

    init(teamID: String, keyID: String, topic: String, privateKeyPEM: String, now: @escaping @Sendable () -> Date) {
        self.teamID = teamID; self.keyID = keyID; self.topic = topic; self.now = now
        self.publicKey = try! P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM).publicKey
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute { request.path.hasPrefix("/3/device/") ? .api : .unknown }

    func faultResponse(status: Int) -> SimulatorResponse { Self.reason(status, "ServiceUnavailable") }

    /// Makes the device token unknown to APNs from now on (the app was removed): 410 `Unregistered`.
    func unregister(_ token: String) { unregistered.withLock { $0[token.lowercased()] = Int64(now().timeIntervalSince1970 * 1000) } }

    static func reason(_ status: Int, _ reason: String, timestamp: Int64? = nil) -> SimulatorResponse {
        var object: JSONValue = ["reason": .string(reason)]
        if let timestamp { object = ["reason": .string(reason), "timestamp": .int(timestamp)] }
        return .json(object, status: status)
    }

    /// Every answer carries an `apns-id`, the request's or a new one (APNs's clients match answers to
    /// requests by it: aioapns waits for ever on an error without one).
    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        var answer = decide(request)
        if !answer.headers.contains(where: { $0.0.lowercased() == "apns-id" }) {
            answer.headers.append(("apns-id", request.header("apns-id") ?? UUID().uuidString.uppercased()))
        }
        return answer
    }

    private func decide(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST" else { return Self.reason(405, "MethodNotAllowed") }
        guard let authorization = request.header("authorization") else { return Self.reason(403, "MissingProviderToken") }
        if let refusal = checkToken(authorization) { return refusal }
        let token = String(request.path.dropFirst("/3/device/".count))
        guard token.count >= 64, token.count <= 200, token.allSatisfy(\.isHexDigit) else { return Self.reason(400, "BadDeviceToken") }
        if let when = unregistered.withLock({ $0[token.lowercased()] }) { return Self.reason(410, "Unregistered", timestamp: when) }
        guard let topic = request.header("apns-topic") else { return Self.reason(400, "MissingTopic") }
        guard topic == self.topic else { return Self.reason(400, "DeviceTokenNotForTopic") }
        let pushType = request.header("apns-push-type") ?? "alert"
        guard Self.pushTypes.contains(pushType) else { return Self.reason(400, "InvalidPushType") }
        if let priority = request.header("apns-priority"), !["10", "5", "1"].contains(priority) { return Self.reason(400, "BadPriority") }
        if let expiration = request.header("apns-expiration"), Int64(expiration) == nil { return Self.reason(400, "BadExpirationDate") }
        guard !request.body.isEmpty else { return Self.reason(400, "PayloadEmpty") }
        guard request.body.count <= 4096 else { return Self.reason(413, "PayloadTooLarge") }
        guard let body = try? JSONValue.parse(request.body), body.isObject, let aps = body["aps"], aps.isObject else {
            return Self.reason(400, "BadPayload")
        }
        if pushType == "alert", aps["alert"] == nil { return Self.reason(400, "BadPayload") }
        if pushType == "background", aps["content-available"]?.intValue != 1 { return Self.reason(400, "BadPayload") }
        return SimulatorResponse(status: 200, body: [], contentType: "text/plain")
    }

    private func checkToken(_ authorization: String) -> SimulatorResponse? {
        guard authorization.lowercased().hasPrefix("bearer ") else { return Self.reason(403, "InvalidProviderToken") }
        let parts = authorization.dropFirst(7).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerBytes = FCMBehavior.base64URL(parts[0]), let claimBytes = FCMBehavior.base64URL(parts[1]),
              let signature = FCMBehavior.base64URL(parts[2]),
              let header = try? JSONValue.parse(headerBytes), let claims = try? JSONValue.parse(claimBytes),
              header["alg"]?.stringValue == "ES256", header["kid"]?.stringValue == keyID, claims["iss"]?.stringValue == teamID,
              let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
              publicKey.isValidSignature(ecdsa, for: Array((parts[0] + "." + parts[1]).utf8)),
              let iat = claims["iat"]?.intValue else { return Self.reason(403, "InvalidProviderToken") }
        let seconds = Int64(now().timeIntervalSince1970)
        guard iat <= seconds + 60, seconds - iat <= 3600 else { return Self.reason(403, "ExpiredProviderToken") }
        return nil
    }
}

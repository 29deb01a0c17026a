import BrokerFields
import Foundation

/// OPPO Push server API v1 (`api.push.oppomobile.com`), auth call and unicast on
/// one port.
///
/// OPPO answers HTTP 200 with a `code` in the body for every business error
/// (return-code table of OPPO's "调用地址，公共参数和返回码" page), so does this
/// simulator; only an injected fault uses another status (`-1 Service Currently
/// Unavailable`).
/// - `POST /server/v1/auth`, form `app_key`, `timestamp` (13-digit ms, within 10
///   minutes of now), `sign` = lowercase hex sha256(app_key + timestamp +
///   master_secret) → `{"code":0,"message":"Success","data":{"auth_token","create_time"}}`.
///   Errors: 15 Missing App Key, 14 Invalid App Key, 18 Missing Timestamp, 19 Invalid
///   Timestamp, 17 Missing Signature, 16 Invalid Signature.
/// - `POST /server/v1/message/notification/unicast`, form `auth_token` (or an
///   `auth_token` header) and `message` = a JSON object with integer `target_type`
///   (2 registration id, 5 alias), non-empty string `target_value`, and a
///   `notification` object with non-empty string `title` and `content` (OPPO marks
///   both required; a consent strip that removes them is refused with 40 Missing
///   Required Arguments, which is what OPPO answers for a missing required
///   argument). Errors: 29 Missing Auth Token, 11 Invalid AuthToken (unknown or
///   expired), 40 Missing Required Arguments, 41 Invalid Arguments. Success →
///   `{"code":0,"message":"Success","data":{"messageId"}}`.
final class OPPOPushBehavior: ProviderBehavior {
    let provider = "oppo-push"

    static let authPath = "/server/v1/auth"
    static let unicastPath = "/server/v1/message/notification/unicast"

    private let appKey: String
    private let masterSecret: String
    private let tokenLifetime: Duration
    private let now: @Sendable () -> Date
    private let tokens: IssuedTokens

    init(appKey: String, masterSecret: String, tokenLifetime: Duration, now: @escaping @Sendable () -> Date) {
        self.appKey = appKey
        self.masterSecret = masterSecret
        self.tokenLifetime = tokenLifetime
        self.now = now
        self.tokens = IssuedTokens(now: now)
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        switch request.path {
        case Self.authPath: .token
        case Self.unicastPath: .api
        default: .unknown
        }
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        do throws(Refusal) {
            guard request.method == "POST" else { throw self.refusal(12, "Http Action Not Allowed") }
            switch request.path {
            case Self.authPath: return try self.auth(request)
            case Self.unicastPath: return try self.unicast(request)
            default: return .notFound
            }
        } catch {
            return error.response
        }
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        .json(["code": -1, "message": "Service Currently Unavailable"], status: status)
    }

    func expireIssuedTokens() { self.tokens.expireAll() }

    private func refusal(_ code: Int64, _ message: String) -> Refusal {
        Refusal(.json(["code": .int(code), "message": .string(message)]))
    }

    private func form(_ request: SimulatorRequest) throws(Refusal) -> [(name: String, value: String)] {
        guard request.mediaType == "application/x-www-form-urlencoded" else {
            throw self.refusal(41, "Invalid Arguments: Content-Type must be application/x-www-form-urlencoded")
        }
        guard let form = request.formParameters else { throw self.refusal(25, "Invalid Encoding") }
        return form
    }

    private func auth(_ request: SimulatorRequest) throws(Refusal) -> SimulatorResponse {
        let form = try self.form(request)
        guard let appKey = form.first("app_key"), !appKey.isEmpty else { throw self.refusal(15, "Missing App Key") }
        guard appKey == self.appKey else { throw self.refusal(14, "Invalid App Key") }
        guard let timestamp = form.first("timestamp"), !timestamp.isEmpty else { throw self.refusal(18, "Missing Timestamp") }
        let nowMillis = Int64((self.now().timeIntervalSince1970 * 1000).rounded())
        guard timestamp.count == 13, timestamp.utf8.allSatisfy({ (48...57).contains($0) }), let millis = Int64(timestamp),
              abs(millis - nowMillis) <= 10 * 60 * 1000
        else { throw self.refusal(19, "Invalid Timestamp") }
        guard let sign = form.first("sign"), !sign.isEmpty else { throw self.refusal(17, "Missing Signature") }
        let expected = OPPOAuthSign.sign(appKey: self.appKey, timestamp: timestamp, masterSecret: self.masterSecret)
        guard sign == expected else { throw self.refusal(16, "Invalid Signature") }
        let token = self.tokens.issue(UUID().uuidString.lowercased(), lifetime: self.tokenLifetime.seconds)
        return .json([
            "code": 0, "message": "Success",
            "data": ["auth_token": .string(token), "create_time": .int(nowMillis)],
        ])
    }

    private func unicast(_ request: SimulatorRequest) throws(Refusal) -> SimulatorResponse {
        let form = try self.form(request)
        guard let token = form.first("auth_token") ?? request.header("auth_token"), !token.isEmpty else {
            throw self.refusal(29, "Missing Auth Token")
        }
        guard self.tokens.isValid(token) else { throw self.refusal(11, "Invalid AuthToken") }
        guard let text = form.first("message"), !text.isEmpty else {
            throw self.refusal(40, "Missing Required Arguments: message")
        }
        guard let message = try? JSONValue.parse(text), message.isObject else {
            throw self.refusal(41, "Invalid Arguments: message is not a JSON object")
        }
        guard let targetType = message["target_type"] else {
            throw self.refusal(40, "Missing Required Arguments: target_type")
        }
        guard let type = targetType.intValue, type == 2 || type == 5 else {
            throw self.refusal(41, "Invalid Arguments: target_type must be 2 (registration_id) or 5 (alias)")
        }
        guard let targetValue = message["target_value"] else {
            throw self.refusal(40, "Missing Required Arguments: target_value")
        }
        guard let value = targetValue.stringValue, !value.isEmpty else {
            throw self.refusal(41, "Invalid Arguments: target_value must be a non-empty string")
        }
        guard let notification = message["notification"] else {
            throw self.refusal(40, "Missing Required Arguments: notification")
        }
        guard notification.isObject else { throw self.refusal(41, "Invalid Arguments: notification must be an object") }
        for field in ["title", "content"] {
            guard let member = notification[field] else {
                throw self.refusal(40, "Missing Required Arguments: notification.\(field)")
            }
            guard let string = member.stringValue, !string.isEmpty else {
                throw self.refusal(41, "Invalid Arguments: notification.\(field) must be a non-empty string")
            }
        }
        return .json(["code": 0, "message": "Success", "data": ["messageId": .string(RandomText.hex(bytes: 12))]])
    }
}

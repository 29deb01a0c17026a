@preconcurrency import Crypto
import BrokerFields
import Foundation

/// vivo push server API (`api-push.vivo.com.cn`): the auth call and sending to one device.
///
/// vivo answers HTTP 200 with `result` (0: success) and `desc` for every outcome, so does this
/// simulator (an injected fault uses its status with result 10000). The codes are vivo's as far
/// as its v2.9.2 document says; the texts are [unverified].
/// - `POST /message/auth`, JSON `{appId, appKey, timestamp (ms, a JSON number, within 10
///   minutes), sign}` with `sign` = lower-case hex md5(appId + appKey + timestamp + appSecret)
///   → `{"result":0,"desc":"请求成功","authToken":"…"}` (24 h). Errors: 10200 appId unknown,
///   10201 appKey wrong, 10202 timestamp missing or stale, 10203 sign wrong.
/// - `POST /message/send`, header `authToken` (an issued, unexpired token, else 10000
///   "authToken invalid"), JSON body (`Content-Type: application/json`, else 10070) with
///   `appId` (the app's), `regId` or `alias`, `title` and `content` (required: a consent strip
///   that removes them is refused, 10055), `notifyType` 1–4 and `requestId` (required, ≤ 64
///   characters), `skipType` 1–4 → `{"result":0,"desc":"请求成功","taskId":"…"}`.
final class VivoPushBehavior: ProviderBehavior {
    let provider = "vivo-push"

    static let authPath = "/message/auth"
    static let sendPath = "/message/send"

    private let appID: String
    private let appKey: String
    private let appSecret: String
    private let now: @Sendable () -> Date
    private let tokens: IssuedTokens

    init(appID: String, appKey: String, appSecret: String, now: @escaping @Sendable () -> Date) {
        self.appID = appID; self.appKey = appKey; self.appSecret = appSecret; self.now = now
        self.tokens = IssuedTokens(now: now)
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        switch request.path {
        case Self.authPath: .token
        case Self.sendPath: .api
        default: .unknown
        }
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        .json(["result": 10000, "desc": "系统繁忙"], status: status)
    }

    func expireIssuedTokens() { tokens.expireAll() }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        do throws(Refusal) {
            guard request.method == "POST" else { throw Self.refusal(10070, "请求方式不支持") }
            guard request.mediaType == "application/json", let body = try? JSONValue.parse(request.body), body.isObject else {
                throw Self.refusal(10070, "请求体必须是 JSON")
            }
            switch request.path {
            case Self.authPath: return try auth(body)
            case Self.sendPath: return try send(request, body)
            default: return .notFound
            }
        } catch {
            return error.response
        }
    }

    static func refusal(_ code: Int64, _ desc: String) -> Refusal {
        Refusal(.json(["result": .int(code), "desc": .string(desc)]))
    }

    private func auth(_ body: JSONValue) throws(Refusal) -> SimulatorResponse {
        guard body["appId"]?.stringValue == appID else { throw Self.refusal(10200, "appId 不合法") }
        guard body["appKey"]?.stringValue == appKey else { throw Self.refusal(10201, "appKey 不合法") }
        let nowMillis = Int64((now().timeIntervalSince1970 * 1000).rounded())
        guard let timestamp = body["timestamp"]?.intValue, abs(timestamp - nowMillis) <= 10 * 60 * 1000 else {
            throw Self.refusal(10202, "timestamp 不合法")
        }
        let expected = Hex.encode(Insecure.MD5.hash(data: Array((appID + appKey + String(timestamp) + appSecret).utf8)))
        guard body["sign"]?.stringValue == expected else { throw Self.refusal(10203, "sign 不合法") }
        let token = tokens.issue(RandomText.alphanumeric(32), lifetime: 86_400)
        return .json(["result": 0, "desc": "请求成功", "authToken": .string(token)])
    }

    private func send(_ request: SimulatorRequest, _ body: JSONValue) throws(Refusal) -> SimulatorResponse {
        guard tokens.isValid(request.header("authToken")) else {
            throw Self.refusal(10000, "authToken 不合法或已过期")
        }
        guard body["appId"]?.stringValue == appID else { throw Self.refusal(10200, "appId 不合法") }
        let target = body["regId"]?.stringValue ?? body["alias"]?.stringValue ?? ""
        guard !target.isEmpty else { throw Self.refusal(10050, "regId 和 alias 不能同时为空") }
        for name in ["title", "content"] {
            guard let text = body[name]?.stringValue, !text.isEmpty else { throw Self.refusal(10055, "\(name) 不能为空") }
        }
        guard let notifyType = body["notifyType"]?.intValue, (1...4).contains(notifyType) else {
            throw Self.refusal(10056, "notifyType 不合法")
        }
        guard let requestID = body["requestId"]?.stringValue, !requestID.isEmpty, requestID.count <= 64 else {
            throw Self.refusal(10057, "requestId 不合法")
        }
        if let skip = body["skipType"], !(skip.intValue.map { (1...4).contains($0) } ?? false) {
            throw Self.refusal(10058, "skipType 不合法")
        }
        return .json(["result": 0, "desc": "请求成功", "taskId": .string(String(UInt64.random(in: 100_000_000_000...999_999_999_999)))])
    }
}

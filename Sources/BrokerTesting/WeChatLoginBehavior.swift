import BrokerFields
@preconcurrency import Crypto
import Foundation

/// WeChat Open Platform OAuth 2.0 (`api.weixin.qq.com`). WeChat answers HTTP 200
/// with `{"errcode","errmsg"}` for every error, so does this simulator (an
/// injected fault uses its status with `-1 system error`). All three calls are
/// API calls of the adapter (the broker forwards them), so all are in `requests()`.
/// - `GET /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code`:
///   41002/40013 missing/invalid appid, 41004/40125 missing/invalid secret, 40002
///   invalid grant_type, 41008 missing code, 40163 code been used (codes are one-time;
///   any other non-empty code is accepted once). The user is derived from the code:
///   `openid` = `o` + 27 chars of sha256(appid|code), so a test can predict nothing
///   but gets a stable user per code. → `{access_token, expires_in:7200,
///   refresh_token, openid, scope:"snsapi_login", unionid}`.
/// - `GET /sns/oauth2/refresh_token?appid=&grant_type=refresh_token&refresh_token=`:
///   40013 invalid appid, 40002 invalid grant_type, 40030 invalid refresh_token →
///   a new access token, same refresh token.
/// - `GET /sns/userinfo?access_token=&openid=&lang=`: 41001 missing access_token,
///   40001 unknown token, 42001 expired (7200 s), 40003 openid not the token's,
///   `lang` one of zh_CN, zh_TW, en if present → `{openid, nickname, sex, province,
///   city, country:"CN", headimgurl, privilege:[], unionid}`.
final class WeChatLoginBehavior: ProviderBehavior {
    let provider = "wechat-login"

    static let accessTokenLifetime: TimeInterval = 7200

    private struct Grant {
        var openid: String
        var unionid: String
        var expiry: Date
    }

    private struct State {
        var usedCodes: Set<String> = []
        var accessTokens: [String: Grant] = [:]
        var refreshTokens: [String: (openid: String, unionid: String)] = [:]
    }

    private let appID: String
    private let appSecret: String
    private let now: @Sendable () -> Date
    private let state = Locked(State())

    init(appID: String, appSecret: String, now: @escaping @Sendable () -> Date) {
        self.appID = appID
        self.appSecret = appSecret
        self.now = now
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        switch request.path {
        case "/sns/oauth2/access_token", "/sns/oauth2/refresh_token", "/sns/userinfo": .api
        default: .unknown
        }
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        do throws(Refusal) {
            guard request.method == "GET" else { throw self.error(43001, "require GET method") }
            guard let query = request.queryParameters else { throw self.error(44002, "invalid query string") }
            switch request.path {
            case "/sns/oauth2/access_token": return try self.accessToken(query)
            case "/sns/oauth2/refresh_token": return try self.refresh(query)
            case "/sns/userinfo": return try self.userinfo(query)
            default: return .notFound
            }
        } catch {
            return error.response
        }
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        .json(["errcode": -1, "errmsg": "system error"], status: status)
    }

    func expireIssuedTokens() {
        let past = self.now().addingTimeInterval(-1)
        self.state.withLock { state in
            for key in state.accessTokens.keys { state.accessTokens[key]?.expiry = past }
        }
    }

    private func error(_ code: Int64, _ message: String) -> Refusal {
        Refusal(.json(["errcode": .int(code), "errmsg": .string("\(message), rid: \(RandomText.hex(bytes: 12))")]))
    }

    private func checkAppID(_ query: [(name: String, value: String)]) throws(Refusal) {
        guard let appid = query.first("appid"), !appid.isEmpty else { throw self.error(41002, "appid missing") }
        guard appid == self.appID else { throw self.error(40013, "invalid appid") }
    }

    private func issue(openid: String, unionid: String, refreshToken: String) -> SimulatorResponse {
        let accessToken = Self.token()
        let expiry = self.now().addingTimeInterval(Self.accessTokenLifetime)
        self.state.withLock { state in
            state.accessTokens[accessToken] = Grant(openid: openid, unionid: unionid, expiry: expiry)
            state.refreshTokens[refreshToken] = (openid, unionid)
        }
        return .json([
            "access_token": .string(accessToken), "expires_in": .int(Int64(Self.accessTokenLifetime)),
            "refresh_token": .string(refreshToken), "openid": .string(openid), "scope": "snsapi_login",
            "unionid": .string(unionid),
        ])
    }

    private func accessToken(_ query: [(name: String, value: String)]) throws(Refusal) -> SimulatorResponse {
        try self.checkAppID(query)
        guard let secret = query.first("secret"), !secret.isEmpty else { throw self.error(41004, "appsecret missing") }
        guard secret == self.appSecret else { throw self.error(40125, "invalid appsecret") }
        guard query.first("grant_type") == "authorization_code" else { throw self.error(40002, "invalid grant_type") }
        guard let code = query.first("code"), !code.isEmpty else { throw self.error(41008, "missing code") }
        let fresh = self.state.withLock { $0.usedCodes.insert(code).inserted }
        guard fresh else { throw self.error(40163, "code been used") }
        let digest = Hex.encode(SHA256.hash(data: Array("\(self.appID)|\(code)".utf8)))
        let openid = "o" + Self.idChars(digest.prefix(27))
        let unionid = "o" + Self.idChars(digest.dropFirst(27).prefix(27))
        return self.issue(openid: openid, unionid: unionid, refreshToken: Self.token())
    }

    private func refresh(_ query: [(name: String, value: String)]) throws(Refusal) -> SimulatorResponse {
        try self.checkAppID(query)
        guard query.first("grant_type") == "refresh_token" else { throw self.error(40002, "invalid grant_type") }
        guard let refreshToken = query.first("refresh_token"), !refreshToken.isEmpty else {
            throw self.error(41003, "refresh_token missing")
        }
        guard let user = self.state.withLock({ $0.refreshTokens[refreshToken] }) else {
            throw self.error(40030, "invalid refresh_token")
        }
        return self.issue(openid: user.openid, unionid: user.unionid, refreshToken: refreshToken)
    }

    private func userinfo(_ query: [(name: String, value: String)]) throws(Refusal) -> SimulatorResponse {
        guard let token = query.first("access_token"), !token.isEmpty else {
            throw self.error(41001, "access_token missing")
        }
        guard let grant = self.state.withLock({ $0.accessTokens[token] }) else {
            throw self.error(40001, "invalid credential, access_token is invalid or not latest")
        }
        guard grant.expiry > self.now() else { throw self.error(42001, "access_token expired") }
        guard let openid = query.first("openid"), openid == grant.openid else { throw self.error(40003, "invalid openid") }
        if let lang = query.first("lang"), !["zh_CN", "zh_TW", "en"].contains(lang) {
            throw self.error(40005, "invalid lang")
        }
        return .json([
            "openid": .string(openid), "nickname": "微信用户", "sex": 1, "province": "广东", "city": "深圳",
            "country": "CN", "headimgurl": "https://thirdwx.qlogo.cn/mmopen/vi_32/simulated/132", "privilege": [],
            "unionid": .string(grant.unionid),
        ])
    }

    private static func token() -> String {
        // WeChat tokens are long opaque strings of letters, digits, `_` and `-`.
        RandomText.alphanumeric(86) + "_" + RandomText.alphanumeric(10)
    }

    private static let idAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Maps hex digits to WeChat-looking id characters (deterministic).
    private static func idChars<S: Sequence>(_ hex: S) -> String where S.Element == Character {
        String(decoding: hex.map { char in
            let value = Int(char.asciiValue ?? 48)
            return self.idAlphabet[(value * 7) % self.idAlphabet.count]
        }, as: UTF8.self)
    }
}

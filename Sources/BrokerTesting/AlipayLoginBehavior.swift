@preconcurrency import _CryptoExtras
import BrokerFields
import Crypto
import Foundation

/// RSA key pairs for the Alipay simulator: fixed keys made for the simulator with
/// `openssl genrsa 2048` (generating RSA keys at run time takes seconds in debug
/// builds). They protect nothing: only simulator traffic is signed with them.
public struct AlipayKeys: Sendable, Equatable {
    /// The app's key pair: the broker signs with the private key, the simulator verifies.
    public let appPrivateKeyPEM: String
    let appPublicKeyPEM: String
    /// Alipay's key pair: the simulator signs notices, the broker verifies with the public key.
    let alipayPrivateKeyPEM: String
    public let alipayPublicKeyPEM: String

    static let shared = AlipayKeys(appPrivateKeyPEM: """
        -----BEGIN RSA PRIVATE KEY-----
        MIIEpAIBAAKCAQEAvH3Zgj3gfkKtvMDir8jKDVBR3y5AHDME2aUfAGsPsTmoY9sU
        1J27RfzzoefKvb5IF3ORyTnBGNhN8WQRqin+qcV91Ip2sEuSK987nKkzrnepBonM
        lM39KuZCWEnCGGy3UnjTpqGDzM62qQ6YZBQh7JpxavOfSrRuk2HDOOAxo5uXJIt1
        fI0wDRC7vBOC7s2pyA0IR0zg4anBsUywOLAHBKHGwFBoGp/TSaUmlVGRItqFDaUZ
        Vi9z/cOrKB/7W1gIe+jnn/eSXS9Q0LB+S7CyQETPUA+b/xqZXRKEuxsB25z8r/+O
        Yfbh5GG1KQZnFuCBIgBKrUm3I0gHjUYNVajIuQIDAQABAoIBAAFYi0xlhjXIlczk
        +kljvBbNWPeCJEi/QxynU+0XSc8+/uX1oY5LsQbH9PJi2tz938easBk/rXjXF7/I
        C+M+T2uLz2eMdI2ZZvBwWxCpJm2riSkUvbTE5fbTAMX4gtqhsUs1G/SS4l0v3BIh
        dBk01pgsP/Argw3pjQEsf8eA1ehNF/8+sZTqRljxUlphwUd7GnQtkH6Isprzywvj
        RJkuZFc1qrgdKUayEzg9e+zZ4QXkCn5wC23yGv3hyDrkd5p44wk9uGEgvy3N5ADT
        OmMpRznyaKydjuBvUTlrV364ubbMdgXshWQyntsEPAmCZEZf6OjVmZuiaEtEy5Kf
        XVBxjqECgYEA9/+BTzw0MxOjbyAAKb/eyZ5rlxpQbyWq98+tqzfXObJ4X6idwFKd
        dQ3wJCPdpKfJJeUeUbG+t5BYeRguJrT/UTVkxQFgD7v++Dd+8SNCzxm6CEj91fyc
        OCtat5jV4Co/UbG3pEK1GO8nff7h6xyfpPCzd1U4i9XfT3VBMpOIzvECgYEAwpLQ
        T1TN6rhXxkaCiJ8sZtVYUH1FyNPSJguSxdhJg2JLzCV3od6FN9kfn96sJih6/crD
        9bzuDHFfNU3Kxbh8tVht2797zC6mUSZR2VDEVKc4Z6kXy6X86UjSoIpkn4hLd02+
        3aqBoDxhACIOuDpgw0bgba4cwF0kpCu/aV/OJkkCgYEAzKPS0U5NiKQ45ZbTa5//
        OAH4qAw3uS+s/6YombOPbvXdLJpX6f6CHbgto7TQzXECo7mHpkP0q0Z6KxqP4rLS
        R/G2QHZdDT7FK4+nuVWuaHTDNNj+VNiJFDR6PCvquHpEG6Z5chr1kyitPuPXCopp
        FdLlVKBG8+S8y7Vm4lQpvRECgYAWekVsVLyxF/iz5CNiSxkjDBR2v/IW4DmPwZiE
        GJdtgSaGf/GRFpbHO+MGYf/7LIQA27LFqbzKXTKFguYg704g2QVf9IAFt4HpMAcW
        ltkHeoXum78u/I76GDqU50f2khU9xBJ/oxn0e+Us0cJnj/7rsD1vDkUuB9Sazp7/
        Ol0jWQKBgQDyKRx0laaGX24nJQGhyYucvciVNpO1E+f1mMzZXw+Rrd5K47G9+tsk
        iiPXL2GeqfPzN2bL82FcVz7wxEMs0r7Gr+NMYLoIR4SbPZsLm4J7oDVJi3Qtdpb/
        IgRX45Ogl/5BSPycKYelXhVvi9zsfUD+R5sX7JcF6dJqHBE24uYbdg==
        -----END RSA PRIVATE KEY-----
        """, appPublicKeyPEM: """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvH3Zgj3gfkKtvMDir8jK
        DVBR3y5AHDME2aUfAGsPsTmoY9sU1J27RfzzoefKvb5IF3ORyTnBGNhN8WQRqin+
        qcV91Ip2sEuSK987nKkzrnepBonMlM39KuZCWEnCGGy3UnjTpqGDzM62qQ6YZBQh
        7JpxavOfSrRuk2HDOOAxo5uXJIt1fI0wDRC7vBOC7s2pyA0IR0zg4anBsUywOLAH
        BKHGwFBoGp/TSaUmlVGRItqFDaUZVi9z/cOrKB/7W1gIe+jnn/eSXS9Q0LB+S7Cy
        QETPUA+b/xqZXRKEuxsB25z8r/+OYfbh5GG1KQZnFuCBIgBKrUm3I0gHjUYNVajI
        uQIDAQAB
        -----END PUBLIC KEY-----
        """, alipayPrivateKeyPEM: """
        -----BEGIN RSA PRIVATE KEY-----
        MIIEpAIBAAKCAQEAtcmKeHMxQ5f7hibUpU6P0wUEcCOXmcgptASYTzSS3GshGia9
        P9XA3VDMZoNGgMU3WV96tfbBn3ntrBnkRWaTCBDXSKJhTrlHMGxkt6A0/NSfbfHm
        5SxxTWJwV8FyF4UIj5FsY97j1riwBtdfxmpgYz1URNvuOcJ1nmcRRuxo3Ptozi4j
        PbI0aNZNj5g83GYnXj6/CraQuL1vCJDKLmGRt5RV0myFJl6rDnT9ep5vVu/2INWR
        tUIsNGCw/7RwiWyNpy6kYexd2Mm06QZd4vQ8VW+ARJTWLYz0EsDm14WD5DY11lXJ
        RwhNR8vS6UmIssbkmB8U1XboRtYCAM3O3HUi3wIDAQABAoIBABESSK0wECfLXYUH
        H4AYpRwJhBWt2f5IlFYB+nWxt7r4Wob0rWARyEdgX5me6V+NZbnAZCszbZJ25lF7
        qvqze8pNnpIFIcM9VgifnUO7SU6W/xPZnDfYWRmNzYQIOBkqVpf47adhVp8i//Dc
        h/N/qOaY61F+H9yPvPDvt+kjqWNbFkA4H4pn++6cCTiQaRwzriWsbT7If/Fn+wuM
        4ldNThSVW/AbJbAnVuwcg9MoBSKhkHYl02aeP9msuNQhGC/5nJqBy12GJji19ygS
        LOWXuTXTt/PP4V5NMDd6oer5XX3qTaRXfq24anBN+B5McyTE+gFpDoid7hm6QEXM
        C1goUnECgYEA3TurhPl/+y4DGvkft2nn4aQeOgYO0nxeqBqdwtYn+LM+pX7SeEUI
        9andLEA/jY81yKdM6SY83Nu/ppM2BNgtL8ca1CcDC8wu7Nu0J6RNO45UkUkfr5/S
        UCnuYH+XoY/kbduVmh1Hv6NAx0qYgwatcbHFWoICzgQuviOgYSNBstECgYEA0lrx
        mvABdZ9niNUBF9aUuC7x9Owf3JrA9yiE02JOS+HwDJDzooylIdWsWO0s+dZBsTL5
        y+Aq3z/QdaSBZwKN7/7iF1hm7c9I8ppQ/HUTPjEIBEcl0gDHs1WfMzsndCwwMLtf
        yR7EWkipjxemCxdj5LsWqEQrLS4HNI4HV4trBq8CgYBwYV5IhyEu6/mh2wj0d7TV
        1zOPkAI5g/nldNfM4FKfsBXTpa+ubosVl7sFPoHKHARbMDkOemESZAJf0InxPgr+
        KSsEt+iBNrBjm1tRg9HDvhJRVw7kfNAt7o7rsATLijekYpYFGniW7Yv7cHY2oM68
        YWx6BG7+TfuclKZkka9O8QKBgQC1iDBKombQCBGEXzXDSbYsQK8jy4YvjgmLAhem
        iIbDK6dKYOkwVSnIyioi0ANpVAJ7Fl/GFp1I7jxK2f2mVOkCvTaGKQ8imSj93DiZ
        tbs2h3/AmVnFIlE0rWZnAtyof93SoFEoMnoG5AAX8bOkjLnzUZVa/wE3yyoCq7Mg
        VLu3FwKBgQCG3o38Q8xC9jqu4G+YkHZOhUOodp7C5qsyxfl07ciH5+aqlIDDYby4
        cuScSahdAb1KZ748lprnXJ1Fi3VU/Dvoog95RhzoD3CCa46ezWIA2joJs7//8S8V
        BM6iUCunHOhi+3WOoxQI3UyLoMRLg4hMP0n3HKdvohjbudo3XboVhA==
        -----END RSA PRIVATE KEY-----
        """, alipayPublicKeyPEM: """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtcmKeHMxQ5f7hibUpU6P
        0wUEcCOXmcgptASYTzSS3GshGia9P9XA3VDMZoNGgMU3WV96tfbBn3ntrBnkRWaT
        CBDXSKJhTrlHMGxkt6A0/NSfbfHm5SxxTWJwV8FyF4UIj5FsY97j1riwBtdfxmpg
        Yz1URNvuOcJ1nmcRRuxo3Ptozi4jPbI0aNZNj5g83GYnXj6/CraQuL1vCJDKLmGR
        t5RV0myFJl6rDnT9ep5vVu/2INWRtUIsNGCw/7RwiWyNpy6kYexd2Mm06QZd4vQ8
        VW+ARJTWLYz0EsDm14WD5DY11lXJRwhNR8vS6UmIssbkmB8U1XboRtYCAM3O3HUi
        3wIDAQAB
        -----END PUBLIC KEY-----
        """)
}

/// Alipay's open-platform gateway (`openapi.alipay.com/gateway.do`), the two login calls.
///
/// Every call: POST with the common parameters in the query or form, or GET with every
/// parameter in the query (as python-alipay-sdk sends; the gateway takes both; any other
/// method → `isv.invalid-method`). `app_id` must be the
/// app's, `sign_type=RSA2`, `charset=utf-8`, `version=1.0`, `timestamp`), `sign`
/// verified with the app's public key over every non-empty parameter but `sign`,
/// sorted by name (a bad signature answers `40002 isv.invalid-signature`, like Alipay).
/// - `alipay.system.oauth.token`: `grant_type=authorization_code` with a one-time
///   `code` → `{user_id:"2088…", access_token, expires_in, refresh_token, re_expires_in}`.
/// - `alipay.user.info.share`: `auth_token` (an issued access token) →
///   `{code:"10000", msg:"Success", user_id, nick_name, avatar}`.
/// Errors are HTTP 200 with `{"error_response":{code, msg, sub_code, sub_msg}}`.
/// `cancellationNotice(userID:)` builds the signed notice Alipay pushes when a user cancels.
final class AlipayLoginBehavior: ProviderBehavior {
    let provider = "alipay-login"

    private struct State {
        var usedCodes: Set<String> = []
        var accessTokens: [String: String] = [:]   // token → user_id
    }

    private let appID: String
    private let appPublicKey: _RSA.Signing.PublicKey
    private let alipayKey: _RSA.Signing.PrivateKey
    private let state = Locked(State())

    init(appID: String, keys: AlipayKeys) {
        self.appID = appID
        self.appPublicKey = try! _RSA.Signing.PublicKey(pemRepresentation: keys.appPublicKeyPEM)
        self.alipayKey = try! _RSA.Signing.PrivateKey(pemRepresentation: keys.alipayPrivateKeyPEM)
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        request.path == "/gateway.do" ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        self.error("20000", "Service Currently Unavailable", "isp.unknow-error", status: status)
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST" || (request.method == "GET" && request.body.isEmpty) else {
            return self.error("40004", "Business Failed", "isv.invalid-method")
        }
        guard let query = request.queryParameters else { return self.error("40002", "Invalid Arguments", "isv.invalid-query") }
        var parameters = query
        if !request.body.isEmpty {
            guard request.mediaType == "application/x-www-form-urlencoded", let form = request.formParameters else {
                return self.error("40002", "Invalid Arguments", "isv.invalid-content-type")
            }
            parameters += form
        }
        let names = parameters.map(\.name)
        guard Set(names).count == names.count else { return self.error("40002", "Invalid Arguments", "isv.duplicate-parameter") }
        guard parameters.first("app_id") == self.appID else { return self.error("40002", "Invalid Arguments", "isv.invalid-app-id") }
        guard parameters.first("sign_type") == "RSA2", parameters.first("charset") == "utf-8",
              parameters.first("version") == "1.0", parameters.first("timestamp")?.count == 19
        else { return self.error("40002", "Invalid Arguments", "isv.missing-common-parameter") }
        guard let sign = parameters.first("sign"), let raw = Data(base64Encoded: sign),
              self.appPublicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: raw),
                                                 for: Data(Self.signedContent(parameters, excluding: ["sign"]).utf8),
                                                 padding: .insecurePKCS1v1_5)
        else { return self.error("40002", "Invalid Arguments", "isv.invalid-signature") }
        switch parameters.first("method") {
        case "alipay.system.oauth.token": return self.oauthToken(parameters)
        case "alipay.user.info.share": return self.userInfo(parameters)
        default: return self.error("40004", "Business Failed", "isv.invalid-method")
        }
    }

    private func oauthToken(_ parameters: [(name: String, value: String)]) -> SimulatorResponse {
        guard parameters.first("grant_type") == "authorization_code", let code = parameters.first("code"), !code.isEmpty else {
            return self.error("40002", "Invalid Arguments", "isv.code-invalid", key: "alipay_system_oauth_token_response")
        }
        let userID = "2088" + String(Self.digits(code + "|" + self.appID).prefix(12))
        let token = "authusrB" + RandomText.hex(bytes: 16)
        let fresh = self.state.withLock { state -> Bool in
            guard state.usedCodes.insert(code).inserted else { return false }
            state.accessTokens[token] = userID
            return true
        }
        guard fresh else { return self.error("40002", "Invalid Arguments", "isv.code-invalid", key: "alipay_system_oauth_token_response") }
        return self.signed("alipay_system_oauth_token_response", [
            "user_id": .string(userID), "access_token": .string(token), "expires_in": .int(1_296_000),
            "refresh_token": .string("authusrB" + RandomText.hex(bytes: 16)), "re_expires_in": .int(2_592_000),
        ])
    }

    private func userInfo(_ parameters: [(name: String, value: String)]) -> SimulatorResponse {
        guard let token = parameters.first("auth_token"), let userID = self.state.withLock({ $0.accessTokens[token] }) else {
            return self.error("20001", "Insufficient Token Permissions", "aop.invalid-auth-token",
                              key: "alipay_user_info_share_response")
        }
        return self.signed("alipay_user_info_share_response", [
            "code": "10000", "msg": "Success", "user_id": .string(userID), "nick_name": "Sandbox User",
            "avatar": "https://tfs.alipayobjects.com/images/partner/sandbox.png",
        ])
    }

    /// The form body of the notice Alipay pushes when `userID` cancels the app's authorization, signed with Alipay's key.
    func cancellationNotice(userID: String, at time: Date) -> String {
        let biz = JSONValue.object([("user_id", .string(userID)), ("app_id", .string(self.appID)),
                                    ("cancel_time", .string(Self.timestamp(time)))]).serialized
        var parameters: [(name: String, value: String)] = [
            ("notify_id", RandomText.hex(bytes: 16)), ("utc_timestamp", String(Int64(time.timeIntervalSince1970 * 1000))),
            ("msg_method", "alipay.open.auth.userauth.cancelled"), ("app_id", self.appID), ("version", "1.1"),
            ("biz_content", biz), ("charset", "utf-8"), ("sign_type", "RSA2"),
        ]
        let signature = try! self.alipayKey.signature(for: Data(Self.signedContent(parameters, excluding: ["sign", "sign_type"]).utf8),
                                                      padding: .insecurePKCS1v1_5)
        parameters.append(("sign", signature.rawRepresentation.base64EncodedString()))
        return parameters.map { FormEncoding.encode($0.name) + "=" + FormEncoding.encode($0.value) }.joined(separator: "&")
    }

    // MARK: Helpers

    static func signedContent(_ parameters: [(name: String, value: String)], excluding: Set<String>) -> String {
        parameters.filter { !$0.value.isEmpty && !excluding.contains($0.name) }
            .sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
            .map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    static func digits(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String($0 % 10) }.joined()
    }

    static func timestamp(_ time: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "Asia/Shanghai")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: time)
    }

    private func signed(_ key: String, _ body: JSONValue) -> SimulatorResponse {
        let inner = body.serialized
        let signature = try! self.alipayKey.signature(for: Data(inner.utf8), padding: .insecurePKCS1v1_5)
        return .json(.object([(key, body), ("sign", .string(signature.rawRepresentation.base64EncodedString()))]))
    }

    private func error(_ code: String, _ message: String, _ sub: String, key: String = "error_response",
                       status: Int = 200) -> SimulatorResponse {
        .json(.object([(key, .object([("code", .string(code)), ("msg", .string(message)), ("sub_code", .string(sub)),
                                      ("sub_msg", .string(sub))]))]), status: status)
    }
}

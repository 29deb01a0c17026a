@testable import BrokerCredentials
import BrokerCore
import BrokerCurl
import BrokerSQLite
import BrokerTesting
import Foundation
import Testing

/// Issue 30: what providers' SDKs send today, through a real broker: an SDK's own sign-in at its
/// provider's token endpoint (answered by the broker, not a share), Alibaba Cloud's RPC parameters in
/// the query or a form body with either signature's parameters, V1 signing where an adapter says so,
/// and the subject of a refused share recorded.
@Suite struct ProviderSDKShapeTests {
    static let push = "essential.service.notifications.push"
    static let jwtBearer = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"

    /// curl through a tunnel to `url` as `client` (subject u1 in the proxy user name), a form body.
    static func tunnelled(_ broker: Broker, _ url: String, form: String, token: String = Broker.shareToken,
                          headers: [String] = []) -> [String] {
        ["-s", "-i", "--http1.1", "-x", broker.base, "-U", "test-app;subject=u1:\(token)", "--cacert", broker.caPath ?? "",
         "-H", "Content-Type: application/x-www-form-urlencoded", "--data", form]
            + headers.flatMap { ["-H", $0] } + [url]
    }

    @Test func anSDKsOwnSignInIsAnsweredByTheBrokerNeverForwardedNorAShare() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "fcm", purpose: Self.push, crossBorder: true)
            let tokenURL = "https://oauth2.googleapis.com/token"
            // firebase-admin's start: its own jwt-bearer assertion, signed with a key Google never saw.
            let signIn = try await curl(Self.tunnelled(broker, tokenURL, form: "grant_type=\(Self.jwtBearer)&assertion=eyJ.sdk-own.sig"))
            #expect(signIn.status == 0 && signIn.output.hasPrefix("HTTP/1.1 200 Connection Established"), "\(signIn.output)")
            let answer = try #require(signIn.output.components(separatedBy: "\r\n\r\n").last)
            let token = try #require(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])
            let placeholder = try #require(token["access_token"] as? String)
            #expect(placeholder.hasPrefix("sharebroker-placeholder.") && token["token_type"] as? String == "Bearer"
                    && token["expires_in"] as? Int == 3599, "\(answer)")
            #expect(signIn.output.lowercased().contains("cache-control: no-store"), "\(signIn.output)")
            #expect(broker.simulator("fcm").requests().isEmpty, "the sign-in went nowhere")

            // The send that follows carries the placeholder; the broker drops it and signs itself in.
            let send = try await curl(["-s", "-i", "--http1.1", "-x", broker.base, "-U", "test-app;subject=u1:\(Broker.shareToken)",
                                       "--cacert", broker.caPath ?? "", "-H", "Content-Type: application/json",
                                       "-H", "Authorization: Bearer \(placeholder)",
                                       "--data", #"{"message":{"fid":"FID-1","notification":{"title":"Hi"}}}"#,
                                       "https://fcm.googleapis.com/v1/projects/\(broker.simulators.credentials.fcmProjectID)/messages:send"])
            #expect(send.output.contains("HTTP/1.1 200 OK") && send.output.lowercased().contains("x-share-decision: allowed"), "\(send.output)")
            let sent = broker.simulator("fcm").requests().filter { $0.path.hasSuffix("messages:send") }
            #expect(sent.count == 1 && sent.allSatisfy { !($0.header("Authorization") ?? "").contains(placeholder) }, "the broker's own token")

            // Sign in with Google's code exchange on the same host is the host's adapter's operation:
            // a share (refused here: no grant), and so is a call that is neither.
            let exchange = try await curl(Self.tunnelled(broker, tokenURL, form: "grant_type=authorization_code&code=G-CODE&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"))
            #expect(exchange.output.contains("HTTP/1.1 403") && exchange.output.lowercased().contains("x-share-decision: blocked"), "\(exchange.output)")
            let neither = try await curl(Self.tunnelled(broker, tokenURL, form: "grant_type=client_credentials"))
            #expect(neither.output.contains("HTTP/1.1 403") && neither.output.contains("undeclared"), "\(neither.output)")

            // A client that may use neither adapter gets no token: not even a tunnel.
            let narrow = try await curl(Self.tunnelled(broker, tokenURL, form: "grant_type=\(Self.jwtBearer)&assertion=x",
                                                       token: Broker.narrowShareToken).map { $0.replacingOccurrences(of: "test-app;", with: "test-narrow;") })
            #expect(narrow.output.contains("HTTP/1.1 403") && !narrow.output.contains("access_token"), "\(narrow.output)")

            let shares = try await broker.records().filter { $0.kind == "share" }
            #expect(shares.count == 3, "the send and the two Google calls, not the sign-in: \(shares.map(\.body))")
            #expect(shares.filter { $0.body.contains(#""provider":"fcm""#) }.count == 1)
            #expect(shares.filter { $0.body.contains(#""provider":"google-login""#) && $0.body.contains(#""subject":"u1""#) }.count == 2)
            let metrics = try await broker.call("GET", "/metrics", token: nil)
            #expect(metrics.text.contains(#"sharebroker_sdk_tokens_total{provider="fcm"} 1"#), "\(metrics.text)")
        }
    }

    @Test func alibabaParametersInTheQueryOrAFormBodyWithEitherSignaturesParameters() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            try await broker.grant("u1", provider: "alibaba-cloudauth", purpose: "essential.legal_obligation", separate: true)
            let form = "IdentifyNum=11010519491231002X&ParamType=normal&UserName=%E5%BC%A0%E4%B8%89"
            let base = [("X-Share-Subject", "u1"), ("x-acs-action", "Id2MetaVerify")]
            // alibabacloud-cloudauth20190307 ≥ 3.3: a form body, its own ACS3 headers (so the broker's
            // token goes in Proxy-Authorization, as for any SDK that signs into Authorization).
            let v3 = try await broker.call("POST", "/v1/proxy/alibaba-cloudauth/", token: nil, headers: base + [
                ("Proxy-Authorization", "Bearer \(Broker.shareToken)"),
                ("Content-Type", "application/x-www-form-urlencoded"), ("x-acs-version", "2019-03-07"),
                ("x-acs-signature-nonce", "sdk-own"), ("Authorization", "ACS3-HMAC-SHA256 Credential=LTAIsdkOwn,SignedHeaders=host,Signature=00")],
                body: form)
            #expect(v3.status == 200 && v3.json["Code"] as? String == "200", "\(v3.text)")
            let first = try #require(broker.simulator("alibaba-cloudauth").requests().last)
            #expect(first.header("Authorization")?.hasPrefix("ACS3-HMAC-SHA256 Credential=\(credentials.alibabaAccessKeyID),") == true)
            #expect(first.formParameter("UserName") == "张三" && first.query == nil, "the form goes on as a form")

            // aliyun-python-sdk-core: the V1 signature's parameters in the query, dropped; the broker signs ACS3.
            let v1Query = "Version=2019-03-07&Action=Id2MetaVerify&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-01-01T00%3A00%3A00Z"
                + "&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=abc&AccessKeyId=LTAIsdkOwn&Signature=c2ln"
            let v1 = try await broker.call("POST", "/v1/proxy/alibaba-cloudauth/?" + v1Query, headers: base + [
                ("Content-Type", "application/x-www-form-urlencoded")], body: form)
            #expect(v1.status == 200 && v1.json["Code"] as? String == "200", "\(v1.text)")
            let second = try #require(broker.simulator("alibaba-cloudauth").requests().last)
            #expect(second.query == nil && !second.contains("LTAIsdkOwn"), "none of the SDK's signature goes on")
            let record = try #require(try await broker.records().filter { $0.kind == "share" }.last)
            #expect(record.body.contains(#""path":"Signature""#) && record.body.contains(#""reason":"credential_field""#), "\(record.body)")

            // A body that is not a form is refused before anything is sent, and the record names the subject.
            let json = try await broker.call("POST", "/v1/proxy/alibaba-cloudauth/", headers: base + [("Content-Type", "application/json")],
                                             body: #"{"UserName":"张三"}"#)
            #expect(json.status == 415 && json.json["code"] as? String == "unsupported_media_type", "\(json.text)")
            let refused = try #require(try await broker.records().filter { $0.kind == "share" }.last)
            #expect(refused.body.contains(#""subject":"u1""#) && refused.body.contains(#""decision":"blocked""#), "\(refused.body)")
            let history = try await broker.call("GET", "/v1/shares?subject=u1&limit=10", token: Broker.complianceToken)
            #expect(history.text.contains("unsupported_media_type"), "the refused share is in the subject's history: \(history.text)")
            // An id the broker has no record of is named only by its keyed fingerprint, as at the subject step.
            let stranger = try await broker.call("POST", "/v1/proxy/alibaba-cloudauth/", headers: [
                ("X-Share-Subject", "u-13800000000"), ("x-acs-action", "Id2MetaVerify"), ("Content-Type", "application/json")], body: "{}")
            #expect(stranger.status == 415)
            let unknown = try #require(try await broker.records().filter { $0.kind == "share" }.last)
            #expect(!unknown.body.contains("13800000000") && unknown.body.contains(#""subject":"~"#), "\(unknown.body)")
            let found = try await broker.call("GET", "/v1/shares?unknown_subject=u-13800000000&limit=10", token: Broker.complianceToken)
            #expect(found.text.contains("unsupported_media_type"), "\(found.text)")
        }
    }

    @Test func anAdapterThatSaysV1IsSignedV1AndTheSimulatorRefusesAnotherSecret() async throws {
        let policy = try loadRepositoryPolicy(editing: ["adapters/alibaba-cloudauth.yaml": {
            $0.replacingOccurrences(of: "type: acs3_hmac_sha256", with: "type: acs_v1_hmac_sha1\n  region_id: cn-hangzhou")
        }])
        try await withBroker(policy: policy) { broker in
            let credentials = broker.simulators.credentials
            try await broker.grant("u1", provider: "alibaba-cloudauth", purpose: "essential.legal_obligation", separate: true)
            let allowed = try await broker.call("POST", "/v1/proxy/alibaba-cloudauth/", headers: [
                ("X-Share-Subject", "u1"), ("x-acs-action", "Id2MetaVerify"), ("Content-Type", "application/x-www-form-urlencoded")],
                body: "IdentifyNum=11010519491231002X&ParamType=normal&UserName=%E5%BC%A0%E4%B8%89")
            #expect(allowed.status == 200 && allowed.json["Code"] as? String == "200", "\(allowed.text)")
            let request = try #require(broker.simulator("alibaba-cloudauth").requests().last)
            #expect(request.queryParameter("SignatureMethod") == "HMAC-SHA1" && request.queryParameter("AccessKeyId") == credentials.alibabaAccessKeyID
                    && request.queryParameter("Action") == "Id2MetaVerify" && request.queryParameter("RegionId") == "cn-hangzhou")
            #expect(request.header("Authorization") == nil)

            // The same request signed with another secret (and a fresh nonce): refused, as Alibaba refuses it.
            func signed(secret: String, nonce: String) -> String {
                let query = (request.query ?? "").split(separator: "&").filter {
                    !$0.hasPrefix("Signature=") && !$0.hasPrefix("SignatureNonce=")
                }.joined(separator: "&") + "&SignatureNonce=\(nonce)"
                let form = String(decoding: request.body, as: UTF8.self)
                let signature = ACSV1Signer.signature(method: "POST", query: query, form: form, secret: secret)
                return query + "&Signature=" + PercentEncoding.encode(signature)
            }
            func send(_ query: String) async throws -> UpstreamResponse {
                try await broker.client.send(UpstreamRequest(
                    method: "POST", url: broker.simulator("alibaba-cloudauth").baseURL + "/?" + query,
                    headers: [HTTPHeaderLine("Content-Type", "application/x-www-form-urlencoded")], body: request.body))
            }
            let wrong = try await send(signed(secret: "not-" + credentials.alibabaAccessKeySecret, nonce: "n-1"))
            #expect(wrong.status == 400 && wrong.json["Code"] as? String == "SignatureDoesNotMatch", "\(wrong.text)")
            let right = try await send(signed(secret: credentials.alibabaAccessKeySecret, nonce: "n-2"))
            #expect(right.status == 200 && right.json["Code"] as? String == "200", "the check itself is sound: \(right.text)")
        }
    }
}

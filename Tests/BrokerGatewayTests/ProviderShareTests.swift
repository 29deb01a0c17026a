import BrokerCurl
import BrokerSQLite
import BrokerTesting
import Foundation
import Testing

/// For each provider, through the real server, real simulators and a real SQLite file:
/// allowed shares arrive intact, stripped fields never arrive, blocked shares send nothing,
/// and every decision is in a verifiable log.
@Suite(.serialized) struct ProviderShareTests {
    static let push = "essential.service.notifications.push"

    // MARK: huawei-push

    @Test func huaweiAllowedArrivesIntactWithTheBrokersToken() async throws {
        try await withBroker { broker in
            try await broker.putSubject("u1", #"{"birth_date":"1990-05-01"}"#)
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let body = #"{"validate_only":false,"message":{"token":["AAA","BBB"],"notification":{"title":"Hi Ann","body":"Parcel"},"android":{"ttl":"86400s"}}}"#
            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1"),
                                                           ("Cookie", "session=secret"), ("X-Trace", "t1")],
                                                 body: body)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.headerValue("X-Share-Decision") == "allowed")
            let shareID = try #require(response.headerValue("X-Share-Id"))
            #expect(response.json["code"] as? String == "80000000")

            let received = broker.simulator("huawei-push").requests()
            #expect(received.count == 1)
            let request = try #require(received.first)
            #expect(request.path == "/v1/10086/messages:send")
            #expect(try JSONSerialization.jsonObject(with: Data(request.body)) as? NSDictionary
                    == JSONSerialization.jsonObject(with: Data(body.utf8)) as? NSDictionary)
            #expect(request.header("Authorization")?.hasPrefix("Bearer ") == true)
            #expect(request.header("Authorization") != "Bearer \(Broker.shareToken)")
            #expect(request.header("Cookie") == nil && request.header("X-Trace") == nil && request.header("X-Share-Subject") == nil)
            #expect(broker.simulator("huawei-push").tokenRequests().count == 1)

            let records = try await broker.records()
            #expect(records.map(\.kind) == ["share", "outcome"])
            #expect(records[0].body.contains(shareID) && records[0].body.contains("\"allowed\""))
            #expect(!records[0].body.contains("AAA") && !records[0].body.contains("Ann"), "no personal value in the log")
        }
    }

    @Test func huaweiContentWithoutConsentIsStrippedBeforeItLeaves() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                                 body: #"{"message":{"token":["AAA"],"notification":{"title":"Hi Ann","body":"Your parcel"}}}"#)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.headerValue("X-Share-Decision") == "redacted")
            let request = try #require(broker.simulator("huawei-push").requests().first)
            #expect(!request.contains("Ann") && !request.contains("parcel"))
            #expect(request.contains("AAA"))
        }
    }

    @Test func huaweiBlockedShareSendsNothing() async throws {
        try await withBroker { broker in
            try await broker.putSubject("u1")
            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                                 body: #"{"message":{"token":["AAA"]}}"#)
            #expect(response.status == 403)
            #expect(response.headerValue("Content-Type") == "application/problem+json")
            #expect(response.json["code"] as? String == "consent_missing")
            #expect(response.json["share_id"] as? String == response.headerValue("X-Share-Id"))
            let fields = response.json["fields"] as? [[String: Any]] ?? []
            #expect(fields.first?["path"] as? String == "message.token[0]")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
            #expect(broker.simulator("huawei-push").tokenRequests().isEmpty)
            let records = try await broker.records()
            #expect(records.count == 1 && records[0].body.contains("\"blocked\""))
        }
    }

    // MARK: oppo-push

    @Test func oppoFormWithEmbeddedMessage() async throws {
        try await withBroker { broker in
            let message = #"{"target_type":2,"target_value":"REG-1","notification":{"title":"Hi Ann","content":"Parcel"}}"#
            let form = "auth_token=forged&message=" + message.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")]
            let path = "/v1/proxy/oppo-push/server/v1/message/notification/unicast"

            // Blocked: no grant, nothing leaves.
            let blocked = try await broker.call("POST", path, headers: headers, body: form)
            #expect(blocked.status == 403)
            #expect(broker.simulator("oppo-push").requests().isEmpty)

            // Allowed: the broker's auth token replaces the caller's, the message arrives intact.
            try await broker.grant("u1", provider: "oppo-push", purpose: Self.push)
            let allowed = try await broker.call("POST", path, headers: headers, body: form)
            #expect(allowed.status == 200)
            #expect(allowed.json["code"] as? Int == 0, "\(allowed.text)")
            let request = try #require(broker.simulator("oppo-push").requests().last)
            #expect(request.formParameter("auth_token") != "forged")
            let sent = try JSONSerialization.jsonObject(with: Data((request.formParameter("message") ?? "").utf8)) as? NSDictionary
            #expect(sent == (try JSONSerialization.jsonObject(with: Data(message.utf8)) as? NSDictionary))
        }
    }

    @Test func oppoStrippedContentNeverArrives() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "oppo-push", purpose: Self.push, categories: ["user.device.push_token"])
            let message = #"{"target_type":2,"target_value":"REG-1","notification":{"title":"Hi Ann","content":"Parcel"}}"#
            let form = "message=" + message.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let response = try await broker.call("POST", "/v1/proxy/oppo-push/server/v1/message/notification/unicast",
                                                 headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                           ("X-Share-Subject", "u1")], body: form)
            #expect(response.headerValue("X-Share-Decision") == "redacted")
            let request = try #require(broker.simulator("oppo-push").requests().last)
            #expect(!request.contains("Ann") && !request.contains("Parcel"))
            #expect(request.contains("REG-1"))
        }
    }

    // MARK: amap-location

    @Test func amapLocationNeedsSeparateConsentAndGetsTheBrokersKey() async throws {
        try await withBroker { broker in
            let path = "/v1/proxy/amap-location/v3/geocode/regeo?location=116.481488,39.990464&key=stolen&extensions=base"
            // A grant without the location category at all: refused (the rounded form is location too).
            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", categories: ["user.device.ip_address"])
            let blocked = try await broker.call("GET", path, headers: [("X-Share-Subject", "u1")])
            #expect(blocked.status == 403)
            #expect(blocked.json["code"] as? String == "consent_missing")
            #expect(broker.simulator("amap-location").requests().isEmpty)

            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", separate: true)
            let allowed = try await broker.call("GET", path, headers: [("X-Share-Subject", "u1")])
            #expect(allowed.status == 200)
            #expect(allowed.json["status"] as? String == "1", "\(allowed.text)")
            let request = try #require(broker.simulator("amap-location").requests().last)
            #expect(request.queryParameter("location") == "116.481488,39.990464")
            #expect(request.queryParameter("key") == broker.simulators.credentials.amapKey)
            #expect(!request.contains("stolen"), "the caller's key was stripped")
        }
    }

    // MARK: tencent-faceid

    @Test func faceIDSignedAndSeparatelyConsented() async throws {
        try await withBroker { broker in
            let body = #"{"IdCard":"11010519491231002X","Name":"张三"}"#
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1"), ("X-TC-Action", "IdCardVerification")]
            try await broker.grant("u1", provider: "tencent-faceid", purpose: "essential.legal_obligation")
            let blocked = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: headers, body: body)
            #expect(blocked.json["code"] as? String == "separate_consent_required")
            #expect(broker.simulator("tencent-faceid").requests().isEmpty)

            try await broker.grant("u1", provider: "tencent-faceid", purpose: "essential.legal_obligation", separate: true)
            let allowed = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: headers, body: body)
            #expect(allowed.status == 200)
            let inner = allowed.json["Response"] as? [String: Any]
            #expect(inner?["Result"] as? String == "0", "\(allowed.text)")
            let request = try #require(broker.simulator("tencent-faceid").requests().last)
            #expect(request.header("Authorization")?.hasPrefix("TC3-HMAC-SHA256 Credential=") == true)
            #expect(request.header("X-TC-Action") == "IdCardVerification")
        }
    }

    @Test func faceIDFaceImageWithoutConsentIsStripped() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "tencent-faceid", purpose: "essential.legal_obligation",
                                   categories: ["user.name", "user.government_id.national_identification_number"],
                                   separate: true)
            let body = #"{"RuleId":"1","IdCard":"11010519491231002X","Name":"张三","ImageBase64":"aGVsbG8tZmFjZQ=="}"#
            let response = try await broker.call("POST", "/v1/proxy/tencent-faceid/",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1"),
                                                           ("X-TC-Action", "DetectAuth")], body: body)
            #expect(response.headerValue("X-Share-Decision") == "redacted", "\(response.text)")
            let request = try #require(broker.simulator("tencent-faceid").requests().last)
            #expect(!request.contains("aGVsbG8tZmFjZQ"))
            #expect((response.json["Response"] as? [String: Any])?["BizToken"] != nil, "\(response.text)")
        }
    }

    // MARK: wechat-login

    @Test func wechatCodeExchangeWithTheBrokersSecret() async throws {
        try await withBroker { broker in
            let path = "/v1/proxy/wechat-login/sns/oauth2/access_token?appid=mine&secret=leaked&code=CODE1&grant_type=authorization_code"
            let blocked = try await broker.call("GET", path, headers: [("X-Share-Subject", "u1")])
            #expect(blocked.status == 403)
            #expect(broker.simulator("wechat-login").requests().isEmpty)

            try await broker.grant("u1", provider: "wechat-login", purpose: "essential.service.authentication")
            let allowed = try await broker.call("GET", path, headers: [("X-Share-Subject", "u1")])
            #expect(allowed.status == 200)
            #expect(allowed.json["openid"] as? String != nil, "\(allowed.text)")
            let request = try #require(broker.simulator("wechat-login").requests().last)
            #expect(request.queryParameter("secret") == broker.simulators.credentials.wechatAppSecret)
            #expect(request.queryParameter("appid") == broker.simulators.credentials.wechatAppID)
            #expect(!request.contains("leaked"))
            #expect(request.queryParameter("code") == "CODE1")
        }
    }

    // MARK: the log

    @Test func everyDecisionIsLoggedAndTheChainVerifiesUntilARowIsTampered() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let path = "/v1/proxy/huawei-push/v1/10086/messages:send"
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]
            _ = try await broker.call("POST", path, headers: headers, body: #"{"message":{"token":["A"]}}"#)          // allowed
            _ = try await broker.call("POST", path, headers: headers, body: #"{"message":{"token":["A"],"notification":{"title":"x"}}}"#) // redacted
            _ = try await broker.call("POST", path, headers: headers, body: #"{"message":{"token":["A"]},"x":1}"#)   // blocked
            _ = try await broker.call("POST", path, headers: headers, body: #"{"a":1,"a":2}"#)                       // malformed
            _ = try await broker.call("POST", path, token: nil, headers: headers, body: "{}")                        // unauthenticated: not a share
            let records = try await broker.records()
            let shares = records.filter { $0.kind == "share" }
            #expect(shares.count == 4)
            #expect(records.filter { $0.kind == "outcome" }.count == 2)
            for verdict in ["\"allowed\"", "\"redacted\"", "\"blocked\""] {
                #expect(shares.contains { $0.body.contains(verdict) })
            }
            #expect(shares.contains { $0.body.contains("malformed_body") })
            let intact = try await SQLiteStore.verify(path: broker.databasePath)
            #expect(intact.isIntact && intact.records == Int64(records.count))

            try tamper(broker.databasePath, seq: 2)
            let tampered = try await SQLiteStore.verify(path: broker.databasePath)
            #expect(tampered.firstBad?.seq == 2)
        }
    }
}

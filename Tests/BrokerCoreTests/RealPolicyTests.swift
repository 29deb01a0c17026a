import BrokerCore
import Foundation
import Testing

/// Scenarios on the repository's own adapters and contracts, as a caller would send them.
struct RealPolicyTests {
    let engine = PolicyEngine(bundle: Policies.real, homeRegion: "CN")
    let decoder = StrictPayloadDecoder()
    let caller = Caller(id: "svc", roles: [.share],
                        providers: ["huawei-push", "oppo-push", "amap-location", "tencent-faceid", "wechat-login"])

    func grant(_ provider: String, _ purpose: String, _ categories: [String]? = nil, separate: Bool = false) -> Grant {
        Grant.make("g-\(provider)", provider: provider, purpose: purpose, categories: categories, separate: separate)
    }

    @Test func huaweiPushStripsContentWithoutConsentButSendsTheToken() throws {
        let body = #"{"validate_only":false,"message":{"token":["AAA"],"notification":{"title":"Ann, your order","body":"shipped"},"android":{"ttl":"86400s","notification":{"title":"Ann","click_action":{"type":3}}}}}"#
        let request = ShareRequest(caller: caller, provider: "huawei-push",
                                   target: .http(method: "POST", path: "/v1/10086/messages:send", query: nil),
                                   contentType: "application/json;charset=utf-8", body: json(body), subject: "u1", time: now)
        let context = SubjectContext(subject: nil, grants: [grant("huawei-push", "essential.service.notifications.push",
                                                                  ["user.device.push_token"])])
        let decision = engine.evaluate(request, context: context, decoder: decoder)
        #expect(decision.verdict == .redacted, "\(decision.message ?? "")")
        let stripped = decision.fields.filter { $0.action == .stripped }.map(\.path.description)
        #expect(stripped == ["message.notification.title", "message.notification.body", "message.android.notification.title"])
        let forwarded = String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self)
        #expect(!forwarded.contains("Ann") && forwarded.contains("AAA") && forwarded.contains("86400s"))
        #expect(decision.fields.first { $0.path.description == "message.token[0]" }?.revocationKey == true)
    }

    @Test func oppoFormWithAnEmbeddedJSONMessage() throws {
        let message = #"{"target_type":2,"target_value":"REG1","notification":{"title":"Hi Ann","content":"x"}}"#
        let form = "auth_token=forged&message=" + message.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let request = ShareRequest(caller: caller, provider: "oppo-push",
                                   target: .http(method: "POST", path: "/server/v1/message/notification/unicast", query: nil),
                                   contentType: "application/x-www-form-urlencoded", body: json(form), subject: "u1", time: now)
        let context = SubjectContext(subject: nil, grants: [grant("oppo-push", "essential.service.notifications.push",
                                                                  ["user.device.push_token"])])
        let decision = engine.evaluate(request, context: context, decoder: decoder)
        #expect(decision.verdict == .redacted)
        let byPath = Dictionary(uniqueKeysWithValues: decision.fields.map { ($0.path.description, $0) })
        #expect(byPath["auth_token"]?.reason == .credentialField)
        #expect(byPath["message.target_value"]?.action == .sent)
        #expect(byPath["message.notification.title"]?.action == .stripped)
        let forwarded = String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self)
        #expect(!forwarded.contains("forged") && !forwarded.contains("Ann") && forwarded.contains("REG1"))
    }

    @Test func faceIDNeedsSeparateConsentForTheIDNumber() {
        let body = #"{"IdCard":"110101199003071234","Name":"张三"}"#
        let request = ShareRequest(caller: caller, provider: "tencent-faceid", target: .http(method: "POST", path: "/", query: nil),
                                   headers: [HeaderField("X-TC-Action", "IdCardVerification")],
                                   contentType: "application/json", body: json(body), subject: "u1", time: now)
        let plain = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant("tencent-faceid", "essential.legal_obligation")]),
                                    decoder: decoder)
        #expect(plain.verdict == .blocked)
        #expect(plain.code == .separateConsentRequired)
        #expect(plain.deniedFields.map(\.path.description) == ["IdCard"])
        let separate = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant("tencent-faceid", "essential.legal_obligation", separate: true)]),
                                       decoder: decoder)
        #expect(separate.verdict == .allowed)
        #expect(separate.operation == "id_card_verification")
        #expect(separate.forwardedHeaders == [HeaderField("x-tc-action", "IdCardVerification")])
    }

    @Test func faceIDActionSelectsTheOperation() {
        let request = ShareRequest(caller: caller, provider: "tencent-faceid", target: .http(method: "POST", path: "/", query: nil),
                                   headers: [HeaderField("X-TC-Action", "DeleteEverything")],
                                   contentType: "application/json", body: json("{}"), subject: "u1", time: now)
        #expect(engine.evaluate(request, context: .knownWithoutGrants, decoder: decoder).code == .unknownOperation)
    }

    @Test func amapLocationInTheQuery() {
        let request = ShareRequest(caller: caller, provider: "amap-location",
                                   target: .http(method: "GET", path: "/v3/geocode/regeo", query: "location=116.481488,39.990464&extensions=base"),
                                   subject: "u1", time: now)
        let none = engine.evaluate(request, context: .knownWithoutGrants, decoder: decoder)
        #expect(none.code == .consentMissing)
        let notSeparate = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant("amap-location", "functional.service")]),
                                          decoder: decoder)
        // Without separate consent the point goes rounded (the adapter's minimise), not precise.
        #expect(notSeparate.verdict == .allowed)
        #expect(notSeparate.fields.first?.action == .minimised && notSeparate.fields.first?.value == .string("116.48,39.99"))
        #expect(notSeparate.fields.first?.minimisedFrom?.reason == .separateConsentRequired)
        let ipOnly = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant("amap-location", "functional.service", ["user.device.ip_address"])]),
                                     decoder: decoder)
        #expect(ipOnly.code == .consentMissing)
        let ok = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant("amap-location", "functional.service", separate: true)]),
                                 decoder: decoder)
        #expect(ok.verdict == .allowed)
        #expect(ok.fields.map(\.path.description) == ["location", "extensions"])
    }

    @Test func wechatCodeExchangeNeverForwardsACallersSecret() {
        let request = ShareRequest(caller: caller, provider: "wechat-login",
                                   target: .http(method: "GET", path: "/sns/oauth2/access_token",
                                                 query: "appid=wx1&secret=leaked&code=CODE&grant_type=authorization_code"),
                                   subject: "u1", time: now)
        let decision = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant("wechat-login", "essential.service.authentication")]),
                                       decoder: decoder)
        #expect(decision.verdict == .allowed)
        #expect(decision.removals(in: .query) == [FieldPath(keys: "appid"), FieldPath(keys: "secret")])
    }
}

import BrokerCore
import Foundation
import Testing

/// An adapter's `subject: true` body field (issue 28, item 5): the subject of a share named in the
/// body by a client that can add no header and no proxy user name (aioapns), read and removed by the
/// broker. On the repository's own APNs adapter.
struct SubjectFieldTests {
    let engine = PolicyEngine(bundle: Policies.real, homeRegion: "CN")
    let caller = Caller(id: "svc", roles: [.share], providers: ["apns"])
    let token = String(repeating: "ab", count: 32)

    func request(_ body: String, subject: String? = nil) -> ShareRequest {
        ShareRequest(caller: caller, provider: "apns", target: .http(method: "POST", path: "/3/device/\(token)", query: nil),
                     headers: [HeaderField("apns-topic", "com.example.app")], contentType: "application/json",
                     body: json(body), subject: subject, time: now)
    }

    var granted: SubjectContext {
        SubjectContext(subject: nil, grants: [Grant.make("g-apns", provider: "apns", purpose: "essential.service.notifications.push",
                                                         subject: "u-7", crossBorder: true)])
    }

    @Test func theBodyNamesTheSubjectAndNeverReachesTheProvider() throws {
        let prepared = engine.prepare(request(#"{"aps":{"badge":1},"x-share-subject":"u-7"}"#), decoder: StrictPayloadDecoder())
        #expect(prepared.subject == "u-7", "the grants to read are the body's subject's")
        let decision = engine.decide(prepared, request(#"{"aps":{"badge":1},"x-share-subject":"u-7"}"#), context: granted)
        #expect(decision.verdict == .allowed, "\(decision.message ?? "")")
        #expect(decision.subject == "u-7")
        let field = try #require(decision.fields.first { $0.path.description == "x-share-subject" })
        #expect(field.action == .stripped && field.reason == .subjectField && !field.denied && field.category == nil)
        let forwarded = String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self)
        #expect(!forwarded.contains("u-7") && !forwarded.contains("x-share-subject") && forwarded.contains("badge"))
    }

    @Test func theHeaderStillWorksAndBothMustAgree() {
        let decoder = StrictPayloadDecoder()
        let header = engine.evaluate(request(#"{"aps":{"badge":1}}"#, subject: "u-7"), context: granted, decoder: decoder)
        #expect(header.verdict == .allowed && header.subject == "u-7")
        let agree = engine.evaluate(request(#"{"aps":{"badge":1},"x-share-subject":"u-7"}"#, subject: "u-7"), context: granted, decoder: decoder)
        #expect(agree.verdict == .allowed)
        let differ = engine.evaluate(request(#"{"aps":{"badge":1},"x-share-subject":"u-8"}"#, subject: "u-7"), context: granted, decoder: decoder)
        #expect(differ.code == .subjectMismatch && differ.code?.httpStatus == 400 && differ.step == 4)
    }

    @Test func aSubjectFieldOutsideTheRuleOrMissingIsRefused() {
        let decoder = StrictPayloadDecoder()
        for body in [#"{"aps":{},"x-share-subject":7}"#, #"{"aps":{},"x-share-subject":"a b"}"#, #"{"aps":{},"x-share-subject":""}"#] {
            let decision = engine.evaluate(request(body), context: granted, decoder: decoder)
            #expect(decision.code == .invalidSubject, "\(body)")
            #expect(decision.subject == nil, "an invalid id is never recorded")
        }
        let missing = engine.evaluate(request(#"{"aps":{"badge":1}}"#), context: granted, decoder: decoder)
        #expect(missing.code == .subjectMissing)
        #expect(missing.message?.contains("x-share-subject") == true)
    }

    @Test func aSubjectFieldIsOnePlainBodyKeyAndTakesNothingElse() {
        func issues(_ declaration: String, section: String = "fields") -> [String] {
            SDKShapePolicyTests.issues(editing: "adapters/apns.yaml") {
                $0.replacingOccurrences(of: "      x-share-subject:            { subject: true }\n", with: "")
                    .replacingOccurrences(of: "    \(section):\n", with: "    \(section):\n      \(declaration)\n")
            }
        }
        #expect(issues("x-share-subject: { subject: true }").isEmpty)
        #expect(issues("who[*]: { subject: true }").contains { $0.contains("a subject field is one plain key path") })
        #expect(issues("who: { subject: true, category: user.device.push_token }").contains { $0.contains("a subject field is one plain key path") })
        #expect(issues("who: { subject: true, pattern: 'u-[0-9]+' }").contains { $0.contains("takes nothing else") })
        #expect(issues("apns-subject: { subject: true }", section: "headers").contains { $0.contains("a subject field is one plain key path") })
        #expect(issues("who: { subject: true }\n      whom: { subject: true }").contains { $0.contains("declares 2 subject fields") })
    }

    /// What else an APNs client sends as APNs takes it: no Content-Type (`content_type_optional`).
    @Test func aBodyWithoutContentTypeIsTakenAsTheOperationsFormat() {
        var bare = request(#"{"aps":{"badge":1},"x-share-subject":"u-7"}"#)
        bare.contentType = nil
        #expect(engine.evaluate(bare, context: granted, decoder: StrictPayloadDecoder()).verdict == .allowed)
        bare.contentType = "text/plain"
        #expect(engine.evaluate(bare, context: granted, decoder: StrictPayloadDecoder()).code == .unsupportedMediaType)
    }

    /// `refusals:`: how the provider's own errors look, checked by `check`.
    @Test func refusalShapesAreChecked() {
        #expect(Policies.real.adapters["apns"]?.refusals == Adapter.RefusalShape(codeMember: "reason", echoHeaders: ["apns-id"]))
        func issues(_ shape: String) -> [String] {
            SDKShapePolicyTests.issues(editing: "adapters/apns.yaml") {
                $0.replacingOccurrences(of: "refusals: { code_member: reason, echo_headers: [apns-id] }", with: "refusals: \(shape)")
            }
        }
        #expect(issues("{ code_member: reason }").isEmpty)
        #expect(issues("{ code_member: detail }").contains { $0.contains("refusals: code_member must be") })
        #expect(issues("{ echo_headers: [X-Share-Id] }").contains { $0.contains("cannot echo x-share-id") })
        #expect(issues("{ echo_headers: [authorization] }").contains { $0.contains("cannot echo authorization") })
    }
}

import BrokerCore
import Foundation
import Testing

/// One row of the decision table.
struct DecisionCase: CustomStringConvertible, Sendable {
    var name: String
    var request: ShareRequest
    var context: SubjectContext = SubjectContext(subject: Subject(id: "u1"), grants: [])
    var verdict: ShareDecision.Verdict
    var code: ReasonCode?
    var step: Int?
    var description: String { name }
}

func pushRequest(caller: Caller? = pusher, provider: String = "demo-push", method: String = "POST",
                 path: String = "/v1/app1/send", contentType: String? = "application/json",
                 body: String = #"{"token":["t1","t2"],"title":"Hi Ann"}"#, subject: String? = "u1",
                 purpose: String? = "essential.service.notifications.push",
                 headers: [HeaderField] = [], time: Date = now) -> ShareRequest {
    ShareRequest(caller: caller, provider: provider, target: .http(method: method, path: path, query: nil),
                 headers: headers, contentType: contentType, body: json(body), subject: subject, purpose: purpose,
                 time: time)
}

let pushGrant = Grant.make("g-push")
let locationGrant = Grant.make("g-loc", purpose: "functional.service", separate: true)

let decisionTable: [DecisionCase] = [
    // 1. caller
    DecisionCase(name: "no token", request: pushRequest(caller: nil), verdict: .blocked, code: .unauthenticated, step: 1),
    DecisionCase(name: "caller without the share role",
                 request: pushRequest(caller: Caller(id: "acct", roles: [.grants], providers: ["demo-push"])),
                 verdict: .blocked, code: .callerNotPermitted, step: 1),
    DecisionCase(name: "caller not permitted for the provider",
                 request: pushRequest(caller: Caller(id: "maps", roles: [.share], providers: ["other"])),
                 verdict: .blocked, code: .callerNotPermitted, step: 1),
    DecisionCase(name: "caller not permitted for the named purpose",
                 request: pushRequest(caller: Caller(id: "p", roles: [.share], providers: ["demo-push"],
                                                     purposes: ["functional.service"])),
                 verdict: .blocked, code: .callerNotPermitted, step: 1),
    // 2. provider and operation
    DecisionCase(name: "unknown provider", request: pushRequest(provider: "ghost-push"),
                 verdict: .blocked, code: .unknownProvider, step: 2),
    DecisionCase(name: "unknown path", request: pushRequest(path: "/v1/app1/broadcast"),
                 verdict: .blocked, code: .unknownOperation, step: 2),
    DecisionCase(name: "wrong method", request: pushRequest(method: "PUT"),
                 verdict: .blocked, code: .unknownOperation, step: 2),
    // 3. body
    DecisionCase(name: "text body for a JSON operation", request: pushRequest(contentType: "text/plain"),
                 verdict: .blocked, code: .unsupportedMediaType, step: 3),
    DecisionCase(name: "latin-1 charset", request: pushRequest(contentType: "application/json; charset=iso-8859-1"),
                 verdict: .blocked, code: .unsupportedMediaType, step: 3),
    DecisionCase(name: "body over the limit",
                 request: pushRequest(body: #"{"title":""# + String(repeating: "x", count: 2_000_000) + #""}"#),
                 verdict: .blocked, code: .bodyTooLarge, step: 3),
    DecisionCase(name: "duplicate keys", request: pushRequest(body: #"{"token":["t1"],"token":["t2"]}"#),
                 verdict: .blocked, code: .malformedBody, step: 3),
    DecisionCase(name: "a declared header twice",
                 request: pushRequest(headers: [HeaderField("X-Demo-Trace", "a"), HeaderField("x-demo-trace", "b")]),
                 verdict: .blocked, code: .duplicateHeader, step: 3),
    DecisionCase(name: "more items than max_items",
                 request: pushRequest(body: #"{"token":["t1","t2","t3","t4","t5","t6"]}"#),
                 verdict: .blocked, code: .tooManyFields, step: 3),
    DecisionCase(name: "a non-personal field with a value outside its declared values",
                 request: pushRequest(body: #"{"token":["t1"],"priority":"Ann Li 13800138000"}"#),
                 context: SubjectContext(subject: nil, grants: [pushGrant]),
                 verdict: .blocked, code: .undeclaredValue, step: 7),
    DecisionCase(name: "a declared value passes",
                 request: pushRequest(body: #"{"token":["t1"],"priority":"high"}"#),
                 context: SubjectContext(subject: nil, grants: [pushGrant]), verdict: .allowed),
    DecisionCase(name: "a declared header with a byte that was not UTF-8",
                 request: pushRequest(headers: [HeaderField("X-Demo-Trace", "a\u{FFFD}b")]),
                 verdict: .blocked, code: .malformedHeader, step: 3),
    DecisionCase(name: "escaped duplicate key", request: pushRequest(body: #"{"title":"a","ti\u0074le":"b"}"#),
                 verdict: .blocked, code: .malformedBody, step: 3),
    // 4. subject and purpose
    DecisionCase(name: "no subject", request: pushRequest(subject: nil), verdict: .blocked, code: .subjectMissing, step: 4),
    DecisionCase(name: "a subject id outside the rule", request: pushRequest(subject: "13800138000 Ann"),
                 verdict: .blocked, code: .invalidSubject, step: 4),
    DecisionCase(name: "a subject id over 128 bytes", request: pushRequest(subject: String(repeating: "u", count: 129)),
                 verdict: .blocked, code: .invalidSubject, step: 4),
    DecisionCase(name: "the body's subject field names another subject",
                 request: pushRequest(body: #"{"token":["t1"],"meta":{"subject":"u2"}}"#),
                 verdict: .blocked, code: .subjectMismatch, step: 4),
    DecisionCase(name: "the body's subject field alone", request: pushRequest(body: #"{"token":["t1"],"meta":{"subject":"u1"}}"#, subject: nil),
                 context: SubjectContext(subject: Subject(id: "u1"), grants: [pushGrant]), verdict: .allowed),
    DecisionCase(name: "several purposes, none named", request: pushRequest(purpose: nil),
                 verdict: .blocked, code: .purposeMissing, step: 4),
    DecisionCase(name: "purpose the operation does not serve",
                 request: pushRequest(purpose: "essential.legal_obligation"),
                 verdict: .blocked, code: .purposeNotAllowed, step: 4),
    // 5. contract
    DecisionCase(name: "contract not yet in force", request: pushRequest(provider: "future-push"),
                 verdict: .blocked, code: .contractMissing, step: 5),
    DecisionCase(name: "contract expired", request: pushRequest(provider: "expired-push"),
                 verdict: .blocked, code: .contractExpired, step: 5),
    // 6. the subject: unknown (no record, no grant), a deleted account (before anything else about them), minors
    DecisionCase(name: "a subject the broker does not know", request: pushRequest(), context: .none,
                 verdict: .blocked, code: .subjectUnknown, step: 6),
    DecisionCase(name: "deleted account", request: pushRequest(),
                 context: SubjectContext(subject: Subject(id: "u1", minor: true, deletedAt: Date(timeIntervalSince1970: 0)),
                                         grants: [pushGrant]),
                 verdict: .blocked, code: .subjectDeleted, step: 6),
    DecisionCase(name: "minor by birth date", request: pushRequest(),
                 context: SubjectContext(subject: Subject(id: "u1", birthDate: CalendarDay("2010-03-02")),
                                         grants: [pushGrant]),
                 verdict: .blocked, code: .minorSubject, step: 6),
    DecisionCase(name: "minor by flag", request: pushRequest(),
                 context: SubjectContext(subject: Subject(id: "u1", minor: true), grants: [pushGrant]),
                 verdict: .blocked, code: .minorSubject, step: 6),
    DecisionCase(name: "18 today is not a minor", request: pushRequest(),
                 context: SubjectContext(subject: Subject(id: "u1", birthDate: CalendarDay("2008-03-01")),
                                         grants: [pushGrant]),
                 verdict: .allowed),
    // 7. fields
    DecisionCase(name: "undeclared field blocks", request: pushRequest(body: #"{"token":["t1"],"extra":1}"#),
                 context: SubjectContext(subject: nil, grants: [pushGrant]),
                 verdict: .blocked, code: .undeclaredField, step: 7),
    DecisionCase(name: "undeclared path segment key is undeclared",
                 request: pushRequest(body: #"{"token":["t1"],"a":{"b":1}}"#),
                 context: SubjectContext(subject: nil, grants: [pushGrant]),
                 verdict: .blocked, code: .undeclaredField, step: 7),
    DecisionCase(name: "no grant at all", request: pushRequest(),
                 verdict: .blocked, code: .consentMissing, step: 7),
    DecisionCase(name: "grant revoked", request: pushRequest(),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", revokedAt: now.addingTimeInterval(-1))]),
                 verdict: .blocked, code: .consentRevoked, step: 7),
    DecisionCase(name: "grant expired", request: pushRequest(),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", expiresAt: now.addingTimeInterval(-1))]),
                 verdict: .blocked, code: .consentExpired, step: 7),
    DecisionCase(name: "grant for another purpose does not count", request: pushRequest(),
                 context: SubjectContext(subject: nil, grants: [locationGrant]),
                 verdict: .blocked, code: .consentMissing, step: 7),
    DecisionCase(name: "grant of another subject does not count", request: pushRequest(),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", subject: "u2")]),
                 verdict: .blocked, code: .consentMissing, step: 7),
    DecisionCase(name: "cross-border contract without cross-border consent", request: pushRequest(provider: "overseas-push"),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", provider: "overseas-push")]),
                 verdict: .blocked, code: .crossBorderConsentRequired, step: 7),
    DecisionCase(name: "cross-border contract with cross-border consent", request: pushRequest(provider: "overseas-push"),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", provider: "overseas-push", crossBorder: true)]),
                 verdict: .allowed),
    DecisionCase(name: "a subject living in the provider's region needs no cross-border consent",
                 request: pushRequest(provider: "overseas-push"),
                 context: SubjectContext(subject: Subject(id: "u1", region: "US"),
                                         grants: [Grant.make("g1", provider: "overseas-push")]),
                 verdict: .allowed),
    // 8. verdicts with stripping
    DecisionCase(name: "content without consent is stripped",
                 request: pushRequest(),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", categories: ["user.device.push_token"])]),
                 verdict: .redacted),
    DecisionCase(name: "location outside the push scope is stripped",
                 request: pushRequest(body: #"{"token":["t1"],"where":"31.2,121.4"}"#),
                 context: SubjectContext(subject: nil, grants: [pushGrant]),
                 verdict: .redacted),
    DecisionCase(name: "sensitive location without separate consent is stripped",
                 request: pushRequest(body: #"{"where":"31.2,121.4"}"#, purpose: "functional.service"),
                 context: SubjectContext(subject: nil, grants: [Grant.make("g1", purpose: "functional.service")]),
                 verdict: .redacted),
    DecisionCase(name: "everything granted", request: pushRequest(),
                 context: SubjectContext(subject: nil, grants: [pushGrant]), verdict: .allowed),
    DecisionCase(name: "a phone number under a non-personal label blocks",
                 request: pushRequest(body: #"{"token":["t1"],"options":{"ref":"13812345678"}}"#),
                 context: SubjectContext(subject: nil, grants: [pushGrant]), verdict: .blocked,
                 code: .personalDataInNonPersonalField, step: 7),
]

struct PolicyEngineTests {
    let engine = PolicyEngine(bundle: Policies.demo, homeRegion: "CN", minorAge: 18)
    let decoder = StrictPayloadDecoder()

    @Test(arguments: decisionTable)
    func decides(_ row: DecisionCase) {
        let decision = engine.evaluate(row.request, context: row.context, decoder: decoder)
        #expect(decision.verdict == row.verdict, "\(row.name): \(decision.code?.rawValue ?? "-") \(decision.message ?? "")")
        #expect(decision.code == row.code, "\(row.name)")
        #expect(decision.step == row.step, "\(row.name)")
        if let code = row.code {
            #expect(decision.status == code.httpStatus)
        }
    }

    @Test func theTableReachesEveryReasonCode() {
        var reached: Set<ReasonCode> = []
        for row in decisionTable {
            let decision = engine.evaluate(row.request, context: row.context, decoder: decoder)
            if let code = decision.code { reached.insert(code) }
            for field in decision.fields { if let reason = field.reason, field.denied { reached.insert(reason) } }
        }
        reached.insert(.purposeOutOfContract)   // needs a changed contract: see purposeOutOfContract()
        reached.insert(.consentOutdated)        // needs privacy-policy versions: see PrivacyPolicyTests
        let missing = Set(ReasonCode.decisionCodes).subtracting(reached)
        #expect(missing.isEmpty, "unreached: \(missing.map(\.rawValue).sorted())")
    }

    /// The contract loses a purpose the adapter still serves (a contract change).
    @Test func purposeOutOfContract() {
        var bundle = Policies.demo
        bundle.contracts["demo-push"]?.purposes["functional.service"] = nil
        let engine = PolicyEngine(bundle: bundle)
        let decision = engine.evaluate(pushRequest(body: #"{"where":"1,2"}"#, purpose: "functional.service"),
                                       context: SubjectContext(subject: nil, grants: [locationGrant]), decoder: decoder)
        #expect(decision.code == .purposeOutOfContract)
        #expect(decision.step == 5)
    }

    // MARK: The order of the steps

    /// Each request fails two steps; the earlier one must decide.
    @Test func earlierStepsWin() {
        let minor = SubjectContext(subject: Subject(id: "u1", minor: true), grants: [])
        let cases: [(ShareRequest, SubjectContext, ReasonCode)] = [
            (pushRequest(caller: nil, provider: "ghost-push"), .none, .unauthenticated),          // 1 before 2
            (pushRequest(provider: "ghost-push", body: "{"), .none, .unknownProvider),           // 2 before 3
            (pushRequest(path: "/nope", contentType: "text/plain"), .none, .unknownOperation),    // 2 before 3
            (pushRequest(contentType: "text/plain", subject: nil), .none, .unsupportedMediaType), // 3 before 4
            (pushRequest(body: "{,}", subject: nil), .none, .malformedBody),                      // 3 before 4
            (pushRequest(subject: nil, purpose: "nope"), .none, .subjectMissing),                 // 4 before 4b
            (pushRequest(provider: "expired-push", purpose: nil), .none, .purposeMissing),        // 4 before 5
            (pushRequest(provider: "expired-push"), minor, .contractExpired),                     // 5 before 6
            (pushRequest(body: #"{"extra":1}"#), minor, .minorSubject),                           // 6 before 7
        ]
        for (request, context, code) in cases {
            let decision = engine.evaluate(request, context: context, decoder: decoder)
            #expect(decision.code == code, "expected \(code), got \(decision.code?.rawValue ?? "nil")")
        }
    }

    @Test func mediaTypeIsCheckedBeforeSize() {
        let big = String(repeating: "x", count: 2_000_000)
        let decision = engine.evaluate(pushRequest(contentType: "text/plain", body: big), context: .knownWithoutGrants, decoder: decoder)
        #expect(decision.code == .unsupportedMediaType)
    }

    // MARK: Field decisions

    @Test func everyDeniedFieldIsListedAndTheFirstBlockingOneNamesTheCode() {
        let body = #"{"token":["t1","t2"],"title":"Hi","surprise":true,"where":"1,2"}"#
        let decision = engine.evaluate(pushRequest(body: body), context: .knownWithoutGrants, decoder: decoder)
        #expect(decision.verdict == .blocked)
        #expect(decision.code == .consentMissing)
        let denied = decision.deniedFields.map { "\($0.path)=\($0.reason!.rawValue)" }
        #expect(denied == ["token[0]=consent_missing", "token[1]=consent_missing", "title=consent_missing",
                           "surprise=undeclared_field", "where=out_of_contract_scope"])
        #expect(decision.fields.allSatisfy { $0.action == .blocked })
        #expect(decision.reasons == [.consentMissing, .undeclaredField, .outOfContractScope])
    }

    @Test func allowedShareCarriesGrantsContractAndAdapterRevisions() {
        let decision = engine.evaluate(pushRequest(headers: [HeaderField("X-Demo-Trace", "abc"), HeaderField("Cookie", "s=1"),
                                                              HeaderField("User-Agent", "curl")]),
                                       context: SubjectContext(subject: nil, grants: [pushGrant]), decoder: decoder)
        #expect(decision.verdict == .allowed)
        #expect(decision.grantIDs == ["g-push"])
        #expect(decision.contractVersion == "v7")
        #expect(decision.contractHash?.count == 64)
        #expect(decision.adapterHash?.count == 64)
        #expect(decision.purpose == "essential.service.notifications.push")
        #expect(decision.operation == "send")
        #expect(decision.pathParameters.map(\.value) == ["app1"])
        // Only the declared header is a field and is forwarded; cookies and the rest never are.
        #expect(decision.forwardedHeaders == [HeaderField("x-demo-trace", "abc")])
        let tokens = decision.fields.filter { $0.category == "user.device.push_token" }
        #expect(tokens.count == 2 && tokens.allSatisfy { $0.revocationKey && $0.grantID == "g-push" })
        let path = decision.fields.first { $0.location == .path }
        #expect(path?.category == "system.operations" && path?.grantID == nil && path?.action == .sent)
    }

    @Test func strippedFieldsAreLeftOutOfTheForwardedBody() throws {
        let context = SubjectContext(subject: nil, grants: [Grant.make("g1", categories: ["user.device.push_token"])])
        let decision = engine.evaluate(pushRequest(body: #"{"token":["t1"],"title":"Hi Ann","options":{"ttl":5,"note":"for Ann"}}"#),
                                       context: context, decoder: decoder)
        #expect(decision.verdict == .redacted)
        _ = try #require(decision.body)
        let forwarded = String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self)
        #expect(!forwarded.contains("Ann"))
        #expect(forwarded.contains("t1") && forwarded.contains("ttl"))
        #expect(decision.fields.first { $0.path.description == "options.ttl" }?.category == "system.operations")
        #expect(decision.fields.first { $0.path.description == "options.note" }?.reason == .consentMissing)
    }

    @Test func undeclaredFieldsAreStrippedWhenTheOperationSaysSo() throws {
        let form = "token=t1&surprise=1&message=" + "{\"title\":\"Hi Ann\",\"to\":\"t2\",\"x\":1}"
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let request = ShareRequest(caller: pusher, provider: "demo-push", target: .http(method: "POST", path: "/v1/form", query: nil),
                                   contentType: "application/x-www-form-urlencoded", body: json(form), subject: "u1",
                                   time: now)
        let decision = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [Grant.make("g1", categories: ["user.device.push_token"])]),
                                       decoder: decoder)
        #expect(decision.verdict == .redacted)
        let actions = Dictionary(uniqueKeysWithValues: decision.fields.map { ($0.path.description, $0.action) })
        #expect(actions == ["token": .sent, "surprise": .stripped, "message.title": .stripped, "message.to": .sent,
                            "message.x": .stripped])
        _ = try #require(decision.body)
        let forwarded = String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self)
        #expect(!forwarded.contains("Ann") && !forwarded.contains("surprise"))
        #expect(forwarded.contains("t2"))
    }

    @Test func aCallersCredentialIsDroppedNotForwarded() {
        let request = ShareRequest(caller: pusher, provider: "demo-push",
                                   target: .http(method: "GET", path: "/v1/lookup", query: "at=31.2%2C121.4&key=stolen"),
                                   subject: "u1", time: now)
        let decision = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [locationGrant]), decoder: decoder)
        #expect(decision.verdict == .allowed)
        #expect(decision.removals(in: .query) == [FieldPath(keys: "key")])
        #expect(decision.fields.first { $0.path == FieldPath(keys: "at") }?.grantID == "g-loc")
    }

    @Test func aDeniedPathParameterAlwaysBlocks() {
        // A path segment cannot be stripped from a URL, whatever its on_deny says.
        let request = pushRequest(path: "/3/device/tok%2B1", body: #"{"title":"Hi"}"#)
        let denied = engine.evaluate(request, context: .knownWithoutGrants, decoder: decoder)
        #expect(denied.verdict == .blocked)
        #expect(denied.code == .consentMissing)
        #expect(denied.deniedFields.first?.location == .path)
        let allowed = engine.evaluate(request, context: SubjectContext(subject: nil, grants: [pushGrant]), decoder: decoder)
        #expect(allowed.verdict == .allowed)
        #expect(allowed.pathParameters.map(\.value) == ["tok+1"])
    }
}

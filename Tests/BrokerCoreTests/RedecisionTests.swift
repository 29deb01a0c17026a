import BrokerCore
import BrokerFields
import Foundation
import Testing

/// `PolicyEngine.redecide` (the dry run's engine): a logged share decided again.
@Suite struct RedecisionTests {
    let engine = PolicyEngine(bundle: Policies.real)
    let caller = Caller(id: "svc", roles: [.share], providers: Set(Policies.real.adapters.keys))
    static let push = "essential.service.notifications.push"

    func huawei(_ body: String) -> ShareRequest {
        ShareRequest(caller: caller, provider: "huawei-push", target: .http(method: "POST", path: "/v1/10086/messages:send", query: nil),
                     contentType: "application/json", body: Array(body.utf8), subject: "u1", time: now)
    }

    func recorded(_ decision: ShareDecision, time: Date = now) -> RecordedShare {
        RecordedShare(shareID: "s1", provider: decision.provider, operation: decision.operation ?? "", purpose: decision.purpose ?? "",
                      subject: "u1", time: time, verdict: decision.verdict, code: decision.code,
                      fields: decision.fields.map(RecordedShare.Field.init))
    }

    @Test func loggedPathsParseBackAndHiddenKeysMatchOnlyWildcards() throws {
        #expect(LoggedPath.parse("message.token[0]") == FieldPath([.key(ExactKey("message")), .key(ExactKey("token")), .index(0)]))
        #expect(LoggedPath.parse(#"a["x.y"].b"#) == FieldPath([.key(ExactKey("a")), .key(ExactKey("x.y")), .key(ExactKey("b"))]))
        #expect(LoggedPath.parse(#"["q\"uote"]"#) == FieldPath([.key(ExactKey("q\"uote"))]))
        #expect(LoggedPath.parse("<undeclared:0123456789abcdef>") == nil)
        #expect(LoggedPath.parse("a..b") == nil && LoggedPath.parse("a[x]") == nil)
        let hidden = try #require(LoggedPath.parse("message.android.notification.<k:0123456789ab>"))
        let schema = try #require(Policies.real.adapters["huawei-push"]?.operation(named: "send")).schema(.body)
        #expect(schema.match(hidden)?.pattern.description == "message.android.notification.*")
    }

    /// Issue 23, item 4: a folded entry's path is its declaration's pattern, judged like each occurrence.
    @Test func foldedPatternsParseLikeTheirOccurrences() throws {
        #expect(LoggedPath.parse("message.token[*]") == FieldPath([.key(ExactKey("message")), .key(ExactKey("token")), .index(0)]))
        #expect(LoggedPath.parse("<undeclared>") == nil)
        #expect(LoggedPath.parse(#"a["*"]"#) == FieldPath([.key(ExactKey("a")), .key(ExactKey("*"))]), "a key that is literally *")
        let schema = try #require(Policies.real.adapters["huawei-push"]?.operation(named: "send")).schema(.body)
        let wildcard = try #require(LoggedPath.parse("message.android.notification.*"))
        #expect(schema.match(wildcard)?.pattern.description == "message.android.notification.*", "not a literal key's declaration")
        let nested = try #require(LoggedPath.parse("message.android.notification.buttons[*].*"))
        #expect(schema.match(nested)?.pattern.description == "message.android.notification.buttons[*].*")
    }

    /// The log's folding (LoggedField.folding, in BrokerService) as the dry run reads it back.
    func folded(_ decision: ShareDecision) -> RecordedShare {
        var share = recorded(decision)
        func key(_ field: FieldDecision) -> String {
            "\(field.location) \(field.declaredAs?.description ?? "-") \(field.category ?? "-") \(field.action) \(field.reason?.rawValue ?? "-")"
        }
        var groups: [String: Int] = [:]
        for field in decision.fields { groups[key(field), default: 0] += 1 }
        var seen: Set<String> = []
        share.fields = decision.fields.compactMap { field in
            var logged = RecordedShare.Field(field)
            guard groups[key(field), default: 0] > 1 else { return logged }
            guard seen.insert(key(field)).inserted else { return nil }
            logged.path = field.declaredAs?.description ?? "<undeclared>"
            return logged
        }
        return share
    }

    @Test func foldedRecordsAreDecidedAsTheSharesWere() {
        let bodies = [
            #"{"message":{"token":["AAA","BBB","CCC"],"notification":{"title":"Hi"}}}"#,
            #"{"message":{"token":["AAA","BBB"],"android":{"notification":{"color":"red","icon":"a","title":"x"}}}}"#,
            #"{"message":{"token":["AAA","BBB"],"surprise":1,"another":2}}"#,
        ]
        let grantSets: [[Grant]] = [[], [Grant.make("g1", provider: "huawei-push", purpose: Self.push)],
                                    [Grant.make("g2", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])]]
        var foldedSome = false
        for body in bodies {
            for grants in grantSets {
                let context = SubjectContext(subject: Subject(id: "u1"), grants: grants)
                let decision = engine.evaluate(huawei(body), context: context, decoder: StrictPayloadDecoder())
                let logged = folded(decision)
                foldedSome = foldedSome || logged.fields.count < decision.fields.count
                let again = engine.redecide(logged, context: context)
                #expect(again.verdict == decision.verdict && again.code == decision.code, "\(body) \(grants.map(\.id))")
                #expect(again.fields == logged.fields, "\(body) \(grants.map(\.id))")
            }
        }
        #expect(foldedSome)
        // Narrowed to no push tokens: the folded tokens are judged, and blocked, like each token.
        let context = SubjectContext(subject: Subject(id: "u1"), grants: [Grant.make("g2", provider: "huawei-push", purpose: Self.push,
                                                                                  categories: ["user.device.push_token"])])
        let decision = engine.evaluate(huawei(bodies[0]), context: context, decoder: StrictPayloadDecoder())
        let none = SubjectContext(subject: Subject(id: "u1"), grants: [])
        let again = engine.redecide(folded(decision), context: none)
        #expect(again.verdict == .blocked && again.fields.first { $0.path == "message.token[*]" }?.reason == .consentMissing)
    }

    @Test func theSamePolicyDecidesEveryLoggedShareAsItWas() {
        let bodies = [
            #"{"message":{"token":["AAA"],"notification":{"title":"Hi"}}}"#,                      // allowed or redacted
            #"{"message":{"token":["AAA"],"surprise":1}}"#,                                      // undeclared: blocked
            #"{"message":{"token":["AAA"],"android":{"urgency":"LOUD"}}}"#,                       // undeclared_value: blocked
            #"{"message":{"token":["AAA"],"android":{"notification":{"color":"red","title":"x"}}}}"#,
        ]
        let grantSets: [[Grant]] = [[], [Grant.make("g1", provider: "huawei-push", purpose: Self.push)],
                                    [Grant.make("g2", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])]]
        for body in bodies {
            for grants in grantSets {
                let context = SubjectContext(subject: Subject(id: "u1"), grants: grants)
                let decision = engine.evaluate(huawei(body), context: context, decoder: StrictPayloadDecoder())
                let again = engine.redecide(recorded(decision), context: context)
                #expect(again.verdict == decision.verdict && again.code == decision.code, "\(body) \(grants.map(\.id))")
                #expect(again.fields == recorded(decision).fields, "\(body) \(grants.map(\.id))")
                #expect(ShareChange.between((decision.verdict, recorded(decision).fields), (again.verdict, again.fields)) { _ in true }.isEmpty)
            }
        }
        // A minimised field is re-decided as minimised.
        let amap = ShareRequest(caller: caller, provider: "amap-location",
                                target: .http(method: "GET", path: "/v3/geocode/regeo", query: "location=116.481488,39.990464"),
                                subject: "u1", time: now)
        let context = SubjectContext(subject: Subject(id: "u1"), grants: [Grant.make("g", provider: "amap-location", purpose: "functional.service")])
        let minimised = engine.evaluate(amap, context: context, decoder: StrictPayloadDecoder())
        #expect(minimised.fields.first?.action == .minimised)
        #expect(engine.redecide(recorded(minimised), context: context).fields == recorded(minimised).fields)
        // A value the transform could not read was denied, and is again (not "newly allowed").
        var north = amap
        north.target = .http(method: "GET", path: "/v3/geocode/regeo", query: "location=north")
        let unreadable = engine.evaluate(north, context: context, decoder: StrictPayloadDecoder())
        #expect(unreadable.verdict == .blocked && unreadable.code == .separateConsentRequired)
        let again = engine.redecide(recorded(unreadable), context: context)
        #expect(again.verdict == .blocked && again.fields == recorded(unreadable).fields)
    }

    @Test func aNarrowedContractBreaksTheSharesThatUsedWhatItDrops() throws {
        var narrowed = Policies.real
        narrowed.contracts["huawei-push"]?.purposes[Self.push] = ["user.device.push_token"]
        let candidate = PolicyEngine(bundle: narrowed)
        let context = SubjectContext(subject: Subject(id: "u1"), grants: [Grant.make("g1", provider: "huawei-push", purpose: Self.push)])
        let decision = engine.evaluate(huawei(#"{"message":{"token":["AAA"],"notification":{"title":"Hi"}}}"#), context: context,
                                       decoder: StrictPayloadDecoder())
        #expect(decision.verdict == .allowed)
        let again = candidate.redecide(recorded(decision), context: context)
        #expect(again.verdict == .redacted)
        #expect(again.fields.first { $0.path == "message.notification.title" }?.reason == .outOfContractScope)
        let changes = ShareChange.between((decision.verdict, recorded(decision).fields), (again.verdict, again.fields)) { _ in true }
        #expect(changes.map(\.category) == ["user.content.notification"] && changes.map(\.change) == [.newlyStripped])

        // The grants as they stood at the share's time: one revoked later still counted.
        let later = SubjectContext(subject: Subject(id: "u1"), grants: [Grant.make("g1", provider: "huawei-push", purpose: Self.push,
                                                                                    revokedAt: now.addingTimeInterval(60))])
        #expect(engine.redecide(recorded(decision), context: later).verdict == .allowed)
        // No contract any more: blocked, every category that went is lost.
        narrowed.contracts["huawei-push"] = nil
        let gone = PolicyEngine(bundle: narrowed).redecide(recorded(decision), context: context)
        #expect(gone.verdict == .blocked && gone.code == .contractMissing)
        let lost = ShareChange.between((decision.verdict, recorded(decision).fields), (gone.verdict, gone.fields)) { $0 != "system.operations" }
        #expect(Set(lost.map(\.category)) == ["user.device.push_token", "user.content.notification"] && lost.allSatisfy { $0.change == .newlyBlocked })
    }
}

@testable import BrokerGateway
import BrokerFields
import Foundation
import Testing

/// Issue 24: problem bodies (and SDK decisions) are written directly, not through
/// `JSONSerialization`; they must stay valid JSON with the same members, keys in byte order.
@Suite struct ProblemBodyTests {
    @Test func quotedTextIsAJSONStringOfTheSameText() throws {
        for text in ["", "plain", "Hi \"Ann\"", "back\\slash", "tab\tnew\nline\rcr", "\u{01}\u{1f}\u{7f}", "é 中文 😀", "/a/b"] {
            let quoted = JSONText.quoted(text)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
            #expect(decoded == [text], "\(quoted)")
        }
        #expect(JSONText.quoted("a\u{01}") == #""a\u0001""#)
    }

    @Test func aProblemBodyHasItsMembersInByteOrder() throws {
        var problem = Problem(status: 403, code: "undeclared_field", detail: "field \"x\" is not declared", shareID: "s-1",
                              fields: [.init(path: "a.b", location: "body", category: nil, reason: "undeclared")] +
                                  (0..<60).map { .init(path: "f\($0)", location: "query", category: "c", reason: "r") })
        problem.extra = ["policy_revision": .string("p-1"), "retry": .int(3)]
        let body = problem.jsonBody()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(object["status"] as? Int == 403 && object["code"] as? String == "undeclared_field")
        #expect(object["detail"] as? String == "field \"x\" is not declared")
        #expect(object["type"] as? String == "https://sharebroker.dev/problems/undeclared_field")
        #expect(object["share_id"] as? String == "s-1" && object["fields_total"] as? Int == 61)
        #expect(object["policy_revision"] as? String == "p-1" && object["retry"] as? Int == 3)
        let fields = try #require(object["fields"] as? [[String: Any]])
        #expect(fields.count == Problem.maxListedFields && fields[0]["path"] as? String == "a.b" && fields[0]["category"] == nil)
        // The same bytes JSONSerialization writes with sorted keys (apart from its escaped slashes).
        let sorted = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        #expect(String(decoding: body, as: UTF8.self) == String(decoding: sorted, as: UTF8.self))
    }

    /// A problem's default title from its code, written in one pass for ASCII codes.
    @Test func aDefaultTitleIsTheCodesWordsCapitalised() {
        let cases = ["consent_revoked": "Consent revoked", "unauthenticated": "Unauthenticated", "": "",
                     "a__b": "A b", "_leading": "Leading", "trailing_": "Trailing", "___": "___",
                     "upstream_timeout": "Upstream timeout", "9_lives": "9 lives", "x": "X", "Already_Upper": "Already Upper",
                     "é_code": "É code"]
        for (code, title) in cases { #expect(Problem.defaultTitle(code) == title, "\(code)") }
    }

    /// A refusal that names no share is rendered once and answered alike afterwards; one that names
    /// a share (or fields) is rendered each time, as its body differs.
    @Test func refusalsWithoutAShareAreRenderedOnce() throws {
        let problems = RenderedProblems(capacity: 2)
        let unauthenticated = Problem(status: 401, code: "unauthenticated", detail: "a valid bearer token is required")
        let first = problems.answer(unauthenticated)
        let again = problems.answer(unauthenticated)
        #expect(first.0 == unauthenticated.answer().0 && first.1 == unauthenticated.answer().1)
        #expect(again.0 == first.0 && again.1 == first.1)
        #expect(first.0.headerFields[.wwwAuthenticate] == "Bearer")
        let named = Problem(status: 403, code: "consent_revoked", detail: "revoked", shareID: "s-1")
        #expect(problems.answer(named).0.headerFields[.shareID] == "s-1")
        #expect(problems.answer(Problem(status: 403, code: "consent_revoked", detail: "revoked", shareID: "s-2")).0.headerFields[.shareID] == "s-2")
        // Past its capacity the cache starts again, and answers stay right.
        for n in 0..<5 {
            let problem = Problem(status: 404, code: "unknown_provider", detail: "no provider p\(n)")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(problems.answer(problem).1)) as? [String: Any])
            #expect(body["detail"] as? String == "no provider p\(n)")
        }
    }

    /// The host a forward-proxy request names: without its port, lower-cased (issue 24: on bytes).
    @Test func aHostNameIsTheAuthorityWithoutItsPortInLowerCase() {
        let cases: [(String?, String?)] = [("api.push.hicloud.com", "api.push.hicloud.com"), ("API.Push.HiCloud.com:443", "api.push.hicloud.com"),
                                           ("[::1]:8080", "[::1]"), ("[::1]", "[::1]"), ("host:", "host"), ("", nil), (nil, nil),
                                           ("ÜNÏ.example:80", "ünï.example"), ("127.0.0.1:18283", "127.0.0.1")]
        for (authority, host) in cases { #expect(ShareEdge.hostName(authority) == host, "\(authority ?? "nil")") }
    }
}

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
}

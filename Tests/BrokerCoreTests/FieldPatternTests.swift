@testable import BrokerCore
import Testing

struct FieldPatternTests {
    @Test(arguments: [
        ("a.b", [PatternSegment.key(ExactKey("a")), .key(ExactKey("b"))]),
        ("a[*]", [.key(ExactKey("a")), .anyIndex]),
        ("a.*", [.key(ExactKey("a")), .anyKey]),
        (#"a["x.y"]"#, [.key(ExactKey("a")), .key(ExactKey("x.y"))]),
        (#"["x.y"].z"#, [.key(ExactKey("x.y")), .key(ExactKey("z"))]),
        ("message.token[*]", [.key(ExactKey("message")), .key(ExactKey("token")), .anyIndex]),
        ("a[*][*].b", [.key(ExactKey("a")), .anyIndex, .anyIndex, .key(ExactKey("b"))]),
        (#"["*"]"#, [.key(ExactKey("*"))]),
        ("apns-topic", [.key(ExactKey("apns-topic"))]),
    ])
    func parses(_ text: String, _ segments: [PatternSegment]) throws {
        let pattern = try FieldPattern(parsing: text)
        #expect(pattern.segments == segments)
        #expect(try FieldPattern(parsing: pattern.description) == pattern, "rendering round-trips")
    }

    @Test(arguments: ["", "a..b", ".a", "a.", "a[", "a[0]", "a[\"x\"", "a b", "a]", "a.[*]", #"a["x"]b"#])
    func rejects(_ text: String) {
        #expect(throws: FieldPattern.SyntaxError.self) { try FieldPattern(parsing: text) }
    }

    func schema(_ declarations: [(String, String)]) throws -> FieldSchema {
        var schema = FieldSchema()
        for (pattern, category) in declarations {
            schema.add(FieldDeclaration(location: .body, pattern: try FieldPattern(parsing: pattern), category: category))
        }
        return schema
    }

    func path(_ segments: PathSegment...) -> FieldPath { FieldPath(segments) }

    @Test func aDeclarationCoversExactlyItsOwnDepth() throws {
        let schema = try schema([("m.android.*", "ops"), ("m.android.notification.title", "content"),
                                 ("m.token[*]", "token"), ("m.data", "content")])
        let k = { (s: String) in PathSegment.key(ExactKey(s)) }
        #expect(schema.match(path(k("m"), k("android"), k("ttl")))?.category == "ops")
        #expect(schema.match(path(k("m"), k("android"), k("notification"), k("title")))?.category == "content")
        // Deeper than `m.android.*`: undeclared, not "ops" (no smuggling under a harmless category).
        #expect(schema.match(path(k("m"), k("android"), k("notification"), k("big_body"))) == nil)
        #expect(schema.match(path(k("m"), k("token"), .index(7)))?.category == "token")
        #expect(schema.match(path(k("m"), k("token"), .index(7), k("x"))) == nil)
        #expect(schema.match(path(k("m"), k("token"))) == nil, "the array itself as a scalar is not an element")
        #expect(schema.match(path(k("m"), k("data"), k("nested"), .index(0))) == nil, "an object where a scalar is declared")
        #expect(schema.match(path(k("m"), k("data")))?.category == "content")
        #expect(schema.match(path(k("m"), k("other"))) == nil)
        #expect(schema.match(path(k("m"))) == nil)
    }

    /// A node's literal children are scanned while few and kept in a dictionary past twelve: both
    /// find every key they hold, and nothing else, with the wildcard still the fallback.
    @Test(arguments: [3, 12, 13, 40])
    func everyLiteralChildIsFoundHoweverMany(_ count: Int) throws {
        let keys = (0..<count).map { "k\($0)" }
        let schema = try schema(keys.map { ("p.\($0)", "c-\($0)") } + [("p.*", "wild"), ("q.k1", "other")])
        for key in keys { #expect(schema.match(FieldPath(keys: "p", key))?.category == "c-\(key)") }
        #expect(schema.match(FieldPath(keys: "p", "k\(count)"))?.category == "wild")
        #expect(schema.match(FieldPath(keys: "q", "k1"))?.category == "other")
        #expect(schema.match(FieldPath(keys: "q", "k2")) == nil)
    }

    @Test func literalBeatsWildcardAtTheSameDepth() throws {
        let schema = try schema([("a.*", "wild"), ("a.b", "literal")])
        #expect(schema.match(FieldPath(keys: "a", "b"))?.category == "literal")
        #expect(schema.match(FieldPath(keys: "a", "c"))?.category == "wild")
    }

    @Test func keysCompareAsExactBytes() throws {
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        #expect(nfc == nfd, "Swift strings are canonically equal…")
        #expect(ExactKey(nfc) != ExactKey(nfd), "…but keys are bytes")
        let schema = try schema([(nfc, "declared")])
        #expect(schema.match(FieldPath(keys: nfc))?.category == "declared")
        #expect(schema.match(FieldPath(keys: nfd)) == nil)
        #expect(Set([ExactKey(nfc), ExactKey(nfd)]).count == 2)
    }

    @Test func wildcardKeyDoesNotMatchArrayIndexes() throws {
        let schema = try schema([("a.*", "wild")])
        #expect(schema.match(FieldPath([.key(ExactKey("a")), .index(0)])) == nil)
    }

    @Test func rendersPathsUnambiguously() {
        let path = FieldPath([.key(ExactKey("a")), .key(ExactKey("x.y")), .index(2), .key(ExactKey("q\"")), .key(ExactKey(""))])
        #expect(path.description == #"a["x.y"][2]["q\""][""]"#)
    }

    @Test func categoryCoverageFollowsTheHierarchy() {
        #expect(Taxonomy.covers("user.content", "user.content.notification"))
        #expect(Taxonomy.covers("user.content.notification", "user.content.notification"))
        #expect(!Taxonomy.covers("user.content", "user.contents"))
        #expect(!Taxonomy.covers("user.content.notification", "user.content"))
    }

    @Test func pathTemplatesMatchWholeSegments() throws {
        let template = try PathTemplate(parsing: "/v1/{app_id}/messages:send")
        #expect(template.match("/v1/123/messages:send")?.map(\.value) == ["123"])
        #expect(template.match("/v1/a%20b/messages:send")?.map(\.value) == ["a b"])
        #expect(template.match("/v1//messages:send") == nil)
        #expect(template.match("/v1/123/messages:send/") == nil)
        #expect(template.match("/v1/123/messages") == nil)
        #expect(template.match("/v1/%ff/messages:send") == nil, "not UTF-8 after decoding")
        #expect(template.match("/v1/../messages:send") == nil, "dot segments would be normalised upstream")
        #expect(template.match("/v1/%2E%2E/messages:send") == nil)
        #expect(template.match("/v1/a%2Fb/messages:send") == nil, "an encoded slash is not one segment")
        #expect(template.match("/v1/..;/messages:send") == nil, "/..;/ is /../ to some servers")
        #expect(template.match("/v1/.;x/messages:send") == nil)
        #expect(template.match("/v1/a%5Cb/messages:send") == nil, "an encoded backslash is not one segment")
        #expect(template.match("/v1/.../messages:send")?.map(\.value) == ["..."], "three dots are a name")
        #expect(template.match("/v1/a;../messages:send")?.map(\.value) == ["a;.."])
        #expect(template.match("v1/123/messages:send") == nil)
        #expect(template.match("/v2/123/messages:send") == nil)
        #expect(try PathTemplate(parsing: "/").match("/")?.isEmpty == true)
        #expect(try PathTemplate(parsing: "/").match("/a") == nil)
        #expect(try PathTemplate(parsing: "/{a}/{b}").match("/x/y")?.map(\.value) == ["x", "y"])
        #expect(try PathTemplate(parsing: "/{a}/{b}").match("/x") == nil)
        #expect(template.render(["app_id": "a;b=c,d"]) == "/v1/a%3Bb%3Dc%2Cd/messages:send")
        #expect(template.render(["app_id": "a b"]) == "/v1/a%20b/messages:send")
        #expect(throws: PathTemplate.SyntaxError.self) { try PathTemplate(parsing: "/v1/x{id}") }
        #expect(throws: PathTemplate.SyntaxError.self) { try PathTemplate(parsing: "v1") }
    }

    @Test func calendarDaysFromInstants() {
        #expect(CalendarDay(now).description == "2026-03-01")
        #expect(CalendarDay(Date(timeIntervalSince1970: 0)).description == "1970-01-01")
        #expect(CalendarDay(Date(timeIntervalSince1970: 951_782_400)).description == "2000-02-29")
        #expect(CalendarDay("2024-02-29") != nil && CalendarDay("2023-02-29") == nil)
    }
}

import Foundation

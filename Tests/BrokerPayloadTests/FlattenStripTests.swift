import BrokerFields
import BrokerPayload
import Testing

private let pushMessage = #"""
{"message":{"token":["tok-a","tok-b","tok-c"],"notification":{"title":"Hi","body":"你好 😀"},
 "android":{"ttl":"86400s","urgency":"HIGH","extra":{}},"data":[]},
 "validate_only":false,"n":null,"ratio":1.50,"count":3}
"""#

@Suite("Flattening")
struct FlattenTests {
    @Test func orderAndPaths() throws {
        let body = try json(pushMessage)
        #expect(pairs(body.fields) == [
            #"message.token[0]="tok-a""#,
            #"message.token[1]="tok-b""#,
            #"message.token[2]="tok-c""#,
            #"message.notification.title="Hi""#,
            #"message.notification.body="你好 😀""#,
            #"message.android.ttl="86400s""#,
            #"message.android.urgency="HIGH""#,
            "message.android.extra={}",
            "message.data=[]",
            "validate_only=false",
            "n=null",
            "ratio=1.50",
            "count=3",
        ])
        #expect(body.fields.allSatisfy { $0.location == .body })
        #expect(body.fields[0].path == path(key("message"), key("token"), .index(0)))
    }

    @Test func nestedArrays() throws {
        let body = try json(#"[[1,[2,{"a":[3]}]],[],{}]"#)
        #expect(pairs(body.fields) == ["[0][0]=1", "[0][1][0]=2", "[0][1][1].a[0]=3", "[1]=[]", "[2]={}"])
    }

    @Test func emptyTopLevelContainers() throws {
        #expect(try json("{}").fields == [FieldOccurrence(location: .body, path: FieldPath(), value: .emptyObject)])
        #expect(try json("[]").fields == [FieldOccurrence(location: .body, path: FieldPath(), value: .emptyArray)])
    }

    @Test func keysWithDotsAndQuotesRenderUnambiguously() throws {
        let body = try json(#"{"x.y":{"z":1},"a\"b":2,"":3,"sp ace":[4],"k\\":5}"#)
        #expect(body.fields.map(\.path.description) == [#"["x.y"].z"#, #"["a\"b"]"#, #"[""]"#, #"["sp ace"][0]"#, #"["k\\"]"#])
        #expect(body.fields[0].path == path(key("x.y"), key("z")))
        #expect(body.fields[1].path == path(key("a\"b")))
    }

    @Test func escapedStringsAreDecoded() throws {
        let body = try json(#"{"t\u00e9":"a\"b\\c\/d\n\u4f60\ud83d\ude00"}"#)
        #expect(body.fields[0].path == path(key("té")))
        #expect(body.fields[0].value == .string("a\"b\\c/d\n你😀"))
    }

    @Test func locationIsPropagated() throws {
        let body = try JSONBody(Array(#"{"a":1}"#.utf8), limits: defaultLimits, location: .query)
        #expect(body.fields[0].location == .query)
    }

    @Test func unsafeBufferInitializer() throws {
        let bytes = Array(#"{"a":[true]}"#.utf8)
        let body = try bytes.withUnsafeBytes { buffer throws(PayloadError) in
            try JSONBody(bytes: buffer, limits: defaultLimits)
        }
        #expect(pairs(body.fields) == ["a[0]=true"])
    }
}

@Suite("Stripping and re-serialisation")
struct StripTests {
    @Test func stripLeaf() throws {
        let body = try json(pushMessage)
        let out = body.serialized(removing: [path(key("message"), key("notification"), key("title"))])
        #expect(!contains(out, "Hi\""))
        #expect(!contains(out, "title"))
        let again = try JSONBody(out, limits: defaultLimits)
        #expect(again.fields.count == body.fields.count - 1)
        #expect(!again.fields.contains { $0.path.description == "message.notification.title" })
        #expect(contains(out, "你好 😀"))
    }

    @Test func stripContainer() throws {
        let body = try json(pushMessage)
        let out = body.serialized(removing: [path(key("message"), key("token"))])
        for token in ["tok-a", "tok-b", "tok-c"] { #expect(!contains(out, token)) }
        let again = try JSONBody(out, limits: defaultLimits)
        #expect(!again.fields.contains { $0.path.segments.count > 1 && $0.path.segments[1] == key("token") })
        #expect(again.fields.count == body.fields.count - 3)
    }

    @Test func stripArrayElementsUsesOriginalIndices() throws {
        let body = try json(#"{"t":["a0","a1","a2","a3","a4"]}"#)
        let out = body.serialized(removing: [path(key("t"), .index(0)), path(key("t"), .index(2)), path(key("t"), .index(4))])
        #expect(text(out) == #"{"t":["a1","a3"]}"#)
        // Order in the set does not matter and removing every element leaves [].
        let all = Set((0..<5).map { path(key("t"), .index($0)) })
        #expect(text(body.serialized(removing: all)) == #"{"t":[]}"#)
    }

    @Test func stripInsideArrayElements() throws {
        let body = try json(#"[{"a":1,"b":"x1"},{"a":2,"b":"x2"},{"a":3,"b":"x3"}]"#)
        let out = body.serialized(removing: [path(.index(0)), path(.index(1), key("b")), path(.index(2), key("a"))])
        #expect(text(out) == #"[{"a":2},{"b":"x3"}]"#)
    }

    @Test func pathsBelowRemovedNodesAndMissingPathsAreIgnored() throws {
        let body = try json(#"{"a":{"b":{"c":1}},"d":[1,2],"e":"s"}"#)
        let out = body.serialized(removing: [
            path(key("a")), path(key("a"), key("b")), path(key("a"), key("b"), key("c")),
            path(key("zz")), path(key("d"), .index(7)), path(key("d"), .index(-1)), path(key("d"), key("x")),
            path(key("e"), key("f")), path(key("e"), .index(0)), path(key("n\u{0}ul")),
        ])
        #expect(text(out) == #"{"d":[1,2],"e":"s"}"#)
    }

    @Test func removingTheRoot() throws {
        #expect(text(try json(#"{"a":1}"#).serialized(removing: [FieldPath()])) == "{}")
        #expect(text(try json(#"[1]"#).serialized(removing: [FieldPath()])) == "[]")
        #expect(text(try json(#""secret""#).serialized(removing: [FieldPath()])) == "null")
    }

    @Test func serialisationIsRepeatableAndDoesNotMutate() throws {
        let body = try json(pushMessage)
        let before = body.fields
        let first = body.serialized(removing: [path(key("message"))])
        let full = body.serialized(removing: [])
        let second = body.serialized(removing: [path(key("message"))])
        #expect(first == second)
        #expect(text(first) == #"{"validate_only":false,"n":null,"ratio":1.50,"count":3}"#)
        #expect(exactlyEqual(body.fields, before))
        #expect(exactlyEqual(try JSONBody(full, limits: defaultLimits).fields, before))
    }

    /// Prints of one body from many tasks at once: with a removal (each from its own copy of the
    /// tree) and without (from the tree itself, under its lock), mixed, every one whole and the same.
    @Test func concurrentSerialisation() async throws {
        let body = try json(pushMessage)
        let removal: Set<FieldPath> = [path(key("message"), key("token"), .index(1))]
        let expected = body.serialized(removing: removal)
        let whole = body.serialized(removing: [])
        let results = await withTaskGroup(of: (Bool, [UInt8]).self) { group in
            for n in 0..<64 {
                let removes = n % 2 == 0
                group.addTask { (removes, body.serialized(removing: removes ? removal : [])) }
            }
            var all: [(Bool, [UInt8])] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results.allSatisfy { $0.1 == ($0.0 ? expected : whole) })
        #expect(!contains(expected, "tok-b") && contains(whole, "tok-b"))
        #expect(exactlyEqual(try JSONBody(whole, limits: defaultLimits).fields, body.fields))
    }

    @Test func emptyRemovalRoundTrips() throws {
        let body = try json(pushMessage)
        let out = body.serialized(removing: [])
        #expect(exactlyEqual(try JSONBody(out, limits: defaultLimits).fields, body.fields))
        #expect(!contains(out, "\\/"))
    }
}

@Suite("Embedded JSON documents")
struct EmbeddedJSONTests {
    static let doc = #"{"id":7,"payload":"{\"target_value\":\"tok-secret\",\"notification\":{\"title\":\"Hi\"},\"list\":[1,2]}"}"#
    static let isPayload: @Sendable (FieldPath) -> Bool = { $0 == path(key("payload")) }

    @Test func flattenedIntoTheString() throws {
        let body = try json(Self.doc, embedded: Self.isPayload)
        #expect(pairs(body.fields) == [
            "id=7", #"payload.target_value="tok-secret""#, #"payload.notification.title="Hi""#,
            "payload.list[0]=1", "payload.list[1]=2",
        ])
    }

    @Test func stripInnerFieldRewritesTheString() throws {
        let body = try json(Self.doc, embedded: Self.isPayload)
        let out = body.serialized(removing: [path(key("payload"), key("target_value")), path(key("payload"), key("list"), .index(0))])
        #expect(!contains(out, "tok-secret"))
        #expect(!contains(out, "target_value"))
        let outer = try JSONBody(out, limits: defaultLimits)
        #expect(pairs(outer.fields) == ["id=7", #"payload="{"notification":{"title":"Hi"},"list":[2]}""#])
        let reparsed = try JSONBody(out, limits: defaultLimits, embeddedJSON: Self.isPayload)
        #expect(pairs(reparsed.fields) == ["id=7", #"payload.notification.title="Hi""#, "payload.list[0]=2"])
    }

    @Test func removingTheEmbeddedPathRemovesTheField() throws {
        let body = try json(Self.doc, embedded: Self.isPayload)
        let out = body.serialized(removing: [path(key("payload"))])
        #expect(text(out) == #"{"id":7}"#)
    }

    @Test func invalidEmbeddedDocumentNamesThePath() {
        for inner in [#"{\"a\":1,\"a\":2}"#, #"{\"a\":"#, #"[1e400]"#, #"not json"#, ""] {
            let error = jsonError(#"{"payload":"\#(inner)"}"#, embedded: Self.isPayload)
            #expect(error?.code == .malformedBody, "\(inner)")
            #expect(error?.message.contains("field payload") == true, "\(error?.message ?? "")")
            #expect(error?.offset == nil)
        }
    }

    @Test func embeddedDepthLimitApplies() {
        let limits = PayloadLimits(maxBytes: 10_000, maxDepth: 3)
        #expect(jsonError(#"{"payload":"[[[1]]]"}"#, limits: limits, embedded: Self.isPayload) == nil)
        let error = jsonError(#"{"payload":"[[[[1]]]]"}"#, limits: limits, embedded: Self.isPayload)
        #expect(error?.message.contains("depth") == true)
    }

    @Test func nestedEmbeddedDocuments() throws {
        let doc = #"{"a":"{\"b\":\"{\\\"c\\\":\\\"deep-secret\\\",\\\"d\\\":1}\"}"}"#
        let predicate: (FieldPath) -> Bool = { $0 == path(key("a")) || $0 == path(key("a"), key("b")) }
        let body = try json(doc, embedded: predicate)
        #expect(pairs(body.fields) == [#"a.b.c="deep-secret""#, "a.b.d=1"])
        let out = body.serialized(removing: [path(key("a"), key("b"), key("c"))])
        #expect(!contains(out, "deep-secret"))
        #expect(pairs(try JSONBody(out, limits: defaultLimits, embeddedJSON: predicate).fields) == ["a.b.d=1"])
    }

    @Test func predicateOnNonStringIsIgnored() throws {
        let body = try json(#"{"payload":{"x":1}}"#, embedded: Self.isPayload)
        #expect(pairs(body.fields) == ["payload.x=1"])
    }
}

@Suite("Parser reuse and extreme limits")
struct ParserReuseTests {
    @Test func concurrentParsesWithPooledTokeners() async {
        let docs = [#"{"a":[1,2,{"b":"c"}]}"#, "[1.5]", #"{"a":1,"a":2}"#, "7", #"["\ud800"]"#, "[[[[]]]]"]
        let expected = docs.map { jsonError($0) }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for round in 0..<64 {
                group.addTask {
                    let k = round % docs.count
                    return jsonError(docs[k]) == expected[k] ? 0 : 1
                }
            }
            var total = 0
            for await m in group { total += m }
            return total
        }
        #expect(mismatches == 0)
        #expect(expected.map { $0 == nil } == [true, true, false, true, false, true])
    }

    @Test func extremeDepthSettingsDoNotCrash() throws {
        var limits = PayloadLimits()
        limits.maxDepth = Int.max
        #expect(try json("[[1]]", limits: limits).fields.count == 1)
        // Deeper than json-c's pooled tokeners (65): a fitting tokener is made.
        let deep = String(repeating: "[", count: 500) + "1" + String(repeating: "]", count: 500)
        #expect(try json(deep, limits: limits).fields[0].path.segments.count == 500)
        limits.maxDepth = 499
        #expect(jsonError(deep, limits: limits)?.offset == 499)
        limits.maxDepth = 0
        #expect(jsonError("[]", limits: limits)?.message.contains("depth") == true)
        #expect(try json("1", limits: limits).fields.count == 1)
        limits.maxDepth = -3
        #expect(try json("true", limits: limits).fields.count == 1)
    }
}

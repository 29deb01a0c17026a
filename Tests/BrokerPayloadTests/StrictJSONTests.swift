import BrokerFields
import BrokerPayload
import Testing

@Suite("Strict JSON validation")
struct StrictJSONTests {
    @Test func duplicateKeysRejected() {
        let error = jsonError(#"{"a":1,"a":2}"#)
        #expect(error?.code == .malformedBody)
        #expect(error?.offset == 7)
        #expect(error?.message.contains("duplicate") == true)
    }

    @Test func duplicateKeyAfterUnescapingRejected() {
        let error = jsonError(#"{"title":1,"ti\u0074le":2}"#)
        #expect(error?.code == .malformedBody)
        #expect(error?.message.contains("duplicate") == true)
        #expect(jsonError(#"{"a\/b":1,"a/b":2}"#)?.code == .malformedBody)
        #expect(jsonError(#"{"\u00e9":1,"é":2}"#)?.code == .malformedBody)
    }

    @Test func duplicateKeysInLargeObjectRejected() {
        var members = (0..<40).map { "\"k\($0)\":\($0)" }
        #expect(jsonError("{" + members.joined(separator: ",") + "}") == nil)
        members.append(#""k\u0033\u0037":1"#) // "k37"
        let error = jsonError("{" + members.joined(separator: ",") + "}")
        #expect(error?.message.contains("duplicate") == true)
    }

    @Test func sameKeyInDifferentObjectsAccepted() throws {
        let body = try json(#"{"a":{"x":1,"y":{"x":2}},"b":{"x":3},"x":[{"x":4},{"x":5}]}"#)
        #expect(body.fields.count == 5)
    }

    @Test func nfcAndNfdKeysAreTwoFields() throws {
        let nfc = "caf\u{E9}"          // é precomposed
        let nfd = "cafe\u{301}"        // e + combining acute
        #expect(nfc == nfd)            // Swift String equality would merge them
        let body = try json("{\"\(nfc)\":1,\"\(nfd)\":2}")
        #expect(body.fields.count == 2)
        let keys = body.fields.map { $0.path.segments[0] }
        #expect(keys[0] == key(nfc))
        #expect(keys[1] == key(nfd))
        #expect(keys[0] != keys[1])
        // Removing one of them keeps the other.
        let out = body.serialized(removing: [path(key(nfc))])
        let again = try JSONBody(out, limits: defaultLimits)
        #expect(again.fields.count == 1)
        #expect(again.fields[0].path == path(key(nfd)))
        #expect(again.fields[0].value == .number("2"))
    }

    @Test func loneOrMisorderedSurrogatesRejected() {
        for doc in [#"["\ud800"]"#, #"["\udc00"]"#, #"["\udc00\ud800"]"#, #"["\ud800x"]"#,
                    #"["\ud800\u0041"]"#, #"{"\ud800":1}"#, #"["\uDBFF\uDBFF"]"#] {
            let error = jsonError(doc)
            #expect(error?.code == .malformedBody, "\(doc)")
            #expect(error?.message.contains("surrogate") == true, "\(doc)")
        }
    }

    @Test func pairedSurrogateAccepted() throws {
        let body = try json(#"["\ud83d\ude00"]"#)
        #expect(body.fields[0].value == .string("\u{1F600}"))
    }

    @Test func byteOrderMarkRejected() {
        let error = jsonError([0xEF, 0xBB, 0xBF] + Array("{}".utf8))
        #expect(error?.code == .malformedBody)
        #expect(error?.offset == 0)
        #expect(error?.message.contains("byte order mark") == true)
    }

    @Test func commentsRejected() {
        for doc in ["// c\n{}", "{} // c", "/* c */ {}", #"{"a":1 /* c */}"#, "[1,/**/2]"] {
            let error = jsonError(doc)
            #expect(error?.code == .malformedBody, "\(doc)")
            #expect(error?.message.contains("comment") == true, "\(doc)")
        }
    }

    @Test func nanAndInfinityRejected() {
        for doc in ["[NaN]", "[Infinity]", "[-Infinity]", #"{"a":NaN}"#, "NaN", "[nan]"] {
            #expect(jsonError(doc)?.code == .malformedBody, "\(doc)")
        }
        #expect(jsonError("[NaN]")?.message.contains("NaN") == true)
        #expect(jsonError("[Infinity]")?.message.contains("Infinity") == true)
    }

    @Test func singleQuotesAndTrailingCommasRejected() {
        #expect(jsonError("['a']")?.message.contains("single-quoted") == true)
        #expect(jsonError("{'a':1}")?.code == .malformedBody)
        #expect(jsonError("[1,]")?.message.contains("trailing comma") == true)
        #expect(jsonError(#"{"a":1,}"#)?.message.contains("trailing comma") == true)
        #expect(jsonError("[,1]")?.code == .malformedBody)
        #expect(jsonError("[1,,2]")?.code == .malformedBody)
        #expect(jsonError(#"{"a" 1}"#)?.code == .malformedBody)
        #expect(jsonError(#"{a:1}"#)?.code == .malformedBody)
    }

    @Test func deepNestingGivesCleanError() {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 10_000)
        let error = jsonError(deep)
        #expect(error?.code == .malformedBody)
        #expect(error?.offset == 64)
        #expect(error?.message.contains("depth") == true)

        let balanced = Array(String(repeating: "[", count: 10_000).utf8) + Array(String(repeating: "]", count: 10_000).utf8)
        #expect(jsonError(balanced)?.message.contains("depth") == true)
        let objects = Array(String(repeating: #"{"a":"#, count: 10_000).utf8)
        #expect(jsonError(objects)?.message.contains("depth") == true)
        // Also with a huge configured limit: the validator is iterative, json-c gets the bytes only if valid.
        let big = PayloadLimits(maxBytes: 1_048_576, maxDepth: 100_000)
        #expect(jsonError(deep, limits: big)?.message.contains("unexpected end") == true)
    }

    @Test func depthLimitBoundary() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        }
        let ok = try json(nested(64))
        #expect(ok.fields.count == 1)
        #expect(ok.fields[0].path.segments.count == 64)
        let error = jsonError(nested(65))
        #expect(error?.code == .malformedBody)
        #expect(error?.offset == 64)
        // Objects count as well, and an empty container at the limit is fine.
        let objects64 = String(repeating: #"{"a":"#, count: 63) + "{}" + String(repeating: "}", count: 63)
        #expect(jsonError(objects64) == nil)
        let objects65 = String(repeating: #"{"a":"#, count: 64) + "[]" + String(repeating: "}", count: 64)
        #expect(jsonError(objects65)?.message.contains("depth") == true)
        // A custom limit.
        let two = PayloadLimits(maxBytes: 1000, maxDepth: 2)
        #expect(jsonError("[[1]]", limits: two) == nil)
        #expect(jsonError("[[[1]]]", limits: two)?.message.contains("limit of 2") == true)
    }

    @Test func trailingDataRejected() {
        let error = jsonError("{} x")
        #expect(error?.code == .malformedBody)
        #expect(error?.offset == 3)
        #expect(error?.message.contains("trailing data") == true)
        #expect(jsonError("{}{}")?.message.contains("trailing data") == true)
        #expect(jsonError("1 2")?.message.contains("trailing data") == true)
        #expect(jsonError("{}\u{0}")?.code == .malformedBody)
        #expect(jsonError(" \n{}\r\n\t ") == nil)
    }

    @Test func emptyInputRejected() {
        #expect(jsonError("")?.message.contains("empty") == true)
        #expect(jsonError("  \n")?.code == .malformedBody)
    }

    @Test func invalidUTF8Rejected() {
        let cases: [([UInt8], String)] = [
            ([0xC0, 0xAF], "overlong"),
            ([0xE0, 0x80, 0xAF], "overlong"),
            ([0xED, 0xA0, 0x80], "surrogate"),
            ([0xE2, 0x82], "truncated"),
            ([0xF0, 0x9F, 0x98], "truncated"),
            ([0xF4, 0x90, 0x80, 0x80], "above U+10FFFF"),
            ([0x80], "continuation"),
            ([0xFF], "never appears"),
        ]
        for (bad, reason) in cases {
            let doc = Array(#"{"k":"a"#.utf8) + bad + Array(#"b"}"#.utf8)
            let error = jsonError(doc)
            #expect(error?.code == .malformedBody, "\(bad)")
            #expect(error?.offset == 7, "\(bad)")
            #expect(error?.message.contains(reason) == true, "\(bad): \(error?.message ?? "")")
            // In keys too.
            let inKey = Array(#"{"a"#.utf8) + bad + Array(#"":1}"#.utf8)
            #expect(jsonError(inKey)?.code == .malformedBody, "\(bad)")
        }
        // A truncated sequence at the very end of the input.
        #expect(jsonError(Array(#"["a"#.utf8) + [0xE2])?.message.contains("truncated") == true)
        // Outside strings.
        #expect(jsonError([0x5B, 0xC3, 0xA9, 0x5D])?.code == .malformedBody)
        // Valid multi-byte text is fine.
        #expect(jsonError(#"["é 你好 😀 \#u{10FFFF}"]"#) == nil)
    }

    @Test func controlCharactersInStringsRejected() {
        for byte: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] {
            let doc = Array(#"{"k":"a"#.utf8) + [byte] + Array(#""}"#.utf8)
            let error = jsonError(doc)
            #expect(error?.message.contains("control character") == true, "\(byte)")
            #expect(error?.offset == 7)
        }
        #expect(jsonError(#"["\t\n\u0001"]"#) == nil)
    }

    @Test func invalidEscapesRejected() {
        for doc in [#"["\x"]"#, #"["\u12"]"#, #"["\u12G4"]"#, #"["\'"]"#, #"["\"#, #"["\U0041"]"#] {
            #expect(jsonError(doc)?.code == .malformedBody, "\(doc)")
        }
        #expect(jsonError(#"["\x"]"#)?.message.contains("invalid escape") == true)
    }

    @Test func nulInKeyRejectedButAllowedInValue() throws {
        // json-c truncates keys at U+0000: {"a\u0000b":1,"a\u0000c":2} would become {"a":2}.
        #expect(jsonError(#"{"a\u0000b":1,"a\u0000c":2}"#)?.message.contains("U+0000") == true)
        let body = try json(#"["a\u0000b"]"#)
        #expect(body.fields[0].value == .string("a\u{0}b"))
        #expect(text(body.serialized(removing: [])) == #"["a\u0000b"]"#)
    }

    @Test func invalidNumberSyntaxRejected() {
        for doc in ["[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[1e+]", "[-]", "[0x10]", "[1.e5]", "[--1]"] {
            #expect(jsonError(doc)?.code == .malformedBody, "\(doc)")
        }
    }

    @Test func invalidLiteralsRejected() {
        for doc in ["[tru]", "[True]", "[nul]", "[falsey]", "[null1]"] {
            #expect(jsonError(doc)?.code == .malformedBody, "\(doc)")
        }
    }

    @Test func oddButValidDocumentsAccepted() throws {
        let docs = [#"["\uFFFE\uFEFF\u007F\u0080"]"#, "[\"\u{FEFF}\u{FFFF}\u{7F}\"]", "\r\n[\r1\r,\t2\n]\r",
                    #"{"":"","x":0}"#,
                    "[1E+308,-1e-307,0e0,0.0E-0]", #"{"a":{},"b":[],"c":[{}],"d":[[]]}"#]
        for doc in docs {
            let body = try json(doc)
            let again = try JSONBody(body.serialized(removing: []), limits: defaultLimits)
            #expect(exactlyEqual(again.fields, body.fields), "\(doc)")
        }
    }

    @Test func errorMessagesNeverContainBodyData() {
        let docs = [
            #"{"secret-token-123":1,"secret-token-123":2}"#,
            #"{"name":"secret-token-123" "x":1}"#,
            #"{"name":'secret-token-123'}"#,
            #"{"secret-token-123":"\ud800"}"#,
            #"{"name":"secret-token-123"} secret-token-123"#,
            #"{"name":secret-token-123}"#,
            #"[184467440737095516170000]"#,
        ]
        for doc in docs {
            let error = jsonError(doc)
            #expect(error != nil, "\(doc)")
            #expect(error?.message.contains("secret") == false, "\(error?.message ?? "")")
            #expect(error?.message.contains("18446744073709551617") == false)
        }
    }
}

@Suite("Numbers are kept exactly")
struct NumberTests {
    @Test func doubleOverflowRejected() {
        for doc in ["[1e400]", "[-1e400]", "[1.7976931348623159e308]", "[10e308]", "[0.0001e313]",
                    "[1" + String(repeating: "0", count: 309) + ".0]"] {
            let error = jsonError(doc)
            #expect(error?.code == .malformedBody, "\(doc)")
            #expect(error?.message.contains("overflows") == true, "\(doc)")
            #expect(error?.offset == 1)
        }
    }

    @Test func largeFiniteDoublesAccepted() throws {
        for literal in ["1.7976931348623157e308", "1e308", "0.1e309", "2.2250738585072014e-308", "0.0000e999", "0e999999999999"] {
            let body = try json("[\(literal)]")
            #expect(body.fields[0].value == .number(literal))
            #expect(text(body.serialized(removing: [])) == "[\(literal)]")
        }
    }

    @Test func integersOutside64BitRangeRejected() {
        for literal in ["18446744073709551617", "18446744073709551616", "99999999999999999999",
                        "100000000000000000000", "-9223372036854775809", "-10000000000000000000"] {
            let error = jsonError("[\(literal)]")
            #expect(error?.code == .malformedBody, "\(literal)")
            #expect(error?.message.contains("64-bit range") == true, "\(literal)")
        }
    }

    @Test func integerRangeEdgesRoundTrip() throws {
        for literal in ["-9223372036854775808", "18446744073709551615", "9223372036854775807",
                        "9223372036854775808", "-1", "0", "12345678901234567890"] {
            let doc = #"{"n":\#(literal)}"#
            let body = try json(doc)
            #expect(body.fields == [FieldOccurrence(location: .body, path: path(key("n")), value: .number(literal))])
            #expect(text(body.serialized(removing: [])) == doc)
        }
    }

    /// One rule for numbers: kept exactly, meaning what they say, or refused. json-c would
    /// print `-0` as `0`; the other negative zeros survive as text, but readers disagree on
    /// their sign, so every negative zero is refused; so is a literal that underflows.
    @Test func negativeZeroAndUnderflowRejected() throws {
        for literal in ["-0", "-0.0", "-0e0", "-0.0e-0", "-0.000E+5"] {
            let error = jsonError("[\(literal)]")
            #expect(error?.code == .malformedBody, "\(literal)")
            #expect(error?.message.contains("negative zero") == true, "\(literal)")
        }
        for literal in ["1e-400", "-1e-400", "4.9e-324", "2e-308", "0.00001e-304"] {
            let error = jsonError("[\(literal)]")
            #expect(error?.message.contains("underflows") == true, "\(literal)")
        }
        for literal in ["0", "0.0", "0e0", "0.0e-0", "1e-307", "2.2250738585072014e-308"] {
            #expect(text(try json("[\(literal)]").serialized(removing: [])) == "[\(literal)]")
        }
    }

    @Test func decimalsRoundTripExactly() throws {
        for literal in ["1.0", "1e5", "0.1", "1E5", "1.5e+3", "2.50", "0.10", "1e-7", "-3.14159",
                        "123456789012345678901234567890.5", "0.30000000000000004", "1E-0", "100e-2"] {
            let doc = "[\(literal),{\"x\":\(literal)}]"
            let body = try json(doc)
            #expect(body.fields.map(\.value) == [.number(literal), .number(literal)])
            #expect(text(body.serialized(removing: [])) == doc)
        }
    }

    @Test func topLevelScalars() throws {
        for (doc, value) in [("123", FieldValue.number("123")), ("1.0", .number("1.0")), ("-5", .number("-5")),
                             (#""x""#, .string("x")), ("true", .bool(true)), ("null", .null), (" 7 ", .number("7"))] {
            let body = try json(doc)
            #expect(body.fields == [FieldOccurrence(location: .body, path: FieldPath(), value: value)])
            #expect(text(body.serialized(removing: [])) == doc.trimmingSpaces)
        }
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

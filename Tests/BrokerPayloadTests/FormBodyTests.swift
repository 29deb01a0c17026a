import BrokerFields
import BrokerPayload
import Testing

@Suite("Form bodies and query strings")
struct FormBodyTests {
    private func form(_ text: String, location: FieldLocation = .body,
                      embedded: (FieldPath) -> Bool = { _ in false }) throws(PayloadError) -> FormBody {
        try FormBody(Array(text.utf8), limits: defaultLimits, location: location, embeddedJSON: embedded)
    }

    @Test func repeatedKeysPlusAndPercentEscapes() throws {
        let body = try form("a=1&b=x%20y&b=z+w&c=%E4%BD%A0%e5%a5%bd&extra.notify_effect=1&flag&e=&&=v&q=a%3Db=c")
        #expect(pairs(body.fields) == [
            #"a="1""#, #"b="x y""#, #"b="z w""#, #"c="你好""#, #"["extra.notify_effect"]="1""#,
            #"flag="""#, #"e="""#, #"[""]="v""#, #"q="a=b=c""#,
        ])
        #expect(body.fields[4].path == path(key("extra.notify_effect")))
        #expect(body.fields[1].path == body.fields[2].path)
        #expect(body.fields.allSatisfy { $0.location == .body })
    }

    @Test func emptyBody() throws {
        #expect(try form("").fields.isEmpty)
        #expect(try form("&&").fields.isEmpty)
        #expect(try form("").serialized(removing: []).isEmpty)
    }

    @Test func invalidPercentEscapesRejected() {
        for doc in ["a=%", "a=%4", "a=%zz", "a=%4G&b=1", "%=1", "a=1&b=x%"] {
            let error = formError(doc)
            #expect(error?.code == .malformedBody, "\(doc)")
            #expect(error?.message.contains("percent escape") == true, "\(doc)")
        }
        #expect(formError("a=1&b=%zz")?.offset == 6)
    }

    @Test func invalidUTF8Rejected() {
        for doc in ["a=%C0%AF", "a=%FF", "a=%ED%A0%80", "a=%E4%BD", "%C3=1"] {
            let error = formError(doc)
            #expect(error?.code == .malformedBody, "\(doc)")
            #expect(error?.message.contains("UTF-8") == true, "\(doc)")
        }
        do {
            _ = try FormBody([0x61, 0x3D, 0xC3, 0x28], limits: defaultLimits)
            Issue.record("raw invalid UTF-8 accepted")
        } catch {
            #expect(error.code == .malformedBody)
        }
    }

    @Test func canonicalEncodingAndRemovalOfAllOccurrences() throws {
        let body = try form("b=1&a=x+y%2Fz~&b=2&name.with.dots=%E4%BD%A0&flag&c=-._~*'()")
        #expect(text(body.serialized(removing: [])) == "b=1&a=x%20y%2Fz~&b=2&name.with.dots=%E4%BD%A0&flag=&c=-._~%2A%27%28%29")
        #expect(text(body.serialized(removing: [path(key("b"))])) == "a=x%20y%2Fz~&name.with.dots=%E4%BD%A0&flag=&c=-._~%2A%27%28%29")
        #expect(text(body.serialized(removing: [path(key("name")), path(key("name.with.dots")), path(key("a")), path(key("b")), path(key("flag")), path(key("c"))])) == "")
        // The canonical form re-parses to the same fields.
        let again = try FormBody(body.serialized(removing: []), limits: defaultLimits)
        #expect(exactlyEqual(again.fields, body.fields))
    }

    @Test func queryLocation() throws {
        let body = try form("lat=39.9&lng=116.4&key=k", location: .query)
        #expect(body.fields.allSatisfy { $0.location == .query })
        #expect(pairs(body.fields) == [#"lat="39.9""#, #"lng="116.4""#, #"key="k""#])
    }

    @Test func nfcAndNfdNamesAreDistinct() throws {
        let body = try form("caf%C3%A9=1&cafe%CC%81=2")
        #expect(body.fields.count == 2)
        #expect(body.fields[0].path != body.fields[1].path)
        #expect(text(body.serialized(removing: [path(key("caf\u{E9}"))])) == "cafe%CC%81=2")
    }

    static let oppo: String = {
        let message = #"{"target_type":2,"target_value":"tok-oppo-secret","notification":{"title":"Hi","content":"你好"}}"#
        var encoded: [UInt8] = []
        FormBodyTestsEncoder.encode(message, into: &encoded)
        return "auth_token=abc123&message=" + String(decoding: encoded, as: UTF8.self)
    }()

    @Test func oppoEmbeddedMessage() throws {
        let body = try form(Self.oppo, embedded: { $0 == path(key("message")) })
        #expect(pairs(body.fields) == [
            #"auth_token="abc123""#, "message.target_type=2", #"message.target_value="tok-oppo-secret""#,
            #"message.notification.title="Hi""#, #"message.notification.content="你好""#,
        ])
        let out = body.serialized(removing: [path(key("message"), key("target_value"))])
        #expect(!contains(out, "tok-oppo-secret"))
        #expect(!contains(out, "target_value"))
        let plain = try FormBody(out, limits: defaultLimits)
        #expect(pairs(plain.fields) == [
            #"auth_token="abc123""#,
            #"message="{"target_type":2,"notification":{"title":"Hi","content":"你好"}}""#,
        ])
        // Removing the embedded field itself removes the whole pair.
        #expect(text(body.serialized(removing: [path(key("message"))])) == "auth_token=abc123")
    }

    @Test func invalidEmbeddedFormValue() {
        do {
            _ = try FormBody(Array("a=1&message=%7B%22a%22%3A1%2C%22a%22%3A2%7D".utf8), limits: defaultLimits,
                             embeddedJSON: { $0 == path(key("message")) })
            Issue.record("duplicate keys in embedded value accepted")
        } catch {
            #expect(error.code == .malformedBody)
            #expect(error.message.contains("field message"))
            #expect(error.message.contains("duplicate"))
            #expect(error.offset == 12)
        }
    }
}

@Suite("Limits")
struct LimitTests {
    @Test func bodyTooLarge() {
        let limits = PayloadLimits(maxBytes: 10, maxDepth: 64)
        #expect(jsonError(#"{"a":"bc"}"#, limits: limits) == nil)            // 10 bytes
        let error = jsonError(#"{"a":"bcd"}"#, limits: limits)               // 11 bytes
        #expect(error?.code == .bodyTooLarge)
        #expect(error?.message.contains("11") == true)
        #expect(formError("a=12345678", limits: limits) == nil)
        #expect(formError("a=123456789", limits: limits)?.code == .bodyTooLarge)
        // The size check comes before parsing: even garbage is body_too_large.
        #expect(jsonError(String(repeating: "x", count: 11), limits: limits)?.code == .bodyTooLarge)
        #expect(PayloadLimits().maxBytes == 1_048_576)
        #expect(PayloadLimits().maxDepth == 64)
        #expect(PayloadError.Code.bodyTooLarge.rawValue == "body_too_large")
        #expect(PayloadError.Code.malformedBody.rawValue == "malformed_body")
    }
}

/// Independent percent-encoder for the test inputs (everything but unreserved).
enum FormBodyTestsEncoder {
    static func encode(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) {
                out.append(b)
            } else {
                out += [0x25, hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
    }
}

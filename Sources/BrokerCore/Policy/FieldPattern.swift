import BrokerFields

/// One step of a declared field path.
public enum PatternSegment: Hashable, Sendable {
    case key(ExactKey)
    /// `.*`: each key of an object, one level.
    case anyKey
    /// `[*]`: each element of an array.
    case anyIndex
}

/// A declared field path from an adapter: `a.b`, `a[*]`, `a.*`, `a["x.y"]`.
///
/// A bare key is any run of characters other than `.`, `[`, `]`, `"` and
/// whitespace; `*` alone is the wildcard. Keys with those characters, or a key
/// that is literally `*`, are written in brackets as a JSON string: `["x.y"]`.
public struct FieldPattern: Hashable, Sendable, CustomStringConvertible {
    public var segments: [PatternSegment]

    public init(_ segments: [PatternSegment]) { self.segments = segments }

    public struct SyntaxError: Error, Sendable, Equatable {
        public var message: String
    }

    /// Parses the adapter syntax.
    public init(parsing text: String) throws(SyntaxError) {
        let bytes = Array(text.utf8)
        var segments: [PatternSegment] = []
        var i = 0
        func fail(_ message: String) -> SyntaxError {
            SyntaxError(message: "invalid field path '\(text)': \(message)")
        }
        if bytes.isEmpty { throw fail("empty") }
        var expectKey = true   // at start or after '.'
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "[") {
                if i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "*"), bytes[i + 2] == UInt8(ascii: "]") {
                    if expectKey && !segments.isEmpty { throw fail("'.' must be followed by a key") }
                    segments.append(.anyIndex)
                    i += 3
                } else if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\"") {
                    if expectKey && !segments.isEmpty { throw fail("'.' must be followed by a key") }
                    let (key, end) = try FieldPattern.quotedKey(bytes, from: i + 1, fail)
                    guard end < bytes.count, bytes[end] == UInt8(ascii: "]") else { throw fail("missing ']' after quoted key") }
                    segments.append(.key(ExactKey(key)))
                    i = end + 1
                } else {
                    throw fail("'[' must start '[*]' or '[\"key\"]'")
                }
                expectKey = false
            } else if byte == UInt8(ascii: ".") {
                if expectKey { throw fail("empty key before '.'") }
                expectKey = true
                i += 1
            } else {
                guard expectKey else { throw fail("a key must follow '.'") }
                var j = i
                while j < bytes.count, !FieldPattern.isDelimiter(bytes[j]) { j += 1 }
                if j == i {
                    throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[i])))'")
                }
                let key = String(decoding: bytes[i..<j], as: UTF8.self)
                segments.append(key == "*" ? .anyKey : .key(ExactKey(key)))
                expectKey = false
                i = j
            }
        }
        if expectKey { throw fail("ends with '.'") }
        self.segments = segments
    }

    private static func isDelimiter(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ".") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
            || byte == UInt8(ascii: "\"") || byte <= 0x20 || byte == 0x7f
    }

    /// Reads a JSON string starting at `start` (a quote); returns the key and the index after the closing quote.
    private static func quotedKey(_ bytes: [UInt8], from start: Int,
                                  _ fail: (String) -> SyntaxError) throws(SyntaxError) -> (String, Int) {
        var out: [UInt8] = []
        var i = start + 1
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") { return (String(decoding: out, as: UTF8.self), i + 1) }
            if byte == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { break }
                switch bytes[i + 1] {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                default: throw fail("unsupported escape in quoted key")
                }
                i += 2
                continue
            }
            out.append(byte)
            i += 1
        }
        throw fail("unterminated quoted key")
    }

    /// This pattern followed by `other` (an embedded document's inner field).
    public func appending(_ other: FieldPattern) -> FieldPattern {
        FieldPattern(segments + other.segments)
    }

    public var description: String {
        var out = ""
        for segment in segments {
            switch segment {
            case .anyIndex: out += "[*]"
            case .anyKey: out += out.isEmpty ? "*" : ".*"
            case .key(let key):
                if FieldPath.isPlainKey(key.string) {
                    out += (out.isEmpty ? "" : ".") + key.string
                } else {
                    out += "[" + FieldPath.quoted(key.string) + "]"
                }
            }
        }
        return out
    }
}

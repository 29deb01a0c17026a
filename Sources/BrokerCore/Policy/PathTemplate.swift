/// An operation's URL path with named parameters: `/v1/{app_id}/messages:send`.
///
/// A parameter is a whole path segment. Matching compares the literal segments
/// exactly and captures each parameter's percent-decoded value; a path whose
/// parameter is not valid UTF-8 after decoding, is `.` or `..`, or holds a `/` or
/// `\` once decoded does not match (it would address another resource upstream).
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
    }

    public var segments: [Segment]
    public let text: String

    public struct SyntaxError: Error, Sendable { public var message: String }

    public init(parsing text: String) throws(SyntaxError) {
        guard text.hasPrefix("/") else { throw SyntaxError(message: "path '\(text)' must start with '/'") }
        self.text = text
        var segments: [Segment] = []
        var seen: Set<String> = []
        for part in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                let name = String(part.dropFirst().dropLast())
                guard name.utf8.allSatisfy({ PathTemplate.isNameByte($0) }) else {
                    throw SyntaxError(message: "path '\(text)': parameter name '\(name)' must be letters, digits or '_'")
                }
                guard seen.insert(name).inserted else {
                    throw SyntaxError(message: "path '\(text)': parameter '\(name)' appears twice")
                }
                segments.append(.parameter(name))
            } else if part.contains("{") || part.contains("}") {
                throw SyntaxError(message: "path '\(text)': a parameter must be a whole segment, as in /a/{name}/b")
            } else {
                segments.append(.literal(String(part)))
            }
        }
        self.segments = segments
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b == 0x5f
    }

    public var parameterNames: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { return name } else { return nil } }
    }

    /// Captured parameters in template order, or `nil` if `path` (no query) does not match.
    ///
    /// One pass over the path's UTF-8 bytes, segment by segment: every operation of an adapter is
    /// tried against each proxied path, and splitting the path into substrings and searching the
    /// decoded values through Foundation cost ~27k instructions per share where this costs ~6k.
    public func match(_ path: Substring) -> [(name: String, value: String)]? {
        let bytes = path.utf8
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        var captures: [(name: String, value: String)] = []
        var start = bytes.index(after: bytes.startIndex)
        for (index, segment) in segments.enumerated() {
            // The segment runs to the next "/" (or the end); the path has exactly as many segments as the template.
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
            let isLast = index == segments.count - 1
            guard isLast == (end == bytes.endIndex) else { return nil }
            let part = bytes[start..<end]
            switch segment {
            case .literal(let literal):
                guard part.elementsEqual(literal.utf8) else { return nil }
            case .parameter(let name):
                // A value that would change the path's shape once re-rendered or normalised
                // upstream ("..", ".", an encoded "/" or "\") matches nothing.
                guard !part.isEmpty, let value = PercentDecoding.decode(Substring(part)), Self.isPlainSegment(value) else {
                    return nil
                }
                captures.append((name, value))
            }
            if !isLast { start = bytes.index(after: end) }
        }
        return captures
    }

    /// A decoded parameter that stays one segment: no `/` or `\`, and not `.` or `..` before any `;`.
    static func isPlainSegment(_ value: String) -> Bool {
        var dots = 0, others = 0
        var beforeParameters = true
        for byte in value.utf8 {
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "\\") { return false }
            if byte == UInt8(ascii: ";") { beforeParameters = false }
            guard beforeParameters else { continue }
            if byte == UInt8(ascii: ".") { dots += 1 } else { others += 1 }
        }
        return !(others == 0 && (dots == 1 || dots == 2))
    }

    /// The path with parameters filled in (percent-encoded).
    public func render(_ values: [String: String]) -> String? {
        var out = ""
        for segment in segments {
            out += "/"
            switch segment {
            case .literal(let literal): out += literal
            case .parameter(let name):
                guard let value = values[name] else { return nil }
                out += PercentDecoding.encodePathSegment(value)
            }
        }
        return out.isEmpty ? "/" : out
    }

    public var description: String { text }
}

/// Percent-decoding and -encoding of URL path segments (RFC 3986).
public enum PercentDecoding {
    /// Decodes `%XX` escapes; `nil` on a bad escape or bytes that are not UTF-8.
    public static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Hex.nibble), let low = iterator.next().flatMap(Hex.nibble) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }


    private static let hex = Array("0123456789ABCDEF".utf8)

    /// Encodes everything but RFC 3986 unreserved characters, `:` and `@`: sub-delimiters such
    /// as `;` and `=` are encoded, since some servers give `/..;/` the meaning of `/../`.
    public static func encodePathSegment(_ text: String) -> String {
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5a, 0x61...0x7a, 0x30...0x39, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "@"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One problem found in a policy file: where it is and what is wrong.
///
/// Rendered as `file:line: message`, the form editors and CI annotate. Decoding
/// collects every issue instead of stopping at the first one.
public struct PolicyIssue: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file):\(line): \(message)" }

    /// Text taken from a policy file for an issue (an unknown key, a wrong value): at most
    /// `limit` characters, control and invisible format characters escaped as `\u{…}`. A reload's
    /// answer, `check` and the log then show what was wrong without carrying a file's content,
    /// and a line break in it cannot forge another issue line.
    public static func excerpt(_ text: some StringProtocol, limit: Int = 64) -> String {
        var out = ""
        for (count, character) in text.enumerated() {
            if count == limit { return out + "…" }
            out += escaped(String(character))
        }
        return out
    }

    /// `text` with control characters (C0, DEL, C1), line and paragraph separators and bidi
    /// controls written as `\u{…}`.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isHidden) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isHidden(scalar) { out += "\\u{" + String(scalar.value, radix: 16) + "}" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    private static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F
    }
}

/// Accumulates issues while a policy file is decoded.
package final class IssueCollector {
    package init() {}
    package private(set) var issues: [PolicyIssue] = []
    package func add(_ file: String, _ line: Int, _ message: String) {
        // Whatever a message quotes from a file, it stays one line of plain text.
        issues.append(PolicyIssue(file: file, line: line, message: PolicyIssue.escaped(message)))
    }
    package func append(contentsOf other: [PolicyIssue]) { issues.append(contentsOf: other) }
}

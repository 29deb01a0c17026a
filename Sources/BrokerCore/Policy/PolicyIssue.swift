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
}

/// Accumulates issues while a policy file is decoded.
package final class IssueCollector {
    package init() {}
    package private(set) var issues: [PolicyIssue] = []
    package func add(_ file: String, _ line: Int, _ message: String) {
        issues.append(PolicyIssue(file: file, line: line, message: message))
    }
    package func append(contentsOf other: [PolicyIssue]) { issues.append(contentsOf: other) }
}

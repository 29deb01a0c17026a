import BrokerFields
import Foundation

/// What a declared field's value may be, from the adapter: a closed list of `values`, a
/// `pattern` (a regular expression the whole value must match), a JSON `type` and a
/// `max_length` (in Unicode scalars). The closed world then covers values as well as
/// paths: a non-personal field cannot carry free text that is really personal data.
public final class ValueConstraint: Sendable, Hashable {
    public enum ValueType: String, Sendable, Hashable, CaseIterable {
        case string, number, boolean
    }

    // A class, so a `FieldDeclaration` (copied out of the schema for every field matched)
    // carries one reference instead of the constraint's arrays and strings.
    public let values: [String]?
    /// The source of `pattern`, anchored at both ends when checked.
    public let pattern: String?
    public let type: ValueType?
    public let maxLength: Int?
    /// `pattern`, compiled once when the adapter is loaded.
    private let compiled: CompiledPattern?

    /// `nil` when nothing is constrained.
    public init?(values: [String]? = nil, pattern: String? = nil, type: ValueType? = nil, maxLength: Int? = nil) {
        guard values != nil || pattern != nil || type != nil || maxLength != nil else { return nil }
        self.values = values; self.pattern = pattern; self.type = type; self.maxLength = maxLength
        compiled = pattern.flatMap(CompiledPattern.init)
    }

    public static func == (lhs: ValueConstraint, rhs: ValueConstraint) -> Bool {
        lhs.values == rhs.values && lhs.pattern == rhs.pattern && lhs.type == rhs.type && lhs.maxLength == rhs.maxLength
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(values); hasher.combine(pattern); hasher.combine(type); hasher.combine(maxLength)
    }

    /// Whether `value` is allowed. Objects and arrays never are: a constrained field is a leaf.
    public func allows(_ value: FieldValue) -> Bool {
        let text: String
        switch value {
        case .string(let s):
            if let type, type != .string { return false }
            text = s
        case .number(let n):
            if let type, type != .number { return false }
            text = n
        case .bool(let b):
            if let type, type != .boolean { return false }
            text = b ? "true" : "false"
        case .null, .emptyObject, .emptyArray:
            return false
        }
        if let maxLength, text.unicodeScalars.count > maxLength { return false }
        if let values, !values.contains(text) { return false }
        if let regex = compiled?.regex {
            let range = NSRange(text.startIndex..<text.endIndex, in: text)
            guard let match = regex.firstMatch(in: text, options: [.anchored], range: range), match.range == range else { return false }
        }
        return true
    }

    /// Whether `pattern` compiles (checked when the adapter is loaded).
    static func isValid(_ pattern: String) -> Bool { (try? NSRegularExpression(pattern: pattern)) != nil }
}

/// A compiled `pattern`: equal by its source. `NSRegularExpression` is immutable once made,
/// and safe to match from several threads at once.
final class CompiledPattern: Hashable, @unchecked Sendable {
    let source: String
    let regex: NSRegularExpression

    init?(_ source: String) {
        guard let regex = try? NSRegularExpression(pattern: source) else { return nil }
        self.source = source
        self.regex = regex
    }

    static func == (lhs: CompiledPattern, rhs: CompiledPattern) -> Bool { lhs.source == rhs.source }
    func hash(into hasher: inout Hasher) { hasher.combine(source) }
}

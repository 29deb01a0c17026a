import BrokerFields

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
    private let compiled: ValuePattern?

    /// `nil` when nothing is constrained.
    public init?(values: [String]? = nil, pattern: String? = nil, type: ValueType? = nil, maxLength: Int? = nil) {
        guard values != nil || pattern != nil || type != nil || maxLength != nil else { return nil }
        self.values = values; self.pattern = pattern; self.type = type; self.maxLength = maxLength
        compiled = pattern.flatMap { try? ValuePattern($0) }
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
        if let compiled, !compiled.matches(text) { return false }
        return true
    }

    /// Why `pattern` is refused when the adapter is loaded, or `nil` when it compiles (see `ValuePattern`).
    static func problem(_ pattern: String) -> String? {
        do throws(ValuePattern.SyntaxError) {
            _ = try ValuePattern(pattern)
            return nil
        } catch {
            return error.message
        }
    }
}

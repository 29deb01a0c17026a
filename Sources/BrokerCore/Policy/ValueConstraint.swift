import BrokerFields
import Foundation

/// What a declared field's value may be, from the adapter: a closed list of `values`, a
/// `pattern` (a regular expression the whole value must match), a JSON `type` and a
/// `max_length` (in Unicode scalars). The closed world then covers values as well as
/// paths: a non-personal field cannot carry free text that is really personal data.
public struct ValueConstraint: Sendable, Hashable {
    public enum ValueType: String, Sendable, Hashable, CaseIterable {
        case string, number, boolean
    }

    public var values: [String]?
    /// The source of `pattern`, anchored at both ends when checked.
    public var pattern: String?
    public var type: ValueType?
    public var maxLength: Int?

    public init(values: [String]? = nil, pattern: String? = nil, type: ValueType? = nil, maxLength: Int? = nil) {
        self.values = values; self.pattern = pattern; self.type = type; self.maxLength = maxLength
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
        if let regex = Self.compiled(pattern) {
            let range = NSRange(text.startIndex..<text.endIndex, in: text)
            guard let match = regex.firstMatch(in: text, options: [.anchored], range: range), match.range == range else { return false }
        }
        return true
    }

    /// `pattern` compiled once per distinct source (policies hold a few dozen).
    private static let cache = Locked<[String: NSRegularExpression]>([:])

    static func compiled(_ pattern: String?) -> NSRegularExpression? {
        guard let pattern else { return nil }
        if let cached = cache.withLock({ $0[pattern] }) { return cached }
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        cache.withLock { $0[pattern] = regex }
        return regex
    }

    /// Whether `pattern` compiles (checked when the adapter is loaded).
    static func isValid(_ pattern: String) -> Bool { (try? NSRegularExpression(pattern: pattern)) != nil }
}

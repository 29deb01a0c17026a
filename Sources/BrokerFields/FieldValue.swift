/// Where a field travels in an outbound request.
public enum FieldLocation: String, Sendable, Hashable, CaseIterable {
    case body, query, header, path
}

/// The value of one flattened field, as the provider will receive it.
///
/// Numbers keep their exact source text (the codecs refuse numbers they cannot
/// re-serialise exactly). Empty objects and arrays are leaves of their own.
public enum FieldValue: Sendable, Hashable {
    case string(String)
    case number(String)
    case bool(Bool)
    case null
    case emptyObject
    case emptyArray

    /// A canonical text of the value, the input of keyed fingerprints.
    public var canonicalText: String {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .emptyObject: return "{}"
        case .emptyArray: return "[]"
        }
    }
}

/// One value found in a request, in document order: where it is and what it holds.
public struct FieldOccurrence: Sendable, Hashable {
    public var location: FieldLocation
    public var path: FieldPath
    public var value: FieldValue

    @inlinable
    public init(location: FieldLocation, path: FieldPath, value: FieldValue) {
        self.location = location
        self.path = path
        self.value = value
    }
}

/// Values a payload is sent with instead of those received (minimised fields): per path, the
/// received value → the value to send. Keyed by value too, because a form or query may hold one
/// name several times.
public typealias FieldReplacements = [FieldPath: [FieldValue: FieldValue]]

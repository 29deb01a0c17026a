import BrokerFields
import BrokerPayload
import Testing

let defaultLimits = PayloadLimits()

func json(_ text: String, limits: PayloadLimits = defaultLimits,
          embedded: @escaping (FieldPath) -> Bool = { _ in false }) throws(PayloadError) -> JSONBody {
    try JSONBody(Array(text.utf8), limits: limits, embeddedJSON: embedded)
}

/// The error of parsing `bytes` as JSON, or nil if it parsed.
func jsonError(_ bytes: [UInt8], limits: PayloadLimits = defaultLimits,
               embedded: @escaping (FieldPath) -> Bool = { _ in false }) -> PayloadError? {
    do {
        _ = try JSONBody(bytes, limits: limits, embeddedJSON: embedded)
        return nil
    } catch {
        return error
    }
}

func jsonError(_ text: String, limits: PayloadLimits = defaultLimits,
               embedded: @escaping (FieldPath) -> Bool = { _ in false }) -> PayloadError? {
    jsonError(Array(text.utf8), limits: limits, embedded: embedded)
}

func formError(_ text: String, limits: PayloadLimits = defaultLimits) -> PayloadError? {
    do {
        _ = try FormBody(Array(text.utf8), limits: limits)
        return nil
    } catch {
        return error
    }
}

func path(_ segments: PathSegment...) -> FieldPath { FieldPath(segments) }
func key(_ k: String) -> PathSegment { .key(ExactKey(k)) }

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard !n.isEmpty, haystack.count >= n.count else { return n.isEmpty }
    for start in 0...(haystack.count - n.count) where haystack[start..<(start + n.count)].elementsEqual(n) {
        return true
    }
    return false
}

/// (path description, value) pairs, for compact expectations.
func pairs(_ fields: [FieldOccurrence]) -> [String] {
    fields.map { "\($0.path)=\(describe($0.value))" }
}

func describe(_ value: FieldValue) -> String {
    switch value {
    case .string(let s): return "\"" + s + "\""
    case .number(let n): return n
    case .bool(let b): return b ? "true" : "false"
    case .null: return "null"
    case .emptyObject: return "{}"
    case .emptyArray: return "[]"
    }
}

/// Fields compared with exact bytes for keys and string values (String == is
/// canonical equivalence, which would hide an NFC/NFD change).
func exactlyEqual(_ a: [FieldOccurrence], _ b: [FieldOccurrence]) -> Bool {
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) {
        guard x.location == y.location, x.path == y.path else { return false }
        switch (x.value, y.value) {
        case (.string(let s), .string(let t)), (.number(let s), .number(let t)):
            if !s.utf8.elementsEqual(t.utf8) { return false }
        default:
            if x.value != y.value { return false }
        }
    }
    return true
}

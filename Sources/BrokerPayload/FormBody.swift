import BrokerFields

/// An `application/x-www-form-urlencoded` body, or a URL query string (location `.query`).
///
/// What: the decoded name/value pairs, their flattened fields and a canonical
/// re-encoding with some fields removed.
///
/// Why: as for JSON, the broker forwards its own canonical encoding of what it
/// inspected, never the caller's bytes, so an odd escape cannot be read one way by the
/// broker and another way by the provider.
///
/// Parsing rules: the bytes (a query string without the leading `?`) are split on
/// `&`; empty pairs are skipped; the first `=` separates name from value (a pair
/// without `=` is a name with an empty value); `+` decodes to a space; `%XX` needs two
/// hex digits; the decoded name and value must be valid UTF-8. Anything else is
/// `malformed_body`; more than `limits.maxBytes` bytes is `body_too_large`.
///
/// Invariants: each pair is one field with path `[.key(name)]` (a name containing
/// dots is ONE key), in order; repeated names give one occurrence each, with the same
/// path. A value whose path satisfies `embeddedJSON` is parsed as a strict JSON
/// document (see `JSONBody`) and flattened into (`message.target_value`).
///
/// Canonical encoding (`serialized`): `name=value` pairs joined by `&`, always with
/// `=`, in the original order; every byte except the unreserved `A-Z a-z 0-9 - . _ ~`
/// is percent-encoded with upper-case hex (space is `%20`, never `+`).
public struct FormBody: Sendable {
    private struct Pair: Sendable {
        var name: String
        var value: String
        var embedded: JSONBody?
    }

    private let pairs: [Pair]
    /// Every field in order (embedded JSON values flattened in place).
    public let fields: [FieldOccurrence]

    /// Parses `bytes` as a form body or query string.
    public init(bytes: UnsafeRawBufferPointer, limits: PayloadLimits, location: FieldLocation = .body,
                embeddedJSON: (FieldPath) -> Bool = { _ in false }) throws(PayloadError) {
        if bytes.count > limits.maxBytes {
            throw PayloadError.tooLarge(bytes.count, limit: limits.maxBytes)
        }
        var pairs: [Pair] = []
        var fields: [FieldOccurrence] = []
        var scratch: [UInt8] = []
        let n = bytes.count
        var start = 0
        while start <= n {
            var end = start
            while end < n && bytes[end] != UInt8(ascii: "&") { end += 1 }
            if end > start {
                if pairs.count >= limits.maxFields {
                    throw PayloadError(code: .tooManyFields, message: "more than \(limits.maxFields) parameters", offset: start)
                }
                var eq = start
                while eq < end && bytes[eq] != UInt8(ascii: "=") { eq += 1 }
                let name = try Self.decode(bytes, start, eq, into: &scratch, what: "name")
                let value = eq < end
                    ? try Self.decode(bytes, eq + 1, end, into: &scratch, what: "value")
                    : ""
                let path = FieldPath([.key(ExactKey(name))])
                var pair = Pair(name: name, value: value, embedded: nil)
                if embeddedJSON(path) {
                    let valueStart = eq < end ? eq + 1 : end
                    do throws(PayloadError) {
                        let parsed = try Array(value.utf8).withUnsafeBytes { buffer in
                            Result { () throws(PayloadError) -> JSONBody.Parsed in
                                try JSONBody.parse(buffer, limits: limits, location: location,
                                                   embeddedJSON: embeddedJSON, base: path.segments)
                            }
                        }.get()
                        let body = JSONBody(embeddedParsed: parsed)
                        pair.embedded = body
                        fields.append(contentsOf: body.fields)
                    } catch {
                        let wrapped = PayloadError.embedded(error, at: path)
                        throw PayloadError(code: wrapped.code, message: wrapped.message + " (pair value at byte offset \(valueStart))",
                                           offset: valueStart)
                    }
                } else {
                    fields.append(FieldOccurrence(location: location, path: path, value: .string(value)))
                }
                pairs.append(pair)
            }
            start = end + 1
        }
        self.pairs = pairs
        self.fields = fields
    }

    /// Same as `init(bytes:limits:location:embeddedJSON:)` for an array of bytes.
    public init(_ bytes: [UInt8], limits: PayloadLimits, location: FieldLocation = .body,
                embeddedJSON: (FieldPath) -> Bool = { _ in false }) throws(PayloadError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(PayloadError) -> FormBody in
                try FormBody(bytes: buffer, limits: limits, location: location, embeddedJSON: embeddedJSON)
            }
        }
        self = try result.get()
    }

    /// Canonical re-encoding without the fields in `removing`.
    ///
    /// `[.key(name)]` removes every occurrence of that name (an embedded one included);
    /// a longer path below an embedded value removes the inner field and the value is
    /// rewritten with the inner document re-serialised (see `JSONBody.serialized`).
    /// A value in `replacing` for its name is sent instead of the received one (minimised fields).
    /// Paths that match nothing are ignored. Pure: repeatable, no state changes.
    public func serialized(removing: Set<FieldPath>, replacing: FieldReplacements = [:]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pairs.count * 16)
        for pair in pairs {
            let path = FieldPath([.key(ExactKey(pair.name))])
            if removing.contains(path) { continue }
            if !out.isEmpty { out.append(UInt8(ascii: "&")) }
            Self.encode(pair.name.utf8, into: &out)
            out.append(UInt8(ascii: "="))
            if let embedded = pair.embedded {
                Self.encode(embedded.serialize(removing: removing, replacing: replacing), into: &out)
            } else if case .string(let sent)? = replacing[path]?[.string(pair.value)] {
                Self.encode(sent.utf8, into: &out)
            } else {
                Self.encode(pair.value.utf8, into: &out)
            }
        }
        return out
    }

    // MARK: Encoding

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func encode<S: Sequence>(_ bytes: S, into out: inout [UInt8]) where S.Element == UInt8 {
        for b in bytes {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0F)])
            }
        }
    }

    /// Percent-decodes `bytes[start..<end]` (`+` is a space) and validates UTF-8.
    private static func decode(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int,
                               into scratch: inout [UInt8], what: String) throws(PayloadError) -> String {
        scratch.removeAll(keepingCapacity: true)
        var k = start
        while k < end {
            let b = bytes[k]
            if b == UInt8(ascii: "%") {
                guard k + 2 < end,
                      let hi = Hex.nibble(bytes[k + 1]), let lo = Hex.nibble(bytes[k + 2]) else {
                    throw PayloadError.malformed("invalid percent escape in a \(what)", at: k)
                }
                scratch.append(hi << 4 | lo)
                k += 3
            } else if b == UInt8(ascii: "+") {
                scratch.append(0x20)
                k += 1
            } else {
                scratch.append(b)
                k += 1
            }
        }
        guard let text = String(validating: scratch, as: UTF8.self) else {
            throw PayloadError(code: .malformedBody,
                               message: "\(what) is not valid UTF-8 after percent-decoding (pair part at byte offset \(start))",
                               offset: start)
        }
        return text
    }
}

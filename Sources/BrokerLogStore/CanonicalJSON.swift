/// A JSON value with one canonical byte form: the input of the share log's hash chain.
///
/// The form: objects with keys sorted by their UTF-8 bytes, no whitespace,
/// integers only (no floats, so no formatting ambiguity), `null` written out,
/// strings as raw UTF-8 with only `"`, `\` and the control characters escaped
/// (`\b \f \n \r \t`, others as lowercase `\u00xx`) — the string rules of
/// RFC 8785. The same record always yields the same bytes, on every platform
/// and Swift version, which `JSONEncoder` does not promise.
package enum CanonicalJSON: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    case array([CanonicalJSON])
    case object([String: CanonicalJSON])

    package static func string(_ value: String?) -> CanonicalJSON { value.map { .string($0) } ?? .null }
    package static func int(_ value: Int?) -> CanonicalJSON { value.map { .int(Int64($0)) } ?? .null }

    /// This value with every object member whose value is null left out, at any depth (the share
    /// log's records since 2026-12-07: an absent member reads as null).
    package var withoutNullMembers: CanonicalJSON {
        switch self {
        case .object(let members): .object(members.compactMapValues { $0 == .null ? nil : $0.withoutNullMembers })
        case .array(let items): .array(items.map(\.withoutNullMembers))
        default: self
        }
    }

    /// The canonical bytes.
    package var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        write(to: &out)
        return out
    }

    package func write(to out: inout [UInt8]) {
        switch self {
        case .string(let s): Self.writeString(s, to: &out)
        case .int(let n): Self.writeInt(n, to: &out)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                members[key]?.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Writes `s` as a canonical JSON string. Runs of bytes that need no
    /// escaping (everything but `"`, `\` and the control characters) are
    /// copied with one `append(contentsOf:)` each.
    package static func writeString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { writeString(utf8: $0, to: &out) }
    }

    package static func writeString(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var i = 0
        let count = bytes.count
        while i < count {
            let byte = bytes[i]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
            out.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0c: out.append(UInt8(ascii: "f"))
            case 0x0a: out.append(UInt8(ascii: "n"))
            case 0x0d: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            default:
                out.append(UInt8(ascii: "u"))
                out.append(UInt8(ascii: "0"))
                out.append(UInt8(ascii: "0"))
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0x0f))
            }
            i += 1
            runStart = i
        }
        if runStart < count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<count])) }
        out.append(UInt8(ascii: "\""))
    }

    /// Decimal digits, as `String(n)` writes them, without allocating a `String`.
    package static func writeInt(_ n: Int64, to out: inout [UInt8]) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = n.magnitude
        if magnitude < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude))
            return
        }
        // 20 digits hold any UInt64.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var i = 24
            while magnitude > 0 {
                i -= 1
                buffer[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i..<24]))
        }
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
    }
}

extension CanonicalJSON {
    /// Parses `text` when it is an array of strings in the canonical form with
    /// no escape in any string (`["a","b"]`, as `addGrant` writes categories);
    /// `nil` for anything else, for the caller to hand to a full JSON parser.
    package static func stringArray(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { bytes -> [String]? in
            let count = bytes.count
            guard count >= 2, bytes[0] == UInt8(ascii: "["), bytes[count - 1] == UInt8(ascii: "]") else { return nil }
            var result: [String] = []
            if count == 2 { return result }
            var i = 1
            while true {
                guard i < count, bytes[i] == UInt8(ascii: "\"") else { return nil }
                let start = i + 1
                i = start
                while i < count {
                    let byte = bytes[i]
                    if byte == UInt8(ascii: "\"") { break }
                    if byte < 0x20 || byte == UInt8(ascii: "\\") { return nil }
                    i += 1
                }
                guard i < count else { return nil }
                result.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
                i += 1
                guard i < count else { return nil }
                if bytes[i] == UInt8(ascii: "]") { return i == count - 1 ? result : nil }
                guard bytes[i] == UInt8(ascii: ",") else { return nil }
                i += 1
            }
        }
    }
}

/// One step of a concrete field path: an object key or an array index.
public enum PathSegment: Hashable, Sendable {
    case key(ExactKey)
    case index(Int)
}

/// The concrete location of one value inside a body, a query string, the
/// headers or the URL path: `message.token[0]`, `["x.y"].z`.
///
/// Paths are rendered in the same syntax as the adapter's field patterns, with
/// concrete indices instead of `[*]`. Keys that are not plain identifiers are
/// rendered in the bracketed, quoted form so the rendering is unambiguous.
public struct FieldPath: Hashable, Sendable, CustomStringConvertible {
    public var segments: [PathSegment]

    @inlinable
    public init(_ segments: [PathSegment] = []) { self.segments = segments }

    public init(keys: String...) { self.segments = keys.map { .key(ExactKey($0)) } }

    @inlinable
    public func appending(_ segment: PathSegment) -> FieldPath {
        var copy = self
        copy.segments.append(segment)
        return copy
    }

    @inlinable
    public func prefix(_ count: Int) -> FieldPath { FieldPath(Array(segments.prefix(count))) }

    public var description: String { rendered() }

    /// `a.b[0]["x y"]`, written into one byte buffer and made a string once (a `String` append per
    /// segment cost ~300 instructions each). `replacement` may give, for the key segment at an
    /// index, the text to write in its place (bare, after a `.`).
    public func rendered(replacing replacement: (Int) -> String? = { _ in nil }) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24 * segments.count)
        for (position, segment) in segments.enumerated() {
            switch segment {
            case .index(let i):
                out.append(UInt8(ascii: "["))
                out.append(contentsOf: String(i).utf8)
                out.append(UInt8(ascii: "]"))
            case .key(let key):
                if let text = replacement(position) {
                    if !out.isEmpty { out.append(UInt8(ascii: ".")) }
                    out.append(contentsOf: text.utf8)
                } else if FieldPath.isPlainKey(key.string) {
                    if !out.isEmpty { out.append(UInt8(ascii: ".")) }
                    out.append(contentsOf: key.string.utf8)
                } else {
                    out.append(UInt8(ascii: "["))
                    out.append(contentsOf: FieldPath.quoted(key.string).utf8)
                    out.append(UInt8(ascii: "]"))
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A key that renders bare: non-empty, `[A-Za-z0-9_-:$@]` only, not `*`.
    public static func isPlainKey(_ key: String) -> Bool {
        // Over the contiguous bytes when the string has them (native strings do): no view iteration.
        key.utf8.withContiguousStorageIfAvailable(isPlain) ?? isPlain(key.utf8)
    }

    private static func isPlain<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        if bytes.isEmpty { return false }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"),
                 UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "@"):
                continue
            default:
                return false
            }
        }
        return true
    }

    public static func quoted(_ key: String) -> String { JSONText.quoted(key) }

}

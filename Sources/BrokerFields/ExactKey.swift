/// An object key or parameter name compared as exact UTF-8 bytes.
///
/// Swift's `String` equality and hashing follow Unicode canonical equivalence, so
/// `"é"` (NFC) and `"e\u{301}"` (NFD) are equal strings. A provider's parser does
/// not normalise, so for the broker they are two different fields: every key
/// comparison in the policy engine and in the payload codecs goes through this type.
public struct ExactKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let string: String

    @inlinable
    public init(_ string: String) { self.string = string }

    @inlinable
    public static func == (lhs: ExactKey, rhs: ExactKey) -> Bool {
        lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        var count = 0
        for byte in string.utf8 { hasher.combine(byte); count &+= 1 }
        hasher.combine(count)
    }

    @inlinable
    public static func < (lhs: ExactKey, rhs: ExactKey) -> Bool {
        lhs.string.utf8.lexicographicallyPrecedes(rhs.string.utf8)
    }

    public var description: String { string }
}

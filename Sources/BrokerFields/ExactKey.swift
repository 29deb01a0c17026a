#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

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
        // The lengths first, then the contiguous bytes at once: every schema lookup compares keys,
        // and `elementsEqual` stepping through two UTF-8 views cost ~400 instructions a comparison.
        guard lhs.string.utf8.count == rhs.string.utf8.count else { return false }
        let same: Bool? = lhs.string.utf8.withContiguousStorageIfAvailable { a in
            rhs.string.utf8.withContiguousStorageIfAvailable { b in
                a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
            }
        } ?? nil
        return same ?? lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        // One call over the contiguous UTF-8 (native strings always have it), not one per byte.
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
            hasher.combine(bytes.count)
        }
        if done == nil {
            // Same bytes, same hash, whatever the string's storage.
            let bytes = Array(string.utf8)
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
            hasher.combine(bytes.count)
        }
    }

    @inlinable
    public static func < (lhs: ExactKey, rhs: ExactKey) -> Bool {
        lhs.string.utf8.lexicographicallyPrecedes(rhs.string.utf8)
    }

    public var description: String { string }
}

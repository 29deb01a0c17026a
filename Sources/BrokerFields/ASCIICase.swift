extension Collection where Element == UInt8 {
    /// Whether these bytes spell `lowercase` (lower-case ASCII) with its letters in either case: HTTP
    /// schemes and field names compared on their bytes, without a lower-cased copy per comparison.
    @inlinable
    public func equalsIgnoringASCIICase(_ lowercase: String) -> Bool {
        count == lowercase.utf8.count && zip(self, lowercase.utf8).allSatisfy { byte, expected in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
        }
    }
}

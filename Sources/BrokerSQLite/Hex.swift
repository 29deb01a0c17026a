import Foundation

/// Lowercase hex, without `String(format:)` (slow on Linux: STACK.md).
enum Hex {
    static func encode(_ bytes: Data) -> String {
        bytes.withUnsafeBytes { encode(UnsafeRawBufferPointer($0)) }
    }

    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            var i = 0
            for byte in bytes {
                out[i] = digit(byte >> 4)
                out[i + 1] = digit(byte & 0x0f)
                i += 2
            }
            return i
        }
    }

    @inline(__always)
    private static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
    }
}

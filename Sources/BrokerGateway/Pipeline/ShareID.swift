import BrokerCore
import Foundation
@preconcurrency import Crypto

/// Share ids: time-ordered (UUIDv7 layout), so ids sort by creation like the log.
public enum ShareID {
    public static func make(at time: Date) -> String {
        var bytes: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &bytes) { raw -> String in
            let ms = UInt64(max(0, time.timeIntervalSince1970 * 1000))
            for i in 0..<6 { raw[i] = UInt8((ms >> (8 * (5 - UInt64(i)))) & 0xff) }
            RandomBytes.fill(UnsafeMutableRawBufferPointer(rebasing: raw[6..<16]))
            raw[6] = (raw[6] & 0x0f) | 0x70
            raw[8] = (raw[8] & 0x3f) | 0x80
            // 8-4-4-4-12 hex digits written straight into the string's storage.
            return String(unsafeUninitializedCapacity: 36) { out in
                var o = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                    out[o] = Hex.digit(raw[i] >> 4)
                    out[o + 1] = Hex.digit(raw[i] & 0x0f)
                    o += 2
                }
                return o
            }
        }
    }
}

/// Cryptographically random bytes taken 4 KiB at a time: one CSPRNG call per ~400 share ids
/// instead of two `getrandom` syscalls per id (~5 µs under load).
enum RandomBytes {
    private struct Pool { var bytes = [UInt8](repeating: 0, count: 4096); var used = 4096 }
    private static let pool = Locked(Pool())

    static func fill(_ target: UnsafeMutableRawBufferPointer) {
        pool.withLock { pool in
            if pool.used + target.count > pool.bytes.count {
                refill(&pool.bytes)
                pool.used = 0
            }
            pool.bytes.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[pool.used..<(pool.used + target.count)]))
            }
            pool.used += target.count   // each byte is handed out once
        }
    }

    private static func refill(_ bytes: inout [UInt8]) {
        // BoringSSL's CSPRNG (through swift-crypto), in one call for the whole pool.
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: bytes.count * 8))
        key.withUnsafeBytes { source in bytes.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
    }
}

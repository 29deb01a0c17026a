@preconcurrency import Crypto
import BrokerFields

/// Cryptographically random bytes taken 4 KiB at a time: one CSPRNG call per ~400 share ids
/// instead of two `getrandom` syscalls per id (~5 µs under load), and for the nonces that seal
/// revocation keys (AES-GCM would otherwise call `getrandom` per share).
public enum RandomBytes {
    private struct Pool { var bytes = [UInt8](repeating: 0, count: 4096); var used = 4096 }
    private static let pool = Locked(Pool())

    public static func fill(_ target: UnsafeMutableRawBufferPointer) {
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

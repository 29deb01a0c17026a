import BrokerFields
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Cryptographically random bytes taken 4 KiB at a time: one `getrandom` per ~150 shares
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

    /// The kernel's CSPRNG, opened once.
    private static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    private static func refill(_ bytes: inout [UInt8]) {
        // The kernel's CSPRNG in one read for the whole pool. (swift-crypto's `SymmetricKey(size:)`
        // draws its bytes 8 at a time through the standard library: 512 `getrandom` calls per refill.)
        bytes.withUnsafeMutableBytes { buffer in
            var filled = 0
            while urandom >= 0, filled < buffer.count {
                let got = read(urandom, buffer.baseAddress! + filled, buffer.count - filled)
                if got > 0 { filled += got } else if got < 0, errno == EINTR { continue } else { break }
            }
            if filled < buffer.count {
                // No /dev/urandom (a chroot without it): the standard library's generator, slower.
                var generator = SystemRandomNumberGenerator()
                for index in filled..<buffer.count { buffer[index] = generator.next() }
            }
        }
    }
}

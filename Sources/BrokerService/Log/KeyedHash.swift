@preconcurrency import Crypto

/// HMAC-SHA-256 (RFC 2104) from its two midstates: SHA-256 after the key's inner pad and after its
/// outer pad, computed once. A MAC copies them and hashes only its own bytes (two compressions for a
/// short message) on the concrete `SHA256`, where `HMAC<SHA256>` redoes both pads per call through
/// unspecialised generics (18k → ~4k instructions for a short message).
public struct KeyedHash: @unchecked Sendable {
    private let inner: SHA256
    private let outer: SHA256
    private static let blockSize = 64

    public init(key: [UInt8]) {
        var block = key.count > Self.blockSize ? Array(SHA256.hash(data: key)) : key
        block += [UInt8](repeating: 0, count: Self.blockSize - block.count)
        var inner = SHA256(), outer = SHA256()
        inner.update(data: block.map { $0 ^ 0x36 })
        outer.update(data: block.map { $0 ^ 0x5c })
        self.inner = inner
        self.outer = outer
    }

    /// The MAC of the bytes `feed` passes to its argument, in order.
    public func mac(_ feed: (_ update: (UnsafeRawBufferPointer) -> Void) -> Void) -> SHA256Digest {
        var hash = inner
        feed { hash.update(bufferPointer: $0) }
        let innerDigest = hash.finalize()
        var mac = outer
        innerDigest.withUnsafeBytes { mac.update(bufferPointer: $0) }
        return mac.finalize()
    }
}

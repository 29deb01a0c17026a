@preconcurrency import Crypto
import BrokerFields
import BrokerService
import Foundation

/// The last record of a stream: where the next one chains from.
package struct ChainTip: Sendable {
    package var seq: Int64
    package var hash: Data
    package init(seq: Int64, hash: Data) { self.seq = seq; self.hash = hash }
    package static let genesis = ChainTip(seq: 0, hash: Data(repeating: 0, count: 32))

    /// The next record of `stream`'s chain from `parts`: its canonical bytes, the hash it chains from
    /// and its own; the tip moves to it. Both stores append through this, then write the row.
    package mutating func next(_ parts: CanonicalParts, stream: String)
        -> (body: [UInt8], prevHash: Data, hash: Data, position: ChainPosition) {
        let prevHash = hash
        seq += 1
        let body = parts.body(seq: seq)
        hash = ChainHash.hash(prev: prevHash, body: body)
        return (body, prevHash, hash, ChainPosition(stream: stream, seq: seq, hash: Hex.encode(hash)))
    }
}

/// The chain's hash: SHA-256 of the previous hash's 32 bytes followed by the canonical body.
package enum ChainHash {
    package static func hash(prev: Data, body: [UInt8]) -> Data {
        var hasher = SHA256()
        // Both through their buffers: `update(data:)` on a `Data` walked it byte by byte (~3k a record).
        prev.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        body.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Data($0) }
    }

    package static func hash<Body: DataProtocol>(prev: Data, body: Body) -> Data {
        var hasher = SHA256()
        hasher.update(data: prev)
        hasher.update(data: body)
        return Data(hasher.finalize())
    }
}

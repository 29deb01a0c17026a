import BrokerFields
import BrokerLogStore
import BrokerService
@preconcurrency import Crypto
import Foundation
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// Signs a checkpoint of this node's stream in every batch that crosses a multiple of `every`
    /// records (with this node's key: each node signs the stream it writes).
    public func enableCheckpoints(signer: CheckpointSigner, every: Int) {
        checkpointing.withLock { $0 = (signer, Int64(max(1, every))) }
    }

    /// Signs a checkpoint of this node's head now (on shutdown), unless there is one already.
    public func checkpointNow(at time: Date = Date()) async throws(LogUnavailable) {
        _ = try await submit(.checkpoint(time))
    }

    func writeCheckpoint(_ signer: CheckpointSigner, _ chain: ChainTip, time: Date, _ connection: PostgresConnection) async throws {
        let checkpoint = signer.sign(stream: stream, size: chain.seq, head: Hex.encode(chain.hash), timeUs: Microseconds.from(time))
        let signature = ByteBuffer(bytes: Data(base64Encoded: checkpoint.signature) ?? Data())
        // The key is registered with the checkpoints it signs (once per key: a no-op after that).
        try await connection.query("""
            INSERT INTO log_keys (stream, key_id, public_key, registered_at)
            VALUES (\(stream), \(signer.keyID), \(ByteBuffer(bytes: signer.publicKey.rawRepresentation)), \(checkpoint.timeUs))
            ON CONFLICT DO NOTHING
            """, logger: logger)
        try await connection.query("""
            INSERT INTO log_checkpoints (stream, size, head, time_us, signature, key_id)
            VALUES (\(checkpoint.stream), \(checkpoint.size), \(ByteBuffer(bytes: chain.hash)), \(checkpoint.timeUs),
                    \(signature), \(checkpoint.keyID))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}

extension PostgresStore: LogAudit {
    /// Every node's registered checkpoint key, by stream.
    public func nodeKeys() async throws(LogUnavailable) -> [NodeKey] {
        try await run("reading the nodes' keys") { connection in
            var keys: [NodeKey] = []
            for try await (stream, keyID, key) in try await connection.query("""
                SELECT stream, key_id, public_key FROM log_keys ORDER BY stream, registered_at
                """, logger: self.logger).decode((String, String, ByteBuffer).self) {
                keys.append(NodeKey(stream: stream, keyID: keyID, publicKey: Hex.encode(Array(key.readableBytesView))))
            }
            return keys
        }
    }

    /// Every stream's checkpoints, by stream and size.
    public func checkpoints() async throws(LogUnavailable) -> [Checkpoint] {
        try await run("reading checkpoints") { connection in
            var list: [Checkpoint] = []
            for try await (stream, size, head, time, signature, keyID) in try await connection.query("""
                SELECT stream, size, head, time_us, signature, key_id FROM log_checkpoints ORDER BY stream, size
                """, logger: self.logger).decode((String, Int64, ByteBuffer, Int64, ByteBuffer, String).self) {
                list.append(Checkpoint(stream: stream, size: size, head: Hex.encode(Data(head.readableBytesView)), timeUs: time,
                                       signature: Data(signature.readableBytesView).base64EncodedString(), keyID: keyID))
            }
            return list
        }
    }

    /// Every stream from its first record: seq without gaps, each `prev_hash` the previous
    /// hash, each hash recomputed from the body; then every checkpoint against the record at its
    /// size, and its signature where it was signed by `publicKey` (other nodes sign with their
    /// own keys; their signatures are checked with theirs).
    public func verifyLog(publicKey: Curve25519.Signing.PublicKey?) async throws(LogUnavailable) -> LogVerification {
        try await verify(publicKey: publicKey, exported: [])
    }

    /// `verifyLog`, also holding the log against checkpoints exported earlier (a database rolled
    /// back to an older copy, its checkpoints with it, is only caught by those).
    public func verify(publicKey: Curve25519.Signing.PublicKey?, exported: [Checkpoint]) async throws(LogUnavailable) -> LogVerification {
        let started = ContinuousClock.now
        let checkpoints = Array(Set(try await checkpoints() + exported)).sorted { ($0.stream, $0.size) < ($1.stream, $1.size) }
        let wanted = Dictionary(grouping: checkpoints, by: \.stream)
        let keyID = publicKey.map(CheckpointSigner.keyID(of:))
        // A whole log: a deadline of its own (the usual one is for a single read or batch).
        let (records, streams, firstBad) = try await run("verifying the share log", timeout: .seconds(3600)) { connection in
            try await self.verifyStreams(connection, checkpoints: wanted)
        }
        var bad = firstBad
        if bad == nil {
            // Each checkpoint against its node's registered key, and against the given key when it is that key.
            var keys: [String: Curve25519.Signing.PublicKey] = [:]
            for node in try await nodeKeys() {
                if let key = CheckpointDocument.publicKey(hex: node.publicKey) { keys[node.stream + "\u{0}" + node.keyID] = key }
            }
            if let publicKey, let keyID { for checkpoint in checkpoints where checkpoint.keyID == keyID {
                keys[checkpoint.stream + "\u{0}" + keyID] = publicKey
            } }
            if let forged = checkpoints.first(where: { checkpoint in
                keys[checkpoint.stream + "\u{0}" + checkpoint.keyID].map { !checkpoint.isSigned(by: $0) } ?? false
            }) {
                bad = "\(forged.stream)#\(forged.size): checkpoint signature does not verify"
            }
        }
        let seconds = max(1e-9, Double((ContinuousClock.now - started).microseconds) / 1e6)
        return LogVerification(records: records, streams: Int64(streams), checkpoints: checkpoints.count, firstBad: bad,
                               recordsPerSecond: Double(records) / seconds)
    }

    /// Walks every stream; `(records checked, streams, first bad record)`.
    private func verifyStreams(_ connection: PostgresConnection,
                               checkpoints wanted: [String: [Checkpoint]]) async throws -> (Int64, Int, String?) {
            var streams: [String] = []
            for try await stream in try await connection.query("SELECT DISTINCT stream FROM share_log ORDER BY stream",
                                                               logger: logger).decode(String.self) {
                streams.append(stream)
            }
            var total: Int64 = 0
            for stream in streams {
                var heads: [Int64: String] = [:]
                let sizes = Set((wanted[stream] ?? []).map(\.size))
                var previous = Data(repeating: 0, count: 32)
                var seq: Int64 = 0
                while true {
                    var read = 0
                    for try await (next, body, prev, hash) in try await connection.query("""
                        SELECT seq, body, prev_hash, hash FROM share_log WHERE stream = \(stream) AND seq > \(seq)
                        ORDER BY seq LIMIT 10000
                        """, logger: logger).decode((Int64, String, ByteBuffer, ByteBuffer).self) {
                        read += 1
                        guard next == seq + 1 else { return (total, streams.count, "\(stream)#\(seq + 1): missing") }
                        guard Data(prev.readableBytesView) == previous else {
                            return (total, streams.count, "\(stream)#\(next): prev_hash does not match the previous record")
                        }
                        let stored = Data(hash.readableBytesView)
                        guard ChainHash.hash(prev: previous, body: Array(body.utf8)) == stored else {
                            return (total, streams.count, "\(stream)#\(next): hash does not match its body")
                        }
                        if sizes.contains(next) { heads[next] = Hex.encode(stored) }
                        previous = stored
                        seq = next
                        total += 1
                    }
                    if read == 0 { break }
                }
                for checkpoint in wanted[stream] ?? [] {
                    guard let head = heads[checkpoint.size] else {
                        return (total, streams.count, "\(stream)#\(checkpoint.size): the log is shorter than a signed checkpoint")
                    }
                    guard head == checkpoint.head else {
                        return (total, streams.count, "\(stream)#\(checkpoint.size): differs from the signed checkpoint")
                    }
                }
            }
            // A checkpoint of a stream that has no record at all: the whole stream is gone.
            if let lost = wanted.keys.sorted().first(where: { !streams.contains($0) }) {
                return (total, streams.count, "\(lost)#1: the stream is gone but was signed")
            }
            return (total, streams.count, nil as String?)
        }
}

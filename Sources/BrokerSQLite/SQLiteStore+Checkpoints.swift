import BrokerLogStore
import BrokerCore
@preconcurrency import Crypto
import BrokerService
import Foundation
import GRDB

extension SQLiteStore {
    /// Signs a checkpoint with `signer` in every batch that crosses a multiple of `every` records.
    public func enableCheckpoints(signer: CheckpointSigner, every: Int) {
        checkpointing.withLock { $0 = (signer, Int64(max(1, every))) }
    }

    /// Signs a checkpoint of the head now (on shutdown), unless there is one already.
    public func checkpointNow(at time: Date = Date()) async throws(LogUnavailable) {
        _ = try await submit(.checkpoint(time))
    }

    func writeCheckpoint(_ signer: CheckpointSigner, _ chain: ChainTip, time: Date, _ db: Database) throws {
        let checkpoint = signer.sign(stream: stream, size: chain.seq, head: Hex.encode(chain.hash), timeUs: Microseconds.from(time))
        try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO log_checkpoints (stream, size, head, time_us, signature, key_id) VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [checkpoint.stream, checkpoint.size, chain.hash, checkpoint.timeUs,
                                     Data(base64Encoded: checkpoint.signature) ?? Data(), checkpoint.keyID])
    }

    /// Every checkpoint, by stream and size.
    public func checkpoints() async throws(LogUnavailable) -> [Checkpoint] {
        do {
            return try await pool.read { db in try Self.checkpoints(db) }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading checkpoints")
        }
    }

    static func checkpoints(_ db: Database) throws -> [Checkpoint] {
        guard try db.tableExists("log_checkpoints") else { return [] }
        return try Row.fetchAll(db, sql: "SELECT stream, size, head, time_us, signature, key_id FROM log_checkpoints ORDER BY stream, size")
            .map { row in
                Checkpoint(stream: row[0], size: row[1], head: Hex.encode(row[2] as Data), timeUs: row[3],
                           signature: (row[4] as Data).base64EncodedString(), keyID: row[5])
            }
    }
}

extension SQLiteStore {
    /// The checkpoints in the file at `path`, opened read-only.
    public static func checkpoints(path: String) async throws -> [Checkpoint] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        return try await queue.read { db in try checkpoints(db) }
    }
}

extension SQLiteStore: LogAudit {
    public func verifyLog(publicKey: Curve25519.Signing.PublicKey?) async throws(LogUnavailable) -> LogVerification {
        let report: VerifyReport
        do { report = try await verify(publicKey: publicKey) } catch let error as LogUnavailable { throw error } catch {
            throw LogUnavailable.sqlite(error, during: "verifying the share log")
        }
        return LogVerification(records: report.records, streams: report.streams, checkpoints: report.checkpoints,
                               firstBad: report.firstBad?.description, recordsPerSecond: report.recordsPerSecond)
    }
}

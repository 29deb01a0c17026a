import BrokerService
import Foundation
import GRDB

extension SQLiteStore {
    /// Checks the whole share log, every stream, in one read snapshot.
    ///
    /// For each stream in `seq` order: `seq` runs 1, 2, 3…; `prev_hash` is the
    /// previous record's hash (32 zero bytes for the first); `hash` is
    /// SHA-256(prev_hash ‖ body); the indexed columns say what `body` says.
    /// Rows are streamed from a cursor: memory stays constant whatever the size.
    /// Stops at the first bad record. `progress` is called now and then with
    /// (checked, total), on a database queue.
    public func verify(progress: (@Sendable (Int64, Int64) -> Void)? = nil) async throws -> VerifyReport {
        do {
            return try await pool.read { db in try LogVerifier.verify(db, progress: progress) }
        } catch {
            throw LogUnavailable.sqlite(error, during: "verifying the share log")
        }
    }

    /// Verifies the log in the file at `path`, opened read-only (for `sharebroker log verify`).
    public static func verify(path: String, progress: (@Sendable (Int64, Int64) -> Void)? = nil) async throws
        -> VerifyReport
    {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LogUnavailable("no database file at the given path")
        }
        do {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(5)
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try await queue.read { db in try LogVerifier.verify(db, progress: progress) }
        } catch {
            throw LogUnavailable.sqlite(error, during: "verifying the share log")
        }
    }
}

/// The checks of `verify`, over one database snapshot.
enum LogVerifier {
    /// The queryable members of a record's body.
    private struct BodyColumns: Decodable {
        var stream: String?
        var seq: Int64?
        var kind: String?
        var share_id: String?
        var time_us: Int64?
        var subject: String?
        var provider: String?
        var purpose: String?
        var decision: String?
        var caller: String?
        var channel: String?
    }

    /// Progress is reported every this many records (a round number, for display), and at the start and end.
    static let progressEvery: Int64 = 10_000

    static func verify(_ db: Database, progress: (@Sendable (Int64, Int64) -> Void)?) throws -> VerifyReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let total = try Int64.fetchOne(db, sql: "SELECT count(*) FROM share_log") ?? 0
        let streams = try String.fetchAll(db, sql: "SELECT DISTINCT stream FROM share_log ORDER BY stream")
        let decoder = JSONDecoder()
        var checked: Int64 = 0
        var firstBad: BadRecord?
        progress?(0, total)

        streams: for stream in streams {
            var expectedSeq: Int64 = 1
            var prevHash = ChainTip.genesis.hash
            let rows = try Row.fetchCursor(db, sql: """
                SELECT seq, kind, share_id, time_us, subject, provider, purpose, decision, caller, channel,
                       body, prev_hash, hash
                FROM share_log WHERE stream = ? ORDER BY seq
                """, arguments: [stream])
            while let row = try rows.next() {
                checked += 1
                if checked % progressEvery == 0 { progress?(checked, total) }
                let seq: Int64 = row[0]
                if seq != expectedSeq {
                    firstBad = BadRecord(stream: stream, seq: expectedSeq, reason: .seqGap)
                    break streams
                }
                let storedPrev: Data = row[11]
                if storedPrev != prevHash {
                    firstBad = BadRecord(stream: stream, seq: seq, reason: .prevHashMismatch)
                    break streams
                }
                let bodyText: String = row[10]
                let body = Data(bodyText.utf8)
                let hash: Data = row[12]
                if ChainHash.hash(prev: storedPrev, body: body) != hash {
                    firstBad = BadRecord(stream: stream, seq: seq, reason: .hashMismatch)
                    break streams
                }
                let columns = try? decoder.decode(BodyColumns.self, from: body)
                let kind: String? = row[1], shareID: String? = row[2], timeUs: Int64? = row[3]
                let subject: String? = row[4], provider: String? = row[5], purpose: String? = row[6]
                let decision: String? = row[7], caller: String? = row[8], channel: String? = row[9]
                guard let columns,
                      columns.stream == stream, columns.seq == seq, columns.kind == kind,
                      columns.share_id == shareID, columns.time_us == timeUs, columns.subject == subject,
                      columns.provider == provider, columns.purpose == purpose, columns.decision == decision,
                      columns.caller == caller, columns.channel == channel
                else {
                    firstBad = BadRecord(stream: stream, seq: seq, reason: .columnMismatch)
                    break streams
                }
                prevHash = hash
                expectedSeq += 1
            }
        }
        progress?(checked, total)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return VerifyReport(streams: Int64(streams.count), records: checked, firstBad: firstBad,
                            recordsPerSecond: seconds > 0 ? Double(checked) / seconds : 0)
    }
}

import BrokerLogStore
import BrokerFields
import BrokerService
@preconcurrency import Crypto
import Foundation
import GRDB
import GRDBSQLite

extension SQLiteStore {
    /// Checks the whole share log, every stream.
    ///
    /// For each stream in `seq` order: `seq` runs 1, 2, 3…; `prev_hash` is the
    /// previous record's hash (32 zero bytes for the first); `hash` is
    /// SHA-256(prev_hash ‖ body); the indexed columns say what `body` says. Then
    /// every checkpoint (stored, and `extra` ones exported earlier) must name a
    /// record that is there with the signed hash, signed by `publicKey` if given.
    /// Long streams are cut into one range per core, checked in parallel on
    /// separate connections; each range starts from its first record's stored
    /// `prev_hash`, which must then equal the previous range's last hash. Rows are
    /// streamed from cursors: memory stays constant whatever the size. The first
    /// bad record (by stream, then `seq`) is reported. `progress` is called now and
    /// then with (checked, total).
    public func verify(checkpoints extra: [Checkpoint] = [], publicKey: Curve25519.Signing.PublicKey? = nil,
                       progress: (@Sendable (Int64, Int64) -> Void)? = nil) async throws -> VerifyReport {
        do {
            let readers = Array(repeating: pool as any DatabaseReader, count: LogVerifier.parallelism)
            return try await LogVerifier.verify(readers, checkpoints: extra, publicKey: publicKey, progress: progress)
        } catch {
            throw LogUnavailable.sqlite(error, during: "verifying the share log")
        }
    }

    /// Verifies the log in the file at `path`, opened read-only (for `sharebroker log verify`).
    public static func verify(path: String, checkpoints extra: [Checkpoint] = [],
                              publicKey: Curve25519.Signing.PublicKey? = nil,
                              progress: (@Sendable (Int64, Int64) -> Void)? = nil) async throws -> VerifyReport
    {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LogUnavailable("no database file at the given path")
        }
        do {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(5)
            let queues = try (0..<LogVerifier.parallelism).map { _ in try DatabaseQueue(path: path, configuration: configuration) }
            defer { for queue in queues { try? queue.close() } }
            return try await LogVerifier.verify(queues, checkpoints: extra, publicKey: publicKey, progress: progress)
        } catch {
            throw LogUnavailable.sqlite(error, during: "verifying the share log")
        }
    }
}

/// The checks of `verify`, over one database snapshot.
///
/// Each row is checked from SQLite's own buffers (no `String` or `Data` per
/// column): the hash over the stored body bytes, and the indexed columns
/// against the body's members as `BodyScanner` finds them. That fast path only
/// decides when the body is canonical JSON (what the store writes) and every
/// check passes; any other body, and any failed check, goes to the general
/// path (`JSONDecoder`, `String` comparisons), so the verdict is always the
/// general path's.
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

    /// Ranges checked at once: one per core.
    static let parallelism = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))
    /// Streams shorter than this are checked as one range.
    static let minimumRange: Int64 = 50_000

    /// What one range of one stream gave.
    struct RangeResult: Sendable {
        var stream: String
        var from: Int64
        var checked: Int64 = 0
        var firstBad: BadRecord?
        /// The stored `prev_hash` of the range's first record (for a range that does not start at 1).
        var startPrev: [UInt8]?
        /// The hash of the range's last record.
        var lastHash: [UInt8] = []
    }

    static func verify(_ readers: [any DatabaseReader], checkpoints extra: [Checkpoint], publicKey: Curve25519.Signing.PublicKey?,
                       minimumRange: Int64 = minimumRange,
                       progress: (@Sendable (Int64, Int64) -> Void)?) async throws -> VerifyReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let (total, streams) = try await readers[0].read { db -> (Int64, [(String, Int64)]) in
            (try Int64.fetchOne(db, sql: "SELECT count(*) FROM share_log") ?? 0,
             try Row.fetchAll(db, sql: "SELECT stream, max(seq) FROM share_log GROUP BY stream ORDER BY stream").map { ($0[0], $0[1]) })
        }
        progress?(0, total)
        var ranges: [(stream: String, from: Int64, to: Int64)] = []
        for (stream, last) in streams {
            let parts = last < minimumRange ? 1 : Int64(readers.count)
            let size = (last + parts - 1) / parts
            for part in 0..<parts where part * size + 1 <= last {
                ranges.append((stream, part * size + 1, min(last, (part + 1) * size)))
            }
        }
        let counter = Locked<Int64>(0)
        let results = try await withThrowingTaskGroup(of: RangeResult.self) { group in
            for (index, range) in ranges.enumerated() {
                let reader = readers[index % readers.count]
                group.addTask {
                    try await reader.read { db in
                        try verifyRange(db, stream: range.stream, from: range.from, to: range.to) { count in
                            let checked = counter.withLock { $0 += count; return $0 }
                            progress?(checked, total)
                        }
                    }
                }
            }
            return try await group.reduce(into: [RangeResult]()) { $0.append($1) }
        }.sorted { ($0.stream, $0.from) < ($1.stream, $1.from) }
        var firstBad: BadRecord?
        var previous: RangeResult?
        for result in results {
            // The link into the range comes first: a single pass would stop there.
            if let previous, previous.stream == result.stream, let startPrev = result.startPrev, startPrev != previous.lastHash {
                firstBad = BadRecord(stream: result.stream, seq: result.from, reason: .prevHashMismatch)
                break
            }
            if let bad = result.firstBad { firstBad = bad; break }
            previous = result
        }
        let checked = results.reduce(0) { $0 + $1.checked }
        progress?(checked, total)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let checkpoints = try await readers[0].read { db in try SQLiteStore.checkpoints(db) } + extra
        if firstBad == nil {
            firstBad = try await readers[0].read { db in try checkCheckpoints(checkpoints, publicKey: publicKey, db) }
        }
        var report = VerifyReport(streams: Int64(streams.count), records: checked, firstBad: firstBad,
                                  recordsPerSecond: seconds > 0 ? Double(checked) / seconds : 0)
        report.checkpoints = checkpoints.count
        report.signaturesChecked = publicKey != nil
        return report
    }

    /// Checks records `from…to` of `stream`; the first starts from 32 zero bytes (seq 1), or from its
    /// stored `prev_hash` (records before 2026-12-08) or else the hash of the record before it.
    /// A packed body is checked as the canonical bytes it unpacks to, against the dictionary it names.
    static func verifyRange(_ db: Database, stream: String, from: Int64, to: Int64,
                            progress: (Int64) -> Void) throws -> RangeResult {
        var result = RangeResult(stream: stream, from: from)
        let decoder = JSONDecoder()
        var scanner = BodyScanner()
        var expectedSeq = from
        var prevHash: [UInt8]? = from == 1 ? [UInt8](repeating: 0, count: 32) : nil
        let streamBytes = Array(stream.utf8)
        // A file not yet migrated to packed records (read-only: `log verify` does not migrate) has neither.
        let packed = try db.tableExists("log_dictionaries")
        // Few, small and immutable, read in this range's snapshot (a later one may hold newer ones).
        let dictionaries = packed ? try verifiedDictionaries(db) : [:]
        let statement = try db.makeStatement(sql: """
            SELECT seq, kind, share_id, time_us, subject, provider, purpose, decision, caller, channel,
                   body, prev_hash, hash, \(packed ? "dict" : "NULL")
            FROM share_log WHERE stream = ? AND seq >= ? AND seq <= ? ORDER BY seq
            """)
        let sqlite = statement.sqliteStatement
        let rows = try Row.fetchCursor(statement, arguments: [stream, from, to])
        var sinceProgress: Int64 = 0
        defer { progress(sinceProgress) }
        while let row = try rows.next() {
            result.checked += 1
            sinceProgress += 1
            if sinceProgress == progressEvery { progress(sinceProgress); sinceProgress = 0 }
            let seq = sqlite3_column_int64(sqlite, 0)  // INTEGER NOT NULL (a STRICT table)
            if seq != expectedSeq {
                result.firstBad = BadRecord(stream: stream, seq: expectedSeq, reason: .seqGap)
                return result
            }
            let storedPrev = blob(sqlite, 11)
            if prevHash == nil {
                // The range's first record: its stored copy, else the hash of the record before it.
                let start = storedPrev.count > 0
                    ? Array(storedPrev)
                    : try Data.fetchOne(db, sql: "SELECT hash FROM share_log WHERE stream = ? AND seq = ?",
                                        arguments: [stream, seq - 1]).map(Array.init) ?? []
                guard start.count == 32 else {
                    result.firstBad = BadRecord(stream: stream, seq: seq, reason: .prevHashMismatch)
                    return result
                }
                prevHash = start
                result.startPrev = start
            }
            // A stored copy (records before 2026-12-08) must be the previous record's hash.
            if sqlite3_column_type(sqlite, 11) != SQLITE_NULL, !storedPrev.elementsEqual(prevHash!) {
                result.firstBad = BadRecord(stream: stream, seq: seq, reason: .prevHashMismatch)
                return result
            }
            let hash = blob(sqlite, 12)
            var unpacked: [UInt8]?
            if sqlite3_column_type(sqlite, 10) == SQLITE_BLOB {
                // Packed: the canonical bytes it unpacks to, or none (the hash then cannot match).
                unpacked = sqlite3_column_type(sqlite, 13) == SQLITE_INTEGER
                    ? dictionaries[sqlite3_column_int64(sqlite, 13)].flatMap { dictionary in
                        dictionary.withUnsafeBytes { RecordPacking.unpack(blob(sqlite, 10), seq: seq, dictionary: $0) }
                    }
                    : nil
                guard unpacked != nil else {
                    result.firstBad = BadRecord(stream: stream, seq: seq, reason: .hashMismatch)
                    return result
                }
            }
            let fastPass = withBody(sqlite, unpacked) { body in
                guard let body else { return false }
                return scanner.scan(body)
                    && prevHash!.withUnsafeBytes { hashMatches(prev: $0, body: body, hash: hash) }
                    && columnsMatch(scanner, body: body, sqlite, stream: streamBytes, seq: seq)
            }
            if !fastPass, let reason = generalCheck(row, body: unpacked, stream: stream, seq: seq,
                                                    prevHash: Data(prevHash!), decoder: decoder) {
                result.firstBad = BadRecord(stream: stream, seq: seq, reason: reason)
                return result
            }
            // The stored hash passed: it is 32 bytes.
            prevHash!.withUnsafeMutableBytes { $0.copyMemory(from: hash) }
            expectedSeq += 1
        }
        if expectedSeq <= to {   // records missing at the end of the range
            result.firstBad = BadRecord(stream: stream, seq: expectedSeq, reason: .seqGap)
        }
        result.lastHash = prevHash ?? []
        return result
    }

    /// The stored dictionaries that are what their id says: BLOB bytes whose SHA-256 begins with the id, the id
    /// stored once. Any other row is left out, so every record naming it fails (`hashMismatch`): a reader
    /// could otherwise unpack with an altered or second copy that verify never used.
    static func verifiedDictionaries(_ db: Database) throws -> [Int64: [UInt8]] {
        var dictionaries: [Int64: [UInt8]] = [:]
        var bad: Set<Int64> = []
        for row in try Row.fetchAll(db, sql: "SELECT id, bytes FROM log_dictionaries") {
            guard case .int64(let id) = (row[0] as DatabaseValue).storage else { continue }
            guard case .blob(let data) = (row[1] as DatabaseValue).storage,
                  dictionaries[id] == nil, !bad.contains(id), LogDictionary.id(of: Array(data)) == id
            else { bad.insert(id); dictionaries[id] = nil; continue }
            dictionaries[id] = Array(data)
        }
        return dictionaries
    }

    /// Each checkpoint must be signed by `publicKey` (when given) and name a record that is
    /// there with the signed hash: a missing one means the log was truncated or rolled back.
    static func checkCheckpoints(_ checkpoints: [Checkpoint], publicKey: Curve25519.Signing.PublicKey?,
                                 _ db: Database) throws -> BadRecord? {
        let lookup = try db.makeStatement(sql: "SELECT hash FROM share_log WHERE stream = ? AND seq = ?")
        for checkpoint in checkpoints {
            if let publicKey, !checkpoint.isSigned(by: publicKey) {
                return BadRecord(stream: checkpoint.stream, seq: checkpoint.size, reason: .checkpointSignature)
            }
            guard let hash = try Data.fetchOne(lookup, arguments: [checkpoint.stream, checkpoint.size]) else {
                return BadRecord(stream: checkpoint.stream, seq: checkpoint.size, reason: .truncated)
            }
            if Hex.encode(hash) != checkpoint.head.lowercased() {
                return BadRecord(stream: checkpoint.stream, seq: checkpoint.size, reason: .checkpointMismatch)
            }
        }
        return nil
    }

    /// The hash and column checks on values decoded by GRDB, the body by `JSONDecoder`; `unpacked` is
    /// a packed body's canonical bytes.
    private static func generalCheck(_ row: Row, body unpacked: [UInt8]?, stream: String, seq: Int64, prevHash: Data,
                                     decoder: JSONDecoder) -> BadRecord.Reason? {
        if let storedPrev = row[11] as Data?, storedPrev != prevHash { return .prevHashMismatch }
        guard let body = unpacked.map({ Data($0) }) ?? (row[10] as String?).map({ Data($0.utf8) }) else { return .hashMismatch }
        let hash: Data = row[12]
        if ChainHash.hash(prev: prevHash, body: body) != hash { return .hashMismatch }
        let columns = try? decoder.decode(BodyColumns.self, from: body)
        let kind: String? = row[1], shareID: String? = row[2], timeUs: Int64? = row[3]
        let subject: String? = row[4], provider: String? = row[5], purpose: String? = row[6]
        let decision: String? = row[7], caller: String? = row[8], channel: String? = row[9]
        guard let columns,
              columns.stream == stream, columns.seq == seq, columns.kind == kind,
              columns.share_id == shareID, columns.time_us == timeUs, columns.subject == subject,
              columns.provider == provider, columns.purpose == purpose, columns.decision == decision,
              columns.caller == caller, columns.channel == channel
        else { return .columnMismatch }
        return nil
    }

    /// A BLOB column's bytes (empty for NULL), valid until the next step.
    private static func blob(_ sqlite: SQLiteStatement, _ column: Int32) -> UnsafeRawBufferPointer {
        guard let base = sqlite3_column_blob(sqlite, column) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base, count: Int(sqlite3_column_bytes(sqlite, column)))
    }

    /// `body` over the record's canonical bytes: `unpacked`, else the TEXT column's (`nil` for neither).
    private static func withBody<R>(_ sqlite: SQLiteStatement, _ unpacked: [UInt8]?,
                                    _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        if let unpacked { return unpacked.withUnsafeBufferPointer { body($0) } }
        return body(text(sqlite, 10))
    }

    /// A TEXT column's bytes, `nil` when it is not TEXT; valid until the next step.
    private static func text(_ sqlite: SQLiteStatement, _ column: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard sqlite3_column_type(sqlite, column) == SQLITE_TEXT, let base = sqlite3_column_text(sqlite, column)
        else { return nil }
        return UnsafeBufferPointer(start: base, count: Int(sqlite3_column_bytes(sqlite, column)))
    }

    private static func hashMatches(prev: UnsafeRawBufferPointer, body: UnsafeBufferPointer<UInt8>,
                                    hash: UnsafeRawBufferPointer) -> Bool {
        var hasher = SHA256()
        hasher.update(bufferPointer: prev)
        hasher.update(bufferPointer: UnsafeRawBufferPointer(body))
        return hasher.finalize().withUnsafeBytes { $0.elementsEqual(hash) }
    }

    /// (column, body member) for the TEXT columns; time_us (column 3) is the INTEGER one.
    private static let textColumns: [(Int32, BodyScanner.Key)] = [
        (1, .kind), (2, .shareID), (4, .subject), (5, .provider), (6, .purpose), (7, .decision),
        (8, .caller), (9, .channel),
    ]

    /// The indexed columns equal, byte for byte, the members `scanner` found in `body`.
    private static func columnsMatch(_ scanner: BodyScanner, body: UnsafeBufferPointer<UInt8>,
                                     _ sqlite: SQLiteStatement, stream: [UInt8], seq: Int64) -> Bool {
        guard case .string(let range) = scanner.values[BodyScanner.Key.stream.rawValue],
              stream.elementsEqual(body[range]),
              case .int(let bodySeq) = scanner.values[BodyScanner.Key.seq.rawValue], bodySeq == seq
        else { return false }
        for (column, key) in textColumns {
            let columnType = sqlite3_column_type(sqlite, column)
            switch scanner.values[key.rawValue] {
            case .missing, .null:
                guard columnType == SQLITE_NULL else { return false }
            case .string(let range):
                guard let value = text(sqlite, column), value.elementsEqual(body[range]) else { return false }
            case .int, .other:
                return false
            }
        }
        switch scanner.values[BodyScanner.Key.timeUs.rawValue] {
        case .missing, .null: return sqlite3_column_type(sqlite, 3) == SQLITE_NULL
        case .int(let timeUs): return sqlite3_column_type(sqlite, 3) == SQLITE_INTEGER && sqlite3_column_int64(sqlite, 3) == timeUs
        case .string, .other: return false
        }
    }
}

/// A validating scanner for canonical JSON (no whitespace, keys in strictly
/// increasing byte order, integers only, no `\u` escape, valid UTF-8, no NUL)
/// that records where the top-level members `verify` compares are.
/// `scan` returns `false` for any other input, which then goes to `JSONDecoder`.
struct BodyScanner {
    enum Key: Int, CaseIterable {
        case caller, channel, decision, kind, provider, purpose, seq, shareID, stream, subject, timeUs

        var name: [UInt8] {
            switch self {
            case .caller: Array("caller".utf8)
            case .channel: Array("channel".utf8)
            case .decision: Array("decision".utf8)
            case .kind: Array("kind".utf8)
            case .provider: Array("provider".utf8)
            case .purpose: Array("purpose".utf8)
            case .seq: Array("seq".utf8)
            case .shareID: Array("share_id".utf8)
            case .stream: Array("stream".utf8)
            case .subject: Array("subject".utf8)
            case .timeUs: Array("time_us".utf8)
            }
        }
    }

    enum Value: Equatable {
        case missing
        case null
        /// A string without escapes: the range of its bytes (between the quotes).
        case string(Range<Int>)
        case int(Int64)
        /// Anything else (a string with escapes, a boolean, an array, an object).
        case other
    }

    private static let names: [[UInt8]] = Key.allCases.map(\.name)
    private static let maxDepth = 32

    /// One per `Key`, in `Key` order.
    private(set) var values = [Value](repeating: .missing, count: Key.allCases.count)

    /// Scans `body`; on `true`, `values` holds its top-level members of interest.
    mutating func scan(_ body: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in values.indices { values[i] = .missing }
        var i = 0
        guard object(body, &i, depth: 0, top: true) else { return false }
        return i == body.count
    }

    private mutating func object(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, depth: Int, top: Bool) -> Bool {
        guard depth < Self.maxDepth, i < b.count, b[i] == UInt8(ascii: "{") else { return false }
        i += 1
        guard i < b.count else { return false }
        if b[i] == UInt8(ascii: "}") { i += 1; return true }
        var previousKey: Range<Int>? = nil
        var nextName = 0
        while true {
            guard case .string(let key)? = string(b, &i), i < b.count, b[i] == UInt8(ascii: ":") else { return false }
            if let previousKey, !b[previousKey].lexicographicallyPrecedes(b[key]) { return false }
            previousKey = key
            i += 1
            guard let value = value(b, &i, depth: depth) else { return false }
            if top {
                // Keys ascend, and so do `names`: one merge pass.
                while nextName < Self.names.count, Self.names[nextName].lexicographicallyPrecedes(b[key]) { nextName += 1 }
                if nextName < Self.names.count, Self.names[nextName].elementsEqual(b[key]) {
                    values[nextName] = value
                    nextName += 1
                }
            }
            guard i < b.count else { return false }
            if b[i] == UInt8(ascii: "}") { i += 1; return true }
            guard b[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    private mutating func value(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, depth: Int) -> Value? {
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "\""): return string(b, &i)
        case UInt8(ascii: "{"): return object(b, &i, depth: depth + 1, top: false) ? .other : nil
        case UInt8(ascii: "["):
            guard depth + 1 < Self.maxDepth else { return nil }
            i += 1
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "]") { i += 1; return .other }
            while true {
                guard value(b, &i, depth: depth + 1) != nil, i < b.count else { return nil }
                if b[i] == UInt8(ascii: "]") { i += 1; return .other }
                guard b[i] == UInt8(ascii: ",") else { return nil }
                i += 1
            }
        case UInt8(ascii: "n"): return literal("null", b, &i) ? .null : nil
        case UInt8(ascii: "t"): return literal("true", b, &i) ? .other : nil
        case UInt8(ascii: "f"): return literal("false", b, &i) ? .other : nil
        default: return integer(b, &i)
        }
    }

    private func literal(_ word: StaticString, _ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Bool {
        let count = word.utf8CodeUnitCount
        guard b.count - i >= count else { return false }
        let bytes = UnsafeBufferPointer(start: word.utf8Start, count: count)
        guard b[i..<(i + count)].elementsEqual(bytes) else { return false }
        i += count
        return true
    }

    /// `-?(0|[1-9][0-9]*)` that fits an `Int64`, not followed by a fraction or exponent.
    private func integer(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Value? {
        var negative = false
        if b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        let start = i
        var magnitude: UInt64 = 0
        while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b[i] - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            magnitude = s
            i += 1
        }
        let digits = i - start
        guard digits > 0, digits == 1 || b[start] != UInt8(ascii: "0") else { return nil }
        if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return .int(magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return .int(Int64(magnitude))
    }

    /// A string starting at `b[i]` (a quote): `.string` (no escapes) or `.other`;
    /// `nil` when malformed, when it holds a `\u` escape, a control byte or invalid UTF-8.
    private func string(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Value? {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        var escaped = false
        while i < b.count {
            let byte = b[i]
            if byte == UInt8(ascii: "\"") {
                let range = start..<i
                i += 1
                return escaped ? .other : .string(range)
            }
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                i += 1
                guard i < b.count else { return nil }
                switch b[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    escaped = true
                    i += 1
                default: return nil
                }
                continue
            }
            if byte < 0x80 { i += 1; continue }
            guard let length = Self.utf8Sequence(b, at: i) else { return nil }
            i += length
        }
        return nil
    }

    /// The length of the valid UTF-8 sequence of 2 to 4 bytes at `b[i]`, or `nil`.
    private static func utf8Sequence(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        let lead = b[i]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return nil
        }
        guard b.count - i >= length else { return nil }
        guard b[i + 1] >= low, b[i + 1] <= high else { return nil }
        for k in 2..<length where b[i + k] < 0x80 || b[i + k] > 0xBF { return nil }
        return length
    }
}

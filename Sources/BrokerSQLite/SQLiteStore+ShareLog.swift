import BrokerFields
import BrokerCore
import BrokerService
@preconcurrency import Crypto
import Foundation
import GRDB
import Logging

/// One write the share log batches.
enum LogWrite: Sendable {
    case intent(ShareEntry)
    case outcome(ShareOutcome)
    case resolveDangling(Date)
    /// A revoke: in the batch's transaction, so it is ordered against intents (the fence).
    case revoke(RevokeCommand)
    /// The end of a propagation attempt; a final state is appended to the log.
    case finishPropagation(FinishCommand)
    /// A checkpoint of the current head now, unless the last one is already there (shutdown).
    case checkpoint(Date)
    /// Any other small write that should share a batch's commit (one fsync) with its neighbours.
    case statement(@Sendable (Database) throws -> Int)
}

/// The result of one `LogWrite`.
enum LogWriteOutput: Sendable {
    case intent(IntentResult)
    case position(ChainPosition)
    case resolved(Int)
    case revocation(Result<RevocationReceipt, RevocationRefusal>)
    case done
    case value(Int)
}

/// The last record of a stream: where the next one chains from.
struct ChainTip: Sendable {
    var seq: Int64
    var hash: Data
    static let genesis = ChainTip(seq: 0, hash: Data(repeating: 0, count: 32))
}

extension SQLiteStore {
    /// Durably appends a share's intent, group-committed with concurrent calls.
    ///
    /// **The revocation fence.** For an allowed or redacted entry, the same
    /// write transaction that appends it first looks up its `grantIDs` in
    /// `grants`; if one has `revoked_at` set, the entry is written as blocked
    /// with `consent_revoked` (every field blocked) and `.grantRevoked` is
    /// returned. A revocation is an `UPDATE grants` in its own write
    /// transaction on the same database, and SQLite admits one writer at a time
    /// (this store's transactions are `BEGIN IMMEDIATE`, so they take the write
    /// lock before reading the grant): either the share's transaction commits
    /// first — its intent is then in the log before the revoke, and the
    /// revocation job, which collects shares in the revoke's transaction, finds
    /// it — or the revoke commits first and the share's transaction sees
    /// `revoked_at`. No interleaving lets a share commit under a grant whose
    /// revoke returned without the share being found.
    public func appendIntent(_ entry: ShareEntry) async throws(LogUnavailable) -> IntentResult {
        switch try await submit(.intent(entry)) {
        case .intent(let result): return result
        default: throw LogUnavailable("internal error: unexpected result for an intent")
        }
    }

    public func appendOutcome(_ outcome: ShareOutcome) async throws(LogUnavailable) -> ChainPosition {
        switch try await submit(.outcome(outcome)) {
        case .position(let position): return position
        default: throw LogUnavailable("internal error: unexpected result for an outcome")
        }
    }

    /// Appends an `unknown` outcome for every allowed or redacted intent of this
    /// stream that has none. Run it at start, before serving: an intent still
    /// in flight would be resolved too.
    public func resolveDanglingIntents(at time: Date) async throws(LogUnavailable) -> Int {
        switch try await submit(.resolveDangling(time)) {
        case .resolved(let count):
            if count > 0 { logger.warning("dangling intents resolved as unknown", metadata: ["log.count": "\(count)"]) }
            return count
        default: throw LogUnavailable("internal error: unexpected result for dangling intents")
        }
    }

    func submit(_ write: LogWrite) async throws(LogUnavailable) -> LogWriteOutput {
        try await committer.submit(write) { [self] batch, db in writeBatch(batch, in: db) }.get()
    }

    private func writeBatch(_ batch: [LogWrite], in db: Database) -> Result<[LogWriteOutput], LogUnavailable> {
        var outputs: [LogWriteOutput] = []
        outputs.reserveCapacity(batch.count)
        var newTip: ChainTip?
        var appended = 0
        do {
            try Self.inImmediateTransaction(db) {
                var chain = try tip.withLock { $0 } ?? loadTip(db)
                let start = chain.seq
                let insert = try db.cachedStatement(sql: Self.insertSQL)
                var revoked = try revokedGrants(of: batch, db)
                for write in batch {
                    switch write {
                    case .intent(let entry):
                        outputs.append(.intent(try appendIntent(entry, revoked: revoked, insert, db, &chain)))
                    case .outcome(let outcome):
                        outputs.append(.position(try append(LogRow(outcome), insert, &chain)))
                    case .resolveDangling(let time):
                        let shareIDs = try danglingShareIDs(db)
                        for shareID in shareIDs {
                            _ = try append(LogRow(ShareOutcome(shareID: shareID, time: time, result: .unknown)),
                                           insert, &chain)
                        }
                        outputs.append(.resolved(shareIDs.count))
                    case .revoke(let command):
                        let result = try revoke(command, insert, db, &chain)
                        // Intents later in this same batch see the revoke, as if in a later transaction.
                        if case .success(let receipt) = result { revoked.formUnion(receipt.grantIDs) }
                        outputs.append(.revocation(result))
                    case .finishPropagation(let command):
                        try finishPropagation(command, insert, db, &chain)
                        outputs.append(.done)
                    case .statement(let body):
                        outputs.append(.value(try body(db)))
                    case .checkpoint(let time):
                        if let (signer, _) = checkpointing.withLock({ $0 }), chain.seq > 0 {
                            try writeCheckpoint(signer, chain, time: time, db)
                        }
                        outputs.append(.done)
                    }
                }
                if let (signer, every) = checkpointing.withLock({ $0 }), chain.seq / every > start / every {
                    try writeCheckpoint(signer, chain, time: now(), db)
                }
                newTip = chain
                appended = Int(chain.seq - start)
            }
        } catch {
            // The transaction rolled back (or its fate is unknown): read the tip again next time.
            tip.withLock { $0 = nil }
            let failure = LogUnavailable.sqlite(error, during: "appending to the share log")
            logger.error("share log write failed",
                         metadata: ["log.stream": "\(stream)", "log.batch": "\(batch.count)",
                                    "error.message": "\(failure.message)"])
            return .failure(failure)
        }
        tip.withLock { $0 = newTip }
        stats.withLock { $0.commits += 1; $0.records += appended }
        return .success(outputs)
    }

    /// `BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on any error) with prepared
    /// statements kept in the connection's cache: `Database.inTransaction`
    /// compiles both statements again for every batch.
    static func inImmediateTransaction(_ db: Database, _ body: () throws -> Void) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        do {
            try body()
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            if db.isInsideTransaction { try? db.cachedStatement(sql: "ROLLBACK TRANSACTION").execute() }
            throw error
        }
    }

    private func loadTip(_ db: Database) throws -> ChainTip {
        guard let row = try Row.fetchOne(db, sql: "SELECT seq, hash FROM share_log WHERE stream = ? ORDER BY seq DESC LIMIT 1",
                                         arguments: [stream]) else { return .genesis }
        return ChainTip(seq: row[0], hash: row[1])
    }

    private func appendIntent(_ entry: ShareEntry, revoked: Set<String>, _ insert: Statement, _ db: Database,
                              _ chain: inout ChainTip) throws -> IntentResult {
        if entry.decision != .blocked, !revoked.isEmpty, let grantID = entry.grantIDs.first(where: revoked.contains) {
            let fenced = entry.fencedByRevocation()
            let position = try append(LogRow(fenced), insert, &chain)
            try aggregate(fenced, db)
            logger.notice("share refused by the revocation fence",
                          metadata: ["share.id": "\(entry.shareID)", "share.provider": "\(entry.provider)",
                                     "grant.id": "\(grantID)"])
            return .grantRevoked(grantID: grantID, position)
        }
        let position = try append(LogRow(entry), insert, &chain)
        try aggregate(entry, db)
        if entry.decision != .blocked, !entry.grantIDs.isEmpty {
            // In the intent's transaction: a revoke either sees this share or the share saw the revoke.
            let link = try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO share_grants (grant_id, share_id, provider) VALUES (?, ?, ?)
                """)
            for grantID in entry.grantIDs {
                try link.execute(arguments: [grantID, entry.shareID, entry.provider])
            }
            if let keys = entry.revocationKeys {
                try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO revocation_keys (share_id, provider, sealed, expires_at) VALUES (?, ?, ?, ?)
                    """).execute(arguments: [entry.shareID, entry.provider, Data(keys.sealed), Microseconds.from(keys.expiresAt)])
            }
        }
        return .committed(position)
    }

    /// Counts the share in the sharing list's daily aggregates: once per personal category and
    /// action, and its subject once per day for each category sent.
    private func aggregate(_ entry: ShareEntry, _ db: Database) throws {
        guard let purpose = entry.purpose else { return }
        var seen: Set<String> = []
        let time = Microseconds.from(entry.time)
        let day = time / 86_400_000_000
        for field in entry.fields where field.fingerprint != nil {
            guard let category = field.category, seen.insert(category + "\u{0}" + field.action.rawValue).inserted else { continue }
            try db.cachedStatement(sql: """
                INSERT INTO sharing_daily (day, provider, purpose, category, action, shares, first_us, last_us)
                VALUES (?, ?, ?, ?, ?, 1, ?, ?)
                ON CONFLICT DO UPDATE SET shares = shares + 1, first_us = min(first_us, excluded.first_us),
                                          last_us = max(last_us, excluded.last_us)
                """).execute(arguments: [day, entry.provider, purpose, category, field.action.rawValue, time, time])
            if field.action == .sent, let subject = entry.subject {
                try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO sharing_subjects (day, provider, purpose, category, subject) VALUES (?, ?, ?, ?, ?)
                    """).execute(arguments: [day, entry.provider, purpose, category, subject])
                try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO sharing_subject_span (provider, purpose, category, subject) VALUES (?, ?, ?, ?)
                    """).execute(arguments: [entry.provider, purpose, category, subject])
            }
        }
    }

    /// The revoked grants among those the batch's allowed or redacted intents
    /// name, in one query for the whole batch. It runs inside the batch's
    /// write transaction, which writes no grant, so it sees what a query per
    /// intent would see.
    private func revokedGrants(of batch: [LogWrite], _ db: Database) throws -> Set<String> {
        var ids: [UInt8] = []
        for write in batch {
            guard case .intent(let entry) = write, entry.decision != .blocked else { continue }
            for grantID in entry.grantIDs {
                ids.append(ids.isEmpty ? UInt8(ascii: "[") : UInt8(ascii: ","))
                CanonicalJSON.writeString(grantID, to: &ids)
            }
        }
        guard !ids.isEmpty else { return [] }
        ids.append(UInt8(ascii: "]"))
        let statement = try db.cachedStatement(sql: """
            SELECT id FROM grants WHERE revoked_at IS NOT NULL AND id IN (SELECT value FROM json_each(?))
            """)
        var revoked: Set<String> = []
        let cursor = try String.fetchCursor(statement, arguments: [String(decoding: ids, as: UTF8.self)])
        while let id = try cursor.next() { revoked.insert(id) }
        return revoked
    }

    private func danglingShareIDs(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT s.share_id FROM share_log s
            WHERE s.stream = ? AND s.kind = 'share' AND s.decision IN ('allowed', 'redacted')
              AND NOT EXISTS (SELECT 1 FROM share_log o WHERE o.share_id = s.share_id AND o.kind = 'outcome')
            ORDER BY s.seq
            """, arguments: [stream])
    }

    static let insertSQL = """
        INSERT INTO share_log (stream, seq, kind, share_id, time_us, subject, provider, purpose, decision,
                               caller, channel, body, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// Chains `row` after `chain`, inserts it with `insert` (`insertSQL`), and advances `chain`.
    func append(_ row: LogRow, _ insert: Statement, _ chain: inout ChainTip) throws -> ChainPosition {
        let seq = chain.seq + 1
        let body = row.canonicalBytes(stream: stream, seq: seq)
        let hash = ChainHash.hash(prev: chain.hash, body: body)
        try insert.execute(arguments: [
            stream, seq, row.kind.rawValue, row.shareID, row.timeUs, row.subject, row.provider, row.purpose,
            row.decision, row.caller, row.channel, String(decoding: body, as: UTF8.self), chain.hash, hash,
        ])
        chain = ChainTip(seq: seq, hash: hash)
        return ChainPosition(stream: stream, seq: seq, hash: Hex.encode(hash))
    }
}

/// The chain's hash: SHA-256 of the previous hash's 32 bytes followed by the canonical body.
enum ChainHash {
    static func hash(prev: Data, body: [UInt8]) -> Data {
        var hasher = SHA256()
        hasher.update(data: prev)
        body.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Data($0) }
    }

    static func hash<Body: DataProtocol>(prev: Data, body: Body) -> Data {
        var hasher = SHA256()
        hasher.update(data: prev)
        hasher.update(data: body)
        return Data(hasher.finalize())
    }
}

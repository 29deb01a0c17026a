import BrokerLogStore
import BrokerFields
import BrokerCore
import BrokerService
@preconcurrency import Crypto
import Foundation
import GRDB
import Logging

/// One write the share log batches.
enum LogWrite: Sendable {
    /// An intent with its canonical body, written before the writer (only `seq` is left to fill in).
    case intent(ShareEntry, CanonicalParts)
    /// Outcomes, each with its canonical body.
    case outcomes([(ShareOutcome, CanonicalParts)])
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
    case positions([ChainPosition])
    case resolved(Int)
    case revocation(Result<RevocationReceipt, RevocationRefusal>)
    case done
    case value(Int)
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
        // Written and packed here, off the single writer, which only joins them with the seq and hashes.
        let parts = dictionaries.packedParts(entry)
        switch try await submit(.intent(entry, parts)) {
        case .intent(let result): return result
        default: throw LogUnavailable("internal error: unexpected result for an intent")
        }
    }

    public func appendOutcome(_ outcome: ShareOutcome) async throws(LogUnavailable) -> ChainPosition {
        let positions = try await appendOutcomes([outcome])
        guard let position = positions.first else { throw LogUnavailable("internal error: no position for an outcome") }
        return position
    }

    /// Appends several outcomes as one operation of one batch (one waiter, one commit).
    public func appendOutcomes(_ outcomes: [ShareOutcome]) async throws(LogUnavailable) -> [ChainPosition] {
        guard !outcomes.isEmpty else { return [] }
        let prepared = outcomes.map { ($0, dictionaries.packedParts($0)) }
        // Outcomes need not be durable at once (an intent without one reads `unknown`): they share the next commit.
        switch try await submit(.outcomes(prepared), deferrable: true) {
        case .positions(let positions): return positions
        default: throw LogUnavailable("internal error: unexpected result for outcomes")
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

    func submit(_ write: LogWrite, deferrable: Bool = false) async throws(LogUnavailable) -> LogWriteOutput {
        try await committer.submit(write, deferrable: deferrable) { [self] batch, db, done in done(writeBatch(batch, in: db)) }.get()
    }

    private func writeBatch(_ batch: [LogWrite], in db: Database) -> Result<[LogWriteOutput], LogUnavailable> {
        let started = ContinuousClock.now
        var outputs: [LogWriteOutput] = []
        outputs.reserveCapacity(batch.count)
        var newTip: ChainTip?
        var appended = 0
        var committed: [(seq: Int64, entry: ShareEntry)] = []
        var resolved: [String] = []
        var resolvedDangling = false
        var intents = 0
        var dictionariesAdded: Set<Int64> = []
        do {
            try Self.inImmediateTransaction(db) {
                var chain = try tip.snapshot ?? loadTip(db)
                let start = chain.seq
                let writer = try BatchStatements(db)
                var revoked = try revokedGrants(of: batch, writer)
                for write in batch {
                    switch write {
                    case .intent(let entry, let parts):
                        intents += 1
                        let parts = try storable(parts, writer, &dictionariesAdded)
                        outputs.append(.intent(try appendIntent(entry, parts, revoked: revoked, writer, &committed, &chain)))
                    case .outcomes(let outcomes):
                        var positions: [ChainPosition] = []
                        positions.reserveCapacity(outcomes.count)
                        for (outcome, parts) in outcomes {
                            let parts = try storable(parts, writer, &dictionariesAdded)
                            positions.append(try append(LogRow(outcome), parts, writer.insert, &chain))
                            resolved.append(outcome.shareID)
                            if let keys = outcome.revocationKeys, let provider = outcome.provider {
                                // The answer's keys join the share's: its links name the new set.
                                for grantID in outcome.grantIDs {
                                    try writer.relinkGrant.run { b in b.int(1, keys.keySet); b.text(2, grantID); b.text(3, outcome.shareID) }
                                    try writer.storeKeys(grantID, provider, keys)
                                }
                            }
                        }
                        outputs.append(.positions(positions))
                    case .resolveDangling(let time):
                        let shareIDs = try danglingShareIDs(db)
                        for shareID in shareIDs {
                            _ = try append(LogRow(ShareOutcome(shareID: shareID, time: time, result: .unknown)),
                                           writer.insert, &chain)
                        }
                        resolvedDangling = true
                        outputs.append(.resolved(shareIDs.count))
                    case .revoke(let command):
                        let result = try revoke(command, writer.insert, db, &chain)
                        // Intents later in this same batch see the revoke, as if in a later transaction.
                        if case .success(let receipt) = result { revoked.formUnion(receipt.grantIDs) }
                        outputs.append(.revocation(result))
                    case .finishPropagation(let command):
                        try finishPropagation(command, writer.insert, db, &chain)
                        outputs.append(.done)
                    case .statement(let body):
                        outputs.append(.value(try body(db)))
                    case .checkpoint(let time):
                        if let (signer, _) = checkpointing.snapshot, chain.seq > 0 {
                            try writeCheckpoint(signer, chain, time: time, db)
                        }
                        outputs.append(.done)
                    }
                }
                if let (signer, every) = checkpointing.snapshot, chain.seq / every > start / every {
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
        dictionaries.markStored(dictionariesAdded)
        // The aggregates are the follower's, from committed records only.
        if appended > 0 || resolvedDangling, let newTip { follow(committed, resolved: resolved, through: newTip.seq) }
        // From now on the follower knows every intent without an outcome (those committed since).
        if resolvedDangling { follower.withLock { $0.resolvedKnown = true } }
        stats.withLock { $0.commits += 1; $0.records += appended; $0.intents += intents }
        commitLatency.record(ContinuousClock.now - started, records: appended)
        return .success(outputs)
    }

    /// The prepared statements of one batch, looked up once in GRDB's cache.
    struct BatchStatements {
        let insert: BoundStatement
        let linkGrant: BoundStatement
        let relinkGrant: BoundStatement
        let storeKeySet: BoundStatement
        let grantRevoked: BoundStatement
        let dictionaryBytes: BoundStatement
        let storeDictionary: BoundStatement

        init(_ db: Database) throws {
            insert = try BoundStatement(db, SQLiteStore.insertSQL)
            linkGrant = try BoundStatement(db, """
                INSERT OR IGNORE INTO share_grants (grant_id, share_id, provider, key_set) VALUES (?, ?, ?, ?)
                """)
            relinkGrant = try BoundStatement(db, "UPDATE share_grants SET key_set = ? WHERE grant_id = ? AND share_id = ?")
            // A set already stored keeps its box (the same plain text) and only moves its expiry on,
            // which the pipeline rounds to the hour: most shares write nothing here.
            storeKeySet = try BoundStatement(db, """
                INSERT INTO revocation_key_sets (grant_id, key_set, provider, sealed, expires_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (grant_id, key_set) DO UPDATE SET expires_at = excluded.expires_at
                WHERE excluded.expires_at > revocation_key_sets.expires_at
                """)
            grantRevoked = try BoundStatement(db, "SELECT 1 FROM grants WHERE id = ? AND revoked_at IS NOT NULL")
            dictionaryBytes = try BoundStatement(db, "SELECT bytes FROM log_dictionaries WHERE id = ?")
            storeDictionary = try BoundStatement(db, "INSERT INTO log_dictionaries (id, bytes) VALUES (?, ?)")
        }

        /// Stores `keys` for `grantID`, or moves a stored set's expiry on.
        func storeKeys(_ grantID: String, _ provider: String, _ keys: SealedRevocationKeys) throws {
            try storeKeySet.run { b in
                b.text(1, grantID); b.int(2, keys.keySet); b.text(3, provider); b.blob(4, keys.sealed)
                b.int(5, Microseconds.from(keys.expiresAt))
            }
        }
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

    private func appendIntent(_ entry: ShareEntry, _ parts: CanonicalParts, revoked: Set<String>, _ writer: BatchStatements,
                              _ committed: inout [(seq: Int64, entry: ShareEntry)], _ chain: inout ChainTip) throws -> IntentResult {
        if entry.decision != .blocked, !revoked.isEmpty, let grantID = entry.grantIDs.first(where: revoked.contains) {
            let fenced = entry.fencedByRevocation()
            let position = try append(LogRow(fenced), writer.insert, &chain)
            committed.append((position.seq, fenced))
            logger.notice("share refused by the revocation fence",
                          metadata: ["share.id": "\(entry.shareID)", "share.provider": "\(entry.provider)",
                                     "grant.id": "\(grantID)"])
            return .grantRevoked(grantID: grantID, position)
        }
        let position = try append(LogRow(entry), parts, writer.insert, &chain)
        committed.append((position.seq, entry))
        if entry.decision != .blocked, !entry.grantIDs.isEmpty {
            // In the intent's transaction: a revoke either sees this share or the share saw the revoke.
            for grantID in entry.grantIDs {
                try writer.linkGrant.run { b in
                    b.text(1, grantID); b.text(2, entry.shareID); b.text(3, entry.provider)
                    b.int(4, entry.revocationKeys?.keySet)
                }
                if let keys = entry.revocationKeys { try writer.storeKeys(grantID, entry.provider, keys) }
            }
        }
        return .committed(position)
    }

    /// The revoked grants among those the batch's allowed or redacted intents
    /// name: one indexed lookup per distinct grant, inside the batch's write
    /// transaction, which writes no grant before it, so it sees what a query
    /// per intent would see.
    private func revokedGrants(of batch: [LogWrite], _ writer: BatchStatements) throws -> Set<String> {
        var checked: Set<String> = []
        var revoked: Set<String> = []
        for write in batch {
            guard case .intent(let entry, _) = write, entry.decision != .blocked else { continue }
            for grantID in entry.grantIDs where checked.insert(grantID).inserted {
                try writer.grantRevoked.run({ b in b.text(1, grantID) }, row: { _ in revoked.insert(grantID) })
            }
        }
        return revoked
    }

    private func danglingShareIDs(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT s.share_id FROM share_log s
            WHERE s.stream = ? AND s.seq > coalesce((SELECT resolved FROM log_follower WHERE stream = ?), 0)
              AND s.kind = 'share' AND s.decision IN ('allowed', 'redacted')
              AND NOT EXISTS (SELECT 1 FROM share_log o WHERE o.share_id = s.share_id AND o.kind = 'outcome')
            ORDER BY s.seq
            """, arguments: [stream, stream])
    }

    static let insertSQL = """
        INSERT INTO share_log (stream, seq, kind, share_id, time_us, subject, provider, purpose, decision,
                               caller, channel, body, dict, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// Chains `row` after `chain`, inserts it with `insert` (`insertSQL`), and advances `chain`.
    func append(_ row: LogRow, _ insert: BoundStatement, _ chain: inout ChainTip) throws -> ChainPosition {
        try append(row, row.canonicalParts(stream: stream), insert, &chain)
    }

    /// `append` with the body's parts already written (off the writer). The body is stored packed when
    /// `parts` are (its dictionary stored first: `storable`), else as text. `prev_hash` is not
    /// stored: it is the previous row's `hash` (records before 2026-12-08 hold a copy).
    func append(_ row: LogRow, _ parts: CanonicalParts, _ insert: BoundStatement, _ chain: inout ChainTip) throws -> ChainPosition {
        var next = chain
        let record = next.next(parts, stream: stream)
        try insert.run { b in
            b.text(1, stream); b.int(2, next.seq); b.text(3, row.kind.rawValue); b.text(4, row.shareID); b.int(5, row.timeUs)
            b.text(6, row.subject); b.text(7, row.provider); b.text(8, row.purpose); b.text(9, row.decision)
            b.text(10, row.caller); b.text(11, row.channel)
            if let packed = parts.packed {
                b.blob(12, packed.bytes); b.int(13, packed.dictionary.id)
            } else {
                b.text(12, utf8: record.body); b.int(13, nil)
            }
            b.blob(14, record.hash)
        }
        chain = next   // only once the row is written
        return record.position
    }
}

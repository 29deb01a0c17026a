import BrokerCore
import BrokerFields
import BrokerLogStore
import BrokerService
import Foundation
import NIOCore
import PostgresNIO

/// One write the share log batches.
enum LogWrite: Sendable {
    /// An intent with its canonical body, written before the writer (only `seq` is left to fill in).
    case intent(ShareEntry, CanonicalParts)
    /// Outcomes, each with its canonical body.
    case outcomes([(ShareOutcome, CanonicalParts)])
    case resolveDangling(Date)
    /// A revoke: in a batch, so its record takes its place in this node's chain.
    case revoke(RevokeCommand)
    /// The end of a propagation attempt; a final state is appended to the log.
    case finishPropagation(FinishCommand)
    /// A checkpoint of the current head now, unless the last one is already there (shutdown).
    case checkpoint(Date)
}

/// The result of one `LogWrite`.
enum LogWriteOutput: Sendable {
    case intent(IntentResult)
    case positions([ChainPosition])
    case resolved(Int)
    case revocation(Result<RevocationReceipt, RevocationRefusal>)
    case done
}

extension PostgresStore {
    /// Durably appends a share's intent, group-committed with the node's concurrent calls.
    ///
    /// **The revocation fence across nodes.** The batch's transaction reads every grant its
    /// allowed or redacted intents rely on with `SELECT … FOR SHARE`, in id order; a revoke
    /// (on any node) updates the grant's row, which takes the row's exclusive lock. So either
    /// the revoke's `UPDATE` waits until this transaction commits — its intents, and their
    /// `share_grants` rows, are then committed before the revoke reads which shares used the
    /// grant (a later statement of its transaction, with a newer snapshot under READ COMMITTED),
    /// and the revocation job finds them — or this transaction's `FOR SHARE` waits for the
    /// revoke to commit and then reads the row's new version, `revoked_at` set, and the intent
    /// is written as blocked with `consent_revoked`. No interleaving commits an intent under a
    /// grant whose revoke has returned, on any node.
    public func appendIntent(_ entry: ShareEntry) async throws(LogUnavailable) -> IntentResult {
        let parts = LogRow(entry).canonicalParts(stream: stream)
        switch try await submit(.intent(entry, parts)) {
        case .intent(let result): return result
        default: throw LogUnavailable("internal error: unexpected result for an intent")
        }
    }

    public func appendOutcome(_ outcome: ShareOutcome) async throws(LogUnavailable) -> ChainPosition {
        guard let position = try await appendOutcomes([outcome]).first else {
            throw LogUnavailable("internal error: no position for an outcome")
        }
        return position
    }

    public func appendOutcomes(_ outcomes: [ShareOutcome]) async throws(LogUnavailable) -> [ChainPosition] {
        guard !outcomes.isEmpty else { return [] }
        let prepared = outcomes.map { ($0, LogRow($0).canonicalParts(stream: stream)) }
        switch try await submit(.outcomes(prepared), deferrable: true) {
        case .positions(let positions): return positions
        default: throw LogUnavailable("internal error: unexpected result for outcomes")
        }
    }

    /// Appends an `unknown` outcome for every allowed or redacted intent of this node's stream
    /// that has none (run at start, before serving; other nodes' streams are theirs to resolve).
    public func resolveDanglingIntents(at time: Date) async throws(LogUnavailable) -> Int {
        switch try await submit(.resolveDangling(time)) {
        case .resolved(let count):
            if count > 0 { logger.warning("dangling intents resolved as unknown", metadata: ["log.count": "\(count)"]) }
            return count
        default: throw LogUnavailable("internal error: unexpected result for dangling intents")
        }
    }

    func submit(_ write: LogWrite, deferrable: Bool = false) async throws(LogUnavailable) -> LogWriteOutput {
        try await committer.submit(write, deferrable: deferrable) { [self] batch, _, done in
            Task { done(await writeBatch(batch)) }
        }.get()
    }

    /// One batch in one transaction: intents and outcomes in one round trip (`appendInOneRoundTrip`),
    /// anything else in a transaction of several statements (the lease renewed, the fence read, the
    /// rows, the revokes). The chain tip advances only once the commit has returned.
    private func writeBatch(_ batch: [LogWrite]) async -> Result<[LogWriteOutput], LogUnavailable> {
        let started = ContinuousClock.now
        do {
            let (outputs, newTip, appended, intents, committed) = try await run("appending to the share log") { connection in
                if let (outputs, rows, start) = try await self.appendInOneRoundTrip(batch, on: connection) {
                    return (outputs, rows.chain, Int(rows.chain.seq - start), rows.intents, rows.committed)
                }
                return try await connection.withTransaction(logger: self.logger) { connection in
                    try await self.writeBatch(batch, on: connection)
                }
            }
            tip.withLock { $0 = newTip }
            // The aggregates are the follower's, from committed records only.
            var resolved: [String] = []
            var resolvedDangling = false
            for write in batch {
                if case .outcomes(let outcomes) = write { resolved += outcomes.map(\.0.shareID) }
                if case .resolveDangling = write { resolvedDangling = true }
            }
            if appended > 0 || resolvedDangling { follow(committed, resolved: resolved, through: newTip.seq) }
            // From now on the follower knows every intent without an outcome (those committed since).
            if resolvedDangling { follower.withLock { $0.resolvedKnown = true } }
            counters.withLock { $0.commits += 1; $0.records += appended; $0.intents += intents }
            commitLatency.record(ContinuousClock.now - started, records: appended)
            return .success(outputs)
        } catch {
            // Rolled back, or its fate unknown (the connection broke at commit): read the tip again next time.
            tip.withLock { $0 = nil }
            logger.error("share log write failed", metadata: ["log.stream": "\(stream)", "log.batch": "\(batch.count)",
                                                              "error.message": "\(error.message)"])
            return .failure(error)
        }
    }

    private func writeBatch(_ batch: [LogWrite], on connection: PostgresConnection) async throws
        -> ([LogWriteOutput], ChainTip, Int, Int, [(seq: Int64, entry: ShareEntry)]) {
        guard try await renewLease(on: connection) else {
            throw LogUnavailable("log stream \(stream) is no longer held by this node: another node took it")
        }
        let startTip = try await tip.snapshot.asyncOr { try await self.loadTip(connection) }
        let start = startTip.seq
        var revoked = try await revokedGrants(of: batch, connection)
        var rows = BatchRows(stream: stream, chain: startTip)
        var outputs: [LogWriteOutput] = []
        outputs.reserveCapacity(batch.count)

        /// Runs the rows gathered so far: a revoke reads `share_grants`, so the links of the
        /// batch's earlier intents must be there first.
        func flushRows() async throws {
            _ = try await appendRows(&rows, fencing: false, on: connection)
        }

        for write in batch {
            switch write {
            case .intent(let entry, let parts):
                outputs.append(.intent(rows.intent(entry, parts, revoked: revoked, logger: logger)))
            case .outcomes(let outcomes):
                outputs.append(.positions(rows.outcomes(outcomes)))
            case .resolveDangling(let time):
                let shareIDs = try await danglingShareIDs(connection)
                for shareID in shareIDs {
                    let row = LogRow(ShareOutcome(shareID: shareID, time: time, result: .unknown))
                    _ = rows.append(row, row.canonicalParts(stream: stream))
                }
                outputs.append(.resolved(shareIDs.count))
            case .revoke(let command):
                try await flushRows()
                let result = try await revoke(command, connection)
                if case .success(let receipt) = result {
                    let row = receipt.record(origin: command.origin, time: command.time)
                    _ = rows.append(row, row.canonicalParts(stream: stream))
                    // Intents later in this batch see the revoke, as if in a later transaction.
                    revoked.formUnion(receipt.grantIDs)
                }
                outputs.append(.revocation(result))
            case .finishPropagation(let command):
                if try await finishPropagation(command, connection) {
                    let row = command.record()
                    _ = rows.append(row, row.canonicalParts(stream: stream))
                }
                outputs.append(.done)
            case .checkpoint(let time):
                try await flushRows()
                if let (signer, _) = checkpointing.snapshot, rows.chain.seq > 0 {
                    try await writeCheckpoint(signer, rows.chain, time: time, connection)
                }
                outputs.append(.done)
            }
        }
        try await flushRows()
        let chain = rows.chain
        if let (signer, every) = checkpointing.snapshot, chain.seq / every > start / every {
            try await writeCheckpoint(signer, chain, time: now(), connection)
        }
        return (outputs, chain, Int(chain.seq - start), rows.intents, rows.committed)
    }

    func loadTip(_ connection: PostgresConnection) async throws -> ChainTip {
        let rows = try await connection.query("""
            SELECT seq, hash FROM share_log WHERE stream = \(stream) ORDER BY seq DESC LIMIT 1
            """, logger: logger).collect()
        guard let row = rows.first else { return .genesis }
        let (seq, hash) = try row.decode((Int64, ByteBuffer).self)
        return ChainTip(seq: seq, hash: Data(hash.readableBytesView))
    }

    /// The revoked grants among those the batch's allowed or redacted intents name, with every
    /// one of those grants' rows share-locked until the batch commits (the fence).
    private func revokedGrants(of batch: [LogWrite], _ connection: PostgresConnection) async throws -> Set<String> {
        var ids: Set<String> = []
        for write in batch {
            guard case .intent(let entry, _) = write, entry.decision != .blocked else { continue }
            ids.formUnion(entry.grantIDs)
        }
        guard !ids.isEmpty else { return [] }
        let sorted = ids.sorted()
        var revoked: Set<String> = []
        let rows = try await connection.query("""
            SELECT id, revoked_at IS NOT NULL FROM grants WHERE id = ANY(\(sorted)) ORDER BY id FOR SHARE
            """, logger: logger)
        for try await (id, isRevoked) in rows.decode((String, Bool).self) where isRevoked { revoked.insert(id) }
        return revoked
    }

    private func danglingShareIDs(_ connection: PostgresConnection) async throws -> [String] {
        var ids: [String] = []
        let rows = try await connection.query("""
            SELECT s.share_id FROM share_log s
            WHERE s.stream = \(stream) AND s.seq > coalesce((SELECT resolved FROM log_follower WHERE stream = \(stream)), 0)
              AND s.kind = 'share' AND s.decision IN ('allowed', 'redacted')
              AND NOT EXISTS (SELECT 1 FROM share_log o WHERE o.share_id = s.share_id AND o.kind = 'outcome')
            ORDER BY s.seq
            """, logger: logger)
        for try await id in rows.decode(String.self) { ids.append(id) }
        return ids
    }

    /// A fold's aggregates: one upsert statement for the day counts and one insert per subject
    /// table, then the exposure rows, rows in key order (concurrent nodes then lock shared rows in
    /// the same order).
    func write(_ tally: SharingTally, _ connection: PostgresConnection) async throws -> [SharingTally.SubjectKey] {
        guard !tally.isEmpty else { return [] }
        var daily = MultiRowInsert("sharing_daily (day, provider, purpose, category, action, shares, first_us, last_us)",
                                   columns: 8, """
            ON CONFLICT (day, provider, purpose, category, action) DO UPDATE SET
                shares = sharing_daily.shares + excluded.shares,
                first_us = least(sharing_daily.first_us, excluded.first_us),
                last_us = greatest(sharing_daily.last_us, excluded.last_us)
            """)
        for (key, count) in tally.days.sorted(by: { $0.key.order.lexicographicallyPrecedes($1.key.order) }) {
            daily.row { b in
                b.append(key.day); b.append(key.provider); b.append(key.purpose); b.append(key.category)
                b.append(key.action); b.append(count.shares); b.append(count.first); b.append(count.last)
            }
        }
        let known = knownSubjectRows.withLock { $0.rows }
        let fresh = tally.subjects.filter { !known.contains($0) }.sorted { $0.order.lexicographicallyPrecedes($1.order) }
        var subjects = MultiRowInsert("sharing_subjects (day, provider, purpose, category, subject)", columns: 5,
                                      "ON CONFLICT DO NOTHING")
        var span = MultiRowInsert("sharing_subject_span (provider, purpose, category, subject)", columns: 4,
                                  "ON CONFLICT DO NOTHING")
        for key in fresh {
            if let day = key.day {
                subjects.row { b in
                    b.append(day); b.append(key.provider); b.append(key.purpose); b.append(key.category); b.append(key.subject)
                }
            } else {
                span.row { b in b.append(key.provider); b.append(key.purpose); b.append(key.category); b.append(key.subject) }
            }
        }
        let merge = { (table: String, key: String) in """
            ON CONFLICT (\(key)) DO UPDATE SET shares = \(table).shares + excluded.shares,
                first_us = least(\(table).first_us, excluded.first_us), last_us = greatest(\(table).last_us, excluded.last_us),
                sent = \(table).sent OR excluded.sent
            """ }
        var exposureDaily = MultiRowInsert("exposure_daily (provider, subject, day, category, shares, first_us, last_us, sent)",
                                           columns: 8, merge("exposure_daily", "provider, subject, day, category"))
        var exposureSpan = MultiRowInsert("exposure_span (provider, subject, category, shares, first_us, last_us, sent)",
                                          columns: 7, merge("exposure_span", "provider, subject, category"))
        for (key, value) in tally.exposure.sorted(by: { $0.key.order.lexicographicallyPrecedes($1.key.order) }) {
            let count = value.count
            if let day = key.day {
                exposureDaily.row { b in
                    b.append(key.provider); b.append(key.subject); b.append(day); b.append(key.category)
                    b.append(count.shares); b.append(count.first); b.append(count.last); b.append(value.sent)
                }
            } else {
                exposureSpan.row { b in
                    b.append(key.provider); b.append(key.subject); b.append(key.category)
                    b.append(count.shares); b.append(count.first); b.append(count.last); b.append(value.sent)
                }
            }
        }
        for query in daily.queries() + subjects.queries() + span.queries() + exposureDaily.queries() + exposureSpan.queries() {
            try await connection.query(query, logger: logger)
        }
        return fresh
    }

    /// Every record of one stream in `seq` order (meant for tests and small logs).
    public func records(stream: String) async throws(LogUnavailable) -> [StoredRecord] {
        try await run("reading log records") { connection in
            var records: [StoredRecord] = []
            let rows = try await connection.query("""
                SELECT seq, kind, share_id, time_us, subject, provider, purpose, decision, caller, channel, body, prev_hash, hash
                FROM share_log WHERE stream = \(stream) ORDER BY seq
                """, logger: self.logger)
            for try await row in rows {
                let columns = PostgresRandomAccessRow(row)
                records.append(StoredRecord(
                    stream: stream, seq: try columns[0].decode(Int64.self), kind: try columns[1].decode(String.self),
                    shareID: try columns[2].decode(String?.self) ?? "", time: Microseconds.date(try columns[3].decode(Int64.self)),
                    subject: try columns[4].decode(String?.self), provider: try columns[5].decode(String?.self),
                    purpose: try columns[6].decode(String?.self), decision: try columns[7].decode(String?.self),
                    caller: try columns[8].decode(String?.self), channel: try columns[9].decode(String?.self),
                    body: try columns[10].decode(String.self),
                    prevHash: Hex.encode(Data(try columns[11].decode(ByteBuffer.self).readableBytesView)),
                    hash: Hex.encode(Data(try columns[12].decode(ByteBuffer.self).readableBytesView))))
            }
            return records
        }
    }
}

extension SharingTally.DayKey {
    var order: [String] { [String(day), provider, purpose, category, action] }
}

extension SharingTally.SubjectKey {
    var order: [String] { [day.map(String.init) ?? "", provider, purpose, category, subject] }
}

extension SharingTally.ExposureKey {
    var order: [String] { [provider, subject, day.map(String.init) ?? "", category] }
}

extension Optional where Wrapped: Sendable {
    /// The value, or what `make` gives when there is none.
    func asyncOr(_ make: () async throws -> Wrapped) async rethrows -> Wrapped {
        if let self { return self }
        return try await make()
    }
}

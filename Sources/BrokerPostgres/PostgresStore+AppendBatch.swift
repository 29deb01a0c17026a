import BrokerFields
import BrokerLogStore
import BrokerService
import Foundation
import Logging
import PostgresNIO

/// A batch's rows for `share_log`, `share_grants` and `revocation_key_sets`, gathered as one array per
/// column and sent as one call of `sharebroker_append_batch`: the whole batch of intents and outcomes
/// (one round trip), or, in the transaction of a batch that also revokes or checkpoints, the rows
/// gathered before each revoke and at the end.
struct BatchRows {
    let stream: String
    private(set) var chain: ChainTip
    private(set) var committed: [(seq: Int64, entry: ShareEntry)] = []
    /// The grants the batch's allowed and redacted intents rely on: the fence locks them.
    private(set) var fencedGrants: Set<String> = []
    private(set) var intents = 0

    private var seq: [Int64] = [], kind: [String] = [], shareID: [String] = [], timeUs: [Int64] = []
    private var subject: [String] = [], provider: [String] = [], purpose: [String] = [], decision: [String] = []
    private var caller: [String] = [], channel: [String] = [], body: [String] = [], prev: [ByteBuffer] = [], hash: [ByteBuffer] = []
    private var linkGrant: [String] = [], linkShare: [String] = [], linkProvider: [String] = [], linkSet: [Int64] = []
    /// One element per grant and key set: the function's upsert may touch each row once.
    private var keyIndex: [KeySetSlot: Int] = [:]
    private var keyGrant: [String] = [], keySet: [Int64] = [], keyProvider: [String] = [], keySealed: [ByteBuffer] = []
    private var keyExpires: [Int64] = []
    private var relinkGrant: [String] = [], relinkShare: [String] = [], relinkSet: [Int64] = []

    private struct KeySetSlot: Hashable {
        let grant: String
        let set: Int64
    }

    init(stream: String, chain: ChainTip) { self.stream = stream; self.chain = chain }

    var isEmpty: Bool { seq.isEmpty && linkGrant.isEmpty && keyGrant.isEmpty && relinkGrant.isEmpty }

    /// The next record of the chain.
    mutating func append(_ row: LogRow, _ parts: CanonicalParts) -> ChainPosition {
        let record = chain.next(parts, stream: stream)
        seq.append(chain.seq); kind.append(row.kind.rawValue); shareID.append(row.shareID ?? ""); timeUs.append(row.timeUs)
        subject.append(row.subject ?? ""); provider.append(row.provider ?? ""); purpose.append(row.purpose ?? "")
        decision.append(row.decision ?? ""); caller.append(row.caller ?? ""); channel.append(row.channel ?? "")
        body.append(String(decoding: record.body, as: UTF8.self))
        prev.append(ByteBuffer(bytes: record.prevHash)); hash.append(ByteBuffer(bytes: record.hash))
        return record.position
    }

    /// An intent: written as it is, or (its grant revoked) as blocked by the fence; its grant links
    /// and sealed revocation keys beside it.
    mutating func intent(_ entry: ShareEntry, _ parts: CanonicalParts, revoked: Set<String>, logger: Logger) -> IntentResult {
        intents += 1
        if entry.decision != .blocked, let grantID = entry.grantIDs.first(where: revoked.contains) {
            let fenced = entry.fencedByRevocation()
            let row = LogRow(fenced)
            let position = append(row, row.canonicalParts(stream: stream))
            committed.append((position.seq, fenced))
            logger.notice("share refused by the revocation fence",
                          metadata: ["share.id": "\(entry.shareID)", "share.provider": "\(entry.provider)", "grant.id": "\(grantID)"])
            return .grantRevoked(grantID: grantID, position)
        }
        let position = append(LogRow(entry), parts)
        committed.append((position.seq, entry))
        if entry.decision != .blocked {
            fencedGrants.formUnion(entry.grantIDs)
            for grantID in entry.grantIDs {
                linkGrant.append(grantID); linkShare.append(entry.shareID); linkProvider.append(entry.provider)
                linkSet.append(entry.revocationKeys?.keySet ?? 0)
                if let sealed = entry.revocationKeys { key(grantID, entry.provider, sealed) }
            }
        }
        return .committed(position)
    }

    mutating func outcomes(_ outcomes: [(ShareOutcome, CanonicalParts)]) -> [ChainPosition] {
        let positions = outcomes.map { append(LogRow($0.0), $0.1) }
        for (outcome, _) in outcomes {
            guard let sealed = outcome.revocationKeys, let provider = outcome.provider else { continue }
            // The answer's keys join the share's: its links name the new set.
            for grantID in outcome.grantIDs {
                relinkGrant.append(grantID); relinkShare.append(outcome.shareID); relinkSet.append(sealed.keySet)
                key(grantID, provider, sealed)
            }
        }
        return positions
    }

    private mutating func key(_ grant: String, _ provider: String, _ sealed: SealedRevocationKeys) {
        let expires = Microseconds.from(sealed.expiresAt)
        let slot = KeySetSlot(grant: grant, set: sealed.keySet)
        if let index = keyIndex[slot] {
            keyExpires[index] = max(keyExpires[index], expires)
            return
        }
        keyIndex[slot] = keyGrant.count
        keyGrant.append(grant); keySet.append(sealed.keySet); keyProvider.append(provider)
        keySealed.append(ByteBuffer(bytes: sealed.sealed)); keyExpires.append(expires)
    }

    /// The rows gathered since the last call in one statement (see migration v7): the lease renewed,
    /// with `fencing` the fence read, every row inserted. Its answer is the revoked grant ids, empty
    /// when the rows were written. The transaction path calls it without the fence (it read the fence
    /// itself, and a revoke earlier in its batch must not stop the rows before it) before each revoke
    /// and at the end: the rows are handed out once.
    mutating func takeCall(holder: String, leaseUntil: Int64, fencing: Bool) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(stream); binds.append(holder); binds.append(leaseUntil); binds.append(fencing ? fencedGrants.sorted() : [])
        binds.append(seq); binds.append(kind); binds.append(shareID); binds.append(timeUs); binds.append(subject)
        binds.append(provider); binds.append(purpose); binds.append(decision); binds.append(caller); binds.append(channel)
        binds.append(body); binds.append(prev); binds.append(hash)
        binds.append(linkGrant); binds.append(linkShare); binds.append(linkProvider); binds.append(linkSet)
        binds.append(keyGrant); binds.append(keySet); binds.append(keyProvider); binds.append(keySealed); binds.append(keyExpires)
        binds.append(relinkGrant); binds.append(relinkShare); binds.append(relinkSet)
        seq = []; kind = []; shareID = []; timeUs = []; subject = []; provider = []; purpose = []; decision = []
        caller = []; channel = []; body = []; prev = []; hash = []
        linkGrant = []; linkShare = []; linkProvider = []; linkSet = []
        keyIndex = [:]; keyGrant = []; keySet = []; keyProvider = []; keySealed = []; keyExpires = []
        relinkGrant = []; relinkShare = []; relinkSet = []
        let placeholders = (1...binds.count).map { "$\($0)" }.joined(separator: ", ")
        return PostgresQuery(unsafeSQL: "SELECT sharebroker_append_batch(\(placeholders))", binds: binds)
    }
}

extension PostgresStore {
    /// A batch of intents and outcomes in one round trip: one call of `sharebroker_append_batch`, which is
    /// its own transaction (committed, with `synchronous_commit` on, before it answers). When the fence
    /// finds a revoked grant, nothing was written: the batch is built again with those intents blocked and
    /// sent again. `nil` for a batch that needs the transaction path (revokes, propagation, dangling
    /// intents, checkpoints).
    func appendInOneRoundTrip(_ batch: [LogWrite], on connection: PostgresConnection) async throws
        -> (outputs: [LogWriteOutput], rows: BatchRows, start: Int64)? {
        var records = 0
        for write in batch {
            switch write {
            case .intent: records += 1
            case .outcomes(let outcomes): records += outcomes.count
            default: return nil
            }
        }
        let start = try await tip.snapshot.asyncOr { try await self.loadTip(connection) }
        if let (_, every) = checkpointing.snapshot, (start.seq + Int64(records)) / every > start.seq / every { return nil }
        var revoked: Set<String> = []
        while true {
            var rows = BatchRows(stream: stream, chain: start)
            var outputs: [LogWriteOutput] = []
            outputs.reserveCapacity(batch.count)
            for write in batch {
                switch write {
                case .intent(let entry, let parts): outputs.append(.intent(rows.intent(entry, parts, revoked: revoked, logger: logger)))
                case .outcomes(let outcomes): outputs.append(.positions(rows.outcomes(outcomes)))
                default: return nil
                }
            }
            let answer = try await appendRows(&rows, fencing: true, on: connection)
            if answer.isEmpty { return (outputs, rows, start.seq) }
            revoked.formUnion(answer)   // those intents are written as blocked in the next round
        }
    }

    /// Sends the rows `rows` gathered since the last call (`BatchRows.takeCall`); the revoked grant ids.
    func appendRows(_ rows: inout BatchRows, fencing: Bool, on connection: PostgresConnection) async throws -> [String] {
        guard fencing || !rows.isEmpty else { return [] }
        let call = rows.takeCall(holder: holder, leaseUntil: Microseconds.from(now()) + lease.microseconds, fencing: fencing)
        return try await connection.query(call, logger: logger).collect().first?.decode([String].self) ?? []
    }
}

import BrokerCore
import BrokerService
import Foundation

/// A share-log record before it takes its place in the chain: its canonical
/// members and the columns indexed beside the body.
///
/// The canonical body is every field of the `ShareEntry` or `ShareOutcome`,
/// in snake_case, instants as integer microseconds, plus `stream`, `seq` and
/// `kind`. Nothing is added: the log never holds a personal value. A logged
/// field has `fingerprint`, or, folded, `count` and (for personal values)
/// `fingerprints` instead.
package struct LogRow: Sendable {
    package enum Kind: String, Sendable { case share, outcome, revocation }

    /// What the body is written from.
    private enum Source: Sendable {
        case entry(ShareEntry)
        case outcome(ShareOutcome)
        case revocation([String: CanonicalJSON])
    }

    package var kind: Kind
    /// `nil` for revocation records.
    package var shareID: String?
    package var timeUs: Int64
    package var subject: String?
    package var provider: String?
    package var purpose: String?
    package var decision: String?
    package var caller: String?
    package var channel: String?
    private var source: Source

    package init(_ entry: ShareEntry) {
        kind = .share
        shareID = entry.shareID
        timeUs = Microseconds.from(entry.time)
        subject = entry.subject
        provider = entry.provider
        purpose = entry.purpose
        decision = entry.decision.rawValue
        caller = entry.caller
        channel = entry.channel.rawValue
        source = .entry(entry)
    }

    package init(_ outcome: ShareOutcome) {
        kind = .outcome
        shareID = outcome.shareID
        timeUs = Microseconds.from(outcome.time)
        source = .outcome(outcome)
    }

    /// A revocation record: `event` is `revoked` (with the grants and shares) or a
    /// provider's final state (`acknowledged`, `failed`, `manual_required`).
    package init(revocation members: [String: CanonicalJSON], subject: String, provider: String?, time: Date) {
        kind = .revocation
        shareID = nil
        timeUs = Microseconds.from(time)
        self.subject = subject
        self.provider = provider
        var all = members
        all["subject"] = .string(subject)
        all["provider"] = .string(provider)
        all["time_us"] = .int(timeUs)
        source = .revocation(all)
    }

    /// The record's members, without `stream`, `seq` and `kind`, as a generic
    /// JSON value: the definition that `canonicalBytes` writes directly (tests
    /// check that both give the same bytes).
    package var members: [String: CanonicalJSON] {
        switch source {
        case .entry(let entry):
            return [
                "share_id": .string(entry.shareID),
                "time_us": .int(timeUs),
                "node": .string(entry.node),
                "caller": .string(entry.caller),
                "channel": .string(entry.channel.rawValue),
                "provider": .string(entry.provider),
                "operation": .string(entry.operation),
                "purpose": .string(entry.purpose),
                "subject": .string(entry.subject),
                "decision": .string(entry.decision.rawValue),
                "code": .string(entry.code?.rawValue),
                "reasons": .array(entry.reasons.map { .string($0.rawValue) }),
                "fields": .array(entry.fields.map { field in
                    var members: [String: CanonicalJSON] = [
                        "location": .string(field.location.rawValue),
                        "path": .string(field.path),
                        "category": .string(field.category),
                        "action": .string(field.action.rawValue),
                        "reason": .string(field.reason?.rawValue),
                    ]
                    if let detector = field.detector { members["detector"] = .string(detector) }
                    if field.isFolded {
                        members["count"] = .int(field.count)
                        if let prints = field.fingerprints { members["fingerprints"] = .array(prints.map { .string($0) }) }
                    } else {
                        members["fingerprint"] = .string(field.fingerprint)
                    }
                    if let from = field.minimisedFrom { members["minimised_from"] = .string(from) }
                    return .object(members)
                }),
                "grant_ids": .array(entry.grantIDs.map { .string($0) }),
                "contract_version": .string(entry.contractVersion),
                "contract_hash": .string(entry.contractHash),
                "adapter_hash": .string(entry.adapterHash),
                "policy_revision": .string(entry.policyRevision),
            ]
        case .outcome(let outcome):
            return [
                "share_id": .string(outcome.shareID),
                "time_us": .int(timeUs),
                "result": .string(outcome.result.rawValue),
                "upstream_status": .int(outcome.upstreamStatus),
                "latency_ms": .int(outcome.latencyMs),
                "error": .string(outcome.error),
            ]
        case .revocation(let members):
            return members
        }
    }

    /// The bytes that are hashed and stored in `body`: the canonical JSON of
    /// `members` plus `stream`, `seq` and `kind`, written straight into one
    /// buffer with the keys in their canonical (UTF-8 byte) order.
    package func canonicalBytes(stream: String, seq: Int64) -> [UInt8] {
        canonicalParts(stream: stream).body(seq: seq)
    }

    /// The canonical body in two pieces around the `seq` digits, the only part
    /// that depends on the record's place in the chain: the pieces are written
    /// before the record reaches the single writer, which only joins them.
    package func canonicalParts(stream: String) -> CanonicalParts {
        var out: [UInt8] = []
        var tail: [UInt8] = []
        switch source {
        case .revocation:
            return CanonicalParts(generic: self, stream: stream)
        case .entry(let e):
            var prints = 0
            for field in e.fields { prints += field.fingerprints?.count ?? 0 }
            out.reserveCapacity(384 + 224 * e.fields.count + 11 * prints + 24 * e.grantIDs.count + 24 * e.reasons.count)
            out.append(contentsOf: #"{"adapter_hash":"#.utf8)
            CanonicalJSON.writeString(e.adapterHash, to: &out)
            out.append(contentsOf: #","caller":"#.utf8)
            CanonicalJSON.writeString(e.caller, to: &out)
            out.append(contentsOf: #","channel":"#.utf8)
            CanonicalJSON.writeString(e.channel.rawValue, to: &out)
            out.append(contentsOf: #","code":"#.utf8)
            CanonicalJSON.writeString(e.code?.rawValue, to: &out)
            out.append(contentsOf: #","contract_hash":"#.utf8)
            CanonicalJSON.writeString(e.contractHash, to: &out)
            out.append(contentsOf: #","contract_version":"#.utf8)
            CanonicalJSON.writeString(e.contractVersion, to: &out)
            out.append(contentsOf: #","decision":"#.utf8)
            CanonicalJSON.writeString(e.decision.rawValue, to: &out)
            out.append(contentsOf: #","fields":["#.utf8)
            for (i, field) in e.fields.enumerated() {
                out.append(contentsOf: (i == 0 ? #"{"action":"# : #",{"action":"#).utf8)
                CanonicalJSON.writeString(field.action.rawValue, to: &out)
                out.append(contentsOf: #","category":"#.utf8)
                CanonicalJSON.writeString(field.category, to: &out)
                if field.isFolded {
                    // Only in folded entries (a path repeated), so every other record's bytes (and hash) stay as they were.
                    out.append(contentsOf: #","count":"#.utf8)
                    CanonicalJSON.writeInt(Int64(field.count), to: &out)
                }
                if let detector = field.detector {
                    // Only where a detector refused the field (keys in UTF-8 order: count < detector < fingerprint).
                    out.append(contentsOf: #","detector":"#.utf8)
                    CanonicalJSON.writeString(detector, to: &out)
                }
                if field.isFolded {
                    if let prints = field.fingerprints {
                        out.append(contentsOf: #","fingerprints":["#.utf8)
                        for (i, print) in prints.enumerated() {
                            if i > 0 { out.append(UInt8(ascii: ",")) }
                            CanonicalJSON.writeString(print, to: &out)
                        }
                        out.append(UInt8(ascii: "]"))
                    }
                } else {
                    out.append(contentsOf: #","fingerprint":"#.utf8)
                    CanonicalJSON.writeString(field.fingerprint, to: &out)
                }
                out.append(contentsOf: #","location":"#.utf8)
                CanonicalJSON.writeString(field.location.rawValue, to: &out)
                if let from = field.minimisedFrom {
                    // Only in minimised fields' records, so every other record's bytes (and hash) stay as they were.
                    out.append(contentsOf: #","minimised_from":"#.utf8)
                    CanonicalJSON.writeString(from, to: &out)
                }
                out.append(contentsOf: #","path":"#.utf8)
                CanonicalJSON.writeString(field.path, to: &out)
                out.append(contentsOf: #","reason":"#.utf8)
                CanonicalJSON.writeString(field.reason?.rawValue, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(contentsOf: #"],"grant_ids":["#.utf8)
            for (i, grantID) in e.grantIDs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                CanonicalJSON.writeString(grantID, to: &out)
            }
            out.append(contentsOf: #"],"kind":"#.utf8)
            CanonicalJSON.writeString(kind.rawValue, to: &out)
            out.append(contentsOf: #","node":"#.utf8)
            CanonicalJSON.writeString(e.node, to: &out)
            out.append(contentsOf: #","operation":"#.utf8)
            CanonicalJSON.writeString(e.operation, to: &out)
            out.append(contentsOf: #","policy_revision":"#.utf8)
            CanonicalJSON.writeString(e.policyRevision, to: &out)
            out.append(contentsOf: #","provider":"#.utf8)
            CanonicalJSON.writeString(e.provider, to: &out)
            out.append(contentsOf: #","purpose":"#.utf8)
            CanonicalJSON.writeString(e.purpose, to: &out)
            out.append(contentsOf: #","reasons":["#.utf8)
            for (i, reason) in e.reasons.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                CanonicalJSON.writeString(reason.rawValue, to: &out)
            }
            out.append(contentsOf: #"],"seq":"#.utf8)
            tail = Self.tailStart(shareID: e.shareID, stream: stream)
            tail.append(contentsOf: #","subject":"#.utf8)
            CanonicalJSON.writeString(e.subject, to: &tail)
            tail.append(contentsOf: #","time_us":"#.utf8)
            CanonicalJSON.writeInt(timeUs, to: &tail)
            tail.append(UInt8(ascii: "}"))
        case .outcome(let o):
            out.reserveCapacity(96 + (o.error?.utf8.count ?? 0))
            out.append(contentsOf: #"{"error":"#.utf8)
            CanonicalJSON.writeString(o.error, to: &out)
            out.append(contentsOf: #","kind":"#.utf8)
            CanonicalJSON.writeString(kind.rawValue, to: &out)
            out.append(contentsOf: #","latency_ms":"#.utf8)
            CanonicalJSON.writeInt(o.latencyMs, to: &out)
            out.append(contentsOf: #","result":"#.utf8)
            CanonicalJSON.writeString(o.result.rawValue, to: &out)
            out.append(contentsOf: #","seq":"#.utf8)
            tail = Self.tailStart(shareID: o.shareID, stream: stream)
            tail.append(contentsOf: #","time_us":"#.utf8)
            CanonicalJSON.writeInt(timeUs, to: &tail)
            tail.append(contentsOf: #","upstream_status":"#.utf8)
            CanonicalJSON.writeInt(o.upstreamStatus, to: &tail)
            tail.append(UInt8(ascii: "}"))
        }
        return CanonicalParts(head: out, tail: tail)
    }

    /// `,"share_id":…,"stream":…`: how the tail after `seq` begins for shares and outcomes alike.
    private static func tailStart(shareID: String, stream: String) -> [UInt8] {
        var tail: [UInt8] = []
        tail.reserveCapacity(160)
        tail.append(contentsOf: #","share_id":"#.utf8)
        CanonicalJSON.writeString(shareID, to: &tail)
        tail.append(contentsOf: #","stream":"#.utf8)
        CanonicalJSON.writeString(stream, to: &tail)
        return tail
    }

    /// `canonicalBytes` the generic way (the reference the direct writer must match).
    package func referenceCanonicalBytes(stream: String, seq: Int64) -> [UInt8] {
        var all = members
        all["stream"] = .string(stream)
        all["seq"] = .int(seq)
        all["kind"] = .string(kind.rawValue)
        return CanonicalJSON.object(all).bytes
    }
}

/// A record's canonical body before its `seq` is known: the bytes before and after the digits.
package struct CanonicalParts: Sendable {
    private var head: [UInt8]
    private var tail: [UInt8]
    /// Revocation records (rare) are written the generic way, once their seq is known.
    private var generic: (row: LogRow, stream: String)?

    package init(head: [UInt8], tail: [UInt8]) { self.head = head; self.tail = tail; generic = nil }
    package init(generic row: LogRow, stream: String) { head = []; tail = []; generic = (row, stream) }

    /// The whole body for `seq`.
    package func body(seq: Int64) -> [UInt8] {
        if let generic { return generic.row.referenceCanonicalBytes(stream: generic.stream, seq: seq) }
        var out: [UInt8] = []
        out.reserveCapacity(head.count + 20 + tail.count)
        out.append(contentsOf: head)
        CanonicalJSON.writeInt(seq, to: &out)
        out.append(contentsOf: tail)
        return out
    }
}

extension ShareEntry {
    /// This entry as the revocation fence rewrites it: blocked with
    /// `consent_revoked`, every field blocked (a field that had no reason of
    /// its own is marked `share_blocked`).
    package func fencedByRevocation() -> ShareEntry {
        var entry = self
        entry.decision = .blocked
        entry.code = .consentRevoked
        entry.reasons = [.consentRevoked]
        entry.fields = fields.map { field in
            var field = field
            if field.action != .blocked && field.reason == nil { field.reason = .shareBlocked }
            field.action = .blocked
            return field
        }
        return entry
    }
}

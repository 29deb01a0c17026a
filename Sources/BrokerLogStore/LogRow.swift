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
    /// buffer with the keys in their canonical (UTF-8 byte) order. A member
    /// whose value is null is left out (records written before 2026-12-07
    /// spelled them out; both verify, since the stored bytes are what is hashed).
    package func canonicalBytes(stream: String, seq: Int64) -> [UInt8] {
        canonicalParts(stream: stream).body(seq: seq)
    }

    /// The canonical body in two pieces around the `seq` digits, the only part
    /// that depends on the record's place in the chain: the pieces are written
    /// before the record reaches the single writer, which only joins them.
    package func canonicalParts(stream: String) -> CanonicalParts {
        var out = Members()
        var tail: [UInt8] = []
        switch source {
        case .revocation:
            return CanonicalParts(generic: self, stream: stream)
        case .entry(let e):
            var prints = 0
            for field in e.fields { prints += field.fingerprints?.count ?? 0 }
            out.bytes.reserveCapacity(384 + 200 * e.fields.count + 11 * prints + 24 * e.grantIDs.count + 24 * e.reasons.count)
            out.string("adapter_hash", e.adapterHash)
            out.string("caller", e.caller)
            out.string("channel", e.channel.rawValue)
            out.string("code", e.code?.rawValue)
            out.string("contract_hash", e.contractHash)
            out.string("contract_version", e.contractVersion)
            out.string("decision", e.decision.rawValue)
            out.key("fields")
            out.bytes.append(UInt8(ascii: "["))
            for (i, field) in e.fields.enumerated() {
                if i > 0 { out.bytes.append(UInt8(ascii: ",")) }
                out.beginObject()
                out.string("action", field.action.rawValue)
                out.string("category", field.category)
                // `count` and `fingerprints` only in folded entries (a path repeated), `detector` only where a
                // detector refused the field, `minimised_from` only in minimised fields (keys in UTF-8 order).
                if field.isFolded { out.int("count", Int64(field.count)) }
                out.string("detector", field.detector)
                if field.isFolded {
                    if let prints = field.fingerprints {
                        out.key("fingerprints")
                        out.strings(prints)
                    }
                } else {
                    out.string("fingerprint", field.fingerprint)
                }
                out.string("location", field.location.rawValue)
                out.string("minimised_from", field.minimisedFrom)
                out.string("path", field.path)
                out.string("reason", field.reason?.rawValue)
                out.endObject()
            }
            out.bytes.append(UInt8(ascii: "]"))
            out.key("grant_ids")
            out.strings(e.grantIDs)
            out.string("kind", kind.rawValue)
            out.string("node", e.node)
            out.string("operation", e.operation)
            out.string("policy_revision", e.policyRevision)
            out.string("provider", e.provider)
            out.string("purpose", e.purpose)
            out.key("reasons")
            out.strings(e.reasons.lazy.map(\.rawValue))
            out.key("seq")
            tail = Self.tailStart(shareID: e.shareID, stream: stream)
            if let subject = e.subject {
                tail.append(contentsOf: #","subject":"#.utf8)
                CanonicalJSON.writeString(subject, to: &tail)
            }
            tail.append(contentsOf: #","time_us":"#.utf8)
            CanonicalJSON.writeInt(timeUs, to: &tail)
            tail.append(UInt8(ascii: "}"))
        case .outcome(let o):
            out.bytes.reserveCapacity(96 + (o.error?.utf8.count ?? 0))
            out.string("error", o.error)
            out.string("kind", kind.rawValue)
            if let latency = o.latencyMs { out.int("latency_ms", Int64(latency)) }
            out.string("result", o.result.rawValue)
            out.key("seq")
            tail = Self.tailStart(shareID: o.shareID, stream: stream)
            tail.append(contentsOf: #","time_us":"#.utf8)
            CanonicalJSON.writeInt(timeUs, to: &tail)
            if let status = o.upstreamStatus {
                tail.append(contentsOf: #","upstream_status":"#.utf8)
                CanonicalJSON.writeInt(Int64(status), to: &tail)
            }
            tail.append(UInt8(ascii: "}"))
        }
        return CanonicalParts(head: out.bytes, tail: tail)
    }

    /// JSON objects' members written in the order given (the caller's is the canonical one), each
    /// preceded by `{` or `,`; a member whose value is absent is left out.
    private struct Members {
        var bytes: [UInt8] = []
        /// No member of the object being written yet.
        private var first = true

        /// An object nested in the current one (as an array element, after its `[` or `,`).
        mutating func beginObject() { first = true }

        mutating func endObject() {
            if first { bytes.append(UInt8(ascii: "{")) }
            bytes.append(UInt8(ascii: "}"))
            first = false
        }

        mutating func key(_ name: StaticString) {
            bytes.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            bytes.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(UInt8(ascii: ":"))
        }

        mutating func string(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            key(name)
            CanonicalJSON.writeString(value, to: &bytes)
        }

        mutating func int(_ name: StaticString, _ value: Int64) {
            key(name)
            CanonicalJSON.writeInt(value, to: &bytes)
        }

        mutating func strings(_ values: some Sequence<String>) {
            bytes.append(UInt8(ascii: "["))
            for (i, value) in values.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                CanonicalJSON.writeString(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        }
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
        return CanonicalJSON.object(all).withoutNullMembers.bytes
    }
}

/// A record's canonical body before its `seq` is known: the bytes before and after the digits.
package struct CanonicalParts: Sendable {
    private var head: [UInt8]
    private var tail: [UInt8]
    /// The body as stored, when packed (`pack(against:)`, off the writer); `nil`: stored as its text.
    package private(set) var packed: PackedBody?
    /// Revocation records (rare) are written the generic way, once their seq is known.
    private var generic: (row: LogRow, stream: String)?

    package init(head: [UInt8], tail: [UInt8]) { self.head = head; self.tail = tail; generic = nil }
    package init(generic row: LogRow, stream: String) { head = []; tail = []; generic = (row, stream) }

    /// Packs `head ‖ tail` against `dictionary` (`RecordPacking`); revocation records stay text.
    package mutating func pack(against dictionary: LogDictionary) {
        guard generic == nil else { return }
        packed = PackedBody(dictionary: dictionary, bytes: RecordPacking.pack(head: head, tail: tail, dictionary: dictionary))
    }

    /// These parts stored as text (not packed).
    package var unpacked: CanonicalParts {
        var parts = self
        parts.packed = nil
        return parts
    }

    /// Head and tail joined, without the seq digits: a template's bytes (`LogDictionaries`).
    var joined: [UInt8] { head + tail }

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

/// A record's stored form: its packed bytes and the dictionary they unpack against.
package struct PackedBody: Sendable {
    package var dictionary: LogDictionary
    package var bytes: [UInt8]
}

extension ShareEntry {
    /// This entry without what differs between shares of one operation (share id, time, subject,
    /// grants, fingerprints): its record is the template `LogDictionaries` packs them against. The
    /// keys stay (an empty value keeps its member), so the template has every member name.
    package var template: ShareEntry {
        var entry = self
        entry.shareID = ""
        entry.time = Date(timeIntervalSince1970: 0)
        entry.subject = subject == nil ? nil : ""
        entry.grantIDs = []
        entry.revocationKeys = nil
        entry.fields = fields.map { field in
            var field = field
            if field.fingerprint != nil { field.fingerprint = "" }
            if field.fingerprints != nil { field.fingerprints = [] }
            // A key the caller chose is logged only as a keyed print (`<k:…>`, `<undeclared:…>`): not in a template.
            if field.path.contains("<k:") || field.path.contains("<undeclared:") { field.path = "" }
            return field
        }
        return entry
    }

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

import BrokerCore
import BrokerService
import Foundation

/// A share-log record before it takes its place in the chain: its canonical
/// members and the columns indexed beside the body.
///
/// The canonical body is every field of the `ShareEntry` or `ShareOutcome`,
/// in snake_case, instants as integer microseconds, plus `stream`, `seq` and
/// `kind`. Nothing is added: the log never holds a personal value.
struct LogRow: Sendable {
    enum Kind: String, Sendable { case share, outcome }

    var kind: Kind
    var shareID: String
    var timeUs: Int64
    var subject: String?
    var provider: String?
    var purpose: String?
    var decision: String?
    var caller: String?
    var channel: String?
    /// The record's members, without `stream`, `seq` and `kind`.
    var members: [String: CanonicalJSON]

    init(_ entry: ShareEntry) {
        kind = .share
        shareID = entry.shareID
        timeUs = Microseconds.from(entry.time)
        subject = entry.subject
        provider = entry.provider
        purpose = entry.purpose
        decision = entry.decision.rawValue
        caller = entry.caller
        channel = entry.channel.rawValue
        members = [
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
                .object([
                    "location": .string(field.location.rawValue),
                    "path": .string(field.path),
                    "category": .string(field.category),
                    "action": .string(field.action.rawValue),
                    "reason": .string(field.reason?.rawValue),
                    "fingerprint": .string(field.fingerprint),
                ])
            }),
            "grant_ids": .array(entry.grantIDs.map { .string($0) }),
            "contract_version": .string(entry.contractVersion),
            "contract_hash": .string(entry.contractHash),
            "adapter_hash": .string(entry.adapterHash),
        ]
    }

    init(_ outcome: ShareOutcome) {
        kind = .outcome
        shareID = outcome.shareID
        timeUs = Microseconds.from(outcome.time)
        members = [
            "share_id": .string(outcome.shareID),
            "time_us": .int(timeUs),
            "result": .string(outcome.result.rawValue),
            "upstream_status": .int(outcome.upstreamStatus),
            "latency_ms": .int(outcome.latencyMs),
            "error": .string(outcome.error),
        ]
    }

    /// The bytes that are hashed and stored in `body`.
    func canonicalBytes(stream: String, seq: Int64) -> [UInt8] {
        var all = members
        all["stream"] = .string(stream)
        all["seq"] = .int(seq)
        all["kind"] = .string(kind.rawValue)
        return CanonicalJSON.object(all).bytes
    }
}

extension ShareEntry {
    /// This entry as the revocation fence rewrites it: blocked with
    /// `consent_revoked`, every field blocked (a field that had no reason of
    /// its own is marked `share_blocked`).
    func fencedByRevocation() -> ShareEntry {
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

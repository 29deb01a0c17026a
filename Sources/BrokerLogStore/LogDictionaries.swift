import BrokerFields
import BrokerService
import Foundation

/// The dictionaries one stream's records are packed against (`RecordPacking`), and which of them
/// the store already holds.
///
/// An intent is packed against the template of the first intent this process logged for its
/// provider, operation, policy revision and decision (`ShareEntry.template`): the same member names,
/// paths, categories and hashes. Outcomes are packed against one template of an outcome. A
/// template holds no subject, share id, grant, fingerprint or caller-chosen key's print, so a
/// dictionary is never personal data and never needs erasing.
package final class LogDictionaries: Sendable {
    /// By provider, operation, policy revision and decision.
    private let intents = Locked<[String: LogDictionary]>([:])
    /// Ids of the dictionaries known to be in the store (written in a committed transaction, or read).
    private let stored = Locked<Set<Int64>>([])
    package let outcome: LogDictionary
    private let stream: String
    /// Distinct templates kept at most (operations × the policy revisions since start; each holds a
    /// prepared zstd dictionary of ~50 KB); past it the cache starts over.
    private let limit = 256

    package init(stream: String) {
        self.stream = stream
        outcome = LogDictionary(bytes: LogRow(ShareOutcome(shareID: "", time: Date(timeIntervalSince1970: 0), result: .ok,
                                                           upstreamStatus: 200, latencyMs: 0))
            .canonicalParts(stream: stream).joined)
    }

    /// The dictionary `entry`'s record is packed against (made from `entry` the first time).
    package func dictionary(for entry: ShareEntry) -> LogDictionary {
        // By decision too: a blocked share's fields read `blocked` and carry reasons, an allowed one's `sent`.
        let key = entry.provider + "\u{0}" + (entry.operation ?? "") + "\u{0}" + (entry.policyRevision ?? "") + "\u{0}"
            + entry.decision.rawValue
        if let known = intents.read({ $0[key] }) { return known }
        let made = LogDictionary(bytes: LogRow(entry.template).canonicalParts(stream: stream).joined)
        intents.withLock { cache in
            if cache.count >= limit { cache.removeAll() }
            cache[key] = made
        }
        return made
    }

    /// The canonical parts of `entry`'s intent, packed.
    package func packedParts(_ entry: ShareEntry) -> CanonicalParts {
        var parts = LogRow(entry).canonicalParts(stream: stream)
        parts.pack(against: dictionary(for: entry))
        return parts
    }

    /// The canonical parts of `outcome`'s record, packed.
    package func packedParts(_ outcome: ShareOutcome) -> CanonicalParts {
        var parts = LogRow(outcome).canonicalParts(stream: stream)
        parts.pack(against: self.outcome)
        return parts
    }

    /// True when the store is known to hold dictionary `id`.
    package func isStored(_ id: Int64) -> Bool { stored.read { $0.contains(id) } }

    /// Records that the store holds these dictionaries (after the transaction that wrote them committed).
    package func markStored(_ ids: some Sequence<Int64>) { stored.withLock { $0.formUnion(ids) } }
}

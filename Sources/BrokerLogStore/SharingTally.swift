import BrokerCore
import BrokerService
import Foundation

/// The sharing list's aggregates for one batch of intents, folded in memory and
/// written once per distinct key at the end of the batch's transaction.
///
/// Per share the aggregates are an upsert per personal category and action, and
/// for each category sent the subject's day row and whole-log row
/// (`sharing_daily`, `sharing_subjects`, `sharing_subject_span`). A batch of
/// shares mostly repeats the same few keys, so folding them first turns 6 or
/// more statements per share into a few per batch. Subject rows are insert-only
/// and never deleted, so `KnownSubjectRows` lets the writer skip those it has
/// already committed.
package struct SharingTally {
    package struct DayKey: Hashable {
        package var day: Int64
        package var provider: String
        package var purpose: String
        package var category: String
        package var action: String
    }
    package struct Count {
        package var shares: Int64; package var first: Int64; package var last: Int64
        mutating func add(_ time: Int64) { shares += 1; first = min(first, time); last = max(last, time) }
    }
    /// A subject's row; `day` is `nil` for the whole-log span.
    package struct SubjectKey: Hashable {
        package let day: Int64?
        package let provider: String
        package let purpose: String
        package let category: String
        package let subject: String
    }

    package private(set) var days: [DayKey: Count] = [:]
    package private(set) var subjects: Set<SubjectKey> = []

    package init() {}

    package var isEmpty: Bool { days.isEmpty && subjects.isEmpty }

    /// Counts `entry` once per personal category and action, and its subject once per category sent.
    package mutating func count(_ entry: ShareEntry) {
        guard let purpose = entry.purpose else { return }
        let time = Microseconds.from(entry.time)
        let day = time / 86_400_000_000
        // The (category, action) pairs already counted for this share: a handful, so a list (no hashing).
        var seen: [(category: String, action: FieldAction)] = []
        // A fingerprint (or, folded, short prints) marks a personal field; a folded entry counts once, like the share.
        for field in entry.fields where field.fingerprint != nil || field.fingerprints != nil {
            guard let category = field.category,
                  !seen.contains(where: { $0.action == field.action && $0.category == category }) else { continue }
            seen.append((category, field.action))
            let key = DayKey(day: day, provider: entry.provider, purpose: purpose, category: category,
                             action: field.action.rawValue)
            // One lookup: the count is updated in place.
            days[key, default: Count(shares: 0, first: time, last: time)].add(time)
            if field.action.isSent, let subject = entry.subject {
                subjects.insert(SubjectKey(day: day, provider: entry.provider, purpose: purpose, category: category,
                                           subject: subject))
                subjects.insert(SubjectKey(day: nil, provider: entry.provider, purpose: purpose, category: category,
                                           subject: subject))
            }
        }
    }
}

/// Subject rows of the sharing aggregates this store has committed (insert-only tables,
/// so a row once committed stays): the writer skips their `INSERT OR IGNORE`. Bounded:
/// when full it forgets everything and relearns (a forgotten row only costs one insert).
package struct KnownSubjectRows {
    package private(set) var rows: Set<SharingTally.SubjectKey> = []
    let capacity: Int

    package init(capacity: Int = 200_000) { self.capacity = capacity }

    package mutating func learn(_ keys: [SharingTally.SubjectKey]) {
        if rows.count + keys.count > capacity { rows.removeAll(keepingCapacity: true) }
        rows.formUnion(keys)
    }
}

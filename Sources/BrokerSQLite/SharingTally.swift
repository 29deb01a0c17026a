import BrokerService
import Foundation
import GRDB

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
struct SharingTally {
    struct DayKey: Hashable {
        var day: Int64
        var provider: String
        var purpose: String
        var category: String
        var action: String
    }
    struct Count { var shares: Int64; var first: Int64; var last: Int64 }
    /// A subject's row; `day` is `nil` for the whole-log span.
    struct SubjectKey: Hashable {
        let day: Int64?
        let provider: String
        let purpose: String
        let category: String
        let subject: String
    }

    private(set) var days: [DayKey: Count] = [:]
    private(set) var subjects: Set<SubjectKey> = []

    var isEmpty: Bool { days.isEmpty && subjects.isEmpty }

    /// Counts `entry` once per personal category and action, and its subject once per category sent.
    mutating func count(_ entry: ShareEntry) {
        guard let purpose = entry.purpose else { return }
        let time = Microseconds.from(entry.time)
        let day = time / 86_400_000_000
        var seen: Set<DayKey> = []
        for field in entry.fields where field.fingerprint != nil {
            guard let category = field.category else { continue }
            let key = DayKey(day: day, provider: entry.provider, purpose: purpose, category: category,
                             action: field.action.rawValue)
            guard seen.insert(key).inserted else { continue }
            if var count = days[key] {
                count.shares += 1; count.first = min(count.first, time); count.last = max(count.last, time)
                days[key] = count
            } else {
                days[key] = Count(shares: 1, first: time, last: time)
            }
            if field.action == .sent, let subject = entry.subject {
                subjects.insert(SubjectKey(day: day, provider: entry.provider, purpose: purpose, category: category,
                                           subject: subject))
                subjects.insert(SubjectKey(day: nil, provider: entry.provider, purpose: purpose, category: category,
                                           subject: subject))
            }
        }
    }

    /// Writes the tally in the current transaction; subject rows in `known` are skipped.
    /// Returns the subject rows written, to be marked known once the transaction commits.
    func write(_ db: Database, known: Set<SubjectKey>) throws -> [SubjectKey] {
        if !days.isEmpty {
            let upsert = try BoundStatement(db, """
                INSERT INTO sharing_daily (day, provider, purpose, category, action, shares, first_us, last_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT DO UPDATE SET shares = shares + excluded.shares, first_us = min(first_us, excluded.first_us),
                                          last_us = max(last_us, excluded.last_us)
                """)
            for (key, count) in days {
                try upsert.run { b in
                    b.int(1, key.day); b.text(2, key.provider); b.text(3, key.purpose); b.text(4, key.category)
                    b.text(5, key.action); b.int(6, count.shares); b.int(7, count.first); b.int(8, count.last)
                }
            }
        }
        let fresh = subjects.filter { !known.contains($0) }
        guard !fresh.isEmpty else { return [] }
        let daily = try BoundStatement(db, """
            INSERT OR IGNORE INTO sharing_subjects (day, provider, purpose, category, subject) VALUES (?, ?, ?, ?, ?)
            """)
        let span = try BoundStatement(db, """
            INSERT OR IGNORE INTO sharing_subject_span (provider, purpose, category, subject) VALUES (?, ?, ?, ?)
            """)
        for key in fresh {
            if let day = key.day {
                try daily.run { b in
                    b.int(1, day); b.text(2, key.provider); b.text(3, key.purpose); b.text(4, key.category)
                    b.text(5, key.subject)
                }
            } else {
                try span.run { b in
                    b.text(1, key.provider); b.text(2, key.purpose); b.text(3, key.category); b.text(4, key.subject)
                }
            }
        }
        return Array(fresh)
    }
}

/// Subject rows of the sharing aggregates this store has committed (insert-only tables,
/// so a row once committed stays): the writer skips their `INSERT OR IGNORE`. Bounded:
/// when full it forgets everything and relearns (a forgotten row only costs one insert).
struct KnownSubjectRows {
    private(set) var rows: Set<SharingTally.SubjectKey> = []
    let capacity: Int

    init(capacity: Int = 200_000) { self.capacity = capacity }

    mutating func learn(_ keys: [SharingTally.SubjectKey]) {
        if rows.count + keys.count > capacity { rows.removeAll(keepingCapacity: true) }
        rows.formUnion(keys)
    }
}

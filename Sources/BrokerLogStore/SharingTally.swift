import BrokerCore
import BrokerService
import Foundation

/// What the log's follower needs of one share record to keep the aggregates: its place in
/// the list of who received what, never a value. Made from the entry in memory as the batch
/// commits, or, after a restart, from the stored canonical body.
package struct FoldRecord: Sendable {
    package struct Field: Sendable {
        package var category: String
        package var action: FieldAction
    }
    package var provider: String
    package var purpose: String?
    package var subject: String?
    package var timeUs: Int64
    package var decision: ShareDecision.Verdict
    /// The personal fields (those logged with a fingerprint, or folded with short prints).
    package var personal: [Field]

    package init(_ entry: ShareEntry) {
        provider = entry.provider
        purpose = entry.purpose
        subject = entry.subject
        timeUs = Microseconds.from(entry.time)
        decision = entry.decision
        personal = entry.fields.compactMap { field in
            guard field.fingerprint != nil || field.fingerprints != nil, let category = field.category else { return nil }
            return Field(category: category, action: field.action)
        }
    }

    /// From a stored share record's canonical body; `nil` if it is not one.
    package init?(body: some StringProtocol) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              object["kind"] as? String == "share", let provider = object["provider"] as? String,
              let time = (object["time_us"] as? NSNumber)?.int64Value,
              let decision = (object["decision"] as? String).flatMap(ShareDecision.Verdict.init(rawValue:)) else { return nil }
        self.provider = provider
        purpose = object["purpose"] as? String
        subject = object["subject"] as? String
        timeUs = time
        self.decision = decision
        personal = (object["fields"] as? [[String: Any]] ?? []).compactMap { field in
            guard field["fingerprint"] is String || field["fingerprints"] is [Any], let category = field["category"] as? String,
                  let action = (field["action"] as? String).flatMap(FieldAction.init(rawValue:)) else { return nil }
            return Field(category: category, action: action)
        }
    }
}

/// The aggregates the log's follower keeps for a run of committed share records, folded in
/// memory and written once per distinct key, in one transaction with the follower's mark.
///
/// - The sharing list's: per day × provider × purpose × personal category × action, the
///   shares and first and last time (`sharing_daily`); the subjects sent each category, per
///   day and over the whole log (`sharing_subjects`, `sharing_subject_span`). Subject rows
///   are insert-only, so `KnownSubjectRows` lets the writer skip those it has committed.
/// - The exposure report's: per provider × subject × category, the shares that sent the
///   subject's personal data in that category and the first and last time, per day and over
///   the whole log (`exposure_daily`, `exposure_span`). A share counts once under each of its
///   categories *and each of their ancestors* (`user.content.notification` also counts under
///   `user.content`, `user` and the catch-all `""`), so the report filtered by any category
///   (sub-categories included) reads exact share counts from one row instead of adding rows
///   that can hold the same share twice. `sent` marks a category actually sent (not only an
///   ancestor), which is what the report lists.
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
    /// An exposure row; `day` is `nil` for the whole-log span, `category` is `""` for all of them.
    package struct ExposureKey: Hashable {
        package let day: Int64?
        package let provider: String
        package let subject: String
        package let category: String
    }
    package struct ExposureCount {
        package var count: Count
        /// The category itself was sent (not only one below it).
        package var sent: Bool
    }

    /// The shares of one provider × purpose × subject × day: everything a share adds is under one
    /// such group, so counting a share is one dictionary lookup and a few appends to small arrays.
    fileprivate struct GroupKey: Hashable {
        var day: Int64
        var provider: String
        var purpose: String
        var subject: String?
    }
    fileprivate struct Group {
        var actions: [(category: String, action: FieldAction, count: Count)] = []
        var sent: [String] = []
        var exposure: [(category: String, count: Count, sent: Bool)] = []
    }
    /// What a share with a given list of personal fields adds, worked out once per list: traffic
    /// through one operation repeats the same fields share after share.
    fileprivate struct Shape {
        var fields: [FoldRecord.Field]
        var exposed: Bool
        /// Distinct (category, action) pairs.
        var pairs: [(category: String, action: FieldAction)] = []
        /// Distinct categories sent.
        var sent: [String] = []
        /// Each category sent, each ancestor and "" (all), once; `sent` marks a category sent itself.
        var exposure: [(category: String, sent: Bool)] = []
    }

    private var groups: [GroupKey: Group] = [:]
    private var shape: Shape?

    package init() {}

    package var isEmpty: Bool { groups.isEmpty }

    package mutating func count(_ entry: ShareEntry) { count(FoldRecord(entry)) }

    /// Counts `record` once per personal category and action, its subject once per category
    /// sent, and (allowed or redacted) its exposure once per category sent and each ancestor.
    package mutating func count(_ record: FoldRecord) {
        guard let purpose = record.purpose else { return }
        let time = record.timeUs
        let exposed = record.decision != .blocked && record.subject != nil
        let shape = shape(record.personal, exposed: exposed)
        let key = GroupKey(day: time / 86_400_000_000, provider: record.provider, purpose: purpose, subject: record.subject)
        // One lookup: the group is updated in place.
        groups[key, default: Group()].add(shape, time: time, subject: record.subject != nil)
    }

    private mutating func shape(_ fields: [FoldRecord.Field], exposed: Bool) -> Shape {
        if let shape, shape.exposed == exposed, shape.fields.elementsEqual(fields, by: { $0.category == $1.category && $0.action == $1.action }) {
            return shape
        }
        var made = Shape(fields: fields, exposed: exposed)
        // A folded entry counts once, like the share.
        for field in fields {
            let category = field.category
            if !made.pairs.contains(where: { $0.action == field.action && $0.category == category }) {
                made.pairs.append((category, field.action))
            }
            guard field.action.isSent, !made.sent.contains(category) else { continue }
            made.sent.append(category)
        }
        if exposed, !made.sent.isEmpty {
            made.exposure.append(("", false))
            for category in made.sent {
                var end = category.endIndex
                var sent = true
                while true {
                    let prefix = String(category[..<end])
                    if let at = made.exposure.firstIndex(where: { $0.category == prefix }) {
                        made.exposure[at].sent = made.exposure[at].sent || sent
                    } else {
                        made.exposure.append((prefix, sent))
                    }
                    sent = false
                    guard let dot = category[..<end].lastIndex(of: ".") else { break }
                    end = dot
                }
            }
        }
        self.shape = made
        return made
    }

    /// The day counts (`sharing_daily`), summed over the groups.
    package var days: [DayKey: Count] {
        var days: [DayKey: Count] = [:]
        for (key, group) in groups {
            for (category, action, count) in group.actions {
                days[DayKey(day: key.day, provider: key.provider, purpose: key.purpose, category: category, action: action.rawValue),
                     default: Count(shares: 0, first: count.first, last: count.last)].merge(count)
            }
        }
        return days
    }

    /// The subject rows (`sharing_subjects`, and `sharing_subject_span` with `day` nil).
    package var subjects: Set<SubjectKey> {
        var subjects: Set<SubjectKey> = []
        for (key, group) in groups {
            guard let subject = key.subject else { continue }
            for category in group.sent {
                subjects.insert(SubjectKey(day: key.day, provider: key.provider, purpose: key.purpose, category: category, subject: subject))
                subjects.insert(SubjectKey(day: nil, provider: key.provider, purpose: key.purpose, category: category, subject: subject))
            }
        }
        return subjects
    }

    /// The exposure rows, per day and over the whole log (`day` nil).
    package var exposure: [ExposureKey: ExposureCount] {
        var exposure: [ExposureKey: ExposureCount] = [:]
        for (key, group) in groups {
            guard let subject = key.subject else { continue }
            for (category, count, sent) in group.exposure {
                for day in [key.day, nil] as [Int64?] {
                    let cell = ExposureKey(day: day, provider: key.provider, subject: subject, category: category)
                    exposure[cell, default: ExposureCount(count: Count(shares: 0, first: count.first, last: count.last), sent: false)]
                        .merge(count, sent: sent)
                }
            }
        }
        return exposure
    }
}

extension SharingTally.Count {
    mutating func merge(_ other: Self) { shares += other.shares; first = min(first, other.first); last = max(last, other.last) }
}

extension SharingTally.ExposureCount {
    mutating func merge(_ other: SharingTally.Count, sent: Bool) { count.merge(other); self.sent = self.sent || sent }
}

extension SharingTally.Group {
    fileprivate mutating func add(_ shape: SharingTally.Shape, time: Int64, subject: Bool) {
        for (i, pair) in shape.pairs.enumerated() {
            // The same shape again puts each pair at the same index: checked first, searched otherwise.
            if i < actions.count, actions[i].category == pair.category, actions[i].action == pair.action {
                actions[i].count.add(time)
            } else if let at = actions.firstIndex(where: { $0.category == pair.category && $0.action == pair.action }) {
                actions[at].count.add(time)
            } else {
                actions.append((pair.category, pair.action, SharingTally.Count(shares: 1, first: time, last: time)))
            }
        }
        guard subject else { return }
        for category in shape.sent where !sent.contains(category) { sent.append(category) }
        for (i, cell) in shape.exposure.enumerated() {
            if i < exposure.count, exposure[i].category == cell.category {
                exposure[i].count.add(time)
                exposure[i].sent = exposure[i].sent || cell.sent
            } else if let at = exposure.firstIndex(where: { $0.category == cell.category }) {
                exposure[at].count.add(time)
                exposure[at].sent = exposure[at].sent || cell.sent
            } else {
                exposure.append((cell.category, SharingTally.Count(shares: 1, first: time, last: time), cell.sent))
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

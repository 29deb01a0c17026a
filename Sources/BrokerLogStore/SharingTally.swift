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

    package private(set) var days: [DayKey: Count] = [:]
    package private(set) var subjects: Set<SubjectKey> = []
    package private(set) var exposure: [ExposureKey: ExposureCount] = [:]

    package init() {}

    package var isEmpty: Bool { days.isEmpty && subjects.isEmpty && exposure.isEmpty }

    package mutating func count(_ entry: ShareEntry) { count(FoldRecord(entry)) }

    /// Counts `record` once per personal category and action, its subject once per category
    /// sent, and (allowed or redacted) its exposure once per category sent and each ancestor.
    package mutating func count(_ record: FoldRecord) {
        guard let purpose = record.purpose else { return }
        let time = record.timeUs
        let day = time / 86_400_000_000
        // The (category, action) pairs already counted for this share: a handful, so a list (no hashing).
        var seen: [(category: String, action: FieldAction)] = []
        var exposed: [String] = []
        // A folded entry counts once, like the share.
        for field in record.personal {
            let category = field.category
            guard !seen.contains(where: { $0.action == field.action && $0.category == category }) else { continue }
            seen.append((category, field.action))
            let key = DayKey(day: day, provider: record.provider, purpose: purpose, category: category,
                             action: field.action.rawValue)
            // One lookup: the count is updated in place.
            days[key, default: Count(shares: 0, first: time, last: time)].add(time)
            if field.action.isSent, let subject = record.subject {
                subjects.insert(SubjectKey(day: day, provider: record.provider, purpose: purpose, category: category,
                                           subject: subject))
                subjects.insert(SubjectKey(day: nil, provider: record.provider, purpose: purpose, category: category,
                                           subject: subject))
                if record.decision != .blocked, !exposed.contains(category) { exposed.append(category) }
            }
        }
        guard let subject = record.subject, !exposed.isEmpty else { return }
        // Each category sent, each ancestor and "", once per share.
        var keys: [(category: String, sent: Bool)] = [("", false)]
        for category in exposed {
            var end = category.endIndex
            var sent = true
            while true {
                let prefix = String(category[..<end])
                if let at = keys.firstIndex(where: { $0.category == prefix }) { keys[at].sent = keys[at].sent || sent }
                else { keys.append((prefix, sent)) }
                sent = false
                guard let dot = category[..<end].lastIndex(of: ".") else { break }
                end = dot
            }
        }
        for (category, sent) in keys {
            for span in [day, nil] as [Int64?] {
                let key = ExposureKey(day: span, provider: record.provider, subject: subject, category: category)
                exposure[key, default: ExposureCount(count: Count(shares: 0, first: time, last: time), sent: false)].count.add(time)
                if sent { exposure[key]?.sent = true }
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

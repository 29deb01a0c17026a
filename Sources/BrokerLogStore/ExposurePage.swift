import BrokerService
import Foundation

/// One page of the exposure report, merged from the exposure aggregates (rows in subject order)
/// and the fields of the records no aggregate holds yet (the window's partial days, the
/// follower's tail). A share is in the aggregates or among those records, never both, so the
/// counts add up exactly.
package struct ExposurePage {
    private struct Subject {
        var shares: Int64 = 0
        var first = Int64.max
        var last = Int64.min
        var categories: Set<String> = []
        /// Shares of the raw records already counted (a record has several fields).
        var rawShares: Set<String> = []
        /// The subject received data in the report's category (its aggregate row, or a raw field).
        var exposed = false
    }

    /// The category whose aggregate row holds the counts: the filter, or `""` (all).
    private let key: String
    private let category: String?
    private let limit: Int
    private var subjects: [String: Subject] = [:]
    private var current: String?
    private var complete = 0
    /// When the aggregates stopped early: the last subject they were read through.
    private var boundary: String?

    package init(category: String?, limit: Int) {
        self.category = category
        key = category ?? ""
        self.limit = limit
    }

    private func matches(_ category: String) -> Bool {
        guard let filter = self.category else { return true }
        return category == filter || (category.hasPrefix(filter) && category.dropFirst(filter.count).first == ".")
    }

    /// Adds one aggregate row; returns false once `limit` subjects are complete (stop reading).
    package mutating func addAggregate(subject: String, category: String, shares: Int64, first: Int64, last: Int64,
                                       sent: Bool) -> Bool {
        if subject != current {
            if let current, subjects[current]?.exposed == true { complete += 1 }
            if complete >= limit { boundary = current; return false }
            current = subject
        }
        var entry = subjects[subject, default: Subject()]
        if category == key {
            entry.shares += shares
            entry.first = min(entry.first, first)
            entry.last = max(entry.last, last)
            entry.exposed = true
        }
        if sent, !category.isEmpty, matches(category) { entry.categories.insert(category) }
        subjects[subject] = entry
        return true
    }

    /// Adds one sent personal field of a record no aggregate holds.
    package mutating func addRecordField(subject: String, shareID: String, time: Int64, category: String?) {
        guard let category, matches(category) else { return }
        if let boundary, subject > boundary { return }
        var entry = subjects[subject, default: Subject()]
        if entry.rawShares.insert(shareID).inserted {
            entry.shares += 1
            entry.first = min(entry.first, time)
            entry.last = max(entry.last, time)
        }
        entry.categories.insert(category)
        entry.exposed = true
        subjects[subject] = entry
    }

    /// The first `limit` exposed subjects, in order.
    package var rows: [ExposureRow] {
        let boundary = self.boundary
        return subjects.filter { subject, entry in entry.exposed && (boundary.map { subject <= $0 } ?? true) }
            .sorted { $0.key < $1.key }.prefix(limit).map { subject, entry in
                ExposureRow(subject: subject, categories: entry.categories.sorted(), shares: Int(entry.shares),
                            firstShared: Microseconds.date(entry.first), lastShared: Microseconds.date(entry.last))
            }
    }
}

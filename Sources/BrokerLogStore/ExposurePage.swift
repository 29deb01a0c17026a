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
        /// Distinct, unsorted: a subject has a few.
        var categories: [String] = []
        /// Shares of the raw records already counted (a record has several fields).
        var rawShares: Set<String> = []
        /// The subject received data in the report's category (its aggregate row, or a raw field).
        var exposed = false

        mutating func add(category: String) {
            if !categories.contains(category) { categories.append(category) }
        }

        mutating func merge(_ other: Subject) {
            shares += other.shares
            first = min(first, other.first)
            last = max(last, other.last)
            for category in other.categories { add(category: category) }
            exposed = exposed || other.exposed
        }
    }

    /// The category whose aggregate row holds the counts: the filter, or `""` (all).
    private let key: String
    private let category: String?
    private let limit: Int
    /// The aggregates' subjects, in the order they arrive (subject order): appended, never looked up,
    /// so a page costs no hashing or sorting per aggregate row.
    private var ordered: [(subject: String, entry: Subject)] = []
    private var current: (subject: String, entry: Subject)?
    /// Subjects of the records no aggregate holds (few: the window's edges, the follower's tail).
    private var raw: [String: Subject] = [:]
    private var complete = 0
    /// When the aggregates stopped early: the last subject they were read through.
    private var boundary: String?

    package init(category: String?, limit: Int) {
        self.category = category
        key = category ?? ""
        self.limit = limit
        ordered.reserveCapacity(limit)
    }

    private func matches(_ category: String) -> Bool {
        guard let filter = self.category else { return true }
        return category == filter || (category.hasPrefix(filter) && category.dropFirst(filter.count).first == ".")
    }

    /// Adds one aggregate row; returns false once `limit` subjects are complete (stop reading).
    package mutating func addAggregate(subject: String, category: String, shares: Int64, first: Int64, last: Int64,
                                       sent: Bool) -> Bool {
        if subject != current?.subject {
            if let done = current {
                ordered.append(done)
                if done.entry.exposed { complete += 1 }
                current = nil
            }
            if complete >= limit { boundary = ordered.last?.subject; return false }
            current = (subject, Subject())
        }
        if category == key {
            current!.entry.shares += shares
            current!.entry.first = min(current!.entry.first, first)
            current!.entry.last = max(current!.entry.last, last)
            current!.entry.exposed = true
        }
        if sent, !category.isEmpty, matches(category) { current!.entry.add(category: category) }
        return true
    }

    /// Adds one sent personal field of a record no aggregate holds.
    package mutating func addRecordField(subject: String, shareID: String, time: Int64, category: String?) {
        guard let category, matches(category) else { return }
        if let boundary, subject > boundary { return }
        var entry = raw[subject, default: Subject()]
        if entry.rawShares.insert(shareID).inserted {
            entry.shares += 1
            entry.first = min(entry.first, time)
            entry.last = max(entry.last, time)
        }
        entry.add(category: category)
        entry.exposed = true
        raw[subject] = entry
    }

    /// The first `limit` exposed subjects, in order: the aggregates' subjects merged with the raw records'.
    package var rows: [ExposureRow] {
        var out: [ExposureRow] = []
        out.reserveCapacity(limit)
        let extra = raw.sorted { $0.key < $1.key }
        var next = 0
        func emit(_ subject: String, _ entry: Subject) {
            guard entry.exposed, out.count < limit, boundary.map({ subject <= $0 }) ?? true else { return }
            out.append(ExposureRow(subject: subject, categories: entry.categories.sorted(), shares: Int(entry.shares),
                                   firstShared: Microseconds.date(entry.first), lastShared: Microseconds.date(entry.last)))
        }
        func visit(_ subject: String, _ entry: Subject) {
            while next < extra.count, extra[next].key < subject {
                emit(extra[next].key, extra[next].value)
                next += 1
            }
            var entry = entry
            if next < extra.count, extra[next].key == subject {
                entry.merge(extra[next].value)
                next += 1
            }
            emit(subject, entry)
        }
        for (subject, entry) in ordered { visit(subject, entry) }
        if let current { visit(current.subject, current.entry) }
        while next < extra.count {
            emit(extra[next].key, extra[next].value)
            next += 1
        }
        return out
    }
}

import BrokerService
import Foundation

/// The sharing list's rows from per-action counts: one row per provider × purpose × category,
/// its `sent`, `stripped` and `blocked` counts and the span seen. Both stores aggregate in SQL
/// and hand the counts here, so the list means the same whichever store answers.
package struct SharingListRows {
    private var merged: [String: SharingListRow] = [:]

    package init() {}

    /// Adds `shares` of `action` for the key; `subjects` is the key's distinct-subject count.
    package mutating func add(provider: String, purpose: String, category: String, action: String, shares: Int,
                              firstUs: Int64, lastUs: Int64, subjects: Int) {
        let first = Microseconds.date(firstUs), last = Microseconds.date(lastUs)
        let key = provider + "\u{0}" + purpose + "\u{0}" + category
        var entry = merged[key] ?? SharingListRow(provider: provider, purpose: purpose, category: category, sent: 0,
                                                  stripped: 0, blocked: 0, subjects: subjects, firstSeen: first, lastSeen: last)
        switch action {
        case "sent": entry.sent += shares
        case "minimised": entry.sent += shares; entry.minimised += shares
        case "stripped": entry.stripped += shares
        default: entry.blocked += shares
        }
        entry.firstSeen = min(entry.firstSeen, first)
        entry.lastSeen = max(entry.lastSeen, last)
        merged[key] = entry
    }

    package var rows: [SharingListRow] { Array(merged.values) }
}

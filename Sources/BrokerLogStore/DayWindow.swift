/// A query window `[from, to)` (µs) cut for the daily aggregates: the whole days inside it come
/// from the aggregates, the partial days at its edges from the records themselves, so answers
/// are exact for any window. With the follower, records past its mark are read raw too: those
/// inside the whole days are `wholeRange`.
package struct DayWindow: Sendable {
    package static let dayUs: Int64 = 86_400_000_000
    /// The whole days `[firstDay, lastDay]` (day numbers since 1970); none when `firstDay > lastDay`.
    package let firstDay: Int64
    package let lastDay: Int64
    /// The partial days before and after them, as time ranges (possibly empty).
    package let edgeLow: (from: Int64, to: Int64)
    package let edgeHigh: (from: Int64, to: Int64)
    /// The whole days as a time range (empty when there are none).
    package let wholeRange: (from: Int64, to: Int64)

    package init(from: Int64, to: Int64) {
        let dayUs = Self.dayUs
        var firstDay = from >= 0 ? (from + dayUs - 1) / dayUs : from / dayUs
        var lastDay = (to >= 0 ? to / dayUs : (to - dayUs + 1) / dayUs) - 1
        if firstDay > lastDay { firstDay = Int64.max / dayUs; lastDay = firstDay - 1 }   // no full day: all raw
        self.firstDay = firstDay
        self.lastDay = lastDay
        let whole = firstDay <= lastDay
        edgeLow = (from, min(to, whole ? firstDay * dayUs : to))
        edgeHigh = whole ? ((lastDay + 1) * dayUs, to) : (to, to)
        wholeRange = whole ? (firstDay * dayUs, (lastDay + 1) * dayUs) : (0, 0)
    }
}

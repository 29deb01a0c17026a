import BrokerFields

/// How long the log's write transactions take, commit (and its fsync) included: a histogram of
/// power-of-two microsecond buckets, cheap enough to record every batch, read for the closing
/// line and the bench (p50/p99 to within a factor of two's bucket, reported as its upper edge).
/// It also hands each batch to the observer `/metrics` installs.
package final class CommitLatency: Sendable {
    private let buckets = Locked([Int](repeating: 0, count: 40))
    private let observer = Locked<(@Sendable (Int, Duration) -> Void)?>(nil)

    package init() {}

    package func observe(_ body: @escaping @Sendable (Int, Duration) -> Void) {
        observer.withLock { $0 = body }
    }

    package func record(_ duration: Duration, records: Int = 1) {
        observer.snapshot?(records, duration)
        let parts = duration.components
        let microseconds = max(1, parts.seconds * 1_000_000 + parts.attoseconds / 1_000_000_000_000)
        let bucket = min(39, 64 - microseconds.leadingZeroBitCount)
        buckets.withLock { $0[bucket] += 1 }
    }

    /// The upper edge (µs) of the bucket holding quantile `q` (0…1); 0 before any commit.
    package func quantile(_ q: Double) -> Int64 {
        let counts = buckets.snapshot
        let total = counts.reduce(0, +)
        guard total > 0 else { return 0 }
        let rank = Int((Double(total) * q).rounded(.up))
        var seen = 0
        for (bucket, count) in counts.enumerated() {
            seen += count
            if seen >= max(1, rank) { return Int64(1) << bucket }
        }
        return Int64(1) << 39
    }
}

import BrokerCore
import BrokerService
import BrokerSQLite
import Foundation
import Logging

/// Part 3: the compliance queries and `verify` on a log of `records` records, seeded
/// through the real write path (`LogSeeder`, the same as `sharebroker log seed`).
func runLogQueryBench(records: Int) async throws -> [String] {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let loaded = PolicyLoader.load(adapters: "adapters", contracts: "contracts")
    guard let bundle = loaded.bundle else { return ["part 3: run from the repository root (adapters/ and contracts/)"] }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-bench-log-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("broker.sqlite").path
    let store = try SQLiteStore(path: path, stream: "node-1", logger: logger)
    store.enableCheckpoints(signer: CheckpointSigner(secret: Array("bench".utf8)), every: 1000)
    let subjects = max(1, records / 40)
    // As serve does at start: from here on the follower knows every intent without an outcome.
    _ = try await store.resolveDanglingIntents(at: Date())
    let seedStart = ContinuousClock.now
    // A tenth of the shares to one subject: the privacy centre's worst case, a history that long.
    let written = try await LogSeeder.seed(log: store, bundle: bundle, records: records, subjects: subjects, days: 30, heavy: 0.1,
                                           node: "node-1", fingerprinter: Fingerprinter(key: Array("bench".utf8)))
    let seedSeconds = (ContinuousClock.now - seedStart).milliseconds / 1000
    var lines = ["Part 3: compliance queries on \(grouped(Double(written))) records (\(grouped(Double(subjects))) subjects, 30 days), seeded through the write path at \(grouped(Double(written) / seedSeconds)) records/s"]

    /// Median of `runs` timings of `body`, in ms.
    func time(_ runs: Int = 5, _ body: () async throws -> Void) async rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = ContinuousClock.now
            try await body()
            samples.append((ContinuousClock.now - start).milliseconds)
        }
        return samples.sorted()[samples.count / 2]
    }
    /// Every page of a query, as the export does.
    func all(_ filter: ShareFilter) async throws -> Int {
        var cursor: ShareCursor?
        var count = 0
        while true {
            let page = try await store.shares(filter, after: cursor, limit: 1000)
            count += page.count
            guard page.count == 1000, let last = page.last else { return count }
            cursor = ShareCursor(stream: last.position.stream, seq: last.position.seq)
        }
    }

    var historyCount = 0
    let history = try await time(9) { historyCount = try await all(ShareFilter(subject: "seed-subject-\(subjects / 2)")) }
    lines.append("  a subject's history            \(fixed(history)) ms  (\(historyCount) shares; target < 50 ms)")

    let day = Date().addingTimeInterval(-15 * 86_400)
    let dayStart = Date(timeIntervalSince1970: (day.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
    var dayCount = 0
    let providerDay = try await time {
        dayCount = try await all(ShareFilter(provider: "huawei-push", since: dayStart, until: dayStart.addingTimeInterval(86_400)))
    }
    lines.append("  one provider-day of shares     \(fixed(providerDay)) ms  (\(dayCount) shares; target < 200 ms)")

    var rows = 0
    let sharingList = try await time(3) {
        rows = SharingList.build(try await store.sharingList(since: nil, until: nil), bundle: bundle, at: Date()).count
    }
    lines.append("  the sharing-list report        \(fixed(sharingList)) ms  (\(rows) rows, whole log; target < 2000 ms)")

    // The log at scale (issue 33): what must not grow with the log.
    try await store.foldNow()
    let heavyShares = written * 10 / 19 / 10
    var page: [LoggedShare] = []
    for (label, newest) in [("oldest", false), ("newest", true)] {
        var filter = ShareFilter(subject: "seed-subject-heavy")
        filter.newestFirst = newest
        let first = try await time(9) { page = try await store.shares(filter, after: nil, limit: 20) }
        let cursor = page.last.map { ShareCursor(stream: $0.position.stream, seq: $0.position.seq) }
        let next = try await time(9) { page = try await store.shares(filter, after: cursor, limit: 20) }
        lines.append("  heavy subject's page, \(label)   first \(fixed(first)) ms, next \(fixed(next)) ms  (~\(grouped(Double(heavyShares))) shares of one subject; target ≤ 20 ms)")
    }
    let provider = "huawei-push"
    var firstPage = 0.0, subjectsExposed = 0
    let exposureAll = try await time(3) {
        let started = ContinuousClock.now
        var after: String?
        var pages = 0
        subjectsExposed = 0
        while true {
            let rows = try await store.exposure(ExposureQuery(provider: provider), afterSubject: after, limit: 1000)
            if pages == 0 { firstPage = (ContinuousClock.now - started).milliseconds }
            pages += 1
            subjectsExposed += rows.count
            guard rows.count == 1000, let last = rows.last else { break }
            after = last.subject
        }
    }
    lines.append("  exposure report, \(provider)    first page \(fixed(firstPage)) ms, all \(fixed(exposureAll)) ms  (\(grouped(Double(subjectsExposed))) subjects; target ≤ 1 s)")
    let bytes = ["", "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: path + $0)[.size] as? Int }.reduce(0, +)
    let shares = Double(written) / 1.9
    lines.append("  bytes on disk per share        \(grouped(Double(bytes) / shares)) B  (\(grouped(Double(bytes) / 1_048_576)) MB for ~\(grouped(shares)) shares and their outcomes; target ≤ 1,024)")
    try store.close()
    let opened = ContinuousClock.now
    let reopened = try SQLiteStore(path: path, stream: "node-1", logger: logger)
    _ = try await reopened.resolveDanglingIntents(at: Date())
    let start = (ContinuousClock.now - opened).milliseconds
    try reopened.close()
    lines.append("  open + resolve at start        \(fixed(start)) ms  (warm page cache; target ≤ 3 s cold at 10M)")

    let report = try await SQLiteStore.verify(path: path, publicKey: CheckpointSigner(secret: Array("bench".utf8)).publicKey)
    lines.append("  log verify                     \(grouped(report.recordsPerSecond)) records/s  (\(report.checkpoints) checkpoints, intact: \(report.isIntact); target ≥ 500,000)")
    return lines
}

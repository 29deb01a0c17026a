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
    let seedStart = ContinuousClock.now
    let written = try await LogSeeder.seed(log: store, bundle: bundle, records: records, subjects: subjects, days: 30,
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

    let report = try await SQLiteStore.verify(path: path, publicKey: CheckpointSigner(secret: Array("bench".utf8)).publicKey)
    lines.append("  log verify                     \(grouped(report.recordsPerSecond)) records/s  (\(report.checkpoints) checkpoints, intact: \(report.isIntact); target ≥ 500,000)")
    try store.close()
    return lines
}

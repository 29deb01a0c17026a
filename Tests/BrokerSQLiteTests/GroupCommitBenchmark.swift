import BrokerService
@testable import BrokerSQLite
import Foundation
import Testing

/// Throughput of durable appends under load; run with `SHAREBROKER_SQLITE_BENCH=1`.
@Suite struct GroupCommitBenchmark {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SHAREBROKER_SQLITE_BENCH"] != nil))
    func tenThousandConcurrentIntents() async throws {
        try await withStore { store, _ in
            let count = 10_000
            let start = DispatchTime.now().uptimeNanoseconds
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 1...count { group.addTask { _ = try await store.appendIntent(makeEntry(n)) } }
                try await group.waitForAll()
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let stats = store.commitStats
            #expect(try await store.synchronousMode() == 2)
            let report = try await store.verify()
            #expect(report.isIntact && report.records == Int64(count))
            print("""
                bench: \(count) concurrent intents in \(String(seconds)) s = \(Int(Double(count) / seconds)) appends/s; \
                \(stats.commits) commits, \(String(stats.recordsPerCommit)) records/commit; \
                verify \(Int(report.recordsPerSecond)) records/s
                """)

            // 64 callers in flight at all times, as 64 concurrent proxied requests would be.
            let before = store.commitStats
            let workers = 64, perWorker = 150
            let cpuBefore = processCPUSeconds()
            let steadyStart = DispatchTime.now().uptimeNanoseconds
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<workers {
                    group.addTask {
                        for i in 0..<perWorker { _ = try await store.appendIntent(makeEntry(20_000 + w * perWorker + i)) }
                    }
                }
                try await group.waitForAll()
            }
            let steadySeconds = Double(DispatchTime.now().uptimeNanoseconds - steadyStart) / 1e9
            let cpuSeconds = processCPUSeconds() - cpuBefore
            let after = store.commitStats
            let steadyRecords = after.records - before.records, steadyCommits = after.commits - before.commits
            print("""
                bench: \(workers) callers x \(perWorker) = \(Int(Double(steadyRecords) / steadySeconds)) appends/s; \
                \(steadyCommits) commits, \(String(Double(steadyRecords) / Double(steadyCommits))) records/commit; \
                \(Int(cpuSeconds * 1e6 / Double(steadyRecords))) µs CPU per append (process, user + sys)
                """)

            // One at a time: one commit (one fsync) per append.
            let serialCount = 500
            let serialStart = DispatchTime.now().uptimeNanoseconds
            for n in 1...serialCount { _ = try await store.appendIntent(makeEntry(count + n)) }
            let serialSeconds = Double(DispatchTime.now().uptimeNanoseconds - serialStart) / 1e9
            print("bench: \(serialCount) sequential intents = \(Int(Double(serialCount) / serialSeconds)) appends/s")

            // verify over the whole log (best of three).
            var best = 0.0, records: Int64 = 0
            for _ in 0..<3 {
                let report = try await store.verify()
                #expect(report.isIntact)
                best = max(best, report.recordsPerSecond)
                records = report.records
            }
            print("bench: verify \(records) records = \(Int(best)) records/s")
        }
    }
}

/// CPU time this process has used (user + system), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

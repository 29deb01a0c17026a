import BrokerCore
import BrokerLogStore
@testable import BrokerSQLite
import BrokerFields
import Foundation
import Testing

/// The commit observer `/metrics` installs must cost the same on the millionth commit as on the
/// first. Reading a closure out of `Locked` through `withLock`'s `inout` once wrapped it in one
/// more reabstraction thunk per commit, so the call chain — and its cost — grew without bound
/// (issue 32). The number of frames under the observer is deterministic where timings are not:
/// every commit must call it at the same depth.
@Suite struct CommitObserverTests {
    /// Frames on the calling thread's stack (glibc's unwinder; 4,096 is far above any honest depth).
    @inline(never) static func stackDepth() -> UInt {
        let frames = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 4096)
        defer { frames.deallocate() }
        return UInt(cBacktrace(frames, 4096))
    }

    @Test func theObserverRunsAtTheSameDepthOnEveryCommit() async throws {
        try await withStore { store, _ in
            let depths = Locked<[UInt]>([])
            store.observeCommits { _, _ in
                let here = Self.stackDepth()
                depths.withLock { $0.append(here) }
            }
            // Commits one at a time from one task, so each runs on the writer's same path.
            for n in 0..<600 {
                _ = try await store.appendIntent(makeEntry(n, grantIDs: ["g-1"]))
            }
            let seen = depths.snapshot
            #expect(seen.count >= 600)
            // With a thunk added per call the observer ran frames deeper each commit: over a thousand
            // after 600 commits. The writer's own path (GRDB, dispatch) varies by a few frames at most.
            let spread = (seen.max() ?? 0) - (seen.min() ?? 0)
            #expect(spread <= 8, "the observer's depth moved by \(spread) frames over \(seen.count) commits")
        }
    }

    @Test func commitLatencyCallsItsObserverAtAConstantDepth() {
        let latency = CommitLatency()
        let depths = Locked<[UInt]>([])
        latency.observe { _, _ in
            let here = Self.stackDepth()
            depths.withLock { $0.append(here) }
        }
        for _ in 0..<2_000 { latency.record(.microseconds(50)) }
        let seen = depths.snapshot
        #expect(seen.count == 2_000)
        #expect(seen.first == seen.last, "first call at \(seen.first ?? 0), last at \(seen.last ?? 0)")
    }

    /// `Locked.read` and `snapshot` leave the stored closure as it was.
    @Test func readingAClosureOutOfLockedDoesNotWrapIt() {
        let box = Locked<(@Sendable (Int) -> Int)?>({ $0 + 1 })
        var depths: [UInt] = []
        let probe = Locked<UInt>(0)
        box.withLock { $0 = { value in probe.withLock { $0 = Self.stackDepth() }; return value + 1 } }
        for _ in 0..<1_000 {
            _ = box.snapshot?(1)
            depths.append(probe.snapshot)
        }
        #expect(depths.first == depths.last)
    }
}

/// glibc's `backtrace(3)` (execinfo.h, which the Glibc module does not export).
@_silgen_name("backtrace")
private func cBacktrace(_ buffer: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ size: Int32) -> Int32

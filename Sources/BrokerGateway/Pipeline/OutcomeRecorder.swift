import BrokerFields
import BrokerService
import Foundation
import Logging
import ServiceLifecycle

/// Appends share outcomes to the log off the request path.
///
/// An outcome does not need to be durable before the caller gets its answer:
/// if the broker stops before it is written, the intent reads `unknown` at the
/// next start, which counts as shared (docs/share-log.md). So the pipeline hands
/// outcomes here and responds at once; this service writes whatever has
/// gathered in one go (it joins the intents' group commits), and drains
/// everything on graceful shutdown.
public final class OutcomeRecorder: Service, Sendable {
    private let log: any ShareLog
    private let logger: Logger
    private let buffer = Locked<[ShareOutcome]>([])
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    public init(log: any ShareLog, logger: Logger) {
        self.log = log
        self.logger = logger
        (signal, signalContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an outcome; never blocks and never fails.
    public func record(_ outcome: ShareOutcome) {
        counts.withLock { $0.recorded += 1 }
        buffer.withLock { $0.append(outcome) }
        signalContinuation.yield()
    }

    private let counts = Locked((recorded: 0, settled: 0))

    /// Outcomes recorded but not yet written or failed.
    public var pending: Int { counts.withLock { $0.recorded - $0.settled } }

    /// Waits until every outcome recorded so far has been written (or has failed), at most `timeout`.
    public func drained(timeout: Duration = .seconds(5)) async {
        await writeAll()
        let deadline = ContinuousClock.now + timeout
        while pending > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in signal { await writeAll() }
        } onGracefulShutdown: {
            self.signalContinuation.finish()
        }
        await writeAll()
    }

    /// Writes everything queued now; concurrent submissions share one commit.
    public func writeAll() async {
        let batch = buffer.withLock { pending -> [ShareOutcome] in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        guard !batch.isEmpty else { return }
        // One write for the whole batch (one waiter, one place in the group commit), not a task per outcome.
        var failures = 0
        do { _ = try await log.appendOutcomes(batch) } catch { failures = batch.count }
        counts.withLock { $0.settled += batch.count }
        if failures > 0 {
            logger.error("share outcomes not logged; their intents will read unknown after restart",
                         metadata: ["outcomes.failed": "\(failures)"])
        }
    }
}

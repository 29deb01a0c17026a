import BrokerFields
import BrokerService

/// Batches concurrent writes so that many share one transaction (one fsync).
///
/// The batches are driven from the writer itself (GRDB's serial writer queue),
/// never from the Swift concurrency pool: a caller queues its operation and
/// suspends; if no batch is scheduled, it schedules one on the writer. A batch
/// takes everything queued, writes it in one transaction, resumes each waiter
/// with its result, and, if more has queued meanwhile, schedules the next batch
/// on the writer at once. So consecutive commits are not delayed by the pool's
/// scheduling under load, and other writes (grants, subjects) still get their
/// turn between batches, because each batch is a separate writer job.
///
/// There is no timer (STACK.md: a 1–2 ms wait made throughput worse). Every
/// caller is resumed exactly once: with its result, or with the batch's error
/// (the operations of a failed batch shared its transaction and fail together).
final class GroupCommitter<Operation: Sendable, Output: Sendable, Context>: Sendable {
    typealias Outcome = Result<Output, LogUnavailable>
    /// Runs a job on the single writer, with its context (the database connection).
    typealias Schedule = @Sendable (@escaping @Sendable (Context) -> Void) -> Void
    /// Writes one batch in one transaction, on the writer; one output per operation, in order.
    typealias Flush = @Sendable ([Operation], Context) -> Result<[Output], LogUnavailable>

    private struct Waiter: Sendable {
        var operation: Operation
        var continuation: CheckedContinuation<Outcome, Never>
    }

    private struct State: Sendable {
        var scheduled = false
        var queue: [Waiter] = []
    }

    private let state = Locked(State())
    private let schedule: Schedule

    init(schedule: @escaping Schedule) {
        self.schedule = schedule
    }

    /// Runs `operation` in the next batch and returns its result. Every caller passes the same `flush`.
    func submit(_ operation: Operation, flush: @escaping Flush) async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let schedules = state.withLock { state -> Bool in
                state.queue.append(Waiter(operation: operation, continuation: continuation))
                if state.scheduled { return false }
                state.scheduled = true
                return true
            }
            if schedules { schedule { context in self.runBatch(context, flush) } }
        }
    }

    /// One batch, on the writer.
    private func runBatch(_ context: Context, _ flush: @escaping Flush) {
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        if !waiters.isEmpty {
            var result = flush(waiters.map(\.operation), context)
            if case .success(let outputs) = result, outputs.count != waiters.count {
                result = .failure(LogUnavailable("internal error: a batch returned the wrong number of results"))
            }
            switch result {
            case .success(let outputs):
                for (waiter, output) in zip(waiters, outputs) { waiter.continuation.resume(returning: .success(output)) }
            case .failure(let error):
                for waiter in waiters { waiter.continuation.resume(returning: .failure(error)) }
            }
        }
        let more = state.withLock { state -> Bool in
            if state.queue.isEmpty {
                state.scheduled = false
                return false
            }
            return true
        }
        if more { schedule { context in self.runBatch(context, flush) } }
    }
}

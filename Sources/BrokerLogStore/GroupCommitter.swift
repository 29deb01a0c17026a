import BrokerFields
import BrokerService
import Dispatch

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
/// Urgent operations never wait for a timer (a prototype measured it: a 1–2 ms wait made
/// throughput worse). A *deferrable* operation (a share's outcome, which need
/// not be durable at once) starts no batch of its own: it rides along with the
/// next urgent one, or is written `deferDelay` later if none comes, so at low
/// load a share costs one commit instead of two. Every caller is resumed
/// exactly once: with its result, or with the batch's error (the operations of
/// a failed batch shared its transaction and fail together).
package final class GroupCommitter<Operation: Sendable, Output: Sendable, Context>: Sendable {
    package typealias Outcome = Result<Output, LogUnavailable>
    /// Runs a job on the single writer, with its context (the database connection).
    package typealias Schedule = @Sendable (@escaping @Sendable (Context) -> Void) -> Void
    /// Writes one batch in one transaction, on the writer, and calls `done` once with one output
    /// per operation, in order: at once where the writer is synchronous (SQLite on GRDB's queue),
    /// or when the database answers where it is not (PostgreSQL). No batch starts before `done`.
    package typealias Flush = @Sendable ([Operation], Context, _ done: @escaping @Sendable (Result<[Output], LogUnavailable>) -> Void) -> Void

    private struct Waiter: Sendable {
        var operation: Operation
        var continuation: CheckedContinuation<Outcome, Never>
    }

    private struct State: Sendable {
        var scheduled = false
        var timerArmed = false
        var queue: [Waiter] = []
        /// Queued operations that may not wait for the timer.
        var urgent = 0
    }

    private let state = Locked(State())
    private let schedule: Schedule
    private let deferDelay: Duration

    package init(deferDelay: Duration = .milliseconds(5), schedule: @escaping Schedule) {
        self.deferDelay = deferDelay
        self.schedule = schedule
    }

    /// Operations queued for the next batch now.
    package var queued: Int { state.withLock { $0.queue.count } }

    /// Runs `operation` in the next batch and returns its result. Every caller passes the same `flush`.
    /// A `deferrable` operation waits for the next urgent one, or `deferDelay` at most.
    package func submit(_ operation: Operation, deferrable: Bool = false, flush: @escaping Flush) async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let next = state.withLock { state -> NextWrite in
                state.queue.append(Waiter(operation: operation, continuation: continuation))
                if !deferrable { state.urgent += 1 }
                if state.scheduled { return .none }
                if deferrable {
                    if state.timerArmed { return .none }
                    state.timerArmed = true
                    return .timer
                }
                state.scheduled = true
                return .batch
            }
            carryOut(next, flush)
        }
    }

    private func carryOut(_ next: NextWrite, _ flush: @escaping Flush) {
        switch next {
        case .none: break
        case .batch: schedule { context in self.runBatch(context, flush) }
        case .timer: armTimer(flush)
        }
    }

    /// After `deferDelay`, writes what is queued unless a batch is already on its way.
    private func armTimer(_ flush: @escaping Flush) {
        let delay = deferDelay.components
        let nanoseconds = Int(delay.seconds) * 1_000_000_000 + Int(delay.attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
            let schedules = self.state.withLock { state -> Bool in
                state.timerArmed = false
                if state.scheduled || state.queue.isEmpty { return false }
                state.scheduled = true
                return true
            }
            if schedules { self.schedule { context in self.runBatch(context, flush) } }
        }
    }

    /// One batch, on the writer.
    private func runBatch(_ context: Context, _ flush: @escaping Flush) {
        let waiters = state.withLock { state -> [Waiter] in
            defer { state.queue.removeAll(keepingCapacity: true); state.urgent = 0 }
            return state.queue
        }
        guard !waiters.isEmpty else { return finishBatch(flush) }
        flush(waiters.map(\.operation), context) { result in
            var result = result
            if case .success(let outputs) = result, outputs.count != waiters.count {
                result = .failure(LogUnavailable("internal error: a batch returned the wrong number of results"))
            }
            switch result {
            case .success(let outputs):
                for (waiter, output) in zip(waiters, outputs) { waiter.continuation.resume(returning: .success(output)) }
            case .failure(let error):
                for waiter in waiters { waiter.continuation.resume(returning: .failure(error)) }
            }
            self.finishBatch(flush)
        }
    }

    /// After a batch: the next one at once if urgent work queued meanwhile, else the timer or nothing.
    private func finishBatch(_ flush: @escaping Flush) {
        let next = state.withLock { state -> NextWrite in
            if state.urgent > 0 { return .batch }
            state.scheduled = false
            // Only deferrable operations queued meanwhile: they wait for an urgent one or the timer.
            if state.queue.isEmpty || state.timerArmed { return .none }
            state.timerArmed = true
            return .timer
        }
        carryOut(next, flush)
    }
}

/// What a committer does after queueing or after a batch: nothing, start a batch, or arm the deferral timer.
private enum NextWrite { case none, batch, timer }

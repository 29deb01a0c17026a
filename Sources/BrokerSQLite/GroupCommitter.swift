import BrokerService

/// Batches concurrent writes so that many share one transaction (one fsync).
///
/// There is no timer (STACK.md: a 1–2 ms wait made throughput worse). At most
/// one batch is in flight. A caller that arrives while none is in flight leads
/// at once: it writes its own operation plus whatever has queued. Callers that
/// arrive while a batch commits queue up; when the batch ends, the leader hands
/// the lead to the oldest queued caller, which writes *everything* queued by
/// then in one transaction, and so on. So no extra task is spawned, and no
/// leader keeps writing for others after its own result is known.
///
/// Every queued caller is resumed exactly once: with its result, with the
/// batch's error (all operations of a failed batch fail together, since they
/// shared a transaction), or with the lead.
final class GroupCommitter<Operation: Sendable, Output: Sendable>: Sendable {
    typealias Outcome = Result<Output, LogUnavailable>

    private enum Wake: Sendable {
        case lead
        case done(Outcome)
    }

    private struct Waiter: Sendable {
        var operation: Operation
        var continuation: CheckedContinuation<Wake, Never>
    }

    private struct State: Sendable {
        var flushing = false
        var queue: [Waiter] = []
    }

    private let state = Locked(State())

    init() {}

    /// Runs `operation` in the next batch; `flush` writes one batch in one
    /// transaction and returns one output per operation, in order.
    func submit(
        _ operation: Operation,
        flush: @Sendable ([Operation]) async -> Result<[Output], LogUnavailable>
    ) async -> Outcome {
        let wake = await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let leads = state.withLock { state -> Bool in
                if state.flushing {
                    state.queue.append(Waiter(operation: operation, continuation: continuation))
                    return false
                }
                state.flushing = true
                return true
            }
            if leads { continuation.resume(returning: .lead) }
        }
        if case .done(let outcome) = wake { return outcome }

        // This caller leads: one transaction for its operation and everything queued.
        let followers = state.withLock { state -> [Waiter] in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        var operations = [operation]
        operations.reserveCapacity(followers.count + 1)
        for follower in followers { operations.append(follower.operation) }

        var result = await flush(operations)
        if case .success(let outputs) = result, outputs.count != operations.count {
            result = .failure(LogUnavailable("internal error: a batch returned the wrong number of results"))
        }

        // Hand the lead on first, so the next batch starts while this one's callers wake.
        let next = state.withLock { state -> Waiter? in
            if state.queue.isEmpty {
                state.flushing = false
                return nil
            }
            return state.queue.removeFirst()
        }
        next?.continuation.resume(returning: .lead)

        switch result {
        case .success(let outputs):
            for (index, follower) in followers.enumerated() {
                follower.continuation.resume(returning: .done(.success(outputs[index + 1])))
            }
            return .success(outputs[0])
        case .failure(let error):
            for follower in followers { follower.continuation.resume(returning: .done(.failure(error))) }
            return .failure(error)
        }
    }
}

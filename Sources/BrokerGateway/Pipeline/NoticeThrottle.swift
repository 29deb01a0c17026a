import BrokerFields
import Logging

/// At most one application-log line per interval for a kind of event that anyone on the network
/// can cause (a request without a valid token, a name no adapter serves): each line counts the
/// ones folded into it since the last. `/metrics` counts every one of them; the log only needs
/// to say that they happen, and a line per request (34 k instructions each) would let a flood of
/// bad tokens cost more to log than to refuse.
final class NoticeThrottle: Sendable {
    private struct State { var nextLine: ContinuousClock.Instant; var folded: Int }
    private let interval: Duration
    private let state: Locked<State>

    init(interval: Duration = .seconds(10)) {
        self.interval = interval
        self.state = Locked(State(nextLine: .now - interval, folded: 0))
    }

    /// Calls `emit` with the number of earlier events folded into this line, or counts this one
    /// for the next line (no clock read and no line when the logger would drop `.notice` anyway).
    func notice(_ logger: Logger, _ emit: (_ folded: Int) -> Void) {
        guard logger.logLevel <= .notice else { return }
        let now = ContinuousClock.now
        let folded: Int? = state.withLock { state in
            guard now >= state.nextLine else { state.folded += 1; return nil }
            defer { state.folded = 0; state.nextLine = now + interval }
            return state.folded
        }
        if let folded { emit(folded) }
    }
}

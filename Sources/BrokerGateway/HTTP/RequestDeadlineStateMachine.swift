import NIOCore

/// The pure core of `RequestDeadlineHandler`: when a client has run out of time, and when a
/// connection must close because a request's body is still on the wire.
///
/// Two deadlines, both for a whole part of the request, never an idle timer that each byte
/// resets (a client sending one byte every few seconds would otherwise hold a connection, and
/// its buffers, for ever):
/// - the head: from the first byte of a request to its last header line, `headTimeout`;
/// - the body: from the complete head to the body's end, `bodyTimeout`.
/// The broker's own time (deciding, the provider's answer) counts against neither. A connection
/// silent between requests is the idle timeout's business (`limits.client_timeout_ms`).
///
/// A response that ends while its request's body is still arriving (a refusal: 401, 405, 413…)
/// closes the connection, announced with `Connection: close` on its head: the rest of the body
/// is never read, so it cannot hold the connection or be taken for the next request.
///
/// Inputs are events; outputs are actions the handler carries out. Times are `NIODeadline`s
/// passed in, so tests drive the machine without sockets or clocks.
struct RequestDeadlineStateMachine {
    enum Phase: Equatable {
        /// Waiting for a request; `deadline` is set once its first byte arrived.
        case awaitingHead(deadline: NIODeadline?)
        /// The head is in, the body's end is not.
        case receiving(deadline: NIODeadline)
        /// The whole request is in; its response is owed (the broker's time, no deadline).
        case received
        /// The connection is being closed: nothing more is read or answered.
        case closing
    }

    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    private(set) var phase = Phase.awaitingHead(deadline: nil)
    /// The current request's response head has been written.
    private var responseStarted = false
    /// Set when a response head leaves before its request's end: the connection closes after it.
    private var closeAfterResponse = false
    /// Pipelined requests whose heads arrived while a response was owed, and whether the last of
    /// them is complete (the earlier ones are: parts arrive in order).
    private var queued = 0
    private var lastQueuedEnded = true
    /// A pipelined request over the body budget: refused once the owed response has ended.
    private var refuseAfterResponse = false

    init(headTimeout: TimeAmount, bodyTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// The deadline the handler's timer must honour, if any.
    var deadline: NIODeadline? {
        switch phase {
        case .awaitingHead(let deadline): deadline
        case .receiving(let deadline): deadline
        case .received, .closing: nil
        }
    }

    // MARK: Inbound

    /// True until a byte of the next request has arrived (the caller reads the clock only then).
    var awaitsFirstByte: Bool {
        if case .awaitingHead(nil) = phase { return true }
        return false
    }

    /// Bytes arrived on the connection: the first of a request starts the head's clock.
    mutating func bytesIn(now: NIODeadline) {
        if case .awaitingHead(nil) = phase { phase = .awaitingHead(deadline: now + headTimeout) }
    }

    /// The broker wrote to the connection while waiting for a head (a `CONNECT`'s answer, a TLS
    /// handshake): what the client sends next starts a new head, so the clock starts again.
    mutating func bytesOut() {
        if case .awaitingHead(.some) = phase { phase = .awaitingHead(deadline: nil) }
    }

    enum HeadAction: Equatable {
        case pass
        /// Refuse it now (over the body budget, nothing owed): 503 and close.
        case refuse
        /// Drop it and everything after; refuse once the owed response has ended.
        case drop
    }

    /// A request head arrived; `admitted` is false when its body does not fit the budget.
    mutating func headIn(now: NIODeadline, admitted: Bool) -> HeadAction {
        switch phase {
        case .closing:
            return .drop
        case .awaitingHead:
            guard admitted else { phase = .closing; return .refuse }
            phase = .receiving(deadline: now + bodyTimeout)
            responseStarted = false
            closeAfterResponse = false
            return .pass
        case .received, .receiving:
            // Pipelined behind a response still owed (a head cannot arrive before the previous end:
            // `.receiving` is only reached here through a decoder that broke its framing).
            if refuseAfterResponse { return .drop }
            guard admitted else { refuseAfterResponse = true; return .drop }
            queued += 1
            lastQueuedEnded = false
            return .pass
        }
    }

    /// The end of a request (its body complete).
    mutating func endIn() {
        switch phase {
        case .receiving: phase = .received
        case .received where queued > 0: lastQueuedEnded = true
        default: break
        }
    }

    /// Whether inbound parts are passed on: after a refusal or a timeout they are dropped (a
    /// refused pipelined request's parts are the last on the connection).
    var readsOn: Bool {
        if case .closing = phase { return false }
        return !refuseAfterResponse
    }

    // MARK: Outbound

    /// A response head leaves. True: it must say `Connection: close` (its request is not all in).
    mutating func responseHeadOut() -> Bool {
        responseStarted = true
        if case .receiving = phase { closeAfterResponse = true }
        return closeAfterResponse
    }

    enum ResponseEndAction: Equatable {
        case none
        /// Close once this end is written.
        case close
        /// Write 503 `overloaded` for a pipelined request over the budget, then close.
        case refuseAndClose
    }

    /// A response's end leaves.
    mutating func responseEndOut(now: NIODeadline) -> ResponseEndAction {
        if case .closing = phase { return .none }
        if closeAfterResponse {
            phase = .closing
            return .close
        }
        if case .receiving = phase {
            // A response that never sent a head through here (it cannot happen) still closes.
            phase = .closing
            return .close
        }
        responseStarted = false
        if queued > 0 {
            queued -= 1
            let ended = queued > 0 || lastQueuedEnded
            phase = ended ? .received : .receiving(deadline: now + bodyTimeout)
            return .none
        }
        if refuseAfterResponse {
            phase = .closing
            return .refuseAndClose
        }
        phase = .awaitingHead(deadline: nil)
        return .none
    }

    enum TimerAction: Equatable {
        /// Not due (or nothing to time): re-arm for `deadline` if there is one.
        case none
        /// Time is up and nothing has been answered: 408 `request_timeout`, then close.
        case respondAndClose
        /// Time is up mid-response: close.
        case close
    }

    mutating func timerFired(now: NIODeadline) -> TimerAction {
        switch phase {
        case .awaitingHead(let deadline?) where now >= deadline:
            phase = .closing
            return .respondAndClose
        case .receiving(let deadline) where now >= deadline:
            phase = .closing
            return responseStarted ? .close : .respondAndClose
        default:
            return .none
        }
    }

    /// The connection went away.
    mutating func closed() { phase = .closing }
}

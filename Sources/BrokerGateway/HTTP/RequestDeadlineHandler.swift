import BrokerService
import Logging
import NIOCore
import NIOHTTP1

/// Carries out `RequestDeadlineStateMachine` on a connection, and takes each request's share of
/// the `InflightBodyBudget` before its body is read.
///
/// It sits after `RequestTargetGuard`, where request heads and ends are still NIO's HTTP/1 parts,
/// and sees every response part the router writes. What it adds:
/// - a head or body past its deadline: 408 `request_timeout` (problem+json, `Connection: close`)
///   when nothing has been answered yet, then the connection is closed. A reader still waiting
///   for the body gets the 408 as an error, never an early end it could take for a short body;
/// - a response that ends before its request's body: `Connection: close` on its head, and the
///   connection closed once it is written (the body is never read, by anyone);
/// - a head whose body does not fit the budget: 503 `overloaded` with `Retry-After`, and close.
///
/// One timer at most per connection, armed lazily: a request that arrives whole in one read never
/// schedules anything, and a later deadline re-arms the timer only when an earlier one fires.
/// Nothing is done per body byte.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var machine: RequestDeadlineStateMachine
    private let budget: InflightBodyBudget
    /// The most a request reserves: the most the broker ever buffers of one body.
    private let bodyCap: Int
    private let logger: Logger
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// Budget held by the request being answered, and by pipelined requests behind it.
    private var held = 0
    private var queuedHeld = 0

    init(headTimeout: TimeAmount, bodyTimeout: TimeAmount, budget: InflightBodyBudget, bodyCap: Int, logger: Logger) {
        self.machine = RequestDeadlineStateMachine(headTimeout: headTimeout, bodyTimeout: bodyTimeout)
        self.budget = budget
        self.bodyCap = bodyCap
        self.logger = logger
    }

    // MARK: Bytes, from `RequestBytesObserver`

    func bytesIn() { if machine.awaitsFirstByte { machine.bytesIn(now: .now()) } }
    func bytesOut() { machine.bytesOut() }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.readsOn else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            let wanted = reservation(head)
            let admitted = budget.reserve(wanted)
            var pipelined = true
            if case .awaitingHead = machine.phase { pipelined = false }
            switch machine.headIn(now: .now(), admitted: admitted) {
            case .pass:
                if pipelined { queuedHeld += wanted } else { held = wanted }
                context.fireChannelRead(data)
            case .refuse:
                refuseOverloaded(context: context, wanted: wanted)
            case .drop:
                if admitted { budget.release(wanted) }
                if !admitted { logOverloaded(wanted: wanted) }
            }
        case .body:
            context.fireChannelRead(data)
        case .end:
            machine.endIn()
            context.fireChannelRead(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        arm(context: context)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .closing = machine.phase {
            // The broker has answered (408, 503) or is closing: what the router still writes is dropped.
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var head):
            if machine.responseHeadOut() {
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            } else {
                context.write(data, promise: promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            switch machine.responseEndOut(now: .now()) {
            case .none:
                budget.release(held)
                held = queuedHeld
                queuedHeld = 0
                context.write(data, promise: promise)
                arm(context: context)
            case .close:
                let written = promise ?? context.eventLoop.makePromise()
                context.writeAndFlush(data, promise: written)
                // The future completes on this loop: the context may be used there (NIOLoopBound checks it).
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                written.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
            case .refuseAndClose:
                context.write(data, promise: promise)
                respond(context: context, status: 503, code: "overloaded",
                        detail: "the broker is holding as many request bodies as it may (limits.max_inflight_body_bytes); retry shortly",
                        retryAfter: true)
            }
        }
    }

    // MARK: Deadlines

    /// Makes sure a timer fires no later than the machine's deadline.
    private func arm(context: ChannelHandlerContext) {
        guard let deadline = machine.deadline else { return }
        if let timerDeadline, timerDeadline <= deadline { return }   // fires first and re-arms then
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            fire(context: context)
        }
    }

    private func fire(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        let awaitingHead: Bool
        if case .awaitingHead = machine.phase { awaitingHead = true } else { awaitingHead = false }
        let action = machine.timerFired(now: .now())
        guard action != .none else {
            arm(context: context)
            return
        }
        logger.notice("client too slow: connection closed", metadata: [
            "http.deadline": .string(awaitingHead ? "head" : "body"),
            "http.timeout_ms": .stringConvertible(
                (awaitingHead ? machine.headTimeout : machine.bodyTimeout).nanoseconds / 1_000_000),
        ])
        let problem = Problem(status: 408, code: "request_timeout",
                              detail: awaitingHead
                                  ? "the request head did not arrive within \(machine.headTimeout.nanoseconds / 1_000_000) ms (limits.head_timeout_ms)"
                                  : "the request body did not arrive within \(machine.bodyTimeout.nanoseconds / 1_000_000) ms (limits.body_timeout_ms)")
        // A reader waiting for the body learns it will not come (rather than seeing an early end).
        if !awaitingHead { context.fireErrorCaught(problem) }
        switch action {
        case .respondAndClose:
            respond(context: context, status: 408, code: problem.code, detail: problem.detail, retryAfter: false)
        case .close, .none:
            context.close(promise: nil)
        }
    }

    // MARK: Budget

    /// `Content-Length` up to the cap; a chunked body counts as the largest allowed; no body, nothing.
    private func reservation(_ head: HTTPRequestHead) -> Int {
        if let text = head.headers.first(name: "Content-Length") {
            return min(max(Int(text) ?? bodyCap, 0), bodyCap)
        }
        return head.headers.contains(name: "Transfer-Encoding") ? bodyCap : 0
    }

    private func refuseOverloaded(context: ChannelHandlerContext, wanted: Int) {
        logOverloaded(wanted: wanted)
        respond(context: context, status: 503, code: "overloaded",
                detail: "the broker is holding as many request bodies as it may (limits.max_inflight_body_bytes); retry shortly",
                retryAfter: true)
    }

    private func logOverloaded(wanted: Int) {
        logger.warning("request body refused: in-flight body budget exhausted", metadata: [
            "http.body_bytes": .stringConvertible(wanted), "http.budget_bytes": .stringConvertible(budget.limit),
        ])
    }

    /// A complete problem+json answer written from here (not the router's), then close.
    private func respond(context: ChannelHandlerContext, status: Int, code: String, detail: String, retryAfter: Bool) {
        let body = Problem(status: status, code: code, detail: detail).jsonBody()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/problem+json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        if retryAfter { headers.add(name: "Retry-After", value: "1") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    private func shutDown() {
        machine.closed()
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        budget.release(held + queuedHeld)
        held = 0
        queuedHeld = 0
    }
}

/// Sees the connection's raw bytes, before the HTTP decoder, for `RequestDeadlineHandler`: the
/// first byte of a request starts its head's deadline, which a decoder only reporting whole heads
/// cannot tell. It passes everything on untouched and does no per-byte work.
final class RequestBytesObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private let deadlines: RequestDeadlineHandler

    init(deadlines: RequestDeadlineHandler) { self.deadlines = deadlines }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadlines.bytesIn()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        deadlines.bytesOut()
        context.write(data, promise: promise)
    }
}

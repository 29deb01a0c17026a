import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Shares on the event loop: proxy traffic (the path form, forward-proxy requests and the requests
/// inside a CONNECT tunnel) is answered here, before Hummingbird's request loop; every other
/// request passes on to the router, on the same connection.
///
/// For a share the head is checked (`ShareEdge.start`), the body collected on the loop into one
/// array, the pipeline run, and the answer written straight to the channel: no router, no
/// middleware chain, no async body stream and no response writer per share (they cost more than
/// the pipeline's own decision). It sits after Hummingbird's connection-state handler, so
/// keep-alive, `Connection: close` and the idle timeout treat shares and API calls alike, and after
/// `RequestDeadlineHandler`, which still cuts slow heads and bodies and closes a connection whose
/// answer came before its body.
///
/// Answers leave in request order when a connection mixes shares and router requests (HTTP/1.1
/// pipelining): a request that arrives while an earlier one is still owed its answer waits here,
/// with the connection's reads paused, until that answer's end has been written.
final class ShareChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A router request: its parts pass on; `ended` once its end did, `answered` once its response's end went out.
        case router(ended: Bool, answered: Bool)
        /// A share: its body collects (while `collecting`), then the pipeline runs; `ended` once the
        /// request's end arrived, `answered` once the answer is written.
        case share(ShareEdge.Pending?, body: [UInt8], collecting: Bool, ended: Bool, answered: Bool)
        /// The connection is closing (a malformed request, a deadline): nothing more is read or answered.
        case closing
    }

    private let edge: ShareEdge
    private let logger: Logger
    private var state = State.idle
    /// Parts of requests that arrived while an earlier answer was owed.
    private var waiting = CircularBuffer<HTTPRequestPart>()
    /// A `read()` held back while requests wait.
    private var readPending = false
    /// An answer decided from the head alone, written at the request's end or the read's end.
    private var heldAnswer: (HTTPResponse, [UInt8], HTTPRequest.Method)?
    /// This connection's last credential header and whom it authenticated.
    private var credentials = CredentialMemo()
    /// Who the connection is without a credential header (a client certificate, a client's own listener).
    private let identity: ConnectionIdentity

    init(edge: ShareEdge, logger: Logger, identity: ConnectionIdentity) {
        self.identity = identity
        self.edge = edge
        self.logger = logger
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if waiting.isEmpty, accepts(part) {
            handle(part, context: context)
        } else {
            waiting.append(part)
        }
    }

    /// Whether `part` can be acted on now: a head only between requests.
    private func accepts(_ part: HTTPRequestPart) -> Bool {
        switch (part, state) {
        case (.head, .idle): true
        case (.head, _): false
        case (_, .closing): false
        default: true
        }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (part, state) {
        case (.head(let head), .idle):
            let connectionCaller = identity.caller
            if connectionCaller != nil, head.headerFields[.authorization] == nil, head.headerFields[.proxyAuthorization] == nil,
               let problem = edge.connectionIdentityRefusal(head) {
                state = .share(nil, body: [], collecting: false, ended: false, answered: false)
                let (response, body) = problem.answer()
                write(response, body, method: head.method, context: context)
                return
            }
            guard let route = edge.route(head) else {
                state = .router(ended: false, answered: false)
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            switch edge.start(head, route: route, credentials: &credentials, connection: connectionCaller) {
            case .answer((let response, let body)):
                state = .share(nil, body: [], collecting: false, ended: false, answered: false)
                write(response, body, method: head.method, context: context)
            case .share(let pending):
                if !pending.readsBody, let (response, body) = edge.refusedBeforeLogging(pending) {
                    // No caller (a bad token) or no such provider: decided in place, no task. The answer
                    // waits for the end of this read: a body that came with the head is then consumed
                    // and the connection kept; one still on its way is never read (the connection closes).
                    state = .share(nil, body: [], collecting: false, ended: false, answered: false)
                    heldAnswer = (response, body, head.method)
                    return
                }
                state = .share(pending, body: [], collecting: pending.readsBody, ended: false, answered: false)
                if !pending.readsBody { run(context: context) }
            }

        case (.body(var chunk), .share(let pending, var body, true, let ended, let answered)):
            state = .closing   // the array is uniquely referenced while it grows
            let take = min(chunk.readableBytes, edge.bodyLimit - body.count)
            if body.isEmpty { body.reserveCapacity(min(edge.bodyLimit, max(take, 1024))) }
            chunk.readWithUnsafeReadableBytes { bytes in
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(take)))
                return take
            }
            // Past the limit nothing more is read: the engine refuses with `body_too_large` now.
            let full = body.count >= edge.bodyLimit
            state = .share(pending, body: body, collecting: !full, ended: ended, answered: answered)
            if full { run(context: context) }
        case (.body, _) where isRouter:
            context.fireChannelRead(wrapInboundOut(part))
        case (.body, _):
            break   // the unread rest of a share answered before its body

        case (.end, .router(_, let answered)):
            state = .router(ended: true, answered: answered)
            context.fireChannelRead(wrapInboundOut(part))
            if answered { finishRequest(context: context) }
        case (.end, .share(let pending, let body, let collecting, _, let answered)):
            state = .share(pending, body: body, collecting: false, ended: true, answered: answered)
            if collecting { run(context: context) }
            if answered { finishRequest(context: context) } else { writeHeldAnswer(context: context) }

        case (.head, _), (.end, _):
            break   // closing
        }
    }

    private var isRouter: Bool {
        if case .router = state { return true }
        return false
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard case .share(_, _, _, _, let answered) = state else {
            context.fireErrorCaught(error)
            return
        }
        waiting.removeAll()
        heldAnswer = nil
        if let problem = error as? Problem {
            // A deadline (`RequestDeadlineHandler`): it answers 408 itself when nothing was, and closes.
            state = .closing
            logger.debug("share request cut", metadata: ["http.error": .string(problem.code)])
            return
        }
        if !answered {
            // A malformed request (a bad chunk size, a CRLF inside a chunk extension): the rest of the
            // connection's bytes cannot be framed, so answer and close.
            var (response, body) = Problem(status: 400, code: "malformed_request",
                                           detail: "the request could not be parsed as HTTP/1.1 (\(error))").answer()
            response.headerFields[.connection] = "close"
            write(response, body, method: .post, context: context)
        }
        state = .closing
        context.close(mode: .all, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        // After what this read still delivers: on a connection's first request NIO's upgrade check
        // passes the parts after the head on only once it has stepped out, after this read's end.
        guard heldAnswer != nil else { return }
        context.eventLoop.assumeIsolated().execute { [self] in writeHeldAnswer(context: context) }
    }

    private func writeHeldAnswer(context: ChannelHandlerContext) {
        guard let (response, body, method) = heldAnswer else { return }
        heldAnswer = nil
        write(response, body, method: method, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closing
        waiting.removeAll()
        heldAnswer = nil
        context.fireChannelInactive()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        // The router's answer ended: the next request may go.
        if case .end = unwrapOutboundIn(data), case .router(let ended, _) = state {
            state = .router(ended: ended, answered: true)
            if ended { finishRequest(context: context) }
        }
    }

    func read(context: ChannelHandlerContext) {
        // Requests are waiting for an earlier answer: read no more until they have gone on.
        if waiting.isEmpty { context.read() } else { readPending = true }
    }

    // MARK: Shares

    /// Runs the share in `state` and writes its answer on this loop.
    private func run(context: ChannelHandlerContext) {
        guard case .share(let pending?, let body, _, let ended, let answered) = state else { return }
        state = .share(nil, body: [], collecting: false, ended: ended, answered: answered)
        let edge = self.edge
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        // The task runs on this connection's loop (and resumes there after the log's commit and
        // the provider's reply), so the answer is written without another hop.
        Task(executorPreference: ChannelLoopExecutor(loop)) {
            let (response, bytes) = await edge.run(pending, body: body)
            let answer: @Sendable () -> Void = {
                let (handler, context) = bound.value
                handler.write(response, bytes, method: pending.method, context: context)
            }
            if loop.inEventLoop { answer() } else { loop.execute(answer) }
        }
    }

    /// Writes a complete answer (`Content-Length`, no body for `HEAD`) and moves on.
    private func write(_ response: HTTPResponse, _ body: [UInt8], method: HTTPRequest.Method, context: ChannelHandlerContext) {
        guard case .share(let pending, let collected, let collecting, let ended, _) = state else { return }
        var response = response
        response.headerFields[.contentLength] = String(body.count)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if method != .head, !body.isEmpty {
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        state = .share(pending, body: collected, collecting: collecting, ended: ended, answered: true)
        if ended { finishRequest(context: context) }
    }

    /// The request and its answer are done: the next waiting request goes on.
    private func finishRequest(context: ChannelHandlerContext) {
        state = .idle
        var passed = false
        while let part = waiting.first, accepts(part) {
            waiting.removeFirst()
            handle(part, context: context)
            passed = passed || isRouter
        }
        // The router's request loop takes what was read at the read's end (`channelReadComplete`).
        if passed { context.fireChannelReadComplete() }
        if waiting.isEmpty, readPending {
            readPending = false
            context.read()
        }
    }
}

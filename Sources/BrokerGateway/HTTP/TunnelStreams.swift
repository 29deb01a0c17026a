import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// The streams of a tunnel that speaks HTTP/2: each stream is one request, checked as a request
/// inside an HTTP/1.1 tunnel is (its `:authority` must be the tunnel's; it carries the CONNECT's
/// credentials, or the connection's own client) and answered by the same share path, with the
/// HTTP/1.1 connection's body budget and deadline (`StreamBodyGuard`).
struct TunnelStreams: Sendable {
    let edge: ShareEdge
    let budget: InflightBodyBudget
    let bodyTimeout: TimeAmount
    let bodyCap: Int
    let identity: ConnectionIdentity
    let logger: Logger
    /// A tunnel without a byte either way for this long is closed (`limits.client_timeout_ms`).
    let idleTimeout: TimeAmount

    func configure(_ stream: any Channel, authority: Authority, credential: String?) throws {
        let pipeline = stream.pipeline.syncOperations
        try pipeline.addHandler(EndStreamOnLastData())
        try pipeline.addHandler(HTTP2FramePayloadToHTTPServerCodec())
        try pipeline.addHandler(StreamBodyGuard(budget: budget, bodyTimeout: bodyTimeout, bodyCap: bodyCap))
        try pipeline.addHandler(TunnelStreamHandler(authority: authority, credential: credential))
        try pipeline.addHandler(ShareChannelHandler(edge: edge, logger: logger, identity: identity))
        try pipeline.addHandler(TunnelStreamHandler.Unrouted())
    }
}

/// A stream inside an HTTP/2 tunnel: another `:authority` than the tunnel's is 421
/// `misdirected_request`; the request then carries the tunnel's credentials in place of its own.
final class TunnelStreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private let authority: Authority
    private let credential: String?
    private var refused = false

    init(authority: Authority, credential: String?) {
        self.authority = authority
        self.credential = credential
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        guard head.method != .connect, let named = head.authority.flatMap(Authority.init),
              named.same(as: authority, defaultPort: 443) else {
            refused = true
            context.answerStream(Problem(status: 421, code: "misdirected_request",
                                         detail: "this tunnel is for \(authority.host):\(authority.port ?? 443); its requests must name that authority"))
            return
        }
        head.headerFields[.proxyAuthorization] = nil
        if let credential { head.headerFields[.proxyAuthorization] = credential }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }


    /// What the share path passes on inside a tunnel (only shares go through one): 404.
    final class Unrouted: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head = unwrapInboundIn(data) else { return }
            context.answerStream(Problem(status: 404, code: "not_found", detail: "only shares go through a tunnel"))
        }
    }
}

/// Takes the connection-level frames an HTTP/2 tunnel's handler passes on (the streams have their own
/// channels), so nothing reaches the HTTP/1.1 handlers behind it.
final class ConnectionFrameSink: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Closes an HTTP/2 tunnel when `IdleStateHandler` says nothing has moved for its timeout and no
/// stream is open (a share still waiting for its provider keeps the tunnel), as the HTTP/1.1
/// connection's idle timeout runs only between requests. It counts the streams as the HTTP/2
/// handler's stream delegate.
final class CloseWhenIdle: ChannelInboundHandler, RemovableChannelHandler, NIOHTTP2StreamDelegate {
    typealias InboundIn = NIOAny

    private let open = NIOLockedValueBox(0)

    func streamCreated(_ id: HTTP2StreamID, channel: any Channel) { open.withLockedValue { $0 += 1 } }
    func streamClosed(_ id: HTTP2StreamID, channel: any Channel) { open.withLockedValue { $0 -= 1 } }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if open.withLockedValue({ $0 }) <= 0 { context.close(promise: nil) }
    }
}

extension ChannelHandlerContext {
    /// `problem` as an HTTP/2 stream's whole answer (`Retry-After` when given), then the stream closed
    /// once the answer is out: a close before it would reset the stream with the answer unsent.
    func answerStream(_ problem: Problem, retryAfter: String? = nil) {
        var (response, body) = problem.answer()
        if let retryAfter { response.headerFields[.retryAfter] = retryAfter }
        write(NIOAny(HTTPResponsePart.head(response)), promise: nil)
        write(NIOAny(HTTPResponsePart.body(channel.allocator.buffer(bytes: body))), promise: nil)
        // The write's future completes on this channel's loop: the context is used where it belongs.
        writeAndFlush(NIOAny(HTTPResponsePart.end(nil))).assumeIsolated().whenComplete { [self] _ in close(promise: nil) }
    }
}

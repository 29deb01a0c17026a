import BrokerCore
import BrokerTLS
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Which listener a connection came in on.
public enum GatewayListener: Sendable {
    /// The plain listener (`listen`).
    case plain
    /// The TLS listener (`listen_tls`).
    case tls(ListenerTLS)
    /// A client's own loopback listener (`clients[].listen`): every connection is that client.
    case client(Caller)

    /// The client every connection to this listener is, if any.
    var caller: Caller? {
        if case .client(let caller) = self { return caller }
        return nil
    }
}

/// A connection to one of the broker's listeners. Plain and client-owned listeners speak HTTP/1.1
/// (`BrokerHTTP1Channel`). The TLS listener starts with NIO's TLS handler (the listener's current
/// context: a renewed certificate serves new connections) and `ClientCertificateHandler`, then
/// speaks what ALPN chose: HTTP/1.1 on the same pipeline as the plain listener, or HTTP/2, where each
/// stream is one request through the same `ShareChannelHandler` (shares) or Hummingbird's router
/// (everything else), with the connection's identity.
struct BrokerServerChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let identity: ConnectionIdentity
        let channel: any Channel
    }

    enum Negotiated: Sendable {
        case http1(BrokerHTTP1Channel.Value)
        case http2(HTTP2Channel, HTTP2Channel.Value)
    }

    let http1: BrokerHTTP1Channel
    /// HTTP/2 with prior knowledge (h2c) besides HTTP/1.1, on a plain listener bound to loopback.
    var priorKnowledge = false

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard case .tls(let tls) = http1.listener else {
            guard priorKnowledge else {
                return http1.setup(channel: channel, logger: logger).map { value in
                    Value(negotiated: channel.eventLoop.makeSucceededFuture(.http1(value)), identity: value.identity, channel: channel)
                }
            }
            return channel.eventLoop.makeCompletedFuture {
                let identity = ConnectionIdentity(http1.listener.caller)
                let detector = PriorKnowledgeDetector<Negotiated>(timeout: TimeAmount(http1.idleTimeout)) { [self] h2, channel in
                    speak(http2: h2, on: channel, identity: identity, logger: logger)
                }
                try channel.pipeline.syncOperations.addHandler(detector)
                return Value(negotiated: detector.negotiated(on: channel.eventLoop), identity: identity, channel: channel)
            }
        }
        return channel.eventLoop.makeCompletedFuture {
            let identity = ConnectionIdentity(nil, secure: true)
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
            if tls.asksForClientCertificates {
                try pipeline.addHandler(ClientCertificateHandler(identity: identity, certificates: http1.authenticator.certificates,
                                                                 logger: logger))
            }
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { [self] result, channel in
                if case .negotiated("h2") = result { return speak(http2: true, on: channel, identity: identity, logger: logger) }
                return speak(http2: false, on: channel, identity: identity, logger: logger)
            }
            try pipeline.addHandler(alpn)
            // Nothing times out a connection before its handshake and ALPN are done (the HTTP pipelines'
            // timers come after): one that does not get there within the client timeout is closed.
            let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(http1.idleTimeout)) { channel.close(promise: nil) }
            alpn.protocolNegotiationResult.whenComplete { _ in timeout.cancel() }
            return Value(negotiated: alpn.protocolNegotiationResult, identity: identity, channel: channel)
        }
    }

    /// The rest of the pipeline once the connection has told what it speaks.
    private func speak(http2: Bool, on channel: any Channel, identity: ConnectionIdentity,
                       logger: Logger) -> EventLoopFuture<Negotiated> {
        guard http2 else {
            return channel.eventLoop.makeCompletedFuture { .http1(try http1.configure(channel: channel, identity: identity, logger: logger)) }
        }
        let connection = self.http2(identity: identity, logger: logger)
        return connection.setup(channel: channel, logger: logger).map { .http2(connection, $0) }
    }

    /// HTTP/2 for one connection. Per stream: HTTP/2 frames to HTTP types, the body budget and deadline
    /// (`StreamBodyGuard`), the share path's handler, then the router.
    func http2(identity: ConnectionIdentity, logger: Logger) -> HTTP2Channel {
        let http1 = self.http1
        let streams = HTTP1Channel.Configuration(
            additionalChannelHandlers: [StreamBodyGuard(budget: http1.bodyBudget, bodyTimeout: TimeAmount(http1.bodyTimeout), bodyCap: http1.bodyCap),
                                        ShareChannelHandler(edge: http1.shares, logger: logger, identity: identity)],
            // No idle timer per stream: the one Hummingbird adds sits after the share handler, never sees a
            // share, and closed a stream whose provider took longer than the client timeout. A stream's body
            // has its deadline (`StreamBodyGuard`); the connection's idle timer counts only while no stream is open.
            idleTimeout: nil)
        return HTTP2Channel(responder: http1.responder, configuration: .init(idleTimeout: http1.idleTimeout, streamConfiguration: streams))
    }

    func handle(value: Value, logger: Logger) async {
        guard let negotiated = try? await value.negotiated.get() else { return }
        switch negotiated {
        case .http1(let connection):
            await http1.handle(value: connection, logger: logger)
        case .http2(let http2, let connection):
            // Every stream's task inherits the connection's identity (read by `Authenticator` for the router).
            await withTaskExecutorPreference(ChannelLoopExecutor(value.channel.eventLoop)) {
                await ConnectionIdentity.$current.withValue(value.identity) {
                    await http2.handle(value: connection, logger: logger)
                }
            }
        }
    }
}

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
private let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

/// Tells HTTP/2 with prior knowledge (RFC 9113 §3.3: the client starts with the connection preface)
/// from HTTP/1.1 by a connection's first bytes, then configures the pipeline for what it found and
/// hands it those bytes. Bytes are held only until they stop matching the 24-byte preface.
final class PriorKnowledgeDetector<Negotiated: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let configure: (_ http2: Bool, _ channel: any Channel) -> EventLoopFuture<Negotiated>
    private var held: ByteBuffer?
    private var promise: EventLoopPromise<Negotiated>?
    /// The first bytes have told (the promise is then completed by the configuration).
    private var decided = false

    /// A connection that has not told within this is closed (as the HTTP/1.1 pipeline's idle timeout would).
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, configure: @escaping (_ http2: Bool, _ channel: any Channel) -> EventLoopFuture<Negotiated>) {
        self.timeout = timeout
        self.configure = configure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            if !decided { context.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    /// What the connection turned out to speak, once its first bytes have told.
    func negotiated(on eventLoop: any EventLoop) -> EventLoopFuture<Negotiated> {
        let promise = self.promise ?? eventLoop.makePromise()
        self.promise = promise
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if decided {
            // Told already: bytes pass on, after any still held for the configured pipeline.
            if held == nil { context.fireChannelRead(data) } else { held!.writeBuffer(&incoming) }
            return
        }
        if held == nil { held = incoming } else { held!.writeBuffer(&incoming) }
        let bytes = held!.readableBytesView
        let count = min(bytes.count, http2Preface.count)
        let matches = bytes.prefix(count).elementsEqual(http2Preface.prefix(count))
        if matches && bytes.count < http2Preface.count { return }
        let promise = self.promise ?? context.eventLoop.makePromise()
        self.promise = promise
        decided = true
        timer?.cancel()
        configure(matches, context.channel).hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            promise.completeWith(result)
            guard case .success = result, let bytes = held else {
                context.close(promise: nil)
                return
            }
            held = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            promise?.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }
}

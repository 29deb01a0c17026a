import BrokerTLS
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS

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

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard case .tls(let tls) = http1.listener else {
            return http1.setup(channel: channel, logger: logger).map { value in
                Value(negotiated: channel.eventLoop.makeSucceededFuture(.http1(value)), identity: value.identity, channel: channel)
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
            let (http1, shares) = (self.http1, self.http1.shares)
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                if case .negotiated("h2") = result {
                    // Per stream: HTTP/2 frames to HTTP types, the body budget and deadline, the share path's
                    // handler, then the router.
                    let streams = HTTP1Channel.Configuration(
                        additionalChannelHandlers: [StreamBodyGuard(budget: http1.bodyBudget, bodyTimeout: TimeAmount(http1.bodyTimeout)),
                                                    ShareChannelHandler(edge: shares, logger: logger, identity: identity)],
                        idleTimeout: http1.idleTimeout.timeAmount)
                    let http2 = HTTP2Channel(responder: http1.responder,
                                             configuration: .init(idleTimeout: http1.idleTimeout, streamConfiguration: streams))
                    return http2.setup(channel: channel, logger: logger).map { .http2(http2, $0) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    .http1(try http1.configure(channel: channel, identity: identity, logger: logger))
                }
            }
            try pipeline.addHandler(alpn)
            return Value(negotiated: alpn.protocolNegotiationResult, identity: identity, channel: channel)
        }
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

extension Duration {
    var timeAmount: TimeAmount { TimeAmount(self) }
}

import BrokerCore
import BrokerTLS
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL

/// Hummingbird's HTTP/1.1 child channel with two additions between NIO's HTTP/1 decoder and
/// the conversion to HTTP types, where the raw request target and every `Host` header are
/// still visible: `ConnectTunnel` (CONNECT: a TLS tunnel to an adapter host, or a refusal)
/// and `RequestTargetGuard`; then `RequestDeadlineHandler` (whole-head and whole-body deadlines,
/// the in-flight body budget, closing after a refusal that leaves body unread), which learns of
/// each request's first byte from `RequestBytesObserver` in front of the decoder. Otherwise the
/// same pipeline as `HTTP1Channel` (decoder limits, idle timeout, Hummingbird's request loop), with
/// `ShareChannelHandler` in front of the request loop answering the share path's requests.
///
/// On a client's own listener every connection is that client; on the TLS listener
/// (`BrokerServerChannel`) a client certificate may name one. Either way the connection's
/// `ConnectionIdentity` goes to the share path's handlers and, as a task-local, to the router.
struct BrokerHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    struct Value: ServerChildChannelValue {
        let asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
        let identity: ConnectionIdentity
        var channel: any Channel { asyncChannel.channel }
    }

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: Duration
    let headTimeout: Duration
    let bodyTimeout: Duration
    /// Shared by all connections.
    let bodyBudget: InflightBodyBudget
    /// The most the broker buffers of one body (`max_body_bytes` + 1): what one request may reserve.
    let bodyCap: Int
    let decoderLimits: NIOHTTPDecoderLimitConfiguration
    /// The adapter hosts and tunnel ports: the policy revision's at each request.
    let policy: ActivePolicy
    let serverNames: Set<String>
    let tunnels: TunnelSettings
    let authenticator: Authenticator
    let hostLabel: @Sendable (String) -> String
    /// The share path: proxy traffic is answered by `ShareChannelHandler`, before the router.
    let shares: ShareEdge
    /// Which listener this is.
    var listener = GatewayListener.plain

    /// A plain connection, or one on a client's own listener (`BrokerServerChannel` adds TLS in front).
    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try configure(channel: channel, identity: ConnectionIdentity(listener.caller), logger: logger)
        }
    }

    /// The HTTP/1.1 pipeline, at the end of `channel`'s (after TLS, when the connection has it).
    func configure(channel: any Channel, identity: ConnectionIdentity, logger: Logger) throws -> Value {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false,          // NIOAsyncChannel handles one request at a time
            // An upgrade configuration without upgraders: the one public way to a request decoder
            // that hands on the bytes after a CONNECT head when it is removed (forwardBytes), with
            // the encoder still paired to it; the upgrade handler steps out at the first request.
            withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
            withErrorHandling: false,                 // Hummingbird's request loop handles errors
            withOutboundHeaderValidation: false,      // HTTP types validate outbound headers
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: decoderLimits)
        try pipeline.addHandler(
            ConnectTunnel(settings: tunnels, policy: policy, authenticator: authenticator, decoderLimits: decoderLimits, logger: logger,
                          hostLabel: hostLabel, identity: identity,
                          streams: TunnelStreams(edge: shares, budget: bodyBudget, bodyTimeout: TimeAmount(bodyTimeout), bodyCap: bodyCap,
                                                 identity: identity, logger: logger, idleTimeout: TimeAmount(idleTimeout))))
        try pipeline.addHandler(RequestTargetGuard(policy: policy, serverNames: serverNames))
        let deadlines = RequestDeadlineHandler(headTimeout: TimeAmount(headTimeout), bodyTimeout: TimeAmount(bodyTimeout),
                                               budget: bodyBudget, bodyCap: bodyCap, logger: logger)
        try pipeline.addHandler(deadlines)
        let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        try pipeline.addHandler(RequestBytesObserver(deadlines: deadlines), position: .before(decoder))
        try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: identity.secure))
        try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
        try pipeline.addHandler(ShareChannelHandler(edge: shares, logger: logger, identity: identity))
        return Value(asyncChannel: try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                                       configuration: .init(isOutboundHalfClosureEnabled: true)),
                     identity: identity)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(ChannelLoopExecutor(value.channel.eventLoop)) {
            await ConnectionIdentity.$current.withValue(value.identity) {
                await handleHTTP(asyncChannel: value.asyncChannel, logger: logger)
            }
        }
    }
}

import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel with two additions between NIO's HTTP/1 decoder and
/// the conversion to HTTP types, where the raw request target and every `Host` header are
/// still visible: `ConnectTunnel` (CONNECT: a TLS tunnel to an adapter host, or a refusal)
/// and `RequestTargetGuard`; then `RequestDeadlineHandler` (whole-head and whole-body deadlines,
/// the in-flight body budget, closing after a refusal that leaves body unread), which learns of
/// each request's first byte from `RequestBytesObserver` in front of the decoder. Otherwise the
/// same pipeline as `HTTP1Channel` (decoder limits, idle timeout, Hummingbird's request loop), with
/// `ShareChannelHandler` in front of the request loop answering the share path's requests.
struct BrokerHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

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

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,          // NIOAsyncChannel handles one request at a time
                // An upgrade configuration without upgraders: the one public way to a request decoder
                // that hands on the bytes after a CONNECT head when it is removed (forwardBytes), with
                // the encoder still paired to it; the upgrade handler steps out at the first request.
                withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
                withErrorHandling: false,                 // Hummingbird's request loop handles errors
                withOutboundHeaderValidation: false,      // HTTP types validate outbound headers
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits)
            try channel.pipeline.syncOperations.addHandler(
                ConnectTunnel(settings: tunnels, policy: policy, authenticator: authenticator, decoderLimits: decoderLimits, logger: logger,
                              hostLabel: hostLabel))
            try channel.pipeline.syncOperations.addHandler(
                RequestTargetGuard(policy: policy, serverNames: serverNames))
            let deadlines = RequestDeadlineHandler(headTimeout: TimeAmount(headTimeout), bodyTimeout: TimeAmount(bodyTimeout),
                                                   budget: bodyBudget, bodyCap: bodyCap, logger: logger)
            try channel.pipeline.syncOperations.addHandler(deadlines)
            try channel.pipeline.syncOperations.addHandler(RequestBytesObserver(deadlines: deadlines), position: .first)
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
            try channel.pipeline.syncOperations.addHandler(ShareChannelHandler(edge: shares, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                       configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await withTaskExecutorPreference(ChannelLoopExecutor(asyncChannel.channel.eventLoop)) {
            await handleHTTP(asyncChannel: asyncChannel, logger: logger)
        }
    }
}

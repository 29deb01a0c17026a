import BrokerCore
import BrokerTLS
import Logging
import NIOCore
import HummingbirdCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS
import NIOSSL

/// What a `CONNECT` may open: the CA's certificates (nil when interception is off). The hosts
/// and ports a tunnel may name are the policy revision's (`PolicyRevision.tunnelPorts`).
public struct TunnelSettings: Sendable {
    public var certificates: TunnelCertificates?

    public init(certificates: TunnelCertificates?) {
        self.certificates = certificates
    }
}

/// `CONNECT host:port` through the broker: a TLS tunnel to an adapter host that the broker
/// terminates itself, so that SDKs speaking `https://` through `HTTPS_PROXY` are inspected
/// like forward-proxy requests, with nothing tunnelled anywhere else.
///
/// The handler sits right after NIO's HTTP/1 decoder and sees every request head.
/// - A `CONNECT` is never passed on. It is refused with a complete problem+json answer
///   (`Content-Length`, then the connection closed) unless interception is on, the proxy
///   credentials are valid and name a client with role `share`, an adapter claims the host
///   (by name, never an address) at that port, and the client may use that adapter's provider
///   (403 `caller_not_permitted` otherwise: a grants, compliance or admin token opens no tunnel,
///   and a tunnel is refused before it opens, not after its first request). Otherwise the
///   answer is `200 Connection Established`, and the pipeline
///   below this handler becomes TLS (a leaf certificate for exactly that host, the SNI must
///   name it) with a new HTTP/1 decoder and encoder inside; everything above it (the target
///   checks, Hummingbird's request loop and so the router) stays, and reads the tunnel's
///   requests as it read the connection's.
/// - Inside a tunnel, each request's `Host` must be the tunnel's authority (421
///   `misdirected_request`), and it carries the `CONNECT`'s `Proxy-Authorization` (a client's
///   own is replaced): so it is a forward-proxy request to that host, decided, logged and
///   forwarded by the same pipeline, authenticated as the tunnel was.
///
/// Answers to a `CONNECT` are written as raw bytes after removing the HTTP encoder, because
/// NIO's encoder leaves out the body of every response to `CONNECT` (right only for 2xx,
/// RFC 9110 §9.3.6), which left clients waiting for a body that never came. So that the
/// encoder is never removed under a response still being written, a `CONNECT` that arrives
/// while an earlier request's response is owed waits for that response's end.
final class ConnectTunnel: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case http
        /// A `CONNECT` head was read; acting on it waits for its end and for no response owed.
        case connect(Answer, ended: Bool)
        /// `credential`: the CONNECT's `Proxy-Authorization`, which every request inside carries;
        /// nil for a tunnel of the connection's own client (`ConnectionIdentity`).
        case tunnel(Authority, credential: String?)
        case closing
    }

    /// What a `CONNECT` gets.
    enum Answer: Equatable {
        case open(Authority, credential: String?)
        case refuse(status: Int, code: String, detail: String, proxyAuthenticate: Bool = false, host: String? = nil)
    }

    private let settings: TunnelSettings
    private let policy: ActivePolicy
    private let authenticator: Authenticator
    private let decoderLimits: NIOHTTPDecoderLimitConfiguration
    private let logger: Logger
    private let hostLabel: @Sendable (String) -> String
    private let identity: ConnectionIdentity
    /// The share path for the streams of a tunnel that speaks HTTP/2 (nil: HTTP/1.1 only).
    private let streams: TunnelStreams?
    private var state = State.http
    /// Requests passed on whose response has not ended yet.
    private var responsesOwed = 0

    init(settings: TunnelSettings, policy: ActivePolicy, authenticator: Authenticator, decoderLimits: NIOHTTPDecoderLimitConfiguration,
         logger: Logger, hostLabel: @escaping @Sendable (String) -> String, identity: ConnectionIdentity,
         streams: TunnelStreams? = nil) {
        self.identity = identity
        self.streams = streams
        self.settings = settings
        self.policy = policy
        self.authenticator = authenticator
        self.decoderLimits = decoderLimits
        self.logger = logger
        self.hostLabel = hostLabel
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .closing:
            return
        case .connect(let answer, _):
            // A CONNECT has no body: only its end matters.
            if case .end = part {
                state = .connect(answer, ended: true)
                actOnConnectIfReady(context: context)
            }
        case .http:
            guard case .head(let head) = part else {
                context.fireChannelRead(data)
                return
            }
            if head.method == .CONNECT {
                state = .connect(answer(head), ended: false)
                return
            }
            responsesOwed += 1
            context.fireChannelRead(data)
        case .tunnel(let authority, let credential):
            guard case .head(var head) = part else {
                context.fireChannelRead(data)
                return
            }
            if head.method == .CONNECT {
                state = .connect(.refuse(status: 400, code: "bad_request", detail: "a tunnel cannot open another tunnel"),
                                 ended: false)
                return
            }
            let hosts = head.headers["Host"]
            guard hosts.count == 1, let named = Authority(hosts[0]), named.same(as: authority, defaultPort: 443) else {
                state = .connect(.refuse(status: 421, code: "misdirected_request",
                                         detail: "this tunnel is for \(authority.host):\(authority.port ?? 443); its requests must name that Host"),
                                 ended: true)
                actOnConnectIfReady(context: context)
                return
            }
            head.headers.remove(name: "Proxy-Authorization")
            if let credential { head.headers.add(name: "Proxy-Authorization", value: credential) }
            responsesOwed += 1
            context.fireChannelRead(wrapInboundOut(.head(head)))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        context.write(data, promise: promise)
        if case .end = part {
            responsesOwed = max(0, responsesOwed - 1)
            actOnConnectIfReady(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A client that closes without TLS close_notify (most HTTP clients do, Python's among them) is not news.
        if case .tunnel(let authority, _) = state, let tls = error as? NIOSSLError, tls != .uncleanShutdown {
            logger.notice("TLS in a tunnel failed", metadata: [
                "tunnel.host": .string(hostLabel(authority.host)), "error": .string("\(error)"),
            ])
        }
        context.fireErrorCaught(error)
    }

    /// The pure check of a `CONNECT` head.
    func answer(_ head: HTTPRequestHead) -> Answer {
        guard settings.certificates != nil else {
            return .refuse(status: 405, code: "tunnel_not_inspectable",
                           detail: "TLS interception is off (tls_interception.enabled: false): send http:// requests through the broker, which adds TLS")
        }
        guard let target = Authority(head.uri), target.port != nil else {
            return .refuse(status: 400, code: "invalid_host", detail: "CONNECT needs host:port")
        }
        let credentials = head.headers["Proxy-Authorization"]
        if credentials.count > 1 {
            return .refuse(status: 400, code: "duplicate_header", detail: "Proxy-Authorization is sent more than once")
        }
        let credential = credentials.first
        // The credentials when sent; else the connection's own client (a client certificate, its own listener).
        guard let caller = credential.map({ authenticator.proxyCredential($0)?.caller }) ?? identity.caller else {
            return .refuse(status: 407, code: "unauthenticated",
                           detail: credential == nil
                               ? "the broker needs Proxy-Authorization: Basic (client:token in the proxy URL) or Bearer <token>"
                               : "the proxy credentials are not valid",
                           proxyAuthenticate: true)
        }
        // Before anything about the host: a client that may not share learns nothing of which hosts are adapters'.
        guard caller.roles.contains(.share) else {
            return .refuse(status: 403, code: "caller_not_permitted", detail: "a tunnel needs a client with role share")
        }
        if target.isAddress {
            return .refuse(status: 403, code: "unknown_provider",
                           detail: "tunnels go to an adapter's host by name, never to an address", host: target.host)
        }
        guard let ports = policy.current.tunnelPorts[target.host] else {
            return .refuse(status: 403, code: "unknown_provider", detail: "no adapter serves host \(target.host.prefix(253))",
                           host: target.host)
        }
        guard let port = target.port, ports.contains(port) else {
            return .refuse(status: 403, code: "unknown_provider",
                           detail: "no adapter serves \(target.host.prefix(253)) at port \(target.port ?? 0)", host: target.host)
        }
        // The host's adapter, or an adapter whose SDKs sign themselves in there (token endpoints).
        let revision = policy.current
        let providers = [revision.providerByHost[target.host]].compactMap { $0 }
            + (revision.tokenEndpointsByHost[target.host] ?? []).map(\.provider)
        guard providers.contains(where: caller.mayShare(with:)) else {
            return .refuse(status: 403, code: "caller_not_permitted",
                           detail: "this client may not use the provider of \(target.host.prefix(253))", host: target.host)
        }
        return .open(target, credential: credential)
    }

    private func actOnConnectIfReady(context: ChannelHandlerContext) {
        guard case .connect(let answer, ended: true) = state, responsesOwed == 0 else { return }
        switch answer {
        case .refuse(let status, let code, let detail, let proxyAuthenticate, let host):
            var metadata: Logger.Metadata = ["http.status": .stringConvertible(status), "code": .string(code)]
            if let host { metadata["tunnel.host"] = .string(hostLabel(host)) }
            logger.notice("CONNECT refused", metadata: metadata)
            refuse(context: context, status: status, code: code, detail: detail, proxyAuthenticate: proxyAuthenticate)
        case .open(let authority, let credential):
            do {
                try open(context: context, authority: authority, credential: credential)
                state = .tunnel(authority, credential: credential)
            } catch {
                logger.error("could not open a tunnel", metadata: ["tunnel.host": .string(hostLabel(authority.host)),
                                                                  "error": .string("\(error)")])
                refuse(context: context, status: 502, code: "tunnel_unavailable",
                       detail: "the broker could not set up TLS for this host", proxyAuthenticate: false)
            }
        }
    }

    /// `200 Connection Established`, then TLS below this handler with HTTP/1.1 or HTTP/2 inside it.
    /// `credential`: the CONNECT's `Proxy-Authorization`, which every request inside carries.
    private func open(context: ChannelHandlerContext, authority: Authority, credential: String?) throws {
        guard let certificates = settings.certificates else { throw TLSSetupError("TLS interception is off") }
        let tlsContext = try certificates.context(for: authority.host)
        let pipeline = context.pipeline.syncOperations
        let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
        let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        pipeline.removeHandler(encoder, promise: nil)
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: "HTTP/1.1 200 Connection Established\r\n\r\n")),
                              promise: nil)
        let tls = NIOSSLServerHandler(context: tlsContext)
        try pipeline.addHandler(tls, position: .after(decoder))
        // What the client's TLS offered decides what the tunnel speaks: HTTP/2 (some clients speak nothing
        // else) or HTTP/1.1; a client that offered nothing is told by its first bytes.
        // Either way the new handlers go in before this one.
        let alpn = NIOTypedApplicationProtocolNegotiationHandler<Bool> { [self] result, channel in
            // Called on the channel's event loop, once the handshake is done.
            do {
                switch result {
                case .negotiated("h2"):
                    try speakHTTP2(channel, authority: authority, credential: credential, after: tls)
                    return channel.eventLoop.makeSucceededFuture(true)
                case .fallback where streams != nil:
                    let detector = PriorKnowledgeDetector<Bool>(timeout: streams!.idleTimeout) { [self] h2, channel in
                        do {
                            if h2 { try speakHTTP2(channel, authority: authority, credential: credential, after: tls) } else { try speakHTTP1(channel) }
                            return channel.eventLoop.makeSucceededFuture(h2)
                        } catch {
                            return channel.eventLoop.makeFailedFuture(error)
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(detector, position: .before(self))
                    // Done here: the negotiation handler hands its held bytes on only once this future is.
                    return channel.eventLoop.makeSucceededFuture(false)
                default:
                    try speakHTTP1(channel)
                    return channel.eventLoop.makeSucceededFuture(false)
                }
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        try pipeline.addHandler(alpn, position: .after(tls))
        // The old decoder hands what it holds past the CONNECT (a ClientHello sent before our
        // answer) to the TLS handler as it leaves (its leftover-bytes strategy is forwardBytes).
        pipeline.removeHandler(decoder, promise: nil)
        logger.debug("tunnel opened", metadata: ["tunnel.host": .string(hostLabel(authority.host))])
    }

    /// HTTP/1.1 inside the tunnel: the decoder and encoder go in before this handler.
    private func speakHTTP1(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            position: .before(self), withPipeliningAssistance: false, withServerUpgrade: nil, withErrorHandling: false,
            withOutboundHeaderValidation: false, withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
    }

    /// HTTP/2 inside the tunnel: each stream one request (`TunnelStreams`).
    private func speakHTTP2(_ channel: any Channel, authority: Authority, credential: String?,
                            after tls: NIOSSLServerHandler) throws {
        guard let streams else { throw TLSSetupError("HTTP/2 is not served in this tunnel") }
        let pipeline = channel.pipeline.syncOperations
        let idle = CloseWhenIdle()
        let http2 = NIOHTTP2Handler(mode: .server, eventLoop: channel.eventLoop, connectionConfiguration: .init(),
                                    streamConfiguration: .init(), streamDelegate: idle) { stream in
            stream.eventLoop.makeCompletedFuture {
                try streams.configure(stream, authority: authority, credential: credential)
            }
        }
        try pipeline.addHandler(http2, position: .before(self))
        // The connection's own frames (SETTINGS, PING, GOAWAY) come out of the HTTP/2 handler too: they
        // end here, before the HTTP/1.1 handlers below, which the tunnel no longer uses.
        try pipeline.addHandler(ConnectionFrameSink(), position: .after(http2))
        // The HTTP/1.1 connection's timers would see no request head and cut the tunnel: they go, and
        // the tunnel closes after the client timeout with no byte either way and no open stream instead.
        let timers: [any RemovableChannelHandler] = [try pipeline.handler(type: RequestBytesObserver.self),
                                                     try pipeline.handler(type: RequestDeadlineHandler.self),
                                                     try pipeline.handler(type: HTTPConnectionStateHandler.self)]
        for handler in timers {
            pipeline.removeHandler(handler, promise: nil)
        }
        try pipeline.addHandler(IdleStateHandler(allTimeout: streams.idleTimeout), position: .after(tls))
        try pipeline.addHandler(idle, position: .after(http2))
    }

    /// A complete problem+json answer as raw bytes (no HTTP encoder: see the type's comment), then close.
    private func refuse(context: ChannelHandlerContext, status: Int, code: String, detail: String, proxyAuthenticate: Bool) {
        state = .closing
        let pipeline = context.pipeline.syncOperations
        if let encoder = try? pipeline.handler(type: HTTPResponseEncoder.self) { pipeline.removeHandler(encoder, promise: nil) }
        let body = Problem(status: status, code: code, detail: detail).jsonBody()
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        var text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/problem+json\r\nContent-Length: \(body.count)\r\n"
        if proxyAuthenticate { text += "Proxy-Authenticate: Basic realm=\"sharebroker\"\r\n" }
        text += "Connection: close\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + body.count)
        buffer.writeString(text)
        buffer.writeBytes(body)
        let channel = context.channel
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension Authority {
    /// An IPv4 or IPv6 address rather than a name.
    var isAddress: Bool {
        host.hasPrefix("[") || host.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }
    }
}

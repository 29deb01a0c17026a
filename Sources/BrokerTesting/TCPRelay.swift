import BrokerFields
import NIOCore
import NIOPosix

/// A loopback TCP relay to a real server (the test PostgreSQL): `cut()` closes the listener and
/// every relayed connection, as a database host that drops off the network; `restore()`
/// listens again on the same port. Bytes pass through untouched.
public final class TCPRelay: Sendable {
    public let port: Int
    private let target: SocketAddress
    private let state = Locked<(server: (any Channel)?, connections: [ObjectIdentifier: any Channel])>((nil, [:]))

    public static func start(to host: String, port: Int) async throws -> TCPRelay {
        let relay = TCPRelay(port: 0, target: try SocketAddress(ipAddress: host, port: port))
        let server = try await relay.listen(on: 0)
        let bound = TCPRelay(port: server.localAddress?.port ?? 0, target: relay.target)
        try await server.close()
        _ = try await bound.listen(on: bound.port)
        return bound
    }

    private init(port: Int, target: SocketAddress) {
        self.port = port
        self.target = target
    }

    /// Closes the listener and every connection through it.
    public func cut() async {
        let (server, connections) = state.withLock { state in
            defer { state = (nil, [:]) }
            return (state.server, Array(state.connections.values))
        }
        try? await server?.close()
        for connection in connections { try? await connection.close() }
    }

    /// Listens again on the same port.
    public func restore() async throws {
        _ = try await listen(on: port)
    }

    private func listen(on port: Int) async throws -> any Channel {
        let target = self.target
        // Held strongly by the listener's initializer until `cut()` closes the listener.
        let relay = self
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { inbound in
                let forward = RelayHandler()
                return inbound.pipeline.addHandler(forward).flatMap {
                    let backward = RelayHandler()
                    return ClientBootstrap(group: inbound.eventLoop)
                        .channelInitializer { outbound in outbound.pipeline.addHandler(backward) }
                        .connect(to: target)
                        .flatMap { outbound in
                            forward.partner.withLock { $0 = outbound }
                            backward.partner.withLock { $0 = inbound }
                            relay.track(inbound, outbound)
                            return inbound.setOption(ChannelOptions.autoRead, value: true)
                        }
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        state.withLock { $0.server = server }
        return server
    }

    private func track(_ channels: any Channel...) {
        for channel in channels {
            let id = ObjectIdentifier(channel)
            state.withLock { $0.connections[id] = channel }
            // Outside the lock: on a channel already closed the callback runs at once, on this thread.
            channel.closeFuture.whenComplete { [state] _ in state.withLock { _ = $0.connections.removeValue(forKey: id) } }
        }
    }
}

/// Writes what one side reads to the other; closes the other when one side closes.
private final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let partner = Locked<(any Channel)?>(nil)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner.snapshot?.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.snapshot?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The per-request context of the gateway: Hummingbird's core storage and nothing global.
public struct BrokerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection (its peer address is read only where it matters: `/metrics`).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// True when the client connected from a loopback address.
    public var peerIsLoopback: Bool {
        guard let ip = channel.remoteAddress?.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }

    /// Bodies are read by the gateway itself, with the configured limit.
    public var maxUploadSize: Int { Int.max }
}

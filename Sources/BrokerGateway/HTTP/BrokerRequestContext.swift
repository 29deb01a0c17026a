import HTTPTypes
import Hummingbird
import Logging

/// The per-request context of the gateway: Hummingbird's core storage and nothing global.
public struct BrokerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Bodies are read by the gateway itself, with the configured limit.
    public var maxUploadSize: Int { Int.max }
}

import BrokerCore
import BrokerService

/// What the HTTP layer needs to know beyond the pipeline.
public struct GatewaySettings: Sendable {
    /// Host names (without port) under which the broker's own API is served. Any
    /// other host that no adapter claims is refused: the broker is never an open proxy.
    public var serverNames: Set<String>
    public var maxBodyBytes: Int
    /// A connection silent this long is closed (between requests too: the keep-alive idle limit).
    public var clientTimeout: Duration
    /// A request's head must arrive whole within this time of its first byte, and its body within
    /// `bodyTimeout` of its head (whole-part deadlines, which a byte now and then does not extend):
    /// 408 `request_timeout`, and the connection closed.
    public var headTimeout: Duration = .seconds(10)
    public var bodyTimeout: Duration = .seconds(30)
    /// The request-body bytes all connections together may have in flight; beyond, 503 `overloaded`.
    public var maxInflightBodyBytes = 64 << 20
    /// The largest request head (request line and headers) accepted; larger ones are refused by the HTTP decoder.
    public var maxHeaderBytes: Int
    /// `CONNECT` tunnels to adapter hosts (TLS interception); no certificates: tunnels are refused.
    public var tunnels: TunnelSettings
    /// Origins that may frame the privacy center; empty: none.
    public var privacyFrameAncestors: [String] = []
    /// The broker's home region (the privacy center says when data leaves it).
    public var homeRegion = "CN"
    /// Who may read `GET /metrics`.
    public var metricsAccess: BrokerConfig.MetricsAccess = .loopback

    public init(serverNames: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"], maxBodyBytes: Int = 1_048_576,
                clientTimeout: Duration = .seconds(30), maxHeaderBytes: Int = 16_384,
                tunnels: TunnelSettings = TunnelSettings(certificates: nil)) {
        self.serverNames = serverNames
        self.tunnels = tunnels
        self.maxBodyBytes = maxBodyBytes
        self.clientTimeout = clientTimeout
        self.maxHeaderBytes = maxHeaderBytes
    }
}

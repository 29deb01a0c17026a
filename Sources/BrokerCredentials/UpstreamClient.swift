import BrokerCurl

/// Sends one HTTP request to a provider and returns its complete response.
///
/// The credential layer reaches token endpoints only through this protocol, so a
/// process has one outbound client (one connection cache) for provider calls and
/// token calls alike. Contract: `send` returns the response for any HTTP status
/// (a 401 or 500 is a response, not an error) and throws only when no response
/// was received; it never follows redirects.
public protocol UpstreamClient: Sendable {
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse
}

extension CurlUpstreamClient: UpstreamClient {
    /// The protocol's entry point: `send(_:logger:)` with the client's own logger.
    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        try await send(request, logger: nil)
    }
}

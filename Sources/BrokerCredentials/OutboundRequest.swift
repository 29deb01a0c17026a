import BrokerCore
import BrokerCurl

/// The request the broker is about to send to a provider, before credentials.
///
/// Everything is already in wire form: `path` is percent-encoded and includes
/// `upstream.basePath`, `query` is the encoded query string without `?`, `body`
/// holds the exact bytes. Credential injection edits this value (headers, query,
/// form body) and `upstreamRequest()` turns it into what the client sends.
///
/// Invariant shared with request signing: the URL omits the port when it is the
/// scheme's default, so the `Host` header the client sends is exactly
/// `hostHeader` — the value a signature covers.
public struct OutboundRequest: Sendable {
    public var method: String
    public var upstream: UpstreamURL
    /// Percent-encoded path including `upstream.basePath`, starting with `/`.
    public var path: String
    /// Encoded query without `?`; empty when there is none.
    public var query: String
    public var headers: [HTTPHeaderLine]
    public var body: [UInt8]
    public var bodyFormat: BodyFormat
    /// The provider speaks HTTP/2 only (`Adapter.http2Only`).
    public var http2Only = false

    public init(method: String, upstream: UpstreamURL, path: String, query: String = "",
                headers: [HTTPHeaderLine] = [], body: [UInt8] = [], bodyFormat: BodyFormat = .none) {
        self.method = method
        self.upstream = upstream
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyFormat = bodyFormat
    }

    /// `host`, or `host:port` when the port is not the scheme's default: the
    /// `Host` header the client sends for `url`.
    public var hostHeader: String {
        let defaultPort = upstream.scheme == "https" ? 443 : 80
        if let port = upstream.port, port != defaultPort { return "\(upstream.host):\(port)" }
        return upstream.host
    }

    /// `scheme://host[:port]path[?query]` (the port only when not the default).
    public var url: String {
        let path = self.path.isEmpty ? "/" : self.path
        return upstream.scheme + "://" + hostHeader + path + (query.isEmpty ? "" : "?" + query)
    }

    public func upstreamRequest() -> UpstreamRequest {
        UpstreamRequest(method: method, url: url, headers: headers, body: body, http2Only: http2Only)
    }

    /// Value of the first header line named `name` (case-insensitive).
    public func headerValue(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// Replaces every header line named `name` (case-insensitive) with one line.
    public mutating func setHeader(_ name: String, _ value: String) {
        let wanted = name.lowercased()
        headers.removeAll { $0.name.lowercased() == wanted }
        headers.append(HTTPHeaderLine(name, value))
    }

    /// Appends `name=value` (both percent-encoded) to the query.
    mutating func appendQueryParameter(_ name: String, _ value: String) {
        let pair = PercentEncoding.encode(name) + "=" + PercentEncoding.encode(value)
        query = query.isEmpty ? pair : query + "&" + pair
    }

    /// Appends `name=value` to a form body, or makes it the body when there is none.
    mutating func appendFormField(_ name: String, _ value: String, credentialType: String) throws(CredentialError) {
        switch bodyFormat {
        case .json:
            throw .misconfigured("credential type \(credentialType) injects form field '\(name)', but the operation's body is json")
        case .none where !body.isEmpty:
            throw .misconfigured("credential type \(credentialType) injects form field '\(name)' into a body that is not a form")
        case .form, .none:
            break
        }
        let pair = Array((PercentEncoding.encode(name) + "=" + PercentEncoding.encode(value)).utf8)
        if body.isEmpty {
            body = pair
            bodyFormat = .form
            if headerValue("Content-Type") == nil {
                setHeader("Content-Type", "application/x-www-form-urlencoded")
            }
        } else {
            body.append(UInt8(ascii: "&"))
            body.append(contentsOf: pair)
        }
    }
}

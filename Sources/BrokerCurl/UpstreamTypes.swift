// Values exchanged with `CurlUpstreamClient`: requests, responses, errors, options.

/// One HTTP header field as it travels on the wire: a name and a value.
///
/// Used for both request and response headers. The order of an array of header
/// lines is the order on the wire, and repeated names are kept as separate lines
/// (no merging, no case folding: names keep the case they were given or received;
/// HTTP/2 responses arrive lower-cased). Compare names case-insensitively.
public struct HTTPHeaderLine: Sendable, Hashable, CustomStringConvertible {
    /// Field name, e.g. `Content-Type`.
    public var name: String
    /// Field value with surrounding whitespace removed. Never contains CR, LF or NUL
    /// in a request that `CurlUpstreamClient` accepts.
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public init(name: String, value: String) {
        self.init(name, value)
    }

    /// The name only: header values may hold personal data or credentials, so they
    /// are kept out of descriptions (and so out of logs and test failure messages).
    public var description: String { "\(name): <\(value.utf8.count) bytes>" }
}

/// An outbound HTTP request to a provider, exactly as the broker wants it sent.
///
/// The client sends the method, URL, headers and body as given: it adds only
/// `Host` and a `Content-Length` computed from `body`, and suppresses curl's own
/// defaults (`Accept: */*`, `Expect: 100-continue`, a form `Content-Type`).
/// Caller-supplied `Content-Length` and `Transfer-Encoding` lines are dropped
/// because the client owns message framing. Invariants checked by `send`: the
/// scheme is `http` or `https` and the URL has a host; the method is an HTTP token;
/// header names are tokens and values contain no CR, LF or NUL (no header
/// injection). Redirects are never followed.
public struct UpstreamRequest: Sendable {
    /// HTTP method token, e.g. `POST`. Sent verbatim (case-sensitive).
    public var method: String
    /// Absolute `http://` or `https://` URL including path and query.
    public var url: String
    /// Header lines in wire order.
    public var headers: [HTTPHeaderLine]
    /// Body bytes; sent with `Content-Length` whenever non-empty, for any method,
    /// and as an empty body with `Content-Length: 0` for POST, PUT and PATCH.
    public var body: [UInt8]
    /// HTTP/2 only (an adapter's `http2_only`): over `https` negotiated by ALPN, over `http` with prior knowledge
    /// (no HTTP/1.1 upgrade). Otherwise HTTP/2 where a TLS server offers it, else HTTP/1.1.
    public var http2Only = false

    public init(method: String, url: String, headers: [HTTPHeaderLine] = [], body: [UInt8] = [], http2Only: Bool = false) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.http2Only = http2Only
    }
}

/// The HTTP protocol version a response was received with (CURLINFO_HTTP_VERSION).
///
/// HTTP/2 is negotiated with ALPN on `https` connections when the upstream offers
/// it; cleartext `http` always uses HTTP/1.1. `unknown` only if libcurl reports
/// something else.
public enum UpstreamHTTPVersion: String, Sendable, Hashable {
    case http1_0 = "HTTP/1.0"
    case http1_1 = "HTTP/1.1"
    case http2 = "HTTP/2"
    case http3 = "HTTP/3"
    case unknown = "unknown"
}

/// How long a transfer took, as measured by libcurl.
public struct UpstreamTimings: Sendable, Hashable {
    /// Seconds from the start of the transfer (after it was handed to the curl
    /// thread) until the last byte of the response was received.
    public var total: Double
    /// Seconds from the start until the TCP connection was established (includes
    /// DNS). Near zero when an existing connection was reused.
    public var connect: Double
    /// Number of new connections this transfer had to open (0 when it reused one
    /// from the connection cache or multiplexed on an HTTP/2 connection).
    public var newConnections: Int

    public init(total: Double, connect: Double, newConnections: Int) {
        self.total = total
        self.connect = connect
        self.newConnections = newConnections
    }
}

/// A complete upstream response: the final status line, headers and the whole body.
///
/// It is always the response to the request sent — never to a redirect target:
/// a 3xx is returned as is. Informational (1xx) responses are not included. The
/// body is at most `CurlClientOptions.maxResponseBytes` long and is delivered as
/// received (no content decoding: a `Content-Encoding` header still applies).
public struct UpstreamResponse: Sendable {
    /// HTTP status code, e.g. 200 or 302.
    public var status: Int
    /// Response header lines in wire order (status line excluded).
    public var headers: [HTTPHeaderLine]
    /// Response body bytes.
    public var body: [UInt8]
    public var httpVersion: UpstreamHTTPVersion
    public var timings: UpstreamTimings

    public init(status: Int, headers: [HTTPHeaderLine], body: [UInt8],
                httpVersion: UpstreamHTTPVersion, timings: UpstreamTimings) {
        self.status = status
        self.headers = headers
        self.body = body
        self.httpVersion = httpVersion
        self.timings = timings
    }

    /// Values of all header lines named `name` (case-insensitive), in order.
    public func headerValues(_ name: String) -> [String] {
        let wanted = name.lowercased()
        return headers.filter { $0.name.lowercased() == wanted }.map(\.value)
    }

    /// Value of the first header line named `name` (case-insensitive).
    public func headerValue(_ name: String) -> String? {
        headerValues(name).first
    }
}

/// Why an upstream transfer failed.
///
/// `code.rawValue` is the stable error code the broker puts in its API errors
/// (502 `upstream_unreachable`, 504 `upstream_timeout`, ...). `message` is for
/// operators: it names the method and host and libcurl's generic description of
/// the failure, and never contains the URL's path or query, header values or
/// bodies, which may hold personal data. `curlCode` is the raw `CURLcode`
/// (0 when the failure did not come from libcurl).
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure; `rawValue` is the stable, documented error code.
    public enum Code: String, Sendable, Hashable {
        /// No response: DNS failure, connection refused or reset, the upstream
        /// closed without replying or sent something that is not HTTP.
        case unreachable = "upstream_unreachable"
        /// The connect timeout or the total timeout elapsed.
        case timeout = "upstream_timeout"
        /// The response body is larger than `maxResponseBytes` (announced by
        /// `Content-Length` or counted while receiving). The transfer is aborted.
        case responseTooLarge = "upstream_response_too_large"
        /// TLS handshake or certificate verification failed, or the CA bundle
        /// could not be loaded.
        case tls = "upstream_tls_failed"
        /// The awaiting task was cancelled, or the client was shut down.
        case cancelled = "upstream_cancelled"
        /// The request was refused before sending: not an http(s) URL, a method or
        /// header that is not valid HTTP (e.g. CR/LF in a value).
        case invalidRequest = "upstream_invalid_request"
        /// Anything else (out of memory, an unexpected libcurl error).
        case `internal` = "upstream_internal_error"
    }

    public var code: Code
    public var message: String
    public var curlCode: Int32

    public init(code: Code, message: String, curlCode: Int32 = 0) {
        self.code = code
        self.message = message
        self.curlCode = curlCode
    }

    public var description: String {
        curlCode == 0 ? "\(code.rawValue): \(message)" : "\(code.rawValue): \(message) (curl \(curlCode))"
    }
}

/// Settings of a `CurlUpstreamClient`, fixed for its lifetime.
///
/// Timeouts are rounded to whole milliseconds and are at least 1 ms (libcurl
/// reads 0 as "no timeout", which these options never mean).
public struct CurlClientOptions: Sendable {
    /// Time allowed to resolve and connect (TCP, and the TLS handshake is part of
    /// the total). Maps to `CURLOPT_CONNECTTIMEOUT_MS`.
    public var connectTimeout: Duration
    /// Time allowed for the whole transfer, from hand-over to the curl thread to
    /// the last response byte. Maps to `CURLOPT_TIMEOUT_MS`.
    public var totalTimeout: Duration
    /// Largest response body accepted; larger ones fail with `.responseTooLarge`.
    public var maxResponseBytes: Int
    /// PEM bundle of trusted CAs replacing the system store (e.g. a private test
    /// CA). `nil` uses the system default. Verification is always on.
    public var caBundlePath: String?
    /// Most simultaneous connections to one host (`CURLMOPT_MAX_HOST_CONNECTIONS`);
    /// further transfers wait inside libcurl for a free connection. 0 = no limit.
    public var maxConnectionsPerHost: Int
    /// Log libcurl's informational messages (connects, reuse, TLS) at `.trace`.
    /// Header and data dumps are never logged.
    public var verbose: Bool

    public init(connectTimeout: Duration = .seconds(3),
                totalTimeout: Duration = .seconds(10),
                maxResponseBytes: Int = 8 * 1024 * 1024,
                caBundlePath: String? = nil,
                maxConnectionsPerHost: Int = 32,
                verbose: Bool = false) {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.maxResponseBytes = maxResponseBytes
        self.caBundlePath = caBundlePath
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.verbose = verbose
    }
}

extension Duration {
    /// Whole milliseconds, at least 1, saturating.
    var curlMilliseconds: Int {
        let (seconds, attoseconds) = components
        if seconds >= Int64(Int.max / 1000 - 1) { return Int.max / 2 }
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int(max(1, ms))
    }
}

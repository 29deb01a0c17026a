import BrokerFields
import NIOCore
import NIOHTTP1

/// Checks each request's target and `Host` where the raw HTTP/1 head is still visible
/// (before the conversion to HTTP types, which keeps only the first `Host` and drops an
/// absolute-form target's authority), and refuses what is ambiguous, with problem+json
/// and a closed connection:
///
/// - two `Host` headers: 400 `duplicate_header` (RFC 9112 §3.2);
/// - a `Host` or absolute-form authority that is not a valid `host[:port]`: 400 `invalid_host`;
/// - an absolute-form request (`POST http://host/…`, a forward-proxy request) whose `Host`
///   names another authority: 400 `invalid_host`. Otherwise the target's authority
///   decides (RFC 9112 §3.2.2): it becomes the `Host` the rest of the broker reads;
/// - an absolute-form request for a loopback address or a server name of this broker
///   at another port than the one it listens on: 404 `unknown_provider` (it is a proxy
///   request for a host no adapter serves, never a way into the broker's own API).
final class RequestTargetGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let policy: ActivePolicy
    private let serverNames: Set<String>
    /// True from a refused head to the connection's close: the rest of the request is dropped.
    private var refusing = false

    init(policy: ActivePolicy, serverNames: Set<String>) {
        self.policy = policy
        self.serverNames = serverNames
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        let part = unwrapInboundIn(data)
        guard case .head(var head) = part else {
            context.fireChannelRead(data)
            return
        }
        // The channel's cached address: `context.localAddress` asks the kernel (getsockname) each time.
        switch check(&head, listeningPort: context.channel.localAddress?.port) {
        case .pass:
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .refuse(let status, let code, let detail):
            refusing = true
            refuse(context: context, status: status, code: code, detail: detail)
        }
    }

    enum Verdict: Equatable {
        case pass
        case refuse(status: Int, code: String, detail: String)
    }

    /// The pure check; rewrites `Host` to an absolute-form target's authority.
    /// `listeningPort` is read only for an absolute-form target at a loopback or own name.
    func check(_ head: inout HTTPRequestHead, listeningPort: @autoclosure () -> Int?) -> Verdict {
        let hosts = head.headers["Host"]
        if hosts.count > 1 {
            return .refuse(status: 400, code: "duplicate_header", detail: "the request has more than one Host header")
        }
        if let host = hosts.first, Authority(host) == nil {
            return .refuse(status: 400, code: "invalid_host", detail: "the Host header is not a valid host[:port]")
        }
        guard let (scheme, text) = Self.absoluteForm(head.uri) else { return .pass }
        guard let target = Authority(text) else {
            return .refuse(status: 400, code: "invalid_host", detail: "the request target's authority is not a valid host[:port]")
        }
        let defaultPort = scheme == "https" ? 443 : 80
        if let host = hosts.first, let named = Authority(host), !named.same(as: target, defaultPort: defaultPort) {
            return .refuse(status: 400, code: "invalid_host",
                           detail: "the Host header names another authority than the request target")
        }
        if policy.current.providerByHost[target.host] == nil,
           target.isLoopback || serverNames.contains(target.host),
           let listeningPort = listeningPort(), (target.port ?? defaultPort) != listeningPort {
            return .refuse(status: 404, code: "unknown_provider",
                           detail: "no adapter serves \(target.host.prefix(253)) at that port, and it is not this broker")
        }
        head.headers.replaceOrAdd(name: "Host", value: text)
        return .pass
    }

    /// `("http", authority)` of an absolute-form target (`http://host:port/path`), scheme lowercased.
    static func absoluteForm(_ uri: String) -> (scheme: String, authority: String)? {
        // On the bytes, and over at the first one for an origin-form target (`/v1/proxy/…:send`, a
        // share's usual form), whose colons once cost a lower-cased copy of the whole path per request.
        let bytes = uri.utf8
        guard let first = bytes.first, first != UInt8(ascii: "/"),
              let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = bytes[..<colon]
        guard let scheme = ["http", "https"].first(where: name.equalsIgnoringASCIICase) else { return nil }
        let rest = uri[colon...].dropFirst()
        guard rest.hasPrefix("//") else { return nil }
        let authority = rest.dropFirst(2).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return (scheme, String(authority))
    }

    private func refuse(context: ChannelHandlerContext, status: Int, code: String, detail: String) {
        let body = Problem(status: status, code: code, detail: detail).jsonBody()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/problem+json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// `host[:port]` as RFC 3986 allows it in `Host` and in an authority (no user info): a
/// registered name of letters, digits, `-`, `.` and `_`, an IPv4 address, or an IPv6
/// address in brackets; a port of 1–5 digits.
struct Authority: Equatable {
    /// Lowercased; IPv6 addresses keep their brackets.
    var host: String
    var port: Int?

    /// Checked on the UTF-8 bytes (every request's `Host` comes through here; a `Character` view
    /// and `lowercased()` on every one cost more than the rest of the target checks).
    init?(_ text: String) {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= 261 else { return nil }
        var hostEnd = bytes.endIndex
        var portStart: String.UTF8View.Index?
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            hostEnd = bytes.index(after: close)
            if hostEnd != bytes.endIndex {
                guard bytes[hostEnd] == UInt8(ascii: ":") else { return nil }
                portStart = bytes.index(after: hostEnd)
            }
            let inner = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ Hex.nibble($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return nil }
        } else {
            if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
                hostEnd = colon
                portStart = bytes.index(after: colon)
            }
            let hostBytes = bytes[..<hostEnd]
            guard !hostBytes.isEmpty, hostBytes.count <= 253,
                  hostBytes.allSatisfy({ byte in
                      (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                          || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                          || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                  }) else { return nil }
        }
        if let portStart {
            let digits = bytes[portStart...]
            guard !digits.isEmpty, digits.count <= 5,
                  digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            let port = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard port <= 65_535 else { return nil }
            self.port = port
        }
        let host = String(Substring(bytes[..<hostEnd]))
        self.host = host.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? host.lowercased() : host
    }

    func same(as other: Authority, defaultPort: Int) -> Bool {
        host == other.host && (port ?? defaultPort) == (other.port ?? defaultPort)
    }

    var isLoopback: Bool {
        host == "localhost" || host.hasSuffix(".localhost") || host == "[::1]" || host.hasPrefix("127.")
    }
}

/// An adapter's upstream: scheme, host, port and base path, parsed strictly.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int?
    public var basePath: String

    /// Accepts `http(s)://host[:port][/base]` only: no user info, query or fragment.
    public init?(_ text: String) {
        let scheme: String
        let rest: Substring
        if text.hasPrefix("https://") { scheme = "https"; rest = text.dropFirst(8) }
        else if text.hasPrefix("http://") { scheme = "http"; rest = text.dropFirst(7) }
        else { return nil }
        if rest.contains("@") || rest.contains("?") || rest.contains("#") || rest.contains(" ") { return nil }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var base = String(rest[slash...])
        while base.hasSuffix("/") { base.removeLast() }
        var host = authority
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = authority[..<colon]
        }
        guard !host.isEmpty else { return nil }
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = port
        self.basePath = base
    }

    public var isTLS: Bool { scheme == "https" }

    /// True for 127.0.0.0/8, ::1 and localhost.
    public var isLoopback: Bool {
        host == "localhost" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// `scheme://host[:port]` + base path.
    public var description: String {
        scheme + "://" + host + (port.map { ":\($0)" } ?? "") + basePath
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `users.jwt.jwks.url` may point: `https://` anywhere, `http://` only to this machine.
///
/// The URL is parsed (never matched as a string prefix: `http://127.0.0.1@idp.example.com/` starts
/// with `http://127.0.0.1` and yet names `idp.example.com`, with `127.0.0.1` as its user name), and
/// refused when it carries user information at all, a fragment, or characters that parsers read
/// differently (a backslash, blanks, control characters). Over `http://` the host must be
/// `localhost`, an address in 127.0.0.0/8 written as four decimal numbers, or `::1`.
public enum JWKSURLRule {
    /// Why `text` may not be the JWKS URL, or nil when it may.
    public static func problem(_ text: String) -> String? {
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\\" }) else {
            return "url must be plain ASCII without blanks or backslashes"
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "https" || scheme == "http" else {
            return "url must be https:// (or http:// on loopback)"
        }
        // The authority as written: between "//" and the first "/", "?" or "#".
        let afterScheme = text.dropFirst(scheme.count + 1)
        guard afterScheme.hasPrefix("//") else { return "url must be https:// (or http:// on loopback)" }
        let authority = afterScheme.dropFirst(2).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard components.user == nil, components.password == nil, !authority.contains("@") else {
            return "url must not carry a user name or password (user@host)"
        }
        guard components.fragment == nil else { return "url must not have a fragment (#…)" }
        guard let rawHost = components.host, !rawHost.isEmpty else { return "url has no host" }
        if scheme == "https" { return nil }
        let host = rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
        guard isLoopback(host) else {
            return "url must be https:// (or http:// on loopback: localhost, 127.0.0.0/8, ::1), not http:// to \(host.prefix(64))"
        }
        return nil
    }

    /// `localhost`, 127.0.0.0/8 as four decimal numbers (no `127.1`, no octal), or `::1` in any spelling.
    static func isLoopback(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber)
                                                && ($0.count == 1 || $0.first != "0") && Int($0).map { $0 <= 255 } == true }) {
            return parts[0] == "127"
        }
        guard host.contains(":"), !host.contains("%") else { return false }
        var address = in6_addr()
        guard inet_pton(AF_INET6, host, &address) == 1 else { return false }
        return withUnsafeBytes(of: &address) { bytes in bytes.dropLast().allSatisfy { $0 == 0 } && bytes.last == 1 }
    }
}

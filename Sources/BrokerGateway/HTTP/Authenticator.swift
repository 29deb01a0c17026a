import BrokerFields
import BrokerCore
@preconcurrency import Crypto
import Foundation

/// Maps a presented bearer token to the configured client.
///
/// Only SHA-256 digests of tokens are kept in memory; lookup hashes the presented
/// token and compares digests, so neither timing nor a memory dump gives a token away.
public struct Authenticator: Sendable {
    private let callers: [String: Caller]
    /// The clients that client certificates name (`clients[].mtls`).
    public let certificates: ClientCertificates

    /// `tokens` maps the hex SHA-256 of each client's token to that client.
    public init(tokenDigests: [String: Caller], certificates: ClientCertificates = ClientCertificates()) {
        self.callers = tokenDigests
        self.certificates = certificates
    }

    public static func digest(_ token: String) -> String {
        var token = token
        return token.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }.withUnsafeBytes { Hex.encode($0) }
    }

    public func caller(forToken token: String) -> Caller? {
        guard !token.isEmpty else { return nil }
        return callers[Self.digest(token)]
    }

    /// `Authorization: Bearer <token>`; without the header, the client the connection itself
    /// identifies (a client certificate, a client's own listener: `ConnectionIdentity`).
    public func caller(authorization: String?) -> Caller? {
        guard let value = authorization else { return ConnectionIdentity.current?.caller }
        guard let token = Self.bearer(value) else { return nil }
        return caller(forToken: token)
    }

    /// Who a `Proxy-Authorization` value authenticates, and the subject its user name names.
    public struct ProxyCredential: Sendable, Equatable {
        public var caller: Caller
        /// `subject=` in a Basic user name (`client;subject=u-1001`): the default `X-Share-Subject`
        /// of the requests so authenticated, for SDKs that cannot add a header but take a proxy URL.
        public var subject: String?
    }

    /// `Proxy-Authorization: Bearer <token>`, or `Basic base64(client:token)` as `curl -x … -U client:token`
    /// and a proxy URL `http://client:token@broker:8080` send. The user name may carry parameters after
    /// the client id, `;subject=ID`; an unknown parameter, or a client id that is not the token's, fails.
    public func proxyCredential(_ value: String?) -> ProxyCredential? {
        guard let value else { return nil }
        if let token = Self.bearer(value) { return caller(forToken: token).map { ProxyCredential(caller: $0, subject: nil) } }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        var user = text[..<colon].split(separator: ";", omittingEmptySubsequences: false)
        let client = user.isEmpty ? "" : String(user.removeFirst())
        var subject: String?
        for parameter in user {
            guard parameter.hasPrefix("subject="), subject == nil else { return nil }
            subject = String(parameter.dropFirst("subject=".count))
            if subject?.isEmpty ?? true { return nil }
        }
        let token = String(text[text.index(after: colon)...])
        guard let caller = caller(forToken: token), client.isEmpty || client == caller.id else { return nil }
        return ProxyCredential(caller: caller, subject: subject)
    }

    public func caller(proxyAuthorization: String?) -> Caller? {
        proxyCredential(proxyAuthorization)?.caller
    }

    /// The token of `Bearer <token>` (scheme case-insensitive, blanks around the token ignored).
    static func bearer(_ value: String) -> String? {
        let bytes = value.utf8
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return nil }
        let scheme = bytes[..<space]
        guard scheme.equalsIgnoringASCIICase("bearer") else { return nil }
        func blank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var token = bytes[bytes.index(after: space)...]
        while let first = token.first, blank(first) { token = token.dropFirst() }
        while let last = token.last, blank(last) { token = token.dropLast() }
        return String(Substring(token))
    }
}

/// One connection's last credential header and what it authenticated. A keep-alive connection sends
/// the same header on every request, so the token's digest (SHA-256, hex, a dictionary lookup: ~7k
/// instructions) is taken once per connection and header instead of once per request. The clients
/// do not change while the broker runs, so a remembered answer (a refusal too) stays right; and a
/// header is only ever compared with the same connection's own previous one.
struct CredentialMemo {
    /// Which header the value came from, so `Authorization: X` is never taken for `Proxy-Authorization: X`.
    enum Source: Equatable { case proxyAuthorization, authorization }
    private var last: (source: Source, value: String, credential: Authenticator.ProxyCredential?)?

    /// `value`'s credential: remembered when it is the connection's previous header, else `resolve`'s.
    mutating func credential(_ source: Source, _ value: String,
                             resolve: (String) -> Authenticator.ProxyCredential?) -> Authenticator.ProxyCredential? {
        if let last, last.source == source, last.value == value { return last.credential }
        let credential = resolve(value)
        last = (source, value, credential)
        return credential
    }
}


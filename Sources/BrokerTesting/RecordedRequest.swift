import Foundation

/// One HTTP header as a simulator received it: the name keeps the case the client
/// sent, the value is unmodified.
public struct RecordedHeader: Sendable, Hashable {
    public let name: String
    public let value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One HTTP request exactly as a provider simulator received it on the wire.
///
/// Tests use it to prove what did, and what did not, reach a provider: a stripped
/// or blocked field must not appear in `body`, `query` or `headers`. `path` is the
/// raw request path without the query; `query` is the raw query string (no `?`),
/// `nil` when the request line had none. `headers` are in the order received and
/// include `Host` (HTTP/1.1 carries it as a header; the server exposes it as the
/// authority).
public struct RecordedRequest: Sendable {
    public let method: String
    public let path: String
    public let query: String?
    public let headers: [RecordedHeader]
    public let body: [UInt8]
    public let time: Date

    public init(method: String, path: String, query: String?, headers: [RecordedHeader], body: [UInt8], time: Date) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.time = time
    }

    /// The first value of a header, compared case-insensitively by name.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The body decoded as UTF-8 (invalid sequences replaced).
    public var bodyText: String {
        String(decoding: self.body, as: UTF8.self)
    }

    /// The decoded query parameters in order (`+` is a space, `%XX` decoded);
    /// empty when the query is absent or malformed.
    public var queryParameters: [(name: String, value: String)] {
        guard let query else { return [] }
        return (try? FormEncoding.parse(query).map { ($0.name, $0.value) }) ?? []
    }

    /// The first value of a query parameter, decoded.
    public func queryParameter(_ name: String) -> String? {
        self.queryParameters.first { $0.name == name }?.value
    }

    /// The first value of a form-encoded body parameter, decoded; `nil` when the
    /// body is not a valid form or lacks the parameter.
    public func formParameter(_ name: String) -> String? {
        (try? FormEncoding.parse(self.bodyText))?.first { $0.name == name }?.value
    }

    /// `true` when the exact byte sequence of `text` (UTF-8) occurs anywhere in the
    /// request: path, query, header values or body. Use it to prove a value never
    /// reached the provider.
    public func contains(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        if needle.isEmpty { return true }
        if self.path.contains(text) || (self.query?.contains(text) ?? false) { return true }
        if self.headers.contains(where: { $0.value.contains(text) }) { return true }
        return Self.bytes(self.body, contain: needle)
    }

    private static func bytes(_ haystack: [UInt8], contain needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        var start = 0
        while start + needle.count <= haystack.count {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
            start += 1
        }
        return false
    }
}

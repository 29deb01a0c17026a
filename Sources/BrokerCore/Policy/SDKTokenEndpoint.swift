/// `token_endpoints:` on an adapter: where the provider's own SDKs sign themselves in before a
/// data call (firebase-admin with a service-account file fetches an OAuth token from
/// `oauth2.googleapis.com/token` first). The broker holds the provider's real credentials and
/// injects them on the data calls, so such a call is the broker's to answer: with a placeholder
/// token of the shape the SDK expects, never forwarded, never a share about anyone.
///
/// ```yaml
/// token_endpoints:
///   - url: https://oauth2.googleapis.com/token
///     method: POST
///     match_form: { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer" }
///     answer: oauth2_bearer
/// ```
///
/// A call matches by host, method, path and every `match_form` parameter (present exactly once in a
/// form body, with that value). The host may be another adapter's (one OAuth host can serve an SDK's
/// sign-in and a login provider's code exchange): a call that matches no token endpoint goes to the host's
/// adapter as any other call, and is refused there when it matches none of its operations.
public struct SDKTokenEndpoint: Sendable {
    /// The answer's shape.
    public enum Answer: String, Sendable, CaseIterable {
        /// RFC 6749 §5.1: `{"access_token": …, "expires_in": 3599, "token_type": "Bearer"}`.
        case oauth2Bearer = "oauth2_bearer"
    }

    public var provider: String
    public var host: String
    public var port: Int
    public var method: String
    public var path: String
    public var matchForm: [(name: String, value: String)]
    public var answer: Answer
    public var line: Int

    /// Whether a request of this method and path (the body aside) can be this endpoint's call.
    public func matches(method: String, path: String) -> Bool {
        method == self.method && path == self.path
    }

    /// Whether the form body selects this endpoint: each `match_form` parameter exactly once, with its value.
    public func matches(formBody body: [UInt8], contentType: String?) -> Bool {
        guard let contentType, contentType.lowercased().hasPrefix("application/x-www-form-urlencoded") else { return false }
        let text = String(decoding: body, as: UTF8.self)
        return matchForm.allSatisfy { PolicyEngine.queryValues(text, named: $0.name) == [$0.value] }
    }

    static func decode(_ node: YAMLNode, provider: String) -> [SDKTokenEndpoint] {
        var endpoints: [SDKTokenEndpoint] = []
        for (index, item) in (node.sequence("token_endpoints") ?? []).enumerated() {
            let what = "token_endpoints[\(index)]"
            guard let object = item.object(what, required: ["url", "answer"], optional: ["method", "match_form"]) else { continue }
            guard let urlNode = object["url"], let text = urlNode.string(what + ": url") else { continue }
            guard let url = UpstreamURL(text), url.isTLS else {
                urlNode.error("\(what): url must be https://host[:port]/path, not '\(text)'")
                continue
            }
            let method = object["method"]?.string(what + ": method")?.uppercased() ?? "POST"
            guard method == "POST" else {
                object["method"]?.error("\(what): method must be POST (a token request), not '\(method)'")
                continue
            }
            guard let answerText = object["answer"]?.string(what + ": answer") else { continue }
            guard let answer = Answer(rawValue: answerText) else {
                object["answer"]?.error("\(what): answer must be \(Answer.allCases.map(\.rawValue).joined(separator: " or ")), not '\(answerText)'")
                continue
            }
            var matchForm: [(name: String, value: String)] = []
            for pair in object["match_form"]?.mapping(what + ": match_form") ?? [] {
                if let value = pair.value.string("\(what): match_form: \(pair.key)") { matchForm.append((pair.key, value)) }
            }
            if matchForm.isEmpty {
                item.error("\(what): needs match_form (the form parameters that tell the SDK's own sign-in from a user's)")
                continue
            }
            endpoints.append(SDKTokenEndpoint(provider: provider, host: url.host, port: url.port ?? 443, method: method,
                                              path: url.basePath.isEmpty ? "/" : url.basePath, matchForm: matchForm,
                                              answer: answer, line: item.line))
        }
        return endpoints
    }
}

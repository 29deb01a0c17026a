import BrokerCore
import BrokerFields
import BrokerCurl
import BrokerService
import Foundation
import HTTPTypes

/// The share path's HTTP edge, framework-neutral (swift-http-types in, response head and body
/// bytes out): which requests are shares, who the caller is, the request turned into a
/// `ShareRequest` and the pipeline's result into an answer. `ShareChannelHandler` drives it on the
/// event loop for proxy traffic; `POST /v1/decisions` uses it from the router.
struct ShareEdge: Sendable {
    let pipeline: SharePipeline
    let authenticator: Authenticator
    let settings: GatewaySettings
    /// Refusals that name no share, rendered once (see `RenderedProblems`).
    let problems = RenderedProblems()

    /// A share request's form, decided from its head alone.
    enum Route {
        /// `ANY /v1/proxy/{provider}/{path…}`: the caller in `Proxy-Authorization`, else `Authorization`.
        case pathForm(provider: String, path: String, query: String?)
        /// An absolute-form request (or one inside a CONNECT tunnel) for an adapter's host, with the SDK
        /// token endpoints there whose method and path it has (its body decides whether it is their call).
        case forwardProxy(provider: String, path: String, query: String?, tokenEndpoints: [SDKTokenEndpoint])
        /// `/v1/proxy/…` with a method no share takes: 405.
        case methodNotAllowed
    }

    /// The methods a path-form share takes.
    static let pathFormMethods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .head, .options]
    static let pathFormPrefix = "/v1/proxy/"

    /// The route of a request, or `nil` for the router (the broker's own API, pages and health).
    func route(_ head: HTTPRequest) -> Route? {
        let target = head.path ?? "/"
        let (path, query) = Self.split(target)
        if let host = Self.hostName(head.authority) {
            let revision = pipeline.policy.current
            // The host's adapter; a host that only an SDK token endpoint names goes to that endpoint's
            // adapter, which refuses any call that is not the token call (no operation matches it).
            if let provider = revision.providerByHost[host] ?? revision.tokenEndpointsByHost[host]?.first?.provider {
                return .forwardProxy(provider: provider, path: path, query: query,
                                     tokenEndpoints: (revision.tokenEndpointsByHost[host] ?? []).filter {
                                         $0.matches(method: head.method.rawValue, path: path)
                                     })
            }
        }
        guard path.hasPrefix(Self.pathFormPrefix) else { return nil }
        let rest = path.utf8.dropFirst(Self.pathFormPrefix.utf8.count)
        let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        guard end > rest.startIndex else { return nil }   // `/v1/proxy/` names no provider: the router's 404
        guard Self.pathFormMethods.contains(head.method) else { return .methodNotAllowed }
        let provider = String(Substring(rest[rest.startIndex..<end]))
        let providerPath = String(Substring(rest[end...]))
        return .pathForm(provider: provider, path: providerPath.isEmpty ? "/" : providerPath, query: query)
    }

    /// A share whose head has been checked: what the pipeline needs besides the body.
    struct Pending: Sendable {
        var caller: Caller?
        var provider: String
        var method: HTTPRequest.Method
        var path: String
        var query: String?
        var headers: [HeaderField]
        var contentType: String?
        var subject: String?
        var purpose: String?
        /// SDK token endpoints this request may be the call of, once its body is read.
        var tokenEndpoints: [SDKTokenEndpoint] = []
        /// The caller's step of the decision needs no body: a request that fails it is decided
        /// without reading one (and its connection closes with the body unread).
        var readsBody: Bool {
            guard let caller else { return false }
            return caller.mayShare(with: provider) || tokenEndpoints.contains { caller.mayShare(with: $0.provider) }
        }
    }

    /// What a share's head leads to: an answer now (407, 400, 405), or a share to run.
    enum Start {
        case answer((HTTPResponse, [UInt8]))
        case share(Pending)
    }

    /// `credentials`: the connection's memo of its last credential header (see `CredentialMemo`);
    /// `connection`: the client the connection itself identifies, which stands in when the request
    /// sends no credentials (`ConnectionIdentity`).
    func start(_ head: HTTPRequest, route: Route, credentials: inout CredentialMemo, connection: Caller? = nil) -> Start {
        // One pass over the fields copies them for the pipeline and picks out the few the edge reads
        // (`HTTPFields`' subscript by name scans and compares every field: ~3 k instructions a lookup).
        var headers: [HeaderField] = []
        headers.reserveCapacity(head.headerFields.count)
        var read = EdgeHeaders()
        for field in head.headerFields {
            headers.append(HeaderField(field.name.canonicalName, field.value))
            read.note(field)
        }
        let caller: Caller?, credentialSubject: String?, provider: String, path: String, query: String?
        var tokenEndpoints: [SDKTokenEndpoint] = []
        switch route {
        case .methodNotAllowed:
            var (response, body) = Problem(status: 405, code: "method_not_allowed",
                                           detail: "\(head.method.rawValue) is not allowed here; allowed: \(Self.allowed)").answer()
            response.headerFields[.allow] = Self.allowed
            return .answer((response, body))
        case .forwardProxy(let name, let providerPath, let providerQuery, let endpoints):
            // A proxy asks for proxy credentials with 407 and Proxy-Authenticate, whether they are
            // missing or wrong (as a tunnel's CONNECT does), so a client's proxy support retries with them.
            let sent = read.value(\.proxyAuthorization)
            guard let credential = sent.map({ value in
                      credentials.credential(.proxyAuthorization, value, resolve: { authenticator.proxyCredential($0) })
                  }) ?? connection.map({ Authenticator.ProxyCredential(caller: $0, subject: nil) }) else {
                let detail = read.proxyAuthorization.isEmpty
                    ? "the broker needs Proxy-Authorization: Bearer <token> (or curl -U client:token)"
                    : "the proxy credentials are not valid"
                let problem = Problem(status: 407, code: "unauthenticated", detail: detail)
                // Not a share record (anyone could fill the log), but counted and logged like a path-form refusal.
                pipeline.metrics.record(.refused(problem, decision: nil), provider: name, channel: .proxy)
                pipeline.unloggedRefusals.notice(pipeline.logger) { folded in
                    pipeline.logger.notice("share refused before logging", metadata: [
                        "share.provider": .string(name), "share.channel": "proxy", "share.code": "unauthenticated",
                        "refusals.folded": "\(folded)",
                    ])
                }
                var (response, body) = problem.answer()
                response.headerFields[.proxyAuthenticate] = "Basic realm=\"sharebroker\""
                return .answer((response, body))
            }
            (caller, credentialSubject, provider, path, query) = (credential.caller, credential.subject, name, providerPath, providerQuery)
            tokenEndpoints = endpoints
        case .pathForm(let name, let providerPath, let providerQuery):
            (caller, credentialSubject) = Self.pathFormCaller(proxyAuthorization: read.value(\.proxyAuthorization),
                                                              authorization: read.value(\.authorization), authenticator,
                                                              memo: &credentials, connection: connection)
            (provider, path, query) = (name, providerPath, providerQuery)
        }
        // The subject and purpose decide the whole share: a second value is refused, never joined or picked.
        for (name, values) in [(HTTPField.Name.shareSubject, read.subject), (.sharePurpose, read.purpose)] where values.count > 1 {
            return .answer(Problem(status: 400, code: "duplicate_header",
                                   detail: "\(name.canonicalName) is sent more than once; send it once").answer())
        }
        let subject = read.subject.first ?? credentialSubject
        if let credentialSubject, subject != credentialSubject {
            return .answer(Problem(status: 400, code: "subject_mismatch",
                                   detail: "X-Share-Subject names another subject than the proxy credentials' subject=").answer())
        }
        return .share(Pending(caller: caller, provider: provider, method: head.method, path: path, query: query,
                              headers: headers, contentType: read.value(\.contentType), subject: subject,
                              purpose: read.purpose.first, tokenEndpoints: tokenEndpoints))
    }

    /// The values of the fields the edge reads, gathered in one pass.
    private struct EdgeHeaders {
        var authorization: [String] = [], proxyAuthorization: [String] = [], contentType: [String] = []
        var subject: [String] = [], purpose: [String] = []

        mutating func note(_ field: HTTPField) {
            switch field.name {
            case .authorization: authorization.append(field.value)
            case .proxyAuthorization: proxyAuthorization.append(field.value)
            case .contentType: contentType.append(field.value)
            case .shareSubject: subject.append(field.value)
            case .sharePurpose: purpose.append(field.value)
            default: break
            }
        }

        /// As `HTTPFields` reads a field sent more than once: the values joined with ", ".
        func value(_ field: KeyPath<EdgeHeaders, [String]>) -> String? {
            let values = self[keyPath: field]
            return values.count < 2 ? values.first : values.joined(separator: ", ")
        }
    }

    /// The answer to a share refused before logging (no valid caller, no such provider), decided
    /// in place without a task; `nil` when the share needs the pipeline's asynchronous steps.
    func refusedBeforeLogging(_ pending: Pending) -> (HTTPResponse, [UInt8])? {
        guard pending.tokenEndpoints.isEmpty else { return nil }   // its body may make it a token call
        return pipeline.refusedBeforeLogging(shareRequest(pending, body: []), channel: .proxy).map { answer($0, request: pending.headers) }
    }

    /// Runs a share whose body has been read (at most `bodyLimit` bytes: one more than allowed, so
    /// the policy engine reports `body_too_large` in its order).
    func run(_ pending: Pending, body: [UInt8]) async -> (HTTPResponse, [UInt8]) {
        if let endpoint = pending.tokenEndpoints.first(where: { $0.matches(formBody: body, contentType: pending.contentType) }),
           let caller = pending.caller, caller.mayShare(with: endpoint.provider) {
            return sdkTokenAnswer(endpoint, caller: caller)
        }
        return answer(await pipeline.share(shareRequest(pending, body: body), channel: .proxy), request: pending.headers)
    }

    /// The answer to an SDK's own sign-in at its provider's token endpoint: a placeholder token of
    /// the shape the SDK reads, never forwarded and never a share record (it is about no end user).
    /// The SDK then sends it on its data calls, where the broker drops it and injects the real
    /// credentials. Counted in `sharebroker_sdk_tokens_total`.
    private func sdkTokenAnswer(_ endpoint: SDKTokenEndpoint, caller: Caller) -> (HTTPResponse, [UInt8]) {
        pipeline.metrics.sdkToken(provider: endpoint.provider)
        pipeline.logger.debug("SDK token call answered", metadata: ["share.provider": .string(endpoint.provider),
                                                                 "caller": .string(caller.id)])
        var random = [UInt8](repeating: 0, count: 24)
        random.withUnsafeMutableBytes { RandomBytes.fill($0) }
        var body: [UInt8] = []
        switch endpoint.answer {
        case .oauth2Bearer:
            Problem.Member.write(object: [("access_token", .string("sharebroker-placeholder." + Hex.encode(random))),
                                          ("expires_in", .int(3599)), ("token_type", .string("Bearer"))], to: &body)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return (HTTPResponse(status: .ok, headerFields: headers), body)
    }

    private func shareRequest(_ pending: Pending, body: [UInt8]) -> ShareRequest {
        ShareRequest(caller: pending.caller, provider: pending.provider,
                     target: .http(method: pending.method.rawValue, path: pending.path, query: pending.query),
                     headers: pending.headers, contentType: pending.contentType, body: body,
                     subject: pending.subject, purpose: pending.purpose, time: Date())
    }

    /// The most of a body the edge reads.
    var bodyLimit: Int { settings.maxBodyBytes + 1 }

    /// A pipeline result as an HTTP answer; a refusal echoes the `request` headers its provider's errors echo.
    func answer(_ result: ShareResult, request: [HeaderField] = []) -> (HTTPResponse, [UInt8]) {
        switch result {
        case .forwarded(let upstream, let shareID, let decision):
            var headers = HTTPFields()
            headers.reserveCapacity(upstream.headers.count + 2)
            for line in upstream.headers {
                if Self.isDroppedResponseHeader(line.name) { continue }
                guard let fieldName = HTTPField.Name(line.name) else { continue }
                headers.append(HTTPField(name: fieldName, value: line.value))
            }
            // Appended, not set: the provider's own `X-Share-*` fields are among the dropped, and a set scans every field.
            headers.append(HTTPField(name: .shareID, value: shareID))
            headers.append(HTTPField(name: .shareDecision, value: decision.verdict.rawValue))
            return (HTTPResponse(status: .init(code: upstream.status), headerFields: headers), upstream.body)
        case .decided(let shareID, let decision, let payload):
            return SDKDecisionResponse.answer(shareID: shareID, decision: decision, payload: payload)
        case .refused(var problem, let decision):
            let shape = decision.flatMap { pipeline.bundle.adapters[$0.provider]?.refusals }
            if let member = shape?.codeMember { problem.extra[member] = .string(problem.code) }
            var (response, body) = problems.answer(problem)
            for name in shape?.echoHeaders ?? [] {
                if let field = HTTPField.Name(name), let value = request.first(where: { $0.name.lowercased() == name })?.value {
                    response.headerFields[field] = value
                }
            }
            if let decision, decision.verdict == .blocked { response.headerFields[.shareDecision] = "blocked" }
            return (response, body)
        }
    }

    /// The caller of a path-form share: `Proxy-Authorization` when the request has one, else
    /// `Authorization`. An SDK that signs its requests into `Authorization` authenticates to the
    /// broker with `Proxy-Authorization`; its own `Authorization` is the provider's, dropped and
    /// re-signed as always. On a connection that identifies its client (`connection`), that client
    /// stands in for `Authorization`, which is then the provider's.
    static func pathFormCaller(proxyAuthorization: String?, authorization: String?,
                               _ authenticator: Authenticator, memo: inout CredentialMemo,
                               connection: Caller? = nil) -> (Caller?, String?) {
        if let proxyAuthorization {
            let credential = memo.credential(.proxyAuthorization, proxyAuthorization, resolve: { authenticator.proxyCredential($0) })
            return (credential?.caller, credential?.subject)
        }
        if let connection { return (connection, nil) }
        guard let authorization else { return (nil, nil) }
        let credential = memo.credential(.authorization, authorization) { value in
            authenticator.caller(authorization: value).map { Authenticator.ProxyCredential(caller: $0, subject: nil) }
        }
        return (credential?.caller, nil)
    }

    /// Why the connection's own client (a client certificate, a client's own listener) may not stand
    /// in for `head`, which sends no credentials; nil when it may. Never for a browser, which marks its
    /// requests with `Origin` or `Sec-Fetch-Site`: a page could otherwise make a sidecar port act for
    /// its client (cross-site requests, or its own name rebound to 127.0.0.1). And only under a name
    /// this broker answers to or an adapter's host: a rebound name is neither.
    func connectionIdentityRefusal(_ head: HTTPRequest) -> Problem? {
        if head.headerFields[.origin] != nil || head.headerFields[HTTPField.Name("Sec-Fetch-Site")!] != nil {
            return Problem(status: 403, code: "caller_not_permitted",
                           detail: "a browser's request cannot act as the connection's client: send credentials")
        }
        guard let host = Self.hostName(head.authority) else { return nil }
        let revision = pipeline.policy.current
        if settings.serverNames.contains(host) || revision.providerByHost[host] != nil || revision.tokenEndpointsByHost[host] != nil
            || head.authority.flatMap(Authority.init)?.isLoopback == true {
            return nil
        }
        return Problem(status: 421, code: "misdirected_request",
                       detail: "\(host.prefix(253)) is not a name of this broker or an adapter's host")
    }

    /// `Host` without its port, lowercased; `[::1]:8080` → `[::1]`.
    static func hostName(_ authority: String?) -> String? {
        guard let authority, !authority.isEmpty else { return nil }
        // On the UTF-8 view: `Character`-wise searches of a `Substring` cost a grapheme break check per byte.
        var host = Substring(authority).utf8
        if host.first == UInt8(ascii: "[") {
            if let close = host.firstIndex(of: UInt8(ascii: "]")) { host = host[...close] }
        } else if let colon = host.lastIndex(of: UInt8(ascii: ":")) {
            host = host[..<colon]
        }
        // Most hosts arrive in lower case: `lowercased()` (Unicode-aware, a new string) only when needed.
        return host.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") || $0 >= 0x80 })
            ? Substring(host).lowercased() : String(Substring(host))
    }

    /// `/a/b?x=1` → (`/a/b`, `x=1`); no `?` → no query.
    static func split(_ target: String) -> (path: String, query: String?) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target, nil) }
        return (String(Substring(target.utf8[..<mark])), String(Substring(target.utf8[target.utf8.index(after: mark)...])))
    }

    static let allowed = pathFormMethods.map(\.rawValue).sorted().joined(separator: ", ")

    /// Hop-by-hop and framing headers of the provider's response are the broker's own business.
    static let droppedResponseHeaders: [String] = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
        "content-length", "set-cookie", "set-cookie2", "x-share-id", "x-share-decision",
    ]

    /// Whether a provider's response field is one of `droppedResponseHeaders`, compared without case on
    /// the bytes (a lower-cased copy and a set lookup per field cost ~1k each; most names differ in length).
    static func isDroppedResponseHeader(_ name: String) -> Bool {
        droppedResponseHeaders.contains { name.utf8.equalsIgnoringASCIICase($0) }
    }
}

import BrokerCore
import BrokerCredentials
@preconcurrency import Crypto
import BrokerPayload
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// The gateway's HTTP surface: forward proxy, path-form proxy, SDK decisions,
/// subjects and grants, health. Built from its dependencies, no globals, so tests
/// build the real thing on port 0.
public struct Gateway: Sendable {
    public let pipeline: SharePipeline
    public let grants: any GrantStore
    public let authenticator: Authenticator
    public let settings: GatewaySettings
    /// Revokes grants; `nil` where the store has no revocation support.
    public let revocations: (any RevocationStore)?
    /// Carries revocations to providers; told when a revoke creates work.
    public let revocationWorker: RevocationWorker?
    /// End users' JWTs; `nil` when `users.jwt` is not configured.
    public let users: UserTokenVerifier?
    /// Checkpoints and verification of the log, and the checkpoints' public key.
    public let audit: (any LogAudit)?
    public let checkpointKey: Curve25519.Signing.PublicKey?
    /// The compliance reads of the share log; `nil` leaves the compliance API out.
    public let queries: (any ShareQueries)?
    /// Loads the policy again (`POST /v1/admin/policy/reload`); nil leaves that route out.
    public let reloader: PolicyReloader?
    /// The share log's write path as `/metrics` shows it (queued writes); nil when the store tells nothing.
    public let shareLogMetrics: (any ShareLogMetrics)?
    /// `/readyz`: true when the store answers and the policy is loaded.
    public let ready: @Sendable () async -> Bool
    /// `/readyz`: what `serve` found at start (no client can authenticate; demo-looking secrets).
    public let startup: StartupReadiness
    /// The request-body bytes all connections have in flight, against `settings.maxInflightBodyBytes`.
    public let bodyBudget: InflightBodyBudget
    let now: @Sendable () -> Date

    public init(pipeline: SharePipeline, grants: any GrantStore, authenticator: Authenticator, settings: GatewaySettings,
                revocations: (any RevocationStore)? = nil, revocationWorker: RevocationWorker? = nil,
                queries: (any ShareQueries)? = nil, users: UserTokenVerifier? = nil,
                reloader: PolicyReloader? = nil, shareLogMetrics: (any ShareLogMetrics)? = nil,
                audit: (any LogAudit)? = nil, checkpointKey: Curve25519.Signing.PublicKey? = nil,
                now: @escaping @Sendable () -> Date = Date.init, ready: @escaping @Sendable () async -> Bool = { true },
                startup: StartupReadiness = StartupReadiness()) {
        self.pipeline = pipeline; self.grants = grants; self.authenticator = authenticator; self.settings = settings
        self.revocations = revocations; self.revocationWorker = revocationWorker
        self.reloader = reloader; self.shareLogMetrics = shareLogMetrics; self.queries = queries; self.users = users
        self.audit = audit; self.checkpointKey = checkpointKey
        self.now = now; self.ready = ready; self.startup = startup
        self.bodyBudget = InflightBodyBudget(limit: settings.maxInflightBodyBytes)
    }

    public func router() -> Router<BrokerRequestContext> {
        let router = Router(context: BrokerRequestContext.self)
        let routeTable = RouteTable()
        let edge = ShareEdge(pipeline: pipeline, authenticator: authenticator, settings: settings)
        router.addMiddleware {
            ProblemMiddleware(routes: routeTable)
            ForwardProxyMiddleware(pipeline: pipeline, settings: settings)
        }

        router.get("/healthz") { _, _ in SubjectsController.json(["status": "ok"]) }
        // This API's OpenAPI 3.1 description (openapi.yaml in the repository), public like the CA certificate.
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml", .cacheControl: "no-cache"],
                     body: .init(byteBuffer: ByteBuffer(bytes: Self.openAPIDocument)))
        }
        // The interception CA's certificate: public (clients add it to their trust store), so no auth.
        let caPEM = try? settings.tunnels.certificates?.ca.certificatePEM
        router.get("/v1/tls/ca.pem") { _, _ in
            guard let caPEM else {
                throw Problem(status: 404, code: "tls_interception_off", detail: "TLS interception is off (tls_interception.enabled: false)")
            }
            return Response(status: .ok, headers: [.contentType: "application/x-pem-file"],
                            body: .init(byteBuffer: ByteBuffer(string: caPEM)))
        }
        let policy = pipeline.policy
        let startup = startup
        // Not ready when the store does not answer, or when serve found at start that no client can
        // authenticate (StartupReadiness); the problem's detail says why, one reason after another.
        router.get("/readyz") { _, _ in
            let revision = policy.current.id
            let reasons = (await ready() ? [] : ["the share log is not writable"]) + startup.reasons
            guard reasons.isEmpty else {
                var problem = Problem(status: 503, code: "not_ready", detail: reasons.joined(separator: "; "))
                problem.extra = ["policy_revision": .string(revision)]
                return problem.response()
            }
            var body: [String: Any] = ["status": "ready", "policy_revision": revision]
            if !startup.warnings.isEmpty { body["warnings"] = startup.warnings }
            return SubjectsController.json(body)
        }
        OperationsController(pipeline: pipeline, authenticator: authenticator, access: settings.metricsAccess,
                             reloader: reloader, shareLog: shareLogMetrics, revocations: revocations,
                             disclosed: queries as? any DisclosedTrafficSource, now: now)
            .register(on: router)

        // The share routes (path form `ANY /v1/proxy/{provider}/{path…}`, and forward-proxy requests for an
        // adapter's host) never reach this router: `ShareChannelHandler` answers them on the event loop.
        // Only their methods are listed here, so a wrong method on another path is told apart from a 404.
        router.post("/v1/decisions") { request, _ in
            try await SDKDecisions(pipeline: pipeline, authenticator: authenticator, settings: settings, edge: edge)
                .decide(request)
        }

        var subjects = SubjectsController(grants: grants, authenticator: authenticator, policy: policy,
                                          fingerprinter: pipeline.fingerprinter, users: users, now: now)
        subjects.minorAge = policy.current.engine.minorAge
        subjects.logger = pipeline.logger
        var revoker: Revoker?
        if let revocations, let cache = grants as? SubjectContextCache {
            revoker = Revoker(store: revocations, cache: cache, policy: policy, worker: revocationWorker, now: now)
            subjects.revoker = revoker
        }
        subjects.register(on: router)
        PrivacyCenterController(policy: policy, homeRegion: settings.homeRegion,
                                frameAncestors: settings.privacyFrameAncestors).register(on: router)
        if let queries {
            ComplianceController(queries: queries, subjects: subjects, fingerprinter: pipeline.fingerprinter, audit: audit,
                                 publicKey: checkpointKey).register(on: router)
        }
        ShadowReportController(policy: policy, subjects: subjects, node: pipeline.node).register(on: router)
        if let revocations, let revoker {
            let controller = RevocationsController(store: revocations, revoker: revoker, subjects: subjects)
            controller.register(on: router)
            CancellationsController(revocations: controller, policy: policy,
                                    fingerprinter: pipeline.fingerprinter, logger: pipeline.logger)
                .register(on: router)
        }
        routeTable.load(router.routes.map { ("\($0.path)", $0.method.rawValue) }
                        + ShareEdge.pathFormMethods.map { ("/v1/proxy/:provider/**", $0.rawValue) })
        return router
    }

    /// Every route this gateway serves as (method, path pattern): the router's, and the share path's
    /// (`/v1/proxy/:provider` and `/v1/proxy/:provider/**`), which `ShareChannelHandler` answers.
    public func routes() -> [(method: String, path: String)] {
        router().routes.map { ($0.method.rawValue, "\($0.path)") }
            + ShareEdge.pathFormMethods.flatMap { [($0.rawValue, "/v1/proxy/:provider"), ($0.rawValue, "/v1/proxy/:provider/**")] }
    }

    /// `openapi.yaml`, bundled with the binary.
    static let openAPIDocument: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let data = FileManager.default.contents(atPath: url.path) else { return Array("openapi: 3.1.0\n".utf8) }
        return Array(data)
    }()

    /// The Hummingbird application on `host:port` (port 0 picks a free port, reported to `onServerRunning`).
    ///
    /// A connection that sends nothing for the client timeout is closed, a head or body slower
    /// than its deadline is cut (slow or stalled clients cannot hold connections), bodies beyond
    /// the in-flight budget are refused, and request heads over `maxHeaderBytes` are refused.
    /// `listener`: the plain listener, the TLS listener, or a client's own (`GatewayListener`); every
    /// listener serves the same routes and share path.
    public func application(host: String, port: Int, listener: GatewayListener = .plain, logger: Logger,
                            onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let idle = settings.clientTimeout.components
        let idleMilliseconds = max(1, idle.seconds * 1000 + idle.attoseconds / 1_000_000_000_000_000)
        let limits = {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = settings.maxHeaderBytes
            limits.maxHeaderListSize = settings.maxHeaderBytes
            limits.maxHeaderFieldCount = 200
            return limits
        }()
        let policy = pipeline.policy
        let serverNames = settings.serverNames
        let authenticator = self.authenticator
        let fingerprinter = pipeline.fingerprinter
        let bodyBudget = self.bodyBudget
        let edge = ShareEdge(pipeline: pipeline, authenticator: authenticator, settings: settings)
        // h2c (HTTP/2 with prior knowledge) where it stays on this machine: a plain listener on loopback.
        let priorKnowledge: Bool
        if case .tls = listener { priorKnowledge = false } else {
            priorKnowledge = BrokerConfig.Address(host: host, port: port).isLoopback || host == "localhost"
        }
        let server = HTTPServerBuilder { responder in
            BrokerServerChannel(http1: BrokerHTTP1Channel(responder: responder, idleTimeout: .milliseconds(idleMilliseconds),
                               headTimeout: settings.headTimeout, bodyTimeout: settings.bodyTimeout,
                               bodyBudget: bodyBudget, bodyCap: settings.maxBodyBytes + 1, decoderLimits: limits,
                               policy: policy, serverNames: serverNames, tunnels: settings.tunnels,
                               authenticator: authenticator,
                               hostLabel: { policy.current.providerByHost[$0] != nil ? $0 : SharePipeline.unknownName($0, fingerprinter) },
                               shares: edge, listener: listener),
                                priorKnowledge: priorKnowledge)
        }
        return Application(
            router: router(),
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "sharebroker"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}

/// `POST /v1/decisions` `{provider, operation, subject, purpose?, fields}`.
///
/// `fields` is a JSON object: the body of a JSON operation, or the flat
/// parameters of a form or query operation. It is evaluated exactly like a
/// proxied share and logged with channel `sdk`; nothing is forwarded.
struct SDKDecisions: Sendable {
    let pipeline: SharePipeline
    let authenticator: Authenticator
    let settings: GatewaySettings
    let edge: ShareEdge

    /// Reads at most `maxBodyBytes + 1` bytes (one more than allowed, so an oversized body is told apart).
    func readBody(_ request: Request) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await var chunk in request.body {
            let take = min(chunk.readableBytes, edge.bodyLimit - bytes.count)
            if let slice = chunk.readBytes(length: take) { bytes += slice }
            if bytes.count >= edge.bodyLimit { break }
        }
        return bytes
    }

    func decide(_ request: Request) async throws -> Response {
        let caller = authenticator.caller(authorization: request.headers[.authorization])
        guard caller != nil else {
            // Refused before a byte of the body is read (the connection then closes with it unread):
            // the engine's first step, counted and logged as any refusal, without provider or fields.
            let share = ShareRequest(caller: nil, provider: "", target: .operation("", query: nil), headers: [],
                                     contentType: "application/json", body: [], subject: nil, purpose: nil, time: Date())
            return Response(answer: edge.answer(await pipeline.share(share, channel: .sdk)))
        }
        let bytes = try await readBody(request)
        guard bytes.count <= settings.maxBodyBytes else {
            throw Problem(status: 413, code: "body_too_large", detail: "the body is over \(settings.maxBodyBytes) bytes")
        }
        let envelope: JSONBody
        do {
            envelope = try JSONBody(bytes, limits: PayloadLimits(maxBytes: settings.maxBodyBytes, maxDepth: 66))
        } catch {
            throw Problem(status: 400, code: "malformed_body", detail: error.message)
        }
        func text(_ key: String) -> String? {
            for field in envelope.fields where field.path == FieldPath(keys: key) {
                if case .string(let value) = field.value { return value }
            }
            return nil
        }
        guard let provider = text("provider"), let operationName = text("operation") else {
            throw Problem(status: 400, code: "malformed_body", detail: "provider and operation are required strings")
        }
        // Re-serialise only `fields`, so what is evaluated is exactly what the SDK gets back.
        let fieldsBody = envelope.fields.contains { $0.path.segments.first == .key(ExactKey("fields")) }
            ? envelope.serialized(removing: Set(envelope.fields.compactMap { field -> FieldPath? in
                guard case .key(let key)? = field.path.segments.first, key.string != "fields" else { return nil }
                return field.path.prefix(1)
            }))
            : Array("{\"fields\":{}}".utf8)
        let inner = Self.unwrapFields(fieldsBody)
        let adapter = pipeline.bundle.adapters[provider]
        let operation = adapter?.operation(named: operationName)
        var body = inner
        var contentType = "application/json"
        var query: String?
        if let operation, operation.body != .json {
            // Flat parameters: a form body, or the query of a body-less operation.
            guard let flat = Self.formEncode(inner, limits: PayloadLimits(maxBytes: settings.maxBodyBytes)) else {
                throw Problem(status: 400, code: "malformed_body",
                              detail: "operation \(operationName) takes flat parameters: fields must map names to strings or numbers")
            }
            if operation.body == .form {
                body = Array(flat.utf8); contentType = "application/x-www-form-urlencoded"
            } else {
                body = []; query = flat
            }
        }
        let share = ShareRequest(caller: caller, provider: provider, target: .operation(operationName, query: query), headers: [],
                                 contentType: contentType, body: body, subject: text("subject"),
                                 purpose: text("purpose"), time: Date())
        var result = await pipeline.share(share, channel: .sdk)
        if case .decided(let id, let decision, _) = result, let operation, operation.body != .json {
            // For flat operations the SDK gets the parameters the provider would receive, as a JSON
            // object of name → value: exactly the broker's own form (or query) after stripping, so a
            // parameter declared with `encoding: json` comes back as that document's text, types kept.
            let serialized = decision.forwarded(operation.body == .form ? .body : .query)
            result = .decided(shareID: id, decision: decision, payload: Self.parameterObject(serialized ?? []))
        }
        return Response(answer: edge.answer(result))
    }

    /// `{"fields":X}` → the bytes of X.
    static func unwrapFields(_ bytes: [UInt8]) -> [UInt8] {
        let prefix = Array("{\"fields\":".utf8)
        guard bytes.count > prefix.count + 1, Array(bytes.prefix(prefix.count)) == prefix else { return Array("{}".utf8) }
        return Array(bytes[prefix.count..<(bytes.count - 1)])
    }

    static func formEncode(_ object: [UInt8], limits: PayloadLimits) -> String? {
        guard let parsed = try? JSONBody(object, limits: limits) else { return nil }
        var pairs: [String] = []
        for field in parsed.fields {
            guard field.path.segments.count == 1, case .key(let key) = field.path.segments[0] else { return nil }
            let value: String
            switch field.value {
            case .string(let s): value = s
            case .number(let n): value = n
            case .bool(let b): value = b ? "true" : "false"
            default: return nil
            }
            // Everything but unreserved characters, `:` and `@` is percent-encoded, `&`, `=` and `+` included.
            pairs.append(PercentDecoding.encodePathSegment(key.string) + "=" + PercentDecoding.encodePathSegment(value))
        }
        return pairs.joined(separator: "&")
    }

    /// `a=1&message=%7B…%7D` → `{"a":"1","message":"{…}"}` in the form's order; a repeated name gives an array.
    static func parameterObject(_ form: [UInt8]) -> [UInt8] {
        guard !form.isEmpty, let parsed = try? FormBody(form, limits: PayloadLimits()) else { return Array("{}".utf8) }
        var names: [String] = []
        var values: [String: [String]] = [:]
        for field in parsed.fields {
            guard case .key(let key)? = field.path.segments.first, case .string(let value) = field.value else { continue }
            if values[key.string] == nil { names.append(key.string) }
            values[key.string, default: []].append(value)
        }
        let members = names.map { name -> String in
            let list = values[name] ?? []
            let value = list.count == 1 ? JSONText.quoted(list[0]) : "[" + list.map(JSONText.quoted).joined(separator: ",") + "]"
            return JSONText.quoted(name) + ":" + value
        }
        return Array(("{" + members.joined(separator: ",") + "}").utf8)
    }
}

import BrokerLogStore
import BrokerCore
import BrokerCurl
import BrokerGateway
import BrokerService
import BrokerSQLite
import BrokerTesting
import BrokerTLS
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// A real broker on 127.0.0.1 (port 0) with a temporary SQLite file, the real
/// curl client and the five provider simulators, built by the same `Assembly` as
/// `sharebroker serve --sandbox`.
struct Broker: Sendable {
    let port: Int
    let store: SQLiteStore
    let databasePath: String
    let simulators: ProviderSimulators
    let client: CurlUpstreamClient
    let pipeline: SharePipeline
    let outcomes: OutcomeRecorder
    let gateway: Gateway
    /// The interception CA's certificate (PEM file), for `curl --cacert`; nil when tunnels are off.
    let caPath: String?

    static let shareToken = "test-share-token"
    static let grantsToken = "test-grants-token"
    static let complianceToken = "test-compliance-token"
    static let adminToken = "test-admin-token"
    /// A `share` client that may use only `wechat-login`.
    static let narrowShareToken = "test-narrow-share-token"
    static let userJWTSecret = "test-user-jwt-secret-0123456789"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    var base: String { "http://127.0.0.1:\(port)" }

    func simulator(_ provider: String) -> ProviderSimulator { simulators.simulator(provider) }

    /// Calls the broker (not through a proxy).
    func call(_ method: String, _ path: String, token: String? = Broker.shareToken, headers: [(String, String)] = [],
              body: String = "") async throws -> UpstreamResponse {
        var lines = headers.map { HTTPHeaderLine($0.0, $0.1) }
        if let token { lines.append(HTTPHeaderLine("Authorization", "Bearer \(token)")) }
        return try await client.send(UpstreamRequest(method: method, url: base + path, headers: lines, body: Array(body.utf8)))
    }

    func putSubject(_ id: String, _ json: String = "{}") async throws {
        let response = try await call("PUT", "/v1/subjects/\(id)", token: Broker.grantsToken,
                                      headers: [("Content-Type", "application/json")], body: json)
        precondition(response.status == 200, "PUT subject: \(response.status) \(String(decoding: response.body, as: UTF8.self))")
    }

    @discardableResult
    func grant(_ subject: String, provider: String, purpose: String, categories: [String]? = nil,
               separate: Bool = false, crossBorder: Bool = false, version: String = "2025-01") async throws -> String {
        let categoriesJSON = categories.map { "[" + $0.map { "\"\($0)\"" }.joined(separator: ",") + "]" } ?? "null"
        let body = """
            {"provider":"\(provider)","purpose":"\(purpose)","categories":\(categoriesJSON),\
            "separate_consent":\(separate),"cross_border_consent":\(crossBorder),\
            "policy_version":"\(version)","evidence":"test-consent-screen"}
            """
        let response = try await call("POST", "/v1/subjects/\(subject)/grants", token: Broker.grantsToken,
                                      headers: [("Content-Type", "application/json")], body: body)
        precondition(response.status == 201, "POST grant: \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return object?["id"] as? String ?? ""
    }

    /// The log as stored, once the outcomes written off the request path have landed.
    func records() async throws -> [StoredRecord] {
        await outcomes.drained()
        return try await store.records(stream: "node-1")
    }
}

func loadRepositoryPolicy() throws -> PolicyBundle {
    let root = Broker.repository.path
    let loaded = PolicyLoader.load(adapters: root + "/adapters", contracts: root + "/contracts")
    guard let bundle = loaded.bundle else { throw HarnessError.policy(loaded.issues.map(\.description)) }
    return bundle
}

/// The repository's policy with some files' text edited (file name → edit), as a test's own variant.
func loadRepositoryPolicy(editing edits: [String: @Sendable (String) -> String]) throws -> PolicyBundle {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    for folder in ["adapters", "contracts"] {
        let target = directory.appendingPathComponent(folder)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: Broker.repository.appendingPathComponent(folder).path) {
            let text = try String(contentsOf: Broker.repository.appendingPathComponent(folder).appendingPathComponent(name), encoding: .utf8)
            try (edits[folder + "/" + name]?(text) ?? text).write(to: target.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }
    let loaded = PolicyLoader.load(adapters: directory.appendingPathComponent("adapters").path,
                                   contracts: directory.appendingPathComponent("contracts").path)
    guard let bundle = loaded.bundle else { throw HarnessError.policy(loaded.issues.map(\.description)) }
    return bundle
}

enum HarnessError: Error { case policy([String]), didNotStart }

/// Fast retries, so the provider-down test does not wait minutes.
let testPropagation = PropagationSettings(maxAttempts: 6, initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(400),
                                          concurrency: 8, lease: .seconds(30))

func withBroker<T: Sendable>(propagation: PropagationSettings = testPropagation, tunnels: Bool = true,
                             policy: PolicyBundle? = nil, limits: @Sendable (inout BrokerConfig.Limits) -> Void = { _ in },
                             _ body: @Sendable (Broker) async throws -> T) async throws -> T {
    var logger = Logger(label: "broker-test")
    logger.logLevel = ProcessInfo.processInfo.environment["BROKER_TEST_LOG"] == nil ? .critical : .info
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sharebroker-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let databasePath = directory.appendingPathComponent("broker.sqlite").path

    let credentials = SimulatorCredentials.random()
    let simulators = try await ProviderSimulators.start(credentials: credentials, logger: logger)
    var bases: [String: UpstreamURL] = [:]
    for (provider, url) in simulators.baseURLs { bases[provider] = UpstreamURL(url) }
    let bundle = try (policy ?? loadRepositoryPolicy()).redirected(to: bases)

    var config = BrokerConfig()
    // Short, so the stalled-client tests finish fast; not shorter, because the broker then closes
    // keep-alive connections the test's own libcurl client may be reusing that very moment under
    // load (curl 56 in the 50-share race, seen once at 400 ms).
    config.limits.clientTimeoutMs = 1500
    config.limits.maxHeaderBytes = 4096
    limits(&config.limits)
    config.clients = [
        .init(id: "test-app", credential: .token(.literal(Broker.shareToken)), roles: [.share],
              providers: Set(bundle.adapters.keys), purposes: nil),
        .init(id: "test-accounts", credential: .token(.literal(Broker.grantsToken)), roles: [.grants], providers: [],
              purposes: nil),
        .init(id: "test-compliance", credential: .token(.literal(Broker.complianceToken)), roles: [.compliance], providers: [],
              purposes: nil),
        .init(id: "test-admin", credential: .token(.literal(Broker.adminToken)), roles: [.admin], providers: [], purposes: nil),
        .init(id: "test-narrow", credential: .token(.literal(Broker.narrowShareToken)), roles: [.share],
              providers: ["wechat-login"], purposes: nil),
    ]
    config.userJWT = .init(issuer: "https://id.test", audience: "sharebroker", algorithms: ["HS256"],
                           hs256Secret: .literal(Broker.userJWTSecret))
    var secrets: [SecretReference: String] = [.literal(Broker.userJWTSecret): Broker.userJWTSecret]
    for (name, value) in credentials.environment { secrets[.env(name)] = value }
    for client in config.clients { if case .token(let ref) = client.credential, case .literal(let v) = ref { secrets[ref] = v } }

    let store = try SQLiteStore(path: databasePath, stream: "node-1", logger: logger)
    store.enableCheckpoints(signer: CheckpointSigner(secret: Array("test-signing-key".utf8)), every: 5)
    let client = try CurlUpstreamClient(options: CurlClientOptions(totalTimeout: .seconds(5)), logger: logger)
    var certificates: TunnelCertificates?
    var caPath: String?
    if tunnels {
        let ca = try InterceptionCA.generate()
        certificates = TunnelCertificates(ca: ca)
        caPath = directory.appendingPathComponent("tls-ca.pem").path
        try ca.certificatePEM.write(toFile: caPath!, atomically: true, encoding: .utf8)
    }
    let assembled = Assembly.gateway(config: config, bundle: bundle, secrets: secrets, log: store, grants: store, revocations: store, queries: store, audit: store,
                                     checkpointSigner: CheckpointSigner(secret: Array("test-signing-key".utf8)),
                                     upstream: client, fingerprintKey: Array("test-fingerprint-key".utf8),
                                     revocationKey: Array("test-revocation-key".utf8), propagation: propagation,
                                     tunnelCertificates: certificates,
                                     reload: Assembly.ReloadSource { [bases, secrets] in
                                         .init(bundle: try? loadRepositoryPolicy().redirected(to: bases), issues: [], secrets: secrets)
                                     }, logger: logger)
    precondition(assembled.warnings.isEmpty, "\(assembled.warnings)")

    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = assembled.gateway.application(host: "127.0.0.1", port: 0, logger: logger) { port in
        portContinuation.yield(port)
        portContinuation.finish()
    }
    let services: [any Service] = [assembled.outcomes, assembled.revocationWorker!, app]
    let group = ServiceGroup(configuration: .init(services: services, logger: logger))
    let result: Result<T, any Error> = await withTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try? await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            return .failure(HarnessError.didNotStart)
        }
        let broker = Broker(port: port, store: store, databasePath: databasePath, simulators: simulators,
                            client: client, pipeline: assembled.pipeline, outcomes: assembled.outcomes,
                            gateway: assembled.gateway, caPath: caPath)
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body(broker)) } catch { outcome = .failure(error) }
        await group.triggerGracefulShutdown()
        await tasks.waitForAll()
        return outcome
    }
    await client.shutdown()
    await simulators.shutdown()
    return try result.get()
}

extension UpstreamResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
}

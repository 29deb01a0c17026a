import ArgumentParser
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
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// `sharebroker serve`: the broker on the embedded default (SQLite under `.sharebroker/`) or on PostgreSQL.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the broker.",
        discussion: """
            With --sandbox, every adapter is pointed at a built-in provider simulator on loopback,
            demo tokens are printed, and the walkthrough of docs/getting-started.md works on one machine.
            Without it, check the config first (sharebroker config check FILE): a broker with no client
            warns at start and its /readyz answers 503 not_ready saying why.
            """)

    @Option(help: "The config file (YAML; every key is listed in docs/configuration.md). Every key has a default.")
    var config: String?

    @Option(help: "Listen on this port (overrides the config).")
    var port: Int?

    @Option(help: "The TLS listener's port (overrides listen_tls's; 0 picks a free one).")
    var tlsPort: Int?

    @Option(help: "The database: sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB (overrides the config).")
    var database: String?

    @Option(help: "This node's log stream name (overrides the config's node:); every node on one database needs its own.")
    var node: String?

    @Flag(help: "Point every adapter at a loopback provider simulator and use demo tokens.")
    var sandbox = false

    func run() async throws {
        Self.tuneRuntime()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "sharebroker")
        var settings = try Self.loadConfig(config)
        if let port { settings.port = port }
        if let tlsPort {
            guard settings.listenTLS != nil else { say("--tls-port needs listen_tls in the config"); throw ExitCode(1) }
            settings.listenTLS?.address.port = tlsPort
        }
        if let database { settings.database = database }
        if let node { settings.node = node }
        let resolver = SecretResolver()

        let loaded = PolicyLoader.load(adapters: settings.adapters, contracts: settings.contracts)
        for issue in loaded.issues { say(issue.description) }
        guard var bundle = loaded.bundle else {
            say("the policy has errors: fix them (sharebroker check) and start again")
            throw ExitCode(1)
        }
        var shadow: PolicyBundle?
        if let folders = settings.shadow {
            let candidate = PolicyLoader.load(adapters: folders.adapters, contracts: folders.contracts)
            for issue in candidate.issues { say(issue.description) }
            guard let candidateBundle = candidate.bundle else {
                say("the shadow policy (shadow: in the config) has errors: fix them "
                    + "(sharebroker check --adapters \(folders.adapters) --contracts \(folders.contracts)) and start again")
                throw ExitCode(1)
            }
            shadow = candidateBundle
        }

        var secretReferences = bundle.adapters.values.flatMap(\.secretReferences)
        var simulators: ProviderSimulators?
        var extraSecrets: [SecretReference: String] = [:]
        var redirect: [String: UpstreamURL] = [:]
        if sandbox {
            guard settings.host == "127.0.0.1" || settings.host == "localhost" else {
                say("--sandbox listens on loopback only (listen is \(settings.host))")
                throw ExitCode(1)
            }
            let credentials = SimulatorCredentials.random()
            let started = try await ProviderSimulators.start(credentials: credentials, logger: logger)
            simulators = started
            var bases: [String: UpstreamURL] = [:]
            for (provider, base) in started.baseURLs { bases[provider] = UpstreamURL(base) }
            bundle = bundle.redirected(to: bases)
            redirect = bases
            for (name, value) in credentials.environment { extraSecrets[.env(name)] = value }
            // The demo clients replace the config's token clients; a client known only by where it connects
            // or by its certificate (`listen`, `mtls`) has no token to replace and is kept, so a sidecar
            // client (an SDK that sends no proxy credentials) can be tried against the simulators.
            settings.clients = Sandbox.clients(providers: Array(bundle.adapters.keys))
                + settings.clients.filter { $0.credential == .none }
            settings.userJWT = .init(issuer: Sandbox.userIssuer, audience: "sharebroker", algorithms: ["HS256"],
                                     hs256Secret: .literal(Sandbox.userSecret))
            extraSecrets[.literal(Sandbox.userSecret)] = Sandbox.userSecret
            for client in settings.clients { if case .token(let ref) = client.credential { secretReferences.append(ref) } }
        } else {
            for client in settings.clients { if case .token(let ref) = client.credential { secretReferences.append(ref) } }
        }
        if let reference = settings.userJWT?.hs256Secret { secretReferences.append(reference) }
        if let reference = settings.databasePassword { secretReferences.append(reference) }
        var secrets = resolver.resolve(secretReferences)
        secrets.merge(extraSecrets) { _, new in new }
        let startup = sandbox ? StartupReadiness() : Self.announceReadiness(settings, resolver: resolver, logger: logger)

        // What an older broker made with the default mode becomes owner-only: the state folder, its
        // keys and the database hold keys, grants and birth dates. New ones are made so (PrivateFile).
        var privateFiles = [".sharebroker", InterceptionCAFiles.keyPath]
            + [".sharebroker/fingerprint.key", ".sharebroker/revocation.key", ".sharebroker/checkpoint.key"]
        if let path = settings.sqlitePath { privateFiles += [path, path + "-wal", path + "-shm"] }
        for path in privateFiles where PrivateFile.tighten(path) {
            logger.notice("made owner-only (it was readable by others)", metadata: ["file": .string(path)])
        }
        let opened: NodeStore
        do {
            opened = try await NodeStore.open(settings, password: settings.databasePassword.flatMap { secrets[$0] },
                                              logger: logger)
        } catch let error as LogUnavailable {
            say("could not open the database: \(error.message)")
            throw ExitCode(1)
        }
        let store = opened.log
        let dangling = try await store.resolveDanglingIntents(at: Date())
        if dangling > 0 { logger.warning("intents without outcome marked unknown", metadata: ["count": "\(dangling)"]) }
        let fingerprintKey = try resolver.keyOrCreate(settings.log.fingerprintKey,
                                                      defaultPath: ".sharebroker/fingerprint.key")
        let revocationKey = try resolver.keyOrCreate(settings.revocation.key, defaultPath: ".sharebroker/revocation.key")
        let signer = CheckpointSigner(secret: try resolver.keyOrCreate(settings.log.signingKey,
                                                                       defaultPath: ".sharebroker/checkpoint.key"))
        opened.enableCheckpoints(signer, settings.log.checkpointEvery)

        let upstream = try CurlUpstreamClient(
            options: CurlClientOptions(connectTimeout: .milliseconds(settings.limits.connectTimeoutMs),
                                       totalTimeout: .milliseconds(settings.limits.upstreamTimeoutMs),
                                       maxResponseBytes: settings.limits.maxResponseBytes),
            logger: logger)
        let tunnels = settings.tlsInterception.enabled
            ? TunnelCertificates(ca: try InterceptionCAFiles.loadOrCreate(settings.tlsInterception, resolver: resolver,
                                                                           hosts: bundle.adapters.values.flatMap(\.tunnelHosts),
                                                                           logger: logger)) : nil
        let reload = Self.reloadSource(settings, redirect: redirect, resolver: resolver, extraSecrets: extraSecrets)
        let assembled = Assembly.gateway(config: settings, bundle: bundle, secrets: secrets, log: store, grants: store, revocations: store, queries: store, audit: store, checkpointSigner: signer,
                                         upstream: upstream, fingerprintKey: fingerprintKey, revocationKey: revocationKey,
                                         propagation: settings.propagation, tunnelCertificates: tunnels, reload: reload,
                                         shadow: shadow, ready: opened.ready, startup: startup, logger: logger)
        if let shadow { logger.notice("shadow policy: every share is also decided under \(shadow.revision), without effect") }
        for warning in assembled.warnings { logger.warning("\(warning)") }

        let host = settings.host
        let sandboxMode = sandbox
        let running = simulators
        let app = assembled.gateway.application(host: host, port: settings.port, logger: logger) { port in
            say("sharebroker listening on http://\(host):\(port) (database \(opened.description))")
            if sandboxMode { Sandbox.printBanner(port: port, simulators: running, tunnels: tunnels != nil) }
        }
        // The TLS listener and the clients' own listeners serve the same routes and share path.
        var listeners: [any Service] = []
        var listenerTLS: ListenerTLS?
        if let tls = settings.listenTLS {
            let loaded: ListenerTLS
            do {
                loaded = try ListenerTLS(certificate: tls.certificate, key: tls.key, clientCA: tls.clientCA)
            } catch {
                say("listen_tls: \(error.message)")
                throw ExitCode(1)
            }
            listenerTLS = loaded
            let address = tls.address
            listeners.append(assembled.gateway.application(host: address.host, port: address.port, listener: .tls(loaded),
                                                           logger: logger) { port in
                say("sharebroker listening on https://\(address.host):\(port)"
                    + (tls.clientCA.map { " (client certificates from \($0))" } ?? ""))
            })
        }
        for (address, caller) in assembled.listenerClients {
            listeners.append(assembled.gateway.application(host: address.host, port: address.port, listener: .client(caller),
                                                           logger: logger) { port in
                say("sharebroker listening on http://\(address.host):\(port) for client \(caller.id) only")
            })
        }
        var services: [any Service] = [assembled.outcomes]
        if let worker = assembled.revocationWorker { services.append(worker) }
        if assembled.reloader != nil || listenerTLS != nil {
            // Trapped now, before the server says it listens: a SIGHUP from then on reloads, never kills.
            services.append(ReloadOnHangup(reloader: assembled.reloader, tls: listenerTLS, logger: logger,
                                           signals: await UnixSignalsSequence(trapping: .sighup)))
        }
        services.append(app)
        services += listeners
        if let listenerTLS { services.append(TLSFileWatcher(tls: listenerTLS, logger: logger)) }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                 logger: logger)
        do {
            try await group.run()
        } catch {
            logger.error("server stopped", metadata: ["error": "\(error)"])
        }
        do { try await opened.checkpointNow() } catch {
            logger.error("could not sign the closing checkpoint", metadata: ["error": "\(error.message)"])
        }
        await upstream.shutdown()
        await simulators?.shutdown()
        logger.notice("share log closed", metadata: opened.closingMetadata())
        await opened.close()
    }

    /// A reload reads the same folders again (and, in the sandbox, points them at the same
    /// simulators), on a thread of its own: it reads files and resolves file secrets.
    static func reloadSource(_ settings: BrokerConfig, redirect: [String: UpstreamURL], resolver: SecretResolver,
                             extraSecrets: [SecretReference: String]) -> Assembly.ReloadSource {
        let (adapters, contracts) = (settings.adapters, settings.contracts)
        return Assembly.ReloadSource {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    let loaded = PolicyLoader.load(adapters: adapters, contracts: contracts)
                    guard let bundle = loaded.bundle, loaded.issues.isEmpty else {
                        return continuation.resume(returning: .init(bundle: nil, issues: loaded.issues, secrets: [:]))
                    }
                    var secrets = resolver.resolve(bundle.adapters.values.flatMap(\.secretReferences))
                    secrets.merge(extraSecrets) { _, new in new }
                    // The shadow candidate decides only (it forwards nothing), so it is not redirected.
                    var shadow: PolicyBundle?
                    if let folders = settings.shadow {
                        let candidate = PolicyLoader.load(adapters: folders.adapters, contracts: folders.contracts)
                        guard let candidateBundle = candidate.bundle, candidate.issues.isEmpty else {
                            return continuation.resume(returning: .init(bundle: nil, issues: candidate.issues, secrets: [:]))
                        }
                        shadow = candidateBundle
                    }
                    continuation.resume(returning: .init(bundle: redirect.isEmpty ? bundle : bundle.redirected(to: redirect),
                                                         issues: [], secrets: secrets, shadow: shadow,
                                                         warnings: bundle.checkWarnings(adapters: adapters, contracts: contracts)))
                }
            }
        }
    }

    /// Two process-wide settings for the share path, made before anything else runs.
    static func tuneRuntime() {
        // Swift concurrency runs on NIO's event loops instead of a pool of its own: a request's
        // handler, its resumption after the log commit and after the upstream call all run on an
        // event loop (the same one where it can), instead of hopping between the two pools with
        // a wake-up and a context switch each time. Nothing on the share path blocks a thread.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        #if canImport(Glibc)
        // glibc gives memory back to the kernel (madvise, with a TLB flush on every core) whenever
        // a thread's arena has 128 KiB free at its top: with threads freeing each other's buffers
        // that happened on most log commits. Keep up to 64 MiB per arena before trimming
        // (mallopt(M_TRIM_THRESHOLD = -1), looked up at run time: <malloc.h> is not in Glibc's module).
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            _ = unsafeBitCast(symbol, to: Mallopt.self)(-1, 64 << 20)
        }
        #endif
    }

    /// Plain `serve`: what the config lacks for production, loudly on stdout and in the log, and
    /// for `/readyz` (the StartupReadiness returned): no client that can authenticate makes the node
    /// not ready; demo-looking secrets and missing files are warnings.
    static func announceReadiness(_ settings: BrokerConfig, resolver: SecretResolver, logger: Logger) -> StartupReadiness {
        let findings = settings.audit(value: resolver.value, exists: { FileManager.default.fileExists(atPath: $0) })
        let usable = settings.clients.filter { client in
            switch client.credential {
            case .tokenSHA256: return true
            case .token(let reference): return !(resolver.value(reference) ?? "").isEmpty
            case .none: return client.certificate != nil || client.listen != nil
            }
        }
        var state = StartupReadiness()
        if usable.isEmpty {
            state.reasons.append(settings.clients.isEmpty ? BrokerConfig.noClientsMessage
                                 : "no client can authenticate: none of their tokens is set (every call answers 401)")
        }
        state.warnings = findings.filter { $0.severity == .warning && $0.key != "clients" }.map { "\($0.key): \($0.message)" }
        let lines = state.reasons + findings.filter { $0.key != "clients" }.map(\.description)
        guard !lines.isEmpty else { return state }
        say("""

            ******** WARNING: this broker is not set up for production ********
            \(lines.map { "  " + $0 }.joined(separator: "\n"))
            \(state.reasons.isEmpty ? "  (/readyz answers ready, listing these warnings)" : "  /readyz answers 503 not_ready until this is fixed.")
              Check a config with: sharebroker config check FILE   (docs/configuration.md)
            *******************************************************************

            """)
        for line in lines { logger.warning("\(line)") }
        return state
    }

    static func loadConfig(_ path: String?) throws -> BrokerConfig {
        guard let path else { return BrokerConfig() }
        guard let data = FileManager.default.contents(atPath: path) else {
            say(FileManager.default.fileExists(atPath: path) ? "\(path): cannot read the config file"
                : "\(path) does not exist (the config file)")
            throw ExitCode(1)
        }
        let (config, issues) = BrokerConfig.decode(yaml: String(decoding: data, as: UTF8.self), file: path)
        for issue in issues { say(issue.description) }
        guard let config else { throw ExitCode(1) }
        return config
    }
}

/// `kill -HUP`: reload the policy (the same as `POST /v1/admin/policy/reload`; the result is
/// logged) and the TLS listener's certificate and key.
struct ReloadOnHangup: Service {
    let reloader: PolicyReloader?
    let tls: ListenerTLS?
    let logger: Logger
    let signals: UnixSignalsSequence

    func run() async throws {
        // Not `cancelOnGracefulShutdown()`: its merge of the two sequences takes a lock that, with
        // NIO's event loops as the global executor, deadlocked at SIGTERM (an event loop blocked on
        // the merge's mutex; the process never exited: seen once in a fresh-clone CI run). The
        // loop runs in a task that a graceful shutdown cancels, which ends the signal stream.
        let (reloader, tls, logger, signals) = (self.reloader, self.tls, self.logger, self.signals)
        let listener = Task {
            for await _ in signals {
                if Task.isCancelled { break }
                if let tls { TLSFileWatcher.reload(tls, trigger: "sighup", logger: logger) }
                if let reloader { _ = await reloader.reload(trigger: "sighup") }
            }
        }
        await withGracefulShutdownHandler {
            await listener.value
        } onGracefulShutdown: {
            listener.cancel()
        }
    }
}

/// The TLS listener's files, looked at every two seconds: a renewed certificate (cert-manager,
/// certbot, a rotated secret volume) is served to new connections without a restart or a SIGHUP;
/// connections already open keep theirs.
struct TLSFileWatcher: Service {
    let tls: ListenerTLS
    let logger: Logger

    func run() async throws {
        let (tls, logger) = (self.tls, self.logger)
        let watcher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                if tls.filesChanged { Self.reload(tls, trigger: "file_change", logger: logger) }
            }
        }
        await withGracefulShutdownHandler {
            await watcher.value
        } onGracefulShutdown: {
            watcher.cancel()
        }
    }

    /// Loads the listener's files again, or keeps the old context and says why.
    static func reload(_ tls: ListenerTLS, trigger: String, logger: Logger) {
        do {
            try tls.reload()
            logger.notice("TLS certificate reloaded", metadata: ["trigger": .string(trigger), "file": .string(tls.certificatePath)])
        } catch {
            logger.error("TLS certificate not reloaded: the listener keeps the previous one",
                         metadata: ["trigger": .string(trigger), "error": .string(error.message)])
        }
    }
}

/// The sandbox's fixed demo clients: loopback only, printed at start, used by the walkthrough.
enum Sandbox {
    static let shareToken = "demo-share-token"
    static let grantsToken = "demo-grants-token"
    static let complianceToken = "demo-compliance-token"
    static let adminToken = "demo-admin-token"
    static let userIssuer = "https://sandbox.sharebroker.invalid"
    static let userSecret = "demo-user-jwt-secret"
    /// The walkthrough's end user, signed in: a token for subject u-1001 (valid until 2100).
    static var userToken: String {
        UserTokenVerifier(secret: Array(userSecret.utf8), issuer: userIssuer, audience: "sharebroker")
            .mint(subject: "u-1001", expires: Date(timeIntervalSince1970: 4_102_444_800))
    }

    static func clients(providers: [String]) -> [BrokerConfig.Client] {
        [
            BrokerConfig.Client(id: "demo-app", credential: .token(.literal(shareToken)), roles: [.share],
                                providers: Set(providers), purposes: nil),
            BrokerConfig.Client(id: "demo-accounts", credential: .token(.literal(grantsToken)), roles: [.grants],
                                providers: [], purposes: nil),
            BrokerConfig.Client(id: "demo-compliance", credential: .token(.literal(complianceToken)),
                                roles: [.compliance], providers: [], purposes: nil),
            BrokerConfig.Client(id: "demo-admin", credential: .token(.literal(adminToken)),
                                roles: [.admin], providers: [], purposes: nil),
        ]
    }

    static func printBanner(port: Int, simulators: ProviderSimulators?, tunnels: Bool) {
        say("""

            SANDBOX: every adapter points at a provider simulator on loopback.
              share token       \(shareToken)        (client demo-app, role share, all providers)
              grants token      \(grantsToken)       (client demo-accounts, role grants)
              compliance token  \(complianceToken)   (client demo-compliance, role compliance)
              admin token       \(adminToken)        (client demo-admin, role admin: policy reload, /metrics)
              user token        \(userToken)
                                (end user u-1001's JWT: their own grants and shares only)
            """)
        for simulator in simulators?.all ?? [] {
            say("  simulator \(simulator.provider.padding(toLength: max(18, simulator.provider.count), withPad: " ", startingAt: 0)) \(simulator.baseURL)")
        }
        if tunnels {
            say("""
                  https:// through the broker (TLS interception; trust its CA, \(InterceptionCAFiles.certificatePath)):
                    HTTPS_PROXY=http://demo-app:\(shareToken)@127.0.0.1:\(port)  SSL_CERT_FILE / REQUESTS_CA_BUNDLE / --cacert \(InterceptionCAFiles.certificatePath)
                """)
        }
        say("Try the walkthrough in README.md and docs/getting-started.md (curl -x http://127.0.0.1:\(port) …).\n")
    }
}

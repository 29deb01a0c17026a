import BrokerCore
import BrokerCredentials
import BrokerCurl
import BrokerService
import BrokerTLS
import Foundation
import Logging

/// Builds a running gateway from its parts: the one place configuration becomes objects.
///
/// The executable resolves secrets and opens the store; tests do the same with a
/// temporary SQLite file and the provider simulators. Providers whose credentials
/// cannot be set up are left out of the gateway (their shares answer 502
/// `credential_unavailable`) and reported, so one missing secret does not take the
/// whole broker down.
public enum Assembly {
    public struct Result: Sendable {
        public var gateway: Gateway
        public var pipeline: SharePipeline
        /// Writes outcomes off the request path: run it beside the server (it drains on shutdown).
        public var outcomes: OutcomeRecorder
        /// Carries revocations to the providers: run it beside the server (nil without a revocation store).
        public var revocationWorker: RevocationWorker?
        /// Loads the policy again (SIGHUP, `POST /v1/admin/policy/reload`); nil without a `reload` source.
        public var reloader: PolicyReloader?
        /// Human-readable problems found while assembling (no secret values).
        public var warnings: [String]
        /// The clients with a listener of their own (`clients[].listen`), each to serve on its address.
        public var listenerClients: [(address: BrokerConfig.Address, caller: Caller)] = []
    }

    /// Where a reload reads the policy from: the validated bundle (or every issue found) and the
    /// secrets its adapters name, resolved. It reads files: keep it off the event loops.
    public struct ReloadSource: Sendable {
        public struct Loaded: Sendable {
            public var bundle: PolicyBundle?
            public var issues: [PolicyIssue]
            public var secrets: [SecretReference: String]
            /// The shadow candidate, read again too (its issues are among `issues`).
            public var shadow: PolicyBundle?
            /// What `sharebroker check` would warn about in the new files (`file:line: warning: …`).
            public var warnings: [String]
            public init(bundle: PolicyBundle?, issues: [PolicyIssue], secrets: [SecretReference: String], shadow: PolicyBundle? = nil,
                        warnings: [String] = []) {
                self.bundle = bundle; self.issues = issues; self.secrets = secrets; self.shadow = shadow; self.warnings = warnings
            }
        }

        public var load: @Sendable () async -> Loaded
        public init(load: @escaping @Sendable () async -> Loaded) { self.load = load }
    }

    public static func gateway(config: BrokerConfig, bundle: PolicyBundle, secrets: [SecretReference: String],
                               log: any ShareLog, grants: any GrantStore, revocations: (any RevocationStore)? = nil,
                               queries: (any ShareQueries)? = nil, audit: (any LogAudit)? = nil,
                               checkpointSigner: CheckpointSigner? = nil,
                               upstream: any UpstreamClient,
                               fingerprintKey: [UInt8], revocationKey: [UInt8]? = nil,
                               propagation: PropagationSettings = PropagationSettings(),
                               serverNames: Set<String>? = nil,
                               tunnelCertificates: TunnelCertificates? = nil,
                               reload: ReloadSource? = nil, shadow: PolicyBundle? = nil,
                               now: @escaping @Sendable () -> Date = Date.init,
                               ready: @escaping @Sendable () async -> Bool = { true },
                               startup: StartupReadiness = StartupReadiness(), logger: Logger) -> Result {
        let environment = PolicyRevision.Environment(config: config, upstream: upstream, now: now, logger: logger)
        let (revision, policyWarnings) = PolicyRevision.build(bundle, secrets: secrets, environment: environment, shadow: shadow)
        var warnings = policyWarnings
        let policy = ActivePolicy(revision)
        let metrics = BrokerMetrics()
        metrics.policyInstalled(revision)
        if let observed = log as? any ShareLogMetrics {
            observed.observeCommits { records, duration in metrics.commit(records: records, duration: duration) }
        }
        var users: UserTokenVerifier?
        if let jwt = config.userJWT {
            var secret: [UInt8]?
            if jwt.algorithms.contains("HS256") {
                if let reference = jwt.hs256Secret, let text = secrets[reference], !text.isEmpty {
                    secret = Array(text.utf8)
                } else {
                    warnings.append("users.jwt has no usable hs256_secret: HS256 end-user tokens are refused")
                }
            }
            var keys: IdentityProviderKeys?
            switch jwt.jwks {
            case .file(let path)?:
                keys = IdentityProviderKeys(maxAge: TimeInterval(jwt.jwksMaxAgeSeconds)) {
                    guard let data = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileReadNoSuchFile) }
                    return String(decoding: data, as: UTF8.self)
                }
            case .url(let url)?:
                keys = IdentityProviderKeys.fetching(url, with: upstream, maxAge: TimeInterval(jwt.jwksMaxAgeSeconds))
            case nil:
                break
            }
            users = UserTokenVerifier(secret: secret, issuer: jwt.issuer, audience: jwt.audience, algorithms: Set(jwt.algorithms), jwks: keys)
        }
        var callers: [String: Caller] = [:]
        var certificates: [(BrokerConfig.Client.CertificateMatch, Caller)] = []
        var listenerClients: [(address: BrokerConfig.Address, caller: Caller)] = []
        for client in config.clients {
            let caller = Caller(id: client.id, roles: client.roles, providers: client.providers, purposes: client.purposes)
            if let match = client.certificate { certificates.append((match, caller)) }
            if let address = client.listen { listenerClients.append((address, caller)) }
            switch client.credential {
            case .none:
                break
            case .tokenSHA256(let digest):
                callers[digest] = caller
            case .token(let reference):
                guard let token = secrets[reference], !token.isEmpty else {
                    warnings.append("client \(client.id) has no token (\(reference) is not set): it cannot authenticate")
                    continue
                }
                callers[Authenticator.digest(token)] = caller
            }
        }
        let cachedGrants = SubjectContextCache(grants)
        let outcomes = OutcomeRecorder(log: log, logger: logger)
        let vault = revocationKey.map { RevocationKeyVault(secret: $0) }
        let pipeline = SharePipeline(policy: policy, log: log, grants: cachedGrants, upstream: upstream,
                                     outcomes: outcomes, fingerprinter: Fingerprinter(key: fingerprintKey), vault: vault,
                                     node: config.node, now: now, logger: logger,
                                     decisionLines: config.decisionLinesJSON ? DecisionLines() : nil, metrics: metrics)
        var worker: RevocationWorker?
        if let revocations {
            if vault == nil { warnings.append("no revocation key is configured: revocations will end in manual_required") }
            worker = RevocationWorker(store: revocations, policy: policy, upstream: upstream,
                                      vault: vault ?? RevocationKeyVault(secret: Array("unused".utf8)), settings: propagation,
                                      metrics: metrics, now: now, logger: logger)
        }
        var names = serverNames ?? ["127.0.0.1", "localhost", "::1", "[::1]"]
        names.insert(config.host.lowercased())
        names.formUnion(config.serverNames)
        var settings = GatewaySettings(serverNames: names, maxBodyBytes: config.limits.maxBodyBytes,
                                       clientTimeout: .milliseconds(config.limits.clientTimeoutMs),
                                       maxHeaderBytes: config.limits.maxHeaderBytes,
                                       tunnels: TunnelSettings(certificates: tunnelCertificates))
        settings.headTimeout = .milliseconds(config.limits.headTimeoutMs)
        settings.bodyTimeout = .milliseconds(config.limits.bodyTimeoutMs)
        settings.maxInflightBodyBytes = config.limits.maxInflightBodyBytes
        settings.privacyFrameAncestors = config.privacyFrameAncestors
        settings.homeRegion = config.homeRegion
        settings.metricsAccess = config.metricsAccess
        let reloader = reload.map {
            PolicyReloader(policy: policy, environment: environment, source: $0, metrics: metrics, logger: logger)
        }
        let gateway = Gateway(pipeline: pipeline, grants: cachedGrants, authenticator: Authenticator(tokenDigests: callers, certificates: ClientCertificates(certificates)),
                              settings: settings, revocations: revocations, revocationWorker: worker,
                              queries: queries, users: users, reloader: reloader, shareLogMetrics: log as? any ShareLogMetrics,
                              audit: audit, checkpointKey: checkpointSigner?.publicKey, now: now, ready: ready,
                              startup: startup)
        return Result(gateway: gateway, pipeline: pipeline, outcomes: outcomes, revocationWorker: worker, reloader: reloader,
                      warnings: warnings, listenerClients: listenerClients)
    }
}

extension PolicyBundle {
    /// The same policy with each listed provider's upstream (and token endpoint)
    /// moved to another base URL, keeping paths and the forward-proxy hosts: how the
    /// sandbox points every adapter at its simulator.
    public func redirected(to baseURLs: [String: UpstreamURL]) -> PolicyBundle {
        var copy = self
        for (provider, base) in baseURLs {
            guard var adapter = copy.adapters[provider] else { continue }
            adapter.upstream = UpstreamURL(base.description + adapter.upstream.basePath) ?? base
            if case .text(let tokenURL)? = adapter.credentials.parameters["token_url"], let old = UpstreamURL(tokenURL) {
                let path = tokenURL.dropFirst(old.scheme.count + 3).drop { $0 != "/" }
                adapter.credentials.parameters["token_url"] = .text(base.description + path)
            }
            copy.adapters[provider] = adapter
        }
        return copy
    }
}

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
        /// Human-readable problems found while assembling (no secret values).
        public var warnings: [String]
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
                               now: @escaping @Sendable () -> Date = Date.init,
                               ready: @escaping @Sendable () async -> Bool = { true }, logger: Logger) -> Result {
        var warnings: [String] = []
        var injectors: [String: CredentialInjector] = [:]
        for adapter in bundle.adapters.values.sorted(by: { $0.provider < $1.provider }) {
            do {
                injectors[adapter.provider] = try CredentialInjector(spec: adapter.credentials, secrets: secrets,
                                                                     client: upstream, now: now, logger: logger)
            } catch {
                warnings.append("provider \(adapter.provider) is unavailable: \(error.message)")
            }
            if !adapter.upstream.isTLS && !adapter.upstream.isLoopback {
                warnings.append("provider \(adapter.provider): upstream \(adapter.upstream) is not TLS and not on loopback")
            }
        }
        var verifiers: [String: CancellationCheck] = [:]
        for adapter in bundle.adapters.values.sorted(by: { $0.provider < $1.provider }) {
            guard let cancellation = adapter.cancellation else { continue }
            guard let key = secrets[cancellation.publicKey], !key.isEmpty else {
                warnings.append("provider \(adapter.provider): cancellation notices are refused (\(cancellation.publicKey) is not set)")
                continue
            }
            // Our app id, from the credential parameter the adapter names (top level, or in `params`).
            var appID: String?
            if let name = cancellation.app?.credentialParameter {
                var value = adapter.credentials.parameters[name]
                if value == nil, case .table(let params)? = adapter.credentials.parameters["params"] { value = params[name] }
                switch value {
                case .text(let text)?: appID = text
                case .secret(let reference)?: appID = secrets[reference]
                default:
                    warnings.append("provider \(adapter.provider): cancellation app.credential_param '\(name)' is not a credential parameter; notices are refused")
                    continue
                }
            }
            guard RSAParameterSignature.timeFormatter(format: cancellation.time.format, timeZone: cancellation.time.timeZone) != nil else {
                warnings.append("provider \(adapter.provider): cancellation time_zone '\(cancellation.time.timeZone)' is unknown; notices are refused")
                continue
            }
            do {
                let verifier = try RSAParameterSignature.Verifier(publicKey: key, signatureParameter: cancellation.signatureParameter,
                                                                  unsigned: Set(cancellation.unsigned))
                verifiers[adapter.provider] = CancellationCheck(verifier: verifier, appID: appID,
                                                                timeFormat: (cancellation.time.format, cancellation.time.timeZone))
            } catch {
                warnings.append("provider \(adapter.provider): cancellation notices are refused: \(error.message)")
            }
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
                keys = IdentityProviderKeys {
                    guard let data = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileReadNoSuchFile) }
                    return String(decoding: data, as: UTF8.self)
                }
            case .url(let url)?:
                keys = IdentityProviderKeys {
                    let response = try await upstream.send(UpstreamRequest(method: "GET", url: url, headers: [HTTPHeaderLine("Accept", "application/json")]))
                    guard response.status == 200 else { throw CocoaError(.fileReadUnknown) }
                    return String(decoding: response.body, as: UTF8.self)
                }
            case nil:
                break
            }
            users = UserTokenVerifier(secret: secret, issuer: jwt.issuer, audience: jwt.audience, algorithms: Set(jwt.algorithms), jwks: keys)
        }
        var callers: [String: Caller] = [:]
        for client in config.clients {
            let caller = Caller(id: client.id, roles: client.roles, providers: client.providers, purposes: client.purposes)
            switch client.credential {
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
        let engine = PolicyEngine(bundle: bundle, homeRegion: config.homeRegion, minorAge: config.minorAge,
                                  limits: BodyLimits(maxBytes: config.limits.maxBodyBytes, maxDepth: config.limits.maxDepth,
                                                      maxFields: config.limits.maxFields))
        let cachedGrants = SubjectContextCache(grants)
        let outcomes = OutcomeRecorder(log: log, logger: logger)
        let vault = revocationKey.map { RevocationKeyVault(secret: $0) }
        let pipeline = SharePipeline(engine: engine, log: log, grants: cachedGrants, upstream: upstream, injectors: injectors,
                                     outcomes: outcomes, fingerprinter: Fingerprinter(key: fingerprintKey), vault: vault,
                                     node: config.node, now: now, logger: logger,
                                     decisionLines: config.decisionLinesJSON ? DecisionLines() : nil)
        var worker: RevocationWorker?
        if let revocations {
            if vault == nil { warnings.append("no revocation key is configured: revocations will end in manual_required") }
            worker = RevocationWorker(store: revocations, bundle: bundle, injectors: injectors, upstream: upstream,
                                      vault: vault ?? RevocationKeyVault(secret: Array("unused".utf8)), settings: propagation,
                                      now: now, logger: logger)
        }
        var names = serverNames ?? ["127.0.0.1", "localhost", "::1", "[::1]"]
        names.insert(config.host.lowercased())
        names.formUnion(config.serverNames)
        // A tunnel may name an adapter host at 443, or at its upstream's port when the upstream is that host.
        var tunnelPorts: [String: Set<Int>] = [:]
        for adapter in bundle.adapters.values {
            for host in adapter.hosts {
                tunnelPorts[host, default: [443]].formUnion(adapter.upstream.host == host ? [adapter.upstream.port ?? 443] : [])
            }
        }
        var settings = GatewaySettings(serverNames: names, maxBodyBytes: config.limits.maxBodyBytes,
                                       clientTimeout: .milliseconds(config.limits.clientTimeoutMs),
                                       maxHeaderBytes: config.limits.maxHeaderBytes,
                                       tunnels: TunnelSettings(certificates: tunnelCertificates, ports: tunnelPorts))
        settings.privacyFrameAncestors = config.privacyFrameAncestors
        settings.homeRegion = config.homeRegion
        let gateway = Gateway(pipeline: pipeline, grants: cachedGrants, authenticator: Authenticator(tokenDigests: callers),
                              settings: settings, revocations: revocations, revocationWorker: worker,
                              cancellationVerifiers: verifiers, queries: queries, users: users,
                              audit: audit, checkpointKey: checkpointSigner?.publicKey, now: now, ready: ready)
        return Result(gateway: gateway, pipeline: pipeline, outcomes: outcomes, revocationWorker: worker, warnings: warnings)
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

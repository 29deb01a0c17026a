import BrokerCore
import BrokerCredentials
import BrokerCurl
import BrokerFields
import BrokerService
import Foundation
import Logging

/// One loaded policy bundle and everything the broker builds from it: the decision engine,
/// each provider's credential injector, the cancellation-notice checks, the forward-proxy and
/// tunnel hosts. Immutable: a reload builds a new one and `ActivePolicy` switches to it, so a
/// share that took a revision at its start finishes on it whatever is installed meanwhile.
public final class PolicyRevision: Sendable {
    /// `PolicyBundle.revision`: the same files give the same id.
    public let id: String
    public let bundle: PolicyBundle
    public let loadedAt: Date
    let engine: PolicyEngine
    let injectors: [String: CredentialInjector]
    /// What each injector was built from, so a reload keeps the injector (and its cached token) when nothing changed.
    let injectorSources: [String: InjectorSource]
    let cancellationChecks: [String: CancellationCheck]
    /// The providers the bundle has adapters for (a lookup in `bundle.adapters` copies the adapter).
    let providers: Set<String>
    /// Each operation's credential fields (provider, operation name), worked out once.
    let credentialFields: [String: [String: [FieldDeclaration]]]
    /// Forward-proxy host (lowercased) → provider: kept here so a request reads it without copying the bundle.
    let providerByHost: [String: String]
    /// Host → the SDK token endpoints there, answered by the broker (`SDKTokenEndpoint`).
    let tokenEndpointsByHost: [String: [SDKTokenEndpoint]]
    /// Adapter host → the ports a `CONNECT` to it may name: 443, and its upstream's port when the upstream is that host.
    let tunnelPorts: [String: Set<Int>]
    /// Providers whose adapter has a revocation call: their jobs start `pending`.
    let propagating: Set<String>
    /// (provider, operation) → the members of its answer kept for revocation (`response_revocation_keys`), only where there are any.
    let responseRevocationKeys: [String: [String: [String]]]
    /// The candidate policy shares are also decided under (`shadow:`), if one is configured.
    public let shadow: ShadowPolicy?

    struct InjectorSource: Equatable {
        var spec: CredentialSpec
        var secrets: [SecretReference: String]
    }

    /// Everything a revision needs that is not the bundle: the same for every revision of one process.
    public struct Environment: Sendable {
        public var config: BrokerConfig
        public var upstream: any UpstreamClient
        public var now: @Sendable () -> Date
        public var logger: Logger

        public init(config: BrokerConfig, upstream: any UpstreamClient, now: @escaping @Sendable () -> Date, logger: Logger) {
            self.config = config; self.upstream = upstream; self.now = now; self.logger = logger
        }
    }

    private init(bundle: PolicyBundle, engine: PolicyEngine, injectors: [String: CredentialInjector],
                 injectorSources: [String: InjectorSource], cancellationChecks: [String: CancellationCheck], loadedAt: Date,
                 shadow: ShadowPolicy?) {
        self.id = bundle.revision; self.bundle = bundle; self.engine = engine; self.loadedAt = loadedAt; self.shadow = shadow
        self.injectors = injectors; self.injectorSources = injectorSources; self.cancellationChecks = cancellationChecks
        providers = Set(bundle.adapters.keys)
        credentialFields = bundle.adapters.mapValues { adapter in
            Dictionary(adapter.operations.map { ($0.name, $0.declarations.filter(\.credential)) }, uniquingKeysWith: { a, _ in a })
        }
        providerByHost = bundle.providerByHost
        tokenEndpointsByHost = bundle.tokenEndpointsByHost
        var ports: [String: Set<Int>] = [:]
        for adapter in bundle.adapters.values {
            for host in adapter.hosts {
                ports[host, default: [443]].formUnion(adapter.upstream.host == host ? [adapter.upstream.port ?? 443] : [])
            }
            for endpoint in adapter.tokenEndpoints { ports[endpoint.host, default: [443]].insert(endpoint.port) }
        }
        tunnelPorts = ports
        propagating = Set(bundle.adapters.values.filter { $0.revocation != nil }.map(\.provider))
        var responseKeys: [String: [String: [String]]] = [:]
        for adapter in bundle.adapters.values {
            for operation in adapter.operations where !operation.responseRevocationKeys.isEmpty {
                responseKeys[adapter.provider, default: [:]][operation.name] = operation.responseRevocationKeys
            }
        }
        responseRevocationKeys = responseKeys
    }

    /// Builds a revision. Providers whose credentials cannot be set up are left without an
    /// injector (their shares answer 502 `credential_unavailable`) and reported in the warnings,
    /// so one missing secret does not take the whole broker down. A provider whose credential
    /// spec and secrets are those of `previous` keeps its injector, with its cached token; an
    /// unchanged `shadow` candidate keeps its counts.
    public static func build(_ bundle: PolicyBundle, secrets: [SecretReference: String], environment: Environment,
                             shadow: PolicyBundle? = nil, previous: PolicyRevision? = nil) -> (PolicyRevision, warnings: [String]) {
        let config = environment.config
        var warnings: [String] = []
        var injectors: [String: CredentialInjector] = [:]
        var sources: [String: InjectorSource] = [:]
        for adapter in bundle.adapters.values.sorted(by: { $0.provider < $1.provider }) {
            let source = InjectorSource(spec: adapter.credentials,
                                        secrets: secrets.filter { adapter.secretReferences.contains($0.key) })
            sources[adapter.provider] = source
            if !adapter.upstream.isTLS && !adapter.upstream.isLoopback {
                warnings.append("provider \(adapter.provider): upstream \(adapter.upstream) is not TLS and not on loopback")
            }
            if let previous, previous.injectorSources[adapter.provider] == source, let kept = previous.injectors[adapter.provider] {
                injectors[adapter.provider] = kept
                continue
            }
            do {
                injectors[adapter.provider] = try CredentialInjector(spec: adapter.credentials, secrets: secrets,
                                                                     client: environment.upstream, now: environment.now,
                                                                     logger: environment.logger)
            } catch {
                warnings.append("provider \(adapter.provider) is unavailable: \(error.message)")
            }
        }
        let (checks, cancellationWarnings) = cancellationChecks(bundle, secrets: secrets)
        warnings += cancellationWarnings
        let engine = PolicyEngine(bundle: bundle, homeRegion: config.homeRegion, minorAge: config.minorAge,
                                  limits: BodyLimits(maxBytes: config.limits.maxBodyBytes, maxDepth: config.limits.maxDepth,
                                                      maxFields: config.limits.maxFields))
        var shadowPolicy: ShadowPolicy?
        if let shadow {
            shadowPolicy = previous?.shadow?.revision == shadow.revision
                ? previous?.shadow : ShadowPolicy(bundle: shadow, like: engine, since: environment.now())
        }
        let revision = PolicyRevision(bundle: bundle, engine: engine, injectors: injectors, injectorSources: sources,
                                      cancellationChecks: checks, loadedAt: environment.now(), shadow: shadowPolicy)
        return (revision, warnings)
    }

    private static func cancellationChecks(_ bundle: PolicyBundle,
                                           secrets: [SecretReference: String]) -> ([String: CancellationCheck], [String]) {
        var warnings: [String] = []
        var checks: [String: CancellationCheck] = [:]
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
                checks[adapter.provider] = CancellationCheck(verifier: verifier, appID: appID,
                                                             timeFormat: (cancellation.time.format, cancellation.time.timeZone))
            } catch {
                warnings.append("provider \(adapter.provider): cancellation notices are refused: \(error.message)")
            }
        }
        return (checks, warnings)
    }
}

/// The revision the broker decides with now. Every share, revoke and notice reads it once, at
/// its start (a lock held for one pointer copy); `install` switches every later one at once.
public final class ActivePolicy: Sendable {
    private let revision: Locked<PolicyRevision>

    public init(_ revision: PolicyRevision) { self.revision = Locked(revision) }

    public var current: PolicyRevision { revision.snapshot }

    /// Installs `next` and returns the revision it replaced.
    @discardableResult
    public func install(_ next: PolicyRevision) -> PolicyRevision {
        revision.withLock { current in
            let previous = current
            current = next
            return previous
        }
    }
}

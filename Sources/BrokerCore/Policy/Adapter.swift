/// `adapters/<provider>.yaml`: how the broker talks to one provider.
///
/// The upstream it forwards to (never a host taken from the caller), the hosts
/// that select it in forward-proxy mode, the credentials it injects, the
/// operations it lets through with every field each may carry, and the call that
/// tells the provider to delete what it received.
public struct Adapter: Sendable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case login, realname, location, push
    }

    public var provider: String
    public var kind: Kind
    public var upstream: UpstreamURL
    public var hosts: [String]
    public var credentials: CredentialSpec
    public var operations: [ProviderOperation]
    public var revocation: RevocationSpec?
    /// The provider's notice that a user withdrew authorization there, if it sends one.
    public var cancellation: CancellationSpec?
    /// `http2_only: true`: the provider speaks HTTP/2 only, so every request goes out as HTTP/2.
    public var http2Only = false
    /// Where the provider's SDKs sign themselves in: answered by the broker, never forwarded (`SDKTokenEndpoint`).
    public var tokenEndpoints: [SDKTokenEndpoint] = []
    /// How the provider's own errors look (`refusals:`), so that its SDKs read the broker's refusals as
    /// the provider's: an SDK may read an error's code from one member alone, or match an answer to its
    /// request by a header the provider echoes (the adapter names both).
    public struct RefusalShape: Sendable, Hashable {
        /// `code_member`: the member the provider's error bodies carry their code in; a refusal repeats the problem's code under it.
        public var codeMember: String?
        /// `echo_headers`: request headers the provider answers with (lowercased); a refusal echoes them too.
        public var echoHeaders: [String] = []

        public init(codeMember: String? = nil, echoHeaders: [String] = []) {
            self.codeMember = codeMember; self.echoHeaders = echoHeaders
        }
    }
    public var refusals: RefusalShape?

    /// Every host a tunnel may open to for this adapter: its own and its token endpoints'.
    public var tunnelHosts: [String] { hosts + tokenEndpoints.map(\.host).filter { !hosts.contains($0) } }

    /// Every secret the adapter needs resolved at start: credentials and the cancellation key.
    public var secretReferences: [SecretReference] {
        credentials.secretReferences + (cancellation.map { [$0.publicKey] } ?? [])
    }
    /// SHA-256 (hex) of the file's bytes: logged with every share.
    public var contentHash: String
    var line: (provider: Int, upstream: Int) = (1, 1)

    public func operation(named name: String) -> ProviderOperation? {
        operations.first { $0.name == name }
    }

    static func decode(yaml: String, file: String, issues: IssueCollector) -> Adapter? {
        guard let root = YAMLNode.parse(yaml, file: file, issues: issues),
              let object = root.object("adapter", required: ["provider", "kind", "upstream", "credentials", "operations"],
                                       optional: ["hosts", "revocation", "cancellation", "http2_only", "token_endpoints",
                                                  "refusals"]) else { return nil }
        let provider = object["provider"]?.string("provider")
        if let provider, !PolicyBundle.isProviderID(provider) {
            object["provider"]?.error("provider '\(provider)' must be a kebab-case id such as acme-push")
        }
        var kind: Kind?
        if let node = object["kind"], let text = node.string("kind") {
            kind = Kind(rawValue: text)
            if kind == nil {
                node.error("kind must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
            }
        }
        var upstream: UpstreamURL?
        if let node = object["upstream"], let text = node.string("upstream") {
            upstream = UpstreamURL(text)
            if upstream == nil {
                node.error("upstream must be http(s)://host[:port][/path] with no query or user info, not '\(text)'")
            }
        }
        var hosts: [String] = []
        for (host, line) in object["hosts"]?.strings("hosts") ?? [] {
            let lowered = host.lowercased()
            if lowered.isEmpty || lowered.contains("/") || lowered.contains(" ") {
                issues.add(file, line, "hosts: '\(host)' is not a host name")
            } else {
                hosts.append(lowered)
            }
        }
        let credentials = object["credentials"].flatMap { CredentialSpec.decode($0) }
        var operations: [ProviderOperation] = []
        for pair in object["operations"]?.mapping("operations") ?? [] {
            if let operation = ProviderOperation.decode(name: pair.key, nameLine: pair.keyLine, node: pair.value) {
                operations.append(operation)
            }
        }
        if let operationsNode = object["operations"], case .mapping(let mapping) = operationsNode.node, mapping.count == 0 {
            operationsNode.error("operations: at least one operation is needed")
        }
        let revocation = object["revocation"].flatMap { RevocationSpec.decode($0) }
        // A partial adapter (invalid parts replaced by placeholders) still goes through the
        // cross-file checks so that every error is reported; the issues already recorded
        // make the bundle unusable.
        guard let provider else { return nil }
        let resolvedUpstream = upstream ?? UpstreamURL("https://invalid.invalid")!
        if hosts.isEmpty, let upstream { hosts = [upstream.host] }
        var adapter = Adapter(provider: provider, kind: kind ?? .push, upstream: resolvedUpstream, hosts: hosts,
                              credentials: credentials ?? CredentialSpec(kind: .none),
                              operations: operations, revocation: revocation,
                              contentHash: ContentHash.sha256Hex(yaml))
        adapter.cancellation = object["cancellation"].flatMap { CancellationSpec.decode($0) }
        adapter.http2Only = object["http2_only"]?.bool("http2_only") ?? false
        adapter.tokenEndpoints = object["token_endpoints"].map { SDKTokenEndpoint.decode($0, provider: provider) } ?? []
        if let node = object["refusals"], let spec = node.object("refusals", optional: ["code_member", "echo_headers"]) {
            var shape = RefusalShape()
            if let member = spec["code_member"]?.string("refusals: code_member") {
                let taken = ["type", "title", "status", "detail", "instance", "code", "share_id", "fields", "fields_total"]
                if member.isEmpty || taken.contains(member) || !member.utf8.allSatisfy({ $0 == 0x5f || (0x61...0x7a).contains($0) }) {
                    spec["code_member"]?.error("refusals: code_member must be a lowercase member name a problem does not already have, not '\(member)'")
                } else {
                    shape.codeMember = member
                }
            }
            shape.echoHeaders = spec["echo_headers"]?.strings("refusals: echo_headers")?.map { $0.0.lowercased() } ?? []
            for name in shape.echoHeaders where name.hasPrefix("x-share-") || PolicyEngine.transportHeaders.contains(name) {
                spec["echo_headers"]?.error("refusals: echo_headers cannot echo \(name)")
            }
            adapter.refusals = shape
        }
        adapter.line = (object["provider"]?.line ?? 1, object["upstream"]?.line ?? 1)
        return adapter
    }
}

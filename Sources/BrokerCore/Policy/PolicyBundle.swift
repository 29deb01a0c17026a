/// A policy file's name (as it should appear in messages) and its text.
public struct PolicyFile: Sendable {
    public var name: String
    public var text: String
    public init(name: String, text: String) { self.name = name; self.text = text }

    /// The file name without folders and extension: the provider id it must hold.
    public var stem: String {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        if let dot = base.lastIndex(of: ".") { return String(base[..<dot]) }
        return base
    }
}

/// The whole policy: taxonomy, contracts and adapters, validated together.
///
/// Like an OPA bundle, it is data the engine evaluates. `load` checks every file
/// and every relation between files (adapter ↔ contract pairs, categories and
/// purposes known to the taxonomy, each adapter category inside some purpose of
/// its contract, revocation references) and reports all problems at once.
public struct PolicyBundle: Sendable {
    public var taxonomy: Taxonomy
    public var contracts: [String: Contract]
    public var adapters: [String: Adapter]
    /// Forward-proxy host → provider.
    public var providerByHost: [String: String]
    /// Host → the SDK token endpoints there (`token_endpoints:`), in provider order.
    public var tokenEndpointsByHost: [String: [SDKTokenEndpoint]]
    /// The sharing list the company has published (`contracts/published-sharing-list.yaml`), when there is one.
    public var publishedList: PublishedSharingList?
    /// The privacy policy's versions (`contracts/privacy-policy.yaml`), when there is the file.
    public var privacyPolicy: PrivacyPolicy?
    /// The bundle's revision id: `p-` and 16 hex digits of SHA-256 over the taxonomy's and every
    /// adapter's and contract's file hash (and the published list's), so the same files always give
    /// the same revision.
    public var revision: String

    public init(taxonomy: Taxonomy, contracts: [String: Contract], adapters: [String: Adapter], taxonomyHash: String = "",
                publishedList: PublishedSharingList? = nil, privacyPolicy: PrivacyPolicy? = nil) {
        self.taxonomy = taxonomy
        self.privacyPolicy = privacyPolicy
        self.contracts = contracts
        self.adapters = adapters
        self.publishedList = publishedList
        var byHost: [String: String] = [:]
        for adapter in adapters.values {
            for host in adapter.hosts { byHost[host] = adapter.provider }
        }
        self.providerByHost = byHost
        var endpoints: [String: [SDKTokenEndpoint]] = [:]
        for adapter in adapters.values.sorted(by: { $0.provider < $1.provider }) {
            for endpoint in adapter.tokenEndpoints { endpoints[endpoint.host, default: []].append(endpoint) }
        }
        self.tokenEndpointsByHost = endpoints
        var manifest = "taxonomy " + taxonomyHash + "\n"
        for (provider, adapter) in adapters.sorted(by: { $0.key < $1.key }) { manifest += "adapter \(provider) \(adapter.contentHash)\n" }
        for (provider, contract) in contracts.sorted(by: { $0.key < $1.key }) { manifest += "contract \(provider) \(contract.contentHash)\n" }
        if let publishedList { manifest += "published-list \(publishedList.contentHash)\n" }
        if let privacyPolicy { manifest += "privacy-policy \(privacyPolicy.contentHash)\n" }
        self.revision = "p-" + ContentHash.sha256Hex(manifest).prefix(16)
    }

    /// Decodes and cross-checks everything. The bundle is `nil` when there is any issue.
    /// `publishedList` is `contracts/published-sharing-list.yaml` when the folder has one.
    public static func load(taxonomy taxonomyFile: PolicyFile?, contracts contractFiles: [PolicyFile],
                            adapters adapterFiles: [PolicyFile],
                            publishedList publishedFile: PolicyFile? = nil,
                            privacyPolicy privacyFile: PolicyFile? = nil) -> (bundle: PolicyBundle?, issues: [PolicyIssue]) {
        var issueList: [PolicyIssue] = []
        var taxonomy: Taxonomy?
        if let taxonomyFile {
            taxonomy = Taxonomy.decode(yaml: taxonomyFile.text, file: taxonomyFile.name, issues: &issueList)
        } else {
            issueList.append(PolicyIssue(file: "contracts/taxonomy.yaml", line: 1, message: "taxonomy.yaml is missing"))
        }
        let issues = IssueCollector()
        issues.append(contentsOf: issueList)

        var contracts: [String: Contract] = [:]
        var contractFilesByProvider: [String: PolicyFile] = [:]
        let contractStems = Set(contractFiles.map(\.stem))
        let adapterStems = Set(adapterFiles.map(\.stem))
        for file in contractFiles.sorted(by: { $0.name < $1.name }) {
            if !adapterStems.contains(file.stem) {
                issues.add(file.name, 1, "contract '\(file.stem)' has no adapter (expected adapters/\(file.stem).yaml)")
            }
            guard let contract = Contract.decode(yaml: file.text, file: file.name, taxonomy: taxonomy, issues: issues) else {
                continue
            }
            if contract.provider != file.stem {
                issues.add(file.name, 1, "provider '\(contract.provider)' does not match the file name '\(file.stem)'")
            }
            if let other = contractFilesByProvider[contract.provider] {
                issues.add(file.name, 1, "a second contract for '\(contract.provider)' (first in \(other.name))")
                continue
            }
            contracts[contract.provider] = contract
            contractFilesByProvider[contract.provider] = file
        }

        var adapters: [String: Adapter] = [:]
        var adapterFilesByProvider: [String: PolicyFile] = [:]
        var hostOwner: [String: String] = [:]
        for file in adapterFiles.sorted(by: { $0.name < $1.name }) {
            if !contractStems.contains(file.stem) {
                issues.add(file.name, 1, "adapter '\(file.stem)' has no contract (expected contracts/\(file.stem).yaml)")
            }
            guard let adapter = Adapter.decode(yaml: file.text, file: file.name, issues: issues) else { continue }
            if adapter.provider != file.stem {
                issues.add(file.name, adapter.line.provider,
                           "provider '\(adapter.provider)' does not match the file name '\(file.stem)'")
            }
            if let other = adapterFilesByProvider[adapter.provider] {
                issues.add(file.name, 1, "a second adapter for '\(adapter.provider)' (first in \(other.name))")
                continue
            }
            for host in adapter.hosts {
                if let owner = hostOwner[host] {
                    issues.add(file.name, adapter.line.upstream, "host '\(host)' is already claimed by adapter \(owner)")
                }
                hostOwner[host] = adapter.provider
            }
            adapters[adapter.provider] = adapter
            adapterFilesByProvider[adapter.provider] = file
            crossCheck(adapter, file: file.name, contract: contracts[adapter.provider], taxonomy: taxonomy, issues: issues)
        }
        let publishedList = publishedFile.flatMap {
            PublishedSharingList.decode(yaml: $0.text, file: $0.name, taxonomy: taxonomy, providers: adapterStems, issues: issues)
        }
        let privacyPolicy = privacyFile.flatMap {
            PrivacyPolicy.decode(yaml: $0.text, file: $0.name, taxonomy: taxonomy, providers: adapterStems, issues: issues)
        }
        if let privacyPolicy, let taxonomy { privacyPolicy.check(contracts: contracts, taxonomy: taxonomy, issues: issues) }
        let all = issues.issues.sorted { ($0.file, $0.line, $0.message) < ($1.file, $1.line, $1.message) }
        guard all.isEmpty, let taxonomy else { return (nil, all) }
        return (PolicyBundle(taxonomy: taxonomy, contracts: contracts, adapters: adapters,
                             taxonomyHash: taxonomyFile.map { ContentHash.sha256Hex($0.text) } ?? "", publishedList: publishedList,
                             privacyPolicy: privacyPolicy), [])
    }

    private static func crossCheck(_ adapter: Adapter, file: String, contract: Contract?, taxonomy: Taxonomy?,
                                   issues: IssueCollector) {
        var revocationKeys: [String] = []
        var seenRoutes: [String: String] = [:]
        for operation in adapter.operations {
            let route = operation.method + " " + operation.path.segments.map { segment -> String in
                if case .literal(let text) = segment { return text } else { return "{}" }
            }.joined(separator: "/") + " " + (operation.matchHeaders.map { "\($0.name)=\($0.value)" }
                + operation.matchQuery.map { "?\($0.name)=\($0.value)" }).sorted().joined(separator: ",")
            if let other = seenRoutes[route] {
                issues.add(file, operation.line, "operation \(operation.name) has the same method, path, match_headers and match_query as \(other)")
            }
            seenRoutes[route] = operation.name
            revocationKeys += operation.responseRevocationKeys.map { "response." + $0 }
            for purpose in operation.purposes {
                // A purpose the contract does not name is a warning (`outOfContractScope`): the contract was narrowed.
                if let taxonomy, !taxonomy.purposes.contains(purpose) {
                    issues.add(file, operation.line, "operation \(operation.name): purpose '\(purpose)' is not in the taxonomy")
                }
            }
            for declaration in operation.declarations {
                if declaration.revocationKey {
                    revocationKeys.append(declaration.location == .path ? "{\(declaration.pattern)}" : declaration.pattern.description)
                }
                guard let category = declaration.category else { continue }
                guard let taxonomy else { continue }
                guard let info = taxonomy.categories[category] else {
                    issues.add(file, declaration.line, "field \(declaration.pattern): category '\(category)' is not in the taxonomy")
                    continue
                }
                if let minimise = declaration.minimise {
                    for problem in minimisationProblems(minimise, of: category, info: info, taxonomy: taxonomy, contract: contract) {
                        issues.add(file, minimise.line, "field \(declaration.pattern): minimise: " + problem)
                    }
                }
            }
        }
        if let revocation = adapter.revocation {
            for pattern in revocation.body?.placeholders ?? []
            where !pattern.split(separator: "|").allSatisfy({ revocationKeys.contains(String($0)) }) {
                issues.add(file, revocation.line,
                           "revocation: '{revocation_key:\(pattern)}' names no field marked revocation_key: true "
                           + "(nor a response.NAME of some operation's response_revocation_keys)")
            }
            for name in revocation.path.parameterNames where !revocationKeys.contains("{\(name)}") {
                issues.add(file, revocation.line,
                           "revocation: path parameter '{\(name)}' names no path_params entry marked revocation_key: true")
            }
        }
    }

    /// What is wrong with a field's minimisation: the transform must suit the field's category
    /// (coordinates are locations, prefixes are IP addresses), and the category it yields must be a
    /// known personal one, other than the field's and neither above nor below it (a grant or scope
    /// covering one would cover the other). Whether the contract allows it is `outOfContractScope`'s
    /// warning: a narrowed contract must install.
    static func minimisationProblems(_ minimise: Minimisation, of category: String, info: CategoryInfo, taxonomy: Taxonomy,
                                     contract: Contract?) -> [String] {
        var problems: [String] = []
        let target = minimise.category
        if !info.personal { problems.append("category '\(category)' is not personal; there is nothing to minimise") }
        switch minimise.transform {
        case .roundCoordinates where !Taxonomy.covers("user.location", category):
            problems.append("round_coordinates applies to a location (user.location.*), not '\(category)'")
        case .ipPrefix where !Taxonomy.covers("user.device.ip_address", category):
            problems.append("ip_prefix applies to an IP address (user.device.ip_address), not '\(category)'")
        default: break
        }
        guard let targetInfo = taxonomy.categories[target] else {
            return problems + ["category '\(target)' is not in the taxonomy"]
        }
        if !targetInfo.personal { problems.append("category '\(target)' is not personal: a minimised value is still personal data") }
        if Taxonomy.covers(category, target) || Taxonomy.covers(target, category) {
            problems.append("category '\(target)' must be a coarser category beside '\(category)', not it, above or below it")
        }
        if targetInfo.sensitive && !info.sensitive {
            problems.append("category '\(target)' is sensitive and '\(category)' is not: minimising must not ask for more consent")
        }
        return problems
    }

    /// kebab-case: lowercase letters and digits separated by single hyphens.
    /// Declarations of a non-personal category that take any value: free text there could carry
    /// personal data past consent (`{"Extra":"IdCard=…"}`), so `sharebroker check` warns about each
    /// until it gets `values`, `pattern`, `type` or `max_length`, or a personal category.
    public var unconstrainedFreeText: [(provider: String, operation: String, path: String, line: Int)] {
        var found: [(provider: String, operation: String, path: String, line: Int)] = []
        for provider in adapters.keys.sorted() {
            for operation in adapters[provider]?.operations ?? [] {
                for declaration in operation.declarations where !declaration.credential && declaration.constraint == nil {
                    guard let category = declaration.category, taxonomy.categories[category]?.personal == false else { continue }
                    found.append((provider, operation.name, declaration.pattern.description, declaration.line))
                }
            }
        }
        return found
    }

    public static func isProviderID(_ id: String) -> Bool {
        guard !id.isEmpty, !id.hasPrefix("-"), !id.hasSuffix("-"), !id.contains("--") else { return false }
        return id.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
    }
}

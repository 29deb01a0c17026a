/// `contracts/privacy-policy.yaml`: the company's privacy policy, version by version, with what each
/// version discloses about sharing with third parties, in the published sharing list's shape plus
/// each party's region (issue 27). Grants name the version they were given under (`policy_version`).
///
/// ```yaml
/// controller: { name: "Example Co., Ltd.", contact: "privacy@example.com" }   # who decides the processing
/// versions:
///   - id: "2025-07"
///     published: 2025-06-01           # when users were notified
///     effective: 2025-07-01           # when it applies (30 days later for a material change)
///     url: { en: https://www.example.com/privacy/2025-07, zh: https://www.example.com/zh/privacy/2025-07 }
///     parties:
///       - provider: acme-push
///         region: CN                  # where the party processes the data
///         purposes:
///           essential.service.notifications.push:
///             categories: [user.device.push_token, user.content.notification]
/// ```
/// Versions are listed oldest first. A category covers its sub-categories, as in a contract.
public struct PrivacyPolicy: Sendable {
    /// Its file name in the contracts folder (beside `taxonomy.yaml`; not a contract).
    public static let fileName = "privacy-policy.yaml"
    /// The notice a material change needs: the effective date at least this many days after publication.
    public static let noticeDays = 30

    public struct Version: Sendable {
        public var id: String
        public var published: CalendarDay
        public var effective: CalendarDay
        /// Language → the version's text.
        public var urls: [String: String]
        /// Provider → purpose → the categories disclosed for it.
        public var parties: [String: [String: [String]]]
        /// Provider → the region it processes in, where the version says.
        public var regions: [String: String]
        public var line: Int

        public init(id: String, published: CalendarDay, effective: CalendarDay, urls: [String: String],
                    parties: [String: [String: [String]]], regions: [String: String], line: Int) {
            self.id = id; self.published = published; self.effective = effective; self.urls = urls
            self.parties = parties; self.regions = regions; self.line = line
        }

        /// Whether this version discloses sending `category` to `provider` for `purpose` (a listed category covers its sub-categories).
        public func discloses(provider: String, purpose: String, category: String) -> Bool {
            parties[provider]?[purpose]?.contains { Taxonomy.covers($0, category) } ?? false
        }
    }

    /// One difference between two versions, and whether it is material (users must be told 30 days
    /// ahead, and grants under the older version do not cover it) or minor.
    public struct Change: Sendable, Hashable, CustomStringConvertible {
        public enum Kind: String, Sendable, Hashable {
            case party, purpose, category
            case sensitiveCategory = "sensitive_category"
            case region, narrowing, wording
        }
        public var kind: Kind
        public var provider: String?
        public var purpose: String?
        public var category: String?
        public var reason: String

        public var material: Bool { kind != .narrowing && kind != .wording }
        public var description: String { "\(material ? "material" : "minor   ")  \(kind.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0)) \(reason)" }
    }

    /// Who decides the processing (the company), as consent records name it.
    public struct Controller: Sendable, Hashable {
        public var name: String
        public var contact: String
    }
    public var controller: Controller
    /// Oldest first, effective dates increasing.
    public var versions: [Version]
    public var file: String
    public var contentHash: String

    public func version(_ id: String) -> Version? { versions.first { $0.id == id } }

    /// The version in force on `day`: the last whose effective date is on or before it.
    public func version(inForceOn day: CalendarDay) -> Version? { versions.last { $0.effective <= day } }

    /// What `new` changes against `old`, material changes first, each in provider, purpose, category order.
    /// Only personal categories count (the taxonomy decides); a version that changes nothing else is a wording change.
    public static func changes(from old: Version, to new: Version, taxonomy: Taxonomy) -> [Change] {
        var material: [Change] = []
        var minor: [Change] = []
        func personal(_ category: String) -> Bool { taxonomy.categories[category]?.personal ?? true }
        func covered(_ category: String, by list: [String]) -> Bool { list.contains { Taxonomy.covers($0, category) } }
        for provider in Set(old.parties.keys).union(new.parties.keys).sorted() {
            guard let now = new.parties[provider] else {
                minor.append(Change(kind: .narrowing, provider: provider, reason: "\(provider) is no longer a party"))
                continue
            }
            guard let before = old.parties[provider] else {
                let region = new.regions[provider].map { " (region \($0))" } ?? ""
                material.append(Change(kind: .party, provider: provider, reason: "\(provider) is a new party\(region)"))
                continue
            }
            if let region = new.regions[provider], region != old.regions[provider] {
                material.append(Change(kind: .region, provider: provider,
                                       reason: "\(provider) processes in \(region) (was \(old.regions[provider] ?? "not stated"))"))
            }
            for purpose in Set(before.keys).union(now.keys).sorted() {
                guard let categories = now[purpose] else {
                    minor.append(Change(kind: .narrowing, provider: provider, purpose: purpose,
                                        reason: "\(provider) no longer receives data for \(purpose)"))
                    continue
                }
                guard let previous = before[purpose] else {
                    material.append(Change(kind: .purpose, provider: provider, purpose: purpose,
                                           reason: "\(provider) receives data for a new purpose, \(purpose)"))
                    continue
                }
                for category in categories.sorted() where personal(category) && !covered(category, by: previous) {
                    let sensitive = taxonomy.categories[category]?.sensitive ?? false
                    material.append(Change(kind: sensitive ? .sensitiveCategory : .category, provider: provider, purpose: purpose,
                                           category: category,
                                           reason: "\(provider) receives \(sensitive ? "sensitive " : "")\(category) for \(purpose)"))
                }
                for category in previous.sorted() where personal(category) && !covered(category, by: categories) {
                    minor.append(Change(kind: .narrowing, provider: provider, purpose: purpose, category: category,
                                        reason: "\(provider) no longer receives \(category) for \(purpose)"))
                }
            }
        }
        if material.isEmpty && minor.isEmpty {
            minor.append(Change(kind: .wording, reason: "the same parties, purposes, categories and regions: a wording change"))
        }
        return material + minor
    }

    /// Decodes the file; `providers` are the providers that have an adapter.
    static func decode(yaml: String, file: String, taxonomy: Taxonomy?, providers: Set<String>,
                       issues: IssueCollector) -> PrivacyPolicy? {
        guard let root = YAMLNode.parse(yaml, file: file, issues: issues),
              let object = root.object("privacy policy", required: ["controller", "versions"]) else { return nil }
        var controller = Controller(name: "", contact: "")
        if let node = object["controller"], let spec = node.object("controller", required: ["name", "contact"]) {
            controller = Controller(name: spec["name"]?.string("controller: name") ?? "", contact: spec["contact"]?.string("controller: contact") ?? "")
        }
        var versions: [Version] = []
        for item in object["versions"]?.sequence("versions") ?? [] {
            guard let spec = item.object("version", required: ["id", "published", "effective", "url", "parties"]),
                  let id = spec["id"]?.string("version: id") else { continue }
            let what = "version \(id)"
            func day(_ key: String) -> CalendarDay? {
                guard let node = spec[key], let text = node.string("\(what): \(key)") else { return nil }
                guard let day = CalendarDay(text) else { node.error("\(what): \(key) must be a date YYYY-MM-DD, not '\(text)'"); return nil }
                return day
            }
            let published = day("published"), effective = day("effective")
            var urls: [String: String] = [:]
            for pair in spec["url"]?.mapping("\(what): url") ?? [] {
                if let url = pair.value.httpsURL("\(what): url: \(pair.key)") { urls[pair.key] = url }
            }
            if urls.isEmpty { spec["url"]?.error("\(what): url needs the text's URL in at least one language ({ en: https://… })") }
            var parties: [String: [String: [String]]] = [:]
            var regions: [String: String] = [:]
            for entry in spec["parties"]?.sequence("\(what): parties") ?? [] {
                guard let party = entry.object("party", required: ["provider", "purposes"], optional: ["region"]),
                      let providerNode = party["provider"], let provider = providerNode.string("provider") else { continue }
                if !providers.contains(provider) {
                    providerNode.error("\(what): provider '\(provider)' has no adapter (expected adapters/\(provider).yaml)")
                }
                if parties[provider] != nil { providerNode.error("\(what): provider '\(provider)' is listed twice") }
                if let node = party["region"], let region = node.string("\(what): region") {
                    if region.count == 2, region.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) {
                        regions[provider] = region
                    } else {
                        node.error("\(what): region must be two upper-case letters (ISO 3166), not '\(region)'")
                    }
                }
                var purposes: [String: [String]] = [:]
                for scope in Contract.scopes(party["purposes"], context: "\(what): party \(provider): ", file: file,
                                             taxonomy: taxonomy, issues: issues) {
                    purposes[scope.purpose] = scope.categories
                }
                parties[provider] = purposes
            }
            if versions.contains(where: { $0.id == id }) { spec["id"]?.error("\(what) is listed twice") }
            guard let published, let effective else { continue }
            if effective < published {
                spec["effective"]?.error("\(what): effective \(effective) is before published \(published)")
            }
            if let previous = versions.last, effective <= previous.effective {
                spec["effective"]?.error("\(what): effective \(effective) is not after version \(previous.id)'s (\(previous.effective)); list versions oldest first")
            }
            versions.append(Version(id: id, published: published, effective: effective, urls: urls, parties: parties,
                                    regions: regions, line: item.line))
        }
        if versions.isEmpty { object["versions"]?.error("versions: at least one version is needed") }
        return PrivacyPolicy(controller: controller, versions: versions, file: file, contentHash: ContentHash.sha256Hex(yaml))
    }

    /// The rules across versions and contracts: 30 days' notice for a material change, and every
    /// party a contract allows disclosed by some version.
    func check(contracts: [String: Contract], taxonomy: Taxonomy, issues: IssueCollector) {
        for (old, new) in zip(versions, versions.dropFirst()) {
            let material = Self.changes(from: old, to: new, taxonomy: taxonomy).filter(\.material)
            let notice = new.effective.daysSince(new.published)
            if let first = material.first, notice < Self.noticeDays {
                issues.add(file, new.line, "version \(new.id): a material change (\(first.reason)) needs \(Self.noticeDays) days' notice, "
                           + "but effective \(new.effective) is \(notice) day\(notice == 1 ? "" : "s") after published \(new.published)")
            }
        }
        for provider in contracts.keys.sorted() where !versions.contains(where: { $0.parties[provider] != nil }) {
            issues.add(file, 1, "provider \(provider) has a contract, but no version of the privacy policy discloses it")
        }
    }
}

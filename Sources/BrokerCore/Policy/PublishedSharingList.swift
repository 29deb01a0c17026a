import Foundation

/// `contracts/published-sharing-list.yaml`: the third-party sharing list (第三方信息共享清单) as
/// the company has actually published it: per party, the purposes and the personal-information
/// categories it discloses. The broker compares real traffic with it, and flags **drift**: a party,
/// a purpose or a category that was shared but is not disclosed.
///
/// ```yaml
/// published_at: 2025-07-01                 # optional: drift in /metrics counts traffic from this day
/// url: https://www.example.com/privacy/third-parties   # optional: where it is published
/// parties:
///   - provider: acme-push
///     purposes:
///       essential.service.notifications.push:
///         categories: [user.device.push_token, user.content.notification]
/// ```
/// A listed category covers its sub-categories, as in a contract.
public struct PublishedSharingList: Sendable {
    /// Its file name in the contracts folder (beside `taxonomy.yaml`; neither is a contract).
    public static let fileName = "published-sharing-list.yaml"

    /// Provider → purpose → the categories disclosed for it.
    public var parties: [String: [String: [String]]]
    public var publishedAt: CalendarDay?
    public var url: String?
    /// The file as named when loaded, for messages.
    public var file: String
    /// SHA-256 (hex) of the file's bytes: part of the policy revision.
    public var contentHash: String
    /// Line of each party's `provider:`, for messages.
    public var partyLines: [String: Int] = [:]

    /// What a share disclosed nowhere in the list is missing: the whole party, the purpose for
    /// that party, or the category for that party and purpose.
    public enum DriftKind: String, Sendable, CaseIterable {
        case party, purpose, category
    }

    public init(parties: [String: [String: [String]]], publishedAt: CalendarDay? = nil, url: String? = nil,
                file: String = "contracts/" + fileName, contentHash: String = "") {
        self.parties = parties; self.publishedAt = publishedAt; self.url = url
        self.file = file; self.contentHash = contentHash
    }

    /// How the list fails to disclose sending `category` to `provider` for `purpose`; nil when it discloses it.
    public func undisclosed(provider: String, purpose: String, category: String) -> DriftKind? {
        guard let purposes = parties[provider] else { return .party }
        guard let categories = purposes[purpose] else { return .purpose }
        return categories.contains { Taxonomy.covers($0, category) } ? nil : .category
    }

    /// What `contracts` allow that this list does not disclose, in provider, purpose, category order:
    /// a share of any of them would be drift. Personal categories only (the taxonomy decides).
    public func undisclosedScopes(of contracts: [String: Contract], taxonomy: Taxonomy)
        -> [(provider: String, purpose: String, category: String, kind: DriftKind)] {
        var found: [(provider: String, purpose: String, category: String, kind: DriftKind)] = []
        for (provider, contract) in contracts.sorted(by: { $0.key < $1.key }) {
            for (purpose, categories) in contract.purposes.sorted(by: { $0.key < $1.key }) {
                for category in categories.sorted() where taxonomy.categories[category]?.personal ?? true {
                    if let kind = undisclosed(provider: provider, purpose: purpose, category: category) {
                        found.append((provider, purpose, category, kind))
                    }
                }
            }
        }
        return found
    }

    /// Decodes the list; `providers` are the providers that have an adapter.
    static func decode(yaml: String, file: String, taxonomy: Taxonomy?, providers: Set<String>,
                       issues: IssueCollector) -> PublishedSharingList? {
        guard let root = YAMLNode.parse(yaml, file: file, issues: issues),
              let object = root.object("published sharing list", required: ["parties"], optional: ["published_at", "url"])
        else { return nil }
        var publishedAt: CalendarDay?
        if let node = object["published_at"], let text = node.string("published_at") {
            publishedAt = CalendarDay(text)
            if publishedAt == nil { node.error("published_at must be a date YYYY-MM-DD, not '\(text)'") }
        }
        let url = object["url"]?.httpsURL("url")
        var parties: [String: [String: [String]]] = [:]
        var partyLines: [String: Int] = [:]
        for item in object["parties"]?.sequence("parties") ?? [] {
            guard let party = item.object("party", required: ["provider", "purposes"]),
                  let providerNode = party["provider"], let provider = providerNode.string("provider") else { continue }
            if !providers.contains(provider) {
                providerNode.error("provider '\(provider)' has no adapter (expected adapters/\(provider).yaml)")
            }
            if parties[provider] != nil {
                providerNode.error("provider '\(provider)' is listed twice")
            }
            var purposes: [String: [String]] = [:]
            for scope in Contract.scopes(party["purposes"], context: "party \(provider): ", file: file, taxonomy: taxonomy,
                                         issues: issues) {
                purposes[scope.purpose] = scope.categories
            }
            parties[provider] = purposes
            partyLines[provider] = partyLines[provider] ?? providerNode.line
        }
        var list = PublishedSharingList(parties: parties, publishedAt: publishedAt, url: url, file: file,
                                        contentHash: ContentHash.sha256Hex(yaml))
        list.partyLines = partyLines
        return list
    }
}

extension YAMLNode {
    /// An absolute `https://host/…` URL (a query and a fragment are fine, user info is not).
    package func httpsURL(_ what: String) -> String? {
        guard let text = string(what) else { return nil }
        guard !text.contains(where: \.isWhitespace), let parts = URLComponents(string: text), parts.scheme == "https",
              let host = parts.host, !host.isEmpty, parts.user == nil, parts.password == nil else {
            error("\(what) must be an absolute https URL (https://host/path), not '\(text)'")
            return nil
        }
        return text
    }
}

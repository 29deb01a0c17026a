/// What a data category is: personal or not, sensitive or not.
public struct CategoryInfo: Sendable, Hashable {
    /// Non-personal categories (`system.operations`) pass without consent.
    public var personal: Bool
    /// Sensitive personal information (PIPL art. 28 / GDPR art. 9): needs separate consent.
    public var sensitive: Bool
    /// What people read for it, by language (`en`, `zh-CN`): the privacy center's words.
    public var labels: [String: String]

    public init(personal: Bool = true, sensitive: Bool = false, labels: [String: String] = [:]) {
        self.personal = personal
        self.sensitive = sensitive
        self.labels = labels
    }
}

/// The vocabulary of `contracts/taxonomy.yaml`: every data category and purpose in use.
///
/// Categories and purposes are fideslang's dotted names. A category in a scope
/// (a contract purpose or a grant) covers itself and every category below it:
/// `user.content` covers `user.content.notification`.
public struct Taxonomy: Sendable {
    public var categories: [String: CategoryInfo]
    public var purposes: Set<String>
    /// Purpose → language → words (`purpose_labels:`).
    public var purposeLabels: [String: [String: String]]

    /// The languages labels are written in.
    public static let languages = ["en", "zh-CN"]

    public init(categories: [String: CategoryInfo], purposes: Set<String>, purposeLabels: [String: [String: String]] = [:]) {
        self.categories = categories
        self.purposes = purposes
        self.purposeLabels = purposeLabels
    }

    /// Decodes `taxonomy.yaml`; every problem is appended to `issues`.
    public static func decode(yaml: String, file: String, issues: inout [PolicyIssue]) -> Taxonomy? {
        let collector = IssueCollector()
        defer { issues.append(contentsOf: collector.issues) }
        guard let root = YAMLNode.parse(yaml, file: file, issues: collector),
              let object = root.object("taxonomy", required: ["categories", "purposes"], optional: ["purpose_labels"]) else { return nil }
        var categories: [String: CategoryInfo] = [:]
        if let pairs = object["categories"]?.mapping("categories") {
            for pair in pairs {
                guard Taxonomy.isDottedName(pair.key) else {
                    collector.add(file, pair.keyLine, "category '\(pair.key)' is not a dotted lowercase name")
                    continue
                }
                let what = "category \(pair.key)"
                guard let info = pair.value.object(what, optional: ["sensitive", "personal", "label"]) else { continue }
                let personal = info["personal"]?.bool(what + ": personal") ?? true
                let sensitive = info["sensitive"]?.bool(what + ": sensitive") ?? false
                if sensitive && !personal {
                    collector.add(file, pair.keyLine, "\(what) cannot be sensitive and not personal")
                }
                let labels = info["label"].map { Self.labels($0, what + ": label") } ?? [:]
                categories[pair.key] = CategoryInfo(personal: personal, sensitive: sensitive, labels: labels)
            }
        }
        var purposes: Set<String> = []
        for (purpose, line) in object["purposes"]?.strings("purposes") ?? [] {
            if !Taxonomy.isDottedName(purpose) {
                collector.add(file, line, "purpose '\(purpose)' is not a dotted lowercase name")
            } else if !purposes.insert(purpose).inserted {
                collector.add(file, line, "purpose '\(purpose)' is listed twice")
            }
        }
        var purposeLabels: [String: [String: String]] = [:]
        for pair in object["purpose_labels"]?.mapping("purpose_labels") ?? [] {
            guard purposes.contains(pair.key) else {
                collector.add(file, pair.keyLine, "purpose_labels: '\(pair.key)' is not a listed purpose")
                continue
            }
            purposeLabels[pair.key] = Self.labels(pair.value, "purpose_labels: \(pair.key)")
        }
        return Taxonomy(categories: categories, purposes: purposes, purposeLabels: purposeLabels)
    }

    /// `{ en: …, zh-CN: … }`: words per language, every language given.
    static func labels(_ node: YAMLNode, _ what: String) -> [String: String] {
        guard let object = node.object(what, required: Set(languages)) else { return [:] }
        var out: [String: String] = [:]
        for language in languages { out[language] = object[language]?.string(what + ": " + language) }
        return out
    }

    /// `a.b_c.d`: lowercase letters, digits and underscores, dot separated.
    static func isDottedName(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.utf8.allSatisfy({ byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            }) else { return false }
        }
        return true
    }

    /// True when `scope` equals `category` or is one of its ancestors.
    @inlinable
    public static func covers(_ scope: String, _ category: String) -> Bool {
        if scope == category { return true }
        guard category.utf8.count > scope.utf8.count, category.hasPrefix(scope) else { return false }
        let next = category.utf8[category.utf8.index(category.utf8.startIndex, offsetBy: scope.utf8.count)]
        return next == UInt8(ascii: ".")
    }
}

import Foundation

/// A calendar day (`2024-09-30`), compared in UTC.
public struct CalendarDay: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int, month: Int, day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year; self.month = month; self.day = day
    }

    /// Parses `YYYY-MM-DD`; `nil` for anything else or an impossible date.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1...12).contains(m), d >= 1, d <= CalendarDay.daysIn(month: m, year: y) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// The UTC day of an instant.
    public init(_ date: Date) {
        let days = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        let (year, month, day) = RFC3339.civil(days: Int64(days))
        self.init(year: Int(year), month: Int(month), day: Int(day))
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`, the inverse of `RFC3339.civil`).
    public var daysSince1970: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Whole days from `other` to this day (negative when this one is earlier).
    public func daysSince(_ other: CalendarDay) -> Int { daysSince1970 - other.daysSince1970 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public static func < (a: CalendarDay, b: CalendarDay) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    public var description: String {
        func pad(_ v: Int, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }
}

/// `contracts/<provider>.yaml`: what the agreement with a provider allows.
///
/// A contract is in force from `effective` through `expires` (both inclusive,
/// UTC days). Per purpose it lists the data categories the provider may receive;
/// a listed category covers its sub-categories.
public struct Contract: Sendable {
    public var provider: String
    public var version: String
    public var title: String?
    public var effective: CalendarDay
    public var expires: CalendarDay?
    /// Where the provider processes the data (ISO 3166-1 alpha-2).
    public var region: String
    public var retentionDays: Int
    /// Purpose → categories in scope.
    public var purposes: [String: [String]]
    /// SHA-256 (hex) of the file's bytes: logged with every share it decided.
    public var contentHash: String
    /// Line of each purpose, for diagnostics.
    var purposeLines: [String: Int] = [:]
    /// What the published sharing list (第三方信息共享清单) says of this party, by language
    /// (`Taxonomy.languages`): its display name, the legal entity, the app feature in which the
    /// sharing happens. Empty when the file does not give it.
    public var name: [String: String]
    public var company: [String: String]
    public var scenario: [String: String]
    /// The party's own privacy policy: an absolute https URL; empty when the file does not give it.
    public var privacyPolicyURL: String
    public var sharingMethod: SharingMethod

    /// The keys the published sharing list needs. Missing ones are a `check` warning, not an error: a
    /// contract is still in force without its descriptive words, and the list shows them as not stated.
    public static let publishedListKeys: Set<String> = ["name", "company", "scenario", "privacy_policy_url"]

    /// The published-list keys this contract does not give, sorted.
    public var missingPublishedListKeys: [String] {
        var missing: [String] = []
        if name.isEmpty { missing.append("name") }
        if company.isEmpty { missing.append("company") }
        if scenario.isEmpty { missing.append("scenario") }
        if privacyPolicyURL.isEmpty { missing.append("privacy_policy_url") }
        return missing.sorted()
    }

    /// How the data reaches the party, in the regulator's words: through a server-side interface
    /// (服务端接口: the broker's proxied shares) or an SDK on the device (SDK decisions).
    public enum SharingMethod: String, Sendable, CaseIterable {
        case serverAPI = "server_api"
        case sdk
    }

    public init(provider: String, version: String, title: String? = nil, effective: CalendarDay,
                expires: CalendarDay? = nil, region: String, retentionDays: Int,
                purposes: [String: [String]], contentHash: String = "", name: [String: String] = [:],
                company: [String: String] = [:], scenario: [String: String] = [:], privacyPolicyURL: String = "",
                sharingMethod: SharingMethod = .serverAPI) {
        self.provider = provider; self.version = version; self.title = title
        self.effective = effective; self.expires = expires; self.region = region
        self.retentionDays = retentionDays; self.purposes = purposes; self.contentHash = contentHash
        self.name = name; self.company = company; self.scenario = scenario
        self.privacyPolicyURL = privacyPolicyURL; self.sharingMethod = sharingMethod
    }

    /// True when some category listed for `purpose` covers `category`.
    /// In force on `day`: from `effective` through `expires`, both inclusive.
    public func isInForce(on day: CalendarDay) -> Bool {
        effective <= day && (expires.map { day <= $0 } ?? true)
    }

    public func allows(_ category: String, for purpose: String) -> Bool {
        guard let scope = purposes[purpose] else { return false }
        return scope.contains { Taxonomy.covers($0, category) }
    }

    /// True when `category` is inside the scope of any purpose of this contract.
    public func allowsForSomePurpose(_ category: String) -> Bool {
        purposes.keys.contains { allows(category, for: $0) }
    }

    static func decode(yaml: String, file: String, taxonomy: Taxonomy?, issues: IssueCollector) -> Contract? {
        guard let root = YAMLNode.parse(yaml, file: file, issues: issues),
              let object = root.object("contract",
                                       required: ["provider", "version", "effective", "region", "retention_days", "purposes"],
                                       optional: publishedListKeys.union(["title", "expires", "sharing_method"]))
        else { return nil }
        let provider = object["provider"]?.string("provider")
        let version = object["version"]?.string("version")
        let title = object["title"]?.string("title")
        func day(_ key: String) -> CalendarDay? {
            guard let node = object[key], let text = node.string(key) else { return nil }
            guard let day = CalendarDay(text) else {
                node.error("\(key) must be a date YYYY-MM-DD, not '\(text)'")
                return nil
            }
            return day
        }
        let effective = day("effective")
        let expires = day("expires")
        if let effective, let expires, expires < effective {
            object["expires"]?.error("expires (\(expires)) is before effective (\(effective))")
        }
        var region: String?
        if let node = object["region"], let text = node.string("region") {
            if text.count == 2, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
                region = text
            } else {
                node.error("region must be an ISO 3166 alpha-2 code such as CN, not '\(text)'")
            }
        }
        let retention = object["retention_days"]?.int("retention_days", min: 0)
        // The published sharing list's words: both languages each, a real https link. Each may be missing
        // (`check` warns, the list says "not stated"), never wrong.
        let name = object["name"].map { Taxonomy.labels($0, "name") } ?? [:]
        let company = object["company"].map { Taxonomy.labels($0, "company") } ?? [:]
        let scenario = object["scenario"].map { Taxonomy.labels($0, "scenario") } ?? [:]
        let privacyPolicyURL = object["privacy_policy_url"]?.httpsURL("privacy_policy_url")
        var sharingMethod = SharingMethod.serverAPI
        if let node = object["sharing_method"], let text = node.string("sharing_method") {
            if let method = SharingMethod(rawValue: text) {
                sharingMethod = method
            } else {
                node.error("sharing_method must be server_api or sdk, not '\(text)'")
            }
        }
        var purposes: [String: [String]] = [:]
        var purposeLines: [String: Int] = [:]
        for scope in scopes(object["purposes"], file: file, taxonomy: taxonomy, issues: issues) {
            purposes[scope.purpose] = scope.categories
            purposeLines[scope.purpose] = scope.line
        }
        // A partial contract still serves the cross-file checks; its recorded issues fail the bundle.
        guard let provider else { return nil }
        var contract = Contract(provider: provider, version: version ?? "", title: title,
                                effective: effective ?? CalendarDay(year: 1970, month: 1, day: 1),
                                expires: expires, region: region ?? "", retentionDays: retention ?? 0,
                                purposes: purposes, contentHash: ContentHash.sha256Hex(yaml), name: name, company: company,
                                scenario: scenario, privacyPolicyURL: privacyPolicyURL ?? "", sharingMethod: sharingMethod)
        contract.purposeLines = purposeLines
        return contract
    }

    /// `purposes: { PURPOSE: { categories: [...] } }`, each purpose and category checked against the
    /// taxonomy; `context` starts each message (`party acme-push: `). Shared by contracts and the
    /// published sharing list.
    static func scopes(_ node: YAMLNode?, context: String = "", file: String, taxonomy: Taxonomy?,
                       issues: IssueCollector) -> [(purpose: String, line: Int, categories: [String])] {
        var out: [(purpose: String, line: Int, categories: [String])] = []
        for pair in node?.mapping(context + "purposes") ?? [] {
            if let taxonomy, !taxonomy.purposes.contains(pair.key) {
                issues.add(file, pair.keyLine, context + "purpose '\(pair.key)' is not in the taxonomy")
            }
            let what = context + "purpose \(pair.key)"
            guard let body = pair.value.object(what, required: ["categories"]) else { continue }
            var categories: [String] = []
            for (category, line) in body["categories"]?.strings(what + ": categories") ?? [] {
                if let taxonomy, taxonomy.categories[category] == nil {
                    issues.add(file, line, context + "category '\(category)' is not in the taxonomy")
                }
                categories.append(category)
            }
            out.append((pair.key, pair.keyLine, categories))
        }
        return out
    }
}

import BrokerCore
import Foundation
import Testing

/// `contracts/privacy-policy.yaml` (issue 27, items 1–2): the privacy policy's versions as data, the
/// rules `check` holds them to, and each change between versions classified material or minor.
struct PrivacyPolicyTests {
    static let file = "contracts/privacy-policy.yaml"

    /// The repository's policy with its privacy-policy file edited; the issues `check` reports.
    static func issues(_ edit: (String) -> String) -> [String] { SDKShapePolicyTests.issues(editing: file, edit) }

    func version(_ id: String, _ parties: [String: [String: [String]]], regions: [String: String] = [:],
                 urls: [String: String] = ["en": "https://example.com/a"]) -> PrivacyPolicy.Version {
        PrivacyPolicy.Version(id: id, published: CalendarDay("2025-01-01")!, effective: CalendarDay("2025-02-01")!, urls: urls,
                              parties: parties, regions: regions, line: 1)
    }

    @Test func theRepositorysVersionsAddOneCrossBorderParty() throws {
        let privacy = try #require(Policies.real.privacyPolicy)
        #expect(privacy.versions.map(\.id) == ["2025-01", "2025-07"])
        let changes = PrivacyPolicy.changes(from: privacy.versions[0], to: privacy.versions[1], taxonomy: Policies.real.taxonomy)
        #expect(changes.map(\.kind) == [.party] && changes[0].provider == "google-login" && changes[0].material)
        #expect(changes[0].reason == "google-login is a new party (region US)")
        #expect(privacy.version(inForceOn: CalendarDay("2025-06-30")!)?.id == "2025-01")
        #expect(privacy.version(inForceOn: CalendarDay("2025-07-01")!)?.id == "2025-07")
        #expect(privacy.version(inForceOn: CalendarDay("2024-12-31")!) == nil)
    }

    @Test func eachDifferenceIsClassified() {
        let taxonomy = Policies.real.taxonomy
        let push = "essential.service.notifications.push", login = "essential.service.authentication"
        let old = version("a", ["p": [push: ["user.device.push_token", "user.content.notification"]], "q": [login: ["user.authorization.credentials"]]],
                          regions: ["p": "CN"])
        func kinds(_ new: PrivacyPolicy.Version) -> [String] {
            PrivacyPolicy.changes(from: old, to: new, taxonomy: taxonomy).map { "\($0.kind.rawValue) \($0.material ? "material" : "minor")" }
        }
        // The same disclosure under another URL: a wording change.
        #expect(kinds(version("b", old.parties, regions: old.regions, urls: ["en": "https://example.com/b"])) == ["wording minor"])
        // A new category, a new sensitive one, a new purpose, a new region, a new party: material.
        #expect(kinds(version("b", ["p": [push: ["user.device.push_token", "user.content.notification", "user.contact.phone_number"]],
                                    "q": old.parties["q"]!], regions: old.regions)) == ["category material"])
        #expect(kinds(version("b", ["p": [push: ["user.device.push_token", "user.content.notification",
                                                 "user.government_id.national_identification_number"]], "q": old.parties["q"]!],
                          regions: old.regions)) == ["sensitive_category material"])
        #expect(kinds(version("b", ["p": [push: ["user.device.push_token", "user.content.notification"], login: ["user.authorization.credentials"]],
                                    "q": old.parties["q"]!], regions: old.regions)) == ["purpose material"])
        #expect(kinds(version("b", old.parties, regions: ["p": "US"])) == ["region material"])
        #expect(kinds(version("b", old.parties.merging(["r": [push: ["user.device.push_token"]]]) { a, _ in a }, regions: old.regions))
                == ["party material"])
        // Less of anything: a narrowing, minor. A parent category in place of its child widens (material);
        // the child in place of the parent narrows.
        #expect(kinds(version("b", ["p": [push: ["user.device.push_token"]]], regions: old.regions)) == ["narrowing minor", "narrowing minor"])
        let wide = version("b", ["p": [push: ["user.device", "user.content.notification"]], "q": old.parties["q"]!], regions: old.regions)
        #expect(kinds(wide) == ["category material"])
        #expect(PrivacyPolicy.changes(from: wide, to: old, taxonomy: taxonomy).map(\.kind) == [.narrowing])
    }

    @Test func checkHoldsTheVersionsToTheRules() {
        #expect(Self.issues { $0 }.isEmpty)
        // A material change with 29 days' notice.
        let short = Self.issues { $0.replacingOccurrences(of: "published: 2025-06-01", with: "published: 2025-06-02") }
        #expect(short.contains { $0.hasPrefix("contracts/privacy-policy.yaml:") && $0.contains("version 2025-07: a material change (google-login is a new party (region US)) needs 30 days' notice, but effective 2025-07-01 is 29 days after published 2025-06-02") }, "\(short)")
        // Effective dates out of order.
        let order = Self.issues { $0.replacingOccurrences(of: "effective: 2025-07-01", with: "effective: 2024-12-31")
                                    .replacingOccurrences(of: "published: 2025-06-01", with: "published: 2024-11-01") }
        #expect(order.contains { $0.contains("version 2025-07: effective 2024-12-31 is not after version 2025-01's (2025-01-01)") }, "\(order)")
        // A party the contracts allow that no version discloses.
        let undisclosed = Self.issues { text in
            let start = text.range(of: "      - provider: google-login")!.lowerBound
            let end = text.range(of: "      - provider: google-maps", range: start..<text.endIndex)!.lowerBound
            return text.replacingCharacters(in: start..<end, with: "")
        }
        #expect(undisclosed.contains { $0 == "contracts/privacy-policy.yaml:1: provider google-login has a contract, but no version of the privacy policy discloses it" }, "\(undisclosed)")
        // Unknown parties, regions, categories and dates, each with its line.
        let bad = Self.issues { $0.replacingOccurrences(of: "provider: fcm\n        region: US", with: "provider: fcm2\n        region: usa")
                                  .replacingOccurrences(of: "effective: 2025-01-01", with: "effective: 2025-13-01") }
        #expect(bad.contains { $0.contains("provider 'fcm2' has no adapter") }, "\(bad)")
        #expect(bad.contains { $0.contains("region must be two upper-case letters (ISO 3166), not 'usa'") })
        #expect(bad.contains { $0.contains("version 2025-01: effective must be a date YYYY-MM-DD, not '2025-13-01'") })
        #expect(bad.allSatisfy { $0.range(of: #"^contracts/privacy-policy\.yaml:\d+: "#, options: .regularExpression) != nil }, "\(bad)")
    }

    /// Item 4: a share relying on what the version in force discloses and the grant's version did not
    /// (google-login, added by 2025-07) is refused `consent_outdated` from 2025-07's effective date; a grant
    /// under 2025-07 covers it; before that date the old version decides; a version the file does not list
    /// counts as its first; a party every version disclosed is unaffected.
    @Test func aGrantUnderAnOlderVersionDoesNotCoverWhatANewerOneAdded() {
        let engine = PolicyEngine(bundle: Policies.real, homeRegion: "CN")
        let caller = Caller(id: "svc", roles: [.share], providers: ["google-login", "huawei-push"])
        let login = "essential.service.authentication", push = "essential.service.notifications.push"
        func decide(_ provider: String, version: String, on day: String) -> ShareDecision {
            let time = ISO8601DateFormatter().date(from: day + "T12:00:00Z")!
            let request = provider == "google-login"
                ? ShareRequest(caller: caller, provider: provider, target: .http(method: "POST", path: "/token", query: nil),
                               contentType: "application/x-www-form-urlencoded",
                               body: json("grant_type=authorization_code&code=C1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"),
                               subject: "u1", time: time)
                : ShareRequest(caller: caller, provider: provider, target: .http(method: "POST", path: "/v1/10086/messages:send", query: nil),
                               contentType: "application/json", body: json(#"{"message":{"token":["T1"]}}"#), subject: "u1", time: time)
            var grant = Grant.make("g-\(provider)", provider: provider, purpose: provider == "google-login" ? login : push,
                                   crossBorder: true)
            grant.policyVersion = version
            grant.grantedAt = time.addingTimeInterval(-60)
            return engine.evaluate(request, context: SubjectContext(subject: nil, grants: [grant]), decoder: StrictPayloadDecoder())
        }
        let outdated = decide("google-login", version: "2025-01", on: "2026-03-01")
        #expect(outdated.verdict == .blocked && outdated.code == .consentOutdated && outdated.step == 7, "\(outdated.message ?? "")")
        #expect(decide("google-login", version: "2025-07", on: "2026-03-01").verdict == .allowed)
        #expect(decide("google-login", version: "an-unlisted-version", on: "2026-03-01").code == .consentOutdated)
        #expect(decide("google-login", version: "2025-01", on: "2025-06-30").verdict == .allowed, "before 2025-07 takes effect")
        #expect(decide("huawei-push", version: "2025-01", on: "2026-03-01").verdict == .allowed)
        #expect(decide("huawei-push", version: "an-unlisted-version", on: "2026-03-01").verdict == .allowed)
        #expect(ReasonCode.consentOutdated.httpStatus == 403)
    }
}

import BrokerCore
import Foundation

/// Policy bundles read from real files: the test fixtures and the repository's own policy.
enum Policies {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func load(adapters: URL, contracts: URL) -> (PolicyBundle?, [PolicyIssue]) {
        func files(_ directory: URL) -> [PolicyFile] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { $0.hasSuffix(".yaml") }.sorted().compactMap { name in
                let url = directory.appendingPathComponent(name)
                guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
                return PolicyFile(name: name, text: String(decoding: data, as: UTF8.self))
            }
        }
        let contractFiles = files(contracts)
        let taxonomy = contractFiles.first { $0.name == "taxonomy.yaml" }
        let published = contractFiles.first { $0.name == PublishedSharingList.fileName }
        let privacy = contractFiles.first { $0.name == PrivacyPolicy.fileName }
        return PolicyBundle.load(taxonomy: taxonomy,
                                 contracts: contractFiles.filter { ![ "taxonomy.yaml", PublishedSharingList.fileName, PrivacyPolicy.fileName].contains($0.name) },
                                 adapters: files(adapters), publishedList: published, privacyPolicy: privacy)
    }

    static let demo: PolicyBundle = {
        let root = fixtures.appendingPathComponent("demo")
        let (bundle, issues) = load(adapters: root.appendingPathComponent("adapters"),
                                    contracts: root.appendingPathComponent("contracts"))
        guard let bundle else { fatalError("demo fixtures invalid: \(issues)") }
        return bundle
    }()

    static let real: PolicyBundle = {
        let (bundle, issues) = load(adapters: repository.appendingPathComponent("adapters"),
                                    contracts: repository.appendingPathComponent("contracts"))
        guard let bundle else { fatalError("repository policy invalid: \(issues)") }
        return bundle
    }()
}

/// A fixed instant: 2026-03-01T12:00:00Z.
let now = Date(timeIntervalSince1970: 1_772_366_400)

extension Grant {
    static func make(_ id: String, provider: String = "demo-push", purpose: String = "essential.service.notifications.push",
                     subject: String = "u1", categories: [String]? = nil, separate: Bool = false, crossBorder: Bool = false,
                     revokedAt: Date? = nil, expiresAt: Date? = nil) -> Grant {
        Grant(id: id, subject: subject, provider: provider, purpose: purpose, categories: categories,
              separateConsent: separate, crossBorderConsent: crossBorder, policyVersion: "2025-01",
              evidence: "consent-screen:v3", grantedAt: now.addingTimeInterval(-86_400), expiresAt: expiresAt,
              revokedAt: revokedAt)
    }
}

let pusher = Caller(id: "push-service", roles: [.share],
                    providers: ["demo-push", "overseas-push", "expired-push", "future-push", "ghost-push"])

func json(_ text: String) -> [UInt8] { Array(text.utf8) }

extension SubjectContext {
    /// A subject the broker knows (it has their record) and who holds no grant.
    static let knownWithoutGrants = SubjectContext(subject: Subject(id: "u1"), grants: [])
}

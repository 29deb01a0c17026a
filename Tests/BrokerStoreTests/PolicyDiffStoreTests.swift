import BrokerCore
import BrokerService
import BrokerTesting
import Foundation
import Testing

/// `PolicyDiff.run` over both stores: every logged share read (page by page), decided again with
/// the grants the store holds, and the changes counted.
@Suite struct PolicyDiffStoreTests {
    static let taxonomy = PolicyFile(name: "contracts/taxonomy.yaml", text: """
        categories:
          system.operations: { personal: false }
          user.device.push_token: { sensitive: false }
          user.location.precise: { sensitive: true }
          user.location.imprecise: { sensitive: false }
        purposes: [essential.service.notifications.push]
        """)
    static let adapter = PolicyFile(name: "adapters/demo-push.yaml", text: """
        provider: demo-push
        kind: push
        upstream: https://push.example.com
        hosts: [push.example.com]
        credentials: { type: header, header: Authorization, secret: { env: DEMO } }
        operations:
          send:
            method: POST
            path: /send
            purpose: essential.service.notifications.push
            body: json
            undeclared: block
            fields:
              message.token[*]: { category: user.device.push_token }
              place: { category: user.location.precise, on_deny: strip, minimise: { transform: round_coordinates, decimals: 2, category: user.location.imprecise } }
        """)
    static func contract(expires: String) -> PolicyFile {
        PolicyFile(name: "contracts/demo-push.yaml", text: """
            provider: demo-push
            version: "2024-09-30"
            title: Demo
            effective: 2024-01-01
            expires: \(expires)
            region: CN
            retention_days: 0
            purposes:
              essential.service.notifications.push:
                categories: [user.device.push_token, user.location.precise, user.location.imprecise]
            """)
    }

    static func engine(expires: String) throws -> PolicyEngine {
        let loaded = PolicyBundle.load(taxonomy: taxonomy, contracts: [contract(expires: expires)], adapters: [adapter])
        return PolicyEngine(bundle: try #require(loaded.bundle, "\(loaded.issues)"))
    }

    @Test(arguments: storeKinds)
    func theLoggedSharesAreDecidedAgainPageByPage(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let log = store.log
            try await log.addGrant(grant("g-1", categories: ["user.device.push_token", "user.location.imprecise"]))
            _ = try await log.appendIntent(entry(1))
            _ = try await log.appendIntent(entry(2))
            _ = try await log.appendIntent(entry(3, decision: .blocked, grantIDs: [], subject: "subject-9"))
            var minimised = entry(4)
            minimised.fields.append(LoggedField(location: .body, path: "place", category: "user.location.imprecise", action: .minimised,
                                                reason: .consentMissing, fingerprint: String(repeating: "cd", count: 32),
                                                minimisedFrom: "user.location.precise"))
            _ = try await log.appendIntent(minimised)

            let same = try await PolicyDiff.run(queries: log, grants: log, candidate: try Self.engine(expires: "2030-01-01"),
                                                since: nil, until: nil, pageSize: 1)
            #expect(same.read == 4 && same.skipped == 0 && same.tally.shares == 4 && same.tally.changed == 0, "\(same.tally.rows)")

            let expired = try await PolicyDiff.run(queries: log, grants: log, candidate: try Self.engine(expires: "2024-06-30"),
                                                   since: nil, until: nil, pageSize: 1)
            #expect(expired.tally.changed == 3)
            let rows = expired.tally.rows
            #expect(rows.count == 2, "\(rows)")
            let token = rows.first { $0["category"] as? String == "user.device.push_token" }
            #expect(token?["change"] as? String == "newly_blocked" && token?["shares"] as? Int == 3)
            #expect(token?["examples"] as? [String] == ["node-1-share-1", "node-1-share-2", "node-1-share-4"])
            // The minimised field counts under the category it went as.
            let place = rows.first { $0["category"] as? String == "user.location.imprecise" }
            #expect(place?["change"] as? String == "newly_blocked" && place?["examples"] as? [String] == ["node-1-share-4"])

            // A window: only the shares in it.
            let window = try await PolicyDiff.run(queries: log, grants: log, candidate: try Self.engine(expires: "2024-06-30"),
                                                  since: storeBaseTime.addingTimeInterval(1.5), until: nil)
            #expect(window.read == 3 && window.tally.changed == 2)
        }
    }
}

import BrokerTesting
import Foundation
import Testing

/// Issue 16, item 2, through the real `sharebroker serve` and CLI: a narrowed contract as the
/// shadow policy counts exactly the shares it would change, and `sharebroker policy diff` finds
/// the same shares in the log afterwards.
@Suite(.serialized) struct PolicyDiffTests {
    static let push = "essential.service.notifications.push"

    /// `directory/NAME/{adapters,contracts}`: the broker's own policy with the Huawei contract edited.
    static func candidate(_ name: String, in directory: URL, contract edit: (String) -> String) throws {
        for folder in ["adapters", "contracts"] {
            let target = directory.appendingPathComponent(name).appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            for file in try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent(folder).path) {
                var text = try String(contentsOf: directory.appendingPathComponent(folder).appendingPathComponent(file), encoding: .utf8)
                if folder == "contracts" && file == "huawei-push.yaml" {
                    text = edit(text)
                }
                try text.write(to: target.appendingPathComponent(file), atomically: true, encoding: .utf8)
            }
        }
    }

    @Test func aNarrowedContractShowsExactlyTheSharesItWouldBreak() async throws {
        let (broker, simulators, _) = try await OperationsTests.start(
            configExtra: "shadow: { adapters: narrowed/adapters, contracts: narrowed/contracts }",
            prepare: { directory in
                // The push purpose narrowed to the token: notification text only for in-app messages (a
                // purpose the push operation does not serve), so `check` still passes.
                try Self.candidate("narrowed", in: directory) {
                    $0.replacingOccurrences(of: "categories: [user.device.push_token, user.content.notification]", with: """
                        categories: [user.device.push_token]
                          functional.service:
                            categories: [user.content.notification]
                        """)
                }
                // The agreement ends before the shares' time.
                try Self.candidate("expired", in: directory) {
                    $0.replacingOccurrences(of: "expires: 2027-09-29", with: "expires: 2025-12-31")
                }
                // A privacy-policy version in force since 2026-06 moves Huawei Push to another region
                // (material): grants under the older versions no longer cover its shares (issue 27).
                try Self.candidate("versioned", in: directory) { $0 }
                func version(_ id: String, published: String, effective: String, region: String) -> String {
                    """
                      - id: "\(id)"
                        published: \(published)
                        effective: \(effective)
                        url: { en: https://www.example.com/privacy/\(id) }
                        parties:
                          - provider: huawei-push
                            region: \(region)
                            purposes:
                              essential.service.notifications.push:
                                categories: [user.device.push_token, user.content.notification]

                    """
                }
                try ("controller: { name: Example, contact: privacy@example.com }\nversions:\n" + version("2025-01", published: "2024-12-01", effective: "2025-01-01", region: "CN")
                     + version("2026-06", published: "2026-05-01", effective: "2026-06-01", region: "SG"))
                    .write(to: directory.appendingPathComponent("versioned/contracts/privacy-policy.yaml"), atomically: true, encoding: .utf8)
            })
        defer { broker.stop(); try? FileManager.default.removeItem(at: broker.directory) }
        _ = simulators

        try await broker.grant("u1", purpose: Self.push, categories: ["user.device.push_token", "user.content.notification"])
        try await broker.grant("u2", purpose: Self.push, categories: ["user.device.push_token"])
        let (s1, d1, id1) = try await broker.push("u1")     // title and body go; the candidate would strip them
        let (s2, d2, id2) = try await broker.push("u2")     // redacted under both
        let (s3, _, _) = try await broker.push("u3")        // no grant: blocked under both
        #expect(s1 == 200 && d1 == "allowed" && s2 == 200 && d2 == "redacted" && s3 == 403)

        // The shares went as the real policy decided; the shadow only counted.
        let shadow = try await broker.json(["\(broker.base)/v1/reports/shadow", "-H", "Authorization: Bearer audit-token"])
        #expect(shadow["shares_decided"] as? Int == 3 && shadow["shares_changed"] as? Int == 1, "\(shadow)")
        let changes = shadow["changes"] as? [[String: Any]] ?? []
        #expect(changes.count == 1, "\(shadow)")
        #expect(changes.first?["provider"] as? String == "huawei-push" && changes.first?["purpose"] as? String == Self.push)
        #expect(changes.first?["category"] as? String == "user.content.notification")
        #expect(changes.first?["change"] as? String == "newly_stripped" && changes.first?["examples"] as? [String] == [id1])
        let metrics = try await broker.metrics()
        let candidate = try #require(shadow["candidate_revision"] as? String)
        #expect(OperationsTests.sample(metrics, #"sharebroker_shadow_changes_total{candidate="\#(candidate)",provider="huawei-push",purpose="\#(Self.push)",category="user.content.notification",change="newly_stripped"}"#) == 1, "\(metrics)")
        #expect(OperationsTests.sample(metrics, #"sharebroker_shadow_shares_total{candidate="\#(candidate)",changed="true"}"#) == 1)
        #expect(OperationsTests.sample(metrics, #"sharebroker_shadow_shares_total{candidate="\#(candidate)",changed="false"}"#) == 2)
        let refused = try await broker.curl(["-o", "/dev/null", "-w", "%{http_code}", "\(broker.base)/v1/reports/shadow", "-H", "Authorization: Bearer share-token"])
        #expect(refused == "403")

        // A reload that leaves the candidate as it was keeps the counts; one that changes it starts
        // them again; a candidate with errors is refused and the one loaded keeps counting.
        #expect(try await broker.reload()["status"] as? String == "unchanged")
        func shadowReport() async throws -> [String: Any] {
            try await broker.json(["\(broker.base)/v1/reports/shadow", "-H", "Authorization: Bearer audit-token"])
        }
        #expect(try await shadowReport()["shares_decided"] as? Int == 3)
        let candidateContract = broker.directory.appendingPathComponent("narrowed/contracts/huawei-push.yaml")
        let narrowedText = try String(contentsOf: candidateContract, encoding: .utf8)
        try "provider: huawei-push\n".write(to: candidateContract, atomically: true, encoding: .utf8)
        let invalid = try await broker.reload()
        #expect(invalid["code"] as? String == "policy_invalid", "\(invalid)")
        #expect(try await shadowReport()["shares_decided"] as? Int == 3)
        try narrowedText.replacingOccurrences(of: "expires: 2027-09-29", with: "expires: 2025-12-31")
            .write(to: candidateContract, atomically: true, encoding: .utf8)
        let switched = try await broker.reload()
        #expect(switched["status"] as? String == "installed" && switched["revision"] as? String == switched["previous_revision"] as? String)
        #expect(switched["previous_shadow_revision"] as? String == candidate && switched["shadow_revision"] as? String != candidate, "\(switched)")
        let restarted = try await shadowReport()
        #expect(restarted["shares_decided"] as? Int == 0 && restarted["candidate_revision"] as? String != shadow["candidate_revision"] as? String,
                "\(restarted)")
        try narrowedText.write(to: candidateContract, atomically: true, encoding: .utf8)
        broker.stop()
        await offPool { broker.process.waitUntilExit() }

        // Afterwards, from the log: the same share under the same candidate, as JSON.
        let diff = try CheckCommandTests.run(["policy", "diff", "--candidate", "narrowed", "--config", "broker.yaml", "--json"], in: broker.directory)
        #expect(diff.status == 0, "\(diff.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(diff.output.utf8)) as? [String: Any], "\(diff.output)")
        #expect(report["shares_read"] as? Int == 3 && report["shares_changed"] as? Int == 1, "\(report)")
        let rows = report["changes"] as? [[String: Any]] ?? []
        #expect(rows.count == 1 && rows.first?["change"] as? String == "newly_stripped" && rows.first?["examples"] as? [String] == [id1], "\(report)")

        // With the contract expired nothing goes: both shares that went would be blocked, under each category they sent.
        let blocked = try CheckCommandTests.run(["policy", "diff", "--candidate", "expired", "--config", "broker.yaml"], in: broker.directory)
        #expect(blocked.status == 0, "\(blocked.output)")
        #expect(blocked.output.contains("3 shares read") && blocked.output.contains("2 would change"), "\(blocked.output)")
        let lines = blocked.output.split(separator: "\n").filter { $0.contains("newly_blocked") }
        #expect(lines.contains { $0.contains("user.device.push_token") && $0.contains(id1) && $0.contains(id2) }, "\(blocked.output)")
        #expect(lines.contains { $0.contains("user.content.notification") && $0.contains(id1) && !$0.contains(id2) }, "\(blocked.output)")

        // Under the candidate's privacy-policy versions the two shares that went would need new grants
        // (consent_outdated): policy diff decides with the candidate's versions.
        let versioned = try CheckCommandTests.run(["policy", "diff", "--candidate", "versioned", "--config", "broker.yaml"], in: broker.directory)
        #expect(versioned.status == 0 && versioned.output.contains("2 would change"), "\(versioned.output)")
        #expect(versioned.output.split(separator: "\n").contains { $0.contains("newly_blocked") && $0.contains("user.device.push_token")
                                                                 && $0.contains(id1) && $0.contains(id2) }, "\(versioned.output)")

        // A candidate with errors compares nothing.
        try "provider: huawei-push\n".write(to: broker.directory.appendingPathComponent("expired/contracts/huawei-push.yaml"), atomically: true, encoding: .utf8)
        let broken = try CheckCommandTests.run(["policy", "diff", "--candidate", "expired", "--config", "broker.yaml"], in: broker.directory)
        #expect(broken.status == 1 && broken.output.contains("huawei-push.yaml") && broken.output.contains("nothing was compared"), "\(broken.output)")
    }

    /// Issue 23, item 7: a contract narrowed by legal alone — a category taken out of its only
    /// purpose, the adapter untouched — installs on reload (with check's warning), decides the next
    /// share at once, and `policy diff` accepts it as a candidate and reports what it strips.
    @Test func aContractNarrowedAloneInstallsAndDecidesTheNextShare() async throws {
        let narrow: (String) -> String = {
            $0.replacingOccurrences(of: "categories: [user.device.push_token, user.content.notification]",
                                    with: "categories: [user.device.push_token]")
        }
        let (broker, simulators, huawei) = try await OperationsTests.start(prepare: { directory in
            try Self.candidate("narrowed", in: directory, contract: narrow)
        })
        defer { broker.stop(); try? FileManager.default.removeItem(at: broker.directory) }
        try await broker.grant("u1", purpose: Self.push, categories: ["user.device.push_token", "user.content.notification"])
        let (s1, d1, id1) = try await broker.push("u1")
        #expect(s1 == 200 && d1 == "allowed")

        let check = try CheckCommandTests.run(["check", "--adapters", "narrowed/adapters", "--contracts", "narrowed/contracts"],
                                              in: broker.directory)
        #expect(check.status == 0, "narrowing is not an error: \(check.output)")
        #expect(check.output.contains("always denied: out_of_contract_scope"), "\(check.output)")

        let diff = try CheckCommandTests.run(["policy", "diff", "--candidate", "narrowed", "--config", "broker.yaml", "--json"],
                                             in: broker.directory)
        #expect(diff.status == 0, "\(diff.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(diff.output.utf8)) as? [String: Any], "\(diff.output)")
        let rows = report["changes"] as? [[String: Any]] ?? []
        #expect(rows.contains { $0["category"] as? String == "user.content.notification" && $0["change"] as? String == "newly_stripped"
            && $0["examples"] as? [String] == [id1] }, "\(report)")

        let contractURL = broker.directory.appendingPathComponent("contracts/huawei-push.yaml")
        try narrow(try String(contentsOf: contractURL, encoding: .utf8)).write(to: contractURL, atomically: true, encoding: .utf8)
        let installed = try await broker.reload()
        #expect(installed["status"] as? String == "installed", "\(installed)")
        #expect((installed["warnings"] as? [String] ?? []).contains { $0.contains("always denied: out_of_contract_scope") }, "\(installed)")
        let (s2, d2, _) = try await broker.push("u1")
        #expect(s2 == 200 && d2 == "redacted", "the narrowed contract decides the next share")
        let sent = OperationsTests.lastBody(huawei)
        #expect(!sent.contains("Hi Ann") && sent.contains("PUSH-TOKEN-1"), "stripped at the provider: \(sent)")
        await simulators.shutdown()
    }
}

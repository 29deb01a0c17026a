import BrokerTesting
import Foundation
import Testing

/// Issue 14, items 1 and 3, through the real `sharebroker serve`: `/metrics` after real traffic,
/// and the policy reloaded by `POST /v1/admin/policy/reload` and by SIGHUP.
@Suite(.serialized) struct OperationsTests {
    static let config = """
        listen: 127.0.0.1:0
        database: sqlite:broker.sqlite
        clients:
          - { id: app, token: share-token, roles: [share], providers: [huawei-push] }
          - { id: accounts, token: grants-token, roles: [grants] }
          - { id: audit, token: audit-token, roles: [compliance] }
          - { id: ops, token: admin-token, roles: [admin] }
        log: { fingerprint_key: test-key }
        revocation: { key: test-revocation-key, initial_backoff_ms: 50, max_backoff_ms: 200 }
        """

    struct Broker {
        let process: ChildProcess
        let out: Pipe
        let base: String
        let directory: URL

        func curl(_ arguments: [String]) async throws -> String {
            try await offPool { try sharebrokerTests.curl(["-s"] + arguments).output }
        }

        /// `(status, X-Share-Decision, X-Share-Id)` of one Huawei push for `subject`.
        func push(_ subject: String, purpose: String? = nil, token: String = "PUSH-TOKEN-1") async throws -> (Int, String, String) {
            var arguments = ["-o", "/dev/null", "-w", "%{http_code} %header{x-share-decision} %header{x-share-id}",
                             "-X", "POST", "\(base)/v1/proxy/huawei-push/v1/10086/messages:send",
                             "-H", "Authorization: Bearer share-token", "-H", "X-Share-Subject: \(subject)",
                             "-H", "Content-Type: application/json",
                             "--data", #"{"message":{"token":["\#(token)"],"notification":{"title":"Hi Ann","body":"Parcel"}}}"#]
            if let purpose { arguments += ["-H", "X-Share-Purpose: \(purpose)"] }
            let parts = try await curl(arguments).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            return (Int(parts[0]) ?? 0, parts.count > 1 ? parts[1] : "", parts.count > 2 ? parts[2] : "")
        }

        func grant(_ subject: String, purpose: String, categories: [String]) async throws {
            let list = categories.map { "\"\($0)\"" }.joined(separator: ",")
            _ = try await curl(["-X", "POST", "\(base)/v1/subjects/\(subject)/grants", "-H", "Authorization: Bearer grants-token",
                                "-H", "Content-Type: application/json",
                                "--data", #"{"provider":"huawei-push","purpose":"\#(purpose)","categories":[\#(list)],"separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#])
        }

        func json(_ arguments: [String]) async throws -> [String: Any] {
            let text = try await curl(arguments)
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? ["unparsed": text]
        }

        func reload() async throws -> [String: Any] {
            try await json(["-X", "POST", "\(base)/v1/admin/policy/reload", "-H", "Authorization: Bearer admin-token"])
        }

        func metrics(_ extra: [String] = []) async throws -> String {
            try await curl(["\(base)/metrics"] + extra)
        }

        func stop() { process.terminate() }
    }

    static func start(configExtra: String = "", editAdapter: ((String) -> String)? = nil,
                      contract: String? = nil, prepare: ((URL) throws -> Void)? = nil) async throws -> (Broker, ProviderSimulators, ProviderSimulator) {
        let (simulators, huawei, directory, credentials) = try await TwoNodeTests.huaweiBroker()
        try prepare?(directory)
        let adapterURL = directory.appendingPathComponent("adapters/huawei-push.yaml")
        if let editAdapter {
            try editAdapter(try String(contentsOf: adapterURL, encoding: .utf8)).write(to: adapterURL, atomically: true, encoding: .utf8)
        }
        if let contract {
            try contract.write(to: directory.appendingPathComponent("contracts/huawei-push.yaml"), atomically: true, encoding: .utf8)
        }
        try (config + "\n" + configExtra).write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        let (process, out) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml"], in: directory, environment: environment)
        let port = try await offPool { try CrashRecoveryTests.port(from: out) }
        return (Broker(process: process, out: out, base: "http://127.0.0.1:\(port)", directory: directory), simulators, huawei)
    }

    static func lastBody(_ simulator: ProviderSimulator) -> String {
        String(decoding: simulator.requests().last { $0.path.hasSuffix("messages:send") }?.body ?? [], as: UTF8.self)
    }

    /// The value of the sample `name{labels}` (labels exactly as written), or 0 when absent.
    static func sample(_ text: String, _ series: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1)) ?? -1
        }
        return 0
    }

    @Test func metricsCountWhatTheBrokerDidAndNameNoPersonalData() async throws {
        let (broker, simulators, _) = try await Self.start()
        defer { broker.stop(); try? FileManager.default.removeItem(at: broker.directory) }
        let shares = #"sharebroker_shares_total{provider="huawei-push",operation="send",channel="proxy","#
        let before = try await broker.metrics()
        #expect(!before.contains("sharebroker_shares_total{"), "no share yet")
        #expect(Self.sample(before, #"sharebroker_build_info{version="0.14.0"}"#) == 1, "\(before)")

        try await broker.grant("u-1001", purpose: "essential.service.notifications.push", categories: ["user.device.push_token"])
        for _ in 0..<3 { #expect(try await broker.push("u-1001").1 == "redacted") }
        #expect(try await broker.push("u-9999").0 == 403)                               // subject_unknown
        _ = try await broker.curl(["-X", "POST", "\(broker.base)/v1/proxy/13800138000/x", "-H", "Authorization: Bearer share-token"])

        let after = try await broker.metrics()
        #expect(Self.sample(after, shares + #"decision="redacted",code="none"}"#) == 3, "\(after)")
        #expect(Self.sample(after, shares + #"decision="blocked",code="subject_unknown"}"#) == 1)
        #expect(Self.sample(after, #"sharebroker_shares_total{provider="unknown",operation="none",channel="proxy",decision="blocked",code="caller_not_permitted"}"#) == 1, "\(after)")
        #expect(Self.sample(after, #"sharebroker_upstream_duration_seconds_count{provider="huawei-push",status_class="2xx"}"#) == 3)
        // 3 allowed intents, 1 blocked intent, 3 outcomes: 7 records in some number of batches.
        #expect(Self.sample(after, "sharebroker_log_batch_records_sum") >= 7)
        #expect(Self.sample(after, "sharebroker_log_commit_duration_seconds_count") >= 2)
        #expect(after.contains("# HELP sharebroker_shares_total ") && after.contains("# TYPE sharebroker_shares_total counter"))
        #expect(after.contains(#"sharebroker_policy_info{revision="p-"#))
        for secret in ["u-1001", "u-9999", "PUSH-TOKEN", "13800138000", "Hi Ann", "share-token"] {
            #expect(!after.contains(secret), "\(secret) in /metrics")
        }

        // A revoke: its job shows up by provider and status, and the attempt is counted.
        _ = try await broker.curl(["-X", "DELETE", "\(broker.base)/v1/subjects/u-1001/grants?provider=huawei-push",
                                   "-H", "Authorization: Bearer grants-token"])
        var scraped = ""
        let deadline = Date().addingTimeInterval(15)
        repeat {
            try await Task.sleep(for: .milliseconds(100))
            scraped = try await broker.metrics()
        } while Self.sample(scraped, #"sharebroker_revocation_jobs{provider="huawei-push",status="acknowledged"}"#) != 1 && Date() < deadline
        #expect(Self.sample(scraped, #"sharebroker_revocation_jobs{provider="huawei-push",status="acknowledged"}"#) == 1, "\(scraped)")
        #expect(Self.sample(scraped, #"sharebroker_revocation_attempts_total{provider="huawei-push",result="acknowledged"}"#) == 1)
        #expect(Self.sample(scraped, #"sharebroker_revocation_oldest_pending_seconds{provider="huawei-push"}"#) == 0)
        await simulators.shutdown()
    }

    @Test func metricsAccessAdminNeedsTheAdminRole() async throws {
        let (broker, simulators, _) = try await Self.start(configExtra: "metrics: { access: admin }")
        defer { broker.stop(); try? FileManager.default.removeItem(at: broker.directory) }
        let code = ["-o", "/dev/null", "-w", "%{http_code}"]
        #expect(try await broker.metrics(code) == "401")
        #expect(try await broker.metrics(code + ["-H", "Authorization: Bearer audit-token"]) == "403")
        #expect(try await broker.metrics(code + ["-H", "Authorization: Bearer admin-token"]) == "200")
        await simulators.shutdown()
    }

    /// Two purposes on the send operation; the second one's scope is narrowed by a reload.
    static let twoPurposes = """
        provider: huawei-push
        version: "2026-01"
        title: Huawei Push Kit data processing agreement
        effective: 2024-09-30
        expires: 2099-01-01
        region: CN
        retention_days: 30
        purposes:
          essential.service.notifications.push:
            categories: [user.device.push_token, user.content.notification]
          functional.service:
            categories: [user.device.push_token, user.content.notification]
        """

    /// The Huawei adapter's send serving a second purpose, `functional.service`, which the contract covers too.
    static func startWithTwoPurposes() async throws -> (Broker, ProviderSimulators, ProviderSimulator) {
        try await start(
            editAdapter: { $0.replacingOccurrences(of: "    purpose: essential.service.notifications.push\n    body: json",
                                                   with: "    purposes: [essential.service.notifications.push, functional.service]\n    body: json") },
            contract: twoPurposes)
    }

    @Test func aReloadDecidesTheNextShareAndABrokenBundleChangesNothing() async throws {
        let (broker, simulators, huawei) = try await Self.startWithTwoPurposes()
        defer { broker.stop(); try? FileManager.default.removeItem(at: broker.directory) }
        let contractURL = broker.directory.appendingPathComponent("contracts/huawei-push.yaml")
        let ready = try await broker.json(["\(broker.base)/readyz"])
        let first = try #require(ready["policy_revision"] as? String)
        #expect(first.hasPrefix("p-"))
        #expect(try await broker.reload()["status"] as? String == "unchanged")

        try await broker.grant("u-1", purpose: "functional.service", categories: ["user.device.push_token", "user.content.notification"])
        let (status, decision, _) = try await broker.push("u-1", purpose: "functional.service")
        #expect(status == 200 && decision == "allowed")
        let sent = Self.lastBody(huawei)
        #expect(sent.contains("Hi Ann"), "\(sent)")

        // Narrow: functional.service no longer covers the notification text.
        try Self.twoPurposes.replacingOccurrences(of: "version: \"2026-01\"", with: "version: \"2026-02\"")
            .replacingOccurrences(of: "  functional.service:\n    categories: [user.device.push_token, user.content.notification]",
                                  with: "  functional.service:\n    categories: [user.device.push_token]")
            .write(to: contractURL, atomically: true, encoding: .utf8)
        let installed = try await broker.reload()
        #expect(installed["status"] as? String == "installed", "\(installed)")
        #expect(installed["previous_revision"] as? String == first)
        let second = try #require(installed["revision"] as? String)
        #expect(second != first)
        let (status2, decision2, shareID) = try await broker.push("u-1", purpose: "functional.service")
        #expect(status2 == 200 && decision2 == "redacted", "the new contract decides the next share")
        let stripped = Self.lastBody(huawei)
        #expect(!stripped.contains("Hi Ann") && stripped.contains("PUSH-TOKEN-1"), "stripped at the provider: \(stripped)")
        #expect(huawei.tokenRequests().count == 1, "the unchanged credentials kept their injector and its token")
        let record = try await broker.json(["\(broker.base)/v1/shares/\(shareID)", "-H", "Authorization: Bearer audit-token"])
        let intent = (record["records"] as? [[String: Any]])?.first ?? record
        #expect("\(intent)".contains(second) && "\(intent)".contains("2026-02"), "the log names the revision that decided: \(record)")
        #expect(try await broker.json(["\(broker.base)/readyz"])["policy_revision"] as? String == second)
        #expect(try await broker.metrics().contains(#"sharebroker_policy_info{revision="\#(second)"} 1"#))

        // A broken file: refused with its errors, and the installed revision keeps deciding.
        try "provider: huawei-push\npurposes: [\n".write(to: contractURL, atomically: true, encoding: .utf8)
        let refused = try await broker.json(["-X", "POST", "\(broker.base)/v1/admin/policy/reload", "-H", "Authorization: Bearer admin-token"])
        #expect(refused["code"] as? String == "policy_invalid" && refused["status"] as? Int == 422, "\(refused)")
        #expect(refused["revision"] as? String == second)
        let errors = refused["errors"] as? [[String: Any]] ?? []
        #expect(errors.contains { ($0["file"] as? String)?.hasSuffix("contracts/huawei-push.yaml") == true && $0["line"] is Int }, "\(refused)")
        #expect(try await broker.push("u-1", purpose: "functional.service").1 == "redacted")
        #expect(try await broker.json(["\(broker.base)/readyz"])["policy_revision"] as? String == second)

        // SIGHUP: the first contract again, so the first revision (same files, same id) decides again.
        try Self.twoPurposes.write(to: contractURL, atomically: true, encoding: .utf8)
        kill(broker.process.processIdentifier, SIGHUP)
        var revision = ""
        let deadline = Date().addingTimeInterval(10)
        while revision != first && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            revision = try await broker.json(["\(broker.base)/readyz"])["policy_revision"] as? String ?? ""
        }
        #expect(revision == first)
        #expect(try await broker.push("u-1", purpose: "functional.service").1 == "allowed")
        let code = ["-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "\(broker.base)/v1/admin/policy/reload"]
        #expect(try await broker.curl(code) == "401")
        #expect(try await broker.curl(code + ["-H", "Authorization: Bearer grants-token"]) == "403")
        let counted = try await broker.metrics()
        #expect(Self.sample(counted, #"sharebroker_policy_reloads_total{result="installed"}"#) == 2, "\(counted)")
        #expect(Self.sample(counted, #"sharebroker_policy_reloads_total{result="refused"}"#) == 1)
        await simulators.shutdown()
    }

    /// A share in flight when a reload lands finishes on the revision it started with; the next
    /// share is decided by the new one.
    @Test func aShareInFlightFinishesOnItsRevision() async throws {
        let (broker, simulators, huawei) = try await Self.startWithTwoPurposes()
        defer { broker.stop(); try? FileManager.default.removeItem(at: broker.directory) }
        let first = try #require(try await broker.json(["\(broker.base)/readyz"])["policy_revision"] as? String)
        try await broker.grant("u-1", purpose: "functional.service", categories: ["user.device.push_token", "user.content.notification"])
        huawei.setFault(.delay(.seconds(2)))
        async let inFlight = broker.push("u-1", purpose: "functional.service")
        // Once the slow share has reached the provider, narrow the contract and reload.
        let deadline = Date().addingTimeInterval(10)
        while !huawei.requests().contains(where: { $0.path.hasSuffix("messages:send") }) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try Self.twoPurposes.replacingOccurrences(of: "  functional.service:\n    categories: [user.device.push_token, user.content.notification]",
                                                  with: "  functional.service:\n    categories: [user.device.push_token]")
            .write(to: broker.directory.appendingPathComponent("contracts/huawei-push.yaml"), atomically: true, encoding: .utf8)
        let installed = try await broker.reload()
        #expect(installed["status"] as? String == "installed", "\(installed)")
        let second = try #require(installed["revision"] as? String)
        let (status, decision, shareID) = try await inFlight
        #expect(status == 200 && decision == "allowed", "the share decided before the reload keeps its decision")
        huawei.setFault(.none)
        #expect(try await broker.push("u-1", purpose: "functional.service").1 == "redacted", "the next one is the new revision's")
        let record = try await broker.curl(["\(broker.base)/v1/shares/\(shareID)", "-H", "Authorization: Bearer audit-token"])
        #expect(record.contains(first) && !record.contains(second), "its record names the revision it started with: \(record)")
        await simulators.shutdown()
    }
}

import BrokerTesting
import Foundation
import Testing

/// Runs the built `sharebroker` executable, as a user or CI would.
struct CheckCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The executable sits beside the test bundle in the build folder.
    static func executable() throws -> URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("sharebroker")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        let fallback = root.appendingPathComponent(".build/debug/sharebroker")
        guard FileManager.default.isExecutableFile(atPath: fallback.path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "sharebroker executable"])
        }
        return fallback
    }

    static func run(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
        try ChildProcess.output(try executable(), arguments, environment: ProcessInfo.processInfo.environment,
                                directory: directory, mergingStderr: true)
    }

    @Test func passesOnTheRepositoryPolicy() throws {
        let result = try Self.run(["check"], in: Self.root)
        #expect(result.status == 0, "\(result.output)")
        let adapters = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("adapters").path)
            .filter { $0.hasSuffix(".yaml") }.count
        #expect(adapters >= 11 && result.output.contains("ok: \(adapters) adapters, \(adapters) contracts"), "\(result.output)")
        // Every non-personal field of the repository's adapters has a value constraint.
        #expect(!result.output.contains("warning:"), "\(result.output)")
    }

    /// A non-personal field that takes any value is a warning (free text could carry personal data).
    @Test func warnsAboutUnconstrainedFreeText() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        for folder in ["adapters", "contracts"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for file in ["taxonomy.yaml", "huawei-push.yaml"] {
            try FileManager.default.copyItem(at: Self.root.appendingPathComponent("contracts/" + file),
                                             to: directory.appendingPathComponent("contracts/" + file))
        }
        let huawei = try String(contentsOf: Self.root.appendingPathComponent("adapters/huawei-push.yaml"), encoding: .utf8)
        let loosened = huawei.replacingOccurrences(of: "validate_only:                            { category: system.operations, type: boolean }",
                                                   with: "validate_only:                            { category: system.operations }")
        #expect(loosened != huawei)
        try loosened.write(to: directory.appendingPathComponent("adapters/huawei-push.yaml"), atomically: true, encoding: .utf8)
        let result = try Self.run(["check"], in: directory)
        #expect(result.status == 0, "a warning is not an error: \(result.output)")
        #expect(result.output.contains("adapters/huawei-push.yaml:28: warning: operation send: validate_only is non-personal but takes any value"),
                "\(result.output)")
    }

    @Test func namesEveryErrorInTheBrokenFixtures() throws {
        let result = try Self.run(["check", "--adapters", "broken/adapters", "--contracts", "broken/contracts"],
                                  in: Self.fixtures)
        #expect(result.status == 1)
        let lines = result.output.split(separator: "\n").map(String.init)
        // Each expected error: file:line and a distinctive part of the message.
        let expected: [(String, String)] = [
            ("broken/adapters/bad-push.yaml:2:", "kind must be one of"),
            ("broken/adapters/bad-push.yaml:8:", "client_secret must be { env: NAME } or { file: PATH }"),
            ("broken/adapters/bad-push.yaml:12:", "path parameter '{app_id}' is not declared"),
            ("broken/adapters/bad-push.yaml:16:", "invalid field path 'message..token'"),
            ("broken/adapters/bad-push.yaml:17:", "unknown key 'on_denny'"),
            ("broken/adapters/bad-push.yaml:19:", "'user.mood' is not in the taxonomy"),
            ("broken/adapters/bad-push.yaml:20:", "on_deny must be block or strip, not 'maybe'"),
            ("broken/adapters/bad-push.yaml:22:", "names no field marked revocation_key"),
            ("broken/adapters/misnamed.yaml:1:", "does not match the file name 'misnamed'"),
            ("broken/adapters/misnamed.yaml:3:", "upstream must be http(s)"),
            ("broken/adapters/orphan.yaml:1:", "has no contract"),
            ("broken/adapters/syntax.yaml:1:", "has no contract"),
            ("broken/adapters/syntax.yaml:4:", "YAML syntax"),
            ("broken/contracts/bad-push.yaml:4:", "expires (2025-01-01) is before effective (2025-05-01)"),
            ("broken/contracts/bad-push.yaml:5:", "region must be an ISO 3166 alpha-2 code"),
            ("broken/contracts/bad-push.yaml:10:", "'marketing.advertising' is not in the taxonomy"),
            ("broken/contracts/bad-push.yaml:12:", "privacy_policy_url must be an absolute https URL (https://host/path), not 'http://example.com/privacy'"),
            ("broken/contracts/lonely.yaml:1:", "has no adapter"),
            ("broken/contracts/misnamed.yaml:3:", "effective must be a date"),
            ("broken/contracts/misnamed.yaml:5:", "retention_days must be at least 0"),
            ("broken/contracts/published-sharing-list.yaml:1:", "published_at must be a date YYYY-MM-DD, not '2025-13-01'"),
            ("broken/contracts/published-sharing-list.yaml:3:", "provider 'nobody-push' has no adapter (expected adapters/nobody-push.yaml)"),
            ("broken/contracts/published-sharing-list.yaml:9:", "party bad-push: purpose 'marketing.advertising' is not in the taxonomy"),
            ("broken/contracts/published-sharing-list.yaml:10:", "party bad-push: category 'user.mood' is not in the taxonomy"),
            ("broken/contracts/taxonomy.yaml:6:", "'Bad.Category' is not a dotted lowercase name"),
            ("broken/contracts/taxonomy.yaml:7:", "sensitive must be true or false"),
            ("broken/contracts/taxonomy.yaml:11:", "'functional.service' is listed twice"),
        ]
        for (location, message) in expected {
            #expect(lines.contains { $0.hasPrefix(location) && $0.contains(message) }, "missing: \(location) \(message)")
        }
        #expect(lines.last == "\(expected.count) errors", "every error is named, and nothing else: \(result.output)")
    }

    @Test func reportsAMissingFolder() throws {
        let result = try Self.run(["check", "--adapters", "nowhere", "--contracts", "broken/contracts"], in: Self.fixtures)
        #expect(result.status == 1)
        #expect(result.output.contains("nowhere:0: not a directory"))
    }
}

/// Issue 14, item 4: `--config FILE` gives every command serve's database, policy folders and key.
@Suite struct ConfigForEveryCommandTests {
    @Test func theCommandsReadTheDeploymentsConfig() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("deploy"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = CheckCommandTests.root.path
        let seeded = try await offPool {
            try CheckCommandTests.run(["log", "seed", "--database", "deploy/log.sqlite", "--records", "400", "--signing-key", "deploy/signing.key",
                                       "--adapters", root + "/adapters", "--contracts", root + "/contracts"], in: directory)
        }
        #expect(seeded.status == 0, "\(seeded.output)")
        try """
            database: sqlite:deploy/log.sqlite
            adapters: \(root)/adapters
            contracts: \(root)/contracts
            log: { signing_key: { file: deploy/signing.key } }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        let verify = try await offPool { try CheckCommandTests.run(["log", "verify", "--config", "broker.yaml"], in: directory) }
        #expect(verify.status == 0 && verify.output.contains("signatures checked"), "\(verify.output)")
        let without = try await offPool { try CheckCommandTests.run(["log", "verify"], in: directory) }
        #expect(without.status != 0 && without.output.contains("no such database"), "\(without.output)")
        let check = try await offPool { try CheckCommandTests.run(["check", "--config", "broker.yaml"], in: directory) }
        #expect(check.status == 0 && check.output.contains("ok: ") && check.output.contains(" adapters"), "\(check.output)")
        let list = try await offPool { try CheckCommandTests.run(["report", "sharing-list", "--config", "broker.yaml", "--csv"], in: directory) }
        #expect(list.status == 0 && list.output.contains("huawei-push"), "\(list.output)")
        let exposure = try await offPool {
            try CheckCommandTests.run(["report", "exposure", "--config", "broker.yaml", "--provider", "huawei-push", "--csv"], in: directory)
        }
        #expect(exposure.status == 0 && exposure.output.hasPrefix("subject,categories,shares"), "\(exposure.output)")
        let show = try await offPool { try CheckCommandTests.run(["log", "show", "--config", "broker.yaml", "--last", "2"], in: directory) }
        #expect(show.status == 0 && show.output.split(separator: "\n").filter { $0.hasPrefix("#") }.count == 2, "\(show.output)")
        let checkpoints = try await offPool { try CheckCommandTests.run(["log", "checkpoints", "--config", "broker.yaml"], in: directory) }
        #expect(checkpoints.status == 0 && checkpoints.output.contains("public_key") && checkpoints.output.contains("checkpoints"),
                "\(checkpoints.output.prefix(300))")
        // A flag still wins over the config.
        let flag = try await offPool {
            try CheckCommandTests.run(["log", "verify", "--config", "broker.yaml", "--database", "deploy/none.sqlite"], in: directory)
        }
        #expect(flag.status != 0 && flag.output.contains("deploy/none.sqlite"), "\(flag.output)")
    }
}

/// Issue 14, item 5: `log_format: json` — one JSON line per share on stdout, never a value.
@Suite struct DecisionLinesTests {
    @Test func oneJSONLinePerShareOnStdout() async throws {
        let (simulators, _, directory, credentials) = try await TwoNodeTests.huaweiBroker()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            listen: 127.0.0.1:0
            database: sqlite:broker.sqlite
            log_format: json
            clients:
              - { id: app, token: share-token, roles: [share], providers: [huawei-push] }
              - { id: accounts, token: grants-token, roles: [grants] }
            log: { fingerprint_key: test-key }
            revocation: { key: test-revocation-key }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        let (process, out) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml"], in: directory, environment: environment)
        defer { process.terminate() }
        let port = try await offPool { try CrashRecoveryTests.port(from: out) }
        let base = "http://127.0.0.1:\(port)"
        _ = try await offPool { try curl(["-s", "-X", "POST", "\(base)/v1/subjects/u1/grants", "-H", "Authorization: Bearer grants-token",
                                          "-H", "Content-Type: application/json",
                                          "--data", #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#]) }
        for subject in ["u1", "nobody"] {
            _ = try await offPool { try curl(["-s", "-X", "POST", "\(base)/v1/proxy/huawei-push/v1/10086/messages:send",
                                              "-H", "Authorization: Bearer share-token", "-H", "X-Share-Subject: \(subject)",
                                              "-H", "Content-Type: application/json", "--data", #"{"message":{"token":["SECRET-TOKEN"]}}"#]) }
        }
        process.terminate()
        let rest = await offPool { () -> String in
            process.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        let lines = rest.split(separator: "\n").filter { $0.hasPrefix(#"{"adapter_hash""#) }
        #expect(lines.count == 2, "\(rest)")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.map { $0["decision"] as? String } == ["allowed", "blocked"], "\(lines)")
        #expect(objects.first?["upstream_status"] as? Int == 200)
        #expect(objects.last?["code"] as? String == "subject_unknown", "a subject the broker has no record of")
        #expect(objects.allSatisfy { $0["caller"] as? String == "app" && $0["provider"] as? String == "huawei-push" && $0["share_id"] is String })
        #expect(!rest.contains("SECRET-TOKEN") && !lines.contains { $0.contains("u1") || $0.contains("nobody") }, "no value, no subject")
        await simulators.shutdown()
    }

    /// `sharebroker policy versions` on the repository's privacy policy: each version, and the change
    /// between them classified with its reason; `--json` the same as data.
    @Test func policyVersionsClassifiesEachChange() throws {
        let text = try CheckCommandTests.run(["policy", "versions"], in: CheckCommandTests.root)
        #expect(text.status == 0, "\(text.output)")
        #expect(text.output.contains("2025-01  published 2024-12-01, effective 2025-01-01 (31 days' notice), 14 parties: the first version"))
        #expect(text.output.contains("2025-07  published 2025-06-01, effective 2025-07-01 (30 days' notice), 15 parties: material"))
        #expect(text.output.contains("  material  party              google-login is a new party (region US)"), "\(text.output)")
        let json = try CheckCommandTests.run(["policy", "versions", "--json"], in: CheckCommandTests.root)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let versions = try #require(object?["versions"] as? [[String: Any]])
        #expect(versions.map { $0["change"] as? String } == ["first", "material"])
        let change = try #require((versions[1]["changes"] as? [[String: Any]])?.first)
        #expect(change["kind"] as? String == "party" && change["provider"] as? String == "google-login" && change["material"] as? Bool == true)
    }
}

import BrokerTesting
import Foundation
import Logging
import Testing

/// Issue 5: a broker killed (SIGKILL) while a revocation's deletion call hangs at the
/// provider resumes the job at its next start and completes it, and no deletion takes
/// effect twice at the provider.
@Suite(.serialized) struct RevocationRestartTests {
    @Test func aJobInterruptedBySIGKILLCompletesAfterRestart() async throws {
        var logger = Logger(label: "restart-test")
        logger.logLevel = .critical
        let credentials = SimulatorCredentials.random()
        let simulators = try await ProviderSimulators.start(credentials: credentials, logger: logger)
        let huawei = simulators.simulator("huawei-push")
        let directory = try CrashRecoveryTests.brokerDirectory(provider: "huawei-push", upstreams: [
            "https://push-api.cloud.huawei.com": huawei.baseURL, "https://oauth-login.cloud.huawei.com": huawei.baseURL,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            listen: 127.0.0.1:0
            clients:
              - { id: app, token: share-token, roles: [share], providers: [huawei-push] }
              - { id: accounts, token: grants-token, roles: [grants] }
            log: { fingerprint_key: test-key }
            revocation: { key: test-revocation-key, initial_backoff_ms: 50, max_backoff_ms: 200 }
            limits: { upstream_timeout_ms: 60000 }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"

        // First life: three shares, then a revoke whose first deletion call hangs at the provider.
        let (first, firstOut) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml"], in: directory,
                                                             environment: environment)
        let port = try await offPool { try CrashRecoveryTests.port(from: firstOut) }
        let base = "http://127.0.0.1:\(port)"
        let grant = try await offPool { try curl(["-s", "-X", "POST", "\(base)/v1/subjects/u1/grants", "-H", "Authorization: Bearer grants-token",
                              "-H", "Content-Type: application/json", "--data",
                              #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#]) }
        let grantID = try #require(Self.field("id", in: grant.output))
        for token in ["KILL-1", "KILL-2", "KILL-3"] {
            let share = try await offPool { try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                  "\(base)/v1/proxy/huawei-push/v1/10086/messages:send",
                                  "-H", "Authorization: Bearer share-token", "-H", "X-Share-Subject: u1",
                                  "-H", "Content-Type: application/json", "--data", #"{"message":{"token":["\#(token)"]}}"#]) }
            #expect(share.output == "200")
        }
        huawei.setFault(.hang)
        let revoke = try await offPool { try curl(["-s", "-X", "DELETE", "\(base)/v1/subjects/u1/grants/\(grantID)",
                               "-H", "Authorization: Bearer grants-token"]) }
        let revocationID = try #require(Self.field("revocation_id", in: revoke.output))
        let deadline = Date().addingTimeInterval(10)
        while !huawei.requests().contains(where: { $0.path.hasSuffix("token:delete") }) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let hung = huawei.requests().filter { $0.path.hasSuffix("token:delete") }
        #expect(hung.count == 1, "one deletion call is in flight when the broker dies")
        kill(first.processIdentifier, SIGKILL)
        await offPool { first.waitUntilExit() }
        huawei.setFault(.none)
        #expect(huawei.tokenDeletionCalls().isEmpty)

        // Second life: the interrupted job resumes and completes.
        let (second, secondOut) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml"], in: directory,
                                                               environment: environment)
        let secondPort = try await offPool { try CrashRecoveryTests.port(from: secondOut) }
        var status = ""
        let until = Date().addingTimeInterval(15)
        while Date() < until {
            status = try await offPool { try curl(["-s", "http://127.0.0.1:\(secondPort)/v1/revocations/\(revocationID)",
                               "-H", "Authorization: Bearer grants-token"]) }.output
            if status.contains(#""status":"acknowledged""#) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status.contains(#""status":"acknowledged""#), "\(status)")
        #expect(status.contains(#""result":"interrupted""#), "the killed attempt is on record: \(status)")
        try await Task.sleep(for: .milliseconds(300))
        second.terminate()
        await offPool { second.waitUntilExit() }

        let calls = huawei.tokenDeletionCalls()
        #expect(calls.map(\.token).sorted() == ["KILL-1", "KILL-2", "KILL-3"], "each token deleted exactly once")
        let keys = huawei.requests().filter { $0.path.hasSuffix("token:delete") }.compactMap { $0.header("Idempotency-Key") }
        #expect(keys.count == 4 && Set(keys).count == 3, "the retried call carries the same idempotency key")
        let database = directory.appendingPathComponent(".sharebroker/broker.sqlite").path
        let verify = try await offPool { try CheckCommandTests.run(["log", "verify", "--database", database], in: directory) }
        #expect(verify.status == 0 && verify.output.contains("chain intact"))
        await simulators.shutdown()
    }

    static func field(_ name: String, in json: String) -> String? {
        let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return object?[name] as? String
    }
}


import BrokerPostgres
import BrokerTesting
import Foundation
import Testing

/// examples/broker.yaml starts as written: PostgreSQL, every secret from a file that
/// examples/make-secrets writes, `config check` clean, `/readyz` ready with no warning, and a push
/// through it with a token read from its secrets folder. Only the database's address comes from
/// the command line (`--database`), as examples/README.md says for a database elsewhere.
@Suite(.serialized, .enabled(if: PostgresTestCluster.available)) struct ExampleConfigTests {
    @Test func theExampleConfigStartsAsWritten() async throws {
        let (simulators, _, directory, credentials) = try await TwoNodeTests.huaweiBroker()
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = CheckCommandTests.root
        try FileManager.default.copyItem(at: root.appendingPathComponent("examples/broker.yaml"),
                                         to: directory.appendingPathComponent("broker.yaml"))
        let made = try ChildProcess.output(root.appendingPathComponent("examples/make-secrets"), [directory.path],
                                           environment: ["PATH": "/usr/bin:/bin"], mergingStderr: true)
        #expect(made.status == 0, "\(made.output)")
        var database = try await PostgresTestCluster.freshDatabase()
        try (database.password ?? "").write(to: directory.appendingPathComponent("secrets/database-password"),
                                            atomically: true, encoding: .utf8)
        database.password = nil
        let url = "postgres://\(database.username)@\(database.host):\(database.port)/\(database.database)?sslmode=disable"

        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        let check = try ChildProcess.output(try CheckCommandTests.executable(), ["config", "check", "broker.yaml"],
                                            environment: environment, directory: directory, mergingStderr: true)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("ok: broker.yaml"), "\(check.output)")
        #expect(!check.output.contains("does not exist") && !check.output.contains("demo value"), "\(check.output)")

        let (process, out) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml", "--database", url, "--port", "0",
                                                           "--tls-port", "0"],
                                                          in: directory, environment: environment)
        defer { process.terminate(); process.waitUntilExit() }
        let ports = try await offPool {
            try CrashRecoveryTests.listening(out, [#"listening on http://127\.0\.0\.1:\d+"#, #"listening on https://0\.0\.0\.0:\d+"#])
        }
        let base = "http://127.0.0.1:\(ports[0])"
        let ready = try await offPool { try curl(["-s", "\(base)/readyz"]) }
        #expect(ready.output.contains(#""status":"ready""#) && !ready.output.contains("warnings"), "\(ready.output)")

        let accountToken = try String(contentsOf: directory.appendingPathComponent("secrets/account-service.token"), encoding: .utf8)
        let pushToken = try String(contentsOf: directory.appendingPathComponent("secrets/push-service.token"), encoding: .utf8)
        let grant = try await offPool { try curl(["-s", "-w", "\n%{http_code}", "-X", "POST", "\(base)/v1/subjects/u-1001/grants",
                                                  "-H", "Authorization: Bearer \(accountToken)",
                                                  "-H", "Content-Type: application/json", "--data",
                                                  #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"example"}"#]) }
        #expect(grant.output.hasSuffix("\n201"), "\(grant.output)")
        let push = try await offPool { try curl(["-s", "-w", "\n%{http_code}", "-X", "POST",
                                                 "\(base)/v1/proxy/huawei-push/v1/10086/messages:send",
                                                 "-H", "Authorization: Bearer \(pushToken)",
                                                 "-H", "X-Share-Subject: u-1001", "-H", "Content-Type: application/json",
                                                 "--data", #"{"message":{"token":["EXAMPLE-1"]}}"#]) }
        #expect(push.output.hasSuffix("\n200"), "\(push.output)")
        // The TLS listener, with the self-signed certificate make-secrets wrote as the CA.
        let tlsPort = ports[1]
        let overTLS = try await offPool { try curl(["-s", "-w", "\n%{http_code}", "--cacert", directory.appendingPathComponent("secrets/tls.pem").path,
                                                    "-X", "POST", "https://localhost:\(tlsPort)/v1/proxy/huawei-push/v1/10086/messages:send",
                                                    "-H", "Authorization: Bearer \(pushToken)",
                                                    "-H", "X-Share-Subject: u-1001", "-H", "Content-Type: application/json",
                                                    "--data", #"{"message":{"token":["EXAMPLE-2"]}}"#]) }
        #expect(overTLS.output.hasSuffix("\n200"), "\(overTLS.output)")
        let refused = try await offPool { try curl(["-s", "-w", "\n%{http_code}", "\(base)/v1/shares",
                                                    "-H", "Authorization: Bearer \(pushToken)"]) }
        #expect(refused.output.hasSuffix("\n403"), "the push service has no compliance role: \(refused.output)")
        await simulators.shutdown()
    }
}

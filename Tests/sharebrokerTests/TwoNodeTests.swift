import BrokerCurl
import BrokerPostgres
import BrokerTesting
import Foundation
import Logging
import Testing

/// Issue 11: two real `sharebroker serve` processes on one PostgreSQL database.
@Suite(.serialized, .enabled(if: PostgresTestCluster.available)) struct TwoNodeTests {
    struct Node {
        let process: ChildProcess
        let base: String
    }

    func startNode(_ name: String, in directory: URL, environment: [String: String]) async throws -> Node {
        let (process, out) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml", "--node", name], in: directory,
                                                          environment: environment)
        let port = try await offPool { try CrashRecoveryTests.port(from: out) }
        return Node(process: process, base: "http://127.0.0.1:\(port)")
    }

    func share(_ node: Node, token: String) async throws -> (status: String, body: String) {
        let result = try await offPool { try curl(["-s", "-w", "\n%{http_code}", "-X", "POST",
                                                   "\(node.base)/v1/proxy/huawei-push/v1/10086/messages:send",
                                                   "-H", "Authorization: Bearer share-token", "-H", "X-Share-Subject: u1",
                                                   "-H", "Content-Type: application/json",
                                                   "--data", #"{"message":{"token":["\#(token)"]}}"#]) }
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
    }

    /// The provider simulators, and a broker folder whose huawei-push adapter points at its simulator.
    static func huaweiBroker() async throws -> (ProviderSimulators, ProviderSimulator, URL, SimulatorCredentials) {
        var logger = Logger(label: "two-node-test")
        logger.logLevel = .critical
        let credentials = SimulatorCredentials.random()
        let simulators = try await ProviderSimulators.start(credentials: credentials, logger: logger)
        let huawei = simulators.simulator("huawei-push")
        let directory = try CrashRecoveryTests.brokerDirectory(provider: "huawei-push", upstreams: [
            "https://push-api.cloud.huawei.com": huawei.baseURL, "https://oauth-login.cloud.huawei.com": huawei.baseURL,
        ])
        return (simulators, huawei, directory, credentials)
    }

    /// A fresh database, and a broker.yaml on it with the password in the URL.
    static func writeConfig(in directory: URL, limits: String = "", revocation: String = "", more: String = "") async throws {
        let database = try await PostgresTestCluster.freshDatabase()
        try """
            listen: 127.0.0.1:0
            database: "postgres://\(database.username):\(database.password ?? "")@\(database.host):\(database.port)/\(database.database)?sslmode=disable"
            clients:
              - { id: app, token: share-token, roles: [share], providers: [huawei-push] }
              - { id: accounts, token: grants-token, roles: [grants] }
              - { id: audit, token: audit-token, roles: [compliance] }
            log: { fingerprint_key: test-key }
            \(more)
            \(limits)
            revocation: { key: test-revocation-key, initial_backoff_ms: 50, max_backoff_ms: 200\(revocation) }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
    }

    @Test func sharesThroughBothNodesAndARevokeOnOneFencesTheOther() async throws {
        let (simulators, huawei, directory, credentials) = try await Self.huaweiBroker()
        defer { try? FileManager.default.removeItem(at: directory) }
        var database = try await PostgresTestCluster.freshDatabase()
        let password = database.password ?? ""
        database.password = nil
        // The password comes from the environment, as in production; the URL carries none.
        try """
            listen: 127.0.0.1:0
            database: "postgres://\(database.username)@\(database.host):\(database.port)/\(database.database)?sslmode=disable"
            database_password: { env: SB_DATABASE_PASSWORD }
            clients:
              - { id: app, token: share-token, roles: [share], providers: [huawei-push] }
              - { id: accounts, token: grants-token, roles: [grants] }
              - { id: audit, token: audit-token, roles: [compliance] }
            log: { fingerprint_key: test-key }
            revocation: { key: test-revocation-key, initial_backoff_ms: 50, max_backoff_ms: 200 }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        environment["SB_DATABASE_PASSWORD"] = password

        let a = try await startNode("node-a", in: directory, environment: environment)
        let b = try await startNode("node-b", in: directory, environment: environment)
        defer { a.process.terminate(); b.process.terminate() }

        // A second process with node-a's name is refused while node-a lives.
        let (twin, twinOut) = try CrashRecoveryTests.start(["serve", "--config", "broker.yaml", "--node", "node-a"],
                                                           in: directory, environment: environment)
        await offPool { twin.waitUntilExit() }
        let twinSaid = String(decoding: twinOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(twin.terminationStatus != 0)
        #expect(twinSaid.contains("held by a live node"), "\(twinSaid)")

        let grant = try await offPool { try curl(["-s", "-X", "POST", "\(a.base)/v1/subjects/u1/grants",
                                                  "-H", "Authorization: Bearer grants-token", "-H", "Content-Type: application/json",
                                                  "--data", #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#]) }
        let grantID = try #require(RevocationRestartTests.field("id", in: grant.output), "\(grant.output)")
        #expect(try await share(a, token: "TOKEN-A").status == "200")
        #expect(try await share(b, token: "TOKEN-B").status == "200")

        // Revoke through node B; the next share through node A is refused.
        let revoke = try await offPool { try curl(["-s", "-X", "DELETE", "\(b.base)/v1/subjects/u1/grants/\(grantID)",
                                                   "-H", "Authorization: Bearer grants-token"]) }
        let revocationID = try #require(RevocationRestartTests.field("revocation_id", in: revoke.output), "\(revoke.output)")
        let refused = try await share(a, token: "TOKEN-AFTER")
        #expect(refused.status == "403")
        #expect(refused.body.contains("consent_revoked"), "\(refused.body)")

        // The deletion reaches the provider once per token, from whichever node's worker claimed the job.
        var status = ""
        let until = Date().addingTimeInterval(15)
        while Date() < until {
            status = try await offPool { try curl(["-s", "\(a.base)/v1/revocations/\(revocationID)",
                                                   "-H", "Authorization: Bearer grants-token"]) }.output
            if status.contains(#""status":"acknowledged""#) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status.contains(#""status":"acknowledged""#), "\(status)")
        #expect(huawei.tokenDeletionCalls().map(\.token).sorted() == ["TOKEN-A", "TOKEN-B"])

        // Compliance through either node sees both streams; the log verifies.
        let shares = try await offPool { try curl(["-s", "\(b.base)/v1/subjects/u1/shares", "-H", "Authorization: Bearer grants-token"]) }
        // Node B's history of the subject has node A's share, node B's share and node A's refusal.
        #expect(shares.output.components(separatedBy: #""share_id""#).count - 1 == 3, "\(shares.output)")
        #expect(shares.output.components(separatedBy: #""decision":"blocked""#).count - 1 == 1, "\(shares.output)")
        let verify = try await offPool { try curl(["-s", "\(a.base)/v1/log/verify", "-H", "Authorization: Bearer audit-token"]) }
        #expect(verify.output.contains(#""intact":true"#) || verify.output.contains(#""first_bad":null"#), "\(verify.output)")
        #expect(verify.output.contains(#""streams":2"#), "\(verify.output)")

        a.process.terminate(); b.process.terminate()
        await offPool { a.process.waitUntilExit(); b.process.waitUntilExit() }

        // After the nodes' closing checkpoints, both keys are registered; a restarted node lists both.
        let c = try await startNode("node-c", in: directory, environment: environment)
        let keys = try await offPool { try curl(["-s", "\(c.base)/v1/log/public-key"]) }.output
        #expect(keys.contains(#""stream":"node-a""#) && keys.contains(#""stream":"node-b""#), "\(keys)")
        // Issue 25: node C killed with SIGKILL (its lease still 15 s long) starts again at once, as a
        // supervisor restarts it, and serves.
        kill(c.process.processIdentifier, SIGKILL)
        await offPool { c.process.waitUntilExit() }
        let restartedAt = Date()
        let again = try await startNode("node-c", in: directory, environment: environment)
        #expect(Date().timeIntervalSince(restartedAt) < 10, "restarted within the old lease")
        #expect(try await offPool { try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(again.base)/readyz"]) }.output == "200")
        again.process.terminate()
        await offPool { again.process.waitUntilExit() }

        // The command line verifies every node's stream, with their closing checkpoints.
        let url = "postgres://\(database.username):\(password)@\(database.host):\(database.port)/\(database.database)?sslmode=disable"
        let checked = try await offPool { try CheckCommandTests.run(["log", "verify", "--database", url], in: directory) }
        #expect(checked.status == 0, "\(checked.output)")
        #expect(checked.output.contains("in 2 stream(s), chain intact") || checked.output.contains("in 3 stream(s), chain intact"),
                "\(checked.output)")
        #expect(!checked.output.contains(password))
        await simulators.shutdown()
    }

    /// The promise's rule 4 (docs/concepts.md) across processes: 5 rounds of 50 shares split over two `serve` processes while a
    /// revoke goes through one of them (alternating). No share started after the revoke returned is
    /// allowed on either node; every allowed share is in the revoke's answer, and its token reaches
    /// the provider's deletion call. The client is libcurl's multi interface in this process (one
    /// connection pool, no process per request), so the 50 really race.
    @Test func fiftySharesOverTwoNodesRacingARevoke() async throws {
        let (simulators, huawei, directory, credentials) = try await Self.huaweiBroker()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.writeConfig(in: directory)
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"
        let a = try await startNode("node-a", in: directory, environment: environment)
        let b = try await startNode("node-b", in: directory, environment: environment)
        defer { a.process.terminate(); b.process.terminate() }
        var logger = Logger(label: "two-node-race")
        logger.logLevel = .critical
        let client = try CurlUpstreamClient(options: CurlClientOptions(totalTimeout: .seconds(20), maxConnectionsPerHost: 64),
                                            logger: logger)
        func call(_ node: Node, _ method: String, _ path: String, token: String, headers: [HTTPHeaderLine] = [],
                  body: String = "") async throws -> UpstreamResponse {
            try await client.send(UpstreamRequest(method: method, url: node.base + path,
                                                  headers: headers + [HTTPHeaderLine("Authorization", "Bearer \(token)")],
                                                  body: Array(body.utf8)))
        }
        struct Outcome: Sendable { var started: ContinuousClock.Instant; var status: Int; var shareID: String?; var token: String }
        var allowedTokens: Set<String> = [], revocations: [String] = [], allowedTotal = 0, refusedTotal = 0
        for round in 0..<5 {
            let subject = "race-\(round)"
            let (revoker, other) = round % 2 == 0 ? (a, b) : (b, a)
            let grant = try await call(other, "POST", "/v1/subjects/\(subject)/grants", token: "grants-token",
                                       headers: [HTTPHeaderLine("Content-Type", "application/json")],
                                       body: #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#)
            let grantID = try #require(RevocationRestartTests.field("id", in: String(decoding: grant.body, as: UTF8.self)))
            let (outcomes, returned, revoke) = try await withThrowingTaskGroup(of: Outcome?.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        if index % 2 == 1 { try await Task.sleep(for: .microseconds(200 * index)) }
                        let token = "R\(round)-\(index)"
                        let started = ContinuousClock.now
                        let response = try await call(index % 2 == 0 ? a : b, "POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                      token: "share-token",
                                                      headers: [HTTPHeaderLine("Content-Type", "application/json"),
                                                                HTTPHeaderLine("X-Share-Subject", subject)],
                                                      body: #"{"message":{"token":["\#(token)"]}}"#)
                        return Outcome(started: started, status: response.status,
                                       shareID: response.headerValue("X-Share-Id"), token: token)
                    }
                }
                try await Task.sleep(for: .milliseconds(3))
                let revoke = try await call(revoker, "DELETE", "/v1/subjects/\(subject)/grants/\(grantID)", token: "grants-token")
                let returned = ContinuousClock.now
                var all: [Outcome] = []
                for try await outcome in group { if let outcome { all.append(outcome) } }
                return (all, returned, revoke)
            }
            #expect(revoke.status == 202, "\(String(decoding: revoke.body, as: UTF8.self))")
            let answer = try JSONSerialization.jsonObject(with: Data(revoke.body)) as? [String: Any] ?? [:]
            let jobShares = Set(answer["share_ids"] as? [String] ?? [])
            revocations.append(answer["revocation_id"] as? String ?? "")
            #expect(outcomes.count == 50)
            #expect(outcomes.allSatisfy { $0.status == 200 || $0.status == 403 }, "\(outcomes.map(\.status))")
            for outcome in outcomes where outcome.started > returned {
                #expect(outcome.status == 403, "round \(round): \(outcome.token) started after the revoke returned and was allowed")
            }
            for outcome in outcomes where outcome.status == 200 {
                #expect(jobShares.contains(outcome.shareID ?? ""), "round \(round): allowed \(outcome.token) is missing from the job")
                allowedTokens.insert(outcome.token)
            }
            allowedTotal += outcomes.filter { $0.status == 200 }.count
            refusedTotal += outcomes.filter { $0.status == 403 }.count
        }
        #expect(allowedTotal > 0 && refusedTotal > 0, "the race never had both sides: allowed \(allowedTotal), refused \(refusedTotal)")
        print("two-node revocation race: \(allowedTotal) shares allowed before, \(refusedTotal) refused after, in 5 rounds of 50")

        // Every job reaches the provider; each allowed share's token is deleted there once.
        let until = Date().addingTimeInterval(20)
        var pending = Set(revocations)
        while !pending.isEmpty && Date() < until {
            for id in pending {
                let status = try await call(a, "GET", "/v1/revocations/\(id)", token: "grants-token")
                if String(decoding: status.body, as: UTF8.self).contains(#""status":"acknowledged""#) { pending.remove(id) }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(pending.isEmpty, "revocations not acknowledged: \(pending)")
        let deleted = huawei.tokenDeletionCalls().map(\.token)
        #expect(Set(deleted) == allowedTokens, "deleted \(deleted.count), allowed \(allowedTokens.count)")
        #expect(deleted.count == Set(deleted).count, "a token was deleted twice")
        await client.shutdown()
        a.process.terminate(); b.process.terminate()
        await offPool { a.process.waitUntilExit(); b.process.waitUntilExit() }
        await simulators.shutdown()
    }

    /// A node killed (SIGKILL) while its revocation attempt's deletion call hangs at the provider:
    /// once the attempt's lease runs out, the other node takes the job over and finishes it, and
    /// each token is deleted once at the provider.
    @Test func aKilledNodesRevocationAttemptIsFinishedByTheOther() async throws {
        let (simulators, huawei, directory, credentials) = try await Self.huaweiBroker()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.writeConfig(in: directory, limits: "limits: { upstream_timeout_ms: 1000 }", revocation: ", lease_ms: 2000")
        var environment = credentials.environment
        environment["PATH"] = "/usr/bin:/bin"

        // Node A alone: shares, then a revoke whose deletion call hangs at the provider.
        let a = try await startNode("node-a", in: directory, environment: environment)
        let grant = try await offPool { try curl(["-s", "-X", "POST", "\(a.base)/v1/subjects/u1/grants",
                                                  "-H", "Authorization: Bearer grants-token", "-H", "Content-Type: application/json",
                                                  "--data", #"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#]) }
        let grantID = try #require(RevocationRestartTests.field("id", in: grant.output), "\(grant.output)")
        for token in ["KILL-1", "KILL-2"] { #expect(try await share(a, token: token).status == "200") }
        huawei.setFault(.hang)
        let revoke = try await offPool { try curl(["-s", "-X", "DELETE", "\(a.base)/v1/subjects/u1/grants/\(grantID)",
                                                   "-H", "Authorization: Bearer grants-token"]) }
        let revocationID = try #require(RevocationRestartTests.field("revocation_id", in: revoke.output), "\(revoke.output)")
        let deadline = Date().addingTimeInterval(10)
        while !huawei.requests().contains(where: { $0.path.hasSuffix("token:delete") }) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(huawei.requests().filter { $0.path.hasSuffix("token:delete") }.count == 1, "node A's call is in flight")
        kill(a.process.processIdentifier, SIGKILL)
        await offPool { a.process.waitUntilExit() }
        huawei.setFault(.none)

        // Node B takes the job over once node A's lease has run out, and finishes it.
        let b = try await startNode("node-b", in: directory, environment: environment)
        defer { b.process.terminate() }
        var status = ""
        let until = Date().addingTimeInterval(20)
        while Date() < until {
            status = try await offPool { try curl(["-s", "\(b.base)/v1/revocations/\(revocationID)",
                                                   "-H", "Authorization: Bearer grants-token"]) }.output
            if status.contains(#""status":"acknowledged""#) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(status.contains(#""status":"acknowledged""#), "\(status)")
        #expect(huawei.tokenDeletionCalls().map(\.token).sorted() == ["KILL-1", "KILL-2"], "each token deleted once")
        b.process.terminate()
        await offPool { b.process.waitUntilExit() }
        await simulators.shutdown()
    }
}

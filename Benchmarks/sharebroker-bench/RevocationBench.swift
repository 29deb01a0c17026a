import BrokerCore
import BrokerCurl
import BrokerGateway
import BrokerService
import BrokerSQLite
import BrokerTesting
import Foundation
import Logging
import ServiceLifecycle

/// Part 4: from a revoke call to the provider's deletion call arriving at its
/// simulator, over `count` revocations, through the real broker (HTTP, SQLite,
/// worker, libcurl, loopback Huawei simulator). Baseline, same run: one deletion
/// call sent straight to the simulator with the same client.
func runRevocationBench(count: Int = 1000, concurrency: Int = 8, sequential: Int = 200) async throws -> [String] {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }

    let credentials = SimulatorCredentials.random()
    let simulators = try await ProviderSimulators.start(credentials: credentials, logger: logger)
    let huawei = simulators.simulator("huawei-push")
    let loaded = PolicyLoader.load(adapters: "adapters", contracts: "contracts")
    guard let policy = loaded.bundle else { return ["part 4: run from the repository root (adapters/ and contracts/)"] }
    var bases: [String: UpstreamURL] = [:]
    for (provider, url) in simulators.baseURLs { bases[provider] = UpstreamURL(url) }
    let bundle = policy.redirected(to: bases)

    var config = BrokerConfig()
    config.clients = [
        .init(id: "bench-app", credential: .token(.literal("share")), roles: [.share], providers: ["huawei-push"], purposes: nil),
        .init(id: "bench-accounts", credential: .token(.literal("grants")), roles: [.grants], providers: [], purposes: nil),
    ]
    var secrets: [SecretReference: String] = [.literal("share"): "share", .literal("grants"): "grants"]
    for (name, value) in credentials.environment { secrets[.env(name)] = value }
    let store = try SQLiteStore(path: directory.appendingPathComponent("broker.sqlite").path, stream: "node-1", logger: logger)
    let client = try CurlUpstreamClient(options: CurlClientOptions(totalTimeout: .seconds(10)), logger: logger)
    let assembled = Assembly.gateway(config: config, bundle: bundle, secrets: secrets, log: store, grants: store,
                                     revocations: store, upstream: client, fingerprintKey: Array("bench".utf8),
                                     revocationKey: Array("bench-revocation".utf8), logger: logger)
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = assembled.gateway.application(host: "127.0.0.1", port: 0, logger: logger) { port in
        portContinuation.yield(port)
        portContinuation.finish()
    }
    let group = ServiceGroup(configuration: .init(services: [assembled.outcomes, assembled.revocationWorker!, app], logger: logger))
    var lines: [String] = []
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { return }
        let base = "http://127.0.0.1:\(port)"
        let call: @Sendable (String, String, String, String, [(String, String)]) async throws -> UpstreamResponse = {
            method, path, token, body, headers in
            var lines = headers.map { HTTPHeaderLine($0.0, $0.1) }
            lines.append(HTTPHeaderLine("Authorization", "Bearer \(token)"))
            if !body.isEmpty { lines.append(HTTPHeaderLine("Content-Type", "application/json")) }
            return try await client.send(UpstreamRequest(method: method, url: base + path, headers: lines, body: Array(body.utf8)))
        }

        // Set-up: one grant and one share (one push token) per subject.
        var grantIDs: [String] = []
        for index in 0..<(count + sequential) {
            let grant = try await call("POST", "/v1/subjects/bench-\(index)/grants", "grants", """
                {"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,\
                "cross_border_consent":false,"policy_version":"1","evidence":"bench"}
                """, [])
            let object = try JSONSerialization.jsonObject(with: Data(grant.body)) as? [String: Any]
            grantIDs.append(object?["id"] as? String ?? "")
            _ = try await call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send", "share",
                               #"{"message":{"token":["BENCH-\#(index)"]}}"#, [("X-Share-Subject", "bench-\(index)")])
        }
        huawei.reset()
        let ids = grantIDs

        // Baseline: the same deletion call straight to the simulator (a token fetched once).
        let tokenResponse = try await client.send(UpstreamRequest(
            method: "POST", url: huawei.baseURL + "/oauth2/v3/token",
            headers: [HTTPHeaderLine("Content-Type", "application/x-www-form-urlencoded")],
            body: Array("grant_type=client_credentials&client_id=\(credentials.huaweiClientID)&client_secret=\(credentials.huaweiClientSecret)".utf8)))
        let accessToken = ((try? JSONSerialization.jsonObject(with: Data(tokenResponse.body))) as? [String: Any])?["access_token"] as? String ?? ""
        var direct: [Double] = []
        for index in 0..<200 {
            let started = ContinuousClock.now
            _ = try await client.send(UpstreamRequest(
                method: "POST", url: huawei.baseURL + "/v1/10086/token:delete",
                headers: [HTTPHeaderLine("Content-Type", "application/json"), HTTPHeaderLine("Authorization", "Bearer \(accessToken)")],
                body: Array(#"{"token":"BASE-\#(index)"}"#.utf8)))
            direct.append((ContinuousClock.now - started).milliseconds)
        }
        huawei.reset()

        // The measurement: revokes from `clients` concurrent clients; latency = deletion arrival − revoke sent.
        let measure: @Sendable (Range<Int>, Int) async throws -> (latencies: [Double], seconds: Double) = { indices, clients in
            huawei.reset()
            let revokedAt = Locked<[String: Date]>([:])
            let next = Locked(indices.lowerBound)
            let wallStart = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        while true {
                            let index = next.withLock { value -> Int in defer { value += 1 }; return value }
                            guard index < indices.upperBound else { return }
                            let sent = Date()
                            let response = try await call("DELETE", "/v1/subjects/bench-\(index)/grants/\(ids[index])", "grants", "", [])
                            guard response.status == 202 else { throw BenchError.unexpected(response.status) }
                            revokedAt.withLock { $0["BENCH-\(index)"] = sent }
                            if clients == 1 {
                                while !huawei.tokenDeletionCalls().contains(where: { $0.token == "BENCH-\(index)" }) {
                                    try await Task.sleep(for: .microseconds(200))
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let deadline = Date().addingTimeInterval(60)
            while huawei.tokenDeletionCalls().count < indices.count && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
            let wall = (ContinuousClock.now - wallStart).milliseconds / 1000
            var latencies: [Double] = []
            let sentTimes = revokedAt.withLock { $0 }
            for request in huawei.requests() where request.path.hasSuffix("/token:delete") {
                let body = String(decoding: request.body, as: UTF8.self)
                guard let token = body.split(separator: "\"").first(where: { $0.hasPrefix("BENCH-") }),
                      let sent = sentTimes[String(token)] else { continue }
                latencies.append(request.time.timeIntervalSince(sent) * 1000)
            }
            return (latencies.sorted(), wall)
        }
        let single = try await measure(count..<(count + sequential), 1)
        let (burst, wallSeconds) = try await measure(0..<count, concurrency)
        let acknowledged = huawei.tokenDeletionCalls().count
        let distinct = Set(huawei.tokenDeletionCalls().map(\.token)).count
        var latencies = burst
        latencies.sort()
        let wall = wallSeconds * 1000
        direct.sort()
        lines.append("Part 4: revoke → deletion call at the provider simulator (\(count) revocations, \(concurrency) concurrent clients)")
        lines.append("  deletions arrived      \(acknowledged) of \(count) (each token once: \(distinct) distinct)")
        lines.append("  one at a time (\(sequential))   p50 \(fixed(percentile(single.latencies, 0.50))) ms   p99 \(fixed(percentile(single.latencies, 0.99))) ms")
        lines.append("  burst, revoke → deletion p50 \(fixed(percentile(latencies, 0.50))) ms   p99 \(fixed(percentile(latencies, 0.99))) ms   max \(fixed(latencies.last ?? 0)) ms   (target p99 < 1000 ms)")
        lines.append("  baseline direct call   p50 \(fixed(percentile(direct, 0.50))) ms   p99 \(fixed(percentile(direct, 0.99))) ms   (one deletion call, no broker)")
        lines.append("  ratio p50 one-at-a-time/direct \(fixed(percentile(single.latencies, 0.50) / max(percentile(direct, 0.50), 0.001), 1))×;  burst drained at \(grouped(Double(count) / (wall / 1000))) revocations/s")
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
    await client.shutdown()
    await simulators.shutdown()
    return lines
}

enum BenchError: Error { case unexpected(Int) }

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

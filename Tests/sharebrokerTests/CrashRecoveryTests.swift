import BrokerTesting
import Foundation
import Testing

/// The promise's rule 3 (docs/concepts.md) with a real process: a broker killed (SIGKILL) between the intent and the
/// outcome leaves a share whose outcome becomes `unknown` at the next start.
@Suite(.serialized) struct CrashRecoveryTests {
    /// A TCP listener that accepts and reads but never answers: the provider that hangs.
    final class BlackHole: @unchecked Sendable {
        let fd: Int32
        let port: Int
        private let lock = NSLock()
        private var received = 0

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            listen(fd, 8)
            var bound = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            self.fd = fd
            self.port = Int(UInt16(bigEndian: bound.sin_port))
            let listener = fd
            Thread.detachNewThread { [self] in
                while true {
                    let client = accept(listener, nil, nil)
                    if client < 0 { return }
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let n = recv(client, &buffer, buffer.count, 0)
                    if n > 0 { lock.withLock { received += n } }
                    // Never answer; keep the connection open until the test ends.
                }
            }
        }

        var bytesReceived: Int { lock.withLock { received } }
        deinit { close(fd) }
    }

    /// A temporary working directory for a broker process with one provider's policy,
    /// the adapter's upstream URLs replaced (`from` → `to`) to point at a local server.
    static func brokerDirectory(provider: String, upstreams: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-\(provider)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("adapters"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("contracts"), withIntermediateDirectories: true)
        let root = CheckCommandTests.root
        for file in ["contracts/taxonomy.yaml", "contracts/\(provider).yaml"] {
            try FileManager.default.copyItem(at: root.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        var adapter = try String(contentsOf: root.appendingPathComponent("adapters/\(provider).yaml"), encoding: .utf8)
        for (from, to) in upstreams { adapter = adapter.replacingOccurrences(of: from, with: to) }
        try adapter.write(to: directory.appendingPathComponent("adapters/\(provider).yaml"), atomically: true, encoding: .utf8)
        return directory
    }

    static func start(_ arguments: [String], in directory: URL, environment: [String: String]) throws -> (ChildProcess, Pipe) {
        let pipe = Pipe()
        let process = try ChildProcess(try CheckCommandTests.executable(), arguments, environment: environment, directory: directory,
                                       stdout: .pipe(pipe))
        return (process, pipe)
    }

    /// Reads the broker's stdout until it says where it listens.
    static func port(from pipe: Pipe) throws -> Int {
        try listening(pipe, [#"listening on http://127\.0\.0\.1:\d+"#])[0]
    }

    /// Reads `serve`'s standard output until every pattern (ending in a port) has been printed, in any
    /// order: the listeners start concurrently. The ports, in the patterns' order.
    static func listening(_ pipe: Pipe, _ patterns: [String]) throws -> [Int] {
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            let ranges = patterns.map { text.range(of: $0, options: .regularExpression) }
            if ranges.allSatisfy({ $0 != nil }) {
                return ranges.map { range in
                    let match = text[range!]
                    return Int(match.split(separator: " ").first { $0.contains("://") }?.split(separator: ":").last ?? "") ?? 0
                }
            }
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "broker did not start: \(text)"])
    }

    @Test func aKilledBrokerLeavesAnUnknownOutcome() async throws {
        let hole = try BlackHole()
        let directory = try Self.brokerDirectory(provider: "amap-location",
                                                 upstreams: ["https://restapi.amap.com": "http://127.0.0.1:\(hole.port)"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            listen: 127.0.0.1:0
            clients:
              - { id: app, token: share-token, roles: [share], providers: [amap-location] }
              - { id: accounts, token: grants-token, roles: [grants] }
            log: { fingerprint_key: test-key }
            limits: { upstream_timeout_ms: 60000 }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        let environment = ["AMAP_KEY": "k", "PATH": "/usr/bin:/bin"]

        // First life: a share goes out and hangs; the broker is killed.
        let (first, firstOut) = try Self.start(["serve", "--config", "broker.yaml"], in: directory, environment: environment)
        let port = try Self.port(from: firstOut)
        let grant = try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                              "http://127.0.0.1:\(port)/v1/subjects/u1/grants", "-H", "Authorization: Bearer grants-token",
                              "-H", "Content-Type: application/json", "--data",
                              #"{"provider":"amap-location","purpose":"functional.service","separate_consent":true,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#])
        #expect(grant.output == "201")
        let share = try ChildProcess(URL(fileURLWithPath: "/usr/bin/curl"),
                                     ["-s", "-m", "30", "http://127.0.0.1:\(port)/v1/proxy/amap-location/v3/ip?ip=1.2.3.4",
                                      "-H", "Authorization: Bearer share-token", "-H", "X-Share-Subject: u1"], environment: [:])
        let deadline = Date().addingTimeInterval(10)
        while hole.bytesReceived == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(hole.bytesReceived > 0, "the share reached the (hanging) provider, so its intent was durable")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        share.terminate()

        let database = directory.appendingPathComponent(".sharebroker/broker.sqlite").path
        let before = try CheckCommandTests.run(["log", "show", "--database", database], in: directory)
        #expect(before.output.contains("\"kind\":\"share\"") && !before.output.contains("\"kind\":\"outcome\""))

        // Second life: the dangling intent is resolved as unknown at start.
        let (second, secondOut) = try Self.start(["serve", "--config", "broker.yaml"], in: directory, environment: environment)
        _ = try Self.port(from: secondOut)
        second.terminate()
        second.waitUntilExit()
        let after = try CheckCommandTests.run(["log", "show", "--database", database], in: directory)
        #expect(after.output.contains("\"result\":\"unknown\""), "\(after.output)")
        let verify = try CheckCommandTests.run(["log", "verify", "--database", database], in: directory)
        #expect(verify.status == 0 && verify.output.contains("chain intact"))
    }
}

/// Runs the `curl` command line.
func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/curl"), arguments, environment: [:])
}

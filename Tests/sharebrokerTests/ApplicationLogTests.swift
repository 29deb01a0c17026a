import BrokerTesting
import Foundation
import Testing

/// Issue 10, item 7: what a caller types into a provider name or a proxied host never
/// reaches the application log; refusals are still logged, with a fingerprint.
@Suite(.serialized) struct ApplicationLogTests {
    @Test func unknownProviderNamesAndHostsAreLoggedOnlyAsFingerprints() async throws {
        let directory = try CrashRecoveryTests.brokerDirectory(provider: "amap-location", upstreams: [:])
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            listen: 127.0.0.1:0
            clients:
              - { id: app, token: share-token, roles: [share], providers: [amap-location] }
            log: { fingerprint_key: test-key }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        let stderrFile = directory.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        let stdout = Pipe()
        let process = try ChildProcess(try CheckCommandTests.executable(), ["serve", "--config", "broker.yaml"],
                                       environment: ["AMAP_KEY": "k", "PATH": "/usr/bin:/bin"], directory: directory,
                                       stdout: .pipe(stdout), stderr: .file(try FileHandle(forWritingTo: stderrFile)))
        let port = try CrashRecoveryTests.port(from: stdout)

        // Three refusals before logging: one application-log line (the next, after the interval, counts the rest).
        for _ in 0..<3 {
            let pathForm = try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}",
                                     "http://127.0.0.1:\(port)/v1/proxy/13800138000-Ann-Li/v3/ip?ip=1.2.3.4",
                                     "-H", "Authorization: Bearer share-token", "-H", "X-Share-Subject: u1"])
            #expect(pathForm.output == "403")
        }
        let forward = try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://127.0.0.1:\(port)",
                                "-U", "app:share-token", "http://13800138000-ann-li.example/v3/ip"])
        #expect(forward.output == "404")
        process.terminate()
        process.waitUntilExit()

        let log = try String(contentsOf: stderrFile, encoding: .utf8)
        #expect(log.components(separatedBy: "share refused before logging").count == 2, "one line: \(log)")
        #expect(log.contains("refusals.folded=0"), "\(log)")
        #expect(log.contains("forward-proxy request for an unknown host refused"), "\(log)")
        #expect(log.contains("<unknown:18B:"), "the name's length and fingerprint: \(log)")
        #expect(!log.contains("13800138000") && !log.lowercased().contains("ann-li"), "\(log)")
    }
}

import BrokerTesting
import Foundation
import Testing

/// Issue 12: the clients users really use — curl is in BrokerGatewayTests — Python `requests`
/// and `httpx`, and two providers' SDKs from PyPI (`tencentcloud-sdk-python`, `wechatpy`) in
/// their default https configuration, through a real `sharebroker serve --sandbox` as their
/// HTTPS proxy, changed only by proxy and CA settings (Tests/sdk/tunnel_clients.py).
///
/// `make test` creates the venv (scripts/python-venv) and sets SHAREBROKER_TEST_PYTHON; with
/// SHAREBROKER_REQUIRE_PYTHON=1 (as `make test` sets it) a missing venv is a failure, not a skip.
@Suite struct SDKTunnelTests {
    static var python: String? { ProcessInfo.processInfo.environment["SHAREBROKER_TEST_PYTHON"] }

    @Test func pythonClientsAndProviderSDKsThroughTheTunnel() async throws {
        guard let python = Self.python, FileManager.default.isExecutableFile(atPath: python) else {
            #expect(ProcessInfo.processInfo.environment["SHAREBROKER_REQUIRE_PYTHON"] != "1",
                    "SHAREBROKER_TEST_PYTHON is not a python (make test creates it with scripts/python-venv)")
            return
        }
        let (status, output) = try await Self.runAgainstSandbox(python: python, script: "Tests/sdk/tunnel_clients.py") { directory, _ in
            ["CA": directory.appendingPathComponent(".sharebroker/tls-ca.pem").path, "COMPLIANCE_TOKEN": "demo-compliance-token",
             "ALIPAY_PUBLIC_KEY": SimulatorCredentials.random().alipayKeys.alipayPublicKeyPEM]
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""ok": ["requests", "httpx", "tencentcloud-sdk-python", "tencentcloud-sdk-python-error", "wechatpy", "python-alipay-sdk", "googlemaps", "pyfcm", "refused-tunnel"]"#), "\(output)")
    }

    /// Runs a Python script of the repository against a fresh `sharebroker serve --sandbox` (in a
    /// temp folder with the repository's policy), with BROKER, the sandbox's share and grants
    /// tokens and `environment(folder, port)` set; returns its exit status and output.
    static func runAgainstSandbox(python: String, script path: String,
                                  environment extra: (URL, Int) -> [String: String]) async throws -> (Int32, String) {
        let root = CheckCommandTests.root
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-py-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for folder in ["adapters", "contracts"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(folder),
                                                       withDestinationURL: root.appendingPathComponent(folder))
        }
        let (server, out) = try CrashRecoveryTests.start(["serve", "--sandbox", "--port", "0"], in: directory,
                                                         environment: ["PATH": "/usr/bin:/bin"])
        defer { server.terminate() }
        let port = try await offPool { try CrashRecoveryTests.port(from: out) }
        let pipe = Pipe()
        let script = try ChildProcess(URL(fileURLWithPath: python), [root.appendingPathComponent(path).path], environment: [
            "PATH": "/usr/bin:/bin", "HOME": directory.path, "BROKER": "http://127.0.0.1:\(port)",
            "SHARE_TOKEN": "demo-share-token", "GRANTS_TOKEN": "demo-grants-token",
        ].merging(extra(directory, port)) { _, new in new }, directory: directory, stdout: .pipe(pipe), stderr: .pipe(pipe))
        let output = await offPool { () -> String in
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            script.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        server.terminate()
        await offPool { server.waitUntilExit() }
        return (script.terminationStatus, output)
    }
}

/// `sharebroker tls ca-cert`: the CA is created once, its key owner-only, and the same certificate
/// is printed again; a config's CA is printed instead; half a CA is refused.
@Suite struct TLSCommandTests {
    @Test func caCertIsCreatedOnceAndPrinted() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The CA names the adapters' hosts: the command reads the policy (here the repository's).
        func linkPolicy(into folder: URL) throws {
            for name in ["adapters", "contracts"] {
                try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name),
                                                           withDestinationURL: CheckCommandTests.root.appendingPathComponent(name))
            }
        }
        try linkPolicy(into: directory)
        let first = try CheckCommandTests.run(["tls", "ca-cert"], in: directory)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.hasPrefix("-----BEGIN CERTIFICATE-----"), "\(first.output)")
        let key = directory.appendingPathComponent(".sharebroker/tls-ca.key").path
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try CheckCommandTests.run(["tls", "ca-cert"], in: directory).output == first.output, "the same CA again")

        // A CA named in the config: that one is printed, and the default files are not touched.
        let other = directory.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try linkPolicy(into: other)
        _ = try CheckCommandTests.run(["tls", "ca-cert"], in: other)
        try """
            tls_interception:
              ca_certificate: { file: other/.sharebroker/tls-ca.pem }
              ca_key: { file: other/.sharebroker/tls-ca.key }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        let configured = try CheckCommandTests.run(["tls", "ca-cert", "--config", "broker.yaml"], in: directory)
        #expect(configured.status == 0, "\(configured.output)")
        #expect(configured.output != first.output)
        #expect(configured.output == (try String(contentsOf: other.appendingPathComponent(".sharebroker/tls-ca.pem"), encoding: .utf8)))

        try FileManager.default.removeItem(atPath: key)
        let half = try CheckCommandTests.run(["tls", "ca-cert"], in: directory)
        #expect(half.status != 0)
        #expect(half.output.contains("only one of .sharebroker/tls-ca.pem and .sharebroker/tls-ca.key exists"), "\(half.output)")
    }
}

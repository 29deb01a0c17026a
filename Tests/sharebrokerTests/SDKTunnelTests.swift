import BrokerTesting
import Foundation
import Testing

/// Issue 12: the clients users really use — curl is in BrokerGatewayTests — Python `requests`
/// and `httpx` (Tests/sdk/tunnel_clients.py), and (issue 30) the providers' SDKs from PyPI in
/// their newest and oldest supported releases (Tests/sdk/provider_sdks.py), in their default https
/// configuration, through a real `sharebroker serve --sandbox` as their HTTPS proxy, changed only by
/// proxy, CA and subject settings and made-up credentials.
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
            ["CA": directory.appendingPathComponent(".sharebroker/tls-ca.pem").path, "COMPLIANCE_TOKEN": "demo-compliance-token"]
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""ok": ["requests", "httpx", "httpx-h2", "h2-without-alpn", "refused-tunnel"]"#), "\(output)")
    }

    /// Issue 30: each provider SDK of Tests/sdk/sdk-matrix.txt, in its newest and its oldest supported
    /// release (one folder per entry, made by scripts/sdk-matrix), through one sandbox: every entry
    /// gets its answer with made-up credentials, the simulators see only the broker's, and the log
    /// holds exactly the entry's shares about its subject (none for an SDK's own sign-in).
    @Test func providerSDKsInTheirNewestAndOldestReleases() async throws {
        guard let python = Self.python, FileManager.default.isExecutableFile(atPath: python) else {
            #expect(ProcessInfo.processInfo.environment["SHAREBROKER_REQUIRE_PYTHON"] != "1",
                    "SHAREBROKER_TEST_PYTHON is not a python (make test creates it with scripts/python-venv)")
            return
        }
        let root = CheckCommandTests.root
        let matrix = URL(fileURLWithPath: python).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("matrix")
        let entries = try String(contentsOf: root.appendingPathComponent("Tests/sdk/sdk-matrix.txt"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.filter { $0.count >= 3 && !$0[0].hasPrefix("#") }
        #expect(Set(entries.map { $0[0] }).count == 8, "eight SDKs, each newest and oldest")
        try await Self.withSandbox { directory, port in
            for (index, entry) in entries.enumerated() {
                let (sdk, which, first) = (entry[0], entry[1], entry[2])
                let folder = matrix.appendingPathComponent("\(sdk)-\(which)")
                #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(".entry").path),
                        "\(sdk) \(which) is not installed (scripts/sdk-matrix install)")
                let package = String(first.split(separator: "=")[0])
                let (status, output) = try await Self.runPython(python, "Tests/sdk/provider_sdks.py", [sdk], directory: directory, port: port, environment: [
                    "PYTHONPATH": folder.path, "SUBJECT": "sdk-\(which)-\(index)", "PACKAGE": package,
                    "CA": directory.appendingPathComponent(".sharebroker/tls-ca.pem").path, "COMPLIANCE_TOKEN": "demo-compliance-token",
                    "ALIPAY_PUBLIC_KEY": SimulatorCredentials.random().alipayKeys.alipayPublicKeyPEM,
                ])
                #expect(status == 0, "\(sdk) \(which): \(output)")
                let version = String(first.split(separator: "=").last ?? "")
                #expect(output.contains(#""sdk": "\#(sdk)", "version": "\#(version)""#), "\(sdk) \(which): \(output)")
            }
        }
    }

    /// Issue 28, item 5: aioapns from PyPI sends two pushes through a tunnel on its own sidecar
    /// listener (it sends no Proxy-Authorization), HTTP/2 without ALPN, the subject in the payload;
    /// the APNs simulator accepts only the broker's provider token; a push without a subject gets the
    /// broker's refusal and one for another app APNs's own, both as aioapns reads them (Tests/sdk/apns_client.py).
    @Test func aioapnsThroughASidecarListener() async throws {
        guard let python = Self.python, FileManager.default.isExecutableFile(atPath: python) else {
            #expect(ProcessInfo.processInfo.environment["SHAREBROKER_REQUIRE_PYTHON"] != "1",
                    "SHAREBROKER_TEST_PYTHON is not a python (make test creates it with scripts/python-venv)")
            return
        }
        let sidecar = try ListenerTLSTests.freePort()
        let config = """
            clients:
              - { id: apns-sidecar, roles: [share], providers: [apns], listen: "127.0.0.1:\(sidecar)" }
            """
        let (status, output) = try await Self.withSandbox(config: config, waitFor: [#"for client apns-sidecar only"#]) { directory, port in
            try await Self.runPython(python, "Tests/sdk/apns_client.py", [], directory: directory, port: port, environment: [
                "SIDECAR": "\(sidecar)", "CA": directory.appendingPathComponent(".sharebroker/tls-ca.pem").path,
                "COMPLIANCE_TOKEN": "demo-compliance-token",
            ])
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""sdk": "aioapns", "version": "4.0", "shares": 3"#), "\(output)")
    }

    /// Runs a Python script of the repository against a fresh `sharebroker serve --sandbox`, with
    /// BROKER, the sandbox's share and grants tokens and `environment(folder, port)` set; returns its
    /// exit status and output.
    static func runAgainstSandbox(python: String, script path: String,
                                  environment extra: (URL, Int) -> [String: String]) async throws -> (Int32, String) {
        try await withSandbox { directory, port in
            try await runPython(python, path, [], directory: directory, port: port, environment: extra(directory, port))
        }
    }

    /// A fresh `sharebroker serve --sandbox` in a temp folder with the repository's policy, for `body`;
    /// with `config`, that broker.yaml too, and `body` waits for the start lines matching `waitFor`.
    static func withSandbox<T: Sendable>(config: String? = nil, waitFor: [String] = [],
                                         _ body: (URL, Int) async throws -> T) async throws -> T {
        let root = CheckCommandTests.root
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-py-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for folder in ["adapters", "contracts"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(folder),
                                                       withDestinationURL: root.appendingPathComponent(folder))
        }
        if let config { try config.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8) }
        let (server, out) = try CrashRecoveryTests.start(["serve", "--sandbox", "--port", "0"] + (config == nil ? [] : ["--config", "broker.yaml"]),
                                                         in: directory, environment: ["PATH": "/usr/bin:/bin"])
        defer { server.terminate() }
        let port = try await offPool { try CrashRecoveryTests.listening(out, [#"listening on http://127\.0\.0\.1:\d+ \(database"#] + waitFor)[0] }
        let result = try await body(directory, port)
        server.terminate()
        await offPool { server.waitUntilExit() }
        return result
    }

    /// Runs a Python script of the repository with the sandbox's URL and tokens in its environment.
    static func runPython(_ python: String, _ path: String, _ arguments: [String], directory: URL, port: Int,
                          environment extra: [String: String]) async throws -> (Int32, String) {
        let pipe = Pipe()
        let script = try ChildProcess(URL(fileURLWithPath: python), [CheckCommandTests.root.appendingPathComponent(path).path] + arguments, environment: [
            "PATH": "/usr/bin:/bin", "HOME": directory.path, "BROKER": "http://127.0.0.1:\(port)",
            "SHARE_TOKEN": "demo-share-token", "GRANTS_TOKEN": "demo-grants-token",
        ].merging(extra) { _, new in new }, directory: directory, stdout: .pipe(pipe), stderr: .pipe(pipe))
        let output = await offPool { () -> String in
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            script.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
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

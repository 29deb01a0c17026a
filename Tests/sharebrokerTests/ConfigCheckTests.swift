import BrokerTesting
import Foundation
import Testing

/// `sharebroker config check`, plain `serve` without clients, and the version the changelog names.
struct ConfigCheckTests {
    static func folder() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func everyProblemAtOnceWithItsKeyPath() throws {
        let directory = try Self.folder()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            database: sqlite:broker.sqlite
            adapters: \(CheckCommandTests.root.path)/adapters
            contracts: \(CheckCommandTests.root.path)/contracts
            clients:
              - { id: app, token: { file: secrets/app.token }, roles: [share], providers: [huawei-push] }
              - { id: accounts, token_sha256: "<hex>", roles: [grants] }
              - { id: ops, token: demo-admin-token, roles: [admin] }
            shadow: { adapters: next/adapters, contracts: next/contracts }
            limits: { max_fields: 0 }
            tls_interception:
              ca_certificate: { file: /nonexistent/ca.pem }
              ca_key: { file: /nonexistent/ca.key }
            """.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        // The shape first: both shape errors in one run, each with its line.
        let shape = try CheckCommandTests.run(["config", "check", "broker.yaml"], in: directory)
        #expect(shape.status == 1)
        #expect(shape.output.contains("broker.yaml:6:") && shape.output.contains("token_sha256 must be 64 hex digits"), "\(shape.output)")
        #expect(shape.output.contains("limits: max_fields"), "\(shape.output)")
        #expect(shape.output.contains("2 errors"), "\(shape.output)")

        // With the shape fixed: what only this machine can tell, every problem with its key path.
        var text = try String(contentsOf: directory.appendingPathComponent("broker.yaml"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"<hex>\"", with: "\"" + String(repeating: "ab", count: 32) + "\"")
            .replacingOccurrences(of: "limits: { max_fields: 0 }", with: "")
        try text.write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        let result = try CheckCommandTests.run(["config", "check", "broker.yaml"], in: directory)
        #expect(result.status == 1)
        for line in ["clients[app].token: secrets/app.token does not exist",
                     "tls_interception.ca_certificate: /nonexistent/ca.pem does not exist",
                     "tls_interception.ca_key: /nonexistent/ca.key does not exist",
                     "shadow.adapters: the folder next/adapters does not exist",
                     "shadow.contracts: the folder next/contracts does not exist",
                     "warning: clients[ops].token: looks like a demo value"] {
            #expect(result.output.contains(line), "\(line)\n\(result.output)")
        }
        #expect(!result.output.contains("demo-admin-token"), "a secret's value is never printed")
        #expect(result.output.contains("5 errors"), "\(result.output)")

        let missing = try CheckCommandTests.run(["config", "check", "nowhere.yaml"], in: directory)
        #expect(missing.status == 1 && missing.output.contains("nowhere.yaml does not exist"), "\(missing.output)")
    }

    @Test func serveWithoutClientsWarnsAndIsNotReady() async throws {
        let directory = try CrashRecoveryTests.brokerDirectory(provider: "huawei-push", upstreams: [:])
        defer { try? FileManager.default.removeItem(at: directory) }
        try "listen: 127.0.0.1:0\n".write(to: directory.appendingPathComponent("broker.yaml"), atomically: true, encoding: .utf8)
        let pipe = Pipe()
        let process = try ChildProcess(try CheckCommandTests.executable(), ["serve", "--config", "broker.yaml"],
                                       environment: ["PATH": "/usr/bin:/bin"], directory: directory, stdout: .pipe(pipe))
        defer { process.terminate(); process.waitUntilExit() }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !text.contains("listening on") {
            let data = await offPool { pipe.fileHandleForReading.availableData }
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        #expect(text.contains("WARNING: this broker is not set up for production"), "\(text)")
        #expect(text.contains("no client is configured"), "\(text)")
        #expect(text.contains("created a new key") == false, "key notices go to stderr, not into stdout")
        let port = try #require(text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression)
            .flatMap { Int(text[$0].split(separator: ":").last ?? "") })
        let ready = try await offPool { try curl(["-s", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)/readyz"]) }
        #expect(ready.output.hasSuffix("\n503"), "\(ready.output)")
        #expect(ready.output.contains("not_ready") && ready.output.contains("no client is configured"), "\(ready.output)")
    }

    @Test func theChangelogNamesTheVersionTheBinaryReports() throws {
        let result = try CheckCommandTests.run(["--version"], in: CheckCommandTests.root)
        let version = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let changelog = try String(contentsOf: CheckCommandTests.root.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let released = changelog.split(separator: "\n").first { $0.hasPrefix("## [") && !$0.hasPrefix("## [Unreleased]") }
        #expect(released?.hasPrefix("## [\(version)]") == true, "sharebroker --version says \(version); the changelog: \(released ?? "none")")
    }

    @Test func helpTextsCiteNoDocumentOutsideTheRepository() throws {
        for command in [["--help"], ["serve", "--help"], ["check", "--help"], ["config", "check", "--help"]] {
            let result = try CheckCommandTests.run(command, in: CheckCommandTests.root)
            for outside in ["DESIGN", "PROVIDERS.md", "STACK.md", "beside this repository"] {
                #expect(!result.output.contains(outside), "\(command): \(outside)")
            }
        }
    }
}

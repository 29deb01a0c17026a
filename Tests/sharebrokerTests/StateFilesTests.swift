import BrokerTesting
import Foundation
import Testing

/// Issue 23 §6, through a real `sharebroker serve --sandbox`: what the broker writes to disk is
/// its own user's only, its interception CA can name the adapters' hosts and nothing else, and
/// the policy folders are not a window onto other files.
@Suite(.serialized) struct StateFilesTests {
    /// The permission bits of `path`, not following a final link.
    static func mode(_ path: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path.path)
        return try #require(attributes[.posixPermissions] as? Int, "\(path.path)")
    }

    /// `openssl x509 -text` of a PEM file.
    static func certificateText(_ path: URL) throws -> String {
        try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/openssl"), ["x509", "-noout", "-text", "-in", path.path],
                                environment: ["PATH": "/usr/bin:/bin"], directory: path.deletingLastPathComponent(),
                                mergingStderr: true).output
    }

    @Test func keysTheDatabaseAndTheStateFolderAreOwnerOnlyAndTheCANamesOnlyAdapterHosts() async throws {
        let directory = try PublishedSharingListTests.policyFolder()
        defer { try? FileManager.default.removeItem(at: directory) }
        // One adapter left out at first: the CA made then does not cover its host.
        let held = directory.appendingPathComponent("held")
        try FileManager.default.createDirectory(at: held, withIntermediateDirectories: true)
        for name in ["adapters/vivo-push.yaml", "contracts/vivo-push.yaml", "contracts/published-sharing-list.yaml", "contracts/privacy-policy.yaml"] {
            try FileManager.default.moveItem(at: directory.appendingPathComponent(name),
                                             to: held.appendingPathComponent(name.replacingOccurrences(of: "/", with: "-")))
        }
        let state = directory.appendingPathComponent(".sharebroker")
        var sandbox = try await PublishedSharingListTests.sandbox(in: directory)
        let share = try await sandbox.curl(["-o", "/dev/null", "-w", "%{http_code}", "\(sandbox.base)/v1/subjects/u1",
                                            "-X", "PUT", "-H", "Authorization: Bearer demo-grants-token",
                                            "-H", "Content-Type: application/json", "--data", #"{"birth_date":"1990-01-01"}"#])
        #expect(share == "200", "a write, so that the WAL holds something")
        #expect(try Self.mode(state) == 0o700, ".sharebroker/ is the broker's own")
        for name in ["tls-ca.key", "fingerprint.key", "revocation.key", "checkpoint.key", "broker.sqlite", "broker.sqlite-wal",
                     "broker.sqlite-shm"] {
            #expect(try Self.mode(state.appendingPathComponent(name)) == 0o600, "\(name)")
        }
        let first = try Self.certificateText(state.appendingPathComponent("tls-ca.pem"))
        #expect(first.contains("X509v3 Name Constraints: critical"), "\(first)")
        #expect(first.contains("DNS:push-api.cloud.huawei.com") && !first.contains("vivo"), "\(first)")
        #expect(first.contains("IP:0.0.0.0/0.0.0.0"), "no IP address may be named: \(first)")
        sandbox.stop()

        // The held-back provider returns: its host is not covered, so the CA is made anew (and said so).
        for name in ["adapters/vivo-push.yaml", "contracts/vivo-push.yaml", "contracts/published-sharing-list.yaml", "contracts/privacy-policy.yaml"] {
            try FileManager.default.moveItem(at: held.appendingPathComponent(name.replacingOccurrences(of: "/", with: "-")),
                                             to: directory.appendingPathComponent(name))
        }
        sandbox = try await PublishedSharingListTests.sandbox(in: directory)
        defer { sandbox.stop() }
        let second = try Self.certificateText(state.appendingPathComponent("tls-ca.pem"))
        #expect(second != first)
        #expect(second.contains("DNS:api-push.vivo.com.cn"), "\(second)")
        #expect(try Self.mode(state.appendingPathComponent("tls-ca.key")) == 0o600)
        // A real TLS client (curl, OpenSSL) checks the constraints and takes the leaf for an adapter host.
        let tunnel = try await sandbox.curl(["-i", "-x", sandbox.base, "-U", "demo-app:demo-share-token",
                                             "--cacert", state.appendingPathComponent("tls-ca.pem").path,
                                             "-H", "X-Share-Subject: u1", "-H", "Content-Type: application/json",
                                             "--data", #"{"message":{"token":["T"]}}"#, "-w", "\n%{http_code}",
                                             "https://push-api.cloud.huawei.com/v1/10086/messages:send"])
        #expect(tunnel.contains("200 Connection Established") && !tunnel.hasSuffix("\n000"), "\(tunnel)")
    }

    /// A link in `adapters/` to a file outside it: the reload's 422 and `check` name the link and
    /// never quote the file (here a shadow-like line that YAML reads as a mapping key).
    @Test func aSymlinkOutOfThePolicyFoldersIsRefusedWithoutItsContent() async throws {
        let directory = try PublishedSharingListTests.policyFolder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = directory.appendingPathComponent("shadow")
        try "root:SECRETHASH-9f8e7d:19000:0:99999:7:::\n".write(to: secret, atomically: true, encoding: .utf8)
        let sandbox = try await PublishedSharingListTests.sandbox(in: directory)
        defer { sandbox.stop() }
        try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent("adapters/zz-shadow.yaml"),
                                                   withDestinationURL: secret)
        let answer = try await sandbox.curl(["-X", "POST", "\(sandbox.base)/v1/admin/policy/reload",
                                             "-H", "Authorization: Bearer demo-admin-token", "-w", "\n%{http_code}"])
        #expect(answer.hasSuffix("\n422"), "\(answer)")
        #expect(answer.contains("zz-shadow.yaml") && answer.contains("symbolic link"), "\(answer)")
        #expect(!answer.contains("SECRETHASH") && !answer.contains("root:"), "\(answer)")

        let check = try CheckCommandTests.run(["check"], in: directory)
        #expect(check.status != 0)
        #expect(check.output.contains("adapters/zz-shadow.yaml:0: a symbolic link to a file outside adapters"), "\(check.output)")
        #expect(!check.output.contains("SECRETHASH"), "\(check.output)")

        // A link that stays inside its folder is an ordinary file.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("adapters/zz-shadow.yaml"))
        let adapters = directory.appendingPathComponent("adapters")
        try FileManager.default.moveItem(at: adapters.appendingPathComponent("fcm.yaml"), to: adapters.appendingPathComponent("fcm.yaml.real"))
        try FileManager.default.createSymbolicLink(atPath: adapters.appendingPathComponent("fcm.yaml").path, withDestinationPath: "fcm.yaml.real")
        let inside = try CheckCommandTests.run(["check"], in: directory)
        #expect(inside.status == 0, "\(inside.output)")
    }

    /// Whatever a file holds, an issue quotes at most a short, escaped piece of it.
    @Test func anUnknownKeyIsQuotedShortAndEscaped() throws {
        let directory = try PublishedSharingListTests.policyFolder()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("adapters/fcm.yaml")
        let text = try String(contentsOf: path, encoding: .utf8)
        let key = "\"" + String(repeating: "A", count: 100) + "\\u001b[31mRED\\nfake.yaml:1: forged\""
        try (text + "\n" + key + ": 1\n").write(to: path, atomically: true, encoding: .utf8)
        let check = try CheckCommandTests.run(["check"], in: directory)
        #expect(check.status != 0)
        #expect(check.output.contains("unknown key '" + String(repeating: "A", count: 64) + "…'"), "\(check.output)")
        #expect(!check.output.contains("\u{1b}") && !check.output.contains("RED") && !check.output.contains("\nfake.yaml"),
                "\(check.output)")
    }
}

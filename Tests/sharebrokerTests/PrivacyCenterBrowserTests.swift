import BrokerTesting
import Foundation
import Testing

/// Issue 13: the privacy center in a real browser — Debian's chromium and chromium-driver, driven
/// by Selenium (Tests/browser/privacy_center.py) — against `sharebroker serve --sandbox`: the
/// grants in words, what was shared, a revoke followed to the provider's confirmation, 360 px in
/// Chinese, another user's token, an expired token, and deleting the account. Screenshots at 1280
/// and 360 px land in `.build/test-artifacts/`.
///
/// `make test` installs chromium and creates the venv; with SHAREBROKER_REQUIRE_PYTHON=1 a
/// missing browser or venv is a failure, not a skip.
@Suite struct PrivacyCenterBrowserTests {
    @Test func thePrivacyCenterInChromium() async throws {
        let required = ProcessInfo.processInfo.environment["SHAREBROKER_REQUIRE_PYTHON"] == "1"
        guard let python = SDKTunnelTests.python, FileManager.default.isExecutableFile(atPath: python),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") else {
            #expect(!required, "the browser test needs the venv (scripts/python-venv), /usr/bin/chromium and /usr/bin/chromedriver")
            return
        }
        let artifacts = CheckCommandTests.root.appendingPathComponent(".build/test-artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let (status, output) = try await SDKTunnelTests.runAgainstSandbox(python: python, script: "Tests/browser/privacy_center.py") { _, _ in
            ["ARTIFACTS": artifacts.path, "USER_ISSUER": "https://sandbox.sharebroker.invalid", "USER_SECRET": "demo-user-jwt-secret"]
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""ok": ["grants-and-shares", "consent-records", "revoke-acknowledged", "360px-zh-CN", "other-user", "expired-token", "labels", "delete-account"]"#),
                "\(output)")
        for shot in ["privacy-1280.png", "privacy-360-zh.png"] {
            #expect(FileManager.default.fileExists(atPath: artifacts.appendingPathComponent(shot).path), "\(shot)")
        }
    }
}

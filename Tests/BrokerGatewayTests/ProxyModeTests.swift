import BrokerCurl
@testable import BrokerSQLite
import BrokerTesting
import Foundation
import GRDB
import Testing

/// Changes one stored record behind the broker's back, as an attacker with file access would.
func tamper(_ path: String, seq: Int64) throws {
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)   // the broker's writer or follower may hold the lock a moment
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    try queue.write { db in
        // The triggers only stop honest mistakes; someone with the file drops them first.
        try db.execute(sql: "DROP TRIGGER IF EXISTS share_log_no_update")
        // Stored packed: edited as the text it unpacks to (`dict` NULL then).
        SQLiteStore.registerLogFunctions(db)
        try db.execute(sql: """
            UPDATE share_log SET body = replace(\(SQLiteStore.bodyText("share_log")), 'node-1', 'node-X'), dict = NULL WHERE seq = ?
            """, arguments: [seq])
    }
}

/// Runs the `curl` command line, as a caller using the broker as an HTTP proxy would, off the
/// cooperative pool (the in-process broker runs there: blocking it would starve the broker).
func curl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await offPool { try runCurl(arguments) }
}

private func runCurl(_ arguments: [String]) throws -> (status: Int32, output: String) {
    // No proxy variables from the test environment.
    try ChildProcess.output(URL(fileURLWithPath: "/usr/bin/curl"), arguments, environment: [:], mergingStderr: true)
}

@Suite(.serialized) struct ProxyModeTests {
    @Test func curlAsAForwardProxy() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: "essential.service.notifications.push",
                                   categories: ["user.device.push_token"])
            let result = try await curl([
                "-s", "-i", "-x", "http://127.0.0.1:\(broker.port)", "-U", "test-app:\(Broker.shareToken)",
                "-H", "X-Share-Subject: u1", "-H", "Content-Type: application/json",
                "--data", #"{"message":{"token":["AAA"],"notification":{"title":"Hi Ann"}}}"#,
                "http://push-api.cloud.huawei.com/v1/10086/messages:send",
            ])
            #expect(result.status == 0)
            #expect(result.output.hasPrefix("HTTP/1.1 200"), "\(result.output)")
            #expect(result.output.lowercased().contains("x-share-decision: redacted"))
            #expect(result.output.contains("80000000"))
            let request = try #require(broker.simulator("huawei-push").requests().last)
            #expect(!request.contains("Ann") && request.contains("AAA"))
            #expect(request.header("Proxy-Authorization") == nil)
        }
    }

    @Test func forwardProxyNeedsCredentials() async throws {
        try await withBroker { broker in
            let result = try await curl(["-s", "-i", "-x", "http://127.0.0.1:\(broker.port)", "-H", "X-Share-Subject: u1",
                                   "http://restapi.amap.com/v3/ip?ip=1.2.3.4"])
            #expect(result.output.hasPrefix("HTTP/1.1 407"), "\(result.output)")
            let wrong = try await curl(["-s", "-i", "-x", "http://127.0.0.1:\(broker.port)", "-U", "test-app:nope",
                                  "-H", "X-Share-Subject: u1", "http://restapi.amap.com/v3/ip?ip=1.2.3.4"])
            #expect(wrong.output.hasPrefix("HTTP/1.1 407"), "wrong credentials are asked for again: \(wrong.output)")
            #expect(wrong.output.lowercased().contains("proxy-authenticate: basic realm=\"sharebroker\""), "\(wrong.output)")
            #expect(wrong.output.contains("\"code\":\"unauthenticated\""))
            #expect(broker.simulator("amap-location").requests().isEmpty)
            let metrics = try await broker.call("GET", "/metrics", token: nil).text
            #expect(metrics.contains(#"sharebroker_shares_total{provider="amap-location",operation="none",channel="proxy",decision="none",code="unauthenticated"} 2"#),
                    "both refusals are counted: \(metrics)")
        }
    }

    @Test func neverAnOpenProxy() async throws {
        try await withBroker { broker in
            let unknown = try await curl(["-s", "-i", "-x", "http://127.0.0.1:\(broker.port)", "-U", "test-app:\(Broker.shareToken)",
                                    "http://example.org/v1/subjects/u1/grants"])
            #expect(unknown.output.hasPrefix("HTTP/1.1 404"), "\(unknown.output)")
            #expect(unknown.output.contains("\"code\":\"unknown_provider\""))
            // A tunnel to an adapter host at a port no adapter uses (80): refused, nothing sent.
            let tunnel = try await curl(["-s", "-i", "-m", "5", "-p", "-x", "http://127.0.0.1:\(broker.port)",
                                   "-U", "test-app:\(Broker.shareToken)", "http://push-api.cloud.huawei.com/"])
            #expect(tunnel.output.contains("403"), "\(tunnel.output)")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    @Test func problemsForBadInput() async throws {
        try await withBroker { broker in
            let unknownProvider = try await broker.call("POST", "/v1/proxy/nobody/x", headers: [("X-Share-Subject", "u1")])
            #expect(unknownProvider.status == 403, "the caller is not permitted for an unknown provider")
            let wrongType = try await broker.call("POST", "/v1/proxy/huawei-push/v1/1/messages:send",
                                                  headers: [("Content-Type", "text/plain"), ("X-Share-Subject", "u1")],
                                                  body: "hello")
            #expect(wrongType.status == 415)
            #expect(wrongType.json["code"] as? String == "unsupported_media_type")
            let big = String(repeating: "x", count: 1_100_000)
            let tooLarge = try await broker.call("POST", "/v1/proxy/huawei-push/v1/1/messages:send",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                                 body: #"{"a":""# + big + #""}"#)
            #expect(tooLarge.status == 413)
            let notFound = try await broker.call("GET", "/v1/nothing-here")
            #expect(notFound.status == 404)
            #expect(notFound.headerValue("Content-Type") == "application/problem+json")
            let health = try await broker.call("GET", "/healthz", token: nil)
            #expect(health.status == 200)
            let ready = try await broker.call("GET", "/readyz", token: nil)
            #expect(ready.status == 200)
        }
    }

    @Test func sdkDecisionIsLoggedAndReturnsThePayload() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: "essential.service.notifications.push",
                                   categories: ["user.device.push_token"])
            let response = try await broker.call("POST", "/v1/decisions", headers: [("Content-Type", "application/json")], body: """
                {"provider":"huawei-push","operation":"send","subject":"u1",
                 "fields":{"message":{"token":["AAA"],"notification":{"title":"Hi Ann"}}}}
                """)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.json["decision"] as? String == "redacted")
            let payload = response.json["payload"] as? [String: Any]
            let message = payload?["message"] as? [String: Any]
            #expect(message?["token"] as? [String] == ["AAA"])
            #expect(message?["notification"] as? [String: Any] != nil)
            #expect(!response.text.contains("Ann"))
            #expect(broker.simulator("huawei-push").requests().isEmpty, "an SDK decision forwards nothing")
            let records = try await broker.records()
            #expect(records.first?.body.contains("\"sdk\"") == true)
        }
    }
}

/// Limits on what a client may hold or send.
@Suite(.serialized) struct ClientLimitTests {
    /// Opens a raw TCP connection, sends `bytes`, and reads until the broker closes it (or `wait` passes).
    static func rawExchange(port: Int, _ text: String, wait: Duration) throws -> (reply: String, closed: Bool) {
        try rawExchange(port: port, bytes: Array(text.utf8), wait: wait)
    }

    /// The same with exact bytes (invalid UTF-8 included).
    static func rawExchange(port: Int, bytes: [UInt8], wait: Duration) throws -> (reply: String, closed: Bool) {
        let fd = try RawConnection.connectLoopback(port: port)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var timeout = timeval(tv_sec: Int(wait.components.seconds), tv_usec: Int(wait.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var complete = false
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                reply += buffer[0..<n]
                if !complete && Self.isCompleteResponse(reply) {
                    // The whole answer is in: wait (up to 3 s, as a loaded suite may need) to see whether the broker
                    // closes. Every caller expects a close, so this returns at the EOF, not after the wait.
                    complete = true
                    var short = timeval(tv_sec: 3, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &short, socklen_t(MemoryLayout<timeval>.size))
                }
                continue
            }
            return (String(decoding: reply, as: UTF8.self), n == 0)
        }
    }

    /// A response head plus as many body bytes as its Content-Length says.
    static func isCompleteResponse(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<end.lowerBound].lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return false }
        return text[end.upperBound...].utf8.count >= length
    }

    @Test func aStalledClientIsCutOff() async throws {
        try await withBroker { broker in
            // Headers promise a body that never comes.
            let started = ContinuousClock.now
            let result = try Self.rawExchange(port: broker.port, """
                POST /v1/proxy/huawei-push/v1/1/messages:send HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(Broker.shareToken)\r
                Content-Type: application/json\r
                Content-Length: 100\r
                \r
                {"mess
                """, wait: .seconds(5))
            #expect(result.closed, "the broker closed the stalled connection")
            #expect(ContinuousClock.now - started < .seconds(4))
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    @Test func oversizedHeadersAreRefused() async throws {
        try await withBroker { broker in
            let big = String(repeating: "a", count: 8_000)
            let result = try Self.rawExchange(port: broker.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(big)\r\n\r\n",
                                              wait: .seconds(3))
            #expect(!result.reply.contains("200 OK"), "\(result.reply.prefix(200))")
            #expect(result.closed || result.reply.hasPrefix("HTTP/1.1 4"))
        }
    }
}

@Suite(.serialized) struct SubjectAPITests {
    @Test func unknownAndMissingFieldsAreNamed() async throws {
        try await withBroker { broker in
            let typo = try await broker.call("PUT", "/v1/subjects/u9", token: Broker.grantsToken,
                                             headers: [("Content-Type", "application/json")], body: #"{"birthdate":"2015-01-01"}"#)
            #expect(typo.status == 400)
            #expect(typo.json["code"] as? String == "malformed_body")
            #expect((typo.json["detail"] as? String)?.contains("birthdate") == true)
            let missing = try await broker.call("POST", "/v1/subjects/u9/grants", token: Broker.grantsToken,
                                                headers: [("Content-Type", "application/json")],
                                                body: #"{"provider":"huawei-push","purpose":"essential.service.notifications.push"}"#)
            #expect(missing.status == 400)
            #expect((missing.json["detail"] as? String)?.contains("is required") == true, "\(missing.text)")
            let wrongRole = try await broker.call("GET", "/v1/subjects/u9/grants")
            #expect(wrongRole.status == 403 && wrongRole.json["code"] as? String == "caller_not_permitted")
            // Granted first: a known minor gets no grant (403 minor_subject), and becoming one revokes every grant.
            try await broker.grant("u9", provider: "huawei-push", purpose: "essential.service.notifications.push")
            let minor = try await broker.call("PUT", "/v1/subjects/u9", token: Broker.grantsToken,
                                              headers: [("Content-Type", "application/json")], body: #"{"birth_date":"2015-01-01"}"#)
            #expect(minor.status == 200)
            let share = try await broker.call("POST", "/v1/proxy/huawei-push/v1/1/messages:send",
                                              headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u9")],
                                              body: #"{"message":{"token":["T"]}}"#)
            #expect(share.json["code"] as? String == "minor_subject")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }
}

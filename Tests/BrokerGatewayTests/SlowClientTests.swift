import BrokerService
import Foundation
import Testing

/// Issue 23, item 5: slow and unauthenticated clients cannot hold connections or memory.
/// Raw sockets through the real server, on threads of their own (never the concurrency pool).
@Suite(.serialized) struct SlowClientTests {
    /// Short deadlines; the idle timeout as in the review (3 s), so a byte every second keeps the
    /// connection "active" and only the whole-part deadlines can cut it.
    static func fast(_ limits: inout BrokerConfig.Limits) {
        limits.clientTimeoutMs = 3000
        limits.headTimeoutMs = 2000
        limits.bodyTimeoutMs = 2000
    }

    /// Sends `head`, then one byte of body every `every` until the broker closes the connection
    /// (or `giveUp` passes). Returns what it answered and when it closed, from the first byte.
    static func trickle(port: Int, head: String, bytes: [UInt8] = [], every: Duration, giveUp: Duration)
        async throws -> (reply: String, closedAfter: Duration?) {
        try await onThread {
            let connection = try RawConnection(port: port)
            let started = ContinuousClock.now
            connection.write(Array(head.utf8))
            var pending = bytes[...]
            while ContinuousClock.now - started < giveUp {
                if connection.readAvailable(waiting: every) == .closed {
                    return (connection.reply, ContinuousClock.now - started)
                }
                if let byte = pending.popFirst() {
                    connection.write([byte])
                } else {
                    connection.write(Array("x".utf8))
                }
            }
            return (connection.reply, nil)
        }
    }

    /// True once no body bytes are reserved (a closed connection gives its share back as its
    /// channel goes inactive, a moment after the client sees the close).
    static func budgetDrains(_ broker: Broker) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while broker.gateway.bodyBudget.inUse > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return broker.gateway.bodyBudget.inUse == 0
    }

    // MARK: Whole-part deadlines

    /// The review's slowloris: eight unauthenticated `POST /healthz` promising a megabyte and
    /// sending a byte at a time, each byte inside the idle timeout. Each is answered 405 with
    /// `Connection: close` and cut at once, the body never read.
    /// A loopback listener also takes HTTP/2 with prior knowledge, told by the first bytes: a
    /// connection that sends nothing, or the start of the preface and then nothing, is closed at the
    /// client timeout all the same (before any HTTP pipeline exists to time it out).
    @Test func silentConnectionsAndAHalfPrefaceAreClosedAtTheClientTimeout() async throws {
        try await withBroker(limits: { $0.clientTimeoutMs = 1500 }) { broker in
            for first in ["", "PRI * HTTP/2"] {
                let closedAfter = try await onThread { () -> Duration? in
                    let connection = try RawConnection(port: broker.port)
                    let started = ContinuousClock.now
                    if !first.isEmpty { connection.write(Array(first.utf8)) }
                    while ContinuousClock.now - started < .seconds(6) {
                        if connection.readAvailable(waiting: .milliseconds(100)) == .closed { return ContinuousClock.now - started }
                    }
                    return nil
                }
                let after = try #require(closedAfter, "'\(first)' then silence: still open after 6 s")
                #expect(after >= .milliseconds(1200) && after < .seconds(4), "'\(first)': closed after \(after)")
            }
        }
    }

    @Test func unauthenticatedTricklesAreCutWithinTheDeadline() async throws {
        try await withBroker(limits: Self.fast) { broker in
            let head = "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"
            let results = try await withThrowingTaskGroup(of: (reply: String, closedAfter: Duration?).self) { group in
                for _ in 0..<8 {
                    group.addTask { try await Self.trickle(port: broker.port, head: head, every: .milliseconds(1000), giveUp: .seconds(8)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for result in results {
                #expect(HardeningTests.status(result.reply) == 405, "\(result.reply.prefix(200))")
                #expect(result.reply.lowercased().contains("connection: close"))
                let closed = try #require(result.closedAfter, "the connection stayed open")
                #expect(closed < .milliseconds(2000 + 2500), "closed after \(closed)")
            }
        }
    }

    /// A refusal that leaves body unread closes the connection with the answer, even when the
    /// client then sends nothing (the idle timeout, 10 s here, is not what closes it).
    @Test func aRefusalWithUnreadBodyClosesTheConnection() async throws {
        try await withBroker(limits: { $0.clientTimeoutMs = 10_000 }) { broker in
            let started = ContinuousClock.now
            let reply = try await onThread {
                try ClientLimitTests.rawExchange(port: broker.port, """
                    POST /healthz HTTP/1.1\r
                    Host: 127.0.0.1\r
                    Content-Length: 100\r
                    \r
                    abc
                    """, wait: .seconds(5))
            }
            #expect(HardeningTests.status(reply.reply) == 405, "\(reply.reply.prefix(200))")
            #expect(reply.reply.lowercased().contains("connection: close"))
            #expect(reply.closed)
            #expect(ContinuousClock.now - started < .seconds(4))
            // A refusal whose request arrived whole keeps the connection: the next request is answered.
            let both = try await onThread {
                try ClientLimitTests.rawExchange(port: broker.port, """
                    POST /healthz HTTP/1.1\r
                    Host: 127.0.0.1\r
                    Content-Length: 3\r
                    \r
                    abcGET /healthz HTTP/1.1\r
                    Host: 127.0.0.1\r
                    Connection: close\r
                    \r

                    """, wait: .seconds(5))
            }
            #expect(both.reply.contains("405") && both.reply.contains("200 OK"), "\(both.reply)")
        }
    }

    /// An authenticated client trickling its body to `PUT /v1/subjects/…` gets 408 at the body deadline.
    @Test func anAuthenticatedBodyTrickleIsCutAtTheBodyDeadline() async throws {
        try await withBroker(limits: Self.fast) { broker in
            let head = """
                PUT /v1/subjects/u-slow HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(Broker.grantsToken)\r
                Content-Type: application/json\r
                Content-Length: 1000\r
                \r\n
                """
            let result = try await Self.trickle(port: broker.port, head: head, bytes: Array(#"{"region":"#.utf8),
                                                every: .milliseconds(1000), giveUp: .seconds(10))
            #expect(HardeningTests.status(result.reply) == 408, "\(result.reply.prefix(300))")
            #expect(result.reply.contains(#""code":"request_timeout""#))
            let closed = try #require(result.closedAfter, "the connection stayed open")
            #expect(closed >= .milliseconds(1500) && closed < .milliseconds(2000 + 2500), "closed after \(closed)")
        }
    }

    /// A head sent a byte at a time gets 408 at the head deadline (before the idle timeout, 10 s here).
    @Test func aHeadTrickleIsCutAtTheHeadDeadline() async throws {
        try await withBroker(limits: { $0.clientTimeoutMs = 10_000; $0.headTimeoutMs = 2000 }) { broker in
            let result = try await Self.trickle(port: broker.port, head: "GET /healthz HTTP/1.1\r\nX-A: ",
                                                every: .milliseconds(500), giveUp: .seconds(8))
            #expect(HardeningTests.status(result.reply) == 408, "\(result.reply.prefix(300))")
            #expect(result.reply.contains(#""code":"request_timeout""#))
            let closed = try #require(result.closedAfter, "the connection stayed open")
            #expect(closed < .milliseconds(2000 + 2500), "closed after \(closed)")
            // An idle keep-alive connection is the idle timeout's: a request after 2.5 s of silence is answered.
            let late = try await onThread {
                let connection = try RawConnection(port: broker.port)
                Thread.sleep(forTimeInterval: 2.5)
                connection.write(Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
                while connection.readAvailable(waiting: .seconds(3)) == .data {}
                return connection.reply
            }
            #expect(late.hasPrefix("HTTP/1.1 200"), "\(late.prefix(200))")
        }
    }

    // MARK: Authentication before the body

    /// Path form, `/v1/decisions` and the forward proxy refuse a request without credentials
    /// before its body is sent, and close the connection.
    @Test func sharesWithoutCredentialsAreRefusedBeforeTheBody() async throws {
        try await withBroker(limits: { $0.clientTimeoutMs = 10_000 }) { broker in
            let heads = [
                (401, "POST /v1/proxy/huawei-push/v1/10086/messages:send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"),
                (401, "POST /v1/proxy/huawei-push/v1/10086/messages:send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\n"),
                (401, "POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"),
                (407, "POST http://push-api.cloud.huawei.com/v1/10086/messages:send HTTP/1.1\r\nContent-Type: application/json\r\n"),
            ]
            for (status, head) in heads {
                let started = ContinuousClock.now
                let reply = try await onThread {
                    try ClientLimitTests.rawExchange(port: broker.port, head + "Content-Length: 1000000\r\n\r\n", wait: .seconds(5))
                }
                #expect(HardeningTests.status(reply.reply) == status, "\(head.prefix(40)): \(reply.reply.prefix(300))")
                #expect(reply.reply.contains(#""code":"unauthenticated""#))
                #expect(reply.closed, "\(head.prefix(40))")
                #expect(ContinuousClock.now - started < .seconds(4))
            }
            #expect(await Self.budgetDrains(broker))
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    // MARK: The in-flight body budget

    /// Partial megabyte bodies beyond the budget get 503 `overloaded` (with `Retry-After`) and are
    /// closed; those admitted hold exactly their share, and give it back when they go.
    @Test func bodiesBeyondTheBudgetAreRefused() async throws {
        let budget = 4 << 20
        try await withBroker(limits: { $0.clientTimeoutMs = 10_000; $0.bodyTimeoutMs = 10_000; $0.maxInflightBodyBytes = budget }) { broker in
            let head = """
                POST /v1/proxy/huawei-push/v1/10086/messages:send HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(Broker.shareToken)\r
                X-Share-Subject: u1\r
                Content-Type: application/json\r
                Content-Length: 1000000\r
                \r\n
                """
            let chunk = Array(repeating: UInt8(ascii: " "), count: 65_536)
            // Admitted one by one, so which ones fit is certain: 4 × 1,000,000 ≤ 4 MiB < 5 × 1,000,000.
            var open: [RawConnection] = []
            var refused: [String] = []
            for _ in 0..<8 {
                let (connection, reply) = try await onThread {
                    let connection = try RawConnection(port: broker.port)
                    connection.write(Array(head.utf8))
                    connection.write(chunk)
                    _ = connection.readAvailable(waiting: .milliseconds(500))
                    return (connection, connection.reply)
                }
                if reply.isEmpty { open.append(connection) } else { refused.append(reply); connection.hangUp() }
            }
            #expect(open.count == 4)
            #expect(refused.count == 4)
            for reply in refused {
                #expect(HardeningTests.status(reply) == 503, "\(reply.prefix(300))")
                #expect(reply.contains(#""code":"overloaded""#))
                #expect(reply.lowercased().contains("retry-after: 1"))
            }
            #expect(broker.gateway.bodyBudget.inUse == 4 * 1_000_000)
            #expect(broker.gateway.bodyBudget.inUse <= budget)
            // Clients that go away give their share back.
            for connection in open { connection.hangUp() }
            #expect(await Self.budgetDrains(broker))
            // And the broker takes bodies again.
            let answer = try await broker.call("POST", "/v1/decisions", headers: [("Content-Type", "application/json")],
                                               body: #"{"provider":"huawei-push","operation":"send","subject":"u1","fields":{}}"#)
            #expect(answer.status != 503, "\(answer.text)")
        }
    }
}

/// Runs blocking socket work on a thread of its own.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// A raw TCP connection to the broker, for clients no HTTP library would be.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private(set) var received: [UInt8] = []
    var reply: String { String(decoding: received, as: UTF8.self) }

    struct ConnectFailed: Error {}

    init(port: Int) throws {
        fd = try Self.connectLoopback(port: port)
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port`.
    static func connectLoopback(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConnectFailed() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw ConnectFailed() }
        return fd
    }

    deinit { close(fd) }

    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Sends what it can (a connection the broker closed refuses quietly).
    func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    enum ReadResult { case data, nothing, closed }

    /// Waits up to `waiting` for bytes; reads what is there.
    func readAvailable(waiting: Duration) -> ReadResult {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(waiting.components.seconds * 1000 + waiting.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) > 0 else { return .nothing }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { return .closed }
        received += buffer[0..<n]
        return .data
    }
}

@testable import BrokerGateway
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

/// An HTTP/2 stream's body against the shared in-flight budget and the body deadline
/// (`StreamBodyGuard`), on an embedded channel with a clock the test moves.
@Suite struct StreamBodyGuardTests {
    func stream(_ budget: InflightBodyBudget, timeout: TimeAmount = .seconds(30)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(StreamBodyGuard(budget: budget, bodyTimeout: timeout, bodyCap: 200))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        #expect(channel.isActive)
        return channel
    }

    static let head = HTTPRequestPart.head(HTTPRequest(method: .post, scheme: "https", authority: "localhost", path: "/v1/proxy/p/x"))

    func answer(_ channel: EmbeddedChannel) throws -> (HTTPResponse.Status?, String) {
        var status: HTTPResponse.Status?
        var body = ""
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let response): status = response.status
            case .body(let bytes): body += String(buffer: bytes)
            case .end: break
            }
        }
        return (status, body)
    }

    @Test func bodiesCountAgainstTheBudgetUntilTheirAnswerEnds() throws {
        let budget = InflightBodyBudget(limit: 100)
        let first = try stream(budget)
        try first.writeInbound(Self.head)
        try first.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 1, count: 60)))
        #expect(budget.inUse == 60)
        // A second stream's body that does not fit: 503 overloaded on that stream, which closes.
        let second = try stream(budget)
        try second.writeInbound(Self.head)
        try second.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 2, count: 50)))
        let (status, body) = try answer(second)
        #expect(status == .serviceUnavailable && body.contains(#""code":"overloaded""#), "\(body)")
        #expect(!second.isActive && budget.inUse == 60)
        // The first stream's answer ends: its bytes go back.
        try first.writeInbound(HTTPRequestPart.end(nil))
        try first.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try first.writeOutbound(HTTPResponsePart.end(nil))
        #expect(budget.inUse == 0)
        _ = try first.finish()
    }

    /// A stream's head needs one valid :authority, and a host field naming the same if it sends one.
    @Test func aStreamNeedsOneValidAuthority() throws {
        let budget = InflightBodyBudget(limit: 1000)
        for (authority, host) in [(nil, nil), ("bad host", nil), ("localhost:8443", "evil.example")] as [(String?, String?)] {
            let channel = try stream(budget)
            var request = HTTPRequest(method: .get, scheme: "https", authority: authority, path: "/healthz")
            if let host { request.headerFields[HTTPField.Name("Host")!] = host }
            try channel.writeInbound(HTTPRequestPart.head(request))
            let (status, body) = try answer(channel)
            #expect(status == .badRequest && body.contains(#""code":"invalid_host""#), "\(authority ?? "nil") / \(host ?? "nil"): \(body)")
            #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil, "nothing passed on")
        }
        let fine = try stream(budget)
        try fine.writeInbound(Self.head)
        #expect(try fine.readInbound(as: HTTPRequestPart.self) != nil)
        _ = try fine.finish()
    }

    /// One stream's body over the cap (`max_body_bytes` + 1) is 413, whatever the budget has left.
    @Test func aBodyOverTheCapIs413() throws {
        let budget = InflightBodyBudget(limit: 10_000)
        let big = try stream(budget)
        try big.writeInbound(Self.head)
        try big.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 1, count: 150)))
        try big.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 1, count: 100)))
        let (status, body) = try answer(big)
        #expect(status == .contentTooLarge && body.contains(#""code":"body_too_large""#), "\(body)")
        #expect(!big.isActive && budget.inUse == 0)
    }

    @Test func aBodyPastItsDeadlineIsCutWith408() throws {
        let budget = InflightBodyBudget(limit: 1000)
        let slow = try stream(budget, timeout: .seconds(5))
        try slow.writeInbound(Self.head)
        try slow.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 1, count: 10)))
        slow.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(slow.isActive)
        slow.embeddedEventLoop.advanceTime(by: .seconds(2))
        let (status, body) = try answer(slow)
        #expect(status == .requestTimeout && body.contains(#""code":"request_timeout""#), "\(body)")
        #expect(!slow.isActive && budget.inUse == 0)

        // A body that ends in time is never cut.
        let quick = try stream(budget, timeout: .seconds(5))
        try quick.writeInbound(Self.head)
        try quick.writeInbound(HTTPRequestPart.end(nil))
        quick.embeddedEventLoop.advanceTime(by: .seconds(10))
        let answered = try answer(quick).0
        #expect(quick.isActive && answered == nil)
        _ = try quick.finish()
    }
}

@testable import BrokerGateway
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP2
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
        // A `host` field and no `:authority` (as aioapns sends): the host names the authority (RFC 9113, 8.3.1).
        for host in ["api.push.apple.com", "bad host"] {
            let hostOnly = try stream(budget)
            var request = HTTPRequest(method: .post, scheme: "https", authority: nil, path: "/3/device/ab")
            request.headerFields[HTTPField.Name("Host")!] = host
            try hostOnly.writeInbound(HTTPRequestPart.head(request))
            if host == "bad host" {
                #expect(try answer(hostOnly).0 == .badRequest)
            } else {
                guard case .head(let passed)? = try hostOnly.readInbound(as: HTTPRequestPart.self) else {
                    Issue.record("the head was not passed on"); continue
                }
                #expect(passed.authority == host)
            }
        }
    }

    /// The codec's empty end frame folded into the answer's last frame (`EndStreamOnLastData`): a
    /// bodiless answer is one HEADERS frame that ends the stream, a body's last DATA frame ends it.
    @Test func anAnswerEndsOnItsLastFrame() throws {
        let channel = EmbeddedChannel(handler: EndStreamOnLastData())
        let headers = HTTP2Frame.FramePayload.headers(.init(headers: [":status": "200"]))
        let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
        func frames() throws -> [String] {
            var seen: [String] = []
            while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) {
                switch frame {
                case .headers(let h): seen.append("headers\(h.endStream ? "+end" : "")")
                case .data(let d):
                    guard case .byteBuffer(let bytes) = d.data else { continue }
                    seen.append("data(\(bytes.readableBytes))\(d.endStream ? "+end" : "")")
                default: seen.append("other")
                }
            }
            return seen
        }
        channel.write(headers, promise: nil)
        try channel.writeAndFlush(end).wait()
        #expect(try frames() == ["headers+end"])
        channel.write(headers, promise: nil)
        channel.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: #"{"reason":"x"}"#)))), promise: nil)
        try channel.writeAndFlush(end).wait()
        #expect(try frames() == ["headers", "data(14)+end"])
        // A flush between sends what is held as it was.
        try channel.writeAndFlush(headers).wait()
        try channel.writeAndFlush(end).wait()
        #expect(try frames() == ["headers", "data(0)+end"])
        _ = try channel.finish()
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

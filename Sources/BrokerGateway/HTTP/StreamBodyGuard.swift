import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// What `RequestTargetGuard` and `RequestDeadlineHandler` do for an HTTP/1.1 connection, for one
/// HTTP/2 stream: a head needs one valid `:authority`, or else one `host` field (a `host` field beside
/// `:authority` must name the same: 400 `invalid_host`); the
/// request's body bytes count against the shared `InflightBodyBudget` as they arrive (503
/// `overloaded` when they do not fit) and are given back when the stream's answer has ended or the
/// stream closed; a body that has not ended `bodyTimeout` after its head is cut (408
/// `request_timeout` when nothing was answered yet), and a body over `max_body_bytes` is 413
/// `body_too_large`. The stream is then closed; the connection and
/// its other streams go on. One lock per body chunk, one timer per stream with a body.
final class StreamBodyGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let budget: InflightBodyBudget
    private let bodyTimeout: TimeAmount
    /// The most one request's body may hold (`max_body_bytes` + 1: the share path refuses past its limit itself).
    private let bodyCap: Int
    private var held = 0
    private var received = 0
    private var timer: Scheduled<Void>?
    private var ended = false
    private var answered = false
    /// The answer has ended (its budget given back).
    private var finished = false
    private var cut = false

    init(budget: InflightBodyBudget, bodyTimeout: TimeAmount, bodyCap: Int) {
        self.budget = budget
        self.bodyTimeout = bodyTimeout
        self.bodyCap = bodyCap
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !cut else { return }
        var data = data
        switch unwrapInboundIn(data) {
        case .head(var head):
            // What RequestTargetGuard checks on an HTTP/1.1 head: one valid authority. A request with a
            // `host` field and no `:authority` (some HTTP/2 clients send one so) names its authority there (RFC 9113, 8.3.1).
            let hosts = head.headerFields[values: HTTPField.Name("Host")!]
            if head.authority == nil, hosts.count == 1 {
                head.authority = hosts[0]
                data = wrapInboundOut(.head(head))
            }
            guard let authority = head.authority.flatMap(Authority.init),
                  hosts.count <= 1, hosts.allSatisfy({ Authority($0) == authority }) else {
                refuse(context: context, status: 400, code: "invalid_host",
                       detail: "the request needs one valid :authority, or one host field (a host field beside :authority names the same)")
                return
            }
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: bodyTimeout) { [self] in
                guard !ended else { return }
                refuse(context: context, status: 408, code: "request_timeout",
                       detail: "the request body did not arrive within \(bodyTimeout.nanoseconds / 1_000_000) ms")
            }
        case .body(let chunk):
            received += chunk.readableBytes
            guard received <= bodyCap else {
                refuse(context: context, status: 413, code: "body_too_large",
                       detail: "the request body is over \(bodyCap - 1) bytes")
                return
            }
            // After the answer has ended the body is only drained: it no longer counts.
            guard !finished else { break }
            guard budget.reserve(chunk.readableBytes) else {
                refuse(context: context, status: 503, code: "overloaded",
                       detail: "the broker holds as many request bodies as it may; retry shortly")
                return
            }
            held += chunk.readableBytes
        case .end:
            ended = true
            timer?.cancel()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head = unwrapOutboundIn(data) { answered = true }
        if case .end = unwrapOutboundIn(data) {
            finished = true
            releaseBudget()
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        releaseBudget()
        context.fireChannelInactive()
    }

    private func releaseBudget() {
        budget.release(held)
        held = 0
    }

    /// The stream's answer when none was written yet, then the stream closed.
    private func refuse(context: ChannelHandlerContext, status: Int, code: String, detail: String) {
        cut = true
        timer?.cancel()
        releaseBudget()
        if !answered {
            answered = true
            context.answerStream(Problem(status: status, code: code, detail: detail), retryAfter: status == 503 ? "1" : nil)
        } else {
            context.close(promise: nil)
        }
    }
}

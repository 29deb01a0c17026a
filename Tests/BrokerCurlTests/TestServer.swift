import Hummingbird
import Logging
// Comes with Hummingbird (its Application is a `Service`); used to stop the test
// server with a graceful shutdown rather than by task cancellation, which races
// with connections still being accepted inside NIO.
import ServiceLifecycle

/// Request context that also remembers the client's TCP port, so tests can count
/// the connections the client opened.
struct PeerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remotePort: Int?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remotePort = source.channel.remoteAddress?.port
    }
}

/// One request as the server saw it.
struct SeenRequest: Sendable {
    var method: String
    var path: String                 // path + query, as on the request line
    var authority: String?           // the Host header (HTTPTypes keeps it apart from `headers`)
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var remotePort: Int?

    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

actor Recorder {
    private(set) var requests: [SeenRequest] = []
    private(set) var hits: [String: Int] = [:]

    func record(_ request: SeenRequest) { requests.append(request) }
    func hit(_ route: String) { hits[route, default: 0] += 1 }
    var remotePorts: Set<Int> { Set(requests.compactMap(\.remotePort)) }
}

/// A real Hummingbird 2 server on 127.0.0.1 and an ephemeral port.
///
/// Routes:
/// - `/echo` (GET, HEAD, POST, PUT, PATCH, DELETE): records the request, answers 201
///   with `Server: test-upstream` and body `reply:` + request body.
/// - `/redirect`: 302 to `/target`; `/target` counts hits.
/// - `/slow?ms=N`: answers after N ms (at most 6 s).
/// - `/big?n=N`: N bytes with Content-Length; `/bigchunked?n=N`: N bytes chunked.
/// - `/small`: `ok`.
func withTestServer<T: Sendable>(
    _ body: @Sendable (_ port: Int, _ recorder: Recorder) async throws -> T
) async throws -> T {
    let recorder = Recorder()
    let router = Router(context: PeerContext.self)

    @Sendable func echo(_ request: Request, _ context: PeerContext) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        let bytes = Array(buffer.readableBytesView)
        await recorder.record(SeenRequest(
            method: request.method.rawValue,
            path: request.head.path ?? "",
            authority: request.head.authority,
            headers: request.headers.map { ($0.name.rawName, $0.value) },
            body: bytes,
            remotePort: context.remotePort))
        var headers = HTTPFields()
        headers[.contentType] = "text/plain"
        headers[.server] = "test-upstream"
        return Response(status: .created, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: Array("reply:".utf8) + bytes)))
    }
    for method: HTTPRequest.Method in [.get, .head, .post, .put, .patch, .delete] {
        router.on("/echo", method: method, use: echo)
    }
    router.get("/redirect") { _, _ in
        Response(status: .found, headers: [.location: "/target"])
    }
    router.get("/target") { _, _ -> String in
        await recorder.hit("/target")
        return "target"
    }
    router.get("/slow") { request, _ -> String in
        let ms = min(6000, Int(request.uri.queryParameters.get("ms") ?? "") ?? 1000)
        try? await Task.sleep(for: .milliseconds(ms))
        return "slow"
    }
    router.get("/big") { request, _ -> Response in
        let n = Int(request.uri.queryParameters.get("n") ?? "") ?? 0
        return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: n)))
    }
    router.get("/bigchunked") { request, _ -> Response in
        let n = Int(request.uri.queryParameters.get("n") ?? "") ?? 0
        return Response(status: .ok, body: ResponseBody(contentLength: nil) { writer in
            var left = n
            while left > 0 {
                let chunk = min(left, 16 * 1024)
                try await writer.write(ByteBuffer(repeating: UInt8(ascii: "y"), count: chunk))
                left -= chunk
            }
            try await writer.finish(nil)
        })
    }
    router.get("/small") { _, _ in "ok" }

    var logger = Logger(label: "test-server")
    logger.logLevel = .warning
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger)

    let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await serviceGroup.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            group.cancelAll()
            throw TestServerError.didNotStart
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(port, recorder))
        } catch {
            result = .failure(error)
        }
        await serviceGroup.triggerGracefulShutdown()
        try await group.waitForAll()
        return try result.get()
    }
}

enum TestServerError: Error { case didNotStart }

import Crypto
import Foundation
import Hummingbird
import Logging

/// One request as the loopback server saw it.
struct SeenRequest: Sendable {
    var method: String
    var target: String               // path + query, as on the request line
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
    var path: String { String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]) }
    var query: String {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count > 1 ? String(parts[1]) : ""
    }
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Decodes `a=1&b=%2F` (form or query) into ordered pairs.
func decodeForm(_ text: String) -> [(String, String)] {
    guard !text.isEmpty else { return [] }
    return text.split(separator: "&", omittingEmptySubsequences: false).map { pair in
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ s: Substring) -> String {
            (String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? "<bad>"
        }
        return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
    }
}

func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// What the simulated provider does, changed by tests while it runs.
actor ProviderState {
    enum TokenMode: Sendable { case ok, fail }

    var tokenMode: TokenMode = .ok
    var tokenDelay: Duration = .zero
    var expiresIn = 3600
    private(set) var tokenRequests: [SeenRequest] = []
    private(set) var authRequests: [SeenRequest] = []
    private(set) var echoed: [SeenRequest] = []
    private(set) var tc3Results: [Bool] = []
    /// Checks a signed token call's parameters; nil accepts any.
    var verifyAuth: (@Sendable ([String: String]) -> Bool)?
    /// The secret key the TC3 endpoint verifies with.
    var tc3SecretKey = ""
    private var issued = 0

    func configure(mode: TokenMode? = nil, delay: Duration? = nil, expiresIn: Int? = nil) {
        if let mode { tokenMode = mode }
        if let delay { tokenDelay = delay }
        if let expiresIn { self.expiresIn = expiresIn }
    }
    func setVerifyAuth(_ verify: @escaping @Sendable ([String: String]) -> Bool) { verifyAuth = verify }
    func setTC3SecretKey(_ key: String) { tc3SecretKey = key }

    func recordToken(_ request: SeenRequest) -> (mode: TokenMode, delay: Duration) {
        tokenRequests.append(request)
        return (tokenMode, tokenDelay)
    }
    func nextToken(prefix: String) -> String {
        issued += 1
        return "\(prefix)-\(issued)"
    }
    func recordAuth(_ request: SeenRequest) { authRequests.append(request) }
    func recordEcho(_ request: SeenRequest) { echoed.append(request) }
    func recordTC3(_ ok: Bool) { tc3Results.append(ok) }
}

private func seen(_ request: inout Request) async throws -> SeenRequest {
    let buffer = try await request.collectBody(upTo: 1 << 20)
    var headers = request.headers.map { (name: $0.name.rawName, value: $0.value) }
    // HTTP/1.1 `Host` arrives as the `:authority` pseudo-header.
    if let authority = request.head.authority, !headers.contains(where: { $0.name.lowercased() == "host" }) {
        headers.append((name: "Host", value: authority))
    }
    return SeenRequest(method: request.method.rawValue, target: request.head.path ?? "",
                       headers: headers, body: Array(buffer.readableBytesView))
}

private func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Recomputes a TC3 signature from what arrived on the wire, written
/// independently of the module under test, straight from the provider's documentation.
func verifyTC3(_ request: SeenRequest, secretKey: String) -> Bool {
    guard let authorization = request.header("Authorization"),
          let timestamp = request.header("X-TC-Timestamp"), let seconds = Int(timestamp),
          let contentType = request.header("Content-Type"), let host = request.header("Host") else { return false }
    // "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=HEX"
    guard authorization.hasPrefix("TC3-HMAC-SHA256 ") else { return false }
    var fields: [String: String] = [:]
    for part in authorization.dropFirst("TC3-HMAC-SHA256 ".count).components(separatedBy: ", ") {
        let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
        if kv.count == 2 { fields[kv[0]] = kv[1] }
    }
    guard let credential = fields["Credential"], fields["SignedHeaders"] == "content-type;host",
          let signature = fields["Signature"] else { return false }
    let scope = credential.split(separator: "/").map(String.init)
    // <secret id>/<date>/<service>/tc3_request
    guard scope.count == 4, scope[3] == "tc3_request" else { return false }
    let (date, service) = (scope[1], scope[2])
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd"
    guard formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))) == date else { return false }
    let canonical = [request.method, request.path, request.query,
                     "content-type:\(contentType.lowercased())", "host:\(host.lowercased())", "",
                     "content-type;host", hex(SHA256.hash(data: request.body))].joined(separator: "\n")
    let toSign = ["TC3-HMAC-SHA256", timestamp, "\(date)/\(service)/tc3_request",
                  hex(SHA256.hash(data: Data(canonical.utf8)))].joined(separator: "\n")
    func mac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
        SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)))
    }
    let signing = mac(mac(mac(SymmetricKey(data: Data(("TC3" + secretKey).utf8)), date), service), "tc3_request")
    let expected = hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signing))
    return expected == signature
}

/// A real Hummingbird 2 server on 127.0.0.1 and an ephemeral port, playing the provider.
///
/// Routes:
/// - `POST /oauth/token`: client-credentials token endpoint (`tok-N`), or 500 in `.fail` mode.
/// - `POST /auth`: signed token call (form or JSON); `verifyAuth` decides; answers
///   `{"code":0,"data":{"auth_token":"at-N"},"authToken":"at-N"}` or `{"code":11}`.
/// - `/echo` (any method): records the request, answers 200.
/// - `/tc3`: recomputes the TC3 signature and answers 200 or 401.
func withProviderServer<T: Sendable>(
    _ body: @Sendable (_ port: Int, _ state: ProviderState) async throws -> T
) async throws -> T {
    let state = ProviderState()
    let router = Router()

    router.post("/oauth/token") { request, _ -> Response in
        var request = request
        let seen = try await seen(&request)
        let (mode, delay) = await state.recordToken(seen)
        if delay > .zero { try await Task.sleep(for: delay) }
        switch mode {
        case .fail:
            return json(.internalServerError, #"{"error":"temporarily_unavailable"}"#)
        case .ok:
            let token = await state.nextToken(prefix: "tok")
            let expires = await state.expiresIn
            return json(.ok, #"{"access_token":"\#(token)","expires_in":\#(expires),"token_type":"Bearer"}"#)
        }
    }
    router.post("/auth") { request, _ -> Response in
        var request = request
        let seen = try await seen(&request)
        await state.recordAuth(seen)
        var params: [String: String] = [:]
        if seen.header("Content-Type")?.hasPrefix("application/json") == true {
            let object = (try? JSONSerialization.jsonObject(with: Data(seen.body))) as? [String: Any] ?? [:]
            for (key, value) in object { params[key] = "\(value)" }
        } else {
            for (key, value) in decodeForm(seen.bodyText) { params[key] = value }
        }
        if let verify = await state.verifyAuth, !verify(params) {
            return json(.ok, #"{"code":11,"message":"sign mismatch"}"#)
        }
        let token = await state.nextToken(prefix: "at")
        return json(.ok, #"{"code":0,"message":"ok","data":{"auth_token":"\#(token)","create_time":1},"authToken":"\#(token)"}"#)
    }
    @Sendable func echo(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        await state.recordEcho(try await seen(&request))
        return json(.ok, #"{"ok":true}"#)
    }
    for method: HTTPRequest.Method in [.get, .post, .put] {
        router.on("/echo", method: method, use: echo)
    }
    @Sendable func tc3(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let seen = try await seen(&request)
        let ok = verifyTC3(seen, secretKey: await state.tc3SecretKey)
        await state.recordTC3(ok)
        return ok ? json(.ok, #"{"Response":{"RequestId":"r-1"}}"#)
                  : json(.unauthorized, #"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure"}}}"#)
    }
    for method: HTTPRequest.Method in [.get, .post] {
        router.on("/tc3", method: method, use: tc3)
    }

    var logger = Logger(label: "test-provider")
    logger.logLevel = .critical     // cancellation at the end of each test logs errors
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger)

    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            group.cancelAll()
            throw ProviderServerError.didNotStart
        }
        do {
            let result = try await body(port, state)
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

enum ProviderServerError: Error { case didNotStart }

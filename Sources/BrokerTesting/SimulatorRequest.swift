import Foundation

/// A received request, read once, handed to a provider's behaviour.
struct SimulatorRequest: Sendable {
    let method: String
    let path: String
    let query: String?
    let headers: [RecordedHeader]
    let body: [UInt8]

    var recorded: RecordedRequest {
        RecordedRequest(method: self.method, path: self.path, query: self.query, headers: self.headers,
                        body: self.body, time: Date())
    }

    func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The media type of `Content-Type`, lowercased, without parameters.
    var mediaType: String? {
        self.header("Content-Type").map {
            String($0.split(separator: ";", maxSplits: 1).first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        }
    }

    /// Decoded query parameters; `nil` when the query is malformed.
    var queryParameters: [(name: String, value: String)]? {
        guard let query else { return [] }
        return try? FormEncoding.parse(query)
    }

    /// Decoded form body; `nil` when it is not valid form encoding.
    var formParameters: [(name: String, value: String)]? {
        guard let text = String(validating: self.body, as: UTF8.self) else { return nil }
        return try? FormEncoding.parse(text)
    }
}

/// What a simulator answers: a status and a JSON body (the providers all answer JSON).
struct SimulatorResponse: Sendable {
    var status: Int
    var body: [UInt8]
    var contentType: String
    /// Further response headers (APNs' `apns-id`).
    var headers: [(name: String, value: String)] = []

    /// A JSON answer's content type placeholder: the responder writes the behavior's `jsonContentType`.
    static let jsonType = "application/json;charset=UTF-8"

    static func json(_ value: JSONValue, status: Int = 200) -> SimulatorResponse {
        SimulatorResponse(status: status, body: Array(value.serialized.utf8), contentType: jsonType)
    }

    static let notFound = SimulatorResponse(status: 404, body: Array("{\"error\":\"not_found\"}".utf8), contentType: jsonType)
}

/// How a simulator classifies a request before acting on it.
enum SimulatorRoute: Sendable {
    /// The provider's token or auth call (not recorded as an API call, never faulted).
    case token
    /// An API call: recorded in `requests()`, subject to faults.
    case api
    /// A path the provider does not serve: recorded as an API call, answered 404.
    case unknown
}

/// One provider's wire behaviour: which paths it serves, how it checks the
/// credential and the request, and what it answers. Implementations keep their own
/// state (issued tokens, used codes) behind a lock.
protocol ProviderBehavior: Sendable {
    var provider: String { get }
    func route(_ request: SimulatorRequest) -> SimulatorRoute
    func handle(_ request: SimulatorRequest) -> SimulatorResponse
    /// The body the provider sends with an HTTP error status (injected fault).
    func faultResponse(status: Int) -> SimulatorResponse
    /// Makes every issued token expired (no-op for providers without tokens).
    func expireIssuedTokens()
    /// Forgets what `reset()` forgets: recorded effects, not issued credentials.
    func resetEffects()
    /// The `Content-Type` of the provider's JSON answers, exactly as the provider writes it (SDKs
    /// compare it: tencentcloud-sdk-python reads error answers only under `application/json`).
    var jsonContentType: String { get }
    /// Serves HTTP/2 only, with prior knowledge (no HTTP/1.1, no upgrade): APNs.
    var speaksHTTP2Only: Bool { get }
}

extension ProviderBehavior {
    func expireIssuedTokens() {}
    func resetEffects() {}
    var jsonContentType: String { "application/json;charset=UTF-8" }
    var speaksHTTP2Only: Bool { false }
}

/// A provider's refusal, thrown by a check and answered as is.
struct Refusal: Error {
    let response: SimulatorResponse

    init(_ response: SimulatorResponse) {
        self.response = response
    }
}

import HTTPTypes
import Hummingbird

/// The Hummingbird responder of one simulator: reads the whole request, records
/// it, applies the fault, then lets the provider's behaviour answer.
struct SimulatorResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    /// Larger than any real request to these APIs (FaceID images are ≤ 3 MB
    /// before base64).
    static let maxBodyBytes = 8 * 1024 * 1024

    let behavior: any ProviderBehavior
    let recorder: SimulatorRecorder

    func respond(to request: Request, context: Context) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: Self.maxBodyBytes)
        var headers: [RecordedHeader] = []
        if let authority = request.head.authority {
            headers.append(RecordedHeader(name: "Host", value: authority))
        }
        for field in request.headers {
            headers.append(RecordedHeader(name: field.name.rawName, value: field.value))
        }
        let received = SimulatorRequest(
            method: request.method.rawValue,
            path: request.uri.path,
            query: request.uri.query,
            headers: headers,
            body: Array(buffer.readableBytesView)
        )
        let route = self.behavior.route(received)
        let fault: SimulatorFault = self.recorder.state.withLock { state in
            switch route {
            case .token:
                state.tokenRequests.append(received.recorded)
                return .none
            case .api, .unknown:
                state.requests.append(received.recorded)
                return route == .api ? state.fault : .none
            }
        }
        let answer: SimulatorResponse
        switch fault {
        case .none:
            answer = route == .unknown ? .notFound : self.behavior.handle(received)
        case .status(let status):
            answer = self.behavior.faultResponse(status: status)
        case .delay(let duration):
            try await Task.sleep(for: duration)
            answer = self.behavior.handle(received)
        case .hang:
            // Holds the request, with no effect, until the fault is changed; then refuses it.
            while self.recorder.state.withLock({ $0.fault == .hang }) {
                try await Task.sleep(for: .milliseconds(10))
            }
            answer = self.behavior.faultResponse(status: 503)
        }
        var fields: HTTPFields = [.contentType: answer.contentType == SimulatorResponse.jsonType ? self.behavior.jsonContentType : answer.contentType]
        for (name, value) in answer.headers { if let field = HTTPField.Name(name) { fields[field] = value } }
        return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
    }
}

import BrokerCore
import BrokerCurl
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Turns HTTP requests into shares and pipeline results into HTTP responses.
struct ShareHTTP: Sendable {
    let pipeline: SharePipeline
    let authenticator: Authenticator
    let settings: GatewaySettings

    /// Reads at most `maxBodyBytes + 1` bytes (one more than allowed, so the policy
    /// engine reports `body_too_large` in its order). The body's deadline and the in-flight
    /// budget are the channel's (`RequestDeadlineHandler`): a body that misses its deadline ends
    /// this read with a 408 error, so nothing is added here per chunk.
    func readBody(_ request: Request) async throws -> [UInt8] {
        let limit = settings.maxBodyBytes + 1
        var bytes: [UInt8] = []
        if let length = request.headers[.contentLength].flatMap(Int.init) { bytes.reserveCapacity(min(length, limit)) }
        for try await var chunk in request.body {
            let take = min(chunk.readableBytes, limit - bytes.count)
            if let slice = chunk.readBytes(length: take) { bytes += slice }
            if bytes.count >= limit { break }
        }
        return bytes
    }

    /// Runs one proxied share. `path` is the provider-relative path, `query` the raw query.
    func proxy(_ request: Request, caller: Caller?, credentialSubject: String? = nil, provider: String, path: String,
               query: String?) async throws -> Response {
        // The subject and purpose decide the whole share: a second value is refused, never joined or picked.
        for name in [HTTPField.Name.shareSubject, .sharePurpose] where request.headers[values: name].count > 1 {
            throw Problem(status: 400, code: "duplicate_header",
                          detail: "\(name.canonicalName) is sent more than once; send it once")
        }
        let subject = request.headers[.shareSubject] ?? credentialSubject
        if let credentialSubject, subject != credentialSubject {
            throw Problem(status: 400, code: "subject_mismatch",
                          detail: "X-Share-Subject names another subject than the proxy credentials' subject=")
        }
        // The caller's step of the decision needs no body: a request that fails it is refused
        // without reading one (and its connection closes with the body unread).
        let body = caller.map { $0.mayShare(with: provider) } == true ? try await readBody(request) : []
        var headers: [HeaderField] = []
        headers.reserveCapacity(request.headers.count)
        for field in request.headers { headers.append(HeaderField(field.name.canonicalName, field.value)) }
        let share = ShareRequest(
            caller: caller, provider: provider,
            target: .http(method: request.method.rawValue, path: path, query: query),
            headers: headers, contentType: request.headers[.contentType], body: body,
            subject: subject, purpose: request.headers[.sharePurpose], time: Date())
        return respond(await pipeline.share(share, channel: .proxy))
    }

    func respond(_ result: ShareResult) -> Response {
        switch result {
        case .forwarded(let upstream, let shareID, let decision):
            var headers = HTTPFields()
            for line in upstream.headers {
                let name = line.name.lowercased()
                if Self.droppedResponseHeaders.contains(name) { continue }
                guard let fieldName = HTTPField.Name(line.name) else { continue }
                headers.append(HTTPField(name: fieldName, value: line.value))
            }
            headers[.shareID] = shareID
            headers[.shareDecision] = decision.verdict.rawValue
            return Response(status: HTTPResponse.Status(code: upstream.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(bytes: upstream.body)))
        case .decided(let shareID, let decision, let payload):
            return SDKDecisionResponse.response(shareID: shareID, decision: decision, payload: payload)
        case .refused(let problem, let decision):
            var response = problem.response()
            if let decision, decision.verdict == .blocked { response.headers[.shareDecision] = "blocked" }
            return response
        }
    }

    /// Hop-by-hop and framing headers of the provider's response are the broker's own business.
    static let droppedResponseHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
        "content-length", "set-cookie", "set-cookie2",
    ]
}

import BrokerCore
import BrokerService
import HTTPTypes
import Hummingbird
import NIOHTTP1
import NIOConcurrencyHelpers

/// The first stop of every request the share path did not take: an absolute-form request (or a
/// `Host`) for a name that is neither an adapter's host (those are shares, answered by
/// `ShareChannelHandler` before the router) nor one of this broker's server names is refused —
/// never an open proxy, and never a way to reach the broker's own API through a foreign name.
struct ForwardProxyMiddleware: RouterMiddleware {
    typealias Context = BrokerRequestContext
    let pipeline: SharePipeline
    let settings: GatewaySettings
    /// Requests for a host no adapter serves: one application-log line per interval.
    let unknownHosts = NoticeThrottle()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // CONNECT never gets here: ConnectTunnel answers it on the channel (a tunnel or a refusal).
        if let host = ShareEdge.hostName(request.head.authority), !settings.serverNames.contains(host) {
            unknownHosts.notice(context.logger) { folded in
                context.logger.notice("forward-proxy request for an unknown host refused", metadata: [
                    "proxy.host": .string(SharePipeline.unknownName(host, pipeline.fingerprinter)),
                    "http.method": .string(request.method.rawValue), "refusals.folded": "\(folded)",
                ])
            }
            return Problem(status: 404, code: "unknown_provider",
                           detail: "no adapter serves host \(host.prefix(253)), and it is not one of this broker's server names").response()
        }
        return try await next(request, context)
    }
}

/// Every thrown error leaves as problem+json with a stable code.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = BrokerRequestContext
    /// The router's routes, to tell a wrong method on a known path (405 with `Allow`) from an unknown path (404).
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response()
        } catch let error as HTTPParserError {
            // A malformed request (a bad chunk size, an overflowing one, a CRLF inside a chunk
            // extension): the rest of the connection's bytes cannot be framed, so answer and close.
            var response = Problem(status: 400, code: "malformed_request",
                                   detail: "the request could not be parsed as HTTP/1.1 (\(error))").response()
            response.headers[.connection] = "close"
            return response
        } catch let error as HTTPError {
            let code: String
            if error.status.code == 404, case let allowed = routes.methods(for: request.uri.path), !allowed.isEmpty {
                var response = Problem(status: 405, code: "method_not_allowed",
                                       detail: "\(request.method.rawValue) is not allowed here; allowed: \(allowed.joined(separator: ", "))").response()
                response.headers[.allow] = allowed.joined(separator: ", ")
                return response
            }
            switch error.status.code {
            case 404: code = "not_found"
            case 405: code = "method_not_allowed"
            case 413: code = "body_too_large"
            case 408: code = "request_timeout"
            default: code = error.status.code >= 500 ? "internal_error" : "bad_request"
            }
            return Problem(status: error.status.code, code: code, detail: error.body ?? error.status.reasonPhrase).response()
        } catch {
            context.logger.error("unhandled error", metadata: ["error.type": "\(type(of: error))"])
            return Problem(status: 500, code: "internal_error", detail: "an internal error occurred").response()
        }
    }
}

/// Path patterns of the router's routes (`/v1/subjects/:id/grants`, `/v1/proxy/:provider/**`) with their methods.
final class RouteTable: Sendable {
    private let patterns = NIOLockedValueBox<[(segments: [Substring], method: String)]>([])

    func load(_ routes: [(path: String, method: String)]) {
        patterns.withLockedValue { $0 = routes.map { ($0.path.split(separator: "/"), $0.method) } }
    }

    /// The methods some route allows for `path`, sorted; empty when no route has the path.
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/")
        let found = patterns.withLockedValue { patterns in
            patterns.filter { Self.matches($0.segments, segments) }.map(\.method)
        }
        return Array(Set(found)).sorted()
    }

    static func matches(_ pattern: [Substring], _ path: [Substring]) -> Bool {
        for (index, part) in pattern.enumerated() {
            if part == "**" { return path.count > index }
            guard index < path.count else { return false }
            if part.hasPrefix(":") || part.hasPrefix("{") || part == "*" { continue }   // a capture: any one segment
            if part != path[index] { return false }
        }
        return pattern.count == path.count
    }
}

import BrokerCore
import BrokerService
import HTTPTypes
import Hummingbird
import NIOHTTP1
import NIOConcurrencyHelpers

/// The first stop of every request: a provider's host is a forward-proxy share (the requests
/// inside a CONNECT tunnel among them), the broker's own names reach the router, anything else is refused.
///
/// NIO turns an absolute-form request (`POST http://push-api.example.com/v1/x`)
/// into a path plus a `Host` header, so the host decides: an adapter's host makes
/// it a share for that adapter; an unknown host is refused (never an open proxy,
/// and never a way to reach the broker's own API through a foreign name).
struct ForwardProxyMiddleware: RouterMiddleware {
    typealias Context = BrokerRequestContext
    let shares: ShareHTTP
    let settings: GatewaySettings

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // CONNECT never gets here: ConnectTunnel answers it on the channel (a tunnel or a refusal).
        let host = Self.hostName(request.head.authority)
        if let host, let provider = shares.pipeline.policy.current.providerByHost[host] {
            // A proxy asks for proxy credentials with 407 and Proxy-Authenticate, whether they are
            // missing or wrong (as a tunnel's CONNECT does), so a client's proxy support retries with them.
            guard let credential = shares.authenticator.proxyCredential(request.headers[.proxyAuthorization]) else {
                let detail = request.headers[.proxyAuthorization] == nil
                    ? "the broker needs Proxy-Authorization: Bearer <token> (or curl -U client:token)"
                    : "the proxy credentials are not valid"
                let problem = Problem(status: 407, code: "unauthenticated", detail: detail)
                // Not a share record (anyone could fill the log), but counted and logged like a path-form refusal.
                shares.pipeline.metrics.record(.refused(problem, decision: nil), provider: provider, channel: .proxy)
                context.logger.notice("share refused before logging", metadata: [
                    "share.provider": .string(provider), "share.channel": "proxy", "share.code": "unauthenticated",
                ])
                var response = problem.response()
                response.headers[.proxyAuthenticate] = "Basic realm=\"sharebroker\""
                return response
            }
            return try await shares.proxy(request, caller: credential.caller, credentialSubject: credential.subject,
                                          provider: provider, path: request.uri.path, query: request.uri.query)
        }
        if let host, !settings.serverNames.contains(host) {
            context.logger.notice("forward-proxy request for an unknown host refused", metadata: [
                "proxy.host": .string(SharePipeline.unknownName(host, shares.pipeline.fingerprinter)),
                "http.method": .string(request.method.rawValue),
            ])
            return Problem(status: 404, code: "unknown_provider",
                           detail: "no adapter serves host \(host.prefix(253)), and it is not one of this broker's server names").response()
        }
        return try await next(request, context)
    }

    /// `Host` without its port, lowercased; `[::1]:8080` → `[::1]`.
    static func hostName(_ authority: String?) -> String? {
        guard let authority, !authority.isEmpty else { return nil }
        var host = Substring(authority)
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { host = host[...close] }
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        return host.lowercased()
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

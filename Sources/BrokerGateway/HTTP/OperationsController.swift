import BrokerCore
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird

/// The operator's routes: `GET /metrics` (Prometheus text) and `POST /v1/admin/policy/reload`.
struct OperationsController: Sendable {
    let pipeline: SharePipeline
    let authenticator: Authenticator
    let access: BrokerConfig.MetricsAccess
    let reloader: PolicyReloader?
    let shareLog: (any ShareLogMetrics)?
    let revocations: (any RevocationStore)?
    /// What the published list's drift gauge reads; nil when the store tells nothing.
    let disclosed: (any DisclosedTrafficSource)?
    let now: @Sendable () -> Date

    func register(on router: Router<BrokerRequestContext>) {
        router.get("/metrics") { request, context in try await metrics(request, context) }
        if let reloader {
            router.post("/v1/admin/policy/reload") { request, _ in try await reload(request, reloader) }
        }
    }

    /// A client with role `admin`, or the problem to answer.
    func admin(_ request: Request) throws -> Caller {
        guard let caller = authenticator.caller(authorization: request.headers[.authorization]) else {
            throw Problem(status: 401, code: "unauthenticated", detail: "this route needs Authorization: Bearer <admin token>")
        }
        guard caller.roles.contains(.admin) else {
            throw Problem(status: 403, code: "caller_not_permitted", detail: "this call needs the role admin")
        }
        return caller
    }

    func metrics(_ request: Request, _ context: BrokerRequestContext) async throws -> Response {
        switch access {
        case .open: break
        case .loopback: if !context.peerIsLoopback { _ = try admin(request) }
        case .admin: _ = try admin(request)
        }
        // The job gauges come from the database: a scrape while it is down still answers, without them.
        let jobs = try? await revocations?.jobSummary()
        // Drift from the published sharing list: traffic since its published_at that it does not disclose.
        // Without a list, no drift series; while the database is down, the last reading stays.
        let bundle = pipeline.policy.current.bundle
        if let list = bundle.publishedList {
            if let disclosed, let rows = try? await disclosed.disclosedTraffic(fromDay: list.publishedAt) {
                pipeline.metrics.setPublishedListDrift(PublishedSharingListReport.drift(rows, bundle: bundle, list: list), bundle: bundle)
            }
        } else {
            pipeline.metrics.setPublishedListDrift(nil, bundle: bundle)
        }
        let text = pipeline.metrics.render(queuedWrites: shareLog?.queuedWrites, jobs: jobs, now: now())
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func reload(_ request: Request, _ reloader: PolicyReloader) async throws -> Response {
        let caller = try admin(request)
        let iso = SubjectsController.iso
        switch await reloader.reload(trigger: "api:" + caller.id) {
        case .installed(let revision, let previous, let warnings):
            var answer: [String: Any] = [
                "status": "installed", "revision": revision.id, "previous_revision": previous.id,
                "loaded_at": iso.string(from: revision.loadedAt), "adapters": revision.bundle.adapters.count,
                "contracts": revision.bundle.contracts.count, "warnings": warnings,
            ]
            if let shadow = revision.shadow {
                answer["shadow_revision"] = shadow.revision
                answer["previous_shadow_revision"] = previous.shadow?.revision ?? NSNull()
            }
            return SubjectsController.json(answer)
        case .unchanged(let revision):
            var answer: [String: Any] = [
                "status": "unchanged", "revision": revision.id, "previous_revision": revision.id,
                "loaded_at": iso.string(from: revision.loadedAt), "adapters": revision.bundle.adapters.count,
                "contracts": revision.bundle.contracts.count, "warnings": [String](),
            ]
            if let shadow = revision.shadow { answer["shadow_revision"] = shadow.revision }
            return SubjectsController.json(answer)
        case .refused(let issues, let current):
            var problem = Problem(status: 422, code: "policy_invalid",
                                  detail: "the policy files have \(issues.count) error\(issues.count == 1 ? "" : "s"); revision \(current.id) keeps deciding")
            problem.extra = [
                "revision": .string(current.id),
                "errors": .objects(issues.map { ["file": .string($0.file), "line": .int($0.line), "message": .string($0.message)] }),
            ]
            throw problem
        }
    }
}

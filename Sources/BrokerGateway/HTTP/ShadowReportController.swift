import BrokerCore
import BrokerService
import Foundation
import Hummingbird

/// `GET /v1/reports/shadow` (role `compliance`): what the shadow policy would have decided
/// differently, counted on this node since the candidate was loaded.
struct ShadowReportController: Sendable {
    let policy: ActivePolicy
    let subjects: SubjectsController
    let node: String

    func register(on router: Router<BrokerRequestContext>) {
        router.get("/v1/reports/shadow") { request, _ in
            _ = try await subjects.requireRole(request, .compliance)
            _ = try ComplianceController.queryParameters(request, allowed: [])
            let revision = policy.current
            guard let shadow = revision.shadow else {
                throw Problem(status: 404, code: "not_configured",
                              detail: "no shadow policy is configured (shadow: { adapters, contracts } in the config)")
            }
            let counted = shadow.counted
            return SubjectsController.json([
                "candidate_revision": shadow.revision, "policy_revision": revision.id,
                "since": SubjectsController.iso.string(from: shadow.since), "node": node,
                "shares_decided": counted.shares, "shares_changed": counted.changed, "changes": counted.rows,
            ] as [String: Any])
        }
    }
}

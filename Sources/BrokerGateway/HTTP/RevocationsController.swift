import BrokerCore
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird

/// `DELETE /v1/subjects/{id}/grants/{grant_id}`, `DELETE /v1/subjects/{id}/grants?provider=P`
/// and `GET /v1/revocations/{id}` (role `grants`).
///
/// A revoke returns 202 once the grants are revoked and the job over every share
/// made under them is recorded (one transaction): from then on no share commits
/// under them (the fence). Per provider, the job is `pending` where the adapter has
/// a revocation call (propagation is the next milestone) and `manual_required`
/// where the provider has no deletion API.
struct RevocationsController: Sendable {
    let store: any RevocationStore
    let cache: SubjectContextCache
    let subjects: SubjectsController
    let bundle: PolicyBundle
    let now: @Sendable () -> Date

    func register(on router: Router<BrokerRequestContext>) {
        router.delete("/v1/subjects/:id/grants/:grant_id") { request, context in
            _ = try subjects.requireRole(request, .grants)
            let subject = try SubjectsController.subjectID(context)
            guard let grantID = context.parameters.get("grant_id"), !grantID.isEmpty else {
                throw Problem(status: 404, code: "grant_not_found", detail: "no such grant")
            }
            return try await revoke(subject, .grant(grantID))
        }
        router.delete("/v1/subjects/:id/grants") { request, context in
            _ = try subjects.requireRole(request, .grants)
            let subject = try SubjectsController.subjectID(context)
            guard let provider = request.uri.queryParameters.get("provider"), !provider.isEmpty else {
                throw Problem(status: 400, code: "provider_missing",
                              detail: "name the grant (/grants/{grant_id}) or the provider (?provider=P) to revoke")
            }
            return try await revoke(subject, .provider(provider))
        }
        router.get("/v1/revocations/:id") { request, context in
            _ = try subjects.requireRole(request, .grants)
            let id = context.parameters.get("id") ?? ""
            let receipt: RevocationReceipt?
            do { receipt = try await store.revocation(id) } catch let error as LogUnavailable {
                throw Problem.logUnavailable(error.message)
            }
            guard let receipt else { throw Problem(status: 404, code: "revocation_not_found", detail: "no such revocation") }
            return SubjectsController.json(render(receipt))
        }
    }

    func revoke(_ subject: String, _ target: RevocationTarget) async throws -> Response {
        let id = "rv_" + ShareID.make(at: now()).replacingOccurrences(of: "-", with: "")
        let result: Result<RevocationReceipt, RevocationRefusal>
        do {
            result = try await store.revoke(subject: subject, target, revocationID: id, at: now())
        } catch {
            throw Problem.logUnavailable(error.message)
        }
        cache.invalidate(subject)
        switch result {
        case .success(let receipt):
            return SubjectsController.json(render(receipt), status: .accepted)
        case .failure(.notFound):
            // The same answer whether the grant exists for someone else or not at all.
            throw Problem(status: 404, code: "grant_not_found", detail: "the subject has no such grant")
        case .failure(.alreadyRevoked):
            throw Problem(status: 409, code: "grant_already_revoked", detail: "the grant was revoked before")
        }
    }

    func render(_ receipt: RevocationReceipt) -> [String: Any] {
        var perProvider: [String: Int] = [:]
        for provider in receipt.shares.values { perProvider[provider, default: 0] += 1 }
        let providers = perProvider.keys.sorted().map { provider -> [String: Any] in
            let automatic = bundle.adapters[provider]?.revocation != nil
            return ["provider": provider, "shares": perProvider[provider] ?? 0,
                    "status": automatic ? "pending" : "manual_required"]
        }
        let status = providers.isEmpty ? "acknowledged"
            : (providers.allSatisfy { $0["status"] as? String == "manual_required" } ? "manual_required" : "pending")
        return [
            "revocation_id": receipt.id, "subject": receipt.subject, "grants": receipt.grantIDs,
            "created_at": SubjectsController.iso.string(from: receipt.createdAt),
            "shares": receipt.shares.count, "share_ids": receipt.shares.keys.sorted(), "providers": providers,
            "status": status,
        ]
    }
}

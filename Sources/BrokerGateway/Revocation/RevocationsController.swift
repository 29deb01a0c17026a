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
/// a revocation call — the worker is told at once — and `manual_required` where the
/// provider has no deletion API; the status then carries what to send by hand.
struct RevocationsController: Sendable {
    let store: any RevocationStore
    let revoker: Revoker
    let subjects: SubjectsController

    func register(on router: Router<BrokerRequestContext>) {
        router.delete("/v1/subjects/:id/grants/:grant_id") { request, context in
            let subject = try SubjectsController.subjectID(context)
            try await subjects.authorize(request, subject: subject)
            guard let grantID = context.parameters.get("grant_id"), !grantID.isEmpty else {
                throw Problem(status: 404, code: "grant_not_found", detail: "no such grant")
            }
            return try await revoke(subject, .grant(grantID))
        }
        router.delete("/v1/subjects/:id/grants") { request, context in
            let subject = try SubjectsController.subjectID(context)
            try await subjects.authorize(request, subject: subject)
            guard let provider = request.uri.queryParameters.get("provider"), !provider.isEmpty else {
                throw Problem(status: 400, code: "provider_missing",
                              detail: "name the grant (/grants/{grant_id}) or the provider (?provider=P) to revoke")
            }
            return try await revoke(subject, .provider(provider))
        }
        router.get("/v1/revocations/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            // A client with the role, or the revoking subject's own token; another user's revocation reads as missing.
            let principal = try await subjects.principal(request)
            do {
                guard let receipt = try await store.revocation(id) else {
                    throw Problem(status: 404, code: "revocation_not_found", detail: "no such revocation")
                }
                if case .user(let own) = principal, own != receipt.subject {
                    throw Problem(status: 404, code: "revocation_not_found", detail: "no such revocation")
                }
                var attempts: [String: [PropagationAttempt]] = [:]
                for job in receipt.jobs {
                    attempts[job.provider] = try await store.attempts(revocationID: id, provider: job.provider)
                }
                return SubjectsController.json(revoker.render(receipt, attempts: attempts))
            } catch let error as LogUnavailable {
                throw Problem.logUnavailable(error.message)
            }
        }
    }

    func revoke(_ subject: String, _ target: RevocationTarget,
                origin: String) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal> {
        try await revoker.revoke(subject, target, origin: origin)
    }

    func revoke(_ subject: String, _ target: RevocationTarget) async throws -> Response {
        let result: Result<RevocationReceipt, RevocationRefusal>
        do {
            result = try await revoke(subject, target, origin: "subject")
        } catch {
            throw Problem.logUnavailable(error.message)
        }
        switch result {
        case .success(let receipt):
            return SubjectsController.json(revoker.render(receipt, attempts: nil), status: .accepted)
        case .failure(.notFound):
            // The same answer whether the grant exists for someone else or not at all.
            throw Problem(status: 404, code: "grant_not_found", detail: "the subject has no such grant")
        case .failure(.alreadyRevoked):
            throw Problem(status: 409, code: "grant_already_revoked", detail: "the grant was revoked before")
        }
    }
}

/// Revokes through the store, clears the subject's cached grants and wakes the worker: the one
/// way every revoke is made (a user's, a provider's notice, an account deletion, a minor found).
struct Revoker: Sendable {
    let store: any RevocationStore
    let cache: SubjectContextCache
    let policy: ActivePolicy
    var bundle: PolicyBundle { policy.current.bundle }
    let worker: RevocationWorker?
    let now: @Sendable () -> Date

    /// `origin` says who asked: `subject`, `provider`, `account_deleted`, `minor`.
    func revoke(_ subject: String, _ target: RevocationTarget,
                origin: String) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal> {
        let id = "rv_" + ShareID.make(at: now()).replacingOccurrences(of: "-", with: "")
        let result = try await store.revoke(subject: subject, target, revocationID: id, origin: origin,
                                            propagating: worker?.propagating ?? [], at: now())
        cache.invalidate(subject)
        if case .success = result { worker?.nudge() }
        return result
    }

    func render(_ receipt: RevocationReceipt, attempts: [String: [PropagationAttempt]]?) -> [String: Any] {
        let iso = SubjectsController.iso
        let providers = receipt.jobs.map { job -> [String: Any] in
            var out: [String: Any] = [
                "provider": job.provider, "shares": job.shareIDs.count, "status": job.status.rawValue,
                "attempts": job.attempts, "updated_at": iso.string(from: job.updatedAt),
            ]
            if let error = job.lastError { out["last_error"] = error }
            if let next = job.nextAttemptAt, job.status == .pending { out["next_attempt_at"] = iso.string(from: next) }
            if let log = attempts?[job.provider] {
                let latest = log.map(\.attempt).max()
                out["attempt_log"] = log.map { attempt -> [String: Any] in
                    // No result yet: the job's latest attempt while it is `sent` is under way; any other
                    // attempt without a result was cut short (the broker stopped during it).
                    let unfinished = job.status == .sent && attempt.attempt == latest ? "in_progress" : "interrupted"
                    var entry: [String: Any] = ["attempt": attempt.attempt, "started_at": iso.string(from: attempt.startedAt),
                                                "calls": attempt.calls, "result": attempt.result ?? unfinished]
                    if let finished = attempt.finishedAt { entry["finished_at"] = iso.string(from: finished) }
                    if let error = attempt.error { entry["error"] = error }
                    return entry
                }
            }
            if job.status == .manualRequired {
                // What a person must ask the provider to delete: identifiers the provider knows
                // the user by stay encrypted in the broker; this names the subject, data and shares.
                var document: [String: Any] = [
                    "provider": job.provider, "subject": receipt.subject, "categories": job.categories,
                    "share_ids": job.shareIDs, "grant_ids": receipt.grantIDs,
                    "request": "delete or unbind the personal data received in these shares and confirm",
                ]
                if let contract = bundle.contracts[job.provider] {
                    document["contract"] = ["version": contract.version, "title": contract.title ?? ""]
                }
                if let first = job.firstShareAt { document["first_shared_at"] = iso.string(from: first) }
                if let last = job.lastShareAt { document["last_shared_at"] = iso.string(from: last) }
                out["manual_request"] = document
            }
            return out
        }
        return [
            "revocation_id": receipt.id, "subject": receipt.subject, "grants": receipt.grantIDs,
            "created_at": iso.string(from: receipt.createdAt),
            "shares": receipt.shares.count, "share_ids": receipt.shares.keys.sorted(), "providers": providers,
            "status": receipt.status.rawValue,
        ]
    }
}

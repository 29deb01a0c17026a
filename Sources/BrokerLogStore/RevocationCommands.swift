import BrokerService
import Foundation

/// A revoke, as the batch writer runs it.
package struct RevokeCommand: Sendable {
    package var subject: String
    package var target: RevocationTarget
    package var revocationID: String
    package var origin: String
    package var propagating: Set<String>
    package var time: Date

    package init(subject: String, target: RevocationTarget, revocationID: String, origin: String, propagating: Set<String>,
                 time: Date) {
        self.subject = subject; self.target = target; self.revocationID = revocationID; self.origin = origin
        self.propagating = propagating; self.time = time
    }
}

/// The end of a propagation attempt, as the batch writer runs it.
package struct FinishCommand: Sendable {
    package var job: PropagationJob
    package var attempt: Int
    package var result: PropagationResult
    package var calls: Int
    package var time: Date

    package init(job: PropagationJob, attempt: Int, result: PropagationResult, calls: Int, time: Date) {
        self.job = job; self.attempt = attempt; self.result = result; self.calls = calls; self.time = time
    }

    /// The job's state, the attempt's result word, its error and the next attempt time this result means.
    package var effect: (status: PropagationStatus, result: String, error: String?, next: Int64?) {
        switch result {
        case .acknowledged: return (.acknowledged, "acknowledged", nil, nil)
        case .retry(let at, let message): return (.pending, "retry", message, Microseconds.from(at))
        case .failed(let message): return (.failed, "failed", message, nil)
        case .manualRequired(let reason): return (.manualRequired, "manual_required", reason, nil)
        }
    }

    /// The log record of a final state.
    package func record() -> LogRow {
        let effect = effect
        return LogRow(revocation: [
            "event": .string(effect.status.rawValue),
            "revocation_id": .string(job.revocationID),
            "attempts": .int(Int64(attempt)),
            "calls": .int(Int64(calls)),
            "error": .string(effect.error),
        ], subject: job.subject, provider: job.provider, time: time)
    }
}

extension RevocationReceipt {
    /// The log record of a revoke.
    package func record(origin: String, time: Date) -> LogRow {
        LogRow(revocation: [
            "event": .string("revoked"),
            "origin": .string(origin),
            "revocation_id": .string(id),
            "grant_ids": .array(grantIDs.map { .string($0) }),
            "share_ids": .array(shares.keys.sorted().map { .string($0) }),
            "providers": .array(jobs.map { job in
                .object(["provider": .string(job.provider), "status": .string(job.status.rawValue),
                         "shares": .int(Int64(job.shareIDs.count))])
            }),
        ], subject: subject, provider: nil, time: time)
    }
}

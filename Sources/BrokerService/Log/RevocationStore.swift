import BrokerCore
import Foundation

/// Which grants a revoke call names.
public enum RevocationTarget: Sendable, Hashable {
    /// One grant of the subject.
    case grant(String)
    /// Every active grant of the subject for one provider.
    case provider(String)
    /// Every grant of the subject, and every share ever made under any of them (also under
    /// grants that expired or were revoked before), with the subject's record replaced by
    /// `replacing` in the same transaction: account deletion (`deletedAt` set) and a subject
    /// found to be a minor. Never refused: a subject without grants gets an empty revocation.
    case everything(replacing: Subject)
}

/// Where one provider's part of a revocation stands.
public enum PropagationStatus: String, Sendable, Hashable, Codable {
    /// Waiting for its (next) attempt.
    case pending
    /// An attempt is under way (or was, when the broker stopped: it resumes).
    case sent
    /// Every deletion call was answered with success.
    case acknowledged
    /// The provider refused, or the attempts ran out; `lastError` says why.
    case failed
    /// The provider has no deletion call (or nothing to send it): a person must ask it.
    case manualRequired = "manual_required"

    public var isFinal: Bool { self == .acknowledged || self == .failed || self == .manualRequired }
}

/// One provider's part of a revocation: the propagation job the worker drains.
public struct PropagationJob: Sendable, Hashable {
    public var revocationID: String
    public var provider: String
    public var subject: String
    public var status: PropagationStatus
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastError: String?
    public var updatedAt: Date
    /// The shares of this provider the job covers.
    public var shareIDs: [String]
    /// The personal data categories those shares sent (from the log), and when they were made.
    public var categories: [String] = []
    public var firstShareAt: Date?
    public var lastShareAt: Date?

    public init(revocationID: String, provider: String, subject: String, status: PropagationStatus, attempts: Int,
                nextAttemptAt: Date?, lastError: String?, updatedAt: Date, shareIDs: [String]) {
        self.revocationID = revocationID; self.provider = provider; self.subject = subject; self.status = status
        self.attempts = attempts; self.nextAttemptAt = nextAttemptAt; self.lastError = lastError
        self.updatedAt = updatedAt; self.shareIDs = shareIDs
    }
}

/// What a revoke created: the job over every share made under the revoked grants.
public struct RevocationReceipt: Sendable, Hashable {
    public var id: String
    public var subject: String
    public var grantIDs: [String]
    public var createdAt: Date
    /// share id → provider, for every share the job covers.
    public var shares: [String: String]
    /// One per provider that received a share, ordered by provider.
    public var jobs: [PropagationJob]

    public init(id: String, subject: String, grantIDs: [String], createdAt: Date, shares: [String: String],
                jobs: [PropagationJob]) {
        self.id = id; self.subject = subject; self.grantIDs = grantIDs; self.createdAt = createdAt; self.shares = shares
        self.jobs = jobs
    }

    /// The revocation as a whole: acknowledged when nothing is left to do; otherwise the
    /// least advanced state among its providers.
    public var status: PropagationStatus {
        let states = Set(jobs.map(\.status))
        if states.isEmpty || states == [.acknowledged] { return .acknowledged }
        for state in [PropagationStatus.pending, .sent, .failed, .manualRequired] where states.contains(state) { return state }
        return .acknowledged
    }
}

/// Why a revoke did nothing.
public enum RevocationRefusal: Error, Sendable, Hashable {
    /// No grant of the subject matches (it never existed, or belongs to someone else).
    case notFound
    /// Every matching grant was already revoked.
    case alreadyRevoked
}

/// How an attempt of a propagation job ended.
public enum PropagationResult: Sendable, Hashable {
    /// Every call was acknowledged: the job is done and its revocation keys are deleted.
    case acknowledged
    /// Some call failed in a way worth retrying: try again at `retryAt`.
    case retry(at: Date, error: String)
    /// The provider refused for good, or the attempts ran out.
    case failed(error: String)
    /// Nothing can be sent automatically (no stored keys, say): a person must do it.
    case manualRequired(reason: String)
}

/// Revoking grants, with the revocation fence, and the durable outbox of their propagation.
///
/// `revoke` marks the grants revoked and records the job over every share made
/// under them (allowed or redacted, whose outcome is not a proven failure) in
/// one transaction. Together with the fence in `ShareLog.appendIntent` — which
/// re-reads the grants in the intent's own transaction — this guarantees: once
/// `revoke` returns, no intent can commit under those grants, and every intent
/// that committed before is in the job.
public protocol RevocationStore: Sendable {
    /// Revokes, and creates one propagation job per provider that received a share:
    /// `pending` for the providers in `propagating` (those with a deletion call),
    /// `manual_required` for the others. Appends the revocation to the share log.
    /// `origin` (`subject`, `provider`) is recorded in the log record.
    func revoke(subject: String, _ target: RevocationTarget, revocationID: String, origin: String, propagating: Set<String>,
                at time: Date) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal>
    /// A revocation as recorded, or `nil`.
    func revocation(_ id: String) async throws(LogUnavailable) -> RevocationReceipt?

    /// Jobs that are `pending` or `sent` and due at `time`, oldest first.
    func dueJobs(at time: Date, limit: Int) async throws(LogUnavailable) -> [PropagationJob]
    /// When the earliest unfinished job is next due, if any.
    func nextDueTime() async throws(LogUnavailable) -> Date?
    /// Makes jobs left `sent` by a stopped broker due now (run at start, single node).
    func resumeInterruptedJobs(at time: Date) async throws(LogUnavailable) -> Int
    /// Claims the job and records the start of an attempt (status `sent`, attempts + 1, leased until
    /// `leaseUntil`); returns the attempt number, or 0 when the job was not due or is claimed elsewhere.
    func beginAttempt(_ job: PropagationJob, at time: Date, leaseUntil: Date) async throws(LogUnavailable) -> Int
    /// share id → sealed revocation keys, for the job's shares that still have them (shares that sent
    /// the same key set under one grant name the same box).
    func sealedKeys(revocationID: String, provider: String) async throws(LogUnavailable) -> [String: StoredRevocationKeys]
    /// Idempotency keys of the job's calls already acknowledged (not sent again on a retry).
    func acknowledgedCalls(revocationID: String, provider: String) async throws(LogUnavailable) -> Set<String>
    /// Records one acknowledged call.
    func acknowledgeCall(revocationID: String, provider: String, key: String, status: Int, at time: Date) async throws(LogUnavailable)
    /// Ends an attempt: records it and moves the job on; a final state is appended to the share log,
    /// and on `acknowledged` the revocation keys of the job's shares are deleted.
    func finishAttempt(_ job: PropagationJob, attempt: Int, _ result: PropagationResult, calls: Int,
                       at time: Date) async throws(LogUnavailable)
    /// Every attempt of a job: (attempt, time, result text), oldest first.
    func attempts(revocationID: String, provider: String) async throws(LogUnavailable) -> [PropagationAttempt]
    /// Active grants for `provider` created with a `provider_account` whose fingerprint is `accountFingerprint`,
    /// granted at or before `grantedBefore`: (subject, grant id) pairs, for a provider's cancellation notice.
    func grants(provider: String, accountFingerprint: String,
                grantedBefore: Date) async throws(LogUnavailable) -> [(subject: String, grantID: String)]
    /// Deletes revocation keys whose contract retention has passed; returns how many shares' keys went.
    func purgeExpiredKeys(at time: Date) async throws(LogUnavailable) -> Int
    /// Every job counted by provider and status, with their attempts and, for unfinished ones,
    /// when the oldest was revoked (for `/metrics`).
    func jobSummary() async throws(LogUnavailable) -> [RevocationJobSummary]
}

/// The propagation jobs of one provider in one status.
public struct RevocationJobSummary: Sendable, Hashable {
    public var provider: String
    public var status: PropagationStatus
    public var jobs: Int
    public var attempts: Int
    /// For `pending` and `sent`: when the oldest of these jobs' revocations was made.
    public var oldestRevokedAt: Date?
    public init(provider: String, status: PropagationStatus, jobs: Int, attempts: Int, oldestRevokedAt: Date?) {
        self.provider = provider; self.status = status; self.jobs = jobs; self.attempts = attempts
        self.oldestRevokedAt = oldestRevokedAt
    }
}

/// One recorded attempt of a propagation job.
public struct PropagationAttempt: Sendable, Hashable {
    public var attempt: Int
    public var startedAt: Date
    public var finishedAt: Date?
    /// `acknowledged`, `retry`, `failed` or `manual_required`; nil while under way (or interrupted).
    public var result: String?
    public var error: String?
    public var calls: Int

    public init(attempt: Int, startedAt: Date, finishedAt: Date?, result: String?, error: String?, calls: Int) {
        self.attempt = attempt; self.startedAt = startedAt; self.finishedAt = finishedAt; self.result = result
        self.error = error; self.calls = calls
    }
}

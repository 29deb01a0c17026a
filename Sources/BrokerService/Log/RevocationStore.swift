import BrokerCore
import Foundation

/// Which grants a revoke call names.
public enum RevocationTarget: Sendable, Hashable {
    /// One grant of the subject.
    case grant(String)
    /// Every active grant of the subject for one provider.
    case provider(String)
}

/// What a revoke created: the job over every share made under the revoked grants.
public struct RevocationReceipt: Sendable, Hashable {
    public var id: String
    public var subject: String
    public var grantIDs: [String]
    public var createdAt: Date
    /// share id → provider, for every share the job covers.
    public var shares: [String: String]

    public init(id: String, subject: String, grantIDs: [String], createdAt: Date, shares: [String: String]) {
        self.id = id; self.subject = subject; self.grantIDs = grantIDs; self.createdAt = createdAt; self.shares = shares
    }
}

/// Why a revoke did nothing.
public enum RevocationRefusal: Error, Sendable, Hashable {
    /// No grant of the subject matches (it never existed, or belongs to someone else).
    case notFound
    /// Every matching grant was already revoked.
    case alreadyRevoked
}

/// Revoking grants, with the revocation fence.
///
/// `revoke` marks the grants revoked and records the job over every share made
/// under them (allowed or redacted, whose outcome is not a proven failure) in
/// one transaction. Together with the fence in `ShareLog.appendIntent` — which
/// re-reads the grants in the intent's own transaction — this guarantees: once
/// `revoke` returns, no intent can commit under those grants, and every intent
/// that committed before is in the job.
public protocol RevocationStore: Sendable {
    func revoke(subject: String, _ target: RevocationTarget, revocationID: String,
                at time: Date) async throws(LogUnavailable) -> Result<RevocationReceipt, RevocationRefusal>
    /// A revocation job as recorded, or `nil`.
    func revocation(_ id: String) async throws(LogUnavailable) -> RevocationReceipt?
}

import Foundation

/// A subject's authorization for one provider and one purpose.
///
/// It covers `categories` (a category covers its sub-categories), or, when
/// `categories` is `nil`, every category the contract allows for the purpose.
/// A grant is active from `grantedAt` until `expiresAt` or `revokedAt`.
public struct Grant: Sendable, Hashable, Codable {
    public var id: String
    public var subject: String
    public var provider: String
    public var purpose: String
    public var categories: [String]?
    /// Separate consent (PIPL art. 29): needed for sensitive categories.
    public var separateConsent: Bool
    /// Consent to processing outside the subject's region (PIPL art. 39).
    public var crossBorderConsent: Bool
    public var policyVersion: String
    public var evidence: String
    public var grantedAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    /// Keyed fingerprint of the provider's own id for the user (`provider_account`), so a
    /// provider's cancellation notice can find the grant; the id itself is not kept.
    public var accountFingerprint: String?

    public init(id: String, subject: String, provider: String, purpose: String, categories: [String]? = nil,
                separateConsent: Bool = false, crossBorderConsent: Bool = false, policyVersion: String = "1",
                evidence: String = "", grantedAt: Date, expiresAt: Date? = nil, revokedAt: Date? = nil) {
        self.id = id; self.subject = subject; self.provider = provider; self.purpose = purpose
        self.categories = categories; self.separateConsent = separateConsent
        self.crossBorderConsent = crossBorderConsent; self.policyVersion = policyVersion
        self.evidence = evidence; self.grantedAt = grantedAt; self.expiresAt = expiresAt; self.revokedAt = revokedAt
    }

    /// True when this grant's category list covers `category`.
    @inlinable
    public func covers(_ category: String) -> Bool {
        guard let categories else { return true }
        for scope in categories where Taxonomy.covers(scope, category) { return true }
        return false
    }

    public func isRevoked(at time: Date) -> Bool { revokedAt.map { $0 <= time } ?? false }
    public func isExpired(at time: Date) -> Bool { expiresAt.map { $0 <= time } ?? false }
    public func isActive(at time: Date) -> Bool { grantedAt <= time && !isRevoked(at: time) && !isExpired(at: time) }
}

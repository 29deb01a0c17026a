import BrokerFields
import BrokerCore
import BrokerService
import Foundation

/// A `GrantStore` that remembers each subject's context for a short time.
///
/// Reading the subject and grants is on every share's path; most shares repeat
/// a recent subject. Writes through this store invalidate the subject at once.
/// Staleness is bounded by `ttl` and is safe in both directions that matter:
/// a grant added on another node is seen at most `ttl` later (a share is
/// refused meanwhile), and a grant revoked anywhere is caught by the revocation
/// fence, which re-reads the grants in the intent's transaction.
public final class SubjectContextCache: GrantStore, Sendable {
    private struct Key: Hashable { var subject: String; var provider: String }
    private struct Entry { var context: SubjectContext; var expires: ContinuousClock.Instant }

    private let store: any GrantStore
    private let ttl: Duration
    private let capacity: Int
    private let entries = Locked<[Key: Entry]>([:])

    public init(_ store: any GrantStore, ttl: Duration = .seconds(1), capacity: Int = 100_000) {
        self.store = store
        self.ttl = ttl
        self.capacity = capacity
    }

    public func context(subject: String, provider: String) async throws(LogUnavailable) -> SubjectContext {
        let key = Key(subject: subject, provider: provider)
        let now = ContinuousClock.now
        if let cached = entries.withLock({ $0[key].flatMap { $0.expires > now ? $0.context : nil } }) {
            return cached
        }
        let context = try await store.context(subject: subject, provider: provider)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(context: context, expires: now + ttl)
        }
        return context
    }

    public func putSubject(_ subject: Subject) async throws(LogUnavailable) {
        try await store.putSubject(subject)
        invalidate(subject.id)
    }

    public func subject(_ id: String) async throws(LogUnavailable) -> Subject? { try await store.subject(id) }

    public func addGrant(_ grant: Grant) async throws(LogUnavailable) {
        try await store.addGrant(grant)
        invalidate(grant.subject)
    }

    public func grants(of subject: String) async throws(LogUnavailable) -> [Grant] { try await store.grants(of: subject) }

    /// Forgets every cached context of `subject` (after a change made on this node).
    public func invalidate(_ subject: String) {
        entries.withLock { $0 = $0.filter { $0.key.subject != subject } }
    }
}

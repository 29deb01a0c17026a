import BrokerCore
import Foundation

/// The store could not durably write: the broker answers 503 `log_unavailable` and forwards nothing.
public struct LogUnavailable: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "share log unavailable: \(message)" }
}

/// Where a record sits in the hash chain.
public struct ChainPosition: Sendable, Hashable, Codable {
    public var stream: String
    public var seq: Int64
    /// Hex SHA-256 of this record.
    public var hash: String
    public init(stream: String, seq: Int64, hash: String) { self.stream = stream; self.seq = seq; self.hash = hash }
}

/// The result of appending a share's intent.
public enum IntentResult: Sendable, Hashable {
    /// Durable: the share may be forwarded.
    case committed(ChainPosition)
    /// A grant the share relies on was revoked before the intent could commit
    /// (the revocation fence): the share must be refused with `consent_revoked`.
    /// The refusal itself has been logged, at this position.
    case grantRevoked(grantID: String, ChainPosition)
}

/// What a share log's write path tells `/metrics`.
public protocol ShareLogMetrics: Sendable {
    /// Calls `observer` after each committed batch with its record count and how long its
    /// transaction took (commit and fsync included). One observer; a second replaces the first.
    func observeCommits(_ observer: @escaping @Sendable (_ records: Int, _ duration: Duration) -> Void)
    /// Writes (intents and outcomes) queued for the next batch now.
    var queuedWrites: Int { get }
}

/// The append-only, hash-chained share log.
///
/// Each record's hash is SHA-256 over the previous record's hash and the
/// record's canonical bytes; the first record chains from 32 zero bytes.
public protocol ShareLog: Sendable {
    /// Durably appends `entry` (fsync'd before returning). For an allowed or
    /// redacted entry, checks in the same transaction that none of its
    /// `grantIDs` is revoked; if one is, logs the entry as blocked with
    /// `consent_revoked` instead and returns `.grantRevoked`.
    /// Concurrent calls may share one commit (group commit).
    func appendIntent(_ entry: ShareEntry) async throws(LogUnavailable) -> IntentResult

    /// Appends the outcome of a committed intent.
    func appendOutcome(_ outcome: ShareOutcome) async throws(LogUnavailable) -> ChainPosition

    /// Appends several outcomes, in order, in one group-committed write (all or none).
    /// Outcomes need not be durable at once (docs/share-log.md: an intent without one reads
    /// `unknown` after a crash), so a store may hold them a few milliseconds to share
    /// the next intent's commit.
    func appendOutcomes(_ outcomes: [ShareOutcome]) async throws(LogUnavailable) -> [ChainPosition]

    /// Gives every intent without an outcome the outcome `unknown` (run at start). Returns how many.
    func resolveDanglingIntents(at time: Date) async throws(LogUnavailable) -> Int
}

/// Subjects and their grants.
public protocol GrantStore: Sendable {
    /// Creates or replaces a subject's record.
    func putSubject(_ subject: Subject) async throws(LogUnavailable)
    func subject(_ id: String) async throws(LogUnavailable) -> Subject?
    /// Stores a new grant (its id is the caller's to choose, unique).
    func addGrant(_ grant: Grant) async throws(LogUnavailable)
    /// Every grant of a subject, revoked and expired ones included, oldest first.
    func grants(of subject: String) async throws(LogUnavailable) -> [Grant]
    /// The subject and its grants for one provider, as `evaluate` needs them.
    func context(subject: String, provider: String) async throws(LogUnavailable) -> SubjectContext
}

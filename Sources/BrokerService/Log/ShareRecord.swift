import BrokerCore
import Foundation

/// How a share reached the broker.
public enum ShareChannel: String, Sendable, Hashable, Codable {
    /// A request forwarded through the proxy.
    case proxy
    /// An SDK decision (`POST /v1/decisions`): evaluated and logged, not forwarded.
    case sdk
}

/// One field as the share log keeps it: never its value, only a keyed fingerprint.
///
/// Or several: the decisions of one share that share a location, declaration (or are all
/// undeclared), category, action, reason and `minimisedFrom` fold into one entry with a
/// `count` (`message.token[*]` ×1000), so a record's size is bounded whatever the body
/// (docs/share-log.md). A group of one is logged as it always was.
public struct LoggedField: Sendable, Hashable, Codable {
    public var location: FieldLocation
    /// Rendered concrete path (`message.token[0]`); for a folded entry the declaration's pattern
    /// (`message.token[*]`), or `<undeclared>` for undeclared fields.
    public var path: String
    public var category: String?
    public var action: FieldAction
    public var reason: ReasonCode?
    /// HMAC-SHA-256 of category and value under the log's fingerprint key, as `Fingerprinter.recordPrint` (its first
    /// 16 bytes in base64url; the full hex in records written before 2026-12-07); `nil` for non-personal fields.
    /// For a minimised field: of the category and value sent.
    public var fingerprint: String?
    /// For a minimised field, the declared category it was minimised from (`category` is the one sent, and
    /// `reason` why the declared one was denied); absent from the record otherwise.
    public var minimisedFrom: String?
    /// How many field occurrences this entry stands for: 1, absent from the record, for an entry
    /// of its own; more for a folded one.
    public var count: Int = 1
    /// A folded entry's distinct values, as sorted short prints (`Fingerprinter.shortPrint`), in place
    /// of `fingerprint`; `nil` for an entry of its own and for folded fields without fingerprints
    /// (non-personal, credentials, undeclared).
    public var fingerprints: [String]?
    /// For a field refused with `personal_data_in_non_personal_field`: the detector that found
    /// personal data in it (`prc_resident_id`); absent from the record otherwise. Never the value.
    public var detector: String?

    /// True for an entry that stands for several occurrences.
    public var isFolded: Bool { count > 1 }

    public init(location: FieldLocation, path: String, category: String?, action: FieldAction, reason: ReasonCode?,
                fingerprint: String?, minimisedFrom: String? = nil) {
        self.location = location; self.path = path; self.category = category; self.action = action
        self.reason = reason; self.fingerprint = fingerprint; self.minimisedFrom = minimisedFrom
    }
}

extension FieldLocation: Codable {}

/// The record of a decided share, written before anything is forwarded.
///
/// For `allowed` and `redacted` shares this is the *intent*: it is durable before
/// the first byte goes upstream, and an outcome record follows. For `blocked`
/// shares it is the whole story. It holds no personal value: subject ids are the
/// broker's pseudonymous ids, fields carry only fingerprints.
public struct ShareEntry: Sendable, Hashable, Codable {
    public var shareID: String
    public var time: Date
    public var node: String
    public var caller: String
    public var channel: ShareChannel
    public var provider: String
    public var operation: String?
    public var purpose: String?
    public var subject: String?
    public var decision: ShareDecision.Verdict
    /// The refusal code of a blocked share.
    public var code: ReasonCode?
    public var reasons: [ReasonCode]
    public var fields: [LoggedField]
    public var grantIDs: [String]
    public var contractVersion: String?
    public var contractHash: String?
    public var adapterHash: String?
    /// The policy bundle's revision that decided (`PolicyBundle.revision`); nil in records from before reloads.
    public var policyRevision: String?
    /// The values of the share's `revocation_key` fields, sealed: stored apart from the
    /// log record (never in it), in the intent's transaction, once per grant and key set, until
    /// the revocation they serve is acknowledged or the contract's retention has passed.
    public var revocationKeys: SealedRevocationKeys?

    public init(shareID: String, time: Date, node: String, caller: String, channel: ShareChannel, provider: String,
                operation: String?, purpose: String?, subject: String?, decision: ShareDecision.Verdict,
                code: ReasonCode?, reasons: [ReasonCode], fields: [LoggedField], grantIDs: [String],
                contractVersion: String?, contractHash: String?, adapterHash: String?, policyRevision: String? = nil) {
        self.shareID = shareID; self.time = time; self.node = node; self.caller = caller; self.channel = channel
        self.provider = provider; self.operation = operation; self.purpose = purpose; self.subject = subject
        self.decision = decision; self.code = code; self.reasons = reasons; self.fields = fields
        self.grantIDs = grantIDs; self.contractVersion = contractVersion; self.contractHash = contractHash
        self.adapterHash = adapterHash; self.policyRevision = policyRevision
    }
}

/// What happened upstream, appended after the intent.
public struct ShareOutcome: Sendable, Hashable, Codable {
    public enum Result: String, Sendable, Hashable, Codable {
        /// The provider answered (any HTTP status).
        case ok
        /// Nothing usable came back (unreachable, timeout, TLS, too large).
        case error
        /// The broker stopped between intent and outcome; counts as shared.
        case unknown
        /// An SDK decision: the caller's SDK sends the allowed payload itself.
        case delegated
    }

    public var shareID: String
    public var time: Date
    public var result: Result
    public var upstreamStatus: Int?
    public var latencyMs: Int?
    /// A stable error code (`upstream_timeout`…), never a provider message.
    public var error: String?
    /// The share's revocation keys again, now with those taken from the provider's answer
    /// (`response_revocation_keys`), sealed: stored apart from the log record (never in it), in the
    /// outcome's transaction, linked to the share's grants in place of what the intent stored.
    public var revocationKeys: SealedRevocationKeys?
    /// The share's provider, for `revocationKeys`.
    public var provider: String?
    /// The grants the share relied on, for `revocationKeys`.
    public var grantIDs: [String] = []

    public init(shareID: String, time: Date, result: Result, upstreamStatus: Int? = nil, latencyMs: Int? = nil,
                error: String? = nil) {
        self.shareID = shareID; self.time = time; self.result = result; self.upstreamStatus = upstreamStatus
        self.latencyMs = latencyMs; self.error = error
    }
}

/// A share's revocation keys as the store keeps them: AES-GCM sealed (`RevocationKeyVault`), once
/// per grant and key set. Shares that send the same values under one grant (a push token, for
/// months) share one box; each share's grant link names the set it sent.
public struct SealedRevocationKeys: Sendable, Hashable, Codable {
    public var sealed: [UInt8]
    /// The key set's print (`RevocationKeyVault.KeySet.print`), which the box is bound to.
    public var keySet: Int64
    /// When the contract's retention has passed and the keys are deleted even if never used: a set
    /// lives until the retention of the last share that sent it has passed.
    public var expiresAt: Date

    public init(sealed: [UInt8], keySet: Int64, expiresAt: Date) {
        self.sealed = sealed; self.keySet = keySet; self.expiresAt = expiresAt
    }
}

/// The sealed keys a revocation job finds for one of its shares.
public struct StoredRevocationKeys: Sendable, Hashable {
    public var sealed: [UInt8]
    /// The print of the key set the box is bound to, or nil for a box stored per share before key
    /// sets existed (bound to its share id).
    public var keySet: Int64?

    public init(sealed: [UInt8], keySet: Int64?) { self.sealed = sealed; self.keySet = keySet }
}

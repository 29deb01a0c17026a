import BrokerCore
import Foundation

/// What `GET /v1/shares` filters on (docs/http-api.md). Every filter is optional; all given ones must hold.
public struct ShareFilter: Sendable, Hashable {
    public var subject: String?
    public var provider: String?
    public var purpose: String?
    /// A data category: matches shares with a field of this category or one under it.
    public var category: String?
    public var decision: String?
    public var caller: String?
    public var since: Date?
    public var until: Date?
    /// Shares with a field carrying one of these fingerprints (`fingerprint_of`).
    public var fingerprints: [String]?
    /// With `fingerprints`: their short prints (`Fingerprinter.shortPrint`), which also match a folded
    /// entry listing one of them in its `fingerprints`.
    public var shortFingerprints: [String]?
    /// Newest first (log order backwards, within each stream); a cursor then pages backwards.
    public var newestFirst = false

    public init(subject: String? = nil, provider: String? = nil, purpose: String? = nil, category: String? = nil,
                decision: String? = nil, caller: String? = nil, since: Date? = nil, until: Date? = nil,
                fingerprints: [String]? = nil) {
        self.subject = subject; self.provider = provider; self.purpose = purpose; self.category = category
        self.decision = decision; self.caller = caller; self.since = since; self.until = until
        self.fingerprints = fingerprints
    }
}

extension ShareFilter {
    /// `fingerprint_of`: the shares that carried `value` under `category`, by every form a record holds
    /// it in: the record print (since 2026-12-07), the full hex (before), a folded entry's short print.
    public mutating func carrying(_ value: String, category: String, printer: Fingerprinter) {
        let prints = printer.prints(category: category, value: .string(value))
        self.category = category
        fingerprints = [prints.hex, prints.record]
        shortFingerprints = [prints.short]
    }
}

/// A position in the log: pages continue strictly after it, so records appended
/// meanwhile (always at the end of their stream) are neither skipped nor repeated.
public struct ShareCursor: Sendable, Hashable {
    public var stream: String
    public var seq: Int64
    public init(stream: String, seq: Int64) { self.stream = stream; self.seq = seq }

    /// Opaque text form: base64url of `stream`, a NUL, and `seq`.
    public var token: String {
        Data((stream + "\u{0}" + String(seq)).utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public init?(token: String) {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: "\u{0}", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let seq = Int64(parts[1]), seq >= 0 else { return nil }
        self.init(stream: String(parts[0]), seq: seq)
    }
}

/// One share as the log holds it: its record, its outcome (if any) and where it sits in the chain.
public struct LoggedShare: Sendable, Hashable {
    public var position: ChainPosition
    /// The record's canonical JSON, exactly as hashed.
    public var record: String
    /// The outcome record's canonical JSON, if one was appended.
    public var outcome: String?
    public var outcomePosition: ChainPosition?

    public init(position: ChainPosition, record: String, outcome: String?, outcomePosition: ChainPosition?) {
        self.position = position; self.record = record; self.outcome = outcome; self.outcomePosition = outcomePosition
    }

    /// `{"chain":{…},"outcome":…,"share":…}` with the stored records embedded byte for byte.
    public var json: String {
        var out = #"{"chain":{"hash":"# + JSONText.quoted(position.hash) + #","seq":"# + String(position.seq)
            + #","stream":"# + JSONText.quoted(position.stream) + "},"
        out += #""outcome":"# + (outcome ?? "null")
        if let outcomePosition { out += #","outcome_seq":"# + String(outcomePosition.seq) }
        return out + #","share":"# + record + "}"
    }
}

/// Compliance reads of the share log.
public protocol ShareQueries: SharingListSource {
    /// Up to `limit` shares matching `filter`, in log order, strictly after `cursor`.
    func shares(_ filter: ShareFilter, after cursor: ShareCursor?, limit: Int) async throws(LogUnavailable) -> [LoggedShare]
    /// One share by id.
    func share(id: String) async throws(LogUnavailable) -> LoggedShare?
    /// Up to `limit` subjects, in id order after `afterSubject`, whose personal data `query.provider`
    /// received in the window (allowed or redacted shares that sent a personal field).
    func exposure(_ query: ExposureQuery, afterSubject: String?, limit: Int) async throws(LogUnavailable) -> [ExposureRow]
}

/// Whose personal data a provider received, and when: the people to notify after that
/// provider reports a security incident.
public struct ExposureQuery: Sendable, Hashable {
    public var provider: String
    public var since: Date?
    public var until: Date?
    /// Only this personal category (and its sub-categories).
    public var category: String?

    public init(provider: String, since: Date? = nil, until: Date? = nil, category: String? = nil) {
        self.provider = provider; self.since = since; self.until = until; self.category = category
    }

    /// `[from, to)` in µs since 1970 (as the log stores times), open ends as far as they go.
    public var window: (from: Int64, to: Int64) {
        func us(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
        return (since.map(us) ?? Int64.min / 2, until.map(us) ?? Int64.max / 2)
    }
}

/// One subject of an exposure report.
public struct ExposureRow: Sendable, Hashable {
    public var subject: String
    /// The personal categories the provider received about them, sorted.
    public var categories: [String]
    public var shares: Int
    public var firstShared: Date
    public var lastShared: Date

    public init(subject: String, categories: [String], shares: Int, firstShared: Date, lastShared: Date) {
        self.subject = subject; self.categories = categories; self.shares = shares
        self.firstShared = firstShared; self.lastShared = lastShared
    }
}

/// One row of the third-party sharing list, from real traffic: a provider, a purpose and
/// a data category, with what the log saw of it.
public struct SharingListRow: Sendable, Hashable {
    public var provider: String
    public var purpose: String
    public var category: String
    /// Shares that sent a field of this category (minimised ones included); that stripped one; that blocked one.
    public var sent: Int
    /// Of `sent`, the shares that sent it as the minimised form of a more precise field.
    public var minimised: Int = 0
    public var stripped: Int
    public var blocked: Int
    /// Distinct subjects whose data of this category was sent.
    public var subjects: Int
    public var firstSeen: Date
    public var lastSeen: Date

    public init(provider: String, purpose: String, category: String, sent: Int, stripped: Int, blocked: Int, subjects: Int,
                firstSeen: Date, lastSeen: Date) {
        self.provider = provider; self.purpose = purpose; self.category = category; self.sent = sent
        self.stripped = stripped; self.blocked = blocked; self.subjects = subjects; self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }
}

/// The sharing list's source: what the log holds, aggregated.
public protocol SharingListSource: Sendable {
    /// Every provider × purpose × category in shares between `since` and `until`.
    func sharingList(since: Date?, until: Date?) async throws(LogUnavailable) -> [SharingListRow]
}

/// The third-party sharing list: the log's traffic beside what the contracts allow.
public enum SharingList {
    public struct Entry: Sendable, Hashable {
        public var row: SharingListRow
        /// The contract in force for the provider allows this category for this purpose.
        public var allowedByContract: Bool
        /// Sent although no contract in force covers it (drift: a shadow run, a contract change).
        public var drift: Bool { !allowedByContract && row.sent > 0 }
    }

    /// Personal categories only (the taxonomy decides), each judged against the contract in force at `at`.
    public static func build(_ rows: [SharingListRow], bundle: PolicyBundle, at date: Date) -> [Entry] {
        rows.filter { bundle.taxonomy.categories[$0.category]?.personal ?? true }.map { row in
            let contract = bundle.contracts[row.provider]
            let inForce = contract.map { $0.isInForce(on: CalendarDay(date)) } ?? false
            return Entry(row: row, allowedByContract: inForce && (contract?.allows(row.category, for: row.purpose) ?? false))
        }.sorted { ($0.row.provider, $0.row.purpose, $0.row.category) < ($1.row.provider, $1.row.purpose, $1.row.category) }
    }

    public static let csvHeader = "provider,purpose,category,sent,stripped,blocked,subjects,first_seen,last_seen,allowed_by_contract,drift"
}

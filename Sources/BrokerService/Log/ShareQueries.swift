import BrokerCore
import Foundation

/// What `GET /v1/shares` filters on (DESIGN §6). Every filter is optional; all given ones must hold.
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

    public init(subject: String? = nil, provider: String? = nil, purpose: String? = nil, category: String? = nil,
                decision: String? = nil, caller: String? = nil, since: Date? = nil, until: Date? = nil,
                fingerprints: [String]? = nil) {
        self.subject = subject; self.provider = provider; self.purpose = purpose; self.category = category
        self.decision = decision; self.caller = caller; self.since = since; self.until = until
        self.fingerprints = fingerprints
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
public protocol ShareQueries: Sendable {
    /// Up to `limit` shares matching `filter`, in log order, strictly after `cursor`.
    func shares(_ filter: ShareFilter, after cursor: ShareCursor?, limit: Int) async throws(LogUnavailable) -> [LoggedShare]
    /// One share by id.
    func share(id: String) async throws(LogUnavailable) -> LoggedShare?
}

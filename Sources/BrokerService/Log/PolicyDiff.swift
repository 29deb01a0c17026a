import BrokerCore
import Foundation

/// Changes of decisions, per provider × purpose × category × change, with a few share ids as
/// examples: what `sharebroker policy diff` reports and what the shadow mode counts.
public struct ShareChangeTally: Sendable {
    public struct Key: Hashable, Sendable, Comparable {
        public var provider: String
        public var purpose: String
        public var category: String
        public var change: ShareChange

        public init(provider: String, purpose: String, category: String, change: ShareChange) {
            self.provider = provider; self.purpose = purpose; self.category = category; self.change = change
        }

        public static func < (a: Key, b: Key) -> Bool {
            (a.provider, a.purpose, a.category, a.change.rawValue) < (b.provider, b.purpose, b.category, b.change.rawValue)
        }
    }

    public struct Count: Sendable {
        public var shares = 0
        /// The first few shares (by id) that would change this way.
        public var examples: [String] = []
    }

    public static let exampleLimit = 5

    public private(set) var counts: [Key: Count] = [:]
    /// Shares decided under both policies; of them, those with at least one change.
    public private(set) var shares = 0
    public private(set) var changed = 0

    public init() {}

    public mutating func add(shareID: String, provider: String, purpose: String,
                             _ changes: [(category: String, change: ShareChange)]) {
        shares += 1
        guard !changes.isEmpty else { return }
        changed += 1
        for (category, change) in changes {
            let key = Key(provider: provider, purpose: purpose, category: category, change: change)
            var count = counts[key] ?? Count()
            count.shares += 1
            if count.examples.count < Self.exampleLimit { count.examples.append(shareID) }
            counts[key] = count
        }
    }

    /// One object per key, in key order: `{provider, purpose, category, change, shares, examples}`.
    public var rows: [[String: Any]] {
        counts.keys.sorted().map { key in
            ["provider": key.provider, "purpose": key.purpose, "category": key.category, "change": key.change.rawValue,
             "shares": counts[key]?.shares ?? 0, "examples": counts[key]?.examples ?? []]
        }
    }

    /// A plain-text table, one line per key.
    public var table: String {
        let header = ["provider", "purpose", "category", "change", "shares", "examples"]
        let lines = counts.keys.sorted().map { key in
            [key.provider, key.purpose, key.category, key.change.rawValue, String(counts[key]?.shares ?? 0),
             (counts[key]?.examples ?? []).joined(separator: " ")]
        }
        var widths = header.map(\.count)
        for line in lines { for (i, cell) in line.enumerated() where i < 5 { widths[i] = max(widths[i], cell.count) } }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i < 5 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : cell }
                .joined(separator: "  ")
        }
        return ([render(header)] + lines.map(render)).joined(separator: "\n")
    }
}

/// `sharebroker policy diff`: the logged shares decided again under a candidate policy.
public enum PolicyDiff {
    public struct Report: Sendable {
        public var candidateRevision: String
        public var since: Date?
        public var until: Date?
        /// Shares read from the log in the window.
        public var read = 0
        /// Of them, refused for reasons no policy decides (a caller's rights, a malformed body), or
        /// refused before an operation and purpose were known: not decided again.
        public var skipped = 0
        public var tally = ShareChangeTally()

        public var json: [String: Any] {
            var out: [String: Any] = ["candidate_revision": candidateRevision, "shares_read": read, "shares_skipped": skipped,
                                      "shares_decided": tally.shares, "shares_changed": tally.changed, "changes": tally.rows]
            let iso = ISO8601DateFormatter()
            if let since { out["since"] = iso.string(from: since) }
            if let until { out["until"] = iso.string(from: until) }
            return out
        }
    }

    /// Reads every share in the window (log order, page by page) and decides it again under `candidate`
    /// with the subject's grants as they stood at its time.
    public static func run(queries: any ShareQueries, grants: any GrantStore, candidate: PolicyEngine,
                           since: Date?, until: Date?, pageSize: Int = 500) async throws(LogUnavailable) -> Report {
        var report = Report(candidateRevision: candidate.bundle.revision, since: since, until: until)
        var cursor: ShareCursor?
        var contexts: [String: SubjectContext] = [:]
        let filter = ShareFilter(since: since, until: until)
        let taxonomy = candidate.bundle.taxonomy
        while true {
            let page = try await queries.shares(filter, after: cursor, limit: pageSize)
            for share in page {
                report.read += 1
                guard let recorded = RecordedShare(logRecord: share.record), !recorded.isPolicyIndependentRefusal else {
                    report.skipped += 1
                    continue
                }
                let key = recorded.subject + "\u{0}" + recorded.provider
                let context: SubjectContext
                if let cached = contexts[key] { context = cached } else {
                    context = try await grants.context(subject: recorded.subject, provider: recorded.provider)
                    contexts[key] = context
                }
                let again = candidate.redecide(recorded, context: context)
                let changes = ShareChange.between((recorded.verdict, recorded.fields), (again.verdict, again.fields)) {
                    taxonomy.categories[$0]?.personal ?? true
                }
                report.tally.add(shareID: recorded.shareID, provider: recorded.provider, purpose: recorded.purpose, changes)
            }
            guard page.count == pageSize, let last = page.last else { break }
            cursor = ShareCursor(stream: last.position.stream, seq: last.position.seq)
        }
        return report
    }
}

extension RecordedShare {
    /// A share record's canonical JSON as a `RecordedShare`; `nil` for a record that never reached an
    /// operation, a purpose and a subject (nothing a policy decided).
    public init?(logRecord text: String) {
        guard let record = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let shareID = record["share_id"] as? String, let provider = record["provider"] as? String,
              let operation = record["operation"] as? String, let purpose = record["purpose"] as? String,
              let subject = record["subject"] as? String,
              let verdict = (record["decision"] as? String).flatMap(ShareDecision.Verdict.init(rawValue:)),
              let timeUs = (record["time_us"] as? NSNumber)?.int64Value else { return nil }
        var fields: [Field] = []
        for field in record["fields"] as? [[String: Any]] ?? [] {
            guard let location = (field["location"] as? String).flatMap(FieldLocation.init(rawValue:)),
                  let path = field["path"] as? String,
                  let action = (field["action"] as? String).flatMap(FieldAction.init(rawValue:)) else { return nil }
            fields.append(Field(location: location, path: path, category: field["category"] as? String, action: action,
                                reason: (field["reason"] as? String).map(ReasonCode.init(rawValue:)),
                                minimisedFrom: field["minimised_from"] as? String))
        }
        self.init(shareID: shareID, provider: provider, operation: operation, purpose: purpose, subject: subject,
                  time: Date(timeIntervalSince1970: TimeInterval(timeUs) / 1_000_000), verdict: verdict,
                  code: (record["code"] as? String).map(ReasonCode.init(rawValue:)), fields: fields)
    }
}

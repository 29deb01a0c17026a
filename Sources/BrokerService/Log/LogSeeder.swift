import BrokerCore
import Foundation

/// Writes realistic share records through a `ShareLog`'s real write path (intent,
/// fence, group commit, outcome), for benchmarks and demos: `sharebroker log seed`.
///
/// Shares are drawn from the policy's own operations and declared fields (their
/// categories), over `subjects` subjects, spread evenly over the last `days` days,
/// about 80% allowed, 12% redacted (one field stripped) and 8% blocked; allowed and
/// redacted shares get an `ok` outcome. Values are made up and only fingerprinted.
public enum LogSeeder {
    struct Template: Sendable {
        var provider: String
        var operation: String
        var purpose: String
        var fields: [(location: FieldLocation, path: String, category: String?, personal: Bool)]
        var contractVersion: String?
    }

    static func templates(_ bundle: PolicyBundle) -> [Template] {
        bundle.adapters.values.sorted { $0.provider < $1.provider }.flatMap { adapter in
            adapter.operations.compactMap { operation -> Template? in
                let fields = operation.declarations.filter { !$0.credential && $0.category != nil }.prefix(8).map { declaration in
                    (declaration.location, declaration.pattern.description.replacingOccurrences(of: "[*]", with: "[0]")
                        .replacingOccurrences(of: ".*", with: ".k"),
                     declaration.category, bundle.taxonomy.categories[declaration.category ?? ""]?.personal ?? true)
                }
                guard let purpose = operation.purposes.first, !fields.isEmpty else { return nil }
                return Template(provider: adapter.provider, operation: operation.name, purpose: purpose, fields: Array(fields),
                                contractVersion: bundle.contracts[adapter.provider]?.version)
            }
        }
    }

    /// Appends about `records` records (shares and their outcomes); returns how many were written.
    /// `heavy` of the shares (0–1) go to one subject, `seed-subject-heavy` (a history that long).
    public static func seed(log: any ShareLog, bundle: PolicyBundle, records: Int, subjects: Int, days: Int = 30,
                            heavy: Double = 0, node: String, fingerprinter: Fingerprinter, inFlight: Int = 256,
                            progress: (@Sendable (Int) -> Void)? = nil) async throws -> Int {
        let templates = templates(bundle)
        guard !templates.isEmpty, records > 0 else { return 0 }
        let end = Date()
        let start = end.addingTimeInterval(-Double(days) * 86_400)
        let shares = max(1, records * 100 / 190)   // ~90% of shares get an outcome
        let step = end.timeIntervalSince(start) / Double(shares)
        let written = Locked(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<shares {
                if index >= inFlight { try await group.next() }
                group.addTask {
                    var generator = SplitMix(seed: UInt64(index))
                    let template = templates[Int(generator.next() % UInt64(templates.count))]
                    let roll = generator.next() % 100
                    let verdict: ShareDecision.Verdict = roll < 80 ? .allowed : (roll < 92 ? .redacted : .blocked)
                    let pick = generator.next()
                    let subject = Double(pick % 1_000_000) < heavy * 1_000_000
                        ? "seed-subject-heavy" : "seed-subject-\(pick / 1_000_000 % UInt64(max(1, subjects)))"
                    let time = start.addingTimeInterval(Double(index) * step)
                    var fields: [LoggedField] = []
                    for (offset, field) in template.fields.enumerated() {
                        var action = FieldAction.sent
                        var reason: ReasonCode?
                        if verdict == .redacted && offset == template.fields.count - 1 { action = .stripped; reason = .consentMissing }
                        if verdict == .blocked { action = .blocked; reason = offset == 0 ? .consentMissing : .shareBlocked }
                        let value = FieldValue.string("\(subject)-\(field.path)-\(generator.next() % 1000)")
                        fields.append(LoggedField(location: field.location, path: field.path, category: field.category,
                                                  action: action, reason: reason,
                                                  fingerprint: field.personal ? fingerprinter.recordPrint(category: field.category ?? "", value: value) : nil))
                    }
                    let shareID = String(format: "seed-%010d-%08x", index, UInt32(truncatingIfNeeded: generator.next()))
                    let entry = ShareEntry(shareID: shareID, time: time, node: node, caller: "seed-app", channel: .proxy,
                                           provider: template.provider, operation: template.operation, purpose: template.purpose,
                                           subject: subject, decision: verdict, code: verdict == .blocked ? .consentMissing : nil,
                                           reasons: verdict == .allowed ? [] : [.consentMissing], fields: fields,
                                           grantIDs: verdict == .blocked ? [] : ["seed-grant-\(subject)-\(template.provider)"],
                                           contractVersion: template.contractVersion, contractHash: nil, adapterHash: nil)
                    _ = try await log.appendIntent(entry)
                    var count = 1
                    if verdict != .blocked {
                        _ = try await log.appendOutcome(ShareOutcome(shareID: shareID, time: time.addingTimeInterval(0.05),
                                                                     result: .ok, upstreamStatus: 200, latencyMs: 50))
                        count += 1
                    }
                    let total = written.withLock { $0 += count; return $0 }
                    if total / 100_000 != (total - count) / 100_000 { progress?(total) }
                }
            }
            try await group.waitForAll()
        }
        return written.snapshot
    }

    /// A small deterministic generator (SplitMix64), so a seed is reproducible.
    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

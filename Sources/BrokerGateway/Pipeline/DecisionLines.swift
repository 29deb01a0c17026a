import BrokerCore
import BrokerService
import Foundation

/// `log_format: json`: one JSON line per share on standard output, for a log shipper: the share
/// id, caller, channel, provider, operation, decision, code, upstream status, the broker's
/// latency, the policy revision and the adapter and contract hashes that decided it. Never a
/// value, a subject id, a path or a token; a provider name no adapter has is shown only as
/// `unknown`. The lines are written by a serial queue of their own, so a slow reader of
/// stdout never blocks an event loop.
public final class DecisionLines: Sendable {
    private let queue = DispatchQueue(label: "sharebroker.decision-lines")
    private let write: @Sendable (String) -> Void

    public init(write: @escaping @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }) {
        self.write = write
    }

    func emit(_ request: ShareRequest, knownProvider: Bool, channel: ShareChannel, _ result: ShareResult, latency: Duration) {
        let line = Self.line(request, knownProvider: knownProvider, channel: channel, result, latency: latency)
        let write = self.write
        queue.async { write(line) }
    }

    static func line(_ request: ShareRequest, knownProvider: Bool, channel: ShareChannel, _ result: ShareResult,
                     latency: Duration) -> String {
        var shareID: String?, decision: ShareDecision?, status: Int?, verdict: String
        switch result {
        case .forwarded(let response, let id, let decided):
            shareID = id; decision = decided; status = response.status; verdict = decided.verdict.rawValue
        case .decided(let id, let decided, _):
            shareID = id; decision = decided; verdict = decided.verdict.rawValue
        case .refused(let problem, let decided):
            shareID = problem.shareID; decision = decided; verdict = decided?.verdict.rawValue ?? "refused"
        }
        let code = decision?.code?.rawValue ?? { if case .refused(let problem, _) = result { return problem.code } else { return nil } }()
        let (seconds, attoseconds) = latency.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        func text(_ value: String?) -> String { value.map(JSONText.quoted) ?? "null" }
        return #"{"adapter_hash":"# + text(decision?.adapterHash) + #","caller":"# + text(request.caller?.id)
            + #","channel":"# + text(channel.rawValue) + #","code":"# + text(code)
            + #","contract_hash":"# + text(decision?.contractHash) + #","decision":"# + text(verdict)
            + #","latency_ms":"# + String(format: "%.3f", Double(micros) / 1000) + #","operation":"# + text(decision?.operation)
            + #","policy_revision":"# + text(decision?.policyRevision)
            + #","provider":"# + text(knownProvider ? request.provider : "unknown") + #","share_id":"# + text(shareID)
            + #","upstream_status":"# + (status.map(String.init) ?? "null") + "}"
    }
}

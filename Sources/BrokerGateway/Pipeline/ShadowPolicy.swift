import BrokerCore
import BrokerFields
import BrokerService
import Foundation

/// A candidate policy every logged share is also decided under, without effect (`shadow:` in the
/// config): the share goes as the real policy decided; the differences are counted here, in
/// `/metrics` and in `GET /v1/reports/shadow`. The counts live in memory, per node, from `since`
/// (a start, or a reload that changed the candidate); a reload that leaves the candidate as it
/// was keeps them.
public final class ShadowPolicy: Sendable {
    /// The candidate's `PolicyBundle.revision`.
    public let revision: String
    public let since: Date
    let engine: PolicyEngine
    private let tally = Locked(ShareChangeTally())

    init(bundle: PolicyBundle, like engine: PolicyEngine, since: Date) {
        revision = bundle.revision
        self.since = since
        self.engine = PolicyEngine(bundle: bundle, homeRegion: engine.homeRegion, minorAge: engine.minorAge, limits: engine.limits)
    }

    /// Decides `request` under the candidate (the same request, grants and time as `decision`) and counts what differs.
    func observe(_ request: ShareRequest, context: SubjectContext, decision: ShareDecision, shareID: String,
                 decoder: some PayloadDecoder, metrics: BrokerMetrics) {
        let candidate = engine.evaluate(request, context: context, decoder: decoder)
        let taxonomy = engine.bundle.taxonomy
        let changes = ShareChange.between((decision.verdict, decision.fields.map(RecordedShare.Field.init)),
                                          (candidate.verdict, candidate.fields.map(RecordedShare.Field.init))) {
            taxonomy.categories[$0]?.personal ?? true
        }
        let purpose = decision.purpose ?? candidate.purpose ?? "none"
        tally.withLock { $0.add(shareID: shareID, provider: decision.provider, purpose: purpose, changes) }
        metrics.shadow(candidate: revision, provider: decision.provider, purpose: purpose, changes)
    }

    /// What has been counted so far.
    public var counted: ShareChangeTally { tally.snapshot }
}

import BrokerCore
import BrokerService
import Foundation
import Logging

/// Loads `adapters/` and `contracts/` again and switches to them atomically (SIGHUP,
/// `POST /v1/admin/policy/reload`). The new bundle is validated whole, exactly as
/// `sharebroker check` does; one with errors is refused and the revision deciding now stays.
/// Shares in flight finish on the revision they started with. Reloads run one at a time.
public actor PolicyReloader {
    public enum Outcome: Sendable {
        /// Switched: every share decided from now on uses `revision`.
        case installed(PolicyRevision, previous: PolicyRevision, warnings: [String])
        /// The files (and the secrets they name) are those of the revision deciding now.
        case unchanged(PolicyRevision)
        /// The new files have errors: nothing changed.
        case refused([PolicyIssue], current: PolicyRevision)
    }

    let policy: ActivePolicy
    let environment: PolicyRevision.Environment
    let source: Assembly.ReloadSource
    let metrics: BrokerMetrics
    let logger: Logger

    init(policy: ActivePolicy, environment: PolicyRevision.Environment, source: Assembly.ReloadSource,
         metrics: BrokerMetrics, logger: Logger) {
        self.policy = policy; self.environment = environment; self.source = source; self.metrics = metrics; self.logger = logger
    }

    /// `trigger` (`sighup`, `api:CLIENT`) is only logged.
    public func reload(trigger: String) async -> Outcome {
        let current = policy.current
        let loaded = await source.load()
        guard let bundle = loaded.bundle, loaded.issues.isEmpty else {
            logger.error("policy reload refused: the new files have errors; revision \(current.id) keeps deciding",
                         metadata: ["policy.trigger": "\(trigger)", "policy.errors": "\(loaded.issues.count)"])
            for issue in loaded.issues { logger.error("\(issue.description)") }
            metrics.policyReload("refused")
            return .refused(loaded.issues, current: current)
        }
        let (next, buildWarnings) = PolicyRevision.build(bundle, secrets: loaded.secrets, environment: environment,
                                                         shadow: loaded.shadow, previous: current)
        let warnings = loaded.warnings + buildWarnings
        if next.id == current.id, next.injectorSources == current.injectorSources, next.shadow?.revision == current.shadow?.revision {
            logger.info("policy reload: nothing changed", metadata: ["policy.trigger": "\(trigger)", "policy.revision": "\(current.id)"])
            metrics.policyReload("unchanged")
            return .unchanged(current)
        }
        let previous = policy.install(next)
        metrics.policyInstalled(next)
        metrics.policyReload("installed")
        for warning in warnings { logger.warning("\(warning)") }
        var metadata: Logger.Metadata = ["policy.trigger": "\(trigger)", "policy.revision": "\(next.id)",
                                         "policy.previous": "\(previous.id)", "policy.adapters": "\(bundle.adapters.count)"]
        if let shadow = next.shadow { metadata["policy.shadow_revision"] = "\(shadow.revision)" }
        logger.notice("policy reloaded", metadata: metadata)
        return .installed(next, previous: previous, warnings: warnings)
    }
}

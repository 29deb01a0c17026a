import BrokerCore
import BrokerFields
import BrokerService
import CoreMetrics
import Foundation
import Prometheus

/// The broker's build, for `sharebroker --version` and `sharebroker_build_info`.
public enum BrokerBuild {
    public static let version = "0.14.0"
}

/// What `/metrics` shows, recorded through swift-metrics into a Prometheus registry of this
/// gateway's own (not the process-wide one: tests run several gateways in one process).
///
/// Labels are closed sets the broker defines: provider names from the adapters (`unknown` for a
/// name no adapter has), operation names the adapters declare, channels, verdicts, stable codes,
/// status classes. Never a subject id, a field value, a path, a host a caller typed or a token.
/// Handles are cached per label set, so a share costs a dictionary lookup and an atomic add.
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let shares = Locked<[ShareKey: CoreMetrics.Counter]>([:])
    private let upstreams = Locked<[UpstreamKey: CoreMetrics.Timer]>([:])
    private let attempts = Locked<[UpstreamKey: CoreMetrics.Counter]>([:])
    private let reloads = Locked<[String: CoreMetrics.Counter]>([:])
    private let shadowChanges = Locked<[ShadowKey: CoreMetrics.Counter]>([:])
    private let shadowShares = Locked<[UpstreamKey: CoreMetrics.Counter]>([:])
    private let sdkTokens = Locked<[String: CoreMetrics.Counter]>([:])

    struct ShadowKey: Hashable { var candidate: String, change: ShareChangeTally.Key }
    private let commitDuration: CoreMetrics.Timer
    private let batchSize: Recorder
    private let queued: Meter
    private let policyLoaded: Meter
    private let policyInfo = Locked<(revision: String, gauge: Meter)?>(nil)
    /// The revocation-job gauges set at the last scrape, so a (provider, status) that has gone is set to 0.
    private let jobGauges = Locked<Set<UpstreamKey>>([])
    /// The published list's drift series set at the last scrape, so one that has gone is removed.
    private let driftGauges = Locked<Set<DriftKey>>([])

    static let shareCounter = "sharebroker_shares_total"
    static let upstreamTimer = "sharebroker_upstream_duration_seconds"
    static let commitTimer = "sharebroker_log_commit_duration_seconds"
    static let batchRecorder = "sharebroker_log_batch_records"

    /// `# HELP` lines, added to the registry's output (swift-metrics has no help text).
    static let help: [String: String] = [
        shareCounter: "Shares decided, by provider, operation, channel, decision and code.",
        upstreamTimer: "Upstream call latency by provider and status class (error: no response).",
        commitTimer: "Share-log write transactions, commit and fsync included.",
        batchRecorder: "Records per share-log batch that appended any (group commit).",
        "sharebroker_log_queued_writes": "Intents and outcomes waiting for the next share-log batch.",
        "sharebroker_revocation_jobs": "Revocation propagation jobs by provider and status (the whole database).",
        "sharebroker_revocation_job_attempts": "Attempts made by the jobs of each provider and status (the whole database).",
        "sharebroker_revocation_oldest_pending_seconds": "Age of the oldest unfinished revocation job's revocation, per provider.",
        "sharebroker_revocation_attempts_total": "Revocation attempts finished by this node, by provider and result.",
        "sharebroker_policy_info": "The policy revision deciding now (value 1).",
        "sharebroker_policy_loaded_timestamp_seconds": "When the policy revision deciding now was installed.",
        "sharebroker_policy_reloads_total": "Policy reloads by result (installed, unchanged, refused).",
        "sharebroker_build_info": "The broker's version (value 1).",
        "sharebroker_sdk_tokens_total": "SDK sign-in calls at a provider's token endpoint answered by the broker (token_endpoints), by provider: not shares.",
        "sharebroker_shadow_shares_total": "Shares also decided under the shadow policy, by candidate revision and whether any decision would change.",
        "sharebroker_shadow_changes_total": "Shares whose decision the shadow policy would change, by candidate revision, provider, purpose, category and change.",
        driftGauge: "Shares since the published sharing list's published_at that sent a personal category it does not disclose, "
            + "by provider, purpose, category and kind (party, purpose, category). No series without a published list.",
        driftEntries: "Provider × purpose × category combinations shared but not disclosed by the published sharing list "
            + "(present only when contracts/published-sharing-list.yaml exists).",
    ]

    static let driftGauge = "sharebroker_published_list_drift"
    static let driftEntries = "sharebroker_published_list_drift_entries"

    struct DriftKey: Hashable {
        var provider: String, purpose: String, category: String, kind: String
    }

    struct ShareKey: Hashable {
        var provider: String, operation: String, channel: String, decision: String, code: String
    }

    struct UpstreamKey: Hashable {
        var provider: String, label: String
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.commitTimer] = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1000].map { .microseconds(Int64($0 * 1000)) }
        factory.valueHistogramBuckets[Self.batchRecorder] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        self.factory = factory
        commitDuration = Timer(label: Self.commitTimer, dimensions: [], factory: factory)
        batchSize = Recorder(label: Self.batchRecorder, dimensions: [], aggregate: true, factory: factory)
        queued = Meter(label: "sharebroker_log_queued_writes", dimensions: [], factory: factory)
        policyLoaded = Meter(label: "sharebroker_policy_loaded_timestamp_seconds", dimensions: [], factory: factory)
        Meter(label: "sharebroker_build_info", dimensions: [("version", BrokerBuild.version)], factory: factory).set(1)
    }

    /// One share's answer. `provider` is nil for a name no adapter has.
    func record(_ result: ShareResult, provider: String?, channel: ShareChannel) {
        var key = ShareKey(provider: provider ?? "unknown", operation: "none", channel: channel.rawValue, decision: "none", code: "none")
        switch result {
        case .forwarded(_, _, let decision), .decided(_, let decision, _):
            key.operation = decision.operation ?? "none"
            key.decision = decision.verdict.rawValue
            key.code = decision.code?.rawValue ?? "none"
        case .refused(let problem, let decision):
            if provider != nil { key.operation = decision?.operation ?? "none" }
            key.decision = decision?.verdict.rawValue ?? "none"
            key.code = problem.code
        }
        let factory = self.factory
        Self.handle(shares, key) {
            Counter(label: Self.shareCounter, dimensions: [
                ("provider", key.provider), ("operation", key.operation), ("channel", key.channel),
                ("decision", key.decision), ("code", key.code),
            ], factory: factory)
        }.increment()
    }

    /// One SDK sign-in answered by the broker with a placeholder token (not a share).
    func sdkToken(provider: String) {
        let factory = self.factory
        Self.handle(sdkTokens, provider) {
            Counter(label: "sharebroker_sdk_tokens_total", dimensions: [("provider", provider)], factory: factory)
        }.increment()
    }

    /// One upstream call: its HTTP status, or nil when no response came.
    func upstream(provider: String, status: Int?, elapsed: Duration) {
        let key = UpstreamKey(provider: provider, label: status.map { "\(min(max($0 / 100, 1), 5))xx" } ?? "error")
        let factory = self.factory
        Self.handle(upstreams, key) {
            Timer(label: Self.upstreamTimer, dimensions: [("provider", key.provider), ("status_class", key.label)], factory: factory)
        }.recordNanoseconds(Self.nanoseconds(elapsed))
    }

    /// One committed share-log batch.
    func commit(records: Int, duration: Duration) {
        commitDuration.recordNanoseconds(Self.nanoseconds(duration))
        // A batch of subject or grant writes only appends no record: it is a commit, not a log batch.
        if records > 0 { batchSize.record(records) }
    }

    /// One finished revocation attempt (`acknowledged`, `retry`, `failed`, `manual_required`).
    func revocationAttempt(provider: String, result: String) {
        let key = UpstreamKey(provider: provider, label: result)
        let factory = self.factory
        Self.handle(attempts, key) {
            Counter(label: "sharebroker_revocation_attempts_total", dimensions: [("provider", provider), ("result", result)], factory: factory)
        }.increment()
    }

    /// A revision was installed (at start or by a reload).
    func policyInstalled(_ revision: PolicyRevision) {
        let gauge = Meter(label: "sharebroker_policy_info", dimensions: [("revision", revision.id)], factory: factory)
        gauge.set(1)
        let old = policyInfo.withLock { info in
            defer { info = (revision.id, gauge) }
            return info
        }
        if let old, old.revision != revision.id { old.gauge.destroy() }
        policyLoaded.set(revision.loadedAt.timeIntervalSince1970)
    }

    /// A reload's result: `installed`, `unchanged` or `refused`.
    func policyReload(_ result: String) {
        let factory = self.factory
        Self.handle(reloads, result) {
            Counter(label: "sharebroker_policy_reloads_total", dimensions: [("result", result)], factory: factory)
        }.increment()
    }

    /// One share decided under the shadow policy too, and what would change (labels: adapter
    /// providers, taxonomy purposes and categories, the four change kinds).
    func shadow(candidate: String, provider: String, purpose: String, _ changes: [(category: String, change: ShareChange)]) {
        let factory = self.factory
        let changed = UpstreamKey(provider: candidate, label: changes.isEmpty ? "false" : "true")
        Self.handle(shadowShares, changed) {
            Counter(label: "sharebroker_shadow_shares_total", dimensions: [("candidate", candidate), ("changed", changed.label)],
                    factory: factory)
        }.increment()
        for (category, change) in changes {
            let key = ShadowKey(candidate: candidate,
                                change: ShareChangeTally.Key(provider: provider, purpose: purpose, category: category, change: change))
            Self.handle(shadowChanges, key) {
                Counter(label: "sharebroker_shadow_changes_total", dimensions: [
                    ("candidate", candidate), ("provider", provider), ("purpose", purpose), ("category", category),
                    ("change", change.rawValue),
                ], factory: factory)
            }.increment()
        }
    }

    /// The Prometheus text exposition, after reading the gauges that are read at scrape time.
    func render(queuedWrites: Int?, jobs: [RevocationJobSummary]?, now: Date) -> String {
        if let queuedWrites { queued.set(queuedWrites) }
        if let jobs { setJobGauges(jobs, now: now) }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        var out = ""
        out.reserveCapacity(buffer.count + 2048)
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first,
               let help = Self.help[String(name)] {
                out += "# HELP \(name) \(help)\n"
            }
            out += line
            out += "\n"
        }
        while out.hasSuffix("\n\n") { out.removeLast() }
        return out
    }

    /// The drift of real traffic from the published sharing list, read at scrape time; `nil` when no
    /// list is published (every drift series goes). Labels come from closed sets only: a provider
    /// without an adapter, a purpose or category outside the taxonomy, is `unknown`.
    func setPublishedListDrift(_ drift: [PublishedSharingListReport.Drift]?, bundle: PolicyBundle) {
        var values: [DriftKey: Int] = [:]
        for item in drift ?? [] {
            let key = DriftKey(provider: bundle.adapters[item.provider] != nil ? item.provider : "unknown",
                               purpose: bundle.taxonomy.purposes.contains(item.purpose) ? item.purpose : "unknown",
                               category: bundle.taxonomy.categories[item.category] != nil ? item.category : "unknown",
                               kind: item.kind.rawValue)
            values[key, default: 0] += item.shares
        }
        let factory = self.factory
        func gauge(_ key: DriftKey) -> Meter {
            Meter(label: Self.driftGauge, dimensions: [("provider", key.provider), ("purpose", key.purpose),
                                                       ("category", key.category), ("kind", key.kind)], factory: factory)
        }
        // One scrape at a time, so a series one scrape sets is not removed by another's.
        driftGauges.withLock { previous in
            for (key, shares) in values { gauge(key).set(shares) }
            for key in previous.subtracting(values.keys) { gauge(key).destroy() }
            previous = Set(values.keys)
            let entries = Meter(label: Self.driftEntries, dimensions: [], factory: factory)
            if drift != nil { entries.set(values.count) } else { entries.destroy() }
        }
    }

    private func setJobGauges(_ jobs: [RevocationJobSummary], now: Date) {
        var seen = Set<UpstreamKey>()
        var oldest: [String: Date] = [:]
        for job in jobs {
            let key = UpstreamKey(provider: job.provider, label: job.status.rawValue)
            seen.insert(key)
            jobGauge("sharebroker_revocation_jobs", key).set(job.jobs)
            jobGauge("sharebroker_revocation_job_attempts", key).set(job.attempts)
            if let at = job.oldestRevokedAt { oldest[job.provider] = min(oldest[job.provider] ?? at, at) }
        }
        let providers = Set(jobs.map(\.provider))
        for provider in providers {
            Meter(label: "sharebroker_revocation_oldest_pending_seconds", dimensions: [("provider", provider)], factory: factory)
                .set(oldest[provider].map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
        let gone = jobGauges.withLock { previous in
            defer { previous = seen }
            return previous.subtracting(seen)
        }
        for key in gone {
            jobGauge("sharebroker_revocation_jobs", key).set(0)
            jobGauge("sharebroker_revocation_job_attempts", key).set(0)
        }
    }

    private func jobGauge(_ name: String, _ key: UpstreamKey) -> Meter {
        Meter(label: name, dimensions: [("provider", key.provider), ("status", key.label)], factory: factory)
    }

    /// The handle cached for `key`, made on first use (the registry lookup runs once per label set).
    private static func handle<Key: Hashable, Handle>(_ cache: Locked<[Key: Handle]>, _ key: Key,
                                                      make: () -> Handle) -> Handle {
        cache.withLock { handles in
            if let handle = handles[key] { return handle }
            let handle = make()
            handles[key] = handle
            return handle
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let parts = duration.components
        return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
    }
}

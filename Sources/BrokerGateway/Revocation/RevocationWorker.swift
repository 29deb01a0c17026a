import BrokerCore
import BrokerCredentials
import BrokerCurl
import BrokerService
import Foundation
import Logging
import ServiceLifecycle

/// How the worker retries.
public struct PropagationSettings: Sendable {
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    /// Jobs attempted at the same time.
    public var concurrency: Int
    /// How long an attempt may take before another may start the job again.
    public var lease: Duration
    /// Deletion calls one attempt sends per second at most; an attempt stops (and the job is due again
    /// at once, without counting as a failure) before its pacing would outlast half the lease.
    public var callsPerSecond: Int

    public init(maxAttempts: Int = 10, initialBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(300),
                concurrency: Int = 16, lease: Duration = .seconds(120), callsPerSecond: Int = 50) {
        self.maxAttempts = maxAttempts; self.initialBackoff = initialBackoff; self.maxBackoff = maxBackoff
        self.concurrency = concurrency; self.lease = lease; self.callsPerSecond = max(1, callsPerSecond)
    }

    /// The wait before attempt `attempt + 1`: doubling from `initialBackoff`, at most `maxBackoff`, ±20% jitter.
    func backoff(after attempt: Int) -> Duration {
        let base = initialBackoff * (1 << min(max(attempt - 1, 0), 30))
        let capped = min(base, maxBackoff)
        return capped * Double.random(in: 0.8...1.2)
    }
}

extension BrokerConfig {
    /// The worker's settings from the `revocation` section.
    public var propagation: PropagationSettings {
        PropagationSettings(maxAttempts: revocation.maxAttempts, initialBackoff: .milliseconds(revocation.initialBackoffMs),
                            maxBackoff: .milliseconds(revocation.maxBackoffMs), concurrency: revocation.concurrency,
                            lease: .milliseconds(revocation.leaseMs ?? max(limits.upstreamTimeoutMs * 4, 60_000)),
                            callsPerSecond: revocation.callsPerSecond)
    }
}

/// The durable propagation worker: drains the revocation outbox.
///
/// For each due job it calls the adapter's revocation operation once per distinct
/// rendered call (from the shares' sealed revocation keys), with the provider's
/// credentials and an `Idempotency-Key` header; each acknowledged call is recorded
/// at once, so neither a retry nor a restart sends it again. Every attempt is
/// recorded; failures back off exponentially up to `maxAttempts`, then the job is
/// `failed`. A provider refusing with a 4xx other than 401, 408 and 429 fails the
/// job at once (retrying would not change the answer). A job left `sent` by a
/// stopped broker resumes when the worker starts. Personal values exist only in
/// memory, during the call; logs name revocation ids, providers and counts.
public final class RevocationWorker: Service, Sendable {
    let store: any RevocationStore
    /// Each attempt uses the revision installed when it starts (its revocation call and credentials).
    let policy: ActivePolicy
    let upstream: any UpstreamClient
    let vault: RevocationKeyVault
    let settings: PropagationSettings
    let now: @Sendable () -> Date
    let logger: Logger
    private let wake = WakeSignal()
    private let inFlight = Locked<Set<String>>([])
    private let stopping = Locked(false)

    let metrics: BrokerMetrics

    init(store: any RevocationStore, policy: ActivePolicy, upstream: any UpstreamClient,
         vault: RevocationKeyVault, settings: PropagationSettings, metrics: BrokerMetrics = BrokerMetrics(),
         now: @escaping @Sendable () -> Date, logger: Logger) {
        self.store = store; self.policy = policy; self.upstream = upstream; self.vault = vault
        self.settings = settings; self.metrics = metrics; self.now = now; self.logger = logger
    }

    /// Providers whose adapter has a revocation call: their jobs start `pending`.
    var propagating: Set<String> { policy.current.propagating }

    /// Tells the worker new work may be due (after a revoke), so it need not wait for its next poll.
    public func nudge() { wake.signal() }

    public func run() async throws {
        do {
            let resumed = try await store.resumeInterruptedJobs(at: now())
            if resumed > 0 { logger.notice("revocation jobs interrupted by a stop resume now", metadata: ["jobs": "\(resumed)"]) }
        } catch {
            logger.error("revocation outbox unavailable at start", metadata: ["error": "\(error.message)"])
        }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                var lastPurge = ContinuousClock.now - .seconds(3600)
                while !stopping.snapshot {
                    if ContinuousClock.now - lastPurge > .seconds(60) {
                        lastPurge = ContinuousClock.now
                        await purge()
                    }
                    await startDueJobs(in: &group)
                    await wake.wait(timeout: await nextWait())
                }
            }
        } onGracefulShutdown: {
            self.stopping.withLock { $0 = true }
            self.wake.signal()
        }
    }

    private func startDueJobs(in group: inout DiscardingTaskGroup) async {
        let room = settings.concurrency - inFlight.withLock { $0.count }
        guard room > 0 else { return }
        let due: [PropagationJob]
        do {
            due = try await store.dueJobs(at: now(), limit: room + inFlight.withLock { $0.count })
        } catch {
            logger.error("revocation outbox unavailable", metadata: ["error": "\(error.message)"])
            return
        }
        for job in due {
            let key = job.revocationID + "\u{0}" + job.provider
            let start = inFlight.withLock { running -> Bool in
                guard running.count < settings.concurrency, !running.contains(key) else { return false }
                running.insert(key)
                return true
            }
            guard start else { continue }
            group.addTask {
                await self.attempt(job)
                self.inFlight.withLock { _ = $0.remove(key) }
                self.wake.signal()
            }
        }
    }

    private func nextWait() async -> Duration {
        guard let next = try? await store.nextDueTime() else { return .seconds(1) }
        let seconds = next.timeIntervalSince(now())
        if seconds <= 0 {
            // At capacity, a finishing job signals. Otherwise the due job became due a moment
            // after it was looked for, or was just started and its lease is not written yet.
            return inFlight.withLock { $0.count } >= settings.concurrency ? .seconds(1) : .milliseconds(2)
        }
        return .milliseconds(max(1, min(1000, Int((seconds * 1000).rounded(.up)))))
    }

    private func purge() async {
        do {
            let purged = try await store.purgeExpiredKeys(at: now())
            if purged > 0 { logger.info("revocation keys past their retention deleted", metadata: ["sealed_boxes": "\(purged)"]) }
        } catch {
            logger.error("could not purge expired revocation keys", metadata: ["error": "\(error.message)"])
        }
    }

    /// One attempt of one job. Store failures leave the job leased; it is tried again when the lease ends.
    func attempt(_ job: PropagationJob) async {
        var logger = self.logger
        logger[metadataKey: "revocation.id"] = .string(job.revocationID)
        logger[metadataKey: "revocation.provider"] = .string(job.provider)
        do {
            let started = now()
            let attempt = try await store.beginAttempt(job, at: started, leaseUntil: started.addingTimeInterval(settings.lease.seconds))
            guard attempt > 0 else { return }
            logger[metadataKey: "revocation.attempt"] = .string("\(attempt)")
            let (result, calls) = await propagate(job, attempt: attempt, logger: logger)
            try await store.finishAttempt(job, attempt: attempt, result, calls: calls, at: now())
            metrics.revocationAttempt(provider: job.provider, result: result.label)
            switch result {
            case .acknowledged: logger.info("revocation acknowledged by the provider", metadata: ["revocation.calls": "\(calls)"])
            case .retry(let at, let error):
                logger.warning("revocation attempt failed; will retry",
                               metadata: ["error": "\(error)", "retry_in_ms": "\(Int(at.timeIntervalSince(now()) * 1000))"])
            case .failed(let error): logger.error("revocation failed", metadata: ["error": "\(error)"])
            case .manualRequired(let reason): logger.notice("revocation needs manual follow-up", metadata: ["reason": "\(reason)"])
            }
        } catch {
            logger.error("revocation outbox unavailable", metadata: ["error": "\(error.message)"])
        }
    }

    private enum CallFailure {
        case retryable(String)
        case permanent(String)
    }

    private func propagate(_ job: PropagationJob, attempt: Int, logger: Logger) async -> (PropagationResult, Int) {
        let revision = policy.current
        guard let adapter = revision.bundle.adapters[job.provider], let spec = adapter.revocation else {
            return (.manualRequired(reason: "the adapter has no revocation call"), 0)
        }
        let sealed: [String: StoredRevocationKeys]
        let done: Set<String>
        do {
            sealed = try await store.sealedKeys(revocationID: job.revocationID, provider: job.provider)
            done = try await store.acknowledgedCalls(revocationID: job.revocationID, provider: job.provider)
        } catch {
            return (retry(attempt, "revocation store: \(error.message)"), 0)
        }
        var shares: [[String: [String]]] = []
        var unreadable = 0
        // Shares of the job with no stored keys (never carried any, or past retention), and shares whose keys render no call.
        var uncovered = job.shareIDs.filter { sealed[$0] == nil }.count
        // Shares that sent the same key set name one box: it is opened once and stands for them all.
        var opened: [Int64: [String: [String]]?] = [:]
        for shareID in sealed.keys.sorted() {
            let stored = sealed[shareID]!
            let keys: [String: [String]]?
            if let print = stored.keySet {
                if let known = opened[print] {
                    keys = known
                } else {
                    keys = try? vault.open(stored.sealed, keySet: print, provider: job.provider)
                    opened[print] = keys
                    if let keys { shares.append(keys) }
                }
            } else {
                keys = try? vault.open(stored.sealed, shareID: shareID)
                if let keys { shares.append(keys) }
            }
            guard let keys else { unreadable += 1; continue }
            if spec.calls(forShares: [keys]).isEmpty { uncovered += 1 }
        }
        if unreadable > 0 {
            logger.error("revocation keys that do not open under the configured key (was revocation.key changed?)",
                         metadata: ["shares": "\(unreadable)"])
        }
        let calls = spec.calls(forShares: shares)
        guard !calls.isEmpty else {
            return (.manualRequired(reason: unreadable > 0 ? "the stored revocation keys could not be decrypted"
                                    : "no revocation keys are stored for these shares (none were sent, or retention has passed)"), 0)
        }
        guard let injector = revision.injectors[job.provider] else {
            return (retry(attempt, "credential_unavailable"), calls.count)
        }
        var failure: CallFailure?
        // Pacing: at most `callsPerSecond` calls in each second of the attempt, and no more calls than
        // fit in half the lease; the rest wait for the next attempt, which is due at once.
        let budget = max(1, settings.callsPerSecond * max(1, Int(settings.lease.seconds / 2)))
        var sent = 0
        var windowStart = ContinuousClock.now
        var deferred = 0
        for call in calls {
            let key = vault.idempotencyKey(revocationID: job.revocationID, provider: job.provider, call: call)
            if done.contains(key) { continue }
            if sent >= budget { deferred += 1; continue }
            if sent > 0 && sent % settings.callsPerSecond == 0 {
                try? await Task.sleep(until: windowStart + .seconds(1), clock: .continuous)
                windowStart = ContinuousClock.now
            }
            sent += 1
            var headers = [HTTPHeaderLine("Idempotency-Key", key)]
            if let mediaType = call.bodyFormat.mediaType {
                headers.append(HTTPHeaderLine("Content-Type", call.bodyFormat == .json ? mediaType + "; charset=utf-8" : mediaType))
            }
            var request = OutboundRequest(method: call.method, upstream: adapter.upstream, path: adapter.upstream.basePath + call.path,
                                          headers: headers, body: call.body, bodyFormat: call.bodyFormat)
            request.http2Only = adapter.http2Only
            do {
                try await injector.authorize(&request, credentialFields: [])
                let response = try await upstream.send(request.upstreamRequest())
                switch response.status {
                case 200..<300:
                    try await store.acknowledgeCall(revocationID: job.revocationID, provider: job.provider, key: key,
                                                    status: response.status, at: now())
                case 401:
                    await injector.invalidate()
                    failure = failure ?? .retryable("provider answered HTTP 401")
                case 408, 429, 500...:
                    if case .permanent = failure {} else { failure = .retryable("provider answered HTTP \(response.status)") }
                default:
                    failure = .permanent("provider refused the deletion call with HTTP \(response.status)")
                }
            } catch let error as CredentialError {
                failure = failure ?? .retryable(error.code.rawValue)
            } catch let error as UpstreamError {
                failure = failure ?? .retryable(error.code.rawValue)
            } catch let error as LogUnavailable {
                failure = failure ?? .retryable("revocation store: \(error.message)")
            } catch {
                failure = failure ?? .retryable("internal error")
            }
        }
        if failure == nil && deferred > 0 {
            return (.retry(at: now(), error: "paced: \(deferred) deletion call(s) left for the next attempt"), sent)
        }
        switch failure {
        case nil where unreadable + uncovered > 0:
            // What could be sent was acknowledged; the rest must be asked for by hand.
            return (.manualRequired(reason: "\(calls.count) deletion call(s) acknowledged; \(unreadable + uncovered) share(s) have no usable revocation keys (never carried, past retention, or unreadable)"),
                    calls.count)
        case nil: return (.acknowledged, calls.count)
        case .permanent(let message)?: return (.failed(error: message), calls.count)
        case .retryable(let message)?: return (retry(attempt, message), calls.count)
        }
    }

    private func retry(_ attempt: Int, _ message: String) -> PropagationResult {
        guard attempt < settings.maxAttempts else {
            return .failed(error: "gave up after \(attempt) attempts: \(message)")
        }
        return .retry(at: now().addingTimeInterval(settings.backoff(after: attempt).seconds), error: message)
    }
}

extension Duration {
    var seconds: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}

extension PropagationResult {
    /// The attempt's result as `/metrics` counts it.
    var label: String {
        switch self {
        case .acknowledged: "acknowledged"
        case .retry: "retry"
        case .failed: "failed"
        case .manualRequired: "manual_required"
        }
    }
}

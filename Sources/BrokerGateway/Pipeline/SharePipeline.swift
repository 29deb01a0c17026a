import BrokerCore
import BrokerFields
import BrokerService
import BrokerCredentials
import BrokerCurl
import Foundation
import Logging

/// What the pipeline answers for one share.
public enum ShareResult: Sendable {
    /// Forwarded: the provider's response, the share id and the verdict (`allowed` or `redacted`).
    case forwarded(UpstreamResponse, shareID: String, decision: ShareDecision)
    /// An SDK decision that allows the share: the SDK sends the payload itself.
    case decided(shareID: String, decision: ShareDecision, payload: [UInt8])
    /// Refused or failed: nothing was sent (or, for upstream failures, nothing came back).
    case refused(Problem, decision: ShareDecision?)
}

/// A sealed key set's place in `SharePipeline.sealedKeySets`.
struct SealedKeySetSlot: Hashable {
    let provider: String
    let plain: [UInt8]
}

/// The share pipeline: decide → commit the intent durably → forward → record the outcome → respond.
///
/// Invariants (docs/concepts.md, "The promise"): nothing leaves before its intent is durable; if the log
/// cannot be written the share is refused with 503 `log_unavailable`; what is
/// forwarded is the broker's own re-serialisation of what was checked; the
/// provider's credentials are added here and never come from the caller.
public final class SharePipeline: Sendable {
    /// The policy revision each share takes at its start (and keeps, whatever a reload installs meanwhile).
    public let policy: ActivePolicy
    let log: any ShareLog
    let grants: any GrantStore
    let upstream: any UpstreamClient
    let outcomes: OutcomeRecorder
    let fingerprinter: Fingerprinter
    /// Seals the values of `revocation_key` fields; `nil` keeps none (revocations then end in `manual_required`).
    let vault: RevocationKeyVault?
    let node: String
    let now: @Sendable () -> Date
    let logger: Logger
    let decoder = StrictPayloadDecoder()
    /// One JSON line per share on stdout for a log shipper (`log_format: json`), or nothing.
    let decisionLines: DecisionLines?
    /// Counts shares, upstream latencies and refusals for `/metrics`.
    let metrics: BrokerMetrics
    /// Refusals before logging (no valid token, an unknown provider, a subject id outside the rule):
    /// one application-log line per interval, counted in full by `metrics`.
    let unloggedRefusals = NoticeThrottle()
    /// Key sets' prints and sealed boxes by provider and plain text, reused by every share that sends
    /// the same set (see `sealedRevocationKeys`); emptied when it reaches 4,096. The plain texts are
    /// values in flight through this process anyway; the cache never leaves it.
    let sealedKeySets = Locked<[SealedKeySetSlot: (print: Int64, sealed: [UInt8])]>([:])

    public init(policy: ActivePolicy, log: any ShareLog, grants: any GrantStore, upstream: any UpstreamClient,
                outcomes: OutcomeRecorder, fingerprinter: Fingerprinter,
                vault: RevocationKeyVault? = nil, node: String, now: @escaping @Sendable () -> Date = Date.init, logger: Logger,
                decisionLines: DecisionLines? = nil, metrics: BrokerMetrics = BrokerMetrics()) {
        self.policy = policy; self.log = log; self.grants = grants; self.upstream = upstream
        self.outcomes = outcomes; self.fingerprinter = fingerprinter; self.vault = vault; self.node = node; self.now = now
        self.logger = logger; self.decisionLines = decisionLines; self.metrics = metrics
    }

    /// The bundle of the revision installed now (each share reads `policy.current` once instead).
    public var bundle: PolicyBundle { policy.current.bundle }

    /// Runs one share through the pipeline. Never throws: every failure is a `Problem`.
    public func share(_ request: ShareRequest, channel: ShareChannel) async -> ShareResult {
        if let refused = refusedBeforeLogging(request, channel: channel) { return refused }
        let revision = policy.current
        let known = revision.providers.contains(request.provider)
        let started = ContinuousClock.now
        let result = await decideAndSend(request, channel: channel, revision: revision, known: known)
        finish(request, channel: channel, knownProvider: known, result, latency: ContinuousClock.now - started)
        return result
    }

    /// The answer to a share without a valid caller or for a provider no adapter serves, decided
    /// without suspending (it reads no grants and writes no record), or `nil` for every other share.
    /// The event-loop handler answers such requests (a flood of bad tokens among them) in place,
    /// without starting a task.
    public func refusedBeforeLogging(_ request: ShareRequest, channel: ShareChannel) -> ShareResult? {
        let revision = policy.current
        let known = revision.providers.contains(request.provider)
        guard request.caller == nil || !known else { return nil }
        let started = ContinuousClock.now
        var request = request
        request.time = now()
        let decision = revision.engine.evaluate(request, context: .none, decoder: decoder)
        var logger = ShareLogger(logger: self.logger, provider: request.provider, knownProvider: known,
                                 fingerprinter: fingerprinter, channel: channel.rawValue, caller: request.caller?.id)
        logger.verdict = decision.verdict.rawValue
        logger.operation = decision.operation
        let result = refuseBeforeLogging(decision, logger)
        finish(request, channel: channel, knownProvider: known, result, latency: ContinuousClock.now - started)
        return result
    }

    /// Metrics and the decision line of a share that has its answer.
    private func finish(_ request: ShareRequest, channel: ShareChannel, knownProvider known: Bool, _ result: ShareResult,
                        latency: Duration) {
        metrics.record(result, provider: known ? request.provider : nil, channel: channel)
        decisionLines?.emit(request, knownProvider: known, channel: channel, result, latency: latency)
    }

    /// Unauthenticated callers, unknown providers and subject ids outside the rule are not logged
    /// as shares (they would let anyone fill the log); they are counted in the application log.
    private func refuseBeforeLogging(_ decision: ShareDecision, _ logger: ShareLogger) -> ShareResult {
        unloggedRefusals.notice(self.logger) { folded in
            logger.notice("share refused before logging", metadata: [
                "share.code": "\(decision.code?.rawValue ?? "-")", "refusals.folded": "\(folded)",
            ])
        }
        return .refused(Problem(decision: decision, shareID: nil), decision: decision)
    }

    private func decideAndSend(_ request: ShareRequest, channel: ShareChannel, revision: PolicyRevision,
                               known: Bool) async -> ShareResult {
        var request = request
        request.time = now()
        // The share's log metadata is gathered as plain values and turned into `Logger.Metadata`
        // only when a line is emitted: setting it on the logger re-renders the handler's
        // metadata on every set (~5 µs each), and most shares emit no line.
        var logger = ShareLogger(logger: self.logger, provider: request.provider, knownProvider: known,
                                 fingerprinter: fingerprinter, channel: channel.rawValue, caller: request.caller?.id)

        // Steps 1–4 name the subject (from the request, or the body's subject field); its grants are
        // read only when the request got past the caller checks.
        let prepared = revision.engine.prepare(request, decoder: decoder)
        var context = SubjectContext.none
        if let caller = request.caller, caller.mayShare(with: request.provider), known, let subject = prepared.subject {
            do {
                context = try await grants.context(subject: subject, provider: request.provider)
            } catch {
                logger.error("grant store unavailable", metadata: ["error": "\(error.message)"])
                return .refused(.logUnavailable(error.message), decision: nil)
            }
        }

        let decision = revision.engine.decide(prepared, request, context: context)
        logger.verdict = decision.verdict.rawValue
        logger.operation = decision.operation

        guard let caller = request.caller, known, decision.code != .invalidSubject else {
            return refuseBeforeLogging(decision, logger)
        }

        let shareID = ShareID.make(at: request.time)
        logger.shareID = shareID
        revision.shadow?.observe(request, context: context, decision: decision, shareID: shareID, decoder: decoder, metrics: metrics)
        let entry = makeEntry(decision, shareID: shareID, caller: caller.id, channel: channel, time: request.time,
                              revision: revision)
        do {
            switch try await log.appendIntent(entry) {
            case .committed:
                break
            case .grantRevoked(let grantID, _):
                logger.notice("share refused by the revocation fence", metadata: ["grant.id": "\(grantID)"])
                var refused = decision
                refused.verdict = .blocked
                refused.code = .consentRevoked
                refused.message = "grant \(grantID) was revoked while the share was being decided"
                return .refused(Problem(decision: refused, shareID: shareID), decision: refused)
            }
        } catch {
            logger.error("share log unavailable: refusing", metadata: ["error": "\(error.message)"])
            return .refused(.logUnavailable(error.message), decision: decision)
        }

        guard decision.verdict != .blocked else {
            logger.debug("share blocked", metadata: ["share.code": "\(decision.code?.rawValue ?? "-")"])
            return .refused(Problem(decision: decision, shareID: shareID), decision: decision)
        }

        if channel == .sdk {
            let payload = decision.forwarded(.body) ?? []
            outcomes.record(ShareOutcome(shareID: shareID, time: now(), result: .delegated))
            logger.debug("share decided for the SDK")
            return .decided(shareID: shareID, decision: decision, payload: payload)
        }

        // Forward.
        let started = ContinuousClock.now
        guard var outbound = outboundRequest(decision, revision: revision) else {
            outcomes.record(ShareOutcome(shareID: shareID, time: now(), result: .error, error: "internal"))
            return .refused(Problem(status: 500, code: "internal_error", detail: "the operation could not be rendered",
                                    shareID: shareID), decision: decision)
        }
        // A provider whose credentials could not be set up at start is never called without them.
        guard let injector = revision.injectors[decision.provider] else {
            outcomes.record(ShareOutcome(shareID: shareID, time: now(), result: .error, error: "credential_unavailable"))
            return .refused(Problem(status: 502, code: "credential_unavailable",
                                    detail: "the broker has no usable credentials for \(decision.provider); see its start-up log",
                                    shareID: shareID), decision: decision)
        }
        let credentialFields = decision.operation.flatMap { revision.credentialFields[decision.provider]?[$0] } ?? []
        do {
            try await injector.authorize(&outbound, credentialFields: credentialFields)
        } catch {
            logger.error("provider credentials unavailable", metadata: ["error": "\(error.message)"])
            outcomes.record(ShareOutcome(shareID: shareID, time: now(), result: .error, error: error.code.rawValue))
            return .refused(Problem(status: 502, code: error.code.rawValue, detail: error.message, shareID: shareID),
                            decision: decision)
        }
        do {
            let response = try await upstream.send(outbound.upstreamRequest())
            let elapsed = ContinuousClock.now - started
            metrics.upstream(provider: decision.provider, status: response.status, elapsed: elapsed)
            let latency = Self.milliseconds(elapsed)
            if response.status == 401 { await injector.invalidate() }
            var outcome = ShareOutcome(shareID: shareID, time: now(), result: .ok, upstreamStatus: response.status, latencyMs: latency)
            if let keys = responseRevocationKeys(decision, response, time: request.time, revision: revision) {
                outcome.revocationKeys = keys
                outcome.provider = decision.provider
                outcome.grantIDs = decision.grantIDs
            }
            outcomes.record(outcome)
            logger.debug("share forwarded", metadata: ["upstream.status": "\(response.status)", "share.latency_ms": "\(latency)"])
            return .forwarded(response, shareID: shareID, decision: decision)
        } catch let error as UpstreamError {
            let elapsed = ContinuousClock.now - started
            metrics.upstream(provider: decision.provider, status: nil, elapsed: elapsed)
            let latency = Self.milliseconds(elapsed)
            outcomes.record(ShareOutcome(shareID: shareID, time: now(), result: .error, latencyMs: latency,
                                             error: error.code.rawValue))
            logger.warning("upstream failed", metadata: ["upstream.error": "\(error.code.rawValue)"])
            let status = error.code == .timeout ? 504 : 502
            return .refused(Problem(status: status, code: error.code == .timeout ? "upstream_timeout" : "upstream_unreachable",
                                    detail: error.message, shareID: shareID), decision: decision)
        } catch {
            outcomes.record(ShareOutcome(shareID: shareID, time: now(), result: .error, error: "internal"))
            return .refused(Problem(status: 502, code: "upstream_unreachable", detail: "the upstream call failed",
                                    shareID: shareID), decision: decision)
        }
    }

    /// A name the caller typed (`/v1/proxy/13800138000-Ann-Li/…`, a proxied host) as the
    /// application log may show it: only its length and a keyed fingerprint.
    static func unknownName(_ name: String, _ fingerprinter: Fingerprinter) -> String {
        "<unknown:\(name.utf8.count)B:" + fingerprinter.fingerprint(category: "log-name", value: .string(name)).prefix(12) + ">"
    }

    func operation(of decision: ShareDecision, in bundle: PolicyBundle) -> ProviderOperation? {
        guard let name = decision.operation else { return nil }
        return bundle.adapters[decision.provider]?.operation(named: name)
    }

    /// The request the broker sends: the adapter's upstream, the operation's path with the
    /// decided parameters, the re-serialised query and body, and only the forwarded headers.
    func outboundRequest(_ decision: ShareDecision, revision: PolicyRevision) -> OutboundRequest? {
        guard let adapter = revision.bundle.adapters[decision.provider],
              let operation = operation(of: decision, in: revision.bundle) else { return nil }
        var values: [String: String] = [:]
        for (name, value) in decision.pathParameters { values[name] = value }
        guard let path = operation.path.render(values) else { return nil }
        let query = decision.forwarded(.query).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var headers = decision.forwardedHeaders.map { HTTPHeaderLine($0.name, $0.value) }
        var body: [UInt8] = []
        if let mediaType = operation.body.mediaType {
            headers.append(HTTPHeaderLine("Content-Type", operation.body == .json ? mediaType + "; charset=utf-8" : mediaType))
            body = decision.forwarded(.body) ?? []
        }
        var outbound = OutboundRequest(method: operation.method, upstream: adapter.upstream,
                                       path: adapter.upstream.basePath + path, query: query, headers: headers, body: body,
                                       bodyFormat: operation.body)
        outbound.http2Only = adapter.http2Only
        return outbound
    }

    func makeEntry(_ decision: ShareDecision, shareID: String, caller: String, channel: ShareChannel,
                   time: Date, revision: PolicyRevision) -> ShareEntry {
        let taxonomy = revision.bundle.taxonomy
        /// The category a field's value is fingerprinted under; `nil` for credentials and non-personal fields.
        func printed(_ field: FieldDecision) -> String? {
            guard field.reason != .credentialField else { return nil }
            let personal = field.category.map { taxonomy.categories[$0]?.personal ?? true } ?? true
            return personal ? field.category ?? "" : nil
        }
        // A value sent twice under one category (a push's title in `notification` and in
        // `android.notification`) is printed once: an HMAC costs ~5k, the search of a share's few prints far less.
        var prints: [(category: String, value: FieldValue, print: String)] = []
        func recordPrint(_ category: String, _ value: FieldValue) -> String {
            if let known = prints.first(where: { $0.value == value && $0.category == category }) { return known.print }
            let print = fingerprinter.recordPrint(category: category, value: value)
            prints.append((category, value, print))
            return print
        }
        // A repeated path folds into one entry with a count (docs/share-log.md: a record is bounded whatever the body).
        let fields = LoggedField.folding(decision.fields, single: { field in
            var logged = LoggedField(location: field.location, path: loggedPath(field), category: field.category,
                                     action: field.action, reason: field.reason ?? field.minimisedFrom?.reason,
                                     fingerprint: printed(field).map { recordPrint($0, field.value) },
                                     minimisedFrom: field.minimisedFrom?.category)
            logged.detector = field.detector
            return logged
        }, shortPrint: { field in
            printed(field).map { fingerprinter.shortPrint(category: $0, value: field.value) }
        })
        var entry = ShareEntry(shareID: shareID, time: time, node: node, caller: caller, channel: channel,
                               provider: decision.provider, operation: decision.operation, purpose: decision.purpose,
                               subject: loggedSubject(decision), decision: decision.verdict, code: decision.code,
                               reasons: decision.reasons, fields: fields, grantIDs: decision.grantIDs,
                               contractVersion: decision.contractVersion, contractHash: decision.contractHash,
                               adapterHash: decision.adapterHash, policyRevision: decision.policyRevision)
        entry.revocationKeys = sealedRevocationKeys(decision, time: time, bundle: revision.bundle)
        return entry
    }

    /// The subject as the log names it: an id the broker does not know only by its keyed fingerprint
    /// (`subject_unknown`, or a share refused before the subject step about an id it has no record of).
    func loggedSubject(_ decision: ShareDecision) -> String? {
        guard let subject = decision.subject, decision.code == .subjectUnknown || !decision.subjectKnown else { return decision.subject }
        return fingerprinter.unknownSubjectMarker(subject)
    }

    /// The values of the `revocation_key` fields this share sends, sealed, kept until the
    /// contract's retention has passed (or the revocation they serve is acknowledged).
    ///
    /// The store keeps one box per grant and key set, so a box is reused: shares that send the same
    /// values (a push token, for months) find their set's print and box in `sealedKeySets`, by their
    /// plain text, without an HMAC or a seal per share. The expiry is rounded up to the hour, so the
    /// store rewrites a set's expiry at most once an hour instead of on every share that sends it
    /// (keys outlive their retention by under an hour).
    func sealedRevocationKeys(_ decision: ShareDecision, time: Date, bundle: PolicyBundle,
                              adding extra: [String: [String]] = [:]) -> SealedRevocationKeys? {
        guard let vault, decision.verdict != .blocked else { return nil }
        var keys = extra.flatMap { name, values in values.map { (name: name, value: $0) } }
        for index in decision.fields.indices where decision.fields[index].revocationKey && decision.fields[index].action.isSent {
            guard let name = decision.fields[index].revocationKeyName else { continue }
            keys.append((name, decision.fields[index].value.canonicalText))
        }
        guard !keys.isEmpty else { return nil }
        let slot = SealedKeySetSlot(provider: decision.provider, plain: RevocationKeyVault.plainText(keys))
        let (print, sealed) = sealedKeySets.read { $0[slot] } ?? {
            let set = vault.keySet(plain: slot.plain)
            let sealed = (set.print, vault.seal(set, provider: decision.provider))
            sealedKeySets.withLock { cache in
                if cache.count >= 4_096 { cache.removeAll(keepingCapacity: true) }
                cache[slot] = sealed
            }
            return sealed
        }()
        let retentionDays = bundle.contracts[decision.provider]?.retentionDays ?? 0
        let expires = (time.timeIntervalSince1970 + TimeInterval(retentionDays) * 86_400) / 3_600
        return SealedRevocationKeys(sealed: sealed, keySet: print,
                                    expiresAt: Date(timeIntervalSince1970: expires.rounded(.up) * 3_600))
    }

    /// After a 2xx answer to an operation with `response_revocation_keys`: the share's keys sealed
    /// again with those members of the answer (`response.NAME`), for the outcome to store; nil when
    /// the operation takes none from its answer or the answer holds none of them.
    func responseRevocationKeys(_ decision: ShareDecision, _ response: UpstreamResponse, time: Date,
                                revision: PolicyRevision) -> SealedRevocationKeys? {
        guard (200..<300).contains(response.status), let name = decision.operation,
              let names = revision.responseRevocationKeys[decision.provider]?[name],
              let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] else { return nil }
        var found: [String: [String]] = [:]
        for name in names {
            if let value = object[name] as? String, !value.isEmpty { found["response." + name] = [value] }
        }
        guard !found.isEmpty else { return nil }
        return sealedRevocationKeys(decision, time: time, bundle: revision.bundle, adding: found)
    }

    /// The path as the log keeps it: declared keys as written, but keys the caller chose
    /// (matched by `*`, or undeclared) only as a short keyed fingerprint, since a key can
    /// itself be personal data (`{"13800138000": …}`) and the log is never erased.
    func loggedPath(_ field: FieldDecision) -> String {
        func keyPrint(_ text: String) -> String {
            "<k:" + fingerprinter.fingerprint(category: "path-key", value: .string(text)).prefix(12) + ">"
        }
        guard let declared = field.declaredAs, declared.segments.count == field.path.segments.count else {
            let keys = field.path.segments.contains { if case .key = $0 { return true } else { return false } }
            return keys ? "<undeclared:" + fingerprinter.fingerprint(category: "path", value: .string(field.path.description)).prefix(16) + ">"
                : field.path.description
        }
        // Keys the declaration names are written as they are; keys a wildcard matched, only as prints.
        return field.path.rendered { position in
            guard case .key(let key) = field.path.segments[position] else { return nil }
            if case .key = declared.segments[position] { return nil }
            return keyPrint(key.string)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// One share's application-log context: the metadata every line of the share carries, built
/// only for lines the logger's level lets through. Never holds a field value.
struct ShareLogger {
    let logger: Logger
    /// Shown as is when an adapter has it, else only as `SharePipeline.unknownName` (computed per emitted line).
    let provider: String
    let knownProvider: Bool
    let fingerprinter: Fingerprinter
    let channel: String
    let caller: String?
    var verdict: String?
    var operation: String?
    var shareID: String?

    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var all = extra
        all["share.provider"] = .string(knownProvider ? provider : SharePipeline.unknownName(provider, fingerprinter))
        all["share.channel"] = .string(channel)
        if let caller { all["share.caller"] = .string(caller) }
        if let verdict { all["share.verdict"] = .string(verdict) }
        if let operation { all["share.operation"] = .string(operation) }
        if let shareID { all["share.id"] = .string(shareID) }
        return all
    }

    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
             metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        guard logger.logLevel <= level else { return }
        logger.log(level: level, message(), metadata: metadata(extra()))
    }

    func debug(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        log(.debug, message(), metadata: metadata())
    }
    func notice(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        log(.notice, message(), metadata: metadata())
    }
    func warning(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        log(.warning, message(), metadata: metadata())
    }
    func error(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        log(.error, message(), metadata: metadata())
    }
}

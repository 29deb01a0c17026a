import BrokerFields
import Foundation

/// Decides a share: the rules of docs/concepts.md ("How a share is decided"), in their order, as a pure function of its inputs.
///
/// `evaluate` performs no I/O, reads no clock and throws nothing: the time is in
/// the request, the subject's grants are passed in, and every outcome, a refusal
/// included, is a `ShareDecision`. The first failing step decides the code; field
/// checks (step 7) look at every field so the decision lists all denials.
public struct PolicyEngine: Sendable {
    public var bundle: PolicyBundle
    /// Where the broker's operator is; a contract elsewhere is cross-border unless the subject's region matches it.
    public var homeRegion: String
    /// Subjects younger than this are minors.
    public var minorAge: Int
    public var limits: BodyLimits

    public init(bundle: PolicyBundle, homeRegion: String = "CN", minorAge: Int = 18, limits: BodyLimits = BodyLimits()) {
        self.bundle = bundle; self.homeRegion = homeRegion; self.minorAge = minorAge; self.limits = limits
    }

    /// Headers that are never fields and never forwarded from the caller.
    static let transportHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "authorization", "cookie", "cookie2", "set-cookie", "host", "content-length",
        "content-type", "expect",
    ]

    /// Steps 1–4 of a share, decided before the subject's grants are read: the caller, the operation,
    /// the body, the subject and the purpose. The subject may be in the body (an adapter's `subject: true`
    /// field), so whose grants to read is known only here; `decide` takes the rest with those grants.
    public struct Prepared: Sendable {
        public fileprivate(set) var decision: ShareDecision
        /// `nil` once a step has refused the share.
        fileprivate var operation: ProviderOperation?
        fileprivate var adapter: Adapter?
        /// The subject whose grants `decide` needs: a valid id, or `nil`.
        public var subject: String? { decision.subject }
    }

    public func evaluate(_ request: ShareRequest, context: SubjectContext, decoder: some PayloadDecoder) -> ShareDecision {
        decide(prepare(request, decoder: decoder), request, context: context)
    }

    /// Steps 1–4 (`Prepared`).
    public func prepare(_ request: ShareRequest, decoder: some PayloadDecoder) -> Prepared {
        var decision = ShareDecision(provider: request.provider)
        decision.policyRevision = bundle.revision
        // The subject the caller named (a valid id), so that a share refused before step 4 is still
        // recorded under it and found in its history (an id the broker does not know, by its fingerprint).
        if let subject = request.subject, SubjectID.isValid(subject) { decision.subject = subject }
        func refuse(_ step: Int, _ code: ReasonCode, _ message: String) -> Prepared {
            Prepared(decision: Self.refused(decision, step, code, message))
        }

        // 1. The caller: authenticated, permitted for the provider (and the purpose, when named).
        guard let caller = request.caller else {
            return refuse(1, .unauthenticated, "the caller did not present a valid token")
        }
        guard caller.mayShare(with: request.provider) else {
            return refuse(1, .callerNotPermitted, "caller \(caller.id) may not share with provider \(request.provider)")
        }
        if let purpose = request.purpose, !caller.mayShare(for: purpose) {
            return refuse(1, .callerNotPermitted, "caller \(caller.id) may not share for purpose \(purpose)")
        }

        // 2. Provider and operation.
        guard let adapter = bundle.adapters[request.provider] else {
            return refuse(2, .unknownProvider, "no adapter for provider \(request.provider)")
        }
        decision.adapterHash = adapter.contentHash
        let operation: ProviderOperation
        var rawQuery: String?
        switch request.target {
        case .operation(let name, let query):
            guard let found = adapter.operation(named: name) else {
                return refuse(2, .unknownOperation, "provider \(adapter.provider) has no operation \(name)")
            }
            operation = found
            rawQuery = query
        case .http(let method, let path, let query):
            guard let (found, params) = match(adapter, method: method, path: path, query: query, headers: request.headers) else {
                return refuse(2, .unknownOperation,
                              "provider \(adapter.provider) has no operation for \(method) \(Self.safePath(path))")
            }
            operation = found
            decision.pathParameters = params
            rawQuery = query
        }
        decision.operation = operation.name

        // 3. Body: media type, size, strict validity (and the query string).
        if case .http = request.target {
            if let problem = mediaTypeProblem(operation, contentType: request.contentType, bodyCount: request.body.count) {
                return refuse(3, .unsupportedMediaType, problem)
            }
        }
        if let name = duplicatedHeader(operation, request.headers) {
            return refuse(3, .duplicateHeader, "header \(name) is sent more than once; the operation reads it once")
        }
        if let name = malformedHeader(operation, request.headers) {
            return refuse(3, .malformedHeader, "header \(name) is not valid UTF-8 text (or holds a control character)")
        }
        if request.body.count > limits.maxBytes {
            return refuse(3, .bodyTooLarge, "the body has \(request.body.count) bytes; the limit is \(limits.maxBytes)")
        }
        var limits = self.limits
        if let maxFields = operation.maxFields { limits.maxFields = min(limits.maxFields, maxFields) }
        if operation.body != .none && !(operation.rpcParameters && request.body.isEmpty) {
            switch decoder.decodeBody(request.body, format: operation.body, limits: limits, schema: operation.schema(.body)) {
            case .success(let body): decision.body = body
            case .failure(let failure): return refuse(3, failure.code, failure.message)
            }
        }
        if let rawQuery, !rawQuery.isEmpty {
            switch decoder.decodeQuery(rawQuery, limits: limits, schema: operation.schema(.query)) {
            case .success(let query): decision.query = query
            case .failure(let failure): return refuse(3, failure.code, "query string: " + failure.message)
            }
        }
        if let problem = tooManyItems(operation, decision) { return refuse(3, .tooManyFields, problem) }

        // 4. Subject and purpose. The caller names the subject (X-Share-Subject, the proxy user name),
        // or the body does, in the operation's subject field; both may, if they agree.
        var subjectID = request.subject
        if let field = operation.subjectField, let body = decision.body {
            let schema = operation.schema(.body)
            if let occurrence = body.fields.first(where: { schema.match($0.path)?.pattern == field }) {
                guard case .string(let named) = occurrence.value, SubjectID.isValid(named) else {
                    return refuse(4, .invalidSubject, "the subject field \(field) must hold a subject id: \(SubjectID.rule)")
                }
                if let subjectID, subjectID != named {
                    return refuse(4, .subjectMismatch,
                                  "the subject field \(field) names another subject than X-Share-Subject or the proxy user name")
                }
                subjectID = named
            }
        }
        guard let subjectID, !subjectID.isEmpty else {
            return refuse(4, .subjectMissing, operation.subjectField.map { "X-Share-Subject or the body's \($0) is required" }
                          ?? "X-Share-Subject is required")
        }
        guard SubjectID.isValid(subjectID) else {
            return refuse(4, .invalidSubject, "the subject id must be \(SubjectID.rule)")
        }
        decision.subject = subjectID
        let purpose: String
        if let named = request.purpose {
            guard operation.purposes.contains(named) else {
                return refuse(4, .purposeNotAllowed,
                              "operation \(operation.name) allows \(operation.purposes.joined(separator: ", ")), not \(named)")
            }
            purpose = named
        } else if operation.purposes.count == 1 {
            purpose = operation.purposes[0]
            guard caller.mayShare(for: purpose) else {
                return refuse(4, .callerNotPermitted, "caller \(caller.id) may not share for purpose \(purpose)")
            }
        } else {
            return refuse(4, .purposeMissing,
                          "operation \(operation.name) serves several purposes; name one in X-Share-Purpose")
        }
        decision.purpose = purpose
        return Prepared(decision: decision, operation: operation, adapter: adapter)
    }

    /// Steps 5–8 of a prepared share, with the subject's grants (`context`).
    public func decide(_ prepared: Prepared, _ request: ShareRequest, context: SubjectContext) -> ShareDecision {
        var decision = prepared.decision
        decision.subjectKnown = context.isKnown
        guard let operation = prepared.operation, let adapter = prepared.adapter,
              let subjectID = decision.subject, let purpose = decision.purpose else { return decision }
        func refuse(_ step: Int, _ code: ReasonCode, _ message: String) -> ShareDecision {
            Self.refused(decision, step, code, message)
        }

        // 5. The contract in force, and the purpose in it.
        let today = CalendarDay(request.time)
        guard let contract = bundle.contracts[adapter.provider], contract.effective <= today else {
            return refuse(5, .contractMissing, "no contract with \(adapter.provider) is in force on \(today)")
        }
        decision.contractVersion = contract.version
        decision.contractHash = contract.contentHash
        if let expires = contract.expires, expires < today {
            return refuse(5, .contractExpired, "the contract with \(adapter.provider) expired on \(expires)")
        }
        guard contract.purposes[purpose] != nil else {
            return refuse(5, .purposeOutOfContract, "the contract with \(adapter.provider) does not cover \(purpose)")
        }

        // 6. The subject: known, not deleted, not a minor.
        guard context.isKnown else {
            return refuse(6, .subjectUnknown, "the broker has no record of this subject; record their consent first")
        }
        if context.subject?.deletedAt != nil {
            return refuse(6, .subjectDeleted, "the subject's account was deleted; nothing more is shared about them")
        }
        if let subject = context.subject, subject.isMinor(on: today, age: minorAge) {
            return refuse(6, .minorSubject, "the subject is a minor; nothing about minors is shared")
        }

        // 7. Each field.
        var checker = CategoryChecker(
            taxonomy: bundle.taxonomy, contract: contract, purpose: purpose, provider: adapter.provider,
            subject: subjectID, time: request.time,
            crossBorder: contract.region != (context.subject?.region ?? homeRegion), grants: context.grants,
            privacy: bundle.privacyPolicy)
        var blocking: FieldDecision?
        var detected: (field: FieldDecision, finding: PersonalDataDetector.Finding)?
        func check(_ occurrence: FieldOccurrence, _ schema: FieldSchema) {
            var field = FieldDecision(location: occurrence.location, path: occurrence.path, declaredAs: nil, category: nil,
                                      action: .sent, reason: nil, grantID: nil, revocationKey: false,
                                      value: occurrence.value)
            if let declaration = schema.match(occurrence.path) {
                Self.judge(declaration, checker: &checker, field: &field,
                           valueAllowed: { $0.allows(occurrence.value) }, minimised: { $0.apply(occurrence.value) })
                // Sent without a grant under a category: a non-personal one. The label is the adapter's claim;
                // the value is checked too (a closed `values` list is the adapter's own words, not the caller's).
                if field.action == .sent, field.grantID == nil, field.reason == nil, field.category != nil,
                   declaration.constraint?.values == nil,
                   let finding = PersonalDataDetector.scan(occurrence.value)
                    ?? PersonalDataDetector.scanKeys(of: occurrence.path, under: declaration.pattern) {
                    Self.deny(&field, .personalDataInNonPersonalField, onDeny: declaration.onDeny)
                    field.detector = finding.rawValue
                    if detected == nil { detected = (field, finding) }
                }
            } else {
                Self.deny(&field, .undeclaredField, onDeny: operation.undeclared)
            }
            if field.minimisedFrom != nil { decision.hasMinimised = true }
            if field.action == .blocked && blocking == nil { blocking = field }
            decision.fields.append(field)
        }
        let pathSchema = operation.schema(.path)
        for (name, value) in decision.pathParameters {
            check(FieldOccurrence(location: .path, path: FieldPath([.key(ExactKey(name))]), value: .string(value)),
                  pathSchema)
        }
        if let query = decision.query {
            let schema = operation.schema(.query)
            for occurrence in query.fields { check(occurrence, schema) }
        }
        let headerSchema = operation.schema(.header)
        if !headerSchema.declarations.isEmpty {
            for header in request.headers {
                let name = header.name.lowercased()
                if Self.transportHeaders.contains(name) || name.hasPrefix("x-share-") { continue }
                let path = FieldPath([.key(ExactKey(name))])
                // Only declared headers are fields; the rest are simply not forwarded.
                guard headerSchema.match(path) != nil else { continue }
                check(FieldOccurrence(location: .header, path: path, value: .string(header.value)), headerSchema)
            }
        }
        if let body = decision.body {
            let schema = operation.schema(.body)
            for occurrence in body.fields { check(occurrence, schema) }
        }

        // 8. The verdict.
        if let blocking {
            for index in decision.fields.indices where decision.fields[index].action != .blocked {
                decision.fields[index].revertMinimisation()
                decision.fields[index].action = .blocked
                if decision.fields[index].reason == nil { decision.fields[index].reason = .shareBlocked }
            }
            let count = decision.deniedFields.count
            // A key the caller chose may be the very datum the detector found: name its declaration instead.
            let named = blocking.reason == .personalDataInNonPersonalField
                ? blocking.declaredAs?.description ?? "" : blocking.path.description
            return refuse(7, blocking.reason ?? .undeclaredField,
                          "\(count) field\(count == 1 ? "" : "s") denied; \(blocking.location == .body ? "" : "\(blocking.location) ")field \(named) is \(blocking.reason?.rawValue ?? "denied") and blocks the share"
                          + (detected.map { "; " + Self.detectionNote($0.field, $0.finding) } ?? ""))
        }
        stripMinimisedBesideRemovals(&decision)
        decision.verdict = decision.fields.contains(where: \.denied) ? .redacted : .allowed
        if let detected { decision.message = Self.detectionNote(detected.field, detected.finding) }
        return decision
    }

    /// `decision` refused at `step` with `code`.
    static func refused(_ decision: ShareDecision, _ step: Int, _ code: ReasonCode, _ message: String) -> ShareDecision {
        var decision = decision
        decision.verdict = .blocked
        decision.step = step
        decision.code = code
        decision.message = message
        return decision
    }

    /// Which detector refused a field, for the decision's message: the field's declaration (under a wildcard
    /// the path holds a key the caller chose, perhaps the datum itself) and the kind, never the value.
    static func detectionNote(_ field: FieldDecision, _ finding: PersonalDataDetector.Finding) -> String {
        "\(field.location == .body ? "" : "\(field.location) ")field \(field.declaredAs?.description ?? "") is declared "
            + "non-personal but holds \(finding.label) (detector \(finding.rawValue)): \(field.action.rawValue)"
    }

    /// A form or query may repeat a name, and a stripped name leaves with every occurrence: a
    /// minimised occurrence of a stripped name is stripped too, so the log says what was sent.
    func stripMinimisedBesideRemovals(_ decision: inout ShareDecision) {
        guard decision.hasMinimised else { return }
        for location in [FieldLocation.body, .query, .header] {
            let removed = decision.removals(in: location)
            guard !removed.isEmpty else { continue }
            for index in decision.fields.indices where decision.fields[index].location == location
                && decision.fields[index].action == .minimised && removed.contains(decision.fields[index].path) {
                let reason = decision.fields[index].minimisedFrom?.reason
                decision.fields[index].revertMinimisation()
                decision.fields[index].action = .stripped
                decision.fields[index].reason = reason
            }
        }
    }

    /// Step 7 for a declared field: what happens to `field` and why. `evaluate` passes the value's
    /// own checks; `redecide`, which has no values, the logged ones. Writes into the field in place
    /// and takes the declaration borrowed (a verdict returned by value, or an optional declaration
    /// passed in, cost a copy of each per field).
    @inline(__always)
    static func judge(_ declaration: FieldDeclaration, checker: inout CategoryChecker, field: inout FieldDecision,
                      valueAllowed: (ValueConstraint) -> Bool, minimised: (Minimisation) -> FieldValue?) {
        field.declaredAs = declaration.pattern
        field.revocationKey = declaration.revocationKey
        if declaration.credential || declaration.subject {
            field.action = .stripped
            field.reason = declaration.credential ? .credentialField : .subjectField
            return
        }
        field.category = declaration.category
        if let constraint = declaration.constraint, !valueAllowed(constraint) {
            // The closed world covers values: free text where the adapter allows a code is not this field.
            return deny(&field, .undeclaredValue, onDeny: declaration.onDeny)
        }
        guard let category = declaration.category else { return }
        let checked = checker.check(category)
        field.grantID = checked.grantID
        guard let reason = checked.reason else { return }
        if let minimise = declaration.minimise, field.location != .path {
            // Send less instead of nothing: the coarser value, if its category is allowed.
            let coarse = checker.check(minimise.category)
            if coarse.reason == nil, let value = minimised(minimise) {
                field.minimisedFrom = .init(category: category, value: field.value, reason: reason)
                field.category = minimise.category
                field.value = value
                field.action = .minimised
                field.grantID = coarse.grantID
                return
            }
        }
        deny(&field, reason, onDeny: declaration.onDeny)
    }

    /// A denied field: blocked, or stripped where it may be; a URL path segment cannot be left out,
    /// so a denied path parameter always blocks.
    @inline(__always)
    static func deny(_ field: inout FieldDecision, _ reason: ReasonCode, onDeny: FieldDeclaration.OnDeny) {
        field.reason = reason
        field.action = onDeny == .block || field.location == .path ? .blocked : .stripped
    }

    /// Finds the operation for a proxied request: method, path template, then `match_headers`
    /// and `match_query` (a selecting query parameter must appear exactly once).
    func match(_ adapter: Adapter, method: String, path: String, query: String? = nil,
               headers: [HeaderField]) -> (ProviderOperation, [(name: String, value: String)])? {
        let upper = method.uppercased()
        var relative = Substring(path)
        if !adapter.upstream.basePath.isEmpty {
            guard relative.hasPrefix(adapter.upstream.basePath) else { return nil }
            relative = relative.dropFirst(adapter.upstream.basePath.utf8.count)
            if relative.isEmpty { relative = "/" }
        }
        for operation in adapter.operations where operation.method == upper {
            guard let params = operation.path.match(relative) else { continue }
            let headersMatch = operation.matchHeaders.allSatisfy { wanted in
                headers.contains { $0.name.lowercased() == wanted.name && $0.value == wanted.value }
            }
            let queryMatches = operation.matchQuery.allSatisfy { wanted in
                let values = Self.queryValues(query ?? "", named: wanted.name)
                return values.count == 1 && values[0] == wanted.value
            }
            if headersMatch && queryMatches { return (operation, params) }
        }
        return nil
    }

    /// The decoded values of one query parameter (`+` is a space).
    static func queryValues(_ query: String, named name: String) -> [String] {
        var values: [String] = []
        for part in query.split(separator: "&") {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in PercentDecoding.decode(Substring(text.replacingOccurrences(of: "+", with: " "))) }
            guard decode(pieces[0]) == name else { continue }
            values.append(pieces.count > 1 ? decode(pieces[1]) ?? "\u{FFFD}" : "")
        }
        return values
    }

    /// The first declaration with `max_items` that the body or query holds more occurrences of, as a message.
    func tooManyItems(_ operation: ProviderOperation, _ decision: ShareDecision) -> String? {
        for (location, payload) in [(FieldLocation.body, decision.body), (.query, decision.query)] {
            let schema = operation.schema(location)
            // No declaration can be over its max_items while the whole payload has fewer fields than the
            // smallest max_items: the common case costs one comparison, not a second match per field.
            guard let payload, let smallest = schema.declarations.compactMap(\.maxItems).min(),
                  payload.fields.count > smallest else { continue }
            var counts: [FieldPattern: Int] = [:]
            for occurrence in payload.fields {
                guard let declaration = schema.match(occurrence.path), let maxItems = declaration.maxItems else { continue }
                let count = (counts[declaration.pattern] ?? 0) + 1
                if count > maxItems { return "\(declaration.pattern) has more than \(maxItems) items (max_items)" }
                counts[declaration.pattern] = count
            }
        }
        return nil
    }

    /// A header the operation declares or matches on, present more than once (checked and forwarded values could differ).
    func duplicatedHeader(_ operation: ProviderOperation, _ headers: [HeaderField]) -> String? {
        var seen: Set<String> = []
        return firstRelevantHeader(operation, headers) { name, _ in !seen.insert(name).inserted }
    }

    /// A header the operation declares or matches on whose value arrived as invalid UTF-8 (the HTTP
    /// layer turned the bytes into U+FFFD) or with a control character: refused, as bodies are, rather
    /// than forwarded with replaced bytes.
    func malformedHeader(_ operation: ProviderOperation, _ headers: [HeaderField]) -> String? {
        firstRelevantHeader(operation, headers) { _, value in
            value.unicodeScalars.contains { $0 == "\u{FFFD}" || ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7f }
        }
    }

    /// The lowercased name of the first header the operation declares or matches on for which `test` holds.
    private func firstRelevantHeader(_ operation: ProviderOperation, _ headers: [HeaderField],
                                     _ test: (String, String) -> Bool) -> String? {
        let schema = operation.schema(.header)
        guard !schema.declarations.isEmpty || !operation.matchHeaders.isEmpty else { return nil }
        for header in headers {
            let name = header.name.lowercased()
            let relevant = operation.matchHeaders.contains { $0.name == name }
                || schema.match(FieldPath([.key(ExactKey(name))])) != nil
            if relevant && test(name, header.value) { return name }
        }
        return nil
    }

    /// The media-type problem of step 3, if any.
    func mediaTypeProblem(_ operation: ProviderOperation, contentType: String?, bodyCount: Int) -> String? {
        if operation.rpcParameters && bodyCount == 0 { return nil }   // every parameter in the query
        guard let expected = operation.body.mediaType else {
            return bodyCount == 0 ? nil : "operation \(operation.name) takes no body"
        }
        guard let contentType else {
            return operation.contentTypeOptional ? nil : "operation \(operation.name) needs Content-Type: \(expected)"
        }
        // The common exact forms, without splitting and trimming.
        if contentType == expected || contentType == expected + "; charset=utf-8" { return nil }
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard parts.first == expected else {
            return "operation \(operation.name) takes \(expected), not \(parts.first ?? "")"
        }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.first == "charset", pair.count == 2, pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) != "utf-8" {
                return "only charset=utf-8 is accepted"
            }
        }
        return nil
    }

    /// The path with parameter-like segments elided, for messages (a path may carry personal data).
    static func safePath(_ path: String) -> String {
        path.count <= 80 ? path.split(separator: "/").map { $0.count > 24 ? "…" : String($0) }.joined(separator: "/")
            .prefixSlash : "(long path)"
    }
}

private extension String {
    var prefixSlash: String { hasPrefix("/") ? self : "/" + self }
}

/// Step 7 for one category, memoised per share: many fields share a category.
struct CategoryChecker {
    struct Verdict { var reason: ReasonCode?; var grantID: String? }

    let taxonomy: Taxonomy
    let contract: Contract
    let purpose: String
    let crossBorder: Bool
    let time: Date
    let provider: String
    /// The subject's grants for this provider and purpose.
    let grants: [Grant]
    /// The privacy policy's versions, and the one in force at the share's time (`nil`: no file, or none yet).
    let privacy: PrivacyPolicy?
    let inForce: PrivacyPolicy.Version?
    private var cache: [(String, Verdict)] = []

    init(taxonomy: Taxonomy, contract: Contract, purpose: String, provider: String, subject: String, time: Date,
         crossBorder: Bool, grants: [Grant], privacy: PrivacyPolicy? = nil) {
        self.taxonomy = taxonomy
        self.contract = contract
        self.purpose = purpose
        self.crossBorder = crossBorder
        self.time = time
        self.provider = provider
        self.grants = grants.filter { $0.provider == provider && $0.purpose == purpose && $0.subject == subject }
        self.privacy = privacy
        self.inForce = privacy?.version(inForceOn: CalendarDay(time))
    }

    mutating func check(_ category: String) -> Verdict {
        for (cached, verdict) in cache where cached == category { return verdict }
        let verdict = decide(category)
        cache.append((category, verdict))
        return verdict
    }

    private func decide(_ category: String) -> Verdict {
        // An unknown category is treated as personal and sensitive: deny by default.
        let info = taxonomy.categories[category] ?? CategoryInfo(personal: true, sensitive: true)
        guard info.personal else { return Verdict(reason: nil, grantID: nil) }
        guard contract.allows(category, for: purpose) else { return Verdict(reason: .outOfContractScope) }
        let covering = grants.filter { $0.covers(category) }
        guard !covering.isEmpty else { return Verdict(reason: .consentMissing) }
        let active = covering.filter { $0.isActive(at: time) }
        guard !active.isEmpty else {
            if covering.contains(where: { $0.isRevoked(at: time) }) { return Verdict(reason: .consentRevoked) }
            if covering.contains(where: { $0.isExpired(at: time) }) { return Verdict(reason: .consentExpired) }
            return Verdict(reason: .consentMissing)
        }
        let sufficient = active.filter { (!info.sensitive || $0.separateConsent) && (!crossBorder || $0.crossBorderConsent) }
        if let grant = sufficient.first(where: { isCurrent($0, for: category) }) {
            return Verdict(reason: nil, grantID: grant.id)
        }
        if !sufficient.isEmpty { return Verdict(reason: .consentOutdated) }
        if info.sensitive && !active.contains(where: \.separateConsent) {
            return Verdict(reason: .separateConsentRequired)
        }
        return Verdict(reason: .crossBorderConsentRequired)
    }
}

extension CategoryChecker {
    /// Whether `grant` was given under a privacy-policy version that discloses sending `category` to this
    /// provider for this purpose, from the region it is in now, when the version in force discloses it.
    /// What the version in force does not disclose either is drift (the published list's business), not
    /// this rule. A version the file does not list counts as its first (`POST …/grants` warns of it).
    func isCurrent(_ grant: Grant, for category: String) -> Bool {
        guard let privacy, let inForce, inForce.discloses(provider: provider, purpose: purpose, category: category) else { return true }
        guard let given = privacy.version(grant.policyVersion) ?? privacy.versions.first else { return true }
        return given.discloses(provider: provider, purpose: purpose, category: category)
            && (inForce.regions[provider] == nil || given.regions[provider] == inForce.regions[provider])
    }
}

extension CategoryChecker.Verdict {
    init(reason: ReasonCode) { self.init(reason: reason, grantID: nil) }
}

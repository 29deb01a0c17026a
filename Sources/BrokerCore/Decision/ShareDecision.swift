import BrokerFields

/// What happened to one field of a share.
public enum FieldAction: String, Sendable, Hashable, Codable {
    /// Sent as received; sent in the coarser form of its `minimise:` (its category then the coarser one).
    case sent, minimised, stripped, blocked

    /// True when the provider receives the field (as received or minimised).
    public var isSent: Bool { self == .sent || self == .minimised }
}

/// The decision on one field: where it is, what it is, what was done and why.
///
/// `value` is carried for the forwarding step and for keyed fingerprints only;
/// it must never be logged or stored.
public struct FieldDecision: Sendable, Hashable {
    public var location: FieldLocation
    public var path: FieldPath
    /// The declaration that governs the field (`nil` when undeclared).
    public var declaredAs: FieldPattern?
    public var category: String?
    public var action: FieldAction
    /// Why it was denied (or `credential_field`, `subject_field`, `share_blocked`); `nil` when sent under its own right.
    public var reason: ReasonCode?
    /// The grant that allowed it, for personal categories.
    public var grantID: String?
    public var revocationKey: Bool
    /// The value as the provider receives it (minimised when `action` is `minimised`).
    public var value: FieldValue
    /// For a minimised field: its declared category and value, and why that category was denied.
    public var minimisedFrom: MinimisedFrom?
    /// For a field refused with `personal_data_in_non_personal_field`: which detector found what
    /// (`prc_resident_id`), so the log can name it without the value.
    public var detector: String? = nil

    /// True when the field itself was denied (not merely caught in a blocked share).
    public var denied: Bool {
        guard let reason else { return false }
        return !reason.isBrokerField && reason != .shareBlocked
    }

    /// Back to the declared category and received value (a minimised field of a share that is not sent).
    mutating func revertMinimisation() {
        guard let from = minimisedFrom else { return }
        category = from.category
        value = from.value
        grantID = nil
        minimisedFrom = nil
        if action == .minimised { action = .sent }
    }

    /// Boxed: rare, and a reference keeps `FieldDecision` as small (and cheap to copy) as it was without it.
    public final class MinimisedFrom: Sendable, Hashable {
        public let category: String
        public let value: FieldValue
        public let reason: ReasonCode

        public init(category: String, value: FieldValue, reason: ReasonCode) {
            self.category = category; self.value = value; self.reason = reason
        }

        public static func == (a: MinimisedFrom, b: MinimisedFrom) -> Bool {
            a.category == b.category && a.value == b.value && a.reason == b.reason
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(category); hasher.combine(value); hasher.combine(reason)
        }
    }
}

/// The outcome of `PolicyEngine.evaluate`: a value, never a thrown error.
///
/// `blocked` carries the refusal `code` and HTTP `status`. `allowed` and
/// `redacted` carry everything the forwarder needs: the operation, the decoded
/// payloads and which fields to leave out.
public struct ShareDecision: Sendable {
    public enum Verdict: String, Sendable, Hashable, Codable {
        case allowed, redacted, blocked
    }

    public var verdict: Verdict
    /// For `blocked`: the request-level code, or the reason of the first blocking field.
    public var code: ReasonCode?
    /// A human-readable explanation for `blocked`; never holds a field value.
    public var message: String?
    /// The decision rule (docs/concepts.md) that refused (1–8), for `blocked`.
    public var step: Int?

    public var provider: String
    public var operation: String?
    public var purpose: String?
    public var subject: String?
    /// The broker has a record of `subject` (or a grant): the log names it; otherwise only its keyed fingerprint.
    public var subjectKnown = false
    public var fields: [FieldDecision] = []
    /// Some field is `minimised` (lets the forwarding step skip looking for replacements).
    public var hasMinimised = false
    public var contractVersion: String?
    public var contractHash: String?
    public var adapterHash: String?
    /// The revision of the whole policy bundle that decided (`PolicyBundle.revision`).
    public var policyRevision: String?
    /// The URL path parameters, in template order.
    public var pathParameters: [(name: String, value: String)] = []
    /// Decoded body and query (absent when decoding was not reached or failed).
    public var body: (any DecodedPayload)?
    public var query: (any DecodedPayload)?

    public var status: Int {
        switch verdict {
        case .allowed, .redacted: return 200
        case .blocked: return code?.httpStatus ?? 403
        }
    }

    /// Distinct grant ids that allowed fields, in first-use order.
    public var grantIDs: [String] {
        var seen: Set<String> = []
        return fields.compactMap { field in
            guard let id = field.grantID, seen.insert(id).inserted else { return nil }
            return id
        }
    }

    /// Distinct denial reasons, in field order (request-level code first when blocked before step 7).
    public var reasons: [ReasonCode] {
        var seen: Set<ReasonCode> = []
        var out: [ReasonCode] = []
        if let code, step.map({ $0 < 7 }) ?? false { out.append(code); seen.insert(code) }
        for field in fields where field.denied {
            if let reason = field.reason, seen.insert(reason).inserted { out.append(reason) }
        }
        return out
    }

    /// Fields that were denied, for problem+json `fields`.
    public var deniedFields: [FieldDecision] { fields.filter(\.denied) }

    /// Paths to leave out of the forwarded `location`.
    public func removals(in location: FieldLocation) -> Set<FieldPath> {
        var set: Set<FieldPath> = []
        // Through the buffer (as `forwardedHeaders`): a `for field in fields` copies every decision,
        // retaining its members, to read two of them.
        fields.withUnsafeBufferPointer { fields in
            for index in fields.indices where fields[index].location == location && !fields[index].action.isSent {
                set.insert(fields[index].path)
            }
        }
        return set
    }

    /// The minimised values of `location`: per path, the received value → the value to send.
    public func replacements(in location: FieldLocation) -> FieldReplacements {
        var map: FieldReplacements = [:]
        guard hasMinimised else { return map }
        for field in fields where field.location == location && field.action == .minimised {
            guard let from = field.minimisedFrom else { continue }
            map[field.path, default: [:]][from.value] = field.value
        }
        return map
    }

    /// The broker's serialisation of the body or query it forwards: stripped fields left out,
    /// minimised ones replaced; `nil` when the request has none.
    public func forwarded(_ location: FieldLocation) -> [UInt8]? {
        switch location {
        case .query: return query?.serialized(removing: removals(in: .query), replacing: replacements(in: .query))
        default: return body?.serialized(removing: removals(in: .body), replacing: replacements(in: .body))
        }
    }

    /// The declared headers that may be forwarded, as received.
    public var forwardedHeaders: [HeaderField] {
        fields.withUnsafeBufferPointer { fields in
            var headers: [HeaderField] = []
            for index in fields.indices where fields[index].location == .header && fields[index].action.isSent {
                guard case .key(let name)? = fields[index].path.segments.first,
                      case .string(let value) = fields[index].value else { continue }
                headers.append(HeaderField(name.string, value))
            }
            return headers
        }
    }

    init(provider: String) { self.verdict = .blocked; self.provider = provider }
}

import BrokerFields
import Foundation

/// A share as its log record keeps it: everything a decision depends on, no value.
public struct RecordedShare: Sendable, Hashable {
    public struct Field: Sendable, Hashable {
        public var location: FieldLocation
        /// The logged path (`message.token[0]`; a caller-chosen key as `<k:…>`, an undeclared path as `<undeclared:…>`;
        /// a folded entry's as its declaration's pattern, `message.token[*]`, or `<undeclared>`).
        public var path: String
        /// The category sent or denied (for a minimised field the coarser one; see `declaredCategory`).
        public var category: String?
        public var action: FieldAction
        public var reason: ReasonCode?
        public var minimisedFrom: String?

        public init(location: FieldLocation, path: String, category: String?, action: FieldAction, reason: ReasonCode?,
                    minimisedFrom: String? = nil) {
            self.location = location; self.path = path; self.category = category; self.action = action
            self.reason = reason; self.minimisedFrom = minimisedFrom
        }

        /// What the field is, whatever form it went in.
        public var declaredCategory: String? { minimisedFrom ?? category }
    }

    public var shareID: String
    public var provider: String
    public var operation: String
    public var purpose: String
    public var subject: String
    public var time: Date
    public var verdict: ShareDecision.Verdict
    public var code: ReasonCode?
    public var fields: [Field]

    public init(shareID: String, provider: String, operation: String, purpose: String, subject: String, time: Date,
                verdict: ShareDecision.Verdict, code: ReasonCode?, fields: [Field]) {
        self.shareID = shareID; self.provider = provider; self.operation = operation; self.purpose = purpose
        self.subject = subject; self.time = time; self.verdict = verdict; self.code = code; self.fields = fields
    }

    /// Refused for something no adapter or contract decides (the caller's rights, a malformed
    /// request, a missing subject): another policy would refuse it the same way.
    public var isPolicyIndependentRefusal: Bool {
        guard verdict == .blocked, let code else { return false }
        return Self.requestLevelCodes.contains(code)
    }

    static let requestLevelCodes: Set<ReasonCode> = [
        .unauthenticated, .callerNotPermitted, .unsupportedMediaType, .bodyTooLarge, .malformedBody, .tooManyFields,
        .duplicateHeader, .malformedHeader, .subjectMissing, .invalidSubject, .subjectUnknown, .purposeMissing,
    ]
}

extension PolicyEngine {
    /// Decides a logged share again under this engine's bundle, from what the log holds: the same
    /// steps as `evaluate` from the operation on (2, 4–8), with the subject's grants as they stood at
    /// the share's time. The log keeps no values, so a value constraint is judged as it was logged
    /// (`undeclared_value` stays so; a constraint the logged adapter did not have is taken as met),
    /// a minimisation is taken to apply to a value that went and not to one that was denied, and a
    /// caller-chosen key (`<k:…>`) matches only wildcards.
    /// An `<undeclared:…>` (or folded `<undeclared>`) path stays undeclared; a folded entry's pattern is
    /// judged like each of its occurrences (`[*]` as an index, `*` as a caller-chosen key). Pure, like `evaluate`.
    public func redecide(_ share: RecordedShare, context: SubjectContext) -> RecordedShare {
        var out = share
        out.fields = []
        func refuse(_ code: ReasonCode) -> RecordedShare {
            out.verdict = .blocked
            out.code = code
            out.fields = share.fields.map { field in
                var field = field
                if field.action != .blocked && field.reason == nil { field.reason = .shareBlocked }
                field.action = .blocked
                return field
            }
            return out
        }
        guard let adapter = bundle.adapters[share.provider] else { return refuse(.unknownProvider) }
        guard let operation = adapter.operation(named: share.operation) else { return refuse(.unknownOperation) }
        guard operation.purposes.contains(share.purpose) else { return refuse(.purposeNotAllowed) }
        let today = CalendarDay(share.time)
        guard let contract = bundle.contracts[adapter.provider], contract.effective <= today else { return refuse(.contractMissing) }
        if let expires = contract.expires, expires < today { return refuse(.contractExpired) }
        guard contract.purposes[share.purpose] != nil else { return refuse(.purposeOutOfContract) }
        if let deleted = context.subject?.deletedAt, deleted <= share.time { return refuse(.subjectDeleted) }
        if let subject = context.subject, subject.isMinor(on: today, age: minorAge) { return refuse(.minorSubject) }

        var checker = CategoryChecker(
            taxonomy: bundle.taxonomy, contract: contract, purpose: share.purpose, provider: adapter.provider,
            subject: share.subject, time: share.time,
            crossBorder: contract.region != (context.subject?.region ?? homeRegion), grants: context.grants,
            privacy: bundle.privacyPolicy)
        var blocking: ReasonCode?
        for logged in share.fields {
            if logged.reason?.isBrokerField == true {
                out.fields.append(logged)
                continue
            }
            let path = LoggedPath.parse(logged.path)
            let declaration = path.flatMap { operation.schema(logged.location).match($0) }
            var decided = FieldDecision(location: logged.location, path: path ?? FieldPath(), declaredAs: nil, category: nil,
                                        action: .sent, reason: nil, grantID: nil, revocationKey: false, value: .null)
            if let declaration {
                // A field that went (as it came or minimised) had a readable value; one that was denied
                // is taken as not minimisable: the log does not say whether its value could be read,
                // and the dry run must never claim that more would go out than could.
                Self.judge(declaration, checker: &checker, field: &decided,
                           valueAllowed: { _ in logged.reason != .undeclaredValue },
                           minimised: { _ in logged.action.isSent ? .null : nil })
                // The detector found personal data in the logged value: still so while the label stays non-personal.
                if logged.reason == .personalDataInNonPersonalField, decided.action == .sent, decided.grantID == nil,
                   decided.reason == nil, decided.category != nil {
                    Self.deny(&decided, .personalDataInNonPersonalField, onDeny: declaration.onDeny)
                }
            } else {
                Self.deny(&decided, .undeclaredField, onDeny: operation.undeclared)
            }
            var field = RecordedShare.Field(decided)
            field.path = logged.path
            if declaration == nil { field.category = logged.declaredCategory }
            if field.action == .blocked && blocking == nil { blocking = field.reason }
            out.fields.append(field)
        }
        if let blocking {
            out.fields = out.fields.map { field in
                var field = field
                if field.action != .blocked {
                    field.category = field.declaredCategory
                    field.minimisedFrom = nil
                    if field.action == .minimised || field.action == .sent { field.reason = .shareBlocked }
                    field.action = .blocked
                }
                return field
            }
            out.verdict = .blocked
            out.code = blocking
            return out
        }
        let denied = out.fields.contains { $0.action == .stripped && $0.reason?.isBrokerField != true }
        out.verdict = denied ? .redacted : .allowed
        out.code = nil
        return out
    }
}

/// Logged paths back to field paths, for matching against another adapter.
public enum LoggedPath {
    /// A key no declaration names (a NUL cannot appear in a declared key): matches only `*`.
    static let hiddenKey = ExactKey("\u{0}hidden")

    /// `a.b[0]["x.y"].<k:…>` → its segments; `nil` for an `<undeclared:…>` path or text that is not a rendered path.
    /// A folded entry's pattern reads as one of its occurrences would: `[*]` as an index, a bare `*` as a
    /// caller-chosen key (a key that is literally `*` is written `["*"]`).
    public static func parse(_ text: String) -> FieldPath? {
        var segments: [PathSegment] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.first == "." {
                guard !segments.isEmpty else { return nil }
                rest = rest.dropFirst()
            }
            if rest.hasPrefix("<k:") {
                guard let close = rest.firstIndex(of: ">") else { return nil }
                segments.append(.key(hiddenKey))
                rest = rest[rest.index(after: close)...]
            } else if rest.hasPrefix("<") {
                return nil
            } else if rest.hasPrefix("[\"") {
                // A JSON string up to the first unescaped quote, then `]`.
                var index = rest.index(rest.startIndex, offsetBy: 2)
                var escaped = false
                while index < rest.endIndex, escaped || rest[index] != "\"" {
                    escaped = !escaped && rest[index] == "\\"
                    index = rest.index(after: index)
                }
                guard index < rest.endIndex else { return nil }
                let quoted = rest[rest.index(after: rest.startIndex)...index]
                guard let key = try? JSONDecoder().decode(String.self, from: Data(quoted.utf8)) else { return nil }
                rest = rest[rest.index(after: index)...]
                guard rest.first == "]" else { return nil }
                rest = rest.dropFirst()
                segments.append(.key(ExactKey(key)))
            } else if rest.first == "[" {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                if inside == "*" {
                    segments.append(.index(0))   // patterns match any index alike
                } else {
                    guard let number = Int(inside) else { return nil }
                    segments.append(.index(number))
                }
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex { $0 == "." || $0 == "[" || $0 == "<" } ?? rest.endIndex
                guard end > rest.startIndex else { return nil }
                let key = String(rest[..<end])
                segments.append(.key(key == "*" ? hiddenKey : ExactKey(key)))
                rest = rest[end...]
            }
        }
        return FieldPath(segments)
    }
}

/// How a share's decision changes from one policy to another, per data category: the dry run's
/// and the shadow mode's unit of account.
public enum ShareChange: String, Sendable, Hashable, CaseIterable, Codable {
    /// The share went (allowed or redacted) and would now be refused.
    case newlyBlocked = "newly_blocked"
    /// A field of this category went and would now be stripped.
    case newlyStripped = "newly_stripped"
    /// A field of this category went as it came and would now go minimised.
    case newlyMinimised = "newly_minimised"
    /// A field of this category was stripped, blocked or minimised and would now go as it came.
    case newlyAllowed = "newly_allowed"

    /// The changes of one share, as (category, change) pairs, each at most once: what stops going
    /// under the category it went as (the coarser one for a minimised field), what starts going
    /// under the category it would go as, and a field newly minimised under its declared category.
    /// A share blocked under both policies has none (whatever the codes).
    public static func between(_ old: (verdict: ShareDecision.Verdict, fields: [RecordedShare.Field]),
                               _ new: (verdict: ShareDecision.Verdict, fields: [RecordedShare.Field]),
                               isPersonal: (String) -> Bool) -> [(category: String, change: ShareChange)] {
        var seen: Set<String> = []
        var out: [(category: String, change: ShareChange)] = []
        func add(_ category: String?, _ change: ShareChange) {
            guard let category, isPersonal(category), seen.insert(category + "\u{0}" + change.rawValue).inserted else { return }
            out.append((category, change))
        }
        let wasSent = old.verdict != .blocked, isSent = new.verdict != .blocked
        if wasSent && !isSent {
            // Blocked as a whole: every category that went is lost (the early refusals have no field of their own).
            for field in old.fields where field.action.isSent { add(field.category, .newlyBlocked) }
            return out
        }
        if !wasSent && !isSent { return out }
        // Pair the fields by location and path, in order (a form may repeat a name).
        var pending: [String: [RecordedShare.Field]] = [:]
        for field in old.fields { pending[field.location.rawValue + " " + field.path, default: []].append(field) }
        for field in new.fields {
            let key = field.location.rawValue + " " + field.path
            let before = pending[key]?.first
            if pending[key]?.isEmpty == false { pending[key]?.removeFirst() }
            let was = wasSent ? (before?.action ?? .blocked) : .blocked
            switch (was, field.action) {
            case (.sent, .stripped), (.minimised, .stripped), (.sent, .blocked), (.minimised, .blocked):
                add(before?.category ?? field.declaredCategory, .newlyStripped)
            case (.sent, .minimised):
                add(field.declaredCategory, .newlyMinimised)
            case (.stripped, .sent), (.blocked, .sent), (.minimised, .sent), (.stripped, .minimised), (.blocked, .minimised):
                if field.reason?.isBrokerField != true { add(field.category, .newlyAllowed) }
            default:
                break
            }
        }
        return out
    }
}

extension RecordedShare.Field {
    /// A decided field as the log would keep it (path rendered plainly; only matching needs it).
    public init(_ field: FieldDecision) {
        self.init(location: field.location, path: field.path.description, category: field.category, action: field.action,
                  reason: field.reason ?? field.minimisedFrom?.reason, minimisedFrom: field.minimisedFrom?.category)
    }
}

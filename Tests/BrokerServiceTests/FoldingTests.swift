@testable import BrokerCore
import BrokerFields
@testable import BrokerService
import Testing

/// Issue 24: `LoggedField.folding` groups decisions by comparing them in place (`fold`) up to
/// `scannedFields` and through `FoldKey` beyond; both must be the same relation.
@Suite struct FoldingTests {
    /// Decisions that differ in one fold member each, or in none but their value.
    static let decisions: [FieldDecision] = {
        let wildcard = try! FieldPattern(parsing: "message.token[*]")
        let other = try! FieldPattern(parsing: "message.android.token[*]")
        let narrowed = FieldDecision.MinimisedFrom(category: "user.location.precise", value: .string("x"), reason: ReasonCode(rawValue: "no_grant"))
        var all: [FieldDecision] = []
        for (n, value) in ["a", "b"].enumerated() {
            func field(_ location: FieldLocation = .body, _ pattern: FieldPattern? = wildcard, category: String? = "user.device.push_token",
                       action: FieldAction = .sent, reason: ReasonCode? = nil, from: FieldDecision.MinimisedFrom? = nil,
                       detector: String? = nil) -> FieldDecision {
                var decision = FieldDecision(location: location, path: FieldPath([.key(ExactKey("message")), .key(ExactKey("token")), .index(n)]),
                                             declaredAs: pattern, category: category, action: action, reason: reason, grantID: nil,
                                             revocationKey: false, value: .string(value), minimisedFrom: from)
                decision.detector = detector
                return decision
            }
            all += [field(), field(.query), field(.body, other), field(.body, nil), field(category: nil), field(category: "user.device"),
                    field(action: .stripped), field(reason: ReasonCode(rawValue: "no_grant")), field(action: .minimised, from: narrowed),
                    field(detector: "prc_resident_id")]
        }
        return all
    }()

    @Test func foldIsFoldKeyEquality() {
        for a in Self.decisions {
            for b in Self.decisions {
                var a = a, b = b
                #expect(LoggedField.fold(&a, &b) == (LoggedField.FoldKey(a) == LoggedField.FoldKey(b)))
            }
        }
    }

    /// The same decisions folded through the scan and, repeated past `scannedFields`, through the
    /// dictionary: one entry per group in first-field order, each counting its members.
    @Test func bothGroupingsGiveTheSameEntries() {
        let single = { (field: FieldDecision) in
            LoggedField(location: field.location, path: field.path.description, category: field.category, action: field.action,
                        reason: field.reason, fingerprint: nil, minimisedFrom: nil)
        }
        let scanned = LoggedField.folding(Self.decisions, single: single, shortPrint: { _ in nil })
        #expect(scanned.count == Self.decisions.count / 2)
        #expect(scanned.allSatisfy { $0.count == 2 })
        let many = Array(repeating: Self.decisions, count: 3).flatMap { $0 }
        #expect(many.count > LoggedField.scannedFields)
        let hashed = LoggedField.folding(many, single: single, shortPrint: { _ in nil })
        #expect(hashed.map(\.path) == scanned.map(\.path))
        #expect(hashed.map(\.category) == scanned.map(\.category))
        #expect(hashed.allSatisfy { $0.count == 6 })
    }
}

/// A stable, snake_case reason for a refusal or a field denial.
///
/// These strings are API: they appear in problem+json `code`, in the share log
/// and in clients' handling. New codes may be added; existing ones never change.
public struct ReasonCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    // Step 1: the caller.
    public static let unauthenticated = ReasonCode(rawValue: "unauthenticated")
    public static let callerNotPermitted = ReasonCode(rawValue: "caller_not_permitted")
    // Step 2: provider and operation.
    public static let unknownProvider = ReasonCode(rawValue: "unknown_provider")
    public static let unknownOperation = ReasonCode(rawValue: "unknown_operation")
    // Step 3: the body.
    public static let unsupportedMediaType = ReasonCode(rawValue: "unsupported_media_type")
    public static let bodyTooLarge = ReasonCode(rawValue: "body_too_large")
    /// More fields than `limits.max_fields` or the operation's `max_fields`, or more occurrences of one
    /// declaration than its `max_items`: refused before any per-field work.
    public static let tooManyFields = ReasonCode(rawValue: "too_many_fields")
    public static let malformedBody = ReasonCode(rawValue: "malformed_body")
    /// A declared header (or one that selects the operation) sent more than once: which one counts is ambiguous.
    public static let duplicateHeader = ReasonCode(rawValue: "duplicate_header")
    /// A declared header (or one that selects the operation) whose value is not valid UTF-8 text
    /// (HTTP decoding replaced a byte with U+FFFD) or holds a control character.
    public static let malformedHeader = ReasonCode(rawValue: "malformed_header")
    // Step 4: subject and purpose.
    public static let subjectMissing = ReasonCode(rawValue: "subject_missing")
    /// A subject id outside `SubjectID.rule`: refused before anything is logged.
    public static let invalidSubject = ReasonCode(rawValue: "invalid_subject")
    /// The subject named in the body (an adapter's `subject: true` field) is not the one the caller named
    /// in `X-Share-Subject` or the proxy user name.
    public static let subjectMismatch = ReasonCode(rawValue: "subject_mismatch")
    public static let purposeMissing = ReasonCode(rawValue: "purpose_missing")
    public static let purposeNotAllowed = ReasonCode(rawValue: "purpose_not_allowed")
    // Step 5: the contract.
    public static let contractMissing = ReasonCode(rawValue: "contract_missing")
    public static let contractExpired = ReasonCode(rawValue: "contract_expired")
    public static let purposeOutOfContract = ReasonCode(rawValue: "purpose_out_of_contract")
    // Step 6: the subject: unknown, a deleted account, a minor.
    /// No record and no grant of the subject: nothing is shared about someone the broker does not know.
    public static let subjectUnknown = ReasonCode(rawValue: "subject_unknown")
    /// The subject's account was deleted (`DELETE /v1/subjects/{id}`).
    public static let subjectDeleted = ReasonCode(rawValue: "subject_deleted")
    public static let minorSubject = ReasonCode(rawValue: "minor_subject")
    // Step 7: fields.
    public static let undeclaredField = ReasonCode(rawValue: "undeclared_field")
    /// A declared field whose value is outside its declaration's `values`, `pattern`, `type` or `max_length`.
    public static let undeclaredValue = ReasonCode(rawValue: "undeclared_value")
    /// A field declared non-personal whose value holds personal data (an ID, phone or card number, an
    /// e-mail or IP address, a coordinate pair; plain, percent-encoded or base64): `PersonalDataDetector`.
    public static let personalDataInNonPersonalField = ReasonCode(rawValue: "personal_data_in_non_personal_field")
    public static let outOfContractScope = ReasonCode(rawValue: "out_of_contract_scope")
    public static let consentMissing = ReasonCode(rawValue: "consent_missing")
    public static let consentRevoked = ReasonCode(rawValue: "consent_revoked")
    public static let consentExpired = ReasonCode(rawValue: "consent_expired")
    /// The grant was given under a privacy-policy version that did not disclose what the version in force
    /// discloses for this field (a new party, purpose, category or region): the subject grants again first.
    public static let consentOutdated = ReasonCode(rawValue: "consent_outdated")
    public static let separateConsentRequired = ReasonCode(rawValue: "separate_consent_required")
    public static let crossBorderConsentRequired = ReasonCode(rawValue: "cross_border_consent_required")
    /// Not a denial: a caller sent a value for a field the broker fills from its credentials.
    public static let credentialField = ReasonCode(rawValue: "credential_field")
    /// Not a denial: the field named the share's subject (an adapter's `subject: true`), read and removed by the broker.
    public static let subjectField = ReasonCode(rawValue: "subject_field")
    /// Not a denial of its own: the field was allowed, but another field blocked the share.
    public static let shareBlocked = ReasonCode(rawValue: "share_blocked")

    /// A field the broker consumes itself (a credential it fills, the subject it reads), stripped without being denied.
    public var isBrokerField: Bool { self == .credentialField || self == .subjectField }

    /// The HTTP status a refusal with this code answers with.
    public var httpStatus: Int {
        switch self {
        case .unauthenticated: return 401
        case .unknownProvider, .unknownOperation: return 404
        case .unsupportedMediaType: return 415
        case .bodyTooLarge, .tooManyFields: return 413
        case .malformedBody, .duplicateHeader, .malformedHeader, .subjectMissing, .invalidSubject, .subjectMismatch, .purposeMissing: return 400
        default: return 403
        }
    }

    /// Every code `evaluate` can return, in the order of the decision rules (docs/concepts.md).
    public static let decisionCodes: [ReasonCode] = [
        .unauthenticated, .callerNotPermitted, .unknownProvider, .unknownOperation, .unsupportedMediaType,
        .bodyTooLarge, .tooManyFields, .malformedBody, .duplicateHeader, .malformedHeader, .subjectMissing, .invalidSubject, .subjectMismatch, .purposeMissing, .purposeNotAllowed, .contractMissing,
        .contractExpired, .purposeOutOfContract, .subjectUnknown, .subjectDeleted, .minorSubject, .undeclaredField, .undeclaredValue, .outOfContractScope,
        .consentMissing, .consentRevoked, .consentExpired, .consentOutdated, .separateConsentRequired, .crossBorderConsentRequired,
        .personalDataInNonPersonalField,
    ]
}

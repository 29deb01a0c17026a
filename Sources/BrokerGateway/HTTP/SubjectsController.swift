import BrokerCore
import BrokerPayload
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `PUT`/`DELETE /v1/subjects/{id}`, `POST`/`GET /v1/subjects/{id}/grants` (role `grants`).
struct SubjectsController: Sendable {
    let grants: any GrantStore
    let authenticator: Authenticator
    let policy: ActivePolicy
    /// The bundle of the revision installed now.
    var bundle: PolicyBundle { policy.current.bundle }
    /// Fingerprints a grant's `provider_account` (the id itself is never stored).
    let fingerprinter: Fingerprinter
    /// End users' tokens; `nil` when `users.jwt` is not configured.
    let users: UserTokenVerifier?
    let now: @Sendable () -> Date
    /// Account deletion and a subject found to be a minor revoke everything; `nil` where the store cannot revoke.
    var revoker: Revoker?
    var minorAge = 18
    /// Where a cleared minor status is recorded (the subject only by fingerprint).
    var logger = Logger(label: "sharebroker.subjects")

    func register(on router: Router<BrokerRequestContext>) {
        router.put("/v1/subjects/:id") { request, context in try await putSubject(request, context) }
        if revoker != nil {
            router.delete("/v1/subjects/:id") { request, context in try await deleteSubject(request, context) }
        }
        router.post("/v1/subjects/:id/grants") { request, context in try await addGrant(request, context) }
        router.get("/v1/subjects/:id/grants") { request, context in try await listGrants(request, context) }
        router.get("/v1/subjects/:id/consent-records") { request, context in try await consentRecords(request, context) }
    }

    /// Who may act on one subject's data: a client with `role` (or `admin`), or that
    /// subject's own JWT. A valid JWT for another subject gets 404, the answer for a
    /// subject that does not exist, so a user cannot learn which ids exist.
    @discardableResult
    func authorize(_ request: Request, subject: String, role: Caller.Role = .grants) async throws -> Principal {
        let principal = try await principal(request, role: role)
        if case .user(let own) = principal, own != subject {
            throw Problem(status: 404, code: "subject_not_found", detail: "no such subject")
        }
        return principal
    }

    /// The caller: an end user (a valid JWT), or a client with `role` (or `admin`).
    func principal(_ request: Request, role: Caller.Role = .grants) async throws -> Principal {
        if let users, let value = request.headers[.authorization], let token = Authenticator.bearer(value),
           UserTokenVerifier.looksLikeJWT(token), authenticator.caller(forToken: token) == nil {
            switch await users.subject(of: token, now: now()) {
            case .success(let own): return .user(own)
            case .failure(let failure):
                throw Problem(status: 401, code: "unauthenticated",
                              detail: failure == .expired ? "the token has expired" : "the token is not valid here")
            }
        }
        return .client(try await requireRole(request, role))
    }

    enum Principal: Sendable {
        case client(Caller)
        case user(String)
    }

    func requireRole(_ request: Request, _ role: Caller.Role) async throws -> Caller {
        guard let caller = authenticator.caller(authorization: request.headers[.authorization]) else {
            // A signed-in end user is known, just not allowed here: 403, not a request to authenticate.
            if let users, let value = request.headers[.authorization], let token = Authenticator.bearer(value),
               UserTokenVerifier.looksLikeJWT(token), case .success = await users.subject(of: token, now: now()) {
                throw Problem(status: 403, code: "forbidden", detail: "an end user's token cannot make this call")
            }
            throw Problem(status: 401, code: "unauthenticated", detail: "send Authorization: Bearer <token>")
        }
        guard caller.roles.contains(role) || caller.roles.contains(.admin) else {
            throw Problem(status: 403, code: "caller_not_permitted", detail: "this call needs the role \(role.rawValue)")
        }
        return caller
    }

    static func subjectID(_ context: BrokerRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), SubjectID.isValid(id) else {
            throw Problem(status: 400, code: "invalid_subject", detail: "the subject id must be \(SubjectID.rule)")
        }
        return id
    }

    /// Strict JSON (no duplicate keys, no trailing data) decoded into `T`.
    /// Strict JSON into `T`: unknown keys are refused (a typo such as `birthdate` must not
    /// silently drop a birth date and make a child an adult), and a missing or mistyped
    /// field is named.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, keys allowed: Set<String>,
                                     limit: Int = 65_536) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: limit) } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem(status: 413, code: "body_too_large", detail: "the body is over \(limit) bytes")
        } catch {
            throw Problem(status: 400, code: "malformed_body", detail: "the body could not be read to its end")
        }
        let bytes = Array(buffer.readableBytesView)
        let parsed: JSONBody
        do {
            parsed = try JSONBody(bytes, limits: PayloadLimits(maxBytes: limit, maxDepth: 8))
        } catch {
            throw Problem(status: 400, code: "malformed_body", detail: error.message)
        }
        var unknown: Set<String> = []
        for field in parsed.fields {
            if case .key(let key)? = field.path.segments.first, !allowed.contains(key.string) { unknown.insert(key.string) }
        }
        guard unknown.isEmpty else {
            throw Problem(status: 400, code: "malformed_body",
                          detail: "unknown field(s) \(unknown.sorted().joined(separator: ", ")); expected \(allowed.sorted().joined(separator: ", "))")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(T.self, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, _) {
            throw Problem(status: 400, code: "malformed_body", detail: "the field \(Self.snake(key.stringValue)) is required")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map { Self.snake($0.stringValue) }.joined(separator: ".")
            throw Problem(status: 400, code: "malformed_body", detail: "the field \(path) has the wrong type")
        } catch {
            throw Problem(status: 400, code: "malformed_body", detail: "the body does not have the expected fields and types")
        }
    }

    /// `separateConsent` → `separate_consent`, for messages in the API's own spelling.
    static func snake(_ name: String) -> String {
        var out = ""
        for character in name {
            if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
        }
        return out
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct SubjectBody: Decodable {
        var birthDate: String?
        var minor: Bool?
        var region: String?
        /// Required to clear a minor's status (with `"minor": false`): what shows the person is of age.
        var evidence: String?
    }

    func putSubject(_ request: Request, _ context: BrokerRequestContext) async throws -> Response {
        let id = try Self.subjectID(context)
        let principal = try await requireRole(request, .grants)
        let body = try await Self.decode(SubjectBody.self, request, keys: ["birth_date", "minor", "region", "evidence"])
        var birth: CalendarDay?
        if let text = body.birthDate {
            guard let day = CalendarDay(text) else {
                throw Problem(status: 400, code: "invalid_subject", detail: "birth_date must be YYYY-MM-DD")
            }
            birth = day
        }
        if let region = body.region, region.utf8.count != 2 || !region.utf8.allSatisfy({ (65...90).contains($0) }) {
            throw Problem(status: 400, code: "invalid_subject", detail: "region must be an ISO 3166 alpha-2 code")
        }
        let subject = Subject(id: id, birthDate: birth, minor: body.minor, region: body.region)
        let existing = try await liveSubject(id)
        let today = CalendarDay(now())
        // Minor status is sticky: an update that leaves it out, or only drops the birth date, keeps the
        // person a minor. Clearing it takes an explicit `"minor": false` with evidence, and is logged.
        if let existing, existing.isMinor(on: today, age: minorAge), !subject.isMinor(on: today, age: minorAge) {
            guard body.minor == false, let evidence = body.evidence, !evidence.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw Problem(status: 403, code: "minor_subject",
                              detail: "the subject is a minor; clearing that takes \"minor\": false and evidence of age")
            }
            logger.notice("minor status cleared", metadata: [
                "subject.fingerprint": "\(fingerprinter.fingerprint(category: "subject", value: .string(id)).prefix(16))",
                "caller": "\(principal.id)", "evidence.bytes": "\(evidence.utf8.count)",
            ])
        }
        // A subject who becomes a minor: every grant revoked and every provider that received their
        // data told to delete it, in the same transaction as the new record (origin `minor`).
        if let revoker, subject.isMinor(on: today, age: minorAge), !(existing?.isMinor(on: today, age: minorAge) ?? false) {
            let receipt: RevocationReceipt
            do { receipt = try await revoker.revoke(id, .everything(replacing: subject), origin: "minor").get() } catch {
                throw Problem.logUnavailable("\(error)")
            }
            var out = Self.render(subject)
            out["revocation_id"] = receipt.id
            return Self.json(out)
        }
        do { try await grants.putSubject(subject) } catch { throw Problem.logUnavailable(error.message) }
        return Self.json(Self.render(subject))
    }

    /// The subject's record; a deleted account answers 409 `subject_deleted`: a deleted id never
    /// comes back (the providers were told to delete what they hold about it; a new account gets a new id).
    func liveSubject(_ id: String) async throws -> Subject? {
        let existing: Subject?
        do { existing = try await grants.subject(id) } catch { throw Problem.logUnavailable(error.message) }
        if existing?.deletedAt != nil {
            throw Problem(status: 409, code: "subject_deleted", detail: "the subject's account was deleted; a deleted id is never used again")
        }
        return existing
    }

    /// `DELETE /v1/subjects/{id}` (role `grants`, or the user's own token): account deletion. One
    /// revocation over every grant and every share ever made about the subject, so each provider
    /// that received their data is told to delete it (or gets a `manual_required` document); the
    /// subject is marked deleted in the same transaction, and every later share is refused.
    func deleteSubject(_ request: Request, _ context: BrokerRequestContext) async throws -> Response {
        let id = try Self.subjectID(context)
        try await authorize(request, subject: id)
        guard let revoker else { throw Problem(status: 404, code: "not_found", detail: "account deletion is not available") }
        let existing = try await liveSubject(id)
        let list: [Grant]
        do { list = try await grants.grants(of: id) } catch { throw Problem.logUnavailable(error.message) }
        guard existing != nil || !list.isEmpty else { throw Problem(status: 404, code: "subject_not_found", detail: "no such subject") }
        var record = existing ?? Subject(id: id)
        record.deletedAt = now()
        let receipt: RevocationReceipt
        do {
            receipt = try await revoker.revoke(id, .everything(replacing: record), origin: "account_deleted").get()
        } catch {
            throw Problem.logUnavailable("\(error)")
        }
        return Self.json(revoker.render(receipt, attempts: nil), status: .accepted)
    }

    struct GrantBody: Decodable {
        var provider: String
        var purpose: String
        var categories: [String]?
        var separateConsent: Bool
        var crossBorderConsent: Bool
        var policyVersion: String
        var evidence: String
        var expiresAt: Date?
        /// The provider's own id for the user, so the provider's cancellation notice finds this grant.
        var providerAccount: String?
    }

    func addGrant(_ request: Request, _ context: BrokerRequestContext) async throws -> Response {
        let id = try Self.subjectID(context)
        try await authorize(request, subject: id)
        // Nothing is shared about minors, so no consent to share is recorded for one.
        let subject = try await liveSubject(id)
        if subject?.isMinor(on: CalendarDay(now()), age: minorAge) == true {
            throw Problem(status: 403, code: "minor_subject", detail: "the subject is a minor; no grant is recorded for a minor")
        }
        let body = try await Self.decode(GrantBody.self, request, keys: [
            "provider", "purpose", "categories", "separate_consent", "cross_border_consent", "policy_version", "evidence",
            "expires_at", "provider_account",
        ])
        guard let contract = bundle.contracts[body.provider] else {
            throw Problem(status: 400, code: "invalid_grant", detail: "unknown provider \(body.provider)")
        }
        guard contract.purposes[body.purpose] != nil else {
            throw Problem(status: 400, code: "invalid_grant",
                          detail: "the contract with \(body.provider) does not cover purpose \(body.purpose)")
        }
        for category in body.categories ?? [] where bundle.taxonomy.categories[category] == nil {
            throw Problem(status: 400, code: "invalid_grant", detail: "unknown category \(category)")
        }
        guard !body.policyVersion.isEmpty, !body.evidence.isEmpty else {
            throw Problem(status: 400, code: "invalid_grant", detail: "policy_version and evidence are required")
        }
        var grant = Grant(id: "g_" + ShareID.make(at: now()).replacingOccurrences(of: "-", with: ""), subject: id,
                          provider: body.provider, purpose: body.purpose, categories: body.categories,
                          separateConsent: body.separateConsent, crossBorderConsent: body.crossBorderConsent,
                          policyVersion: body.policyVersion, evidence: body.evidence, grantedAt: now(),
                          expiresAt: body.expiresAt)
        if let account = body.providerAccount {
            guard !account.isEmpty else { throw Problem(status: 400, code: "invalid_grant", detail: "provider_account is empty") }
            grant.accountFingerprint = Self.accountFingerprint(fingerprinter, provider: body.provider, account: account)
        }
        do { try await grants.addGrant(grant) } catch { throw Problem.logUnavailable(error.message) }
        var answer = Self.render(grant, at: now())
        let warnings = Self.warnings(grant, contract: contract, bundle: bundle,
                                     subjectRegion: subject?.region ?? policy.current.engine.homeRegion)
        if !warnings.isEmpty { answer["warnings"] = warnings }
        return Self.json(answer, status: .created)
    }

    /// What the grant, recorded as asked, will not cover, so the app learns it now and not from a
    /// refused share: a cross-border provider without `cross_border_consent`, sensitive categories
    /// without `separate_consent`, a `policy_version` the privacy policy's versions do not list.
    static func warnings(_ grant: Grant, contract: Contract, bundle: PolicyBundle, subjectRegion: String) -> [String] {
        var found: [String] = []
        if contract.region != subjectRegion, !grant.crossBorderConsent {
            found.append("\(grant.provider) processes in \(contract.region), outside the subject's region \(subjectRegion): without "
                         + "cross_border_consent its shares are refused (cross_border_consent_required)")
        }
        let categories = grant.categories ?? contract.purposes[grant.purpose] ?? []
        let sensitive = categories.filter { bundle.taxonomy.categories[$0]?.sensitive == true }
        if !sensitive.isEmpty, !grant.separateConsent {
            found.append("\(sensitive.sorted().joined(separator: ", ")) \(sensitive.count == 1 ? "is" : "are") sensitive: without "
                         + "separate_consent \(sensitive.count == 1 ? "it is" : "they are") refused (separate_consent_required)")
        }
        if let privacy = bundle.privacyPolicy, privacy.version(grant.policyVersion) == nil {
            found.append("policy_version \(grant.policyVersion) is not a version of the privacy policy (\(privacy.versions.map(\.id).joined(separator: ", ")))")
        }
        return found
    }

    func listGrants(_ request: Request, _ context: BrokerRequestContext) async throws -> Response {
        let id = try Self.subjectID(context)
        try await authorize(request, subject: id)
        let list: [Grant]
        do { list = try await grants.grants(of: id) } catch { throw Problem.logUnavailable(error.message) }
        let time = now()
        return Self.json(["subject": id, "grants": list.map { Self.render($0, at: time) }])
    }

    /// `GET /v1/subjects/{id}/consent-records`: each grant as an ISO/IEC TS 27560 consent record (`ConsentRecords`).
    func consentRecords(_ request: Request, _ context: BrokerRequestContext) async throws -> Response {
        let id = try Self.subjectID(context)
        try await authorize(request, subject: id)
        let list: [Grant]
        let subject: Subject?
        do {
            list = try await grants.grants(of: id)
            subject = try await grants.subject(id)
        } catch { throw Problem.logUnavailable(error.message) }
        let records = ConsentRecords.render(subject: id, grants: list, bundle: bundle, homeRegion: policy.current.engine.homeRegion,
                                            subjectRegion: subject?.region, at: now())
        return Self.json(["subject": id, "schema": "schemas/consent-record.schema.json", "records": records])
    }

    /// The fingerprint under which a provider account is kept and looked up.
    static func accountFingerprint(_ fingerprinter: Fingerprinter, provider: String, account: String) -> String {
        fingerprinter.fingerprint(category: "provider-account:" + provider, value: .string(account))
    }

    nonisolated(unsafe) static let iso: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    static func render(_ subject: Subject) -> [String: Any] {
        var out: [String: Any] = ["id": subject.id]
        if let birth = subject.birthDate { out["birth_date"] = birth.description }
        if let minor = subject.minor { out["minor"] = minor }
        if let region = subject.region { out["region"] = region }
        if let deleted = subject.deletedAt { out["deleted_at"] = iso.string(from: deleted) }
        return out
    }

    /// A grant as the API shows it; `expired` is judged at `time` (the broker's clock).
    static func render(_ grant: Grant, at time: Date) -> [String: Any] {
        var out: [String: Any] = [
            "id": grant.id, "subject": grant.subject, "provider": grant.provider, "purpose": grant.purpose,
            "separate_consent": grant.separateConsent, "cross_border_consent": grant.crossBorderConsent,
            "policy_version": grant.policyVersion, "evidence": grant.evidence,
            "granted_at": iso.string(from: grant.grantedAt),
        ]
        out["categories"] = grant.categories ?? NSNull()
        if let expires = grant.expiresAt { out["expires_at"] = iso.string(from: expires) }
        if let revoked = grant.revokedAt { out["revoked_at"] = iso.string(from: revoked) }
        if grant.accountFingerprint != nil { out["provider_account_linked"] = true }
        out["status"] = grant.revokedAt != nil ? "revoked" : (grant.isExpired(at: time) ? "expired" : "active")
        return out
    }
}

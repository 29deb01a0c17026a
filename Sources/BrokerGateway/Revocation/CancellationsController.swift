import BrokerCore
import BrokerCredentials
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /v1/providers/{provider}/cancellations`: a provider's notice that a user
/// withdrew the authorization on the provider's side revokes the matching grants,
/// exactly as the user's own revoke would (the fence, the job, the log record).
///
/// No bearer token: the notice is authenticated per adapter (`cancellation:`), by
/// the provider's signature. The user is found by the keyed fingerprint of the
/// provider's id for them, given as `provider_account` when the grant was made.
/// The answer is the adapter's `reply` (providers retry otherwise), also when no
/// grant matches, so a notice cannot be used to probe for accounts.
struct CancellationsController: Sendable {
    let revocations: RevocationsController
    let policy: ActivePolicy
    let fingerprinter: Fingerprinter
    /// Notices are small: a larger body is refused before any parsing or signature work.
    let maxBodyBytes = 16_384
    static let maxParameters = 32
    let logger: Logger

    func register(on router: Router<BrokerRequestContext>) {
        router.post("/v1/providers/:provider/cancellations") { request, context in
            try await receive(request, provider: context.parameters.get("provider") ?? "")
        }
    }

    func receive(_ request: Request, provider: String) async throws -> Response {
        let revision = policy.current
        guard let spec = revision.bundle.adapters[provider]?.cancellation, let check = revision.cancellationChecks[provider] else {
            throw Problem(status: 404, code: "cancellation_not_supported",
                          detail: "provider \(provider) sends no cancellation notices to this broker")
        }
        let mediaType = request.headers[.contentType]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaType == "application/x-www-form-urlencoded" else {
            throw Problem(status: 415, code: "unsupported_media_type", detail: "a notice is application/x-www-form-urlencoded")
        }
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBodyBytes) } catch {
            throw Problem(status: 413, code: "body_too_large", detail: "the body is over \(maxBodyBytes) bytes")
        }
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self),
              text.utf8.reduce(0, { $0 + ($1 == UInt8(ascii: "&") ? 1 : 0) }) < Self.maxParameters,
              let parameters = RSAParameterSignature.formPairs(text) else {
            throw Problem(status: 400, code: "malformed_body", detail: "the notice is not a valid form of at most \(Self.maxParameters) parameters")
        }
        // The signed text joins `k=v` with `&` unescaped: a value holding `&` or `=` could regroup
        // another signed text into different parameters. No genuine notice value holds either
        // (the signature itself, Base64 with `=` padding, is not part of the signed text).
        guard !parameters.contains(where: { $0.name != spec.signatureParameter && ($0.value.contains("&") || $0.value.contains("=")) })
        else {
            throw Problem(status: 400, code: "malformed_body", detail: "a notice value holds '&' or '='")
        }
        guard check.verifier.verify(parameters) else {
            logger.warning("cancellation notice with a bad signature refused", metadata: ["provider": "\(provider)"])
            throw Problem(status: 401, code: "notice_unverified", detail: "the notice's signature does not verify")
        }
        for (name, value) in spec.match where Self.value([name], in: parameters) != value {
            throw Problem(status: 400, code: "unexpected_notice", detail: "this endpoint takes notices with \(name)=\(value)")
        }
        guard let account = Self.value(spec.account, in: parameters), !account.isEmpty else {
            throw Problem(status: 400, code: "malformed_body", detail: "the notice does not name the user (\(spec.account.joined(separator: ".")))")
        }
        // It must be about this app, and it revokes only what was granted before the user cancelled:
        // a replayed old notice cannot revoke a grant made at a later login.
        if let appID = check.appID, let fields = spec.app?.fields {
            for field in fields {
                let value = Self.value(field, in: parameters)
                // The first field (the notice's own) must be there; the others, when present, must agree.
                guard value == appID || (value == nil && field != fields.first) else {
                    throw Problem(status: 400, code: "unexpected_notice", detail: "the notice is for another app")
                }
            }
        }
        guard let text = Self.value(spec.time.field, in: parameters), let cancelled = RSAParameterSignature.timeFormatter(format: check.timeFormat.format,
                                                                    timeZone: check.timeFormat.timeZone)?.date(from: text) else {
            throw Problem(status: 400, code: "malformed_body",
                          detail: "the notice has no readable \(spec.time.field.joined(separator: "."))")
        }
        let fingerprint = SubjectsController.accountFingerprint(fingerprinter, provider: provider, account: account)
        let revoked: Int
        do {
            // Notice times have one-second resolution: a grant made in that same second counts as before it.
            revoked = try await revokeGrants(provider: provider, accountFingerprint: fingerprint,
                                             before: cancelled.addingTimeInterval(1))
        } catch {
            throw Problem.logUnavailable(error.message)   // the provider retries the notice
        }
        logger.notice("provider cancellation notice applied", metadata: ["provider": "\(provider)", "grants.revoked": "\(revoked)"])
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: spec.reply)))
    }

    /// Revokes every active grant of the account; returns how many.
    func revokeGrants(provider: String, accountFingerprint: String, before: Date) async throws(LogUnavailable) -> Int {
        var revoked = 0
        for match in try await revocations.store.grants(provider: provider, accountFingerprint: accountFingerprint,
                                                        grantedBefore: before) {
            if case .success = try await revocations.revoke(match.subject, .grant(match.grantID), origin: "provider") {
                revoked += 1
            }
        }
        return revoked
    }

    /// `param`, or `param.key` inside the JSON document `param` holds.
    static func value(_ path: [String], in parameters: [(name: String, value: String)]) -> String? {
        guard let first = path.first, let value = parameters.first(where: { $0.name == first })?.value else { return nil }
        guard path.count == 2 else { return value }
        let object = (try? JSONSerialization.jsonObject(with: Data(value.utf8))) as? [String: Any]
        return object?[path[1]] as? String
    }
}

/// How one provider's cancellation notices are checked: the signature, and the app they must be about.
public struct CancellationCheck: Sendable {
    public var verifier: RSAParameterSignature.Verifier
    /// Our app id at the provider (the adapter credential parameter `app.credential_param` names), if checked.
    public var appID: String?
    /// The notice time's format and zone (checked at start).
    let timeFormat: (format: String, timeZone: String)

    public init(verifier: RSAParameterSignature.Verifier, appID: String?, timeFormat: (format: String, timeZone: String)) {
        self.verifier = verifier; self.appID = appID; self.timeFormat = timeFormat
    }
}

import BrokerCore
import BrokerCredentials
import BrokerService
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /v1/providers/{provider}/cancellations`: a provider's notice that a user
/// withdrew the authorization on the provider's side (Alipay's
/// `alipay.open.auth.userauth.cancelled`) revokes the matching grants, exactly as
/// the user's own revoke would (the fence, the job, the log record).
///
/// No bearer token: the notice is authenticated per adapter (`cancellation:`), by
/// the provider's signature. The user is found by the keyed fingerprint of the
/// provider's id for them, given as `provider_account` when the grant was made.
/// The answer is the literal `success` Alipay expects (it retries otherwise), also
/// when no grant matches, so a notice cannot be used to probe for accounts.
struct CancellationsController: Sendable {
    let revocations: RevocationsController
    let verifiers: [String: AlipayRSA2.Verifier]
    let fingerprinter: Fingerprinter
    let maxBodyBytes: Int
    let logger: Logger

    func register(on router: Router<BrokerRequestContext>) {
        router.post("/v1/providers/:provider/cancellations") { request, context in
            try await receive(request, provider: context.parameters.get("provider") ?? "")
        }
    }

    func receive(_ request: Request, provider: String) async throws -> Response {
        guard let spec = revocations.bundle.adapters[provider]?.cancellation, let verifier = verifiers[provider] else {
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
              let parameters = AlipayRSA2.formPairs(text) else {
            throw Problem(status: 400, code: "malformed_body", detail: "the notice is not a valid form")
        }
        guard verifier.verify(parameters) else {
            logger.warning("cancellation notice with a bad signature refused", metadata: ["provider": "\(provider)"])
            throw Problem(status: 401, code: "notice_unverified", detail: "the notice's signature does not verify")
        }
        let method = parameters.first { $0.name == "msg_method" }?.value ?? parameters.first { $0.name == "method" }?.value
        guard method == spec.notice else {
            throw Problem(status: 400, code: "unexpected_notice", detail: "this endpoint takes \(spec.notice) notices")
        }
        guard let account = Self.account(spec.account, in: parameters), !account.isEmpty else {
            throw Problem(status: 400, code: "malformed_body", detail: "the notice does not name the user (\(spec.account.joined(separator: ".")))")
        }
        let fingerprint = SubjectsController.accountFingerprint(fingerprinter, provider: provider, account: account)
        let revoked: Int
        do {
            revoked = try await revokeGrants(provider: provider, accountFingerprint: fingerprint)
        } catch {
            throw Problem.logUnavailable(error.message)   // the provider retries the notice
        }
        logger.notice("provider cancellation notice applied", metadata: ["provider": "\(provider)", "grants.revoked": "\(revoked)"])
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "success")))
    }

    /// Revokes every active grant of the account; returns how many.
    func revokeGrants(provider: String, accountFingerprint: String) async throws(LogUnavailable) -> Int {
        var revoked = 0
        for match in try await revocations.store.grants(provider: provider, accountFingerprint: accountFingerprint) {
            if case .success = try await revocations.revoke(match.subject, .grant(match.grantID), origin: "provider") {
                revoked += 1
            }
        }
        return revoked
    }

    /// `param`, or `param.key` inside the JSON document `param` holds.
    static func account(_ path: [String], in parameters: [(name: String, value: String)]) -> String? {
        guard let first = path.first, let value = parameters.first(where: { $0.name == first })?.value else { return nil }
        guard path.count == 2 else { return value }
        let object = (try? JSONSerialization.jsonObject(with: Data(value.utf8))) as? [String: Any]
        return object?[path[1]] as? String
    }
}

import Foundation

/// OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with the client secret in
/// the form body, as the token endpoints this broker talks to expect.
///
/// Token lifetime comes from `expires_in`; the token is replaced when less than
/// `refreshBefore` seconds remain, but never later than half its lifetime, so a
/// short-lived token is still reused. Sent as `Authorization: Bearer <token>`.
struct OAuth2ClientCredentials: Sendable {
    static let defaultRefreshBefore = 300
    /// Used when the endpoint omits `expires_in` (it is only RECOMMENDED).
    static let defaultLifetime = 300

    let endpoint: TokenEndpoint
    let clientID: String
    let clientSecret: String
    let scope: String?
    let refreshBefore: Int

    func requestBody() -> [UInt8] {
        var body = "grant_type=client_credentials&client_id=" + PercentEncoding.encode(clientID)
            + "&client_secret=" + PercentEncoding.encode(clientSecret)
        if let scope { body += "&scope=" + PercentEncoding.encode(scope) }
        return Array(body.utf8)
    }

    func fetch(now: @Sendable () -> Date) async -> Result<IssuedToken, CredentialError> {
        let started = now()
        return await endpoint.post(contentType: "application/x-www-form-urlencoded", body: requestBody())
            .flatMap { Self.bearerToken($0, from: endpoint, issuedAt: started, refreshBefore: refreshBefore) }
    }

    /// The Bearer token of an OAuth 2.0 token answer (RFC 6749 §5.1), to be replaced when less than
    /// `refreshBefore` seconds of its `expires_in` remain, but never later than half its lifetime.
    static func bearerToken(_ object: [String: Any], from endpoint: TokenEndpoint, issuedAt started: Date,
                            refreshBefore: Int) -> Result<IssuedToken, CredentialError> {
        let kind = endpoint.credentialType
        guard let token = object["access_token"] as? String, TokenResponse.isUsableToken(token) else {
            return .failure(.unavailable("credential type \(kind): token endpoint \(endpoint.host) answered without a usable access_token"))
        }
        if let type = object["token_type"] as? String, type.lowercased() != "bearer" {
            return .failure(.unavailable("credential type \(kind): token endpoint \(endpoint.host) issued token_type '\(type.prefix(32))', not Bearer"))
        }
        var lifetime = defaultLifetime
        if let raw = object["expires_in"] {
            guard let seconds = TokenResponse.seconds(raw), seconds > 0 else {
                return .failure(.unavailable("credential type \(kind): token endpoint \(endpoint.host) answered an invalid expires_in"))
            }
            lifetime = seconds
        }
        let early = min(refreshBefore, lifetime / 2)
        return .success(IssuedToken(value: token, refreshAt: started.addingTimeInterval(TimeInterval(lifetime - early))))
    }
}

import BrokerFields
@preconcurrency import Crypto
import _CryptoExtras
import Foundation

/// OAuth 2.0 with a JWT assertion (RFC 7523), as service-account credentials use it: the
/// broker signs `{"alg":"RS256","typ":"JWT"[,"kid"]}` . `{iss: client_email, scope, aud, iat,
/// exp: iat + 3600}` with the service account's RSA key, posts
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>` to the token URL and
/// sends the access token it gets as `Authorization: Bearer`. `aud` is the provider's token URL
/// (`audience`, by default `token_url`: kept apart so the sandbox can move the URL).
struct OAuth2JWTBearer: @unchecked Sendable {
    static let grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    static let assertionLifetime: Int64 = 3600

    let endpoint: TokenEndpoint
    let clientEmail: String
    let scope: String
    let audience: String
    let keyID: String?
    /// `_RSA.Signing.PrivateKey` is not Sendable; it is only read.
    let key: _RSA.Signing.PrivateKey

    init(endpoint: TokenEndpoint, clientEmail: String, privateKeyPEM: String, scope: String, audience: String?,
         keyID: String?) throws(CredentialError) {
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM.replacingOccurrences(of: "\\n", with: "\n"))
        } catch {
            throw .misconfigured("credential type oauth2_jwt_bearer: private_key is not a PEM RSA private key")
        }
        guard key.keySizeInBits >= 2048 else {
            throw .misconfigured("credential type oauth2_jwt_bearer: private_key is shorter than 2048 bits")
        }
        self.endpoint = endpoint; self.clientEmail = clientEmail; self.scope = scope
        self.audience = audience ?? endpoint.url; self.keyID = keyID
    }

    /// The signed assertion for `now`.
    func assertion(now: Date) throws(CredentialError) -> String {
        let issuedAt = Int64(now.timeIntervalSince1970.rounded(.down))
        var header = #"{"alg":"RS256","typ":"JWT""#
        if let keyID { header += #","kid":"# + JSONText.quoted(keyID) }
        header += "}"
        let claims = #"{"aud":"# + JSONText.quoted(audience) + #","exp":"# + String(issuedAt + Self.assertionLifetime)
            + #","iat":"# + String(issuedAt) + #","iss":"# + JSONText.quoted(clientEmail) + #","scope":"# + JSONText.quoted(scope) + "}"
        let input = ES256TokenSigner.base64URL(Array(header.utf8)) + "." + ES256TokenSigner.base64URL(Array(claims.utf8))
        do {
            let signature = try key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
            return input + "." + ES256TokenSigner.base64URL(Array(signature.rawRepresentation))
        } catch {
            throw .unavailable("credential type oauth2_jwt_bearer: signing the assertion failed")
        }
    }

    func fetch(now: @Sendable () -> Date) async -> Result<IssuedToken, CredentialError> {
        let started = now()
        let jwt: String
        do { jwt = try assertion(now: started) } catch { return .failure(error) }
        let body = "grant_type=" + PercentEncoding.encode(Self.grantType) + "&assertion=" + jwt
        return await endpoint.post(contentType: "application/x-www-form-urlencoded", body: Array(body.utf8))
            .flatMap { OAuth2ClientCredentials.bearerToken($0, from: endpoint, issuedAt: started,
                                                           refreshBefore: OAuth2ClientCredentials.defaultRefreshBefore) }
    }
}

import BrokerFields
@preconcurrency import Crypto
import Foundation

/// A provider token that is an ES256 JWT signed by the broker itself: header
/// `{"alg":"ES256","kid":<key id>}`, claims `{"iss":<team id>,"iat":<now>}` (a provider token,
/// `jwt_es256`), or, with a `client` (an OAuth client secret posted in the form,
/// `jwt_es256_client_secret`), `{"aud":<audience>,"exp","iat","iss":<team id>,"sub":<client id>}`.
///
/// Minted locally (no network), kept for `refreshSeconds` (default 50 minutes,
/// held between 20 and 60 minutes: refreshing more often is refused by such
/// providers, and older tokens are rejected), sent as `Authorization: bearer <jwt>`.
struct ES256TokenSigner: Sendable {
    static let defaultRefresh = 3000
    static let refreshRange = 1200...3600

    let keyID: String
    let teamID: String
    /// For a client secret: the client id (`sub`) and the audience it is for; nil for a provider token.
    let client: (id: String, audience: String)?
    /// The P-256 private key's raw scalar (the key type itself is not Sendable).
    let privateKey: [UInt8]
    let refreshSeconds: Int

    init(keyID: String, teamID: String, privateKeyPEM: String, refreshSeconds: Int?,
         client: (id: String, audience: String)? = nil) throws(CredentialError) {
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        } catch {
            throw .misconfigured("credential type jwt_es256: private_key is not a PEM-encoded P-256 private key")
        }
        self.keyID = keyID
        self.teamID = teamID
        self.client = client
        self.privateKey = Array(key.rawRepresentation)
        let wanted = refreshSeconds ?? Self.defaultRefresh
        self.refreshSeconds = min(max(wanted, Self.refreshRange.lowerBound), Self.refreshRange.upperBound)
    }

    func mint(now: Date) -> Result<IssuedToken, CredentialError> {
        let issuedAt = Int64(now.timeIntervalSince1970.rounded(.down))
        let header = "{\"alg\":\"ES256\",\"kid\":" + JSONText.quoted(keyID) + "}"
        var claims = "{\"iss\":" + JSONText.quoted(teamID) + ",\"iat\":" + String(issuedAt) + "}"
        if let client {
            // Valid a little past its reuse, so a secret in flight never expires on the way.
            claims = "{\"aud\":" + JSONText.quoted(client.audience) + ",\"exp\":" + String(issuedAt + Int64(refreshSeconds) + 600)
                + ",\"iat\":" + String(issuedAt) + ",\"iss\":" + JSONText.quoted(teamID) + ",\"sub\":" + JSONText.quoted(client.id) + "}"
        }
        let signingInput = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(Array(claims.utf8))
        do {
            let key = try P256.Signing.PrivateKey(rawRepresentation: privateKey)
            let signature = try key.signature(for: Array(signingInput.utf8))
            let jwt = signingInput + "." + Self.base64URL(Array(signature.rawRepresentation))
            return .success(IssuedToken(value: jwt, refreshAt: now.addingTimeInterval(TimeInterval(refreshSeconds))))
        } catch {
            return .failure(.unavailable("credential type jwt_es256: signing the token failed"))
        }
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}

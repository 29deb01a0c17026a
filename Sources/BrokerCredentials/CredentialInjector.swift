import BrokerCore
import BrokerCurl
import Foundation
import Logging

/// Adds one adapter's provider credentials to outbound requests, so callers never
/// send or see them.
///
/// One injector per adapter, created at start (all secrets resolved then) and kept
/// for the life of the process. Static credentials (`header`, `bearer`, `query`)
/// and request signing (`tc3_hmac_sha256`) need no I/O; token types
/// (`oauth2_client_credentials`, `signed_token_request`, `jwt_es256`) keep one
/// cached token with single-flight refresh (see `TokenCache`): concurrent
/// requests during a refresh cause one token request, a failed refresh fails the
/// requests waiting for it with `credential_unavailable` and the next request
/// tries again.
///
/// Logs carry `credential.type` and `credential.token_refresh`; never a secret,
/// token or signature.
public final class CredentialInjector: Sendable {
    private enum Mode: Sendable {
        case none
        case header(name: String, value: String)
        case query([ExactKey: String])
        case oauth2(OAuth2ClientCredentials)
        case oauth2JWT(OAuth2JWTBearer)
        case signedToken(SignedTokenRequest)
        case tc3(TC3Signer)
        case acs3(ACS3Signer)
        case acsV1(ACSV1Signer)
        case es256(ES256TokenSigner)
        case clientSecretJWT(ES256TokenSigner, clientID: String)
        case rsaParams(RSAParameterSignature.Signer)
        case md5Query(MD5QuerySignature)
    }

    /// The adapter's credential type.
    public let kind: CredentialSpec.Kind
    private let mode: Mode
    private let cache = TokenCache()
    private let now: @Sendable () -> Date
    private let logger: Logger

    /// - Parameters:
    ///   - secrets: every secret reference of `spec`, resolved by the executable.
    ///   - client: reaches token endpoints (only token types use it).
    ///   - now: the clock for timestamps, signatures and token expiry.
    /// - Throws: `credential_misconfigured` when a needed secret is missing, a
    ///   parameter is missing or invalid, or the type is not supported.
    public init(spec: CredentialSpec, secrets: [SecretReference: String], client: any UpstreamClient,
                now: @escaping @Sendable () -> Date = Date.init, logger: Logger) throws(CredentialError) {
        let reader = SpecReader(spec: spec, secrets: secrets)
        let type = spec.kind.rawValue
        switch spec.kind {
        case .none:
            mode = .none
        case .header:
            let name = try reader.text("header")
            guard HeaderSyntax.isToken(name) else {
                throw .misconfigured("credential type header: '\(name.prefix(64))' is not a valid header name")
            }
            let value = (spec.text("prefix") ?? "") + (try reader.secret("secret"))
            guard HeaderSyntax.isValidValue(value) else {
                throw .misconfigured("credential type header: the secret contains a line break or NUL")
            }
            mode = .header(name: name, value: value)
        case .bearer:
            let token = try reader.secret("token")
            guard HeaderSyntax.isValidValue(token) else {
                throw .misconfigured("credential type bearer: the token contains a line break or NUL")
            }
            mode = .header(name: "Authorization", value: "Bearer " + token)
        case .query:
            mode = .query(try Self.queryParameters(reader))
        case .md5QuerySig:
            mode = .md5Query(MD5QuerySignature(parameters: try Self.queryParameters(reader), secretKey: try reader.secret("secret_key"),
                                               signatureParameter: spec.text("signature_param") ?? "sig"))
        case .oauth2ClientCredentials:
            let refresh = spec.number("refresh_before_seconds") ?? OAuth2ClientCredentials.defaultRefreshBefore
            mode = .oauth2(OAuth2ClientCredentials(
                endpoint: try TokenEndpoint(url: try reader.text("token_url"), client: client, credentialType: type),
                clientID: try reader.textOrSecret("client_id"),
                clientSecret: try reader.secret("client_secret"),
                scope: spec.text("scope"),
                refreshBefore: max(0, refresh)))
        case .signedTokenRequest:
            mode = .signedToken(try Self.signedTokenRequest(reader, client: client))
        case .tc3HMACSHA256:
            mode = .tc3(TC3Signer(secretID: try reader.secret("secret_id"), secretKey: try reader.secret("secret_key"),
                                  service: try reader.text("service"), version: try reader.text("version"),
                                  region: spec.text("region")))
        case .jwtES256ClientSecret:
            let clientID = try reader.textOrSecret("client_id")
            mode = .clientSecretJWT(try ES256TokenSigner(keyID: try reader.textOrSecret("key_id"), teamID: try reader.textOrSecret("team_id"),
                                                     privateKeyPEM: try reader.secret("private_key"), refreshSeconds: 3600,
                                                     client: (clientID, try reader.text("audience"))),
                                clientID: clientID)
        case .jwtES256:
            mode = .es256(try ES256TokenSigner(keyID: try reader.textOrSecret("key_id"),
                                               teamID: try reader.textOrSecret("team_id"),
                                               privateKeyPEM: try reader.secret("private_key"),
                                               refreshSeconds: spec.number("refresh_seconds")))
        case .rsaSHA256Params:
            var parameters: [(name: String, value: String)] = []
            for (name, value) in try reader.sortedTable("params") {
                switch value {
                case .secret(let reference): parameters.append((name, try reader.resolve(reference, "params.\(name)")))
                case .text(let text): parameters.append((name, text))
                default: throw .misconfigured("credential type rsa_sha256_params: params.\(name) must be text or a secret reference")
                }
            }
            var timestamp: (name: String, format: String, timeZone: String)?
            if case .table(let table)? = spec.parameters["timestamp"] {
                guard case .text(let name)? = table["param"], case .text(let format)? = table["format"],
                      case .text(let zone)? = table["time_zone"] else {
                    throw .misconfigured("credential type rsa_sha256_params: timestamp needs param, format and time_zone")
                }
                timestamp = (name, format, zone)
            }
            mode = .rsaParams(try RSAParameterSignature.Signer(parameters: parameters, timestamp: timestamp,
                                                               signatureParameter: spec.text("signature_param") ?? "sign",
                                                               privateKey: try reader.secret("private_key")))
        case .oauth2JWTBearer:
            mode = .oauth2JWT(try OAuth2JWTBearer(
                endpoint: try TokenEndpoint(url: try reader.text("token_url"), client: client, credentialType: type),
                clientEmail: try reader.textOrSecret("client_email"), privateKeyPEM: try reader.secret("private_key"),
                scope: try reader.text("scope"), audience: spec.text("audience"),
                keyID: spec.parameters["key_id"] == nil ? nil : try reader.textOrSecret("key_id")))
        case .acs3HMACSHA256:
            mode = .acs3(ACS3Signer(accessKeyID: try reader.secret("access_key_id"),
                                    accessKeySecret: try reader.secret("access_key_secret"), version: try reader.text("version")))
        case .acsV1HMACSHA1:
            mode = .acsV1(ACSV1Signer(accessKeyID: try reader.secret("access_key_id"),
                                             accessKeySecret: try reader.secret("access_key_secret"),
                                             version: try reader.text("version"), regionID: spec.text("region_id")))
        }
        self.kind = spec.kind
        self.now = now
        var logger = logger
        logger[metadataKey: "credential.type"] = .string(type)
        self.logger = logger
    }

    /// Adds the credential to `request`.
    ///
    /// `credentialFields` are the operation's declarations marked
    /// `credential: true`; for the `query` type they say which parameters this
    /// operation takes (a parameter the operation does not declare is not added).
    /// - Throws: `credential_unavailable` when a token cannot be obtained;
    ///   `credential_misconfigured` when the operation cannot carry the credential
    ///   (a form field injected into a JSON body).
    public func authorize(_ request: inout OutboundRequest, credentialFields: [FieldDeclaration]) async throws(CredentialError) {
        switch mode {
        case .none:
            return
        case .header(let name, let value):
            request.setHeader(name, value)
        case .query(let params):
            try Self.appendQueryCredentials(params, to: &request, credentialFields: credentialFields, credentialType: kind.rawValue)
        case .oauth2(let grant):
            let now = self.now
            let token = try await token { await grant.fetch(now: now) }
            request.setHeader("Authorization", "Bearer " + token)
        case .oauth2JWT(let grant):
            let now = self.now
            let token = try await token { await grant.fetch(now: now) }
            request.setHeader("Authorization", "Bearer " + token)
        case .signedToken(let call):
            let now = self.now
            let token = try await token { await call.fetch(now: now) }
            switch call.injection {
            case .header(let name): request.setHeader(name, token)
            case .query(let name): request.appendQueryParameter(name, token)
            case .formField(let name): try request.appendFormField(name, token, credentialType: kind.rawValue)
            }
        case .tc3(let signer):
            signer.sign(&request, timestamp: Int64(now().timeIntervalSince1970.rounded(.down)))
        case .acs3(let signer):
            signer.sign(&request, now: now())
        case .acsV1(let signer):
            signer.sign(&request, now: now())
        case .es256(let signer):
            let now = self.now
            let token = try await token { signer.mint(now: now()) }
            request.setHeader("Authorization", "bearer " + token)
        case .clientSecretJWT(let signer, let clientID):
            let now = self.now
            let secret = try await token { signer.mint(now: now()) }
            try request.appendFormField("client_id", clientID, credentialType: kind.rawValue)
            try request.appendFormField("client_secret", secret, credentialType: kind.rawValue)
        case .rsaParams(let signer):
            try signer.sign(&request, now: now())
        case .md5Query(let signer):
            try Self.appendQueryCredentials(signer.parameters, to: &request, credentialFields: credentialFields, credentialType: kind.rawValue)
            try signer.sign(&request)
        }
    }

    /// Adds each of `params` that the operation declares as a query field `credential: true`, or as
    /// a top-level field of its form body (an OAuth client's `client_id` and `client_secret`), once.
    private static func appendQueryCredentials(_ params: [ExactKey: String], to request: inout OutboundRequest,
                                               credentialFields: [FieldDeclaration], credentialType: String) throws(CredentialError) {
        var added = Set<ExactKey>()
        for field in credentialFields where field.location == .query || (field.location == .body && request.bodyFormat == .form) {
            guard field.pattern.segments.count == 1, case .key(let name) = field.pattern.segments[0],
                  let value = params[name], added.insert(name).inserted else { continue }
            if field.location == .query {
                request.appendQueryParameter(name.string, value)
            } else {
                try request.appendFormField(name.string, value, credentialType: credentialType)
            }
        }
    }

    /// `params: {name: secret}` of the `query` and `md5_query_sig` types, resolved.
    private static func queryParameters(_ reader: SpecReader) throws(CredentialError) -> [ExactKey: String] {
        var params: [ExactKey: String] = [:]
        for (name, value) in try reader.sortedTable("params") {
            guard case .secret(let ref) = value else {
                throw .misconfigured("credential type \(reader.spec.kind.rawValue): params.\(name) must be a secret reference")
            }
            params[ExactKey(name)] = try reader.resolve(ref, "params.\(name)")
        }
        return params
    }

    /// Forgets the cached token (call after the provider answered 401 with it);
    /// the next `authorize` fetches a new one. No effect for types without tokens.
    public func invalidate() async {
        await cache.invalidate()
        logger.info("credential token invalidated", metadata: ["credential.token_refresh": "invalidated"])
    }

    private func token(_ fetch: @escaping @Sendable () async -> Result<IssuedToken, CredentialError>) async throws(CredentialError) -> String {
        let logger = self.logger
        let now = self.now
        return try await cache.token(now: now()) {
            let result = await fetch()
            switch result {
            case .success(let token):
                let seconds = Int(token.refreshAt.timeIntervalSince(now()).rounded())
                logger.info("credential token fetched", metadata: [
                    "credential.token_refresh": "ok", "credential.token_reuse_s": .stringConvertible(seconds)])
            case .failure(let error):
                logger.warning("credential token fetch failed", metadata: [
                    "credential.token_refresh": "failed", "credential.error": .string(error.message)])
            }
            return result
        }
    }

    private static func signedTokenRequest(_ reader: SpecReader, client: any UpstreamClient) throws(CredentialError) -> SignedTokenRequest {
        let type = reader.spec.kind.rawValue
        guard let bodyKind = SignedTokenRequest.BodyKind(rawValue: try reader.text("request_body")) else {
            throw .misconfigured("credential type \(type): request_body must be form or json")
        }
        var secrets: [String: String] = [:]
        for (name, value) in try reader.sortedTable("secrets") {
            guard case .secret(let ref) = value else {
                throw .misconfigured("credential type \(type): secrets.\(name) must be a secret reference")
            }
            secrets[name] = try reader.resolve(ref, "secrets.\(name)")
        }
        let sign = try reader.table("sign")
        guard case .text(let algorithmName)? = sign["algorithm"],
              let algorithm = SignedTokenRequest.Algorithm(rawValue: algorithmName) else {
            throw .misconfigured("credential type \(type): sign.algorithm must be sha256_hex or md5_hex")
        }
        guard case .list(let signOf)? = sign["of"], !signOf.isEmpty else {
            throw .misconfigured("credential type \(type): sign.of must list the signed parts")
        }
        for part in signOf where part != "timestamp" && secrets[part] == nil {
            throw .misconfigured("credential type \(type): sign.of names '\(part)', which is neither a secret nor timestamp")
        }
        guard case .list(let params)? = reader.spec.parameters["params"], !params.isEmpty else {
            throw .misconfigured("credential type \(type): params must list the request parameters")
        }
        for param in params where param != "timestamp" && param != "sign" && secrets[param] == nil {
            throw .misconfigured("credential type \(type): params names '\(param)', which is neither a secret, timestamp nor sign")
        }
        let path = try reader.text("token_path").split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.contains(where: \.isEmpty) else {
            throw .misconfigured("credential type \(type): token_path must be a dotted path such as data.token")
        }
        guard let lifetime = reader.spec.number("lifetime_seconds"), lifetime > 0 else {
            throw .misconfigured("credential type \(type): lifetime_seconds must be a positive number")
        }
        let inject = try reader.table("inject")
        let injection: SignedTokenRequest.Injection
        switch (inject.count, inject.first) {
        case (1, (let key, .text(let name))?) where !name.isEmpty:
            switch key {
            case "form_field": injection = .formField(name)
            case "query": injection = .query(name)
            case "header" where HeaderSyntax.isToken(name): injection = .header(name)
            default: throw .misconfigured("credential type \(type): inject must be one of form_field, header, query with a name")
            }
        default:
            throw .misconfigured("credential type \(type): inject must be one of form_field, header, query with a name")
        }
        return SignedTokenRequest(
            endpoint: try TokenEndpoint(url: try reader.text("token_url"), client: client, credentialType: type),
            bodyKind: bodyKind, secrets: secrets, algorithm: algorithm, signOf: signOf, params: params,
            tokenPath: path, lifetime: lifetime, injection: injection)
    }
}

/// Typed access to a `CredentialSpec`'s parameters with resolved secrets; every
/// failure is `credential_misconfigured` and names the parameter, never a value.
private struct SpecReader {
    let spec: CredentialSpec
    let secrets: [SecretReference: String]

    var type: String { spec.kind.rawValue }

    func resolve(_ ref: SecretReference, _ what: String) throws(CredentialError) -> String {
        guard let value = secrets[ref] else {
            throw .misconfigured("credential type \(type): secret \(what) (\(ref)) was not resolved")
        }
        return value
    }

    func secret(_ name: String) throws(CredentialError) -> String {
        guard let ref = spec.secret(name) else {
            throw .misconfigured("credential type \(type): parameter \(name) must be a secret reference")
        }
        return try resolve(ref, name)
    }

    func text(_ name: String) throws(CredentialError) -> String {
        guard let value = spec.text(name), !value.isEmpty else {
            throw .misconfigured("credential type \(type): parameter \(name) is missing")
        }
        return value
    }

    func textOrSecret(_ name: String) throws(CredentialError) -> String {
        if let ref = spec.secret(name) { return try resolve(ref, name) }
        return try text(name)
    }

    func sortedTable(_ name: String) throws(CredentialError) -> [(String, CredentialSpec.Value)] {
        guard case .table(let table)? = spec.parameters[name] else {
            throw .misconfigured("credential type \(type): parameter \(name) is missing")
        }
        return table.keys.sorted().map { ($0, table[$0]!) }
    }

    func table(_ name: String) throws(CredentialError) -> [String: CredentialSpec.Value] {
        guard case .table(let table)? = spec.parameters[name] else {
            throw .misconfigured("credential type \(type): parameter \(name) is missing")
        }
        return table
    }
}

extension CredentialSpec {
    fileprivate func number(_ name: String) -> Int? {
        if case .number(let value)? = parameters[name] { return value }
        return nil
    }
}

/// HTTP header syntax checks (RFC 9110 token; values without CR, LF, NUL).
enum HeaderSyntax {
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
        }
    }

    static func isValidValue(_ value: String) -> Bool {
        !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }
}

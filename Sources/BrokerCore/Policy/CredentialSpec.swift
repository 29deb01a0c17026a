/// How the broker authenticates to a provider; callers never hold these credentials.
///
/// The adapter's `credentials:` section. Each type names its parameters; secret
/// parameters are references resolved at start. The broker injects the result
/// (a header, query parameters, a signature, a token from a token endpoint).
public struct CredentialSpec: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case header, query, bearer
        case oauth2ClientCredentials = "oauth2_client_credentials"
        case oauth2JWTBearer = "oauth2_jwt_bearer"
        case jwtES256 = "jwt_es256"
        case tc3HMACSHA256 = "tc3_hmac_sha256"
        case acs3HMACSHA256 = "acs3_hmac_sha256"
        case acsV1HMACSHA1 = "acs_v1_hmac_sha1"
        case signedTokenRequest = "signed_token_request"
        case rsaSHA256Params = "rsa_sha256_params"
        case md5QuerySig = "md5_query_sig"
        case jwtES256ClientSecret = "jwt_es256_client_secret"
        case none
    }

    /// One parameter of a credential type.
    public enum Value: Sendable, Hashable {
        case secret(SecretReference)
        case text(String)
        case list([String])
        case table([String: Value])
        case number(Int)
    }

    public var kind: Kind
    public var parameters: [String: Value]

    public init(kind: Kind, parameters: [String: Value] = [:]) {
        self.kind = kind
        self.parameters = parameters
    }

    public func secret(_ name: String) -> SecretReference? {
        if case .secret(let ref)? = parameters[name] { return ref }
        return nil
    }

    public func text(_ name: String) -> String? {
        if case .text(let value)? = parameters[name] { return value }
        return nil
    }

    /// Every secret reference, for start-up resolution.
    public var secretReferences: [SecretReference] {
        func collect(_ value: Value) -> [SecretReference] {
            switch value {
            case .secret(let ref): return [ref]
            case .table(let table): return table.keys.sorted().flatMap { collect(table[$0]!) }
            default: return []
            }
        }
        return parameters.keys.sorted().flatMap { collect(parameters[$0]!) }
    }

    enum Param { case secret, text, url, list, secretTable, number, textOrSecret, table, textOrSecretTable }

    /// Required and optional parameters per kind.
    static func schema(_ kind: Kind) -> (required: [String: Param], optional: [String: Param]) {
        switch kind {
        case .none: return ([:], [:])
        case .header: return (["header": .text, "secret": .secret], ["prefix": .text])
        case .bearer: return (["token": .secret], [:])
        case .query: return (["params": .secretTable], [:])
        case .md5QuerySig: return (["params": .secretTable, "secret_key": .secret], ["signature_param": .text])
        case .oauth2ClientCredentials:
            return (["token_url": .url, "client_id": .textOrSecret, "client_secret": .secret],
                    ["scope": .text, "refresh_before_seconds": .number])
        case .oauth2JWTBearer:
            return (["token_url": .url, "client_email": .textOrSecret, "private_key": .secret, "scope": .text],
                    ["audience": .url, "key_id": .textOrSecret])
        case .jwtES256:
            return (["key_id": .textOrSecret, "team_id": .textOrSecret, "private_key": .secret], ["refresh_seconds": .number])
        case .jwtES256ClientSecret:
            return (["key_id": .textOrSecret, "team_id": .textOrSecret, "client_id": .textOrSecret, "private_key": .secret,
                     "audience": .url], [:])
        case .tc3HMACSHA256:
            return (["secret_id": .secret, "secret_key": .secret, "service": .text, "version": .text], ["region": .text])
        case .acs3HMACSHA256:
            return (["access_key_id": .secret, "access_key_secret": .secret, "version": .text], [:])
        case .acsV1HMACSHA1:
            return (["access_key_id": .secret, "access_key_secret": .secret, "version": .text], ["region_id": .text])
        case .rsaSHA256Params:
            return (["private_key": .secret, "params": .textOrSecretTable], ["timestamp": .table, "signature_param": .text])
        case .signedTokenRequest:
            return (["token_url": .url, "request_body": .text, "secrets": .secretTable, "sign": .table,
                     "params": .list, "token_path": .text, "lifetime_seconds": .number, "inject": .table], [:])
        }
    }

    static func decode(_ node: YAMLNode) -> CredentialSpec? {
        guard let pairs = node.mapping("credentials") else { return nil }
        guard let typeNode = pairs.first(where: { $0.key == "type" })?.value,
              let typeName = typeNode.string("credentials: type") else {
            node.error("credentials: missing required key 'type'")
            return nil
        }
        guard let kind = Kind(rawValue: typeName) else {
            let known = Kind.allCases.map(\.rawValue).joined(separator: ", ")
            typeNode.error("credentials: unknown type '\(PolicyIssue.excerpt(typeName))' (known: \(known))")
            return nil
        }
        let (required, optional) = schema(kind)
        var parameters: [String: Value] = [:]
        var ok = true
        for pair in pairs where pair.key != "type" {
            guard let param = required[pair.key] ?? optional[pair.key] else {
                let known = Set(required.keys).union(optional.keys).sorted().joined(separator: ", ")
                node.issues.add(node.file, pair.keyLine,
                                "credentials (\(typeName)): unknown key '\(PolicyIssue.excerpt(pair.key))' (known: \(known.isEmpty ? "none" : known))")
                ok = false
                continue
            }
            let what = "credentials: \(pair.key)"
            guard let value = decodeValue(pair.value, param, what) else { ok = false; continue }
            parameters[pair.key] = value
        }
        for key in required.keys.sorted() where parameters[key] == nil && !pairs.contains(where: { $0.key == key }) {
            node.error("credentials (\(typeName)): missing required key '\(key)'")
            ok = false
        }
        if kind == .signedTokenRequest, ok { ok = validateSignedTokenRequest(parameters, node) }
        return ok ? CredentialSpec(kind: kind, parameters: parameters) : nil
    }

    private static func decodeValue(_ node: YAMLNode, _ param: Param, _ what: String) -> Value? {
        switch param {
        case .secret:
            return SecretReference.decode(node, what, allowLiteral: false).map { .secret($0) }
        case .textOrSecret:
            if case .scalar = node.node { return node.string(what).map { .text($0) } }
            return SecretReference.decode(node, what, allowLiteral: false).map { .secret($0) }
        case .text:
            return node.string(what).map { .text($0) }
        case .number:
            return node.int(what, min: 0).map { .number($0) }
        case .url:
            guard let text = node.string(what) else { return nil }
            guard UpstreamURL(text) != nil else {
                node.error("\(what) must be an http(s) URL, not '\(text)'")
                return nil
            }
            return .text(text)
        case .list:
            return node.strings(what).map { .list($0.map(\.0)) }
        case .secretTable:
            guard let pairs = node.mapping(what) else { return nil }
            var table: [String: Value] = [:]
            for pair in pairs {
                guard let ref = SecretReference.decode(pair.value, "\(what): \(pair.key)", allowLiteral: false) else { return nil }
                table[pair.key] = .secret(ref)
            }
            return .table(table)
        case .textOrSecretTable:
            guard let pairs = node.mapping(what) else { return nil }
            var table: [String: Value] = [:]
            for pair in pairs {
                guard let value = decodeValue(pair.value, .textOrSecret, "\(what): \(pair.key)") else { return nil }
                table[pair.key] = value
            }
            return .table(table)
        case .table:
            guard let pairs = node.mapping(what) else { return nil }
            var table: [String: Value] = [:]
            for pair in pairs {
                if case .sequence = pair.value.node {
                    guard let items = pair.value.strings("\(what): \(pair.key)") else { return nil }
                    table[pair.key] = .list(items.map(\.0))
                } else {
                    guard let text = pair.value.string("\(what): \(pair.key)") else { return nil }
                    table[pair.key] = .text(text)
                }
            }
            return .table(table)
        }
    }

    /// `sign: {algorithm, of}`, `params`, `inject` must fit together.
    private static func validateSignedTokenRequest(_ p: [String: Value], _ node: YAMLNode) -> Bool {
        var ok = true
        guard case .table(let secrets)? = p["secrets"], case .table(let sign)? = p["sign"],
              case .list(let params)? = p["params"], case .table(let inject)? = p["inject"],
              case .text(let bodyKind)? = p["request_body"] else { return false }
        let known = Set(secrets.keys).union(["timestamp", "sign"])
        if !["form", "json"].contains(bodyKind) {
            node.error("credentials: request_body must be form or json, not '\(bodyKind)'"); ok = false
        }
        if case .text(let algorithm)? = sign["algorithm"] {
            if !["sha256_hex", "md5_hex"].contains(algorithm) {
                node.error("credentials: sign.algorithm must be sha256_hex or md5_hex, not '\(algorithm)'"); ok = false
            }
        } else {
            node.error("credentials: sign.algorithm is required"); ok = false
        }
        if case .list(let parts)? = sign["of"] {
            for part in parts where !known.subtracting(["sign"]).contains(part) {
                node.error("credentials: sign.of names '\(part)', which is neither a secret nor timestamp"); ok = false
            }
        } else {
            node.error("credentials: sign.of must list the signed parts"); ok = false
        }
        for param in params where !known.contains(param) {
            node.error("credentials: params names '\(param)', which is neither a secret, timestamp nor sign"); ok = false
        }
        let targets = Set(inject.keys)
        if targets.count != 1 || !(targets.isSubset(of: ["header", "form_field", "query"])) {
            node.error("credentials: inject must have exactly one of header, form_field, query"); ok = false
        }
        return ok
    }
}

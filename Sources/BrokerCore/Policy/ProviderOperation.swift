import BrokerFields

/// The media type an operation's body must have.
public enum BodyFormat: String, Sendable, Hashable {
    case json, form, none

    /// The `Content-Type` a caller must send (parameters such as charset aside).
    public var mediaType: String? {
        switch self {
        case .json: return "application/json"
        case .form: return "application/x-www-form-urlencoded"
        case .none: return nil
        }
    }
}

/// One call of a provider's API that the broker lets through, with every field it may carry.
///
/// Matched by method and path template (and, where several operations share a
/// path, by `match_headers`, e.g. an action header). Closed world: values in the
/// body, query, headers or path that no declaration covers are undeclared.
public struct ProviderOperation: Sendable {
    public var name: String
    public var method: String
    public var path: PathTemplate
    /// Headers whose values select this operation (names lowercased).
    public var matchHeaders: [(name: String, value: String)]
    /// Query parameters whose values select this operation (a gateway that picks the API by `?method=`); each must
    /// appear exactly once in the request.
    public var matchQuery: [(name: String, value: String)] = []
    /// The purposes a share through this operation may have; one means no `X-Share-Purpose` is needed.
    public var purposes: [String]
    public var body: BodyFormat
    /// What to do with undeclared fields: block the share or strip them.
    public var undeclared: FieldDeclaration.OnDeny
    public var schemas: [FieldLocation: FieldSchema]
    /// At most this many fields per share (`max_fields`), below the broker's `limits.max_fields`.
    public var maxFields: Int?
    /// Top-level members of a 2xx JSON answer the broker keeps sealed for the adapter's revocation
    /// call (`response_revocation_keys: [refresh_token]`), named `response.NAME` in its placeholders:
    /// the token a login's revocation needs is in the provider's answer, not in what was sent.
    public var responseRevocationKeys: [String] = []
    /// `params:` (an RPC API's parameters, as some cloud gateways take them): one declaration for the query and a form
    /// body alike, as the provider's gateway reads both; the body may then also be empty.
    public var rpcParameters = false
    /// `content_type_optional: true`: the provider reads the body as `body` says without a `Content-Type`
    /// (some push APIs), so a request without one is taken as that format; another media type is still refused.
    public var contentTypeOptional = false
    /// The body field that names the share's subject (`subject: true`), if the adapter declares one.
    public var subjectField: FieldPattern?
    public var line: Int

    public func schema(_ location: FieldLocation) -> FieldSchema {
        schemas[location] ?? FieldSchema()
    }

    /// Every declaration, all locations, in file order per location (`params:` once, as the query's).
    public var declarations: [FieldDeclaration] {
        (rpcParameters ? [FieldLocation.path, .query, .header] : [.path, .query, .header, .body]).flatMap { schema($0).declarations }
    }

    static func decode(name: String, nameLine: Int, node: YAMLNode) -> ProviderOperation? {
        let what = "operation \(name)"
        guard let object = node.object(what, required: ["method", "path"],
                                       optional: ["purpose", "purposes", "body", "undeclared", "fields", "query",
                                                  "headers", "path_params", "match_headers", "match_query",
                                                  "max_fields", "response_revocation_keys", "params",
                                                  "content_type_optional"]) else { return nil }
        var ok = true
        let method = object["method"]?.string(what + ": method")?.uppercased()
        if let method, !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) {
            object["method"]?.error("\(what): method must be GET, POST, PUT, PATCH or DELETE, not '\(method)'")
            ok = false
        }
        var template: PathTemplate?
        if let pathNode = object["path"], let text = pathNode.string(what + ": path") {
            do { template = try PathTemplate(parsing: text) } catch { pathNode.error("\(what): \(error.message)"); ok = false }
        }
        var purposes: [String] = []
        switch (object["purpose"], object["purposes"]) {
        case (let one?, nil): purposes = one.string(what + ": purpose").map { [$0] } ?? []
        case (nil, let many?): purposes = many.strings(what + ": purposes")?.map(\.0) ?? []
        case (nil, nil): node.error("\(what): needs purpose or purposes"); ok = false
        default: node.error("\(what): give purpose or purposes, not both"); ok = false
        }
        var body = BodyFormat.none
        if let bodyNode = object["body"], let text = bodyNode.string(what + ": body") {
            if let parsed = BodyFormat(rawValue: text) { body = parsed } else {
                bodyNode.error("\(what): body must be json, form or none, not '\(text)'"); ok = false
            }
        }
        var undeclared = FieldDeclaration.OnDeny.block
        if let node = object["undeclared"], let text = node.string(what + ": undeclared") {
            if let parsed = FieldDeclaration.OnDeny(rawValue: text) { undeclared = parsed } else {
                node.error("\(what): undeclared must be block or strip, not '\(text)'"); ok = false
            }
        }
        if body == .none, object["fields"] != nil {
            object["fields"]?.error("\(what): has fields but body is none")
            ok = false
        }
        var matchHeaders: [(name: String, value: String)] = []
        for pair in object["match_headers"]?.mapping(what + ": match_headers") ?? [] {
            if let value = pair.value.string("\(what): match_headers: \(pair.key)") {
                matchHeaders.append((pair.key.lowercased(), value))
            }
        }
        var matchQuery: [(name: String, value: String)] = []
        for pair in object["match_query"]?.mapping(what + ": match_query") ?? [] {
            if let value = pair.value.string("\(what): match_query: \(pair.key)") { matchQuery.append((pair.key, value)) }
        }
        var schemas: [FieldLocation: FieldSchema] = [:]
        var sections: [(String, FieldLocation)] = [("fields", .body), ("query", .query), ("headers", .header),
                                                   ("path_params", .path)]
        let rpcParameters = object["params"] != nil
        if rpcParameters {
            if object["fields"] != nil || object["query"] != nil {
                object["params"]?.error("\(what): params covers the query and a form body: give params, or query and fields, not both")
                ok = false
            }
            if body != .form {
                object["params"]?.error("\(what): params needs body: form (the parameters may come in a form body)")
                ok = false
            }
            sections = [("params", .query), ("params", .body), ("headers", .header), ("path_params", .path)]
        }
        for (key, location) in sections {
            guard let section = object[key] else { continue }
            var schema = FieldSchema()
            if !decodeFields(section, location: location, prefix: FieldPattern([]), into: &schema, what: "\(what): \(key)") {
                ok = false
            }
            schemas[location] = schema
        }
        if let template {
            let declared = Set(schemas[.path]?.declarations.compactMap { decl -> String? in
                if case .key(let key)? = decl.pattern.segments.first, decl.pattern.segments.count == 1 { return key.string }
                return nil
            } ?? [])
            for name in template.parameterNames where !declared.contains(name) {
                object["path"]?.error("\(what): path parameter '{\(name)}' is not declared in path_params")
                ok = false
            }
            for name in declared where !template.parameterNames.contains(name) {
                object["path_params"]?.error("\(what): path_params declares '\(name)', which is not in the path")
                ok = false
            }
        }
        // Partial operations are returned so cross-file checks still run; any issue fails the bundle.
        _ = ok
        guard let method, let template else { return nil }
        for pair in matchQuery where schemas[.query]?.match(FieldPath([.key(ExactKey(pair.name))])) == nil {
            object["match_query"]?.error("\(what): match_query parameter '\(pair.name)' must be declared in query")
        }
        var operation = ProviderOperation(name: name, method: method, path: template, matchHeaders: matchHeaders, purposes: purposes,
                                          body: body, undeclared: undeclared, schemas: schemas, line: nameLine)
        operation.matchQuery = matchQuery
        operation.rpcParameters = rpcParameters
        operation.maxFields = object["max_fields"]?.int(what + ": max_fields", min: 1)
        let subjectFields = schemas[.body]?.declarations.filter(\.subject) ?? []
        if subjectFields.count > 1 {
            object["fields"]?.error("\(what): declares \(subjectFields.count) subject fields; a share has one subject")
        }
        if !subjectFields.isEmpty, rpcParameters || body != .json {
            object["fields"]?.error("\(what): a subject field needs body: json")
        }
        operation.subjectField = subjectFields.first?.pattern
        operation.contentTypeOptional = object["content_type_optional"]?.bool(what + ": content_type_optional") ?? false
        operation.responseRevocationKeys = object["response_revocation_keys"]?.strings(what + ": response_revocation_keys")?.map(\.0) ?? []
        return operation
    }

    /// Decodes a `fields:`-style mapping (recursively for `encoding: json`).
    private static func decodeFields(_ node: YAMLNode, location: FieldLocation, prefix: FieldPattern,
                                     into schema: inout FieldSchema, what: String) -> Bool {
        guard let pairs = node.mapping(what) else { return false }
        var ok = true
        for pair in pairs {
            let pattern: FieldPattern
            do {
                let key = location == .header ? pair.key.lowercased() : pair.key
                if location == .header || location == .path {
                    // Header and path-parameter names are single keys, never paths.
                    pattern = FieldPattern([.key(ExactKey(key))])
                } else {
                    pattern = try FieldPattern(parsing: key)
                }
            } catch {
                node.issues.add(node.file, pair.keyLine, "\(what): \(error.message)")
                ok = false
                continue
            }
            let full = prefix.appending(pattern)
            let fieldWhat = "\(what): \(pair.key)"
            guard let spec = pair.value.object(fieldWhat, optional: ["category", "on_deny", "revocation_key", "credential",
                                                                     "subject", "encoding", "fields", "values", "pattern", "type",
                                                                     "max_length", "max_items", "minimise"]) else {
                ok = false
                continue
            }
            if let encodingNode = spec["encoding"] {
                guard encodingNode.string(fieldWhat + ": encoding") == "json" else {
                    encodingNode.error("\(fieldWhat): encoding must be json")
                    ok = false
                    continue
                }
                guard let inner = spec["fields"] else {
                    pair.value.error("\(fieldWhat): encoding json needs the inner fields under fields:")
                    ok = false
                    continue
                }
                for extra in ["category", "on_deny", "revocation_key", "credential", "subject", "minimise"] where spec[extra] != nil {
                    spec[extra]?.error("\(fieldWhat): \(extra) goes on the inner fields of an encoding: json field")
                    ok = false
                }
                schema.addEmbeddedJSON(full)
                if !decodeFields(inner, location: location, prefix: full, into: &schema, what: fieldWhat) { ok = false }
                continue
            }
            if spec["fields"] != nil {
                spec["fields"]?.error("\(fieldWhat): nested fields need encoding: json")
                ok = false
                continue
            }
            let credential = spec["credential"]?.bool(fieldWhat + ": credential") ?? false
            let subject = spec["subject"]?.bool(fieldWhat + ": subject") ?? false
            let category = spec["category"]?.string(fieldWhat + ": category")
            if subject {
                // One plain key path in the body itself: the broker reads it before it decides anything else.
                let extras = ["category", "on_deny", "revocation_key", "credential", "minimise", "values", "pattern", "type",
                              "max_length", "max_items"].filter { spec[$0] != nil }
                let plain = full.segments.allSatisfy { if case .key = $0 { return true } else { return false } }
                guard extras.isEmpty, location == .body, prefix.segments.isEmpty, plain else {
                    pair.value.error("\(fieldWhat): a subject field is one plain key path of the body (no [*], * or encoding: json) "
                                     + "and takes nothing else (its value follows the subject id rule)")
                    ok = false
                    continue
                }
            } else if credential {
                if spec["category"] != nil || spec["on_deny"] != nil || spec["revocation_key"] != nil || spec["minimise"] != nil {
                    pair.value.error("\(fieldWhat): a credential field takes no category, on_deny, revocation_key or minimise")
                    ok = false
                    continue
                }
            } else if category == nil {
                if spec["category"] == nil { pair.value.error("\(fieldWhat): needs a category") }
                ok = false
                continue
            }
            var onDeny = FieldDeclaration.OnDeny.block
            if let node = spec["on_deny"], let text = node.string(fieldWhat + ": on_deny") {
                if let parsed = FieldDeclaration.OnDeny(rawValue: text) { onDeny = parsed } else {
                    node.error("\(fieldWhat): on_deny must be block or strip, not '\(text)'")
                    ok = false
                }
            }
            let revocationKey = spec["revocation_key"]?.bool(fieldWhat + ": revocation_key") ?? false
            var values: [String]?
            var regex: String?
            var type: ValueConstraint.ValueType?
            if let node = spec["values"] {
                values = node.strings(fieldWhat + ": values", allowSingle: true)?.map(\.0)
                if values?.isEmpty == true { node.error("\(fieldWhat): values needs at least one value"); ok = false }
            }
            if let node = spec["pattern"], let text = node.string(fieldWhat + ": pattern") {
                if let problem = ValueConstraint.problem(text) {
                    node.error("\(fieldWhat): pattern: \(problem)"); ok = false
                } else {
                    regex = text
                }
            }
            if let node = spec["type"], let text = node.string(fieldWhat + ": type") {
                if let parsed = ValueConstraint.ValueType(rawValue: text) { type = parsed } else {
                    node.error("\(fieldWhat): type must be string, number or boolean, not '\(text)'"); ok = false
                }
            }
            let maxLength = spec["max_length"]?.int(fieldWhat + ": max_length", min: 1)
            let constraint = ValueConstraint(values: values, pattern: regex, type: type, maxLength: maxLength)
            let maxItems = spec["max_items"]?.int(fieldWhat + ": max_items", min: 1)
            if constraint != nil && credential {
                pair.value.error("\(fieldWhat): a credential field takes no value constraint"); ok = false
            }
            var minimise: Minimisation?
            if let node = spec["minimise"] {
                minimise = Self.decodeMinimisation(node, what: fieldWhat + ": minimise")
                if minimise == nil { ok = false }
                if location == .path { node.error("\(fieldWhat): a path parameter cannot be minimised (it is sent whole or the share is blocked)"); ok = false }
                if revocationKey { node.error("\(fieldWhat): a revocation_key field cannot be minimised (the provider's delete call needs the value it received whole)"); ok = false }
            }
            var declaration = FieldDeclaration(location: location, pattern: full, category: category, onDeny: onDeny,
                                               revocationKey: revocationKey, credential: credential,
                                               constraint: constraint, maxItems: maxItems, minimise: minimise,
                                               line: pair.keyLine)
            declaration.subject = subject
            if let existing = schema.add(declaration) {
                node.issues.add(node.file, pair.keyLine, "\(what): '\(full)' is declared twice (first on line \(existing.line))")
                ok = false
            }
        }
        return ok
    }

    /// `minimise: { transform: round_coordinates | ip_prefix | mask, …parameters, category: C }`.
    static func decodeMinimisation(_ node: YAMLNode, what: String) -> Minimisation? {
        let parameters: [String: Set<String>] = ["round_coordinates": ["decimals", "format", "max_points"], "ip_prefix": ["ipv4", "ipv6"],
                                                 "mask": ["keep_first", "keep_last"]]
        guard let spec = node.object(what, required: ["transform", "category"],
                                     optional: parameters.values.reduce([], { $0.union($1) })),
              let name = spec["transform"]?.string(what + ": transform"),
              let category = spec["category"]?.string(what + ": category") else { return nil }
        guard let allowed = parameters[name] else {
            spec["transform"]?.error("\(what): transform must be round_coordinates, ip_prefix or mask, not '\(name)'")
            return nil
        }
        for key in spec.values.keys where !["transform", "category"].contains(key) && !allowed.contains(key) {
            spec[key]?.error("\(what): \(key) is not a parameter of \(name) (it takes \(allowed.sorted().joined(separator: ", ")))")
            return nil
        }
        func integer(_ key: String, _ range: ClosedRange<Int>, default value: Int? = nil) -> Int? {
            guard let node = spec[key] else {
                if value == nil { spec.owner.error("\(what): \(name) needs \(key)") }
                return value
            }
            guard let number = node.int("\(what): \(key)", min: range.lowerBound) else { return nil }
            guard number <= range.upperBound else {
                node.error("\(what): \(key) must be at most \(range.upperBound)")
                return nil
            }
            return number
        }
        let transform: Minimisation.Transform
        switch name {
        case "round_coordinates":
            // Two decimals is about 1 km, zero about 100 km; six or more is no longer coarse.
            guard let decimals = integer("decimals", 0...5), let maxPoints = integer("max_points", 1...100, default: 1) else { return nil }
            // format: what the value holds, so each number is read against its own range (Minimisation+Coordinates).
            var format = Minimisation.CoordinateFormat.unstated
            if let node = spec["format"] {
                guard let text = node.string(what + ": format"), let stated = Minimisation.CoordinateFormat.spellings[text] else {
                    node.error("\(what): format must be lng_lat, lat_lng, lat or lng"); return nil
                }
                format = stated
            }
            if maxPoints > 1 && !format.isPoint {
                spec["max_points"]?.error("\(what): max_points needs a point format (lng_lat or lat_lng)"); return nil
            }
            transform = .roundCoordinates(decimals: decimals, format: format, maxPoints: maxPoints)
        case "ip_prefix":
            // A /32 keeps the whole IPv4 address: not a minimisation. Past /64 an IPv6 prefix reaches into
            // the interface identifier, which can be the device's MAC (EUI-64) or an IPv4 address (ISATAP).
            guard let v4 = integer("ipv4", 0...31, default: 24), let v6 = integer("ipv6", 0...64, default: 48) else { return nil }
            transform = .ipPrefix(ipv4: v4, ipv6: v6)
        default:
            guard let first = integer("keep_first", 0...64, default: 0), let last = integer("keep_last", 0...64, default: 0) else {
                return nil
            }
            transform = .mask(keepFirst: first, keepLast: last)
        }
        return Minimisation(transform: transform, category: category, line: node.line)
    }
}

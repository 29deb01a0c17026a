/// The provider call that deletes or unbinds what it received, made when a grant is revoked.
///
/// String values in `body` may hold `{revocation_key:PATTERN}` placeholders, and
/// `path` may hold `{name}` parameters; both are filled from the values of fields
/// marked `revocation_key` in the shares being revoked (kept encrypted until then).
/// A placeholder that matches several stored values yields one call per value.
public struct RevocationSpec: Sendable, Hashable {
    /// A JSON-like body template.
    public indirect enum Template: Sendable, Hashable {
        case string(String)
        case object([(String, Template)])
        case array([Template])

        public static func == (a: Template, b: Template) -> Bool {
            switch (a, b) {
            case (.string(let x), .string(let y)): return x == y
            case (.array(let x), .array(let y)): return x == y
            case (.object(let x), .object(let y)):
                return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: return false
            }
        }

        public func hash(into hasher: inout Hasher) {
            switch self {
            case .string(let s): hasher.combine(s)
            case .array(let a): hasher.combine(a)
            case .object(let o): for (k, v) in o { hasher.combine(k); hasher.combine(v) }
            }
        }

        /// The patterns named by `{revocation_key:…}` placeholders, in order.
        public var placeholders: [String] {
            switch self {
            case .string(let text): return RevocationSpec.placeholders(in: text)
            case .array(let items): return items.flatMap(\.placeholders)
            case .object(let pairs): return pairs.flatMap(\.1.placeholders)
            }
        }
    }

    public var method: String
    public var path: PathTemplate
    public var bodyFormat: BodyFormat
    public var body: Template?
    public var line: Int

    static let prefix = "{revocation_key:"

    static func placeholders(in text: String) -> [String] {
        var found: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: prefix) {
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { break }
            found.append(String(rest[start.upperBound..<end]))
            rest = rest[rest.index(after: end)...]
        }
        return found
    }

    static func decode(_ node: YAMLNode) -> RevocationSpec? {
        guard let object = node.object("revocation", required: ["method", "path"], optional: ["body", "body_format"]) else {
            return nil
        }
        let method = object["method"]?.string("revocation: method")?.uppercased()
        var path: PathTemplate?
        if let pathNode = object["path"], let text = pathNode.string("revocation: path") {
            do { path = try PathTemplate(parsing: text) } catch { pathNode.error("revocation: \(error.message)") }
        }
        var format = BodyFormat.json
        if let formatNode = object["body_format"], let text = formatNode.string("revocation: body_format") {
            if let parsed = BodyFormat(rawValue: text), parsed != .none { format = parsed } else {
                formatNode.error("revocation: body_format must be json or form")
            }
        }
        let body = object["body"].flatMap { template($0) }
        if object["body"] == nil { format = .none }
        guard let method, let path else { return nil }
        return RevocationSpec(method: method, path: path, bodyFormat: format, body: body, line: node.line)
    }

    private static func template(_ node: YAMLNode) -> Template? {
        switch node.node {
        case .scalar(let scalar): return .string(scalar.string)
        case .sequence:
            return node.sequence("revocation: body").map { .array($0.compactMap(template)) }
        case .mapping:
            return node.mapping("revocation: body").map { pairs in .object(pairs.compactMap { p in template(p.value).map { (p.key, $0) } }) }
        case .alias:
            node.error("revocation: body must not use YAML aliases")
            return nil
        }
    }
}

/// One provider call a revocation makes, rendered from the stored revocation keys.
public struct RevocationCall: Sendable, Hashable {
    public var method: String
    /// The operation path, percent-encoded (without the upstream's base path).
    public var path: String
    public var bodyFormat: BodyFormat
    public var body: [UInt8]

    public init(method: String, path: String, bodyFormat: BodyFormat, body: [UInt8]) {
        self.method = method; self.path = path; self.bodyFormat = bodyFormat; self.body = body
    }
}

extension RevocationSpec {
    /// The names this call needs values for: each `{revocation_key:PATTERN}` of the body,
    /// and `{name}` for each path parameter (the key names `ProviderOperation` fields give).
    public var keyNames: [String] {
        var names: [String] = []
        for name in (body?.placeholders ?? []) + path.parameterNames.map({ "{\($0)}" }) where !names.contains(name) {
            names.append(name)
        }
        return names
    }

    /// The distinct calls for a set of shares, given each share's revocation keys
    /// (key name → the values it carried). Within one share, every combination of
    /// its values is one call (a share to three tokens of one app gives three calls);
    /// calls are never mixed across shares, so a token is only ever paired with the
    /// app it was sent with. A share that lacks a value for some name gives no call.
    public func calls(forShares shares: [[String: [String]]]) -> [RevocationCall] {
        let names = keyNames
        var seen: Set<RevocationCall> = []
        var calls: [RevocationCall] = []
        for keys in shares {
            var combinations: [[String: String]] = [[:]]
            for name in names {
                // `a|b`: the values of `a`, or, when the share has none, those of `b` (a refresh token, else the access token).
                let stored = name.split(separator: "|").lazy.compactMap { keys[String($0)] }.first { !$0.isEmpty } ?? []
                var values: [String] = []
                for value in stored where !values.contains(value) { values.append(value) }
                combinations = combinations.flatMap { partial in values.map { value in partial.merging([name: value]) { $1 } } }
            }
            for combination in combinations {
                var pathValues: [String: String] = [:]
                for parameter in path.parameterNames { pathValues[parameter] = combination["{\(parameter)}"] }
                guard let renderedPath = path.render(pathValues) else { continue }
                let call = RevocationCall(method: method, path: renderedPath, bodyFormat: bodyFormat,
                                          body: body.map { Self.render($0, combination, bodyFormat) } ?? [])
                if seen.insert(call).inserted { calls.append(call) }
            }
        }
        return calls
    }

    static func fill(_ text: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: prefix), let end = rest[start.upperBound...].firstIndex(of: "}") {
            out += rest[..<start.lowerBound]
            out += values[String(rest[start.upperBound..<end])] ?? ""
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    static func render(_ template: Template, _ values: [String: String], _ format: BodyFormat) -> [UInt8] {
        switch format {
        case .form:
            guard case .object(let pairs) = template else { return [] }
            let encoded = pairs.map { name, value -> String in
                let text: String
                if case .string(let s) = value { text = fill(s, values) } else { text = String(decoding: render(value, values, .json), as: UTF8.self) }
                return PercentDecoding.encodePathSegment(name) + "=" + PercentDecoding.encodePathSegment(text)
            }
            return Array(encoded.joined(separator: "&").utf8)
        case .json, .none:
            switch template {
            case .string(let s): return Array(JSONText.quoted(fill(s, values)).utf8)
            case .array(let items):
                return Array(("[" + items.map { String(decoding: render($0, values, .json), as: UTF8.self) }.joined(separator: ",") + "]").utf8)
            case .object(let pairs):
                return Array(("{" + pairs.map { JSONText.quoted($0.0) + ":" + String(decoding: render($0.1, values, .json), as: UTF8.self) }
                    .joined(separator: ",") + "}").utf8)
            }
        }
    }
}

extension FieldDecision {
    /// The name a revocation template uses for this field's value: `{name}` for a
    /// path parameter, the declared pattern (`message.token[*]`) otherwise.
    public var revocationKeyName: String? {
        guard revocationKey, let declared = declaredAs else { return nil }
        return location == .path ? "{\(declared)}" : declared.description
    }
}

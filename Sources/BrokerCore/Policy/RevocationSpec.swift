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

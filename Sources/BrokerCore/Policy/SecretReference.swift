/// Where a secret comes from: an environment variable, a file, or (tests only) a literal.
///
/// Policy files may only name `env` or `file`; the broker's config file may also
/// hold a literal for tests. Resolving a reference is the executable's job: the
/// library targets read no environment.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    case env(String)
    case file(String)
    case literal(String)

    public var description: String {
        switch self {
        case .env(let name): return "{ env: \(name) }"
        case .file(let path): return "{ file: \(path) }"
        case .literal: return "<literal>"
        }
    }

    /// Reads `{ env: NAME }`, `{ file: PATH }` or, when `allowLiteral`, a plain string.
    package static func decode(_ node: YAMLNode, _ what: String, allowLiteral: Bool) -> SecretReference? {
        if case .scalar = node.node {
            guard allowLiteral else {
                node.error("\(what) must be { env: NAME } or { file: PATH }: secrets are never written in policy files")
                return nil
            }
            return node.string(what).map { .literal($0) }
        }
        guard let object = node.object(what, optional: ["env", "file"]) else { return nil }
        switch (object["env"], object["file"]) {
        case (let env?, nil):
            guard let name = env.string(what + ": env") else { return nil }
            guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }) else {
                env.error("\(what): environment variable name '\(name)' must be UPPER_SNAKE_CASE")
                return nil
            }
            return .env(name)
        case (nil, let file?):
            return file.string(what + ": file").map { .file($0) }
        default:
            node.error("\(what) must have exactly one of env or file")
            return nil
        }
    }
}

import Yams

/// A YAML node with its file and line, read with every mistake reported.
///
/// The policy decoders are written against this instead of `Decodable` so that
/// an error names the exact line, unknown keys (typos such as `on_denny`) are
/// errors rather than silently ignored, and all errors of a file are collected.
package struct YAMLNode {
    package let node: Node
    package let file: String
    package let issues: IssueCollector

    package var line: Int { node.mark?.line ?? 1 }

    package func error(_ message: String) { issues.add(file, line, message) }

    /// Parses YAML text; a syntax error becomes an issue and `nil`.
    package static func parse(_ text: String, file: String, issues: IssueCollector) -> YAMLNode? {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                issues.add(file, 1, "the file is empty")
                return nil
            }
            return YAMLNode(node: node, file: file, issues: issues)
        } catch let error as YamlError {
            issues.add(file, YAMLNode.line(of: error), "YAML syntax: \(YAMLNode.summary(of: error))")
            return nil
        } catch {
            issues.add(file, 1, "YAML syntax: \(error)")
            return nil
        }
    }

    private static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        case .duplicatedKeysInMapping(_, let context):
            return context.mark.line
        default:
            return 1
        }
    }

    private static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate key(s) " + duplicates.joined(separator: ", ")
        default:
            return "\(error)"
        }
    }

    // MARK: Shapes

    /// The pairs of a mapping, in file order; reports an error if this is not a mapping.
    package func mapping(_ what: String) -> [(key: String, keyLine: Int, value: YAMLNode)]? {
        guard case .mapping(let mapping) = node else {
            error("\(what) must be a mapping")
            return nil
        }
        var pairs: [(key: String, keyLine: Int, value: YAMLNode)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                issues.add(file, key.mark?.line ?? line, "\(what): keys must be scalars")
                continue
            }
            pairs.append((name, key.mark?.line ?? line, YAMLNode(node: value, file: file, issues: issues)))
        }
        return pairs
    }

    /// A mapping with a fixed set of keys: unknown keys and missing required keys are errors.
    package func object(_ what: String, required: Set<String> = [], optional: Set<String> = []) -> Object? {
        guard let pairs = mapping(what) else { return nil }
        var values: [String: YAMLNode] = [:]
        for pair in pairs {
            if required.contains(pair.key) || optional.contains(pair.key) {
                values[pair.key] = pair.value
            } else {
                let known = (required.union(optional)).sorted().joined(separator: ", ")
                issues.add(file, pair.keyLine, "\(what): unknown key '\(PolicyIssue.excerpt(pair.key))' (known: \(known))")
            }
        }
        for key in required.sorted() where values[key] == nil {
            error("\(what): missing required key '\(key)'")
        }
        return Object(values: values, owner: self)
    }

    /// The elements of a sequence; reports an error if this is not a sequence.
    package func sequence(_ what: String) -> [YAMLNode]? {
        guard case .sequence(let seq) = node else {
            error("\(what) must be a list")
            return nil
        }
        return seq.map { YAMLNode(node: $0, file: file, issues: issues) }
    }

    package func string(_ what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            error("\(what) must be a string")
            return nil
        }
        if scalar.style == .plain && (scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null") {
            error("\(what) must not be empty")
            return nil
        }
        return scalar.string
    }

    package func bool(_ what: String) -> Bool? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            error("\(what) must be true or false")
            return nil
        }
        switch scalar.string {
        case "true": return true
        case "false": return false
        default:
            error("\(what) must be true or false, not '\(scalar.string)'")
            return nil
        }
    }

    package func int(_ what: String, min: Int = Int.min) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            error("\(what) must be an integer")
            return nil
        }
        guard value >= min else {
            error("\(what) must be at least \(min)")
            return nil
        }
        return value
    }

    /// A list of strings; a single string is accepted as a one-element list when `allowSingle`.
    package func strings(_ what: String, allowSingle: Bool = false) -> [(String, Int)]? {
        if allowSingle, case .scalar = node {
            return string(what).map { [($0, line)] }
        }
        guard let items = sequence(what) else { return nil }
        return items.compactMap { item in item.string(what).map { ($0, item.line) } }
    }

    /// A decoded mapping with known keys.
    package struct Object {
        package let values: [String: YAMLNode]
        package let owner: YAMLNode
        package subscript(key: String) -> YAMLNode? { values[key] }
        package var line: Int { owner.line }
    }
}

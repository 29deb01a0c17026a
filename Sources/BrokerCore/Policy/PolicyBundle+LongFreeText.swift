/// Non-personal fields that admit long free text: `sharebroker check` warns about each.
///
/// A non-personal label lets a value pass without consent, so whatever the caller can write there
/// leaves unchecked but for `PersonalDataDetector`, which finds only what has a checksum or a shape.
/// A field whose constraint still lets more than `freeTextLimit` characters through (a `pattern`
/// with a longer bound, `max_length` above it, or a `type: string` alone) is a channel: give it a
/// tight pattern or a personal category. (A field with no constraint at all has its own warning:
/// `unconstrainedFreeText`.)
extension PolicyBundle {
    /// The most characters of free text a non-personal field may take without a warning.
    public static let freeTextLimit = 256

    public var longFreeText: [(provider: String, operation: String, path: String, line: Int, admits: Int?)] {
        var found: [(provider: String, operation: String, path: String, line: Int, admits: Int?)] = []
        for provider in adapters.keys.sorted() {
            for operation in adapters[provider]?.operations ?? [] {
                for declaration in operation.declarations where !declaration.credential {
                    guard let category = declaration.category, taxonomy.categories[category]?.personal == false,
                          let constraint = declaration.constraint, constraint.values == nil,
                          constraint.type != .boolean, constraint.type != .number else { continue }
                    // The least of the bounds the constraint states; `nil`: none bounds it.
                    var bound = constraint.maxLength
                    if let pattern = constraint.pattern, let length = PatternLength.maximum(pattern) {
                        bound = min(bound ?? length, length)
                    }
                    if let bound, bound <= Self.freeTextLimit { continue }
                    found.append((provider, operation.name, declaration.pattern.description, declaration.line, bound))
                }
            }
        }
        return found
    }
}

/// The longest string a `pattern` (ICU regular expression syntax, as `NSRegularExpression` reads it)
/// can match, in characters: `nil` when unbounded (`*`, `+`, `{n,}`). Errs long, never short: an
/// unknown escape counts as one character, a group's alternatives as the longest of them.
public enum PatternLength {
    public static func maximum(_ pattern: String) -> Int? {
        var parser = Parser(Array(pattern.unicodeScalars))
        return parser.alternation()
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0
        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        /// `a|b|c` up to a `)` or the end: the longest alternative.
        mutating func alternation() -> Int? {
            var longest: Int? = 0
            while true {
                let branch = sequence()
                longest = Self.max(longest, branch)
                guard index < scalars.count, scalars[index] == "|" else { return longest }
                index += 1
            }
        }

        /// Atoms with their quantifiers, up to `|`, `)` or the end.
        mutating func sequence() -> Int? {
            var total: Int? = 0
            while index < scalars.count, scalars[index] != "|", scalars[index] != ")" {
                let atom = self.atom()
                let (_, upper) = quantifier()
                total = Self.add(total, Self.multiply(atom, upper))
            }
            return total
        }

        /// One atom's length: a character, a class, an escape or a group; anchors are 0.
        mutating func atom() -> Int? {
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "^", "$": return 0
            case "\\":
                guard index < scalars.count else { return 1 }
                let escaped = scalars[index]
                index += 1
                switch escaped {
                case "b", "B", "A", "z", "Z", "G": return 0
                case "p", "P":
                    if index < scalars.count, scalars[index] == "{" {
                        while index < scalars.count, scalars[index] != "}" { index += 1 }
                        index += 1
                    }
                    return 1
                case "Q":
                    var count = 0
                    while index < scalars.count {
                        if scalars[index] == "\\", index + 1 < scalars.count, scalars[index + 1] == "E" { index += 2; break }
                        count += 1
                        index += 1
                    }
                    return count
                default: return 1
                }
            case "[":
                skipClass()
                return 1
            case "(":
                if index < scalars.count, scalars[index] == "?" {
                    index += 1
                    // Look-around is zero-width; (?: (?i: (?<name> and the like are groups.
                    if index < scalars.count, scalars[index] == "=" || scalars[index] == "!" {
                        _ = alternation()
                        index += 1
                        return 0
                    }
                    if index + 1 < scalars.count, scalars[index] == "<", scalars[index + 1] == "=" || scalars[index + 1] == "!" {
                        _ = alternation()
                        index += 1
                        return 0
                    }
                    while index < scalars.count, scalars[index] != ":", scalars[index] != ")" {
                        if scalars[index] == ">" { break }
                        index += 1
                    }
                    if index < scalars.count, scalars[index] == ")" { index += 1; return 0 }   // (?i)
                    index += 1
                }
                let inner = alternation()
                index += 1   // ')'
                return inner
            default:
                return 1
            }
        }

        /// Skips a `[...]` class (nested classes and escapes included); `index` is just past the `[`.
        mutating func skipClass() {
            var depth = 1
            if index < scalars.count, scalars[index] == "^" { index += 1 }
            if index < scalars.count, scalars[index] == "]" { index += 1 }
            while index < scalars.count, depth > 0 {
                switch scalars[index] {
                case "\\": index += 2; continue
                case "[": depth += 1
                case "]": depth -= 1
                default: break
                }
                index += 1
            }
        }

        /// `?`, `*`, `+`, `{n}`, `{n,}`, `{n,m}` (and their lazy or possessive forms): (lower, upper); upper `nil` is unbounded.
        mutating func quantifier() -> (Int, Int?) {
            guard index < scalars.count else { return (1, 1) }
            var result: (Int, Int?)
            switch scalars[index] {
            case "?": result = (0, 1); index += 1
            case "*": result = (0, nil); index += 1
            case "+": result = (1, nil); index += 1
            case "{":
                var cursor = index + 1
                func number() -> Int? {
                    var value: Int?
                    while cursor < scalars.count, scalars[cursor].isASCII, scalars[cursor].properties.numericType != nil {
                        value = (value ?? 0) * 10 + Int(scalars[cursor].value - 48)
                        cursor += 1
                    }
                    return value
                }
                guard let lower = number() else { return (1, 1) }   // a literal '{'
                if cursor < scalars.count, scalars[cursor] == "}" {
                    result = (lower, lower)
                } else if cursor < scalars.count, scalars[cursor] == "," {
                    cursor += 1
                    let upper = number()
                    guard cursor < scalars.count, scalars[cursor] == "}" else { return (1, 1) }
                    result = (lower, upper)
                } else {
                    return (1, 1)
                }
                index = cursor + 1
            default:
                return (1, 1)
            }
            if index < scalars.count, scalars[index] == "?" || scalars[index] == "+" { index += 1 }
            return result
        }

        static func add(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            return a + b
        }

        static func multiply(_ a: Int?, _ b: Int?) -> Int? {
            if a == 0 || b == 0 { return 0 }
            guard let a, let b else { return nil }
            return a * b
        }

        static func max(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            return Swift.max(a, b)
        }
    }
}

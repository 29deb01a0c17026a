/// A declaration's `pattern`, compiled once when the adapter is loaded and matched against the
/// whole value on every share, without Foundation (`NSRegularExpression` cost ~1.3k instructions a
/// match, and a `String` bridged to UTF-16 per call).
///
/// The syntax is the regular subset every adapter needs, read as ICU reads it (a differential test
/// holds the two to the same answers): literal characters and `\`-escaped punctuation; classes
/// `[...]` and `[^...]` of characters, ranges and escaped punctuation (a `-` first, last or right
/// after a range is a literal); groups `(...)` and `(?:...)`; alternation `|`; the greedy
/// quantifiers `?`, `*`, `+`, `{n}`, `{n,}` and `{n,m}`; `^` at the start and `$` at the end
/// (the whole value must match anyway). Anything else (`.`, `\d` and the other class escapes,
/// lookaround, backreferences, lazy or possessive quantifiers, nested or combined classes, a group
/// repeated without a bound or more than 1,024 times in all) is refused when the adapter loads, with what was found: its ICU meaning is Unicode-wide or not
/// regular, and a value constraint should say exactly what it admits.
///
/// Matching is backtracking over the parsed tree, on Unicode scalars. A run of one class under a
/// quantifier (`[0-9]{1,8}`, the usual pattern) is consumed greedily in a loop and given back one
/// at a time. An ASCII-only pattern without a negated class matches on the value's UTF-8 bytes
/// directly: a byte of a non-ASCII character matches nothing in it, as its scalar would not.
public struct ValuePattern: Sendable {
    /// Why a pattern was refused: the message names the offending part and its position.
    public struct SyntaxError: Error, Sendable, Equatable {
        public var message: String
    }

    indirect enum Node: Sendable {
        /// One scalar out of a set.
        case scalar(ScalarSet)
        /// Alternatives, each a sequence.
        case group([[Node]])
        /// `node` between `min` and `max` times (`nil`: no upper bound), greedily.
        case repeated(Node, min: Int, max: Int?)
    }

    /// Scalars as sorted, closed ranges of their values; `negated` matches every other scalar.
    struct ScalarSet: Sendable {
        var ranges: [ClosedRange<UInt32>]
        var negated = false

        func contains(_ value: UInt32) -> Bool {
            var found = false
            for range in ranges where range.contains(value) {
                found = true
                break
            }
            return found != negated
        }
    }

    let source: String
    let root: [[Node]]
    /// True when every scalar the pattern names is ASCII and no class is negated: match on bytes.
    let asciiOnly: Bool

    public init(_ source: String) throws(SyntaxError) {
        var parser = Parser(Array(source.unicodeScalars))
        root = try parser.parse()
        // Each repetition of a group nests the matcher one level deeper: bounded, so that no value,
        // however long, can run an event loop's stack out (a run of one class is a loop, not nesting).
        guard let depth = Self.nesting(root), depth <= Self.maxNesting else {
            throw SyntaxError(message: "a group repeated more than \(Self.maxNesting) times in all (or without a bound) is outside "
                              + "the pattern syntax the broker supports; repeat a class ([...]{n,m}) instead")
        }
        self.source = source
        asciiOnly = Self.isASCIIOnly(root)
    }

    /// The most group repetitions the matcher may nest.
    static let maxNesting = 1_024
    /// The most steps one match may take (each a node tried or a run given back by one) before the
    /// value is taken as not matching.
    static let stepBudget = 200_000

    /// How deep repeated groups may nest the matcher: the products of their upper bounds; `nil`: unbounded.
    private static func nesting(_ alternatives: [[Node]]) -> Int? {
        var deepest = 1
        for sequence in alternatives {
            for node in sequence {
                guard let depth = nesting(node) else { return nil }
                deepest = max(deepest, depth)
            }
        }
        return deepest
    }

    private static func nesting(_ node: Node) -> Int? {
        switch node {
        case .scalar, .repeated(.scalar, _, _): return 1
        case .group(let alternatives): return nesting(alternatives)
        case .repeated(let inner, _, let max):
            guard let max, let inner = nesting(inner) else { return nil }
            let (product, overflow) = max.multipliedReportingOverflow(by: inner)
            return overflow ? nil : Swift.max(1, product)
        }
    }

    /// The longest value the pattern matches, in Unicode scalars; `nil` when unbounded (`*`, `+`, `{n,}`).
    /// `check` compares it with the free-text limit of non-personal fields.
    public var maximumLength: Int? { Self.longest(root) }

    private static func longest(_ alternatives: [[Node]]) -> Int? {
        var best = 0
        for sequence in alternatives {
            var total = 0
            for node in sequence {
                guard let length = longest(node) else { return nil }
                let (sum, overflow) = total.addingReportingOverflow(length)
                if overflow { return nil }
                total = sum
            }
            best = max(best, total)
        }
        return best
    }

    private static func longest(_ node: Node) -> Int? {
        switch node {
        case .scalar: return 1
        case .group(let alternatives): return longest(alternatives)
        case .repeated(let inner, _, let max):
            guard let max, let inner = longest(inner) else { return nil }
            let (product, overflow) = max.multipliedReportingOverflow(by: inner)
            return overflow ? nil : product
        }
    }

    /// Whether all of `text` matches.
    public func matches(_ text: String) -> Bool {
        if asciiOnly {
            var text = text
            return text.withUTF8 { bytes in Matcher(input: bytes).whole(root) }
        }
        let scalars = text.unicodeScalars.map(\.value)
        return scalars.withUnsafeBufferPointer { Matcher(input: $0).whole(root) }
    }

    private static func isASCIIOnly(_ alternatives: [[Node]]) -> Bool {
        alternatives.allSatisfy { $0.allSatisfy(isASCIIOnly) }
    }

    private static func isASCIIOnly(_ node: Node) -> Bool {
        switch node {
        case .scalar(let set): !set.negated && set.ranges.allSatisfy { $0.upperBound < 0x80 }
        case .group(let alternatives): isASCIIOnly(alternatives)
        case .repeated(let inner, _, _): isASCIIOnly(inner)
        }
    }
}

// MARK: Matching

/// Backtracking over the tree: each step hands the position it reached to a continuation, which
/// decides whether the rest matches from there. Backtracking can take exponential time on a
/// crafted value when a pattern nests variable runs (`([a-z]{1,10}){0,100}`, as under ICU), so a
/// match gets a budget of steps: past it the value does not match (deny by default). A test holds
/// such a match, budget spent, under 2 s.
private final class Matcher<Element: FixedWidthInteger> {
    let input: UnsafeBufferPointer<Element>
    private var budget = ValuePattern.stepBudget

    init(input: UnsafeBufferPointer<Element>) { self.input = input }

    func whole(_ alternatives: [[ValuePattern.Node]]) -> Bool {
        alternatives.contains { sequence($0[...], 0) { $0 == input.count } }
    }

    func sequence(_ nodes: ArraySlice<ValuePattern.Node>, _ position: Int, _ next: (Int) -> Bool) -> Bool {
        guard let first = nodes.first else { return next(position) }
        return node(first, position) { sequence(nodes.dropFirst(), $0, next) }
    }

    func node(_ node: ValuePattern.Node, _ position: Int, _ next: (Int) -> Bool) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch node {
        case .scalar(let set):
            return position < input.count && set.contains(UInt32(truncatingIfNeeded: input[position])) && next(position + 1)
        case .group(let alternatives):
            return alternatives.contains { sequence($0[...], position, next) }
        case .repeated(.scalar(let set), let min, let max):
            // A run of one class: take as many as allowed, then give back one at a time.
            var end = position
            let limit = max.map { Swift.min(input.count, position + $0) } ?? input.count
            while end < limit, set.contains(UInt32(truncatingIfNeeded: input[end])) { end += 1 }
            guard end - position >= min else { return false }
            var taken = end
            while true {
                if next(taken) { return true }
                budget -= 1
                if budget < 0 { return false }
                if taken - position <= min { return false }
                taken -= 1
            }
        case .repeated(let inner, let min, let max):
            return repeated(inner, count: 0, min: min, max: max, position, next)
        }
    }

    /// Greedy: one more of `inner` first, else stop here. An empty one counts only toward `min`
    /// (past it, it would loop).
    func repeated(_ inner: ValuePattern.Node, count: Int, min: Int, max: Int?, _ position: Int, _ next: (Int) -> Bool) -> Bool {
        if max.map({ count < $0 }) ?? true,
           node(inner, position, { end in (end > position || count < min) && repeated(inner, count: count + 1, min: min, max: max, end, next) }) {
            return true
        }
        return count >= min && next(position)
    }
}

// MARK: Parsing

private struct Parser {
    let scalars: [Unicode.Scalar]
    var index = 0
    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    typealias Node = ValuePattern.Node

    mutating func parse() throws(ValuePattern.SyntaxError) -> [[Node]] {
        if peek == "^" { index += 1 }
        let alternatives = try alternation()
        if index < scalars.count {
            throw fail(scalars[index] == ")" ? "a ')' without its '('" : "'\(scalars[index])'")
        }
        return alternatives
    }

    var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    func fail(_ what: String, at position: Int? = nil) -> ValuePattern.SyntaxError {
        ValuePattern.SyntaxError(message: "\(what) at position \((position ?? index) + 1) is outside the pattern syntax the broker "
                                 + "supports (characters, classes, groups, |, ?, *, +, {n,m})")
    }

    mutating func alternation() throws(ValuePattern.SyntaxError) -> [[Node]] {
        var alternatives = [try sequence()]
        while peek == "|" {
            index += 1
            alternatives.append(try sequence())
        }
        return alternatives
    }

    mutating func sequence() throws(ValuePattern.SyntaxError) -> [Node] {
        var nodes: [Node] = []
        while let scalar = peek, scalar != "|", scalar != ")" {
            if scalar == "$" {
                // Only as the pattern's last character: the value's end, which every match reaches anyway.
                guard index == scalars.count - 1 else { throw fail("'$' before the end") }
                index += 1
                break
            }
            var node = try atom()
            node = try quantified(node)
            nodes.append(node)
        }
        return nodes
    }

    mutating func atom() throws(ValuePattern.SyntaxError) -> Node {
        let start = index
        let scalar = scalars[index]
        index += 1
        switch scalar {
        case "(":
            if peek == "?" {
                guard index + 1 < scalars.count, scalars[index + 1] == ":" else { throw fail("'(?'", at: start) }
                index += 2
            }
            let alternatives = try alternation()
            guard peek == ")" else { throw fail("a '(' without its ')'", at: start) }
            index += 1
            return .group(alternatives)
        case "[":
            return .scalar(try scalarClass(start))
        case "\\":
            return .scalar(ValuePattern.ScalarSet(ranges: [try escaped(start)]))
        case ".", "^", "*", "+", "?", "{", "}", "]":
            throw fail("'\(scalar)'", at: start)
        default:
            return .scalar(ValuePattern.ScalarSet(ranges: [scalar.value...scalar.value]))
        }
    }

    /// `\` and a punctuation character: that character. Letters and digits name classes,
    /// anchors or codes in ICU, each refused.
    mutating func escaped(_ start: Int) throws(ValuePattern.SyntaxError) -> ClosedRange<UInt32> {
        guard let next = peek else { throw fail("a '\\' at the end", at: start) }
        guard next.isASCII, !next.properties.isAlphabetic, !("0"..."9").contains(next) else {
            throw fail("'\\\(next)'", at: start)
        }
        index += 1
        return next.value...next.value
    }

    mutating func scalarClass(_ start: Int) throws(ValuePattern.SyntaxError) -> ValuePattern.ScalarSet {
        var set = ValuePattern.ScalarSet(ranges: [])
        if peek == "^" {
            set.negated = true
            index += 1
        }
        var afterRange = false
        var first = true
        while true {
            guard let scalar = peek else { throw fail("a '[' without its ']'", at: start) }
            if scalar == "]", !first { index += 1; break }
            let itemStart = index
            let low: UInt32
            switch scalar {
            case "[", "]": throw fail("'\(scalar)' inside a class", at: itemStart)
            case "&" where index + 1 < scalars.count && scalars[index + 1] == "&":
                throw fail("'&&' inside a class", at: itemStart)
            case "-" where index + 1 < scalars.count && scalars[index + 1] == "-":
                throw fail("'--' inside a class", at: itemStart)
            case "\\":
                index += 1
                low = try escaped(itemStart).lowerBound
            default:
                index += 1
                low = scalar.value
            }
            first = false
            // `a-z`; a `-` first, last or right after a range is the character itself.
            if !afterRange || scalar != "-", peek == "-", index + 1 < scalars.count, scalars[index + 1] != "]",
               !(scalar == "-" && itemStart == start + 1 + (set.negated ? 1 : 0)) {
                index += 1
                let highStart = index
                let high: UInt32
                switch scalars[index] {
                case "\\":
                    index += 1
                    high = try escaped(highStart).lowerBound
                case "[": throw fail("'[' inside a class", at: highStart)
                default:
                    high = scalars[index].value
                    index += 1
                }
                guard low <= high else { throw fail("a range out of order", at: itemStart) }
                set.ranges.append(low...high)
                afterRange = true
            } else {
                set.ranges.append(low...low)
                afterRange = false
            }
        }
        return set
    }

    mutating func quantified(_ node: Node) throws(ValuePattern.SyntaxError) -> Node {
        guard let scalar = peek else { return node }
        let start = index
        let bounds: (Int, Int?)
        switch scalar {
        case "?": index += 1; bounds = (0, 1)
        case "*": index += 1; bounds = (0, nil)
        case "+": index += 1; bounds = (1, nil)
        case "{":
            index += 1
            guard let low = number() else { throw fail("'{' without a count", at: start) }
            var high: Int? = low
            if peek == "," {
                index += 1
                high = number()
            }
            guard peek == "}" else { throw fail("an unclosed '{'", at: start) }
            index += 1
            if let high, high < low { throw fail("a count out of order", at: start) }
            bounds = (low, high)
        default:
            return node
        }
        if let next = peek, next == "?" || next == "+" || next == "*" || next == "{" {
            throw fail("'\(next)' after a quantifier (lazy, possessive or doubled)", at: index)
        }
        return .repeated(node, min: bounds.0, max: bounds.1)
    }

    mutating func number() -> Int? {
        var value: Int?
        while let scalar = peek, ("0"..."9").contains(scalar), (value ?? 0) < 100_000 {
            value = (value ?? 0) * 10 + Int(scalar.value - 48)
            index += 1
        }
        return value
    }
}

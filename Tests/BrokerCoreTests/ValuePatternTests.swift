@testable import BrokerCore
import Foundation
import Testing

/// `ValuePattern` replaced `NSRegularExpression` for declarations' `pattern`s: for every pattern the
/// repository's adapters use, and for the syntax's corners, it answers as ICU does.
struct ValuePatternTests {
    /// ICU's answer: does all of `text` match `pattern`?
    static func icu(_ pattern: String, _ text: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        guard let match = regex.firstMatch(in: text, options: [.anchored], range: range) else { return false }
        return match.range == range
    }

    /// A random string the parsed pattern matches.
    static func sample(_ alternatives: [[ValuePattern.Node]], _ random: inout some RandomNumberGenerator) -> [Unicode.Scalar] {
        alternatives.randomElement(using: &random)!.flatMap { sample($0, &random) }
    }

    static func sample(_ node: ValuePattern.Node, _ random: inout some RandomNumberGenerator) -> [Unicode.Scalar] {
        switch node {
        case .scalar(let set):
            if set.negated { return [Unicode.Scalar(0x4E2D)!] }   // 中: outside every ASCII class
            let range = set.ranges.randomElement(using: &random)!
            return [Unicode.Scalar(UInt32.random(in: range, using: &random))!]
        case .group(let alternatives):
            return sample(alternatives, &random)
        case .repeated(let inner, let min, let max):
            let count = Int.random(in: min...Swift.min(max ?? min + 4, min + 6), using: &random)
            return (0..<count).flatMap { _ in sample(inner, &random) }
        }
    }

    /// Strings near `text`: a character changed, dropped, doubled or added at either end.
    static func neighbours(_ text: [Unicode.Scalar], _ random: inout some RandomNumberGenerator) -> [String] {
        let extra: [Unicode.Scalar] = ["a", "Z", "0", "-", ".", "_", " ", "\"", "|", "é", "中", "\n"]
        var out: [[Unicode.Scalar]] = [text + [extra.randomElement(using: &random)!], [extra.randomElement(using: &random)!] + text]
        if !text.isEmpty {
            let i = Int.random(in: 0..<text.count, using: &random)
            var changed = text; changed[i] = extra.randomElement(using: &random)!; out.append(changed)
            var dropped = text; dropped.remove(at: i); out.append(dropped)
            var doubled = text; doubled.insert(text[i], at: i); out.append(doubled)
        }
        return out.map { String(String.UnicodeScalarView($0)) }
    }

    static func agree(_ pattern: String, seed: UInt64 = 1, samples: Int = 60, also: [String] = []) throws {
        let compiled = try ValuePattern(pattern)
        var random = SplitMix64(seed: seed)
        var texts = also + ["", "a", "0", "-", "https://", "{}", "true"]
        for _ in 0..<samples {
            let positive = sample(compiled.root, &random)
            let text = String(String.UnicodeScalarView(positive))
            #expect(compiled.matches(text), "\(pattern) on its own sample \(text.debugDescription)")
            texts.append(text)
            texts += neighbours(positive, &random)
        }
        for text in texts {
            #expect(compiled.matches(text) == icu(pattern, text), "\(pattern) on \(text.debugDescription)")
        }
    }

    @Test func everyAdapterPatternAnswersAsICUDoes() throws {
        let patterns = Set(Policies.real.adapters.values.flatMap { adapter in
            adapter.operations.flatMap { $0.declarations.compactMap { $0.constraint?.pattern } }
        })
        #expect(patterns.count >= 40, "the adapters' patterns were found")
        for (n, pattern) in patterns.sorted().enumerated() {
            try Self.agree(pattern, seed: UInt64(n + 1))
        }
    }

    @Test func theSyntaxCornersAnswerAsICUDoes() throws {
        let cases: [(String, [String])] = [
            ("[a-zA-Z0-9-_.~]{1,8}", ["a-b", "9-_", "~", "^"]),        // a `-` right after a range is itself
            ("[-a]{1,3}|[a-]{2}", ["-", "a-", "--"]),
            ("[^0-9]{2}", ["ab", "a1", "中文", "é"]),
            ("(a?){2}", ["", "a", "aa", "aaa"]),
            ("(ab|a)(bc|c)?", ["abc", "ab", "abbc", "a"]),
            ("^x(?:y|z){0,8}$", ["x", "xyzzy", "xa", "xyyyyzzzzy"]),
            ("a{0}b{2,}c{1,2}", ["bb", "bbbcc", "abbc", "bbccc"]),
            (#"\{\}\.\|\-\/\\"#, [#"{}.|-/\"#]),
            ("é[中-丯]", ["é中", "é丯", "e中"]),
            ("[$()&|!' ]+", ["$", "( )", "a"]),
        ]
        for (n, (pattern, also)) in cases.enumerated() {
            try Self.agree(pattern, seed: UInt64(100 + n), samples: 20, also: also)
        }
    }

    @Test func syntaxOutsideTheSubsetIsRefusedWithItsPosition() {
        let refused: [(String, String)] = [
            (#"\d{3}"#, #"'\d' at position 1"#), ("a.b", "'.' at position 2"), ("a+?", "'?' after a quantifier"),
            ("(?=a)b", "'(?' at position 1"), ("[[a]]", "'[' inside a class"), ("[a&&b]", "'&&' inside a class"),
            (#"(a)\1"#, #"'\1'"#), ("a{2,1}", "a count out of order"), ("(a", "a '(' without its ')'"),
            ("a)", "a ')' without its '('"), ("$a", "'$' before the end"), ("[z-a]", "a range out of order"),
            ("[ab", "a '[' without its ']'"), ("a{", "'{' without a count"), ("*a", "'*' at position 1"),
            ("(ab)+", "a group repeated"), ("(a{0,2}b){0,2000}", "a group repeated"), ("((ab){0,64}c){0,32}", "a group repeated"),
        ]
        for (pattern, expected) in refused {
            #expect(throws: ValuePattern.SyntaxError.self, "\(pattern)") { _ = try ValuePattern(pattern) }
            let message = (try? ValuePattern(pattern)) == nil ? ValueConstraint.problem(pattern) ?? "" : ""
            #expect(message.contains(expected) && message.contains("outside the pattern syntax"), "\(pattern): \(message)")
        }
    }

    /// Repeated groups within the bound match as ICU does, however long the value: the matcher's
    /// nesting is bounded by the pattern, not by the value.
    @Test func boundedGroupRepetitionsMatchLongValues() throws {
        try Self.agree("(,[0-9]{1,3}){0,1000}", samples: 10, also: [String(repeating: ",12", count: 1000), String(repeating: ",1", count: 1001)])
        try Self.agree("((ab){0,32}c){0,32}", samples: 10)
        let ok = try ValuePattern("(,[0-9]{1,3}){0,1000}")
        #expect(!ok.matches(String(repeating: ",1", count: 200_000)))
    }

    /// A pattern that nests variable runs backtracks exponentially on a value built to fail (ICU
    /// too); the step budget ends the match, as no match, within milliseconds.
    @Test func aPathologicalValueIsRefusedWithinItsBudget() throws {
        let pattern = try ValuePattern("([a-z]{1,10}){0,100}")
        #expect(pattern.matches(String(repeating: "a", count: 60)))
        let started = ContinuousClock.now
        #expect(!pattern.matches(String(repeating: "a", count: 60) + "!"))
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    /// A long run of one class (`[A-Za-z0-9+/=_-]{1,8192}`, an encrypted field) matches in one pass.
    @Test func aLongRunMatchesAndItsBoundHolds() throws {
        let pattern = try ValuePattern("[A-Za-z0-9+/=_-]{1,8192}")
        #expect(pattern.matches(String(repeating: "Ab9+/=", count: 1365)))
        #expect(!pattern.matches(String(repeating: "A", count: 8193)))
        #expect(!pattern.matches(String(repeating: "A", count: 8000) + "中"))
    }
}

import BrokerFields
import BrokerPayload
import Testing

/// SplitMix64: small, seeded, reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Generates random small JSON documents as text, with random whitespace, escapes
/// (including \u escapes and surrogate pairs), non-ASCII, and exact-text numbers.
struct DocumentGenerator {
    var rng: SeededGenerator
    var uniqueMarkers = 0

    static let alphabet: [String] = ["a", "b", "Z", "0", " ", ".", "\"", "\\", "/", "é", "e\u{301}", "你", "😀",
                                     "\n", "\t", "\u{1}", "\u{7F}", "\u{2028}", "$", "-"]

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    mutating func ws() -> String {
        ["", "", "", " ", "\n", "\t ", "\r\n"][int(0...6)]
    }

    /// A JSON string literal whose decoded value is random; escapes chosen at random.
    mutating func stringLiteral(maxLength: Int = 6) -> String {
        var out = "\""
        for _ in 0..<int(0...maxLength) {
            let s = Self.alphabet[int(0...(Self.alphabet.count - 1))]
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 || int(0...4) == 0 {
                        // \u escape (surrogate pair above the BMP).
                        for unit in String(scalar).utf16 {
                            let hex = String(unit, radix: 16, uppercase: int(0...1) == 0)
                            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                        }
                    } else if scalar == "/" && int(0...1) == 0 {
                        out += "\\/"
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        return out + "\""
    }

    mutating func number() -> String {
        switch int(0...7) {
        case 0: return String(int(-1000...1000))
        case 1: return String(Int64.random(in: Int64.min...Int64.max, using: &rng))
        case 2: return String(UInt64.random(in: UInt64.min...UInt64.max, using: &rng))
        case 3: return "\(int(-99...99)).\(String(repeating: "0", count: int(0...2)))\(int(0...999))"
        case 4: return "\(int(0...9))e\(["", "+", "-"][int(0...2)])\(int(0...300))"
        case 5: return "\(int(1...9)).\(int(0...99))E\(int(-20...20))"
        case 6: return ["0", "-1", "0.0", "-2.5", "1.0", "0.1", "1e5", "1E5", "18446744073709551615", "-9223372036854775808"][int(0...9)]
        default: return String(Double.random(in: -1e6...1e6, using: &rng))
        }
    }

    mutating func value(depth: Int) -> String {
        let pick = depth >= 5 ? int(0...5) : int(0...8)
        switch pick {
        case 0, 1: return stringLiteral()
        case 2: return number()
        case 3: return ["true", "false"][int(0...1)]
        case 4: return "null"
        case 5:
            uniqueMarkers += 1
            return "\"m\(uniqueMarkers)x\""
        case 6, 7:
            var keys = Set<[UInt8]>()
            var members: [String] = []
            for _ in 0..<int(0...4) {
                let key = stringLiteral(maxLength: 3)
                // Keep keys unique by their decoded bytes (duplicates are rejected, tested elsewhere).
                guard let decoded = try? JSONBody(Array("[\(key)]".utf8), limits: defaultLimits),
                      case .string(let k) = decoded.fields[0].value,
                      keys.insert(Array(k.utf8)).inserted else { continue }
                members.append(ws() + key + ws() + ":" + ws() + value(depth: depth + 1) + ws())
            }
            return "{" + (members.isEmpty ? ws() : members.joined(separator: ",")) + "}"
        default:
            let elements = (0..<int(0...4)).map { _ in ws() + value(depth: depth + 1) + ws() }
            return "[" + (elements.isEmpty ? ws() : elements.joined(separator: ",")) + "]"
        }
    }
}

@Suite("Round-trip properties")
struct RoundTripPropertyTests {
    @Test(arguments: [1 as UInt64, 2, 3, 42, 2024])
    func randomDocumentsRoundTrip(seed: UInt64) throws {
        var generator = DocumentGenerator(rng: SeededGenerator(seed: seed))
        for _ in 0..<200 {
            let doc = generator.ws() + generator.value(depth: 0) + generator.ws()
            let body: JSONBody
            do {
                body = try json(doc)
            } catch {
                Issue.record("generated document rejected: \(error.message)\n\(doc)")
                continue
            }
            let out = body.serialized(removing: [])
            let again = try JSONBody(out, limits: defaultLimits)
            #expect(exactlyEqual(again.fields, body.fields), "\(doc)")
            // Serialising the re-parsed body is a fixed point.
            #expect(again.serialized(removing: []) == out)
        }
    }

    @Test(arguments: [7 as UInt64, 8, 9])
    func removedValuesNeverAppear(seed: UInt64) throws {
        var generator = DocumentGenerator(rng: SeededGenerator(seed: seed))
        for _ in 0..<200 {
            let doc = generator.value(depth: 0)
            let body = try json(doc)
            // Remove every field holding a unique marker; its bytes must be gone.
            let markers = body.fields.filter {
                if case .string(let s) = $0.value { return s.hasPrefix("m") && s.hasSuffix("x") }
                return false
            }
            let out = body.serialized(removing: Set(markers.map(\.path)))
            for marker in markers {
                if case .string(let s) = marker.value { #expect(!contains(out, "\"\(s)\""), "\(doc)") }
            }
            if markers.contains(where: { $0.path.segments.isEmpty }) {
                #expect(text(out) == "null")   // the whole document was the marker
                continue
            }
            let again = try JSONBody(out, limits: defaultLimits)
            #expect(again.fields.count == body.fields.count - markers.count
                    + Self.newlyEmptyContainers(body.fields, removed: Set(markers.map(\.path))), "\(doc)")
        }
    }

    /// Containers whose direct children were all removed leaves become empty-container leaves.
    static func newlyEmptyContainers(_ fields: [FieldOccurrence], removed: Set<FieldPath>) -> Int {
        var containers = Set<FieldPath>()
        var nodes = Set<FieldPath>()
        for field in fields {
            nodes.insert(field.path)
            for k in 0..<field.path.segments.count {
                containers.insert(field.path.prefix(k))
                nodes.insert(field.path.prefix(k))
            }
        }
        var count = 0
        for container in containers {
            let children = nodes.filter {
                $0.segments.count == container.segments.count + 1 && $0.segments.starts(with: container.segments)
            }
            if children.allSatisfy({ removed.contains($0) }) { count += 1 }
        }
        return count
    }
}

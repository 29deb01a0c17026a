import BrokerCore
import BrokerFields
import Foundation
import PropertyBased
import Testing

/// Properties of the minimisation transforms over random and adversarial strings (issue 23, item 1):
/// whatever the input, the output is denied (`nil`) or carries no more than the transform promises —
/// at most `decimals` decimals within the coordinate ranges, at most the prefix bits (and no IPv6
/// output that embeds more than the IPv4 prefix), at most `keep_first + keep_last` original scalars.
/// The checks here are an independent oracle (Foundation's `Double`, `inet_pton`), not the transform's own reader.
@Suite struct MinimisationPropertyTests {
    // MARK: Generators

    /// Pieces an attacker would splice into a coordinate: digits of other scripts, combining marks,
    /// exponents, signs, spaces, separators, huge and scaled integers.
    static let coordinatePieces: [String] = [
        "0", "1", "5", "9", "39", "90", "116", "180", "181", "-", "+", ".", ",", "|", ";", " ", "\t", "\n", "\0",
        "e", "E", "e5", "E-3", "\u{301}", "\u{308}", "\u{200B}", "\u{A0}", "０", "９", "٣", "۴", "५", "Ⅻ", "½",
        "116481488", "39990464", "13812345678", "00", "0000", "99999999999999999999", "inf", "NaN", "0x1F",
        "116.481488", "39.990464", "-0.001", "89.9999", "179.9995", "90.0000001",
    ]

    static let piecewise = Gen<String?>.element(of: coordinatePieces).map { $0 ?? "" }.array(of: 0...12).map { $0.joined() }

    /// A coordinate in range with up to 12 decimals, as a string; `limit` 90 or 180.
    static func coordinate(_ negative: Bool, _ whole: Int, _ fraction: String, limit: Int) -> String {
        let digits = whole == limit ? String(repeating: "0", count: fraction.count) : fraction
        return (negative ? "-" : "") + String(whole) + (digits.isEmpty ? "" : "." + digits)
    }

    static let longitude = zip(Gen<Bool>.bool, Gen<Int>.int(in: 0...180), Gen<Character>.number.string(of: 0...12))
        .map { coordinate($0, $1, $2, limit: 180) }
    static let latitude = zip(Gen<Bool>.bool, Gen<Int>.int(in: 0...90), Gen<Character>.number.string(of: 0...12))
        .map { coordinate($0, $1, $2, limit: 90) }

    static let validPoint = zip(longitude, latitude).map { "\($0),\($1)" }

    /// A valid point or list, then one adversarial piece spliced in at a random place.
    static let spliced = zip(validPoint.array(of: 1...3), Gen<String?>.element(of: coordinatePieces), Gen<Int>.int(in: 0...80))
        .map { points, piece, at -> String in
            var text = Array(points.joined(separator: "|"))
            text.insert(contentsOf: piece ?? "", at: min(at, text.count))
            return String(text)
        }

    static let anyScalars = Gen<UnicodeScalar>.unicodeScalar(in: "\u{0}"..."\u{2FFF}").array(of: 0...24)
        .map { String(String.UnicodeScalarView($0)) }

    static let coordinateInput = Gen<String>.oneOf(piecewise, spliced, validPoint, anyScalars)
    static let format = Gen<Minimisation.CoordinateFormat>.case

    // MARK: round_coordinates

    /// The ranges of the numbers of one output, by format: nil when the output is not of the format's shape.
    static func ranges(_ format: Minimisation.CoordinateFormat, count: Int) -> [[Double]] {
        switch format {
        case .lngLat: return [[180, 90]]
        case .latLng: return [[90, 180]]
        case .latitude: return [[90]]
        case .longitude: return [[180]]
        case .unstated: return count == 1 ? [[180]] : [[180, 90], [90, 180]]
        }
    }

    /// The oracle: ASCII `-?digits(.digits)?` numbers with at most `decimals` decimals, in the format's
    /// shape and ranges, at most `maxPoints` points.
    static func promiseHolds(_ output: String, format: Minimisation.CoordinateFormat, decimals: Int, maxPoints: Int) -> Bool {
        guard output.unicodeScalars.allSatisfy({ $0.isASCII }) else { return false }
        let points = output.split(separator: "|", omittingEmptySubsequences: false)
        guard points.count <= maxPoints else { return false }
        for point in points {
            let numbers = point.split(separator: ",", omittingEmptySubsequences: false)
            for number in numbers {
                guard number.wholeMatch(of: /-?[0-9]{1,3}(\.[0-9]+)?/) != nil,
                      number.split(separator: ".").dropFirst().first.map({ $0.count <= decimals }) ?? true else { return false }
            }
            let values = numbers.compactMap { Double($0) }
            guard values.count == numbers.count,
                  ranges(format, count: numbers.count).contains(where: { limits in
                      limits.count == values.count && zip(values, limits).allSatisfy { abs($0) <= $1 }
                  }) else { return false }
        }
        return true
    }

    @Test func roundedCoordinatesCarryAtMostNDecimalsWithinRange() async {
        await propertyCheck(count: 3000, input: Self.coordinateInput, Self.format, Gen<Int>.int(in: 0...5), Gen<Int>.int(in: 1...3)) { text, format, decimals, points in
            let transform = Minimisation(transform: .roundCoordinates(decimals: decimals, format: format, maxPoints: points), category: "c")
            if case .string(let out)? = transform.apply(.string(text)) {
                #expect(Self.promiseHolds(out, format: format, decimals: decimals, maxPoints: points),
                        "\(text.debugDescription) -> \(out.debugDescription)")
                // A rounding of what came, not other numbers: each within half a unit of the input's.
                let ins = text.split(whereSeparator: { $0 == "," || $0 == "|" }).compactMap { Double($0) }
                let outs = out.split(whereSeparator: { $0 == "," || $0 == "|" }).compactMap { Double($0) }
                #expect(ins.count == outs.count && zip(ins, outs).allSatisfy { abs($0 - $1) <= 0.5 * pow(10, -Double(decimals)) + 1e-9 })
            }
            if case .number(let out)? = transform.apply(.number(text)) {
                #expect(Self.promiseHolds(out, format: format, decimals: decimals, maxPoints: 1) && !out.contains(","),
                        "\(text.debugDescription) -> \(out.debugDescription)")
            }
        }
    }

    @Test func aValidPointIsAlwaysRounded() async {
        await propertyCheck(count: 500, input: Self.validPoint, Gen<Int>.int(in: 0...5)) { point, decimals in
            let lngLat = Minimisation(transform: .roundCoordinates(decimals: decimals, format: .lngLat), category: "c")
            let out = lngLat.apply(.string(point))
            #expect(out != nil, "\(point)")
            if case .string(let text)? = out { #expect(Self.promiseHolds(text, format: .lngLat, decimals: decimals, maxPoints: 1)) }
        }
    }

    // MARK: ip_prefix

    static let ipPieces: [String] = [
        "0", "1", "9", "a", "f", "F", "g", ":", "::", ".", "%", "%eth0", "[", "]", "/24", " ", "\0", "ffff", "ffff:",
        "64:ff9b:", "64:ff9b:1:", "2002:", "2001:0:", "2001:db8:", "114.247.50.2", "255", "256", "01", "１", "\u{301}",
    ]

    static let ipPiecewise = Gen<String?>.element(of: ipPieces).map { $0 ?? "" }.array(of: 0...10).map { $0.joined() }

    /// The prefixes (bytes) under which IPv6 keeps an IPv4 address, and random fill after them.
    static let embeddingPrefixes: [[UInt8]] = [
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0], [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0x64, 0xFF, 0x9B, 0, 1], [0x20, 0x02], [0x20, 0x01, 0, 0], [0x20, 0x01, 0x0D, 0xB8], [],
    ]

    static let ipv6Address = zip(Gen<[UInt8]?>.element(of: embeddingPrefixes), Gen<UInt8>.value(in: 0...255).array(of: 16))
        .map { prefix, fill -> String in
            let bytes = (prefix ?? []) + fill.dropFirst(prefix?.count ?? 0)
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = bytes.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }

    static let ipv4Address = Gen<UInt8>.value(in: 0...255).array(of: 4).map { $0.map(String.init).joined(separator: ".") }

    static let ipInput = Gen<String>.oneOf(ipPiecewise, ipv6Address, ipv4Address, ipv6Address.map { $0 + "%eth0" }, anyScalars)

    static func bits(_ bytes: [UInt8], keeping prefix: Int) -> [UInt8] {
        bytes.enumerated().map { k, byte in
            let keep = max(0, min(8, prefix - k * 8))
            return byte & (keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep)))
        }
    }

    /// Where the oracle finds an IPv4 address in an IPv6 one (network order), or the bits after a
    /// prefix that hides one at an unknown place.
    static func embedded(_ b: [UInt8]) -> [UInt8]? {
        let z = { (r: Range<Int>) in b[r].allSatisfy { $0 == 0 } }
        if z(0..<10) && b[10] == 0xFF && b[11] == 0xFF { return Array(b[12...]) }
        if z(0..<12) { return Array(b[12...]) }
        if z(0..<8) && b[8] == 0xFF && b[9] == 0xFF && z(10..<12) { return Array(b[12...]) }
        if b[0...3] == [0, 0x64, 0xFF, 0x9B] && z(4..<12) { return Array(b[12...]) }
        if b[0...5] == [0, 0x64, 0xFF, 0x9B, 0, 1] { return Array(b[6...]) }
        if b[0...1] == [0x20, 0x02] { return Array(b[2..<6]) }
        if b[0...3] == [0x20, 0x01, 0, 0] { return b[12...].map { ~$0 } }
        return nil
    }

    @Test func prefixesCarryAtMostThePrefixBits() async {
        await propertyCheck(count: 3000, input: Self.ipInput, Gen<Int>.int(in: 0...31), Gen<Int>.int(in: 0...64)) { text, v4, v6 in
            let transform = Minimisation(transform: .ipPrefix(ipv4: v4, ipv6: v6), category: "c")
            guard case .string(let out)? = transform.apply(.string(text)) else { return }
            var four = in_addr(), six = in6_addr()
            if inet_pton(AF_INET, out, &four) == 1 {
                let bytes = withUnsafeBytes(of: &four) { Array($0) }
                #expect(Self.bits(bytes, keeping: v4) == bytes, "\(text.debugDescription) -> \(out)")
            } else if inet_pton(AF_INET6, out, &six) == 1 {
                let bytes = withUnsafeBytes(of: &six) { Array($0) }
                #expect(Self.bits(bytes, keeping: v6) == bytes, "\(text.debugDescription) -> \(out)")
                if let v4Bits = Self.embedded(bytes) {
                    #expect(v4Bits.count == 4 && Self.bits(v4Bits, keeping: v4) == v4Bits, "\(text.debugDescription) -> \(out) embeds IPv4")
                }
            } else {
                Issue.record("not an address: \(text.debugDescription) -> \(out.debugDescription)")
            }
            // An input that embeds IPv4 leaves as IPv4.
            var input = in6_addr()
            if inet_pton(AF_INET6, text, &input) == 1, Self.embedded(withUnsafeBytes(of: &input) { Array($0) }) != nil {
                #expect(inet_pton(AF_INET, out, &four) == 1, "\(text) -> \(out)")
            }
        }
    }

    // MARK: mask

    static let maskPieces: [String] = ["1", "a", "张", "\u{301}", "\u{308}\u{308}", "👨‍👩‍👧", "\u{200D}", "🇨🇳", "*", " ", "\0", "é", "e\u{301}"]
    static let maskInput = Gen<String>.oneOf(Gen<String?>.element(of: maskPieces).map { $0 ?? "" }.array(of: 0...16).map { $0.joined() },
                                             anyScalars)

    @Test func maskKeepsAtMostKeepFirstPlusKeepLastScalars() async {
        await propertyCheck(count: 2000, input: Self.maskInput, Gen<Int>.int(in: 0...6), Gen<Int>.int(in: 0...6)) { text, first, last in
            let transform = Minimisation(transform: .mask(keepFirst: first, keepLast: last), category: "c")
            guard case .string(let out)? = transform.apply(.string(text)) else {
                #expect(text.unicodeScalars.count <= first + last, "\(text.debugDescription) was not masked")
                return
            }
            let input = Array(text.unicodeScalars), output = Array(out.unicodeScalars)
            #expect(output.count == input.count)
            #expect(output.prefix(first) == input.prefix(first) && output.suffix(last) == input.suffix(last))
            #expect(output.dropFirst(first).dropLast(last).allSatisfy { $0 == "*" })
            #expect(output.count - first - last >= 1)
        }
    }
}

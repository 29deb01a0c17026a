import BrokerFields
#if canImport(Glibc)
import Glibc
#endif

/// How a field may be sent in a coarser form when its own category is denied (`minimise:` in an adapter).
///
/// A small closed set of transforms, each yielding a value of a coarser category that the
/// adapter names: `round_coordinates` (every decimal number in the value rounded to
/// `decimals` places: a JSON number, or a string of numbers such as `lng,lat`, `lat,lng` or
/// `lat,lng|lat,lng`; both numbers alike, so the order does not matter), `ip_prefix` (the address with its host bits
/// zeroed: `/ipv4`, `/ipv6`) and `mask` (all but the first `keep_first` and last
/// `keep_last` characters replaced by `*`). `apply` is pure and total: a value the
/// transform cannot read gives `nil`, and the field is then denied as if it had no
/// minimisation (fail closed). A class: few fields have one, and a reference keeps every
/// `FieldDeclaration` (copied on each field's match) as small as it was without it.
public final class Minimisation: Sendable, Hashable {
    public enum Transform: Sendable, Hashable {
        case roundCoordinates(decimals: Int)
        case ipPrefix(ipv4: Int, ipv6: Int)
        case mask(keepFirst: Int, keepLast: Int)

        public var name: String {
            switch self {
            case .roundCoordinates: return "round_coordinates"
            case .ipPrefix: return "ip_prefix"
            case .mask: return "mask"
            }
        }
    }

    public let transform: Transform
    /// The category of the minimised value (coarser than the field's own).
    public let category: String
    /// Line of `minimise:` in the adapter file.
    public let line: Int

    public init(transform: Transform, category: String, line: Int = 0) {
        self.transform = transform; self.category = category; self.line = line
    }

    public static func == (a: Minimisation, b: Minimisation) -> Bool {
        a.transform == b.transform && a.category == b.category && a.line == b.line
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(transform); hasher.combine(category); hasher.combine(line)
    }

    /// The minimised value, of the same JSON kind as `value`; `nil` when the transform does not apply to it.
    public func apply(_ value: FieldValue) -> FieldValue? {
        switch (transform, value) {
        case (.roundCoordinates(let decimals), .number(let text)):
            return Self.roundDecimal(Substring(text), decimals).map { .number(String($0)) }
        case (.roundCoordinates(let decimals), .string(let text)):
            return Self.roundCoordinateList(text, decimals).map(FieldValue.string)
        case (.ipPrefix(let v4, let v6), .string(let text)):
            return Self.prefix(text, ipv4: v4, ipv6: v6).map(FieldValue.string)
        case (.mask(let first, let last), .string(let text)):
            return Self.mask(text, keepFirst: first, keepLast: last).map(FieldValue.string)
        default:
            return nil
        }
    }

    // MARK: round_coordinates

    /// Numbers separated by `,` (one point) and `|` or `;` (several points), each rounded; nothing else is read.
    static func roundCoordinateList(_ text: String, _ decimals: Int) -> String? {
        var out = ""
        var number = Substring()
        var start = text.startIndex
        for index in text.indices + [text.endIndex] {
            let atEnd = index == text.endIndex
            guard atEnd || [",", "|", ";"].contains(text[index]) else { continue }
            number = text[start..<index]
            guard let rounded = roundDecimal(number, decimals) else { return nil }
            out += rounded
            if !atEnd { out.append(text[index]); start = text.index(after: index) }
        }
        return out
    }

    /// A plain decimal (`-?digits(.digits)?`, no exponent) rounded half away from zero to
    /// `decimals` places, in decimal arithmetic on the digits (no binary floating point).
    static func roundDecimal(_ text: Substring, _ decimals: Int) -> Substring? {
        var body = text
        let negative = body.first == "-"
        if negative { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCIIDigit) else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard parts.count == 1 || (!fraction.isEmpty && fraction.allSatisfy(\.isASCIIDigit)) else { return nil }
        guard fraction.count > decimals else { return text[...] }   // already as coarse
        var digits = Array((whole + fraction.prefix(decimals)).utf8).map { Int($0) - 48 }
        if let next = fraction.dropFirst(decimals).first, next >= "5" {
            var k = digits.count - 1
            while k >= 0 {
                if digits[k] == 9 { digits[k] = 0; k -= 1 } else { digits[k] += 1; break }
            }
            if k < 0 { digits.insert(1, at: 0) }
        }
        let text = digits.map(String.init).joined()
        let integerCount = text.count - decimals
        var result = String(text.prefix(integerCount))
        if decimals > 0 { result += "." + text.suffix(decimals) }
        if negative && result.contains(where: { $0 != "0" && $0 != "." }) { result = "-" + result }
        return Substring(result)
    }

    // MARK: ip_prefix

    /// The network prefix of an IPv4 or IPv6 address (host bits zero), in its usual text form.
    static func prefix(_ text: String, ipv4: Int, ipv6: Int) -> String? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let bits = UInt32(bigEndian: v4.s_addr)
            let mask: UInt32 = ipv4 == 0 ? 0 : ~UInt32(0) << UInt32(32 - ipv4)
            v4.s_addr = (bits & mask).bigEndian
            return withUnsafeBytes(of: &v4) { format(AF_INET, $0, length: Int(INET_ADDRSTRLEN)) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        withUnsafeMutableBytes(of: &v6) { bytes in
            for k in 0..<16 {
                let keep = max(0, min(8, ipv6 - k * 8))
                bytes[k] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
            }
        }
        return withUnsafeBytes(of: &v6) { format(AF_INET6, $0, length: Int(INET6_ADDRSTRLEN)) }
    }

    private static func format(_ family: Int32, _ address: UnsafeRawBufferPointer, length: Int) -> String? {
        var buffer = [CChar](repeating: 0, count: length)
        guard inet_ntop(family, address.baseAddress, &buffer, socklen_t(length)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: mask

    /// `138****5678`: the middle characters replaced, one `*` each. A value too short to hide
    /// anything (no more characters than are kept) is not minimised.
    static func mask(_ text: String, keepFirst: Int, keepLast: Int) -> String? {
        let characters = Array(text)
        guard characters.count > keepFirst + keepLast else { return nil }
        return String(characters.prefix(keepFirst)) + String(repeating: "*", count: characters.count - keepFirst - keepLast)
            + String(characters.suffix(keepLast))
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

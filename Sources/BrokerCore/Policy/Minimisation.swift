import BrokerFields

/// How a field may be sent in a coarser form when its own category is denied (`minimise:` in an adapter).
///
/// A small closed set of transforms, each yielding a value of a coarser category that the
/// adapter names: `round_coordinates` (the point's numbers rounded to `decimals` places; the
/// value is a JSON number or a string of points in the field's `format`, see
/// `Minimisation+Coordinates`), `ip_prefix` (the address with its host bits zeroed: `/ipv4`,
/// `/ipv6`; an IPv6 address that embeds IPv4 is cut as IPv4, see `Minimisation+IPPrefix`) and
/// `mask` (all but the first `keep_first` and last `keep_last` Unicode scalars replaced by `*`).
/// Each transform reads its input strictly: `apply` is pure and total, and a value the transform
/// cannot read as exactly what it promises to coarsen gives `nil`; the field is then denied as if
/// it had no minimisation (fail closed). A class: few fields have one, and a reference keeps every
/// `FieldDeclaration` (copied on each field's match) as small as it was without it.
public final class Minimisation: Sendable, Hashable {
    public enum Transform: Sendable, Hashable {
        /// `maxPoints` bounds a `|`-list of points (1: one point); it applies to the point formats only.
        case roundCoordinates(decimals: Int, format: CoordinateFormat = .unstated, maxPoints: Int = 1)
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
        case (.roundCoordinates(let decimals, let format, _), .number(let text)):
            return Self.roundCoordinateNumber(text, decimals, format: format).map(FieldValue.number)
        case (.roundCoordinates(let decimals, let format, let maxPoints), .string(let text)):
            return Self.roundCoordinateString(text, decimals, format: format, maxPoints: maxPoints).map(FieldValue.string)
        case (.ipPrefix(let v4, let v6), .string(let text)):
            return Self.prefix(text, ipv4: v4, ipv6: v6).map(FieldValue.string)
        case (.mask(let first, let last), .string(let text)):
            return Self.mask(text, keepFirst: first, keepLast: last).map(FieldValue.string)
        default:
            return nil
        }
    }

    // MARK: mask

    /// `138****5678`: the middle replaced, one `*` per Unicode scalar. Judged by scalars, not grapheme
    /// clusters: one cluster can hold any number of scalars (a digit with a run of combining marks,
    /// a joined emoji), so keeping "3 characters" would keep an unbounded amount of the original; by
    /// scalars at most `keepFirst + keepLast` original scalars survive, whatever the text. A value
    /// too short to hide anything (no more scalars than are kept) is not minimised.
    static func mask(_ text: String, keepFirst: Int, keepLast: Int) -> String? {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > keepFirst + keepLast else { return nil }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars.prefix(keepFirst))
        out.append(contentsOf: repeatElement("*", count: scalars.count - keepFirst - keepLast))
        out.append(contentsOf: scalars.suffix(keepLast))
        return String(out)
    }
}

/// `round_coordinates`: a strict reader of coordinates, fail closed.
///
/// The transform promises a value that carries at most `decimals` decimals of a real point, so it
/// reads only what a point can be and refuses everything else (the field is then denied): an
/// integer such as `116481488` is the precise point scaled, `116.4\u{301}814` hides digits behind a
/// combining mark, a second point can carry the digits the first one lost. A coordinate is ASCII
/// `-?(0|[1-9][0-9]{0,2})(\.[0-9]+)?` (one leading `-`, no `+`, no exponent, no leading zeros, no
/// space), a latitude within ±90, a longitude within ±180; a point is two coordinates joined by
/// one `,` in the order the field's `format` states (`lng_lat` or `lat_lng`; `lat` or `lng` for a
/// value of one number); several points are joined by `|`, at most `max_points` of them (1 unless
/// the adapter says more: extra points could carry the digits that rounding took from the first).
/// Nothing else may be in the value.
extension Minimisation {
    /// What a `round_coordinates` field holds (`format:` in the adapter).
    public enum CoordinateFormat: Sendable, Hashable, CaseIterable {
        /// `lng_lat`: points `lng,lat`, longitude first.
        case lngLat
        /// `lat_lng`: points `lat,lng`, latitude first.
        case latLng
        /// One latitude (a JSON number, or a string of one number).
        case latitude
        /// One longitude.
        case longitude
        /// No `format:` declared: one number within ±180, or points whose numbers are within ±180
        /// and at least one of them within ±90 (a point in one order or the other). Coarser checks
        /// than a stated format, never a weaker precision promise.
        case unstated

        /// The adapter spelling of each stated format.
        public static let spellings: [String: CoordinateFormat] = ["lng_lat": .lngLat, "lat_lng": .latLng,
                                                                   "lat": .latitude, "lng": .longitude]

        /// Whether the value is a list of points rather than one number.
        public var isPoint: Bool { self == .lngLat || self == .latLng }
    }

    /// Rounds a JSON number (one coordinate): only formats of one number take it.
    static func roundCoordinateNumber(_ text: String, _ decimals: Int, format: CoordinateFormat) -> String? {
        let limit: Int
        switch format {
        case .latitude: limit = 90
        case .longitude, .unstated: limit = 180
        case .lngLat, .latLng: return nil
        }
        guard let coordinate = Coordinate(Array(text.utf8)[...]), coordinate.isWithin(limit) else { return nil }
        return coordinate.rounded(decimals)
    }

    /// Rounds a string value: one number or a `|`-list of points, as `format` states.
    static func roundCoordinateString(_ text: String, _ decimals: Int, format: CoordinateFormat, maxPoints: Int) -> String? {
        let bytes = Array(text.utf8)
        switch format {
        case .latitude, .longitude:
            return roundCoordinateNumber(text, decimals, format: format)
        case .unstated where !bytes.contains(UInt8(ascii: ",")):
            return roundCoordinateNumber(text, decimals, format: format)
        default:
            break
        }
        let points = bytes.split(separator: UInt8(ascii: "|"), omittingEmptySubsequences: false)
        guard points.count <= maxPoints else { return nil }
        var out: [String] = []
        out.reserveCapacity(points.count)
        for point in points {
            let numbers = point.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard numbers.count == 2, let first = Coordinate(numbers[0]), let second = Coordinate(numbers[1]) else { return nil }
            let inRange: Bool
            switch format {
            case .lngLat: inRange = first.isWithin(180) && second.isWithin(90)
            case .latLng: inRange = first.isWithin(90) && second.isWithin(180)
            default: inRange = first.isWithin(180) && second.isWithin(180) && (first.isWithin(90) || second.isWithin(90))
            }
            guard inRange else { return nil }
            out.append(first.rounded(decimals) + "," + second.rounded(decimals))
        }
        return out.joined(separator: "|")
    }

    /// One strictly read decimal coordinate, kept as its ASCII digits (no binary floating point).
    struct Coordinate {
        let negative: Bool
        /// `0` or 1–3 digits without a leading zero.
        let whole: ArraySlice<UInt8>
        /// The digits after the point (empty when there is no point).
        let fraction: ArraySlice<UInt8>

        /// `-?(0|[1-9][0-9]{0,2})(\.[0-9]+)?` in ASCII bytes, or nil.
        init?(_ bytes: ArraySlice<UInt8>) {
            var body = bytes
            negative = body.first == UInt8(ascii: "-")
            if negative { body = body.dropFirst() }
            let point = body.firstIndex(of: UInt8(ascii: "."))
            whole = body[..<(point ?? body.endIndex)]
            fraction = point.map { body[body.index(after: $0)...] } ?? []
            guard (1...3).contains(whole.count), whole.allSatisfy(Self.isDigit),
                  whole.count == 1 || whole.first != UInt8(ascii: "0") else { return nil }
            guard point == nil || (!fraction.isEmpty && fraction.allSatisfy(Self.isDigit)) else { return nil }
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        /// |value| ≤ limit (an integer), judged on the digits.
        func isWithin(_ limit: Int) -> Bool {
            let integer = whole.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            return integer < limit || (integer == limit && fraction.allSatisfy { $0 == UInt8(ascii: "0") })
        }

        /// Rounded half away from zero to `decimals` places, in decimal arithmetic on the digits; a
        /// value with no more decimals than that is returned as it came (it is already as coarse).
        /// Within an integer limit before, within it after: rounding up carries at most to the limit.
        func rounded(_ decimals: Int) -> String {
            guard fraction.count > decimals else {
                return (negative ? "-" : "") + String(decoding: whole, as: UTF8.self)
                    + (fraction.isEmpty ? "" : "." + String(decoding: fraction, as: UTF8.self))
            }
            var digits = Array(whole + fraction.prefix(decimals)).map { Int($0 - UInt8(ascii: "0")) }
            if fraction[fraction.startIndex + decimals] >= UInt8(ascii: "5") {
                var k = digits.count - 1
                while k >= 0 {
                    if digits[k] == 9 { digits[k] = 0; k -= 1 } else { digits[k] += 1; break }
                }
                if k < 0 { digits.insert(1, at: 0) }
            }
            let text = digits.map(String.init).joined()
            var result = String(text.prefix(text.count - decimals))
            if decimals > 0 { result += "." + text.suffix(decimals) }
            if negative && digits.contains(where: { $0 != 0 }) { result = "-" + result }
            return result
        }
    }
}

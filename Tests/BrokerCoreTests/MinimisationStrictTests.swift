import BrokerCore
import BrokerFields
import Testing

/// Each transform reads its input strictly or denies (issue 23, item 1): the cases the review sent
/// through, and the `format` / `max_points` parameters of `round_coordinates`.
@Suite struct MinimisationStrictTests {
    static func round(_ format: Minimisation.CoordinateFormat = .unstated, points: Int = 1, decimals: Int = 2) -> Minimisation {
        Minimisation(transform: .roundCoordinates(decimals: decimals, format: format, maxPoints: points), category: "c")
    }

    @Test func theReviewsCoordinatesAreDenied() {
        let amap = Self.round(.lngLat)
        for format in Minimisation.CoordinateFormat.allCases {
            for bad in ["116481488,39990464",                 // the point scaled to integers: out of range
                        "116.48,39.99|481488,990464",         // extra integer points
                        "13812345678,1",                      // a phone number
                        "116.4\u{301}814,39.99",              // a digit carrying a combining mark
                        "116.48,39.99|116.49,39.98"] {        // a second point where the field takes one
                #expect(Self.round(format).apply(.string(bad)) == nil, "\(format) \(bad)")
            }
        }
        #expect(amap.apply(.string("116.481488,39.990464")) == .string("116.48,39.99"))
    }

    @Test func coordinatesAreASCIIDecimalsInRangeAndNothingElse() {
        let lngLat = Self.round(.lngLat), latLng = Self.round(.latLng)
        for bad in ["", " 116.48,39.99", "116.48,39.99 ", "116.48 ,39.99", "116.48,39.99\n", "116.48,39.99,1",
                    "116.48", "１１６.48,39.99", "١١٦.48,39.99", "116.48,39.99\u{200B}", "116.48,39.99\0",
                    "1.1648e2,39.99", "116.48,3.999E1", "+116.48,39.99", "--116.48,39.99", "-+116,39", "116.48,-",
                    "0116.48,39.99", "00.5,39.99", "116.,39.99", ".5,39.99", "116.48,39.99;116.48,39.99",
                    "180.0001,0", "-180.5,0", "0,90.000001", "0,-91", "1000,1", "inf,1", "NaN,1", "0x1F,1",
                    "116.48,39.99|", "|116.48,39.99", "116,48,39,99"] {
            #expect(lngLat.apply(.string(bad)) == nil, "\(bad)")
        }
        // In range, the order decides which number is the latitude.
        #expect(lngLat.apply(.string("116.481,39.996")) == .string("116.48,40.00"))
        #expect(latLng.apply(.string("116.481,39.996")) == nil)
        #expect(latLng.apply(.string("39.996,116.481")) == .string("40.00,116.48"))
        #expect(lngLat.apply(.string("-180,-90")) == .string("-180,-90"))
        #expect(lngLat.apply(.string("180.000,90.00000")) == .string("180.00,90.00"))
        #expect(lngLat.apply(.string("179.999,89.999")) == .string("180.00,90.00"))
        // An integer within range is already as coarse as two decimals.
        #expect(lngLat.apply(.string("116,39")) == .string("116,39"))
        // A pair format takes no lone number; a one-number format no pair.
        #expect(lngLat.apply(.number("116.48")) == nil)
        #expect(Self.round(.latitude).apply(.number("39.990464")) == .number("39.99"))
        #expect(Self.round(.latitude).apply(.number("116.48")) == nil)
        #expect(Self.round(.longitude).apply(.number("116.481488")) == .number("116.48"))
        #expect(Self.round(.longitude).apply(.string("116.481488,39.99")) == nil)
        #expect(Self.round(.latitude).apply(.number("3.999e1")) == nil)
        // No format stated: a point that is valid in one order or the other.
        #expect(Self.round().apply(.string("116.481488,39.990464")) == .string("116.48,39.99"))
        #expect(Self.round().apply(.string("39.990464,116.481488")) == .string("39.99,116.48"))
        #expect(Self.round().apply(.string("116.48,116.48")) == nil)
        #expect(Self.round().apply(.number("180.5")) == nil)
    }

    @Test func severalPointsOnlyWhereTheFieldTakesThem() {
        let batch = Self.round(.lngLat, points: 3)
        #expect(batch.apply(.string("116.481488,39.990464|116.1,39.2")) == .string("116.48,39.99|116.1,39.2"))
        #expect(batch.apply(.string("1,1|2,2|3,3")) == .string("1,1|2,2|3,3"))
        #expect(batch.apply(.string("1,1|2,2|3,3|4,4")) == nil)
        #expect(batch.apply(.string("116.48,39.99|481488,990464")) == nil)
        #expect(batch.apply(.string("116.48,39.99||116.48,39.99")) == nil)
    }

    @Test func anAddressThatEmbedsIPv4IsCutAsIPv4() {
        let prefix = Minimisation(transform: .ipPrefix(ipv4: 24, ipv6: 48), category: "c")
        let cases: [(String, String?)] = [
            ("2002:72f7:3202::1", "114.247.50.0"),                   // 6to4: the review's case
            ("2002:72f7:3202:1234:5678:9abc:def0:1", "114.247.50.0"),
            ("::ffff:114.247.50.2", "114.247.50.0"),                 // IPv4-mapped
            ("::ffff:72f7:3202", "114.247.50.0"),
            ("::ffff:0:114.247.50.2", "114.247.50.0"),               // IPv4-translated
            ("::114.247.50.2", "114.247.50.0"),                      // IPv4-compatible
            ("::1", "0.0.0.0"),
            ("64:ff9b::114.247.50.2", "114.247.50.0"),               // NAT64 well-known prefix
            ("64:ff9b:1:72f7:32:200::", nil),                        // local-use NAT64: the IPv4 may sit anywhere
            ("64:ff9b:1::114.247.50.2", nil),
            ("2001:0:4136:e378:8000:63bf:8d08:cdfd", "114.247.50.0"), // Teredo: client 114.247.50.2, inverted
            ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::"),     // documentation prefix, not Teredo
            ("fe80::1%eth0", nil), ("[2001:db8::1]", nil), ("2001:db8::1/64", nil), ("2001:db8::1 ", nil),
            ("2001:db8::1\0", nil), ("１.2.3.4", nil), ("1.2.3.4\0junk", nil), ("0x7f.0.0.1", nil), ("127.1", nil),
            ("2001:db8::1:2:3:4:5:6:7", nil), ("::ffff:1.2.3", nil), (String(repeating: "0", count: 40) + "::1", nil),
        ]
        for (input, expected) in cases {
            #expect(prefix.apply(.string(input)) == expected.map(FieldValue.string), "\(input)")
        }
    }

    @Test func maskCountsUnicodeScalars() {
        let mask = Minimisation(transform: .mask(keepFirst: 1, keepLast: 1), category: "c")
        // One grapheme cluster, many scalars: only the first and the last scalar survive.
        #expect(mask.apply(.string("1\u{301}\u{302}\u{303}\u{304}9")) == .string("1****9"))
        #expect(mask.apply(.string("👨‍👩‍👧")) == .string("👨***👧"))
        #expect(mask.apply(.string("ab")) == nil)
    }

    // MARK: check

    static let adapter = MinimisationTests.adapter
    static func issues(_ minimise: String) -> [String] {
        let adapter = Self.adapter.replacingOccurrences(of: "      lat:          { category: user.location.precise, \(MinimisationTests.round) }",
                                                        with: "      lat:          { category: user.location.precise, minimise: \(minimise) }")
        return MinimisationTests.bundle(adapter).1.map(\.description)
    }

    @Test func checkReadsFormatAndMaxPoints() throws {
        let good = "{ transform: round_coordinates, decimals: 2, format: lng_lat, max_points: 20, category: user.location.imprecise }"
        #expect(Self.issues(good).isEmpty, "\(Self.issues(good))")
        let bundle = try #require(MinimisationTests.bundle(Self.adapter.replacingOccurrences(
            of: "      lat:          { category: user.location.precise, \(MinimisationTests.round) }",
            with: "      lat:          { category: user.location.precise, minimise: \(good) }")).0)
        let declaration = bundle.adapters["geo"]?.operations.flatMap(\.declarations).first { $0.pattern.description == "lat" }
        #expect(declaration?.minimise?.transform == .roundCoordinates(decimals: 2, format: .lngLat, maxPoints: 20))

        #expect(Self.issues("{ transform: round_coordinates, decimals: 2, format: \"lng,lat\", category: user.location.imprecise }")
            .contains { $0.contains("format must be lng_lat, lat_lng, lat or lng") })
        #expect(Self.issues("{ transform: round_coordinates, decimals: 2, format: lat, max_points: 2, category: user.location.imprecise }")
            .contains { $0.contains("max_points needs a point format") })
        #expect(Self.issues("{ transform: round_coordinates, decimals: 2, format: lat_lng, max_points: 101, category: user.location.imprecise }")
            .contains { $0.contains("max_points must be at most 100") })
        #expect(Self.issues("{ transform: mask, keep_first: 1, format: lat, category: user.location.imprecise }")
            .contains { $0.contains("format is not a parameter of mask") })
    }
}

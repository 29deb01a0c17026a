import BrokerCore
import BrokerFields
import Foundation
import Testing

/// The detector behind non-personal labels: what it must find (plain, percent-encoded, base64 at any
/// alignment) and what it must let pass (the technical values the adapters' operations really carry).
struct PersonalDataDetectorTests {
    typealias Finding = PersonalDataDetector.Finding

    static func base64(_ text: String, url: Bool = false) -> String {
        let standard = Data(text.utf8).base64EncodedString()
        return url ? standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_") : standard
    }

    static func percent(_ text: String) -> String {
        text.utf8.map { String(format: "%%%02X", $0) }.joined()
    }

    /// Plain, in a sentence, fully percent-encoded, base64 and base64url, and base64 misaligned by a prefix.
    static func forms(_ datum: String) -> [String] {
        [datum, "Ann Li, \(datum);", "ref=" + percent(datum), "Ann%20Li%20" + datum.replacingOccurrences(of: "@", with: "%40"),
         base64("Name=Ann Li;" + datum), base64("~" + datum + " ok", url: true), "Iv" + base64("ID " + datum),
         "A" + base64(datum), "AB" + base64(datum), "ABC" + base64(datum)]
    }

    static let positives: [(String, Finding)] = [
        ("110101199003074514", .residentID),
        ("11010519491231002X", .residentID),
        ("44030419851111123x", .residentID),
        ("13812345678", .mobileNumber),
        ("+8613912345678", .mobileNumber),
        ("tel:19912345678", .mobileNumber),
        ("ann.li@example.com", .email),
        ("li+push@mail.example.com.cn", .email),
        ("114.247.50.2", .ipAddress),
        ("2002:72f7:3202::1", .ipAddress),
        ("2001:db8:85a3:0:0:8a2e:370:7334", .ipAddress),
        ("fe80::1ff:fe23:4567:890a", .ipAddress),
        ("116.481488,39.990464", .coordinates),
        ("39.9042, 116.4074", .coordinates),
        ("lat=39.9042&lng=116.4074", .coordinates),
        ("-33.8688,151.2093", .coordinates),
        ("4111111111111111", .bankCard),
        ("6222021234567890128", .bankCard),
        ("378282246310005", .bankCard),
    ]

    @Test(arguments: positives)
    func findsEachKindInEveryForm(_ datum: String, _ kind: Finding) {
        for form in Self.forms(datum) {
            #expect(PersonalDataDetector.scan(form) == kind, "\(kind.rawValue) in \(form)")
        }
    }

    @Test func findsTheReviewCases() {
        // Tencent Encryption.Iv of the second review: base64 of a name and an ID number.
        #expect(PersonalDataDetector.scan("TmFtZT1Bbm4gTGk7SWRDYXJkPTExMDEwMTE5OTAwMzA3NDUxNA==") == .residentID)
        #expect(PersonalDataDetector.scan("Ann%20Li%20ID%20110101199003074514") == .residentID)
        #expect(PersonalDataDetector.scan("https://m.example.com/o?id=110101199003074514&tel=13812345678") == .residentID)
        #expect(PersonalDataDetector.scan("https://m.example.com/o?tel=13812345678") == .mobileNumber)
        #expect(PersonalDataDetector.scan(FieldValue.number("4111111111111111")) == .bankCard)
        #expect(PersonalDataDetector.scan(FieldValue.bool(true)) == nil)
    }

    /// Near misses: the checksum, the length, the shape or the context is wrong.
    @Test(arguments: [
        "110101199003074515",            // wrong check digit
        "110101199013074514",            // month 13 (check digit recomputed would still fail the date)
        "1101011990030745140",           // 19 digits: the ID is inside a longer run
        "991011199003074514",            // no such province
        "138123456789",                  // 12 digits
        "12812345678",                   // 12x is not a mobile prefix
        "0013812345678",                 // 13 digits without 86
        "icon@2x.png", "user@localhost", "pkg@1.2.3", "@example.com",
        "v1.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4.5", "01.2.3.4",
        "::1", "::", "14:00:00", "00:1a:2b:3c:4d:5e", "std::vector", "a::b::c",
        "116.48,39.99", "1.2345,200.1234", "0.1234,0.5678", "1234.5678,12.3456",
        "4111111111111112",              // Luhn fails
        "1717171717123",                 // a millisecond timestamp (Luhn aside, never a card prefix)
        "1717171717123456",              // microseconds
    ])
    func nearMissesPass(_ value: String) {
        #expect(PersonalDataDetector.scan(value) == nil, "\(value)")
    }

    /// Values the adapters' operations carry in their non-personal fields, as the provider simulators
    /// and SDKs send them: none is personal.
    @Test(arguments: [
        // Huawei, FCM, vivo, OPPO, Xiaomi delivery options and ids.
        "86400s", "3600.5s", "0.5s", "10086", "103012345", "HIGH", "NORMAL", "EXPRESS", "-1", "1",
        "IQAAAACy0kYtAABqJ8ZyOvHgRt2tT0", "0866470036211223300001234500CN01", "news_sports.daily-2024",
        "'weather' in topics && ('news' in topics || 'sports' in topics)", "my-project-1234", "com.example.shop",
        "com.example.shop.MainActivity", "#FF5722", "/raw/shake", "2014-10-02T15:01:23.045123456Z",
        "intent://com.example.shop/open#Intent;scheme=pushscheme;launchFlags=0x4000000;end",
        "android.resource://com.example.shop/raw/ding", "zh_CN", "app_order_2024_06_01",
        // Tencent, Alibaba, APNs, maps: actions, regions, versions, request ids, timestamps.
        "IdCardVerification", "ap-guangzhou", "2018-03-01", "2019-03-07", "zh-CN", "1717171717", "1717171717123",
        "e9c8f0a2-3b1d-4c5e-9f6a-7b8c9d0e1f2a", "550E8400-E29B-41D4-A716-446655440000", "com.example.shop.voip",
        "ChIJ2eUgeAK6j4ARbn5u_wAGqWA", "8PFRW2R3+X4", "050000|060000", "street_address|route", "ROOFTOP",
        "1.2.3", "10.0.1", "v2.3.4.5", "5.12.0.300", "SDK/3.0.1", "https://www.example.com/verify/done?from=faceid",
        "q83vEjRWeJCrze8SNFZ4kA==", "AES-256-GCM", "dXJxY2E6APA91bF7sQ3Zr1M0Hk_8cJ5tLw9vX2yU4nB6eD1fG3hI5jK7lM9oP0q",
        "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad",
    ])
    func technicalValuesPass(_ value: String) {
        #expect(PersonalDataDetector.scan(value) == nil, "\(value)")
    }

    /// Random ids, IVs and ciphertexts (a fixed seed): a checksum lets through, not a false alarm per value.
    @Test func randomTechnicalValuesPass() {
        var random = SplitMix64(seed: 0x5eed_2026)
        var alarms: [String] = []
        for _ in 0..<2_000 {
            let bytes = (0..<Int(random.next() % 48 + 12)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                                   bytes[8], bytes[9], bytes[10], bytes[11], bytes[0], bytes[1], bytes[2], bytes[3])).uuidString
            for value in [Data(bytes).base64EncodedString(), uuid, bytes.map { String(format: "%02x", $0) }.joined().prefix(40).description]
            where PersonalDataDetector.scan(value) != nil {
                alarms.append(value)
            }
        }
        #expect(alarms.count <= 2, "\(alarms)")
    }
}

/// A seeded generator: the same values on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The detector in step 7: a non-personal field's value (or a key the caller chose under its wildcard)
/// that holds personal data is denied as its declaration says, and the message names the detector only.
struct NonPersonalLabelTests {
    let engine = PolicyEngine(bundle: Policies.demo, homeRegion: "CN", minorAge: 18)
    let context = SubjectContext(subject: nil, grants: [pushGrant])

    @Test func aValueOrAKeyHoldingPersonalDataIsDenied() throws {
        for body in [#"{"token":["t1"],"options":{"ref":"SU5GTzogMTEwMTAxMTk5MDAzMDc0NTE0"}}"#,
                     #"{"token":["t1"],"options":{"110101199003074514":"x"}}"#] {
            let decision = engine.evaluate(pushRequest(body: body), context: context, decoder: StrictPayloadDecoder())
            #expect(decision.verdict == .blocked && decision.code == .personalDataInNonPersonalField, "\(body)")
            let field = try #require(decision.fields.first { $0.reason == .personalDataInNonPersonalField })
            #expect(field.category == "system.operations" && field.action == .blocked)
            let message = try #require(decision.message)
            #expect(message.contains("detector prc_resident_id") && !message.contains("110101"), "\(message)")
        }
    }

    @Test func strippedWhereTheDeclarationSaysStripAndTechnicalValuesPass() throws {
        let redacted = engine.evaluate(pushRequest(body: #"{"token":["t1"],"options":{"ttl":"86400s","ip":"114.247.50.2"}}"#),
                                       context: context, decoder: StrictPayloadDecoder())
        #expect(redacted.verdict == .blocked, "options.* blocks by default")
        let allowed = engine.evaluate(pushRequest(body: #"{"token":["t1"],"priority":"high","options":{"ttl":"86400s","v":"1.2.3"}}"#),
                                      context: context, decoder: StrictPayloadDecoder())
        #expect(allowed.verdict == .allowed, "\(allowed.message ?? "")")
        #expect(allowed.message == nil)
    }
}

/// How long a `pattern` can match: the bound `check` compares with 256.
struct PatternLengthTests {
    @Test(arguments: [
        ("[a-zA-Z0-9_.~%-]{1,900}", 900), ("https?://[!-~]{1,248}", 256), ("[0-9]{1,8}(\\.[0-9]{1,9})?s", 19),
        ("[a-z_]{1,40}(\\|[a-z_]{1,40}){0,15}", 655), ("(0(\\.[0-9]{1,6})?|1(\\.0{1,6})?)", 8), ("^[-a]{3}$", 3),
        ("\\{(\"[A-Za-z]{1,24}\":(\"[A-Za-z0-9._-]{0,24}\"|true|false|[0-9]{1,10}),?){0,4}\\}", 218),
        ("alipay\\.[a-z.]{1,64}", 71), ("(?:ab|c){2}", 4), ("a{2,}", nil), ("[0-9]+", nil), ("x{0,3}y*", nil), ("x{3}", 3),
    ] as [(String, Int?)])
    func boundsThePattern(_ pattern: String, _ expected: Int?) throws {
        #expect(try ValuePattern(pattern).maximumLength == expected, "\(pattern)")
    }
}

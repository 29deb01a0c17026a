import BrokerCore
import BrokerTesting
import Foundation
import Testing

/// `minimise:` through the real server: the value that arrives at the simulator is the minimised
/// one, the log says so (category sent, `minimised_from`, fingerprint of the value sent).
@Suite struct MinimiseShareTests {
    static let headers = [("X-Share-Subject", "u1")]

    func fields(_ broker: Broker, _ shareID: String) async throws -> [[String: Any]] {
        let record = try #require(try await broker.records().first { $0.kind == "share" && $0.shareID == shareID })
        let object = try JSONSerialization.jsonObject(with: Data(record.body.utf8)) as? [String: Any]
        return object?["fields"] as? [[String: Any]] ?? []
    }

    func shareIDs(_ broker: Broker, _ query: String) async throws -> [String] {
        let response = try await broker.call("GET", "/v1/shares" + query, token: Broker.complianceToken)
        return (response.json["shares"] as? [[String: Any]] ?? []).compactMap { ($0["share"] as? [String: Any])?["share_id"] as? String }
    }

    @Test func amapGetsRoundedCoordinatesWithoutSeparateConsentAndThePreciseOnesWithIt() async throws {
        try await withBroker { broker in
            let path = "/v1/proxy/amap-location/v3/geocode/regeo?location=116.481488,39.990464&extensions=base"
            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service")
            let coarse = try await broker.call("GET", path, headers: Self.headers)
            #expect(coarse.status == 200 && coarse.json["status"] as? String == "1", "\(coarse.text)")
            #expect(coarse.headerValue("X-Share-Decision") == "allowed")
            #expect(broker.simulator("amap-location").requests().last?.queryParameter("location") == "116.48,39.99")
            let shareID = try #require(coarse.headerValue("X-Share-Id"))

            let location = try #require(try await fields(broker, shareID).first { $0["path"] as? String == "location" })
            #expect(location["action"] as? String == "minimised")
            #expect(location["category"] as? String == "user.location.imprecise")
            #expect(location["minimised_from"] as? String == "user.location.precise")
            #expect(location["reason"] as? String == "separate_consent_required")
            // The fingerprint is of the value sent, under the category sent.
            #expect(try await shareIDs(broker, "?fingerprint_of=116.48,39.99&category=user.location.imprecise") == [shareID])
            #expect(try await shareIDs(broker, "?fingerprint_of=116.481488,39.990464&category=user.location.precise").isEmpty)
            #expect(try await shareIDs(broker, "?category=user.location.imprecise") == [shareID])

            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", separate: true)
            let precise = try await broker.call("GET", path, headers: Self.headers)
            #expect(precise.status == 200)
            #expect(broker.simulator("amap-location").requests().last?.queryParameter("location") == "116.481488,39.990464")
            let sent = try await fields(broker, try #require(precise.headerValue("X-Share-Id")))
            #expect(sent.first { $0["path"] as? String == "location" }?["action"] as? String == "sent")
            #expect(sent.allSatisfy { $0["minimised_from"] == nil })

            // The sharing list counts the minimised share under the category sent.
            let list = try await broker.call("GET", "/v1/reports/sharing-list", token: Broker.complianceToken)
            let rows = list.json["rows"] as? [[String: Any]] ?? list.json["entries"] as? [[String: Any]] ?? []
            let imprecise = rows.first { $0["provider"] as? String == "amap-location" && $0["category"] as? String == "user.location.imprecise" }
            #expect(imprecise?["sent"] as? Int == 1 && imprecise?["minimised"] as? Int == 1, "\(list.text)")
        }
    }

    @Test func amapIPLocationGetsTheNetworkPrefixWhenOnlyThatIsGranted() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", categories: ["user.device.network_prefix"])
            let response = try await broker.call("GET", "/v1/proxy/amap-location/v3/ip?ip=114.247.50.2", headers: Self.headers)
            #expect(response.status == 200, "\(response.text)")
            #expect(broker.simulator("amap-location").requests().last?.queryParameter("ip") == "114.247.50.0")
            // Nothing granted for either category: refused as before, nothing sent.
            try await broker.putSubject("u2")
            let other = try await broker.call("GET", "/v1/proxy/amap-location/v3/ip?ip=114.247.50.2", headers: [("X-Share-Subject", "u2")])
            #expect(other.status == 403 && other.json["code"] as? String == "consent_missing")
            #expect(broker.simulator("amap-location").requests().count == 1)
        }
    }

    /// The second review's cases (issue 23, item 1): a subject granted only the imprecise location
    /// sent a scaled integer point, extra integer points, a phone number and a digit carrying a
    /// combining mark, and each went unchanged (or mangled) as `user.location.imprecise`. Each is
    /// now refused whole: the share is blocked (the field's on_deny), nothing reaches AMap, and no
    /// share is logged with that value under the coarse category.
    @Test func amapRefusesCoordinatesThatAreNotOnePointInRange() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", categories: ["user.location.imprecise"])
            let amap = broker.simulator("amap-location")
            let cases = ["116481488,39990464", "116.48,39.99|481488,990464", "13812345678,1", "116.4\u{301}814,39.99",
                         "116.48,39.99|116.49,39.98", "1.1648e2,39.99", "１１６.48,39.99", "116.48, 39.99"]
            for value in cases {
                let encoded = try #require(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
                let response = try await broker.call("GET", "/v1/proxy/amap-location/v3/geocode/regeo?location=\(encoded)",
                                                     headers: Self.headers)
                #expect(response.status == 403 && response.headerValue("X-Share-Decision") == "blocked", "\(value): \(response.text)")
                #expect(response.json["code"] as? String == "consent_missing", "\(value): \(response.text)")
                #expect(amap.requests().isEmpty, "\(value) reached the provider")
                #expect(try await shareIDs(broker, "?fingerprint_of=\(encoded)&category=user.location.imprecise").isEmpty, "\(value)")
            }
            // The same grant still gets a real point, rounded.
            let good = try await broker.call("GET", "/v1/proxy/amap-location/v3/geocode/regeo?location=116.481488,39.990464", headers: Self.headers)
            #expect(good.status == 200 && good.headerValue("X-Share-Decision") == "allowed", "\(good.text)")
            #expect(amap.requests().map { $0.queryParameter("location") } == ["116.48,39.99"])
        }
    }

    /// `2002:72f7:3202::1` is 6to4 for 114.247.50.2: its IPv6 /48 (`2002:72f7:3202::`) is the whole
    /// IPv4 address. An address that embeds IPv4 is cut as IPv4, so AMap gets the /24 of the
    /// embedded address and never the IPv6 prefix.
    @Test func anIPv6AddressThatEmbedsIPv4IsSentAsTheIPv4Prefix() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", categories: ["user.device.network_prefix"])
            let amap = broker.simulator("amap-location")
            for value in ["2002:72f7:3202::1", "::ffff:114.247.50.2", "64:ff9b::72f7:3202", "2001:0:4136:e378:8000:63bf:8d08:cdfd"] {
                let encoded = try #require(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
                let response = try await broker.call("GET", "/v1/proxy/amap-location/v3/ip?ip=\(encoded)", headers: Self.headers)
                #expect(response.status == 200, "\(value): \(response.text)")
                #expect(amap.requests().last?.queryParameter("ip") == "114.247.50.0", "\(value)")
            }
            #expect(try await shareIDs(broker, "?fingerprint_of=2002%3A72f7%3A3202%3A%3A&category=user.device.network_prefix").isEmpty)
            // Local-use NAT64 (the IPv4 bits sit where the operator chose) and a zone are refused.
            for value in ["64:ff9b:1:72f7:32:200::", "fe80::1%eth0"] {
                let encoded = try #require(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
                let response = try await broker.call("GET", "/v1/proxy/amap-location/v3/ip?ip=\(encoded)", headers: Self.headers)
                #expect(response.status == 403 && response.json["code"] as? String == "consent_missing", "\(value): \(response.text)")
            }
            #expect(amap.requests().count == 4)
        }
    }

    @Test func tencentLBSLatitudeFirstIsRoundedAndSignedOverTheRoundedValue() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "tencent-lbs", purpose: "functional.service")
            let response = try await broker.call("GET", "/v1/proxy/tencent-lbs/ws/geocoder/v1?location=39.990464,116.481488&get_poi=0",
                                                 headers: Self.headers)
            // The simulator checks the broker's signature, so it was computed over what was sent.
            #expect(response.status == 200 && response.json["status"] as? Int == 0, "\(response.text)")
            let request = try #require(broker.simulator("tencent-lbs").requests().last)
            #expect(request.queryParameter("location") == "39.99,116.48")
            let location = (response.json["result"] as? [String: Any])?["location"] as? [String: Any]
            #expect(location?["lat"] as? Double == 39.99, "latitude first: \(response.text)")
        }
    }

    @Test func googleMapsCrossBorderWithoutSeparateConsentGetsTheRoundedPoint() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "google-maps", purpose: "functional.service", crossBorder: true)
            let response = try await broker.call("GET", "/v1/proxy/google-maps/maps/api/geocode/json?latlng=39.990464,116.481488",
                                                 headers: Self.headers)
            #expect(response.status == 200 && response.json["status"] as? String == "OK", "\(response.text)")
            #expect(broker.simulator("google-maps").requests().last?.queryParameter("latlng") == "39.99,116.48")
        }
    }

    /// A variant of the Huawei adapter whose `message.data` is a JSON document with a point in it.
    static let huaweiWithAPoint = try! loadRepositoryPolicy(editing: [
        "adapters/huawei-push.yaml": { text in
            text.replacingOccurrences(of: "      message.data:                             { category: user.content.notification, on_deny: strip }", with: """
                      message.data:
                        encoding: json
                        fields:
                          lat:   { category: user.location.precise, on_deny: strip, minimise: { transform: round_coordinates, decimals: 2, category: user.location.imprecise } }
                          lng:   { category: user.location.precise, on_deny: strip, minimise: { transform: round_coordinates, decimals: 2, category: user.location.imprecise } }
                          place: { category: user.location.precise, on_deny: strip, minimise: { transform: round_coordinates, decimals: 1, category: user.location.imprecise } }
                """)
        },
        "contracts/huawei-push.yaml": { text in
            text.replacingOccurrences(of: "categories: [user.device.push_token, user.content.notification]",
                                      with: "categories: [user.device.push_token, user.content.notification, user.location.precise, user.location.imprecise]")
        },
    ])

    @Test func aJSONDocumentInsideAJSONBodyArrivesWithItsNumbersAndStringsRounded() async throws {
        try await withBroker(policy: Self.huaweiWithAPoint) { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: "essential.service.notifications.push")
            let data = #"{\"lat\":39.990464,\"lng\":116.481488,\"place\":\"116.481488,39.990464\"}"#
            let body = #"{"message":{"token":["AAA"],"data":"\#(data)"}}"#
            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")], body: body)
            #expect(response.status == 200 && response.headerValue("X-Share-Decision") == "allowed", "\(response.text)")
            let request = try #require(broker.simulator("huawei-push").requests().last)
            let message = (try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])?["message"] as? [String: Any]
            let inner = try #require(message?["data"] as? String)
            #expect(inner == #"{"lat":39.99,"lng":116.48,"place":"116.5,40.0"}"#)
            let logged = try await fields(broker, try #require(response.headerValue("X-Share-Id")))
            #expect(logged.filter { $0["action"] as? String == "minimised" }.compactMap { $0["path"] as? String }.sorted()
                    == ["message.data.lat", "message.data.lng", "message.data.place"])

            // The SDK decision says the same and hands back the minimised payload.
            let decision = try await broker.call("POST", "/v1/decisions", headers: [("Content-Type", "application/json")], body: """
                {"provider":"huawei-push","operation":"send","subject":"u1","fields":{"message":{"token":["AAA"],"data":"\(data)"}}}
                """)
            #expect(decision.status == 200 && decision.json["decision"] as? String == "allowed", "\(decision.text)")
            let lat = (decision.json["fields"] as? [[String: Any]])?.first { $0["path"] as? String == "message.data.lat" }
            #expect(lat?["action"] as? String == "minimised" && lat?["minimised_from"] as? String == "user.location.precise")
            #expect(lat?["reason"] as? String == "separate_consent_required")
            #expect(decision.text.contains(#"\"lat\":39.99"#) && !decision.text.contains("39.990464"))
        }
    }
}

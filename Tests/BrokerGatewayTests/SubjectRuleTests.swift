import BrokerCore
import BrokerCurl
import Foundation
import Testing

/// Issue 23, items 3 and 6 (minors), through the real server: one subject-id rule on every channel,
/// refused before anything is logged; a share about a subject the broker does not know is refused
/// and logged only by fingerprint; minor status that no update can quietly clear.
@Suite(.serialized) struct SubjectRuleTests {
    static let push = "essential.service.notifications.push"
    static let sendPath = "/v1/proxy/huawei-push/v1/10086/messages:send"
    static let body = #"{"message":{"token":["T1"]}}"#

    func share(_ broker: Broker, subject: String) async throws -> UpstreamResponse {
        try await broker.call("POST", Self.sendPath, headers: [("X-Share-Subject", subject), ("Content-Type", "application/json")],
                              body: Self.body)
    }

    func code(_ response: UpstreamResponse) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["code"] as? String
    }

    @Test func subjectIDsOutsideTheRuleAreRefusedOnEveryChannelBeforeAnythingIsLogged() async throws {
        try await withBroker { broker in
            let before = try await broker.records().count
            let long = String(repeating: "u", count: 129)
            let huge = String(repeating: "x", count: 15_000)
            for bad in [long, huge, "13800138000 安 Li", "ann@example.com", "u 1", "u/1", "u%201"] {
                // Header (path form).
                let header = try await share(broker, subject: bad)
                // A header over limits.max_header_bytes never reaches the rule: the HTTP layer refuses the head.
                if bad.utf8.count > 4096 {
                    #expect([400, 431].contains(header.status), "\(header.status)")
                } else {
                    #expect(header.status == 400 && code(header) == "invalid_subject", "\(bad.prefix(20)): \(header.status) \(String(decoding: header.body, as: UTF8.self))")
                }
                // SDK decision.
                let sdk = try await broker.call("POST", "/v1/decisions", headers: [("Content-Type", "application/json")], body: """
                    {"provider":"huawei-push","operation":"send","subject":\(String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)),\
                    "fields":{"message":{"token":["T1"]}}}
                    """)
                #expect(sdk.status == 400 && code(sdk) == "invalid_subject", "\(bad.prefix(20)): \(sdk.status) \(String(decoding: sdk.body, as: UTF8.self))")
            }
            // The subject routes follow the same rule (129 bytes was accepted before: the old limit was 256).
            let route = try await broker.call("PUT", "/v1/subjects/\(long)", token: Broker.grantsToken,
                                              headers: [("Content-Type", "application/json")], body: "{}")
            #expect(route.status == 400 && code(route) == "invalid_subject")
            // The proxy user name's subject= (forward proxy): the same answer.
            let proxied = try await HardeningTests.raw(broker, """
                POST http://push-api.cloud.huawei.com/v1/10086/messages:send HTTP/1.1\r
                Host: push-api.cloud.huawei.com\r
                Proxy-Authorization: Basic \(Data("test-app;subject=a b:\(Broker.shareToken)".utf8).base64EncodedString())\r
                Content-Type: application/json\r
                Content-Length: \(Self.body.utf8.count)\r
                Connection: close\r
                """, body: Self.body)
            #expect(HardeningTests.status(proxied.reply) == 400 && proxied.reply.contains("invalid_subject"), "\(proxied.reply.prefix(300))")
            #expect(try await broker.records().count == before, "nothing logged for an invalid subject id")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    @Test func aShareAboutAnUnknownSubjectIsRefusedAndLoggedOnlyByFingerprint() async throws {
        try await withBroker { broker in
            let stranger = "13800138000"
            let refused = try await share(broker, subject: stranger)
            #expect(refused.status == 403 && code(refused) == "subject_unknown", "\(String(decoding: refused.body, as: UTF8.self))")
            let records = try await broker.records()
            let logged = try #require(records.last)
            #expect(logged.subject?.hasPrefix("~") == true, "\(logged.subject ?? "nil")")
            for file in [broker.databasePath, broker.databasePath + "-wal"] {
                let raw = (try? String(contentsOfFile: file, encoding: .isoLatin1)) ?? ""
                #expect(!raw.contains(stranger), "the raw id is nowhere in \(file)")
            }
            #expect(broker.simulator("huawei-push").requests().isEmpty)
            // Compliance finds the attempt by the id it was made with.
            let found = try await broker.call("GET", "/v1/shares?unknown_subject=\(stranger)", token: Broker.complianceToken)
            let shares = found.json["shares"] as? [[String: Any]] ?? []
            #expect(shares.count == 1 && (shares.first?["share"] as? [String: Any])?["share_id"] as? String == refused.headerValue("X-Share-Id"),
                    "\(found.text)")
            let both = try await broker.call("GET", "/v1/shares?unknown_subject=\(stranger)&subject=u1", token: Broker.complianceToken)
            #expect(both.status == 400)
            // Once known (a grant records them), the same id shares.
            try await broker.grant(stranger, provider: "huawei-push", purpose: Self.push)
            #expect(try await share(broker, subject: stranger).status == 200)
        }
    }

    @Test func minorStatusIsSticky() async throws {
        try await withBroker { broker in
            try await broker.putSubject("u-5005", #"{"birth_date":"2015-06-01"}"#)
            let grant = try await broker.call("POST", "/v1/subjects/u-5005/grants", token: Broker.grantsToken,
                                              headers: [("Content-Type", "application/json")], body: """
                {"provider":"huawei-push","purpose":"\(Self.push)","separate_consent":false,"cross_border_consent":false,\
                "policy_version":"1","evidence":"e"}
                """)
            #expect(grant.status == 403 && code(grant) == "minor_subject", "no grant is recorded for a known minor")
            // An update that leaves the birth date out does not make an adult.
            let cleared = try await broker.call("PUT", "/v1/subjects/u-5005", token: Broker.grantsToken,
                                                headers: [("Content-Type", "application/json")], body: "{}")
            #expect(cleared.status == 403 && code(cleared) == "minor_subject")
            let flagOnly = try await broker.call("PUT", "/v1/subjects/u-5005", token: Broker.grantsToken,
                                                 headers: [("Content-Type", "application/json")], body: #"{"minor":false}"#)
            #expect(flagOnly.status == 403 && code(flagOnly) == "minor_subject", "evidence is required")
            #expect(try await share(broker, subject: "u-5005").status == 403)
            // An explicit statement with evidence clears it; consent is then recorded anew.
            let stated = try await broker.call("PUT", "/v1/subjects/u-5005", token: Broker.grantsToken,
                                               headers: [("Content-Type", "application/json")],
                                               body: #"{"minor":false,"evidence":"ticket 4711: age checked against ID"}"#)
            #expect(stated.status == 200, "\(String(decoding: stated.body, as: UTF8.self))")
            try await broker.grant("u-5005", provider: "huawei-push", purpose: Self.push)
            #expect(try await share(broker, subject: "u-5005").status == 200)
        }
    }
}

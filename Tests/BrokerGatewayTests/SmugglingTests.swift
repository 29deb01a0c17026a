import BrokerCurl
import Foundation
import Testing

/// Attempts to get data past the checks (from a security review), through the real server.
@Suite(.serialized) struct SmugglingTests {
    static let push = "essential.service.notifications.push"
    static let path = "/v1/proxy/huawei-push/v1/10086/messages:send"
    static let json = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]

    @Test func anObjectWhereAScalarIsDeclaredIsUndeclared() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let response = try await broker.call("POST", Self.path, headers: Self.json, body: """
                {"validate_only":{"name":"Ann Li","phone":"13800138000"},"message":{"token":["T1"],"topic":{"id":"x"}}}
                """)
            #expect(response.status == 403)
            #expect(response.json["code"] as? String == "undeclared_field")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    @Test func nestedContentIsCheckedNotSwallowedByAWildcard() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let response = try await broker.call("POST", Self.path, headers: Self.json, body: """
                {"message":{"token":["T1"],"android":{"ttl":"60s","notification":{"title":"Hi Ann","big_body":"Your test result is ready","click_action":{"type":3}}}}}
                """)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.headerValue("X-Share-Decision") == "redacted")
            let request = try #require(broker.simulator("huawei-push").requests().last)
            #expect(!request.contains("test result") && !request.contains("Ann"))
            #expect(request.contains("T1") && request.contains("60s"))
        }
    }

    @Test func keysChosenByTheCallerAreNeverWrittenToTheLog() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            _ = try await broker.call("POST", Self.path, headers: Self.json,
                                      body: #"{"message":{"token":["T1"],"android":{"notification":{"13800138000":"x"}}}}"#)
            _ = try await broker.call("POST", Self.path, headers: Self.json,
                                      body: #"{"message":{"token":["T1"]},"13912345678":1}"#)
            let records = try await broker.records()
            // Both blocked: the first key is a phone number under a non-personal wildcard (the detector), the second undeclared.
            #expect(records.count >= 2)
            #expect(records.filter { $0.body.contains("personal_data_in_non_personal_field") }.count == 1)
            #expect(!records.contains { $0.body.contains("13800138000") || $0.body.contains("13912345678") })
            #expect(records.contains { $0.body.contains("message.android.notification.<k:") })
            #expect(records.contains { $0.body.contains("<undeclared:") })
        }
    }

    @Test func aSelectingHeaderSentTwiceIsRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "tencent-faceid", purpose: "essential.legal_obligation", separate: true)
            let response = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: [
                ("Content-Type", "application/json"), ("X-Share-Subject", "u1"),
                ("X-TC-Action", "GetDetectInfoEnhanced"), ("X-TC-Action", "IdCardVerification"),
            ], body: #"{"IdCard":"11010519491231002X","Name":"张三"}"#)
            #expect(response.status == 400, "\(response.text)")
            #expect(response.json["code"] as? String == "duplicate_header")
            #expect(broker.simulator("tencent-faceid").requests().isEmpty)
        }
    }

    @Test func dotSegmentsInPathParametersMatchNothing() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            for bad in ["/v1/..;/messages:send", "/v1/%2e%2e/messages:send", "/v1/a%2Fb/messages:send"] {
                let response = try await broker.call("POST", "/v1/proxy/huawei-push" + bad, headers: Self.json,
                                                     body: #"{"message":{"token":["T1"]}}"#)
                #expect(response.json["code"] as? String == "unknown_operation", "\(bad): \(response.text)")
            }
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }
}

import BrokerCurl
import Foundation
import Testing

/// Issue 23, item 2, through the real server: personal data sent under a non-personal label. The
/// adapters now say what such fields are (Tencent's `Encryption`, Huawei's click-action URL, topics
/// without `%`-text), and the detector refuses personal data in what stays non-personal; the log
/// names the reason and never the value.
@Suite(.serialized) struct NonPersonalLabelShareTests {
    static let push = "essential.service.notifications.push"
    static let huawei = "/v1/proxy/huawei-push/v1/10086/messages:send"
    static let idNumber = "110101199003074514"
    static let phone = "13812345678"

    /// No value the test sent, in any form, is in the log.
    func expectNoValue(_ broker: Broker, _ values: [String]) async throws {
        let records = try await broker.records()
        for value in values {
            #expect(!records.contains { $0.body.contains(value) }, "\(value) is in the log")
        }
    }

    @Test func tencentEncryptionCarryingANameAndIDNumberNeedsConsent() async throws {
        try await withBroker { broker in
            // Known to the broker, with a push grant, and no grant for real-name verification.
            try await broker.grant("u-2002", provider: "huawei-push", purpose: Self.push)
            let iv = "TmFtZT1Bbm4gTGk7SWRDYXJkPTExMDEwMTE5OTAwMzA3NDUxNA=="
            let response = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: [
                ("Content-Type", "application/json"), ("X-Share-Subject", "u-2002"), ("X-TC-Action", "IdCardVerification"),
            ], body: #"{"Encryption":{"Iv":"\#(iv)"}}"#)
            #expect(response.status == 403, "\(response.text)")
            #expect(response.headerValue("X-Share-Decision") != "allowed")
            #expect(response.json["code"] as? String == "consent_missing", "\(response.text)")
            #expect(broker.simulator("tencent-faceid").requests().isEmpty)
            let record = try #require(try await broker.records().last { $0.provider == "tencent-faceid" })
            #expect(record.body.contains("user.government_id.national_identification_number"), "\(record.body)")
            try await expectNoValue(broker, [iv, Self.idNumber])
        }
    }

    @Test func aTopicCarryingANameAndIDNumberIsRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]
            // The review's topic: `%`-text is no longer a topic.
            let encoded = try await broker.call("POST", Self.huawei, headers: headers,
                                                body: #"{"message":{"topic":"Ann%20Li%20ID%20\#(Self.idNumber)"}}"#)
            #expect(encoded.status == 403 && encoded.json["code"] as? String == "undeclared_value", "\(encoded.text)")
            // Within the topic's pattern, the detector finds the ID number.
            let plain = try await broker.call("POST", Self.huawei, headers: headers,
                                              body: #"{"message":{"topic":"AnnLi_ID_\#(Self.idNumber)"}}"#)
            #expect(plain.status == 403, "\(plain.text)")
            #expect(plain.json["code"] as? String == "personal_data_in_non_personal_field", "\(plain.text)")
            let detail = plain.json["detail"] as? String ?? ""
            #expect(detail.contains("prc_resident_id") && !detail.contains(Self.idNumber), "\(plain.text)")
            #expect(broker.simulator("huawei-push").requests().isEmpty)
            let record = try #require(try await broker.records().last { $0.provider == "huawei-push" && $0.kind == "share" })
            #expect(record.body.contains("personal_data_in_non_personal_field"), "\(record.body)")
            #expect(record.body.contains(#""detector":"prc_resident_id""#), "the log names the detector: \(record.body)")
            try await expectNoValue(broker, [Self.idNumber, "AnnLi"])
        }
    }

    @Test func aClickActionCarryingAnIDAndAPhoneNumberIsStrippedOrRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]
            let url = "https://m.example.com/order?id=\(Self.idNumber)&tel=\(Self.phone)"
            // The URL is the caller's text (content): without a grant for it, it is stripped.
            let stripped = try await broker.call("POST", Self.huawei, headers: headers, body: """
                {"message":{"token":["T1"],"android":{"notification":{"click_action":{"type":2,"url":"\(url)"}}}}}
                """)
            #expect(stripped.status == 200, "\(stripped.text)")
            #expect(stripped.headerValue("X-Share-Decision") == "redacted")
            let sent = try #require(broker.simulator("huawei-push").requests().last)
            #expect(!sent.contains(Self.idNumber) && !sent.contains(Self.phone) && sent.contains("T1"))
            // A code-shaped field (the click action's name, a notification tag) is checked by the detector.
            for notification in [#""click_action":{"type":1,"action":"open_\#(Self.phone)"}"#, #""tag":"\#(Self.phone)""#] {
                let refused = try await broker.call("POST", Self.huawei, headers: headers, body: """
                    {"message":{"token":["T1"],"android":{"notification":{\(notification)}}}}
                    """)
                #expect(refused.status == 403, "\(refused.text)")
                #expect(refused.json["code"] as? String == "personal_data_in_non_personal_field", "\(refused.text)")
                #expect((refused.json["detail"] as? String ?? "").contains("mainland_mobile_number"), "\(refused.text)")
            }
            #expect(broker.simulator("huawei-push").requests().count == 1)
            let records = try await broker.records()
            #expect(records.filter { $0.body.contains("personal_data_in_non_personal_field") }.count == 2)
            try await expectNoValue(broker, [Self.idNumber, Self.phone, "open_"])
        }
    }
}

import BrokerCurl
import BrokerLogStore
import BrokerService
import Foundation
import Testing

/// Issue 23, item 4: a share record is bounded whatever the body. Repeated fields fold into one
/// entry with a count (`message.token[*]` ×1000, undeclared fields ×1990), listing the distinct
/// values by 8-character short prints; `fingerprint_of` still finds every value.
@Suite(.serialized) struct LogBoundTests {
    static let push = "essential.service.notifications.push"
    static let sendPath = "/v1/proxy/huawei-push/v1/10086/messages:send"

    /// The stored record of `shareID` (its canonical body, exactly as hashed).
    func record(_ broker: Broker, _ shareID: String) async throws -> String {
        let records = try await broker.records()
        return try #require(records.first { $0.kind == "share" && $0.shareID == shareID }).body
    }

    func fields(_ body: String) throws -> [[String: Any]] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        return object["fields"] as? [[String: Any]] ?? []
    }

    func shareIDs(_ response: UpstreamResponse) -> [String] {
        (response.json["shares"] as? [[String: Any]] ?? []).compactMap { ($0["share"] as? [String: Any])?["share_id"] as? String }
    }

    @Test func athousandPushTokensMakeARecordOfAtMostTwiceTheRequest() async throws {
        try await withBroker { broker in
            try await broker.grant("lb-1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            // 1,000 distinct four-character tokens: the review's 6.9 KB request.
            let tokens = (0..<1000).map { "t" + String($0 + 1000).suffix(3) }
            #expect(Set(tokens).count == 1000)
            let body = #"{"message":{"token":["# + tokens.map { "\"\($0)\"" }.joined(separator: ",") + "]}}"
            let response = try await broker.call("POST", Self.sendPath,
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "lb-1")],
                                                 body: body)
            #expect(response.status == 200)
            let shareID = try #require(response.headerValue("X-Share-Id"))

            let stored = try await record(broker, shareID)
            #expect(stored.utf8.count <= 2 * body.utf8.count, "record \(stored.utf8.count) B for a \(body.utf8.count) B request")
            let logged = try fields(stored)
            let tokenEntries = logged.filter { ($0["category"] as? String) == "user.device.push_token" }
            #expect(tokenEntries.count == 1)
            let folded = try #require(tokenEntries.first)
            #expect(folded["path"] as? String == "message.token[*]")
            #expect(folded["count"] as? Int == 1000)
            #expect(folded["fingerprint"] == nil)
            let prints = try #require(folded["fingerprints"] as? [String])
            #expect(prints.count == 1000 && prints == prints.sorted() && prints.allSatisfy { $0.utf8.count == 8 })
            for token in tokens { #expect(!stored.contains("\"\(token)\""), "a token reached the log") }

            // The compliance API shows the same record, and fingerprint_of finds the 500th token in it.
            let one = try await broker.call("GET", "/v1/shares/\(shareID)", token: Broker.complianceToken)
            #expect(one.status == 200 && one.text.contains(stored))
            let found = try await broker.call("GET", "/v1/shares?fingerprint_of=\(tokens[499])&category=user.device.push_token",
                                              token: Broker.complianceToken)
            #expect(shareIDs(found) == [shareID])
            let never = try await broker.call("GET", "/v1/shares?fingerprint_of=t999x&category=user.device.push_token",
                                              token: Broker.complianceToken)
            #expect(never.status == 200 && shareIDs(never).isEmpty)
            // The CSV export counts occurrences, not entries.
            let csv = try await broker.call("GET", "/v1/shares?subject=lb-1", token: Broker.complianceToken,
                                            headers: [("Accept", "text/csv")])
            let columns = csvFirstRow(csv.text)
            #expect(columns?["fields_sent"] == "1001", "\(csv.text)")   // 1,000 tokens and the app id
            // The subject's own history still names the category sent.
            let history = try await broker.call("GET", "/v1/subjects/lb-1/shares", token: Broker.grantsToken)
            let categories = (history.json["shares"] as? [[String: Any]])?.first?["categories_sent"] as? [String]
            #expect(categories == ["user.device.push_token"], "\(history.text)")

            let verify = try await broker.call("GET", "/v1/log/verify", token: Broker.complianceToken)
            #expect(verify.json["intact"] as? Bool == true, "\(verify.text)")
        }
    }

    @Test func undeclaredFieldsFoldIntoOneEntryUnderEightKiB() async throws {
        try await withBroker { broker in
            try await broker.grant("lb-2", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
            let undeclared = (0..<1990).map { #""u\#($0)":"v\#($0)""# }.joined(separator: ",")
            let body = #"{"message":{"token":["tok-1"]},"# + undeclared + "}"
            let response = try await broker.call("POST", Self.sendPath,
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "lb-2")],
                                                 body: body)
            #expect(response.status == 403 && response.json["code"] as? String == "undeclared_field", "\(response.text)")
            let shareID = try #require(response.json["share_id"] as? String)

            let stored = try await record(broker, shareID)
            #expect(stored.utf8.count <= 8 * 1024, "record \(stored.utf8.count) B for a \(body.utf8.count) B request")
            let logged = try fields(stored)
            let folded = try #require(logged.first { $0["path"] as? String == "<undeclared>" })
            #expect(folded["count"] as? Int == 1990)
            #expect(folded["action"] as? String == "blocked" && folded["reason"] as? String == "undeclared_field")
            #expect(folded["fingerprints"] == nil && folded["fingerprint"] == nil)
            #expect(!stored.contains("\"u1\"") && !stored.contains("v1989"))
            // The token, alone under its declaration, is logged with its record print (22 characters).
            let token = try #require(logged.first { $0["path"] as? String == "message.token[0]" })
            #expect((token["fingerprint"] as? String)?.utf8.count == 22 && token["count"] == nil)

            let verify = try await broker.call("GET", "/v1/log/verify", token: Broker.complianceToken)
            #expect(verify.json["intact"] as? Bool == true, "\(verify.text)")
        }
    }
}

/// The first data row of a CSV export, by column name (values here hold no comma or quote).
private func csvFirstRow(_ text: String) -> [String: String]? {
    let lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
    guard lines.count >= 2 else { return nil }
    let names = lines[0].components(separatedBy: ","), values = lines[1].components(separatedBy: ",")
    guard names.count == values.count else { return nil }
    return Dictionary(uniqueKeysWithValues: zip(names, values))
}

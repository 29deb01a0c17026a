import BrokerCurl
import BrokerService
import Foundation
import Testing

/// Issue 4: the compliance API over real shares in a real SQLite log.
@Suite(.serialized) struct ComplianceTests {
    static let push = "essential.service.notifications.push"
    static let sentValues = ["TOKEN-ONE-1234", "TOKEN-TWO-5678", "Hello Ann", "CODE-SECRET-99"]

    /// Three shares for c1 (two allowed pushes, one redacted), one blocked login for c2.
    func seed(_ broker: Broker) async throws -> [String: String] {
        try await broker.grant("c1", provider: "huawei-push", purpose: Self.push, categories: ["user.device.push_token"])
        var ids: [String: String] = [:]
        for (name, body) in [("one", #"{"message":{"token":["TOKEN-ONE-1234"]}}"#),
                             ("two", #"{"message":{"token":["TOKEN-TWO-5678"]}}"#),
                             ("redacted", #"{"message":{"token":["TOKEN-ONE-1234"],"notification":{"title":"Hello Ann"}}}"#)] {
            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                 headers: [("Content-Type", "application/json"), ("X-Share-Subject", "c1")], body: body)
            #expect(response.status == 200)
            ids[name] = response.headerValue("X-Share-Id")
        }
        try await broker.putSubject("c2")   // known, without a grant: blocked for consent
        let blocked = try await broker.call("GET", "/v1/proxy/wechat-login/sns/oauth2/access_token?code=CODE-SECRET-99&grant_type=authorization_code",
                                            headers: [("X-Share-Subject", "c2")])
        #expect(blocked.status == 403)
        ids["blocked"] = blocked.json["share_id"] as? String
        await broker.outcomes.drained()
        return ids
    }

    func query(_ broker: Broker, _ query: String, accept: String? = nil) async throws -> UpstreamResponse {
        try await broker.call("GET", "/v1/shares" + query, token: Broker.complianceToken,
                              headers: accept.map { [("Accept", $0)] } ?? [])
    }

    func shareIDs(_ response: UpstreamResponse) -> [String] {
        (response.json["shares"] as? [[String: Any]] ?? []).compactMap { ($0["share"] as? [String: Any])?["share_id"] as? String }
    }

    @Test func everyFilterSelectsWhatItSays() async throws {
        try await withBroker { broker in
            let ids = try await seed(broker)
            let all = try await query(broker, "")
            #expect(all.status == 200)
            #expect(Set(shareIDs(all)) == Set(ids.values))
            #expect(Set(shareIDs(try await query(broker, "?subject=c1"))) == [ids["one"]!, ids["two"]!, ids["redacted"]!])
            #expect(shareIDs(try await query(broker, "?provider=wechat-login")) == [ids["blocked"]!])
            #expect(shareIDs(try await query(broker, "?purpose=essential.service.authentication")) == [ids["blocked"]!])
            #expect(shareIDs(try await query(broker, "?decision=redacted")) == [ids["redacted"]!])
            #expect(shareIDs(try await query(broker, "?decision=blocked")) == [ids["blocked"]!])
            #expect(shareIDs(try await query(broker, "?caller=test-app")).count == 4)
            #expect(shareIDs(try await query(broker, "?caller=someone-else")).isEmpty)
            // A category covers the categories under it.
            #expect(shareIDs(try await query(broker, "?category=user.device")).count == 3)
            #expect(shareIDs(try await query(broker, "?category=user.content.notification")) == [ids["redacted"]!])
            #expect(shareIDs(try await query(broker, "?category=user.dev")).isEmpty, "a prefix of a name is not a parent")
            let future = "2099-01-01T00:00:00Z"
            #expect(shareIDs(try await query(broker, "?since=\(future)")).isEmpty)
            #expect(shareIDs(try await query(broker, "?until=\(future)&subject=c2")) == [ids["blocked"]!])
            #expect(shareIDs(try await query(broker, "?until=2000-01-01T00:00:00Z")).isEmpty)
            // A time window walks the log in order too, page by page.
            var windowed: [String] = []
            var next: String?
            repeat {
                let page = try await query(broker, "?provider=huawei-push&since=2000-01-01T00:00:00Z&until=\(future)&limit=1"
                                           + (next.map { "&cursor=\($0)" } ?? ""))
                windowed += shareIDs(page)
                next = page.json["next_cursor"] as? String
            } while next != nil && windowed.count < 10
            #expect(windowed == [ids["one"]!, ids["two"]!, ids["redacted"]!])

            // fingerprint_of finds the shares that carried a value, without the log holding it.
            let carried = try await query(broker, "?fingerprint_of=TOKEN-ONE-1234&category=user.device.push_token")
            #expect(Set(shareIDs(carried)) == [ids["one"]!, ids["redacted"]!])
            #expect(shareIDs(try await query(broker, "?fingerprint_of=TOKEN-ONE-1234&category=user.content.notification")).isEmpty)
            let noCategory = try await query(broker, "?fingerprint_of=TOKEN-ONE-1234")
            #expect(noCategory.status == 400 && noCategory.json["code"] as? String == "category_required")

            // One share, with its outcome and chain position.
            let one = try await broker.call("GET", "/v1/shares/\(ids["one"]!)", token: Broker.complianceToken)
            #expect((one.json["outcome"] as? [String: Any])?["result"] as? String == "ok")
            #expect((one.json["chain"] as? [String: Any])?["seq"] as? Int != nil)
            let missing = try await broker.call("GET", "/v1/shares/nope", token: Broker.complianceToken)
            #expect(missing.status == 404 && missing.json["code"] as? String == "share_not_found")

            // Bad input and the wrong roles.
            for bad in ["?decision=maybe", "?since=yesterday", "?limit=0", "?limit=5000", "?colour=red", "?subject=a&subject=b"] {
                let response = try await query(broker, bad)
                #expect(response.status == 400 && response.json["code"] as? String == "invalid_query", "\(bad)")
            }
            #expect(try await query(broker, "?cursor=!!").json["code"] as? String == "invalid_cursor")
            for token in [Broker.shareToken, Broker.grantsToken] {
                let refused = try await broker.call("GET", "/v1/shares", token: token)
                #expect(refused.status == 403)
            }
            #expect(try await broker.call("GET", "/v1/shares", token: nil).status == 401)
            #expect(try await broker.call("GET", "/v1/shares/\(ids["one"]!)", token: Broker.shareToken).status == 403)

            // No answer holds a shared value.
            for response in [all, carried, one] {
                for value in Self.sentValues { #expect(!response.text.contains(value), "\(value) leaked") }
            }
        }
    }

    @Test func pagesAreStableWhileSharesArrive() async throws {
        try await withBroker { broker in
            try await broker.grant("p1", provider: "huawei-push", purpose: Self.push)
            func push(_ n: Int) async throws {
                _ = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                          headers: [("Content-Type", "application/json"), ("X-Share-Subject", "p1")],
                                          body: #"{"message":{"token":["PAGE-\#(n)"]}}"#)
            }
            for n in 0..<25 { try await push(n) }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let response = try await query(broker, "?subject=p1&limit=7" + (cursor.map { "&cursor=\($0)" } ?? ""))
                seen += shareIDs(response)
                cursor = response.json["next_cursor"] as? String
                pages += 1
                if pages <= 3 { try await push(100 + pages) }   // appends while paging
            } while cursor != nil && pages < 20
            #expect(seen.count == 28, "25 before and 3 during, each once")
            #expect(Set(seen).count == seen.count)

            // The export streams every match, as NDJSON and as CSV.
            let ndjson = try await query(broker, "?subject=p1", accept: "application/x-ndjson")
            #expect(ndjson.headerValue("Content-Type") == "application/x-ndjson")
            let lines = ndjson.text.split(separator: "\n")
            #expect(lines.count == 28)
            #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
            let csv = try await query(broker, "?subject=p1", accept: "text/csv")
            let rows = csv.text.split(separator: "\r\n")
            #expect(rows.first?.hasPrefix("share_id,time,stream,seq") == true)
            #expect(rows.count == 29)
            #expect(rows.dropFirst().allSatisfy { $0.contains(",p1,allowed,") })
            #expect(!ndjson.text.contains("PAGE-") && !csv.text.contains("PAGE-"))
        }
    }

    @Test func checkpointsArePublishedAndVerifyWithThePublicKey() async throws {
        try await withBroker { broker in
            _ = try await seed(broker)
            let key = try await broker.call("GET", "/v1/log/public-key", token: nil)
            #expect(key.status == 200 && key.json["algorithm"] as? String == "Ed25519")
            let publicKey = try #require(CheckpointDocument.publicKey(hex: key.json["public_key"] as? String ?? ""))
            let response = try await broker.call("GET", "/v1/log/checkpoints", token: Broker.complianceToken)
            let document = try JSONDecoder().decode(CheckpointDocument.self, from: Data(response.body))
            #expect(!document.checkpoints.isEmpty)
            #expect(document.checkpoints.allSatisfy { $0.isSigned(by: publicKey) && $0.size % 5 == 0 })
            let records = try await broker.records()
            for checkpoint in document.checkpoints {
                #expect(records.first { $0.seq == checkpoint.size }?.hash == checkpoint.head)
            }
            let verify = try await broker.call("GET", "/v1/log/verify", token: Broker.complianceToken)
            #expect(verify.json["intact"] as? Bool == true && verify.json["signatures_checked"] as? Bool == true)
            #expect(try await broker.call("GET", "/v1/log/checkpoints", token: Broker.shareToken).status == 403)
            #expect(try await broker.call("GET", "/v1/log/verify", token: Broker.grantsToken).status == 403)
        }
    }

    @Test func theSharingListComesFromTrafficAndShowsDrift() async throws {
        try await withBroker { broker in
            _ = try await seed(broker)
            // A share logged under an older contract (or a shadow run): precise location to the push provider.
            let drifted = ShareEntry(shareID: "drift-1", time: Date(), node: "node-1", caller: "test-app", channel: .proxy,
                                     provider: "huawei-push", operation: "send", purpose: Self.push, subject: "c3",
                                     decision: .allowed, code: nil, reasons: [],
                                     fields: [LoggedField(location: .body, path: "message.data.loc", category: "user.location.precise",
                                                          action: .sent, reason: nil, fingerprint: "00")],
                                     grantIDs: [], contractVersion: "2023-01-01", contractHash: nil, adapterHash: nil)
            _ = try await broker.store.appendIntent(drifted)
            let report = try await broker.call("GET", "/v1/reports/sharing-list", token: Broker.complianceToken)
            #expect(report.status == 200)
            let rows = report.json["rows"] as? [[String: Any]] ?? []
            func row(_ provider: String, _ category: String) -> [String: Any]? {
                rows.first { $0["provider"] as? String == provider && $0["category"] as? String == category }
            }
            let token = try #require(row("huawei-push", "user.device.push_token"))
            #expect(token["sent"] as? Int == 3 && token["subjects"] as? Int == 1 && token["allowed_by_contract"] as? Bool == true)
            let text = try #require(row("huawei-push", "user.content.notification"))
            #expect(text["sent"] as? Int == 0 && text["stripped"] as? Int == 1 && text["drift"] as? Bool == false)
            let code = try #require(row("wechat-login", "user.authorization.credentials"))
            #expect(code["blocked"] as? Int == 1 && code["sent"] as? Int == 0)
            let location = try #require(row("huawei-push", "user.location.precise"))
            #expect(location["sent"] as? Int == 1 && location["allowed_by_contract"] as? Bool == false && location["drift"] as? Bool == true)
            #expect(report.json["drift"] as? Int == 1)
            #expect(!rows.contains { $0["category"] as? String == "system.operations" }, "only personal categories")

            let csv = try await broker.call("GET", "/v1/reports/sharing-list", token: Broker.complianceToken,
                                            headers: [("Accept", "text/csv")])
            #expect(csv.text.hasPrefix("provider,purpose,category,sent"))
            #expect(csv.text.contains("huawei-push,essential.service.notifications.push,user.location.precise,1,0,0,1,"))
            let empty = try await broker.call("GET", "/v1/reports/sharing-list?since=2099-01-01T00:00:00Z", token: Broker.complianceToken)
            #expect((empty.json["rows"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await broker.call("GET", "/v1/reports/sharing-list", token: Broker.grantsToken).status == 403)
        }
    }
}

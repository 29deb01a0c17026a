import BrokerCurl
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

/// The promise, rule 3 (docs/concepts.md): no share without a durable log record. With the store unwritable,
/// every provider's share is refused with 503 `log_unavailable` and nothing leaves.
@Suite(.serialized) struct FailClosedTests {
    struct Case: Sendable {
        var provider: String
        var purpose: String
        var method: String
        var path: String
        var headers: [(String, String)]
        var body: String
    }

    static let cases: [Case] = [
        Case(provider: "huawei-push", purpose: "essential.service.notifications.push", method: "POST",
             path: "/v1/10086/messages:send", headers: [("Content-Type", "application/json")],
             body: #"{"message":{"token":["AAA"]}}"#),
        Case(provider: "oppo-push", purpose: "essential.service.notifications.push", method: "POST",
             path: "/server/v1/message/notification/unicast", headers: [("Content-Type", "application/x-www-form-urlencoded")],
             body: "message=%7B%22target_type%22%3A2%2C%22target_value%22%3A%22R%22%7D"),
        Case(provider: "amap-location", purpose: "functional.service", method: "GET",
             path: "/v3/ip?ip=114.247.50.2", headers: [], body: ""),
        Case(provider: "tencent-faceid", purpose: "essential.legal_obligation", method: "POST", path: "/",
             headers: [("Content-Type", "application/json"), ("X-TC-Action", "IdCardVerification")],
             body: #"{"IdCard":"11010519491231002X","Name":"张三"}"#),
        Case(provider: "wechat-login", purpose: "essential.service.authentication", method: "GET",
             path: "/sns/userinfo?access_token=T&openid=O", headers: [], body: ""),
    ]

    @Test func anUnwritableStoreSendsNothingAndAnswers503() async throws {
        try await withBroker { broker in
            for item in Self.cases {
                try await broker.grant("u1", provider: item.provider, purpose: item.purpose, separate: true)
            }
            // A real SQLite failure on the writer: every write now fails with SQLITE_READONLY.
            try await broker.store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = ON") }
            for item in Self.cases {
                let response = try await broker.call(item.method, "/v1/proxy/\(item.provider)\(item.path)",
                                                     headers: item.headers + [("X-Share-Subject", "u1")], body: item.body)
                #expect(response.status == 503, "\(item.provider): \(response.text)")
                #expect(response.json["code"] as? String == "log_unavailable")
                #expect(broker.simulator(item.provider).requests().isEmpty, "\(item.provider) received a request")
                #expect(broker.simulator(item.provider).tokenRequests().isEmpty)
            }
            try await broker.store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = OFF") }
            let records = try await broker.records()
            #expect(records.isEmpty, "nothing was logged, and nothing was shared")
        }
    }
}

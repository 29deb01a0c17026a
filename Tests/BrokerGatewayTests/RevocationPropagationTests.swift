import BrokerCurl
import BrokerTesting
import GRDB
import Foundation
import Testing

/// docs/share-log.md (propagation) and issue 5: the worker carries a revoke to the provider's deletion
/// call, with the stored (encrypted) keys, retries with backoff, records every
/// attempt, and appends the outcome to the share log.
@Suite(.serialized) struct RevocationPropagationTests {
    static let push = "essential.service.notifications.push"

    func send(_ broker: Broker, subject: String, app: String, tokens: [String]) async throws -> String {
        let list = tokens.map { "\"\($0)\"" }.joined(separator: ",")
        let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/\(app)/messages:send",
                                             headers: [("Content-Type", "application/json"), ("X-Share-Subject", subject)],
                                             body: #"{"message":{"token":[\#(list)],"notification":{"title":"Hi"}}}"#)
        #expect(response.status == 200, "\(response.text)")
        return response.headerValue("X-Share-Id") ?? ""
    }

    /// Polls `GET /v1/revocations/{id}` until the provider's job reaches `status` (or fails the test after `timeout`).
    func waitFor(_ broker: Broker, _ id: String, provider: String, status: String,
                 timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            let response = try await broker.call("GET", "/v1/revocations/\(id)", token: Broker.grantsToken)
            last = (response.json["providers"] as? [[String: Any]] ?? []).first { $0["provider"] as? String == provider } ?? [:]
            if last["status"] as? String == status { return last }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("revocation \(id) for \(provider) did not reach \(status): \(last)")
        return last
    }

    /// Issue 10: a revoke covering many tokens does not fire every deletion call at once.
    @Test func deletionCallsArePaced() async throws {
        var settings = testPropagation
        settings.callsPerSecond = 10
        try await withBroker(propagation: settings) { broker in
            let grant = try await broker.grant("many", provider: "huawei-push", purpose: Self.push)
            _ = try await send(broker, subject: "many", app: "10086", tokens: (0..<25).map { "TOKEN-\($0)" })
            let revoke = try await broker.call("DELETE", "/v1/subjects/many/grants/\(grant)", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String)
            _ = try await waitFor(broker, id, provider: "huawei-push", status: "acknowledged", timeout: .seconds(15))
            let deletions = broker.simulator("huawei-push").requests().filter { $0.path.hasSuffix("/token:delete") }
            #expect(deletions.count == 25)
            let times = deletions.map(\.time).sorted()
            if let first = times.first, let last = times.last {
                // 10 + 10 + 5 calls: two one-second pauses.
                #expect(last.timeIntervalSince(first) >= 1.9, "25 calls at 10/s took \(last.timeIntervalSince(first)) s")
            }
        }
    }

    @Test func revokeDeletesEveryTokenAtTheProviderOnce() async throws {
        try await withBroker { broker in
            let grant = try await broker.grant("p1", provider: "huawei-push", purpose: Self.push)
            let first = try await send(broker, subject: "p1", app: "10086", tokens: ["TOKEN-A", "TOKEN-B"])
            let second = try await send(broker, subject: "p1", app: "10086", tokens: ["TOKEN-B", "TOKEN-C"])
            let other = try await send(broker, subject: "p1", app: "20001", tokens: ["TOKEN-A"])
            let again = try await send(broker, subject: "p1", app: "10086", tokens: ["TOKEN-A", "TOKEN-B"])
            #expect(try await broker.store.storedRevocationKeyCount() == 3,
                    "each key set is stored once, sealed: the fourth share sent the first one's")

            let revoke = try await broker.call("DELETE", "/v1/subjects/p1/grants/\(grant)", token: Broker.grantsToken)
            #expect(revoke.status == 202)
            #expect(Set(revoke.json["share_ids"] as? [String] ?? []) == [first, second, other, again])
            let id = try #require(revoke.json["revocation_id"] as? String)
            let job = try await waitFor(broker, id, provider: "huawei-push", status: "acknowledged")
            #expect(job["attempts"] as? Int == 1)

            let simulator = broker.simulator("huawei-push")
            let deleted = Set(simulator.tokenDeletionCalls().map { "\($0.appID)/\($0.token)" })
            #expect(deleted == ["10086/TOKEN-A", "10086/TOKEN-B", "10086/TOKEN-C", "20001/TOKEN-A"],
                    "each token deleted under the app it was sent with")
            #expect(simulator.tokenDeletionCalls().count == 4, "no call twice")
            let deletions = simulator.requests().filter { $0.path.hasSuffix("/token:delete") }
            let keys = deletions.compactMap { $0.header("Idempotency-Key") }
            #expect(keys.count == 4 && Set(keys).count == 4, "every call carries its own idempotency key")
            #expect(deletions.allSatisfy { $0.header("Authorization")?.hasPrefix("Bearer ") == true })
            #expect(try await broker.store.storedRevocationKeyCount() == 0, "keys are deleted once acknowledged")

            // The revocation is in the tamper-evident log, and no value is in any answer.
            let records = try await broker.records().filter { $0.kind == "revocation" }
            #expect(records.map { $0.body.contains(#""event":"revoked""#) } == [true, false])
            #expect(records.last?.body.contains(#""event":"acknowledged""#) == true)
            #expect(records.allSatisfy { !$0.body.contains("TOKEN-") })
            let status = try await broker.call("GET", "/v1/revocations/\(id)", token: Broker.grantsToken)
            #expect(!status.text.contains("TOKEN-") && !revoke.text.contains("TOKEN-"))
            #expect(try await broker.store.verify().firstBad == nil)
        }
    }

    @Test func sharesWithoutKeysLeaveTheJobToAPerson() async throws {
        try await withBroker { broker in
            let grant = try await broker.grant("p4", provider: "huawei-push", purpose: Self.push)
            _ = try await send(broker, subject: "p4", app: "10086", tokens: ["KEYED-1"])
            let purged = try await send(broker, subject: "p4", app: "10086", tokens: ["PURGED-2"])
            // This share's keys are gone, as after its contract's retention.
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)   // the broker's own writer may hold the lock a moment
            let queue = try DatabaseQueue(path: broker.databasePath, configuration: configuration)
            try await queue.write { db in
                try db.execute(sql: """
                    DELETE FROM revocation_key_sets WHERE (grant_id, key_set) IN (SELECT grant_id, key_set FROM share_grants WHERE share_id = ?)
                    """, arguments: [purged])
                #expect(db.changesCount == 1)
            }
            try queue.close()
            let revoke = try await broker.call("DELETE", "/v1/subjects/p4/grants/\(grant)", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String)
            let job = try await waitFor(broker, id, provider: "huawei-push", status: "manual_required")
            #expect((job["last_error"] as? String)?.contains("1 share(s) have no usable revocation keys") == true)
            #expect(broker.simulator("huawei-push").tokenDeletionCalls().map(\.token) == ["KEYED-1"], "what could be sent was")
        }
    }

    /// An attempt still under way reads `in_progress`, not `interrupted` (a fresh user's first look).
    @Test func anAttemptUnderWayIsInProgress() async throws {
        try await withBroker { broker in
            let grant = try await broker.grant("p5", provider: "huawei-push", purpose: Self.push)
            _ = try await send(broker, subject: "p5", app: "10086", tokens: ["SLOW-1"])
            broker.simulator("huawei-push").setFault(.hang)
            let revoke = try await broker.call("DELETE", "/v1/subjects/p5/grants/\(grant)", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String)
            let job = try await waitFor(broker, id, provider: "huawei-push", status: "sent")
            let log = job["attempt_log"] as? [[String: Any]] ?? []
            #expect(log.last?["result"] as? String == "in_progress", "\(job)")
            broker.simulator("huawei-push").setFault(.none)
            _ = try await waitFor(broker, id, provider: "huawei-push", status: "acknowledged")
        }
    }

    @Test func providerDownThenUpBacksOffThenAcknowledges() async throws {
        try await withBroker { broker in
            let grant = try await broker.grant("p2", provider: "huawei-push", purpose: Self.push)
            _ = try await send(broker, subject: "p2", app: "10086", tokens: ["DOWN-1"])
            let simulator = broker.simulator("huawei-push")
            simulator.setFault(.status(503))
            let revoke = try await broker.call("DELETE", "/v1/subjects/p2/grants/\(grant)", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String)

            // Wait for three failed attempts, then bring the provider back.
            let deadline = ContinuousClock.now + .seconds(10)
            var job: [String: Any] = [:]
            while ContinuousClock.now < deadline {
                let response = try await broker.call("GET", "/v1/revocations/\(id)", token: Broker.grantsToken)
                job = (response.json["providers"] as? [[String: Any]])?.first ?? [:]
                if (job["attempts"] as? Int ?? 0) >= 3, job["status"] as? String == "pending" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(job["status"] as? String == "pending")
            #expect(job["last_error"] as? String == "provider answered HTTP 503")
            #expect(simulator.tokenDeletionCalls().isEmpty)
            simulator.setFault(.none)

            let done = try await waitFor(broker, id, provider: "huawei-push", status: "acknowledged")
            let attempts = done["attempts"] as? Int ?? 0
            #expect(attempts >= 4)
            let log = done["attempt_log"] as? [[String: Any]] ?? []
            #expect(log.count == attempts)
            #expect(log.dropLast().allSatisfy { $0["result"] as? String == "retry" })
            #expect(log.last?["result"] as? String == "acknowledged")
            // Exponential backoff: the waits between attempts grow.
            let starts = log.compactMap { ($0["started_at"] as? String).flatMap(SubjectsISO.parse) }
            let gaps = zip(starts.dropFirst(), starts).map { $0.timeIntervalSince($1) }
            #expect(gaps.count >= 3 && gaps[2] > gaps[0], "gaps \(gaps)")
            #expect(simulator.tokenDeletionCalls().map(\.token) == ["DOWN-1"])
        }
    }

    @Test func aProviderRefusalFailsAtOnceAndManualProvidersGetADocument() async throws {
        try await withBroker { broker in
            let huawei = try await broker.grant("p3", provider: "huawei-push", purpose: Self.push)
            _ = try await send(broker, subject: "p3", app: "10086", tokens: ["REFUSED-1"])
            broker.simulator("huawei-push").setFault(.status(400))
            let revoke = try await broker.call("DELETE", "/v1/subjects/p3/grants/\(huawei)", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String)
            let failed = try await waitFor(broker, id, provider: "huawei-push", status: "failed")
            #expect(failed["attempts"] as? Int == 1)
            #expect((failed["last_error"] as? String)?.contains("HTTP 400") == true)
            broker.simulator("huawei-push").setFault(.none)

            try await broker.grant("p3", provider: "wechat-login", purpose: "essential.service.authentication")
            let login = try await broker.call("GET", "/v1/proxy/wechat-login/sns/userinfo?access_token=A&openid=OPENID-1",
                                              headers: [("X-Share-Subject", "p3")])
            #expect(login.status == 200)
            let manual = try await broker.call("DELETE", "/v1/subjects/p3/grants?provider=wechat-login", token: Broker.grantsToken)
            let job = (manual.json["providers"] as? [[String: Any]])?.first ?? [:]
            #expect(job["status"] as? String == "manual_required")
            let document = job["manual_request"] as? [String: Any] ?? [:]
            #expect(document["subject"] as? String == "p3")
            #expect(document["share_ids"] as? [String] == [login.headerValue("X-Share-Id") ?? ""])
            #expect(!(document["categories"] as? [String] ?? []).isEmpty)
            #expect(document["first_shared_at"] != nil)
            #expect(!manual.text.contains("OPENID-1"))
            let records = try await broker.records().filter { $0.kind == "revocation" }
            #expect(records.contains { $0.body.contains(#""event":"failed""#) })
        }
    }
}

enum SubjectsISO {
    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}

import BrokerCurl
import Foundation
import Testing

/// The promise, rule 4 (docs/concepts.md): once a revoke returns, nothing more goes out under the grant, and every
/// share made under it is in the revocation job.
@Suite(.serialized) struct RevocationTests {
    static let push = "essential.service.notifications.push"

    struct ShareOutcome: Sendable {
        var started: ContinuousClock.Instant
        var status: Int
        var shareID: String?
        var code: String?
    }

    @Test func fiftySharesRacingARevoke() async throws {
        try await withBroker { broker in
            var allowedTotal = 0, refusedTotal = 0
            for round in 0..<5 {
                let subject = "race-\(round)"
                let grantID = try await broker.grant(subject, provider: "huawei-push", purpose: Self.push)
                let (shares, revoked, jobShares) = try await withThrowingTaskGroup(of: Void.self) { group in
                    let outcomes = OutcomeBox()
                    for index in 0..<50 {
                        group.addTask {
                            if index % 2 == 1 { try await Task.sleep(for: .microseconds(200 * index)) }
                            let started = ContinuousClock.now
                            let response = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                                                 headers: [("Content-Type", "application/json"),
                                                                           ("X-Share-Subject", subject)],
                                                                 body: #"{"message":{"token":["T\#(index)"]}}"#)
                            outcomes.add(ShareOutcome(started: started, status: response.status,
                                                      shareID: response.headerValue("X-Share-Id"),
                                                      code: response.json["code"] as? String))
                        }
                    }
                    try await Task.sleep(for: .milliseconds(3))
                    let revoke = try await broker.call("DELETE", "/v1/subjects/\(subject)/grants/\(grantID)",
                                                       token: Broker.grantsToken)
                    let returned = ContinuousClock.now
                    #expect(revoke.status == 202, "\(revoke.text)")
                    let ids = Set(revoke.json["share_ids"] as? [String] ?? [])
                    try await group.waitForAll()
                    return (outcomes.all, returned, ids)
                }
                let allowed = shares.filter { $0.status == 200 }
                let afterRevoke = shares.filter { $0.started > revoked }
                #expect(afterRevoke.allSatisfy { $0.status == 403 && $0.code == "consent_revoked" },
                        "round \(round): a share started after the revoke returned was not refused")
                for share in allowed {
                    #expect(jobShares.contains(share.shareID ?? ""), "round \(round): an allowed share is missing from the job")
                }
                #expect(shares.count == 50)
                allowedTotal += allowed.count
                refusedTotal += shares.filter { $0.code == "consent_revoked" }.count
                #expect(shares.allSatisfy { $0.status == 200 || $0.code == "consent_revoked" || $0.code == "consent_missing" })
            }
            // The race was real: shares landed on both sides of the revokes.
            #expect(allowedTotal > 0 && refusedTotal > 0, "allowed \(allowedTotal), refused \(refusedTotal)")
            print("revocation race: \(allowedTotal) shares allowed before, \(refusedTotal) refused after, in 5 rounds of 50")
        }
    }

    @Test func revokeAnswersAndRefusesWhatFollows() async throws {
        try await withBroker { broker in
            let huawei = try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            try await broker.grant("u1", provider: "wechat-login", purpose: "essential.service.authentication")
            let share = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                              headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                              body: #"{"message":{"token":["T1"]}}"#)
            #expect(share.status == 200)
            let login = try await broker.call("GET", "/v1/proxy/wechat-login/sns/userinfo?access_token=A&openid=O",
                                              headers: [("X-Share-Subject", "u1")])
            #expect(login.headerValue("X-Share-Decision") == "allowed")

            let unknown = try await broker.call("DELETE", "/v1/subjects/u1/grants/g_nope", token: Broker.grantsToken)
            #expect(unknown.status == 404 && unknown.json["code"] as? String == "grant_not_found")
            let notMine = try await broker.call("DELETE", "/v1/subjects/u2/grants/\(huawei)", token: Broker.grantsToken)
            #expect(notMine.status == 404, "another subject's grant is not revealed")
            let wrongRole = try await broker.call("DELETE", "/v1/subjects/u1/grants/\(huawei)")
            #expect(wrongRole.status == 403)

            let revoke = try await broker.call("DELETE", "/v1/subjects/u1/grants/\(huawei)", token: Broker.grantsToken)
            #expect(revoke.status == 202)
            #expect(revoke.json["shares"] as? Int == 1)
            #expect(revoke.json["share_ids"] as? [String] == [share.headerValue("X-Share-Id") ?? ""])
            let again = try await broker.call("DELETE", "/v1/subjects/u1/grants/\(huawei)", token: Broker.grantsToken)
            #expect(again.status == 409)

            let after = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                              headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                              body: #"{"message":{"token":["T2"]}}"#)
            #expect(after.status == 403 && after.json["code"] as? String == "consent_revoked")

            let byProvider = try await broker.call("DELETE", "/v1/subjects/u1/grants?provider=wechat-login",
                                                   token: Broker.grantsToken)
            #expect(byProvider.status == 202)
            let providers = byProvider.json["providers"] as? [[String: Any]] ?? []
            #expect(providers.first?["status"] as? String == "manual_required", "WeChat has no deletion API")
            let id = try #require(revoke.json["revocation_id"] as? String)
            let status = try await broker.call("GET", "/v1/revocations/\(id)", token: Broker.grantsToken)
            #expect(status.status == 200)
            let huaweiStatus = (status.json["providers"] as? [[String: Any]])?.first?["status"] as? String
            #expect(["pending", "sent", "acknowledged"].contains(huaweiStatus ?? ""), "Huawei has a deletion call")
            let grants = try await broker.call("GET", "/v1/subjects/u1/grants", token: Broker.grantsToken)
            #expect((grants.json["grants"] as? [[String: Any]] ?? []).allSatisfy { $0["status"] as? String == "revoked" })
        }
    }
}

final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [RevocationTests.ShareOutcome] = []
    func add(_ item: RevocationTests.ShareOutcome) { lock.withLock { items.append(item) } }
    var all: [RevocationTests.ShareOutcome] { lock.withLock { items } }
}

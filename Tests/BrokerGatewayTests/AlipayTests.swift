import BrokerCurl
import Foundation
import Testing

/// Alipay login through the broker (RSA2 request signing checked by the simulator) and
/// issue 5's provider-initiated revocation: Alipay's signed cancellation notice.
@Suite(.serialized) struct AlipayTests {
    static let auth = "essential.service.authentication"

    func login(_ broker: Broker, subject: String, code: String) async throws -> (status: Int, userID: String?, token: String?) {
        let response = try await broker.call("POST", "/v1/proxy/alipay-login/gateway.do?method=alipay.system.oauth.token",
                                             headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                       ("X-Share-Subject", subject)],
                                             body: "grant_type=authorization_code&code=\(code)")
        let inner = response.json["alipay_system_oauth_token_response"] as? [String: Any]
        return (response.status, inner?["user_id"] as? String, inner?["access_token"] as? String)
    }

    func grant(_ broker: Broker, _ subject: String, account: String?) async throws -> String {
        let accountJSON = account.map { #","provider_account":"\#($0)""# } ?? ""
        let response = try await broker.call("POST", "/v1/subjects/\(subject)/grants", token: Broker.grantsToken,
                                             headers: [("Content-Type", "application/json")], body: """
            {"provider":"alipay-login","purpose":"\(Self.auth)","separate_consent":false,"cross_border_consent":false,\
            "policy_version":"1","evidence":"alipay-consent"\(accountJSON)}
            """)
        #expect(response.status == 201, "\(response.text)")
        #expect(!response.text.contains(account ?? "\u{0}"), "the account id is not echoed")
        return response.json["id"] as? String ?? ""
    }

    @Test func loginIsSignedByTheBrokerAndVerifiedByTheProvider() async throws {
        try await withBroker { broker in
            _ = try await grant(broker, "a1", account: nil)
            let (status, userID, token) = try await login(broker, subject: "a1", code: "CODE-1")
            #expect(status == 200)
            #expect(userID?.hasPrefix("2088") == true)
            let info = try await broker.call("POST", "/v1/proxy/alipay-login/gateway.do?method=alipay.user.info.share",
                                             headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "a1")],
                                             body: "auth_token=\(token ?? "")")
            #expect((info.json["alipay_user_info_share_response"] as? [String: Any])?["code"] as? String == "10000", "\(info.text)")
            let sent = broker.simulator("alipay-login").requests()
            #expect(sent.count == 2)
            #expect(sent.allSatisfy { ($0.query ?? "").contains("sign_type=RSA2") && ($0.query ?? "").contains("&sign=") })

            // A caller cannot choose the API by another spelling, nor send the broker's parameters.
            let unknown = try await broker.call("POST", "/v1/proxy/alipay-login/gateway.do?method=alipay.trade.pay",
                                                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "a1")],
                                                body: "out_trade_no=1")
            #expect(unknown.status == 404 && unknown.json["code"] as? String == "unknown_operation")
            let twice = try await broker.call("POST",
                                              "/v1/proxy/alipay-login/gateway.do?method=alipay.user.info.share&method=alipay.system.oauth.token",
                                              headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "a1")],
                                              body: "auth_token=x")
            #expect(twice.status == 404, "a selecting parameter given twice matches nothing")
        }
    }

    @Test func alipaysCancellationNoticeRevokesTheMatchingGrant() async throws {
        try await withBroker { broker in
            let alipay = broker.simulator("alipay-login")
            _ = try await grant(broker, "a2", account: nil)
            let (_, userID, _) = try await login(broker, subject: "a2", code: "CODE-2")
            let account = try #require(userID)
            // The app links the Alipay account to the grant once it knows the user id.
            let linked = try await grant(broker, "a2", account: account)
            _ = try await grant(broker, "a3", account: "2088000000000001")

            // A forged or altered notice is refused, and revokes nothing.
            let genuine = try #require(alipay.alipayCancellationNotice(userID: account))
            let forged = genuine.replacingOccurrences(of: account, with: "2088000000000001")
            let refused = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: forged)
            #expect(refused.status == 401 && refused.json["code"] as? String == "notice_unverified")

            let notice = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                               headers: [("Content-Type", "application/x-www-form-urlencoded")], body: genuine)
            #expect(notice.status == 200 && notice.text == "success")
            let grants = try await broker.call("GET", "/v1/subjects/a2/grants", token: Broker.grantsToken)
            let list = grants.json["grants"] as? [[String: Any]] ?? []
            #expect(list.first { $0["id"] as? String == linked }?["status"] as? String == "revoked")
            #expect(list.filter { $0["status"] as? String == "active" }.count == 1, "the unlinked grant stays")
            let other = try await broker.call("GET", "/v1/subjects/a3/grants", token: Broker.grantsToken)
            #expect((other.json["grants"] as? [[String: Any]])?.first?["status"] as? String == "active")

            // The same notice again (Alipay retries) and one for nobody both answer success, revoking nothing.
            let again = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                              headers: [("Content-Type", "application/x-www-form-urlencoded")], body: genuine)
            #expect(again.status == 200 && again.text == "success")
            // The user logs in again and links a new grant: replaying the old notice does not touch it.
            try await Task.sleep(for: .milliseconds(1100))   // cancel_time has one-second resolution
            let relinked = try await grant(broker, "a2", account: account)
            let replay = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                               headers: [("Content-Type", "application/x-www-form-urlencoded")], body: genuine)
            #expect(replay.text == "success")
            let after = try await broker.call("GET", "/v1/subjects/a2/grants", token: Broker.grantsToken)
            #expect((after.json["grants"] as? [[String: Any]])?.first { $0["id"] as? String == relinked }?["status"] as? String == "active")
            // Values that could regroup a signed text, and oversized notices, are refused before any signature work.
            let regrouped = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                                  headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                  body: genuine + "&x=a%26b%3Dc")
            #expect(regrouped.status == 400)
            let huge = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                             headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                             body: String(repeating: "a", count: 20_000))
            #expect(huge.status == 413)

            let nobody = try await broker.call("POST", "/v1/providers/alipay-login/cancellations", token: nil,
                                               headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                               body: alipay.alipayCancellationNotice(userID: "2088999999999999") ?? "")
            #expect(nobody.text == "success")
            let unsupported = try await broker.call("POST", "/v1/providers/huawei-push/cancellations", token: nil,
                                                    headers: [("Content-Type", "application/x-www-form-urlencoded")], body: genuine)
            #expect(unsupported.status == 404)

            let records = try await broker.records().filter { $0.kind == "revocation" }
            #expect(records.count == 1 && records[0].body.contains(#""origin":"provider""#))
            #expect(!records[0].body.contains(account))
        }
    }
}

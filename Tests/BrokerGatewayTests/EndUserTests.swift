import BrokerCurl
@preconcurrency import Crypto
import Foundation
import Testing

/// Issue 4: end users reach only their own subject, with a JWT (docs/privacy-center.md; users.jwt in docs/configuration.md).
@Suite(.serialized) struct EndUserTests {
    static func base64url(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// An HS256 token (or one with another header) for `claims`.
    static func token(_ claims: [String: Any], header: [String: Any] = ["alg": "HS256", "typ": "JWT"],
                      secret: String = Broker.userJWTSecret) -> String {
        let head = base64url(try! JSONSerialization.data(withJSONObject: header))
        let body = base64url(try! JSONSerialization.data(withJSONObject: claims))
        let mac = HMAC<SHA256>.authenticationCode(for: Data((head + "." + body).utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return head + "." + body + "." + base64url(Data(mac))
    }

    static func claims(_ subject: String, exp: TimeInterval = 3600, iss: String = "https://id.test",
                       aud: Any = "sharebroker") -> [String: Any] {
        ["sub": subject, "iss": iss, "aud": aud, "exp": Int(Date().timeIntervalSince1970 + exp),
         "iat": Int(Date().timeIntervalSince1970)]
    }

    @Test func aUserSeesOnlyTheirOwnSubject() async throws {
        try await withBroker { broker in
            let grant = try await broker.grant("alice", provider: "huawei-push", purpose: "essential.service.notifications.push")
            try await broker.grant("bob", provider: "huawei-push", purpose: "essential.service.notifications.push")
            let push = try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                                             headers: [("Content-Type", "application/json"), ("X-Share-Subject", "alice")],
                                             body: #"{"message":{"token":["ALICE-TOKEN-1"],"notification":{"title":"Dear Alice"}}}"#)
            #expect(push.status == 200)
            await broker.outcomes.drained()
            let alice = Self.token(Self.claims("alice"))

            let grants = try await broker.call("GET", "/v1/subjects/alice/grants", token: alice)
            #expect(grants.status == 200 && (grants.json["grants"] as? [[String: Any]])?.count == 1)
            let shares = try await broker.call("GET", "/v1/subjects/alice/shares", token: alice)
            let items = shares.json["shares"] as? [[String: Any]] ?? []
            #expect(items.count == 1)
            #expect(items.first?["provider"] as? String == "huawei-push")
            #expect((items.first?["categories_sent"] as? [String])?.contains("user.device.push_token") == true)
            #expect(items.first?["outcome"] as? String == "ok")
            #expect(!shares.text.contains("ALICE-TOKEN-1") && !shares.text.contains("Dear Alice") && !shares.text.contains("fingerprint"))

            // Another subject, existing or not, is 404 alike; a user cannot change their age or use the compliance API.
            for other in ["bob", "nobody-at-all"] {
                for path in ["/v1/subjects/\(other)/grants", "/v1/subjects/\(other)/shares"] {
                    let refused = try await broker.call("GET", path, token: alice)
                    #expect(refused.status == 404 && refused.json["code"] as? String == "subject_not_found", "\(path)")
                }
            }
            let bobsGrant = try await broker.call("DELETE", "/v1/subjects/bob/grants?provider=huawei-push", token: alice)
            #expect(bobsGrant.status == 404)
            #expect(try await broker.call("PUT", "/v1/subjects/alice", token: alice,
                                          headers: [("Content-Type", "application/json")], body: #"{"minor":false}"#).status == 403)
            #expect(try await broker.call("GET", "/v1/shares", token: alice).status == 403)
            // A client without the role is refused too.
            #expect(try await broker.call("GET", "/v1/subjects/alice/shares", token: Broker.complianceToken).status == 403)

            // The user revokes their own grant and follows the revocation; Bob cannot read it.
            let revoke = try await broker.call("DELETE", "/v1/subjects/alice/grants/\(grant)", token: alice)
            #expect(revoke.status == 202)
            let id = try #require(revoke.json["revocation_id"] as? String)
            #expect(try await broker.call("GET", "/v1/revocations/\(id)", token: alice).status == 200)
            let bob = Self.token(Self.claims("bob"))
            #expect(try await broker.call("GET", "/v1/revocations/\(id)", token: bob).status == 404)
        }
    }

    @Test func badTokensAreRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("carol", provider: "huawei-push", purpose: "essential.service.notifications.push")
            let path = "/v1/subjects/carol/grants"
            let none = Self.token(Self.claims("carol"), header: ["alg": "none"])
            let unsigned = none.split(separator: ".").prefix(2).joined(separator: ".") + "."
            let cases: [(String, String)] = [
                ("alg none", unsigned),
                ("alg none, signed anyway", none),
                ("RS256 header (key confusion)", Self.token(Self.claims("carol"), header: ["alg": "RS256"])),
                ("wrong secret", Self.token(Self.claims("carol"), secret: "not-the-secret")),
                ("expired", Self.token(Self.claims("carol", exp: -3600))),
                ("wrong issuer", Self.token(Self.claims("carol", iss: "https://evil.test"))),
                ("wrong audience", Self.token(Self.claims("carol", aud: "someone-else"))),
                ("no exp", Self.token(["sub": "carol", "iss": "https://id.test", "aud": "sharebroker"])),
                ("garbage", "a.b.c"),
            ]
            for (name, token) in cases {
                let response = try await broker.call("GET", path, token: token)
                #expect(response.status == 401, "\(name): \(response.status)")
            }
            let listed = try await broker.call("GET", path, token: Self.token(Self.claims("carol", aud: ["x", "sharebroker"])))
            #expect(listed.status == 200, "an audience list containing ours is accepted")
        }
    }
}

import BrokerCore
import BrokerCurl
@preconcurrency import Crypto
import Foundation
import Testing

/// Issue 10: the outside review's findings, each reproduced through the real server.
@Suite(.serialized) struct HardeningTests {
    static let push = "essential.service.notifications.push"
    static let sendPath = "/v1/10086/messages:send"
    static let body = #"{"message":{"token":["T1"]}}"#

    /// A raw HTTP/1.1 exchange (the clients' libraries would not send these requests): `head` is the
    /// request line and headers, each line ending in `\r` and a newline but the last, which ends in `\r`.
    static func raw(_ broker: Broker, _ head: String, body: String = "") async throws -> (reply: String, closed: Bool) {
        try await rawBytes(broker, Array((head + "\n\r\n" + body).utf8))
    }

    /// The blocking socket calls run on a thread of their own, never on the concurrency pool the brokers share.
    static func rawBytes(_ broker: Broker, _ bytes: [UInt8]) async throws -> (reply: String, closed: Bool) {
        let port = broker.port
        return try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try ClientLimitTests.rawExchange(port: port, bytes: bytes, wait: .seconds(3)) }) }
                .start()
        }
    }

    static func status(_ reply: String) -> Int { Int(reply.dropFirst(9).prefix(3)) ?? 0 }

    // MARK: 3. Absolute-form authority

    /// Every query of the compliance and history routes refuses a parameter given twice (it could
    /// be read either way), and a subject's region is two letters A–Z.
    @Test func repeatedQueryParametersAndBadRegionsAreRefused() async throws {
        try await withBroker { broker in
            for path in ["/v1/reports/sharing-list?since=2026-01-01T00:00:00Z&since=2027-01-01T00:00:00Z",
                         "/v1/shares?provider=huawei-push&provider=oppo-push",
                         "/v1/reports/exposure?provider=huawei-push&provider=oppo-push"] {
                let answer = try await broker.call("GET", path, token: Broker.complianceToken)
                #expect(answer.status == 400 && answer.json["code"] as? String == "invalid_query", "\(path): \(answer.text)")
            }
            let history = try await broker.call("GET", "/v1/subjects/u1/shares?limit=1&limit=1000", token: Broker.grantsToken)
            #expect(history.status == 400 && history.json["code"] as? String == "invalid_query", "\(history.text)")
            for region in ["12", "cn", "C", "CHN"] {
                let answer = try await broker.call("PUT", "/v1/subjects/u1", token: Broker.grantsToken,
                                                   headers: [("Content-Type", "application/json")], body: #"{"region":"\#(region)"}"#)
                #expect(answer.status == 400 && answer.json["code"] as? String == "invalid_subject", "\(region): \(answer.text)")
            }
            #expect(try await broker.call("PUT", "/v1/subjects/u1", token: Broker.grantsToken,
                                          headers: [("Content-Type", "application/json")], body: #"{"region":"DE"}"#).status == 200)
        }
    }

    @Test func theRequestTargetsAuthorityDecidesNotHost() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            // Another loopback port, dressed up with a provider's Host: refused, nothing forwarded.
            let other = try await Self.raw(broker, """
                POST http://127.0.0.1:\(broker.port + 1)/v1/10086/messages:send HTTP/1.1\r
                Host: push-api.cloud.huawei.com\r
                Proxy-Authorization: Bearer \(Broker.shareToken)\r
                X-Share-Subject: u1\r
                Content-Type: application/json\r
                Content-Length: \(Self.body.utf8.count)\r
                """, body: Self.body)
            #expect(Self.status(other.reply) == 400, "\(other.reply.prefix(300))")
            #expect(other.reply.contains(#""code":"invalid_host""#))
            #expect(other.closed)
            // A provider's authority with the broker's own Host: never the compliance API.
            let api = try await Self.raw(broker, """
                GET http://push-api.cloud.huawei.com/v1/shares HTTP/1.1\r
                Host: 127.0.0.1:\(broker.port)\r
                Authorization: Bearer \(Broker.complianceToken)\r
                """)
            #expect(Self.status(api.reply) == 400, "\(api.reply.prefix(300))")
            #expect(!api.reply.contains("\"shares\""))
            // A loopback address that is not the broker's: an unknown provider, not the broker's API.
            let loopback = try await Self.raw(broker, """
                GET http://127.0.0.1:\(broker.port + 1)/v1/shares HTTP/1.1\r
                Authorization: Bearer \(Broker.complianceToken)\r
                """)
            #expect(Self.status(loopback.reply) == 404, "\(loopback.reply.prefix(300))")
            #expect(loopback.reply.contains(#""code":"unknown_provider""#))
            // The broker's own address in absolute form still reaches its API.
            let own = try await Self.raw(broker, """
                GET http://127.0.0.1:\(broker.port)/healthz HTTP/1.1\r
                """)
            #expect(Self.status(own.reply) == 200, "\(own.reply.prefix(300))")
            // And an absolute-form share with a matching (or no) Host is forwarded as before.
            let share = try await Self.raw(broker, """
                POST http://push-api.cloud.huawei.com/v1/10086/messages:send HTTP/1.1\r
                Proxy-Authorization: Bearer \(Broker.shareToken)\r
                X-Share-Subject: u1\r
                Content-Type: application/json\r
                Content-Length: \(Self.body.utf8.count)\r
                Connection: close\r
                """, body: Self.body)
            #expect(Self.status(share.reply) == 200, "\(share.reply.prefix(300))")
            #expect(broker.simulator("huawei-push").requests().count == 1)
        }
    }

    // MARK: 4. Host and X-Share-* headers

    @Test func twoHostsAnInvalidHostAndDoubledShareHeadersAreRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            try await broker.grant("u2", provider: "huawei-push", purpose: Self.push)
            let twoHosts = try await Self.raw(broker, """
                GET /healthz HTTP/1.1\r
                Host: 127.0.0.1\r
                Host: push-api.cloud.huawei.com\r
                """)
            #expect(Self.status(twoHosts.reply) == 400, "\(twoHosts.reply.prefix(300))")
            #expect(twoHosts.reply.contains(#""code":"duplicate_header""#))
            for bad in ["http://127.0.0.1", "127.0.0.1/v1", "a b", "[::1", "host:99999", "user@127.0.0.1"] {
                let reply = try await Self.raw(broker, "GET /healthz HTTP/1.1\r\nHost: \(bad)\r")
                #expect(Self.status(reply.reply) == 400, "Host: \(bad) → \(reply.reply.prefix(200))")
                #expect(reply.reply.contains(#""code":"invalid_host""#), "Host: \(bad)")
            }
            for header in ["X-Share-Subject", "X-Share-Purpose"] {
                let doubled = try await broker.call("POST", "/v1/proxy/huawei-push" + Self.sendPath, headers: [
                    ("Content-Type", "application/json"), ("X-Share-Subject", "u1"), ("X-Share-Purpose", Self.push),
                    (header, header == "X-Share-Subject" ? "u2" : Self.push),
                ], body: Self.body)
                #expect(doubled.status == 400, "\(header): \(doubled.text)")
                #expect(doubled.json["code"] as? String == "duplicate_header")
            }
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    // MARK: Shares and router requests on one connection

    /// Issue 24: shares are answered on the event loop (`ShareChannelHandler`) and the rest by the
    /// router, on the same connection; pipelined requests mixing both get their answers in order.
    @Test func pipelinedSharesAndRouterRequestsAreAnsweredInOrder() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let share = "POST /v1/proxy/huawei-push\(Self.sendPath) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + "Authorization: Bearer \(Broker.shareToken)\r\nX-Share-Subject: u1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(Self.body.utf8.count)\r\n\r\n" + Self.body
            let refused = share.replacingOccurrences(of: "X-Share-Subject: u1", with: "X-Share-Subject: u-nobody")
            // A bad token is refused from the head alone; its body came with it, so the connection goes on.
            let badToken = share.replacingOccurrences(of: "Bearer \(Broker.shareToken)", with: "Bearer wrong")
            let health = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            let notAllowed = "PROPFIND /v1/proxy/huawei-push/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            let last = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let reply = try await Self.rawBytes(broker, Array((share + health + refused + badToken + share + notAllowed + last).utf8))
            let statuses = reply.reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { Int($0.prefix(3)) ?? 0 }
            #expect(statuses == [200, 200, 403, 401, 200, 405, 200], "\(reply.reply)")
            #expect(reply.reply.components(separatedBy: "X-Share-Decision: allowed").count == 3)
            #expect(reply.reply.contains("Allow: DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"))
            #expect(reply.closed)
            #expect(broker.simulator("huawei-push").requests().count == 2)
        }
    }

    /// A connection remembers its last credential header and whom it authenticated (`CredentialMemo`):
    /// the same value in the other header is worked out anew (Basic credentials authenticate in
    /// `Proxy-Authorization` only), and a changed token on the same connection is checked again.
    @Test func aConnectionsRememberedCredentialIsTiedToItsHeaderAndValue() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let basic = "Basic " + Data("test-app:\(Broker.shareToken)".utf8).base64EncodedString()
            func share(_ credential: String) -> String {
                "POST /v1/proxy/huawei-push\(Self.sendPath) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(credential)\r\n"
                    + "X-Share-Subject: u1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(Self.body.utf8.count)\r\n\r\n" + Self.body
            }
            let requests = share("Proxy-Authorization: \(basic)") + share("Proxy-Authorization: \(basic)")
                + share("Authorization: \(basic)") + share("Authorization: Bearer \(Broker.shareToken)")
                + share("Authorization: Bearer wrong") + share("Authorization: Bearer \(Broker.shareToken)")
                + "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let reply = try await Self.rawBytes(broker, Array(requests.utf8))
            let statuses = reply.reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { Int($0.prefix(3)) ?? 0 }
            #expect(statuses == [200, 200, 401, 200, 401, 200, 200], "\(reply.reply)")
            #expect(broker.simulator("huawei-push").requests().count == 4)
        }
    }

    /// A bad token on a connection's first request (where NIO's upgrade check hands on the body only
    /// after the head's read): refused from the head, its body consumed, the connection kept; with
    /// the body still on its way, refused and closed without reading it.
    @Test func aBadTokenIsRefusedAndTheConnectionKeptWhenItsBodyCameAlong() async throws {
        try await withBroker { broker in
            let head = "POST /v1/proxy/huawei-push\(Self.sendPath) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n"
                + "X-Share-Subject: u1\r\nContent-Type: application/json\r\n"
            let whole = head + "Content-Length: \(Self.body.utf8.count)\r\n\r\n" + Self.body
                + "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let kept = try await Self.rawBytes(broker, Array(whole.utf8))
            let statuses = kept.reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { Int($0.prefix(3)) ?? 0 }
            #expect(statuses == [401, 200], "\(kept.reply)")
            #expect(!kept.reply.lowercased().contains("connection: close\r\n\r\n{\"code\":\"unauthenticated"))
            let partial = try await Self.rawBytes(broker, Array((head + "Content-Length: 500\r\n\r\n{\"message\"").utf8))
            #expect(Self.status(partial.reply) == 401 && partial.reply.lowercased().contains("connection: close"))
            #expect(partial.closed)
        }
    }

    // MARK: 5. Malformed chunked bodies

    @Test func malformedChunkedBodiesAnswer400AndClose() async throws {
        try await withBroker { broker in
            for chunks in ["zz\r\n{}\r\n0\r\n\r\n", "fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n", "2;ext=\"a\r\nb\"\r\n{}\r\n0\r\n\r\n"] {
                let reply = try await Self.raw(broker, """
                    POST /v1/proxy/huawei-push/v1/10086/messages:send HTTP/1.1\r
                    Host: 127.0.0.1\r
                    Authorization: Bearer \(Broker.shareToken)\r
                    X-Share-Subject: u1\r
                    Content-Type: application/json\r
                    Transfer-Encoding: chunked\r
                    """, body: chunks)
                #expect(Self.status(reply.reply) == 400, "\(chunks.debugDescription) → \(reply.reply.prefix(300))")
                #expect(!reply.reply.contains("internal_error"))
                #expect(reply.closed, "the connection is closed after a framing error")
            }
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }

    // MARK: 6. Non-UTF-8 bytes in a declared header

    @Test func aDeclaredHeaderThatIsNotUTF8IsRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "tencent-faceid", purpose: "essential.legal_obligation", separate: true)
            // X-TC-Language is declared; \u{FF} is not UTF-8 on the wire.
            var bytes = Array("""
                POST /v1/proxy/tencent-faceid/ HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(Broker.shareToken)\r
                X-Share-Subject: u1\r
                X-TC-Action: IdCardVerification\r
                X-TC-Language: zh-CN
                """.utf8)
            bytes.append(0xFF)
            bytes += Array(#"\#r\#nContent-Type: application/json\#r\#nContent-Length: 42\#r\#n\#r\#n{"IdCard":"110101199003074514","Name":"A"}"#.utf8)
            let reply = try await Self.rawBytes(broker, bytes)
            #expect(Self.status(reply.reply) == 400, "\(reply.reply.prefix(300))")
            #expect(reply.reply.contains(#""code":"malformed_header""#), "\(reply.reply.prefix(300))")
            #expect(broker.simulator("tencent-faceid").requests().isEmpty)
        }
    }

    // MARK: 8. End users' tokens

    static func jwt(claimsJSON: String) -> String {
        let head = EndUserTests.base64url(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let body = EndUserTests.base64url(Data(claimsJSON.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data((head + "." + body).utf8),
                                                  using: SymmetricKey(data: Data(Broker.userJWTSecret.utf8)))
        return head + "." + body + "." + EndUserTests.base64url(Data(mac))
    }

    @Test func aUserTokenOnAnotherRolesRouteIsForbiddenAndOddClaimsAreRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u-1001", provider: "huawei-push", purpose: Self.push)
            let user = EndUserTests.token(EndUserTests.claims("u-1001"))
            let put = try await broker.call("PUT", "/v1/subjects/u-1001", token: user,
                                            headers: [("Content-Type", "application/json")], body: #"{"minor":false}"#)
            #expect(put.status == 403 && put.json["code"] as? String == "forbidden", "\(put.text)")
            let compliance = try await broker.call("GET", "/v1/shares", token: user)
            #expect(compliance.status == 403 && compliance.json["code"] as? String == "forbidden", "\(compliance.text)")
            #expect(try await broker.call("GET", "/v1/subjects/u-1001/grants", token: user).status == 200)

            let exp = Int(Date().timeIntervalSince1970) + 3600
            let claims = #""iss":"https://id.test","aud":"sharebroker","exp":\#(exp)"#
            let doubled = Self.jwt(claimsJSON: #"{"sub":"u-1001","sub":"u-2002",\#(claims)}"#)
            #expect(try await broker.call("GET", "/v1/subjects/u-2002/grants", token: doubled).status == 401)
            #expect(try await broker.call("GET", "/v1/subjects/u-1001/grants", token: doubled).status == 401)
            for odd in ["1e308", "\(exp).5", "true", "\"\(exp)\"", "-1"] {
                let token = Self.jwt(claimsJSON: #"{"sub":"u-1001","iss":"https://id.test","aud":"sharebroker","exp":\#(odd)}"#)
                let response = try await broker.call("GET", "/v1/subjects/u-1001/grants", token: token)
                #expect(response.status == 401, "exp \(odd): \(response.text)")
            }
        }
    }

    // MARK: 9. Zero and underflow: kept exactly or refused

    static let numberCases: [(literal: String, accepted: Bool)] = [
        ("-0", false), ("-0.0", false), ("-0e0", false), ("-0.000e5", false), ("0e0", true), ("0.0", true), ("0", true),
        ("1e-400", false), ("2e-308", false), ("1e-307", true), ("1.5", true), ("-1.5e3", true), ("1e308", true), ("1e309", false),
    ]

    @Test func numbersAreKeptExactlyOrRefused() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            for (literal, accepted) in Self.numberCases {
                let before = broker.simulator("huawei-push").requests().count
                let response = try await broker.call("POST", "/v1/proxy/huawei-push" + Self.sendPath,
                                                     headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                                     body: #"{"message":{"token":["T1"],"android":{"collapse_key":\#(literal)}}}"#)
                let requests = broker.simulator("huawei-push").requests()
                if accepted {
                    #expect(response.status == 200, "\(literal): \(response.text)")
                    #expect(requests.count == before + 1)
                    #expect(requests.last?.bodyText.contains(#""collapse_key":\#(literal)"#) == true,
                            "\(literal) left as \(requests.last?.bodyText ?? "-")")
                } else {
                    #expect(response.status == 400 && response.json["code"] as? String == "malformed_body", "\(literal): \(response.text)")
                    #expect(requests.count == before, "\(literal) was forwarded")
                }
            }
        }
    }

    // MARK: 1. Amplification

    @Test func manyTinyFieldsAreRefusedEarlyAndStayBounded() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]
            // Huawei takes 1–1,000 tokens (max_items): 1,001 is refused before any per-field work.
            let tokens = (0...1000).map { "\"T\($0)\"" }.joined(separator: ",")
            let overItems = try await broker.call("POST", "/v1/proxy/huawei-push" + Self.sendPath, headers: headers,
                                                  body: #"{"message":{"token":[\#(tokens)]}}"#)
            #expect(overItems.status == 413 && overItems.json["code"] as? String == "too_many_fields", "\(overItems.text.prefix(300))")
            // ~260,000 tiny fields in under 1 MiB: refused by the global cap while validating, quickly.
            let tiny = Array(repeating: "\"a\"", count: 260_000).joined(separator: ",")
            let started = ContinuousClock.now
            let flood = try await broker.call("POST", "/v1/proxy/huawei-push" + Self.sendPath, headers: headers,
                                              body: #"{"message":{"token":[\#(tiny)]}}"#)
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(flood.status == 413 && flood.json["code"] as? String == "too_many_fields", "\(flood.text.prefix(300))")
            #expect(flood.body.count < 2_000)
            // Many denied fields: the problem names the first 50 and counts them all.
            let undeclared = (0..<300).map { "\"x\($0)\":1" }.joined(separator: ",")
            let denied = try await broker.call("POST", "/v1/proxy/huawei-push" + Self.sendPath, headers: headers,
                                               body: #"{"message":{"token":["T1"]},\#(undeclared)}"#)
            #expect(denied.status == 403)
            #expect((denied.json["fields"] as? [[String: Any]])?.count == 50)
            #expect(denied.json["fields_total"] as? Int == 300)
            #expect(broker.simulator("huawei-push").requests().isEmpty)
            // Every record stays small: the refused shares logged no per-field entries.
            let records = try await broker.records()
            #expect(records.filter { $0.body.utf8.count > 64_000 }.count <= 1, "only the 300-field refusal lists its fields")
            #expect(records.allSatisfy { $0.body.utf8.count < 200_000 })
        }
    }

    // MARK: 2. Free text in non-personal fields

    @Test func freeTextInNonPersonalFieldsNeverRidesThrough() async throws {
        try await withBroker { broker in
            // The subject granted only the name (and the ID number, sensitive, with separate consent).
            try await broker.grant("u1", provider: "tencent-faceid", purpose: "essential.legal_obligation",
                                   categories: ["user.name", "user.government_id.national_identification_number"], separate: true)
            let faceID = [("Content-Type", "application/json"), ("X-Share-Subject", "u1"), ("X-TC-Action", "ImageRecognitionV2")]
            let extra = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: faceID, body: """
                {"IdCard":"11010519491231002X","Name":"Ann Li","ImageBase64":"aGVsbG8=","Extra":"IdCard=110101199003074514"}
                """)
            // The face was not granted either: the share is refused, and Extra is never what let it through.
            #expect(extra.status == 403, "\(extra.text)")
            #expect(broker.simulator("tencent-faceid").requests().isEmpty)
            // A hosted check (no face needed): Extra is personal and not granted, so it is stripped.
            let detect = try await broker.call("POST", "/v1/proxy/tencent-faceid/",
                                               headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1"),
                                                         ("X-TC-Action", "DetectAuth")], body: """
                {"RuleId":"1","IdCard":"11010519491231002X","Name":"Ann Li","Extra":"IdCard=110101199003074514"}
                """)
            #expect(detect.status == 200, "\(detect.text)")
            #expect(detect.headerValue("X-Share-Decision") == "redacted")
            let forwarded = try #require(broker.simulator("tencent-faceid").requests().last)
            #expect(!forwarded.contains("110101199003074514") && !forwarded.contains("Extra"), "\(forwarded.bodyText)")
            let idCheck = [("Content-Type", "application/json"), ("X-Share-Subject", "u1"), ("X-TC-Action", "IdCardVerification")]
            let language = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: idCheck + [("X-TC-Language", "Ann Li 13800138000")],
                                                 body: #"{"IdCard":"11010519491231002X","Name":"Ann Li"}"#)
            #expect(language.status == 403 && language.json["code"] as? String == "undeclared_value", "\(language.text)")
            let fine = try await broker.call("POST", "/v1/proxy/tencent-faceid/", headers: idCheck + [("X-TC-Language", "en-US")],
                                             body: #"{"IdCard":"11010519491231002X","Name":"Ann Li"}"#)
            #expect(fine.status == 200, "\(fine.text)")

            try await broker.grant("u1", provider: "amap-location", purpose: "functional.service", separate: true)
            let output = try await broker.call("GET", "/v1/proxy/amap-location/v3/geocode/regeo?location=116.481488,39.990464&output=116.48,39.99",
                                               headers: [("X-Share-Subject", "u1")])
            #expect(output.status == 403 && output.json["code"] as? String == "undeclared_value", "\(output.text)")

            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            for android in [#"{"notification":"Ann Li"}"#, #"{"a.b":"13800138000"}"#, #"{"ttl":"Ann Li"}"#] {
                let response = try await broker.call("POST", "/v1/proxy/huawei-push" + Self.sendPath,
                                                     headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u1")],
                                                     body: #"{"message":{"token":["T1"],"android":\#(android)}}"#)
                #expect(response.status == 403, "\(android): \(response.text)")
                #expect(["undeclared_field", "undeclared_value"].contains(response.json["code"] as? String ?? ""), "\(android)")
            }
            #expect(broker.simulator("huawei-push").requests().isEmpty)
        }
    }


    // MARK: 10. SDK decisions for form operations with embedded JSON

    @Test func anSDKDecisionForAFormReturnsTheFormAsTheProviderTakesIt() async throws {
        try await withBroker { broker in
            try await broker.grant("u1", provider: "oppo-push", purpose: Self.push, categories: ["user.device.push_token"])
            let message = #"{"target_type":2,"target_value":"REG-1","notification":{"title":"Hi Ann","style":1}}"#
            let response = try await broker.call("POST", "/v1/decisions", headers: [("Content-Type", "application/json")], body: """
                {"provider":"oppo-push","operation":"unicast","subject":"u1","fields":{"message":\(JSONText.quoted(message))}}
                """)
            #expect(response.status == 200, "\(response.text)")
            #expect(response.json["decision"] as? String == "redacted")
            let payload = try #require(response.json["payload"] as? [String: Any], "\(response.text)")
            #expect(payload.keys.sorted() == ["message"], "not flattened: \(payload.keys.sorted())")
            let inner = try #require(payload["message"] as? String)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(inner.utf8)) as? [String: Any])
            #expect(document["target_value"] as? String == "REG-1")
            #expect(inner.contains(#""target_type":2"#), "a number stays a number: \(inner)")
            #expect(!inner.contains("Hi Ann"), "the stripped title is gone: \(inner)")
            #expect(broker.simulator("oppo-push").requests().isEmpty)
        }
    }

}

/// Issue 14: a wrong method on a known route is 405 with `Allow` and a problem body, not 404.
@Suite struct MethodNotAllowedTests {
    @Test func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        try await withBroker { broker in
            let put = try await broker.call("PUT", "/v1/subjects/u1/grants", token: Broker.grantsToken)
            #expect(put.status == 405, "\(put.text)")
            #expect(put.headerValue("Allow") == "DELETE, GET, POST")
            #expect(put.json["code"] as? String == "method_not_allowed")
            #expect(put.headerValue("Content-Type") == "application/problem+json")
            let health = try await broker.call("POST", "/healthz", token: nil)
            #expect(health.status == 405 && health.headerValue("Allow") == "GET")
            let unknown = try await broker.call("GET", "/v1/nothing-here", token: nil)
            #expect(unknown.status == 404 && unknown.json["code"] as? String == "not_found")
        }
    }
}

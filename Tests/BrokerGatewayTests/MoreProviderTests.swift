import BrokerCurl
import BrokerTesting
import Foundation
import Testing

/// Issue 15: the providers added after the first six, each through the real server and its
/// simulator: an allowed share arrives intact with the broker's credential, a stripped field is
/// absent at the simulator, a blocked share sends nothing, and the simulator refuses a wrong
/// credential (so these tests can fail).
@Suite(.serialized) struct MoreProviderTests {
    static let push = "essential.service.notifications.push"

    /// The simulator's own answer to a request the broker did not make (a wrong credential).
    static func direct(_ broker: Broker, _ provider: String, _ method: String, _ path: String,
                       headers: [(String, String)] = [], body: String = "") async throws -> UpstreamResponse {
        try await broker.client.send(UpstreamRequest(method: method, url: broker.simulator(provider).baseURL + path,
                                                     headers: headers.map { HTTPHeaderLine($0.0, $0.1) }, body: Array(body.utf8)))
    }

    // MARK: xiaomi-push

    @Test func xiaomiFormArrivesWithTheBrokersKeyAndStripsTheText() async throws {
        try await withBroker { broker in
            let plain = "registration_id=REG-1%2CREG-2&restricted_package_name=com.example.app&pass_through=0&notify_type=-1"
                + "&title=Hi%20Ann&description=Your%20parcel&extra.notify_effect=1"
            let path = "/v1/proxy/xiaomi-push/v3/message/regid"
            let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")]
            try await broker.putSubject("u1")
            let blocked = try await broker.call("POST", path, headers: headers, body: plain)
            #expect(blocked.status == 403 && blocked.json["code"] as? String == "consent_missing", "\(blocked.text)")
            #expect(broker.simulator("xiaomi-push").requests().isEmpty, "a blocked share sends nothing")

            try await broker.grant("u1", provider: "xiaomi-push", purpose: Self.push)
            let allowed = try await broker.call("POST", path, headers: headers, body: plain)
            #expect(allowed.status == 200 && allowed.headerValue("X-Share-Decision") == "allowed", "\(allowed.text)")
            #expect(allowed.json["result"] as? String == "ok" && allowed.json["code"] as? Int == 0, "\(allowed.text)")
            let request = try #require(broker.simulator("xiaomi-push").requests().last)
            #expect(request.header("Authorization") == "key=" + broker.simulators.credentials.xiaomiAppSecret)
            #expect(request.formParameter("registration_id") == "REG-1,REG-2")
            #expect(request.formParameter("description") == "Your parcel")
            #expect(request.formParameter("extra.notify_effect") == "1")

            // The text is not covered: stripped before it leaves; Xiaomi then refuses a notification
            // without its description, and the answer says so.
            try await broker.grant("u2", provider: "xiaomi-push", purpose: Self.push, categories: ["user.device.push_token"])
            let stripped = try await broker.call("POST", path, headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                                         ("X-Share-Subject", "u2")], body: plain)
            #expect(stripped.headerValue("X-Share-Decision") == "redacted")
            let last = try #require(broker.simulator("xiaomi-push").requests().last)
            #expect(!last.contains("Ann") && !last.contains("parcel") && last.contains("REG-1"))
            #expect(stripped.json["result"] as? String == "error", "\(stripped.text)")

            let wrong = try await Self.direct(broker, "xiaomi-push", "POST", "/v3/message/regid",
                                              headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", "key=wrong")],
                                              body: plain)
            #expect(wrong.json["code"] as? Int == 21301, "a wrong app secret is refused: \(wrong.text)")
            let upper = try await Self.direct(broker, "xiaomi-push", "POST", "/v3/message/regid",
                                              headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                        ("Authorization", "Key=" + broker.simulators.credentials.xiaomiAppSecret)],
                                              body: plain)
            #expect(upper.json["code"] as? Int == 21301, "`key` must be lower case")
        }
    }

    // MARK: vivo-push

    @Test func vivoGetsTheAuthTokenItsSignedCallEarnsAndStripsTheText() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let body = #"{"appId":"\#(credentials.vivoAppID)","regId":"VIVO-REG-1","notifyType":1,"title":"Hi Ann","content":"Your parcel","skipType":1,"requestId":"r-1","clientCustomMap":{"order":"A-17"}}"#
            let path = "/v1/proxy/vivo-push/message/send"
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]
            #expect(try await broker.call("POST", path, headers: headers, body: body).status == 403)
            #expect(broker.simulator("vivo-push").requests().isEmpty && broker.simulator("vivo-push").tokenRequests().isEmpty)

            try await broker.grant("u1", provider: "vivo-push", purpose: Self.push)
            let allowed = try await broker.call("POST", path, headers: headers + [("authToken", "callers-own")], body: body)
            #expect(allowed.status == 200 && allowed.json["result"] as? Int == 0, "\(allowed.text)")
            let request = try #require(broker.simulator("vivo-push").requests().last)
            #expect(request.header("authToken") != nil && request.header("authToken") != "callers-own")
            #expect(try JSONSerialization.jsonObject(with: Data(request.body)) as? NSDictionary
                    == JSONSerialization.jsonObject(with: Data(body.utf8)) as? NSDictionary, "arrives intact")
            let auth = try #require(broker.simulator("vivo-push").tokenRequests().first)
            #expect(String(decoding: auth.body, as: UTF8.self).contains(#""appKey":"\#(credentials.vivoAppKey)""#))
            #expect(!String(decoding: auth.body, as: UTF8.self).contains(credentials.vivoAppSecret), "the secret is only signed")

            try await broker.grant("u2", provider: "vivo-push", purpose: Self.push, categories: ["user.device.push_token"])
            let stripped = try await broker.call("POST", path, headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u2")],
                                                 body: body)
            #expect(stripped.headerValue("X-Share-Decision") == "redacted")
            let last = try #require(broker.simulator("vivo-push").requests().last)
            #expect(!last.contains("Ann") && !last.contains("A-17") && last.contains("VIVO-REG-1"))
            #expect(stripped.json["result"] as? Int == 10055, "vivo refuses a notification without its text: \(stripped.text)")

            let forged = try await Self.direct(broker, "vivo-push", "POST", "/message/auth", headers: [("Content-Type", "application/json")],
                                               body: #"{"appId":"\#(credentials.vivoAppID)","appKey":"\#(credentials.vivoAppKey)","timestamp":\#(Int64(Date().timeIntervalSince1970 * 1000)),"sign":"00000000000000000000000000000000"}"#)
            #expect(forged.json["result"] as? Int == 10203, "a wrong sign earns no token: \(forged.text)")
            let noToken = try await Self.direct(broker, "vivo-push", "POST", "/message/send",
                                                headers: [("Content-Type", "application/json"), ("authToken", "made-up")], body: body)
            #expect(noToken.json["result"] as? Int == 10000)
        }
    }

    // MARK: google-maps

    @Test func googleMapsNeedsSeparateAndCrossBorderConsentAndGetsTheBrokersKey() async throws {
        try await withBroker { broker in
            let path = "/v1/proxy/google-maps/maps/api/geocode/json?latlng=39.990464,116.481488&key=AIzaCallersOwnKey&language=zh-CN"
            let headers = [("X-Share-Subject", "u1")]
            try await broker.grant("u1", provider: "google-maps", purpose: "functional.service", separate: true)
            let domestic = try await broker.call("GET", path, headers: headers)
            #expect(domestic.status == 403 && domestic.json["code"] as? String == "cross_border_consent_required", "\(domestic.text)")
            #expect(broker.simulator("google-maps").requests().isEmpty)

            try await broker.grant("u1", provider: "google-maps", purpose: "functional.service", separate: true, crossBorder: true)
            let allowed = try await broker.call("GET", path, headers: headers)
            #expect(allowed.status == 200 && allowed.json["status"] as? String == "OK", "\(allowed.text)")
            #expect(allowed.headerValue("Content-Type") == "application/json; charset=UTF-8")
            let request = try #require(broker.simulator("google-maps").requests().last)
            #expect(request.queryParameter("latlng") == "39.990464,116.481488" && request.queryParameter("language") == "zh-CN")
            #expect(request.queryParameter("key") == broker.simulators.credentials.googleMapsKey)
            #expect(!request.contains("AIzaCallersOwnKey"), "the caller's key is dropped")

            let undeclared = try await broker.call("GET", path + "&address=1600+Amphitheatre", headers: headers)
            #expect(undeclared.status == 400 || undeclared.status == 403, "an undeclared parameter is blocked: \(undeclared.text)")
            #expect(broker.simulator("google-maps").requests().count == 1)

            let wrong = try await Self.direct(broker, "google-maps", "GET", "/maps/api/geocode/json?latlng=1,2&key=AIzaWrong")
            #expect(wrong.json["status"] as? String == "REQUEST_DENIED", "\(wrong.text)")
        }
    }

    // MARK: tencent-lbs

    @Test func tencentLBSIsSignedByTheBrokerLatitudeFirst() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let path = "/v1/proxy/tencent-lbs/ws/geocoder/v1?location=39.990464,116.481488&key=CALLER-KEY&sig=callers&get_poi=0"
            let headers = [("X-Share-Subject", "u1")]
            try await broker.grant("u1", provider: "tencent-lbs", purpose: "functional.service", categories: ["user.device.ip_address"])
            let blocked = try await broker.call("GET", path, headers: headers)
            #expect(blocked.status == 403 && blocked.json["code"] as? String == "consent_missing", "\(blocked.text)")
            #expect(broker.simulator("tencent-lbs").requests().isEmpty)

            try await broker.grant("u1", provider: "tencent-lbs", purpose: "functional.service", separate: true)
            let allowed = try await broker.call("GET", path, headers: headers)
            #expect(allowed.status == 200 && allowed.json["status"] as? Int == 0, "\(allowed.text)")
            let request = try #require(broker.simulator("tencent-lbs").requests().last)
            #expect(request.queryParameter("key") == credentials.tencentLBSKey)
            #expect(request.queryParameter("location") == "39.990464,116.481488")
            #expect(!request.contains("CALLER-KEY") && !request.contains("callers"), "the caller's key and sig are dropped")
            let location = (allowed.json["result"] as? [String: Any])?["location"] as? [String: Any]
            #expect(location?["lat"] as? Double == 39.990464, "latitude first: \(allowed.text)")

            let ip = try await broker.call("GET", "/v1/proxy/tencent-lbs/ws/location/v1/ip?ip=114.247.50.2", headers: headers)
            #expect(ip.status == 200 && ip.json["status"] as? Int == 0, "\(ip.text)")

            // The simulator checks the signature: the same request with a sig over other parameters is refused.
            let query = request.query ?? ""
            let forged = query.replacingOccurrences(of: "get_poi=0", with: "get_poi=1")
            let refused = try await Self.direct(broker, "tencent-lbs", "GET", "/ws/geocoder/v1?" + forged)
            #expect(refused.json["status"] as? Int == 111, "\(refused.text)")
        }
    }

    // MARK: fcm

    @Test func fcmGetsAnAccessTokenForItsSignedAssertionAndStripsTheText() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let body = #"{"message":{"token":"FCM-TOKEN-1","notification":{"title":"Hi Ann","body":"Your parcel"},"data":{"order":"A-17"},"android":{"priority":"HIGH"}},"validate_only":false}"#
            let path = "/v1/proxy/fcm/v1/projects/\(credentials.fcmProjectID)/messages:send"
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1")]
            try await broker.grant("u1", provider: "fcm", purpose: Self.push)
            let domestic = try await broker.call("POST", path, headers: headers, body: body)
            #expect(domestic.status == 403 && domestic.json["code"] as? String == "cross_border_consent_required", "\(domestic.text)")
            #expect(broker.simulator("fcm").requests().isEmpty && broker.simulator("fcm").tokenRequests().isEmpty)

            try await broker.grant("u1", provider: "fcm", purpose: Self.push, crossBorder: true)
            let allowed = try await broker.call("POST", path, headers: headers, body: body)
            #expect(allowed.status == 200, "\(allowed.text)")
            #expect((allowed.json["name"] as? String)?.hasPrefix("projects/\(credentials.fcmProjectID)/messages/") == true)
            let request = try #require(broker.simulator("fcm").requests().last)
            #expect(request.header("Authorization")?.hasPrefix("Bearer ya29.") == true, "the token the assertion earned")
            #expect(try JSONSerialization.jsonObject(with: Data(request.body)) as? NSDictionary
                    == JSONSerialization.jsonObject(with: Data(body.utf8)) as? NSDictionary, "arrives intact")
            let exchange = try #require(broker.simulator("fcm").tokenRequests().first)
            #expect(exchange.formParameter("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer")
            #expect(!exchange.bodyText.contains("PRIVATE KEY"), "the key only signs")

            try await broker.grant("u2", provider: "fcm", purpose: Self.push, categories: ["user.device.push_token"], crossBorder: true)
            let stripped = try await broker.call("POST", path, headers: [("Content-Type", "application/json"), ("X-Share-Subject", "u2")],
                                                 body: body)
            #expect(stripped.status == 200 && stripped.headerValue("X-Share-Decision") == "redacted", "\(stripped.text)")
            let last = try #require(broker.simulator("fcm").requests().last)
            #expect(!last.contains("Ann") && !last.contains("A-17") && last.contains("FCM-TOKEN-1"))
            #expect(broker.simulator("fcm").tokenRequests().count == 1, "one token for both shares")

            let other = try await broker.call("POST", "/v1/proxy/fcm/v1/projects/someone-else/messages:send", headers: headers, body: body)
            #expect(other.status == 403 && other.json["error"] != nil, "another project is refused by FCM: \(other.text)")
            let noToken = try await Self.direct(broker, "fcm", "POST", "/v1/projects/\(credentials.fcmProjectID)/messages:send",
                                                headers: [("Content-Type", "application/json"), ("Authorization", "Bearer ya29.made-up")],
                                                body: body)
            #expect(noToken.status == 401)
            // An assertion the simulator cannot verify with the service account's key earns nothing.
            let forged = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
            let refused = try await Self.direct(broker, "fcm", "POST", "/token", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                body: "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + forged)
            #expect(refused.status == 400 && refused.json["error"] as? String == "invalid_grant", "\(refused.text)")
        }
    }

    // MARK: alibaba-cloudauth

    @Test func alibabaId2MetaVerifyIsSignedACS3AndNeedsSeparateConsent() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let path = "/v1/proxy/alibaba-cloudauth/?ParamType=normal&UserName=%E5%BC%A0%E4%B8%89&IdentifyNum=11010519491231002X"
            let headers = [("X-Share-Subject", "u1"), ("x-acs-action", "Id2MetaVerify"), ("x-acs-date", "2001-01-01T00:00:00Z")]
            try await broker.grant("u1", provider: "alibaba-cloudauth", purpose: "essential.legal_obligation")
            let blocked = try await broker.call("POST", path, headers: headers)
            #expect(blocked.status == 403 && blocked.json["code"] as? String == "separate_consent_required", "\(blocked.text)")
            #expect(broker.simulator("alibaba-cloudauth").requests().isEmpty)

            try await broker.grant("u1", provider: "alibaba-cloudauth", purpose: "essential.legal_obligation", separate: true)
            let allowed = try await broker.call("POST", path, headers: headers)
            #expect(allowed.status == 200 && allowed.json["Code"] as? String == "200", "\(allowed.text)")
            #expect((allowed.json["ResultObject"] as? [String: Any])?["BizCode"] as? String == "1")
            let request = try #require(broker.simulator("alibaba-cloudauth").requests().last)
            #expect(request.header("Authorization")?.hasPrefix("ACS3-HMAC-SHA256 Credential=\(credentials.alibabaAccessKeyID),") == true)
            #expect(request.header("x-acs-date") != "2001-01-01T00:00:00Z", "the caller's date is dropped, the broker's signed")
            #expect(request.queryParameter("UserName") == "张三" && request.queryParameter("IdentifyNum") == "11010519491231002X")

            // The simulator checks the signature and the nonce: the same request again is a replay.
            let replay = try await broker.client.send(UpstreamRequest(
                method: "POST", url: broker.simulator("alibaba-cloudauth").baseURL + "/?" + (request.query ?? ""),
                headers: request.headers.filter { $0.name.lowercased() != "host" }.map { HTTPHeaderLine($0.name, $0.value) }))
            #expect(replay.json["Code"] as? String == "SignatureNonceUsed" || replay.json["Code"] as? String == "SignatureDoesNotMatch",
                    "\(replay.text)")
            let tampered = try await broker.client.send(UpstreamRequest(
                method: "POST", url: broker.simulator("alibaba-cloudauth").baseURL + "/?" + (request.query ?? "").replacingOccurrences(of: "ParamType=normal", with: "ParamType=md5"),
                headers: request.headers.filter { !["host", "x-acs-signature-nonce"].contains($0.name.lowercased()) }.map { HTTPHeaderLine($0.name, $0.value) }
                    + [HTTPHeaderLine("x-acs-signature-nonce", "fresh-nonce")]))
            #expect(tampered.json["Code"] as? String == "SignatureDoesNotMatch", "\(tampered.text)")
        }
    }

    // MARK: apple-login and google-login: the exchange's tokens kept sealed, revoked at the provider

    static let login = "essential.service.authentication"

    @Test func appleExchangeWithTheBrokersClientSecretAndARevokeTheSimulatorAcknowledges() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let form = "grant_type=authorization_code&code=APPLE-CODE-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
                + "&client_id=callers-own&client_secret=callers-own-jwt"
            let blocked = try await broker.call("POST", "/v1/proxy/apple-login/auth/token",
                                                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")],
                                                body: form)
            #expect(blocked.status == 403 && broker.simulator("apple-login").requests().isEmpty, "no grant: nothing is sent")
            try await broker.grant("u1", provider: "apple-login", purpose: Self.login, crossBorder: true)
            let exchange = try await broker.call("POST", "/v1/proxy/apple-login/auth/token",
                                                 headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")],
                                                 body: form)
            #expect(exchange.status == 200, "\(exchange.text)")
            let refresh = try #require(exchange.json["refresh_token"] as? String)
            let request = try #require(broker.simulator("apple-login").requests().last)
            #expect(request.formParameter("client_id") == credentials.appleClientID && !request.contains("callers-own"))
            #expect(request.formParameter("client_secret")?.split(separator: ".").count == 3, "an ES256 JWT")
            let records = try await broker.records()
            #expect(!records.contains { $0.body.contains(refresh) }, "the refresh token is never in the log")

            let revoke = try await broker.call("DELETE", "/v1/subjects/u1/grants?provider=apple-login", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String, "\(revoke.text)")
            _ = try await RevocationPropagationTests().waitFor(broker, id, provider: "apple-login", status: "acknowledged")
            #expect(broker.simulator("apple-login").revokedTokens() == [refresh], "Apple revoked exactly the exchange's refresh token")
            let call = try #require(broker.simulator("apple-login").requests().last { $0.path == "/auth/revoke" })
            #expect(call.formParameter("token_type_hint") == "refresh_token" && call.formParameter("client_id") == credentials.appleClientID)

            let forged = try await Self.direct(broker, "apple-login", "POST", "/auth/revoke",
                                               headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                               body: "client_id=\(credentials.appleClientID)&client_secret=e30.e30.c2ln&token=\(refresh)")
            #expect(forged.status == 400 && forged.json["error"] as? String == "invalid_client", "\(forged.text)")
        }
    }

    @Test func googleExchangeWithTheBrokersClientAndARevokeTheSimulatorAcknowledges() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let form = "grant_type=authorization_code&code=GOOGLE-CODE-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&client_secret=stolen"
            try await broker.grant("u1", provider: "google-login", purpose: Self.login)
            let domestic = try await broker.call("POST", "/v1/proxy/google-login/token",
                                                 headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")],
                                                 body: form)
            #expect(domestic.status == 403 && domestic.json["code"] as? String == "cross_border_consent_required")
            #expect(broker.simulator("google-login").requests().isEmpty, "a blocked share sends nothing")
            // Google sign-in is disclosed from the privacy policy's 2025-07 on: a grant under 2025-01 is outdated.
            try await broker.grant("u1", provider: "google-login", purpose: Self.login, crossBorder: true)
            let outdated = try await broker.call("POST", "/v1/proxy/google-login/token",
                                                 headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")],
                                                 body: form)
            #expect(outdated.status == 403 && outdated.json["code"] as? String == "consent_outdated", "\(outdated.text)")
            #expect(broker.simulator("google-login").requests().isEmpty, "a blocked share sends nothing")
            try await broker.grant("u1", provider: "google-login", purpose: Self.login, crossBorder: true, version: "2025-07")
            let exchange = try await broker.call("POST", "/v1/proxy/google-login/token",
                                                 headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Share-Subject", "u1")],
                                                 body: form)
            #expect(exchange.status == 200, "\(exchange.text)")
            let access = try #require(exchange.json["access_token"] as? String)
            let request = try #require(broker.simulator("google-login").requests().last)
            #expect(request.formParameter("client_id") == credentials.googleClientID)
            #expect(request.formParameter("client_secret") == credentials.googleClientSecret && !request.contains("stolen"))

            let revoke = try await broker.call("DELETE", "/v1/subjects/u1/grants?provider=google-login", token: Broker.grantsToken)
            let id = try #require(revoke.json["revocation_id"] as? String, "\(revoke.text)")
            _ = try await RevocationPropagationTests().waitFor(broker, id, provider: "google-login", status: "acknowledged")
            #expect(broker.simulator("google-login").revokedTokens() == [access], "the refresh token was revoked, and its access token with it")
            let call = try #require(broker.simulator("google-login").requests().last { $0.path == "/revoke" })
            #expect(call.formParameter("token") == exchange.json["refresh_token"] as? String)
            #expect(call.formParameter("client_secret") == nil, "the revoke carries the token only")

            let again = try await Self.direct(broker, "google-login", "POST", "/revoke",
                                              headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=\(access)")
            #expect(again.status == 400 && again.json["error"] as? String == "invalid_token", "a revoked token stays revoked")
        }
    }

    // MARK: apns

    @Test func apnsOverHTTP2WithTheBrokersProviderTokenAndThePushTokenInThePath() async throws {
        try await withBroker { broker in
            let credentials = broker.simulators.credentials
            let device = String(repeating: "ab12", count: 16)
            let path = "/v1/proxy/apns/3/device/\(device)"
            let body = #"{"aps":{"alert":{"title":"Hi Ann","body":"Your parcel"},"badge":1,"sound":"default"}}"#
            let headers = [("Content-Type", "application/json"), ("X-Share-Subject", "u1"), ("apns-topic", credentials.apnsTopic),
                           ("apns-push-type", "alert"), ("apns-priority", "10")]
            #expect(try await broker.call("POST", path, headers: headers, body: body).status == 403)
            #expect(broker.simulator("apns").requests().isEmpty, "a blocked share sends nothing")

            try await broker.grant("u1", provider: "apns", purpose: Self.push, crossBorder: true)
            let allowed = try await broker.call("POST", path, headers: headers, body: body)
            #expect(allowed.status == 200, "HTTP/2 or nothing: \(allowed.text)")
            #expect(allowed.headerValue("apns-id") != nil, "the provider's apns-id is passed back")
            let request = try #require(broker.simulator("apns").requests().last)
            #expect(request.path == "/3/device/\(device)")
            #expect(request.header("authorization")?.hasPrefix("bearer ") == true)
            #expect(try JSONSerialization.jsonObject(with: Data(request.body)) as? NSDictionary
                    == JSONSerialization.jsonObject(with: Data(body.utf8)) as? NSDictionary, "arrives intact")

            // The text is not covered: stripped (the alert arrives empty).
            try await broker.grant("u2", provider: "apns", purpose: Self.push, categories: ["user.device.push_token"], crossBorder: true)
            let stripped = try await broker.call("POST", path, headers: headers.map { $0.0 == "X-Share-Subject" ? ($0.0, "u2") : $0 },
                                                 body: body)
            #expect(stripped.headerValue("X-Share-Decision") == "redacted")
            #expect(!(broker.simulator("apns").requests().last?.contains("Ann") ?? true))
            #expect(stripped.status == 200, "\(stripped.text)")

            broker.simulator("apns").apnsUnregister(device)
            let gone = try await broker.call("POST", path, headers: headers, body: body)
            #expect(gone.status == 410 && gone.json["reason"] as? String == "Unregistered", "\(gone.text)")

            // The simulator checks the provider token, and speaks HTTP/2 only.
            let forged = try await broker.client.send(UpstreamRequest(
                method: "POST", url: broker.simulator("apns").baseURL + "/3/device/\(device)",
                headers: [HTTPHeaderLine("authorization", "bearer e30.e30.c2ln"), HTTPHeaderLine("apns-topic", credentials.apnsTopic)],
                body: Array(body.utf8), http2Only: true))
            #expect(forged.status == 403 && forged.json["reason"] as? String == "InvalidProviderToken", "\(forged.text)")
            await #expect(throws: (any Error).self, "an HTTP/1.1 client gets no answer") {
                _ = try await broker.client.send(UpstreamRequest(method: "POST", url: broker.simulator("apns").baseURL + "/3/device/\(device)",
                                                                 body: Array(body.utf8)))
            }
        }
    }
}

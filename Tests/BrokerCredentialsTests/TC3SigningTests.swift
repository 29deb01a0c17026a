import BrokerCore
import BrokerCurl
import Foundation
import Testing
@testable import BrokerCredentials

/// Tencent Cloud API v3 (TC3-HMAC-SHA256) signing.
///
/// The vector is Tencent's documented worked example ("Signature v3", e.g.
/// tencentcloud.com/document/product/382/40467 and the same page for every
/// product): CVM DescribeInstances, SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE,
/// timestamp 1551113065, whose intermediate values and final signature the page
/// prints. The page masks the SecretId; the signature does not depend on it.
@Suite("tc3_hmac_sha256")
struct TC3SigningTests {
    static let secretID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
    static let secretKey = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
    static let payload = #"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#

    static func spec(service: String, version: String, region: String?) -> CredentialSpec {
        var parameters: [String: CredentialSpec.Value] = [
            "secret_id": .secret(.env("TC_ID")), "secret_key": .secret(.env("TC_KEY")),
            "service": .text(service), "version": .text(version)]
        if let region { parameters["region"] = .text(region) }
        return CredentialSpec(kind: .tc3HMACSHA256, parameters: parameters)
    }
    static let values = ["TC_ID": secretID, "TC_KEY": secretKey]

    @Test("documented example, step by step")
    func documentedSteps() {
        // 1. Hashed payload and canonical request.
        let canonical = TC3Signer.canonicalRequest(method: "POST", path: "/", query: "",
                                                   contentType: "application/json; charset=utf-8",
                                                   host: "cvm.tencentcloudapi.com", body: Array(Self.payload.utf8))
        #expect(canonical == """
            POST
            /

            content-type:application/json; charset=utf-8
            host:cvm.tencentcloudapi.com

            content-type;host
            35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064
            """)
        // 2. String to sign (its last line is sha256 of the canonical request).
        let toSign = TC3Signer.stringToSign(timestamp: 1_551_113_065, scope: "2019-02-25/cvm/tc3_request",
                                            canonicalRequest: canonical)
        #expect(toSign == """
            TC3-HMAC-SHA256
            1551113065
            2019-02-25/cvm/tc3_request
            5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031
            """)
        // 3. Key chain and signature.
        let signature = TC3Signer.signingKey(dateKey: Array(("TC3" + Self.secretKey).utf8), date: "2019-02-25",
                                             service: "cvm", toSign: toSign)
        #expect(hex(signature) == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
    }

    @Test("documented example through authorize(): headers and Authorization as the page shows")
    func documentedThroughInjector() async throws {
        let injector = try CredentialInjector(
            spec: Self.spec(service: "cvm", version: "2017-03-12", region: "ap-guangzhou"), secrets: secrets(Self.values),
            client: NoNetworkClient(), now: { Date(timeIntervalSince1970: 1_551_113_065) }, logger: testLogger())
        var request = OutboundRequest(method: "POST", upstream: UpstreamURL("https://cvm.tencentcloudapi.com")!, path: "/",
                                      headers: [HTTPHeaderLine("Content-Type", "application/json; charset=utf-8"),
                                                HTTPHeaderLine("X-TC-Action", "DescribeInstances")],
                                      body: Array(Self.payload.utf8), bodyFormat: .json)
        try await injector.authorize(&request, credentialFields: [])
        #expect(request.headerValue("Authorization") == "TC3-HMAC-SHA256 Credential=\(Self.secretID)/2019-02-25/cvm/tc3_request, "
                + "SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
        #expect(request.headerValue("X-TC-Timestamp") == "1551113065")
        #expect(request.headerValue("X-TC-Version") == "2017-03-12")
        #expect(request.headerValue("X-TC-Region") == "ap-guangzhou")
        #expect(request.headerValue("X-TC-Action") == "DescribeInstances")
        #expect(request.url == "https://cvm.tencentcloudapi.com/")
    }

    @Test("UTC date of the timestamp (not local time), across days, leap years and the epoch")
    func utcDates() {
        #expect(TC3Signer.utcDate(1_551_113_065) == "2019-02-25")   // 00:44 next day in UTC+8
        #expect(TC3Signer.utcDate(0) == "1970-01-01")
        #expect(TC3Signer.utcDate(1_709_164_800) == "2024-02-29")
        #expect(TC3Signer.utcDate(1_709_251_199) == "2024-02-29")
        #expect(TC3Signer.utcDate(1_709_251_200) == "2024-03-01")
        #expect(TC3Signer.utcDate(951_782_400) == "2000-02-29")
        #expect(TC3Signer.utcDate(-1) == "1969-12-31")
    }

    @Test("round trip: the server recomputes the signature from the wire (non-default port, POST and GET)")
    func roundTrip() async throws {
        try await withProviderServer { port, state in
            await state.setTC3SecretKey(Self.secretKey)
            let client = try makeClient()
            let clock = TestClock(Date())
            let injector = try CredentialInjector(spec: Self.spec(service: "faceid", version: "2018-03-01", region: nil),
                                                  secrets: secrets(Self.values), client: client, now: clock.function,
                                                  logger: testLogger())
            // POST with a JSON body whose Content-Type has upper case and a charset.
            var post = OutboundRequest(method: "POST", upstream: loopback(port), path: "/tc3",
                                       headers: [HTTPHeaderLine("Content-Type", "Application/JSON; charset=UTF-8"),
                                                 HTTPHeaderLine("X-TC-Action", "IdCardVerification")],
                                       body: Array(#"{"IdCard":"11010519491231002X","Name":"张三"}"#.utf8), bodyFormat: .json)
            try await injector.authorize(&post, credentialFields: [])
            #expect(post.headerValue("X-TC-Region") == nil)
            let accepted = try await client.send(post.upstreamRequest())
            #expect(accepted.status == 200)

            // GET with an encoded query and no Content-Type: one is added and signed.
            var get = OutboundRequest(method: "GET", upstream: loopback(port), path: "/tc3", query: "Limit=10&Name=a%20b")
            try await injector.authorize(&get, credentialFields: [])
            #expect(get.headerValue("Content-Type") == "application/x-www-form-urlencoded")
            #expect(try await client.send(get.upstreamRequest()).status == 200)

            // Tampering after signing is caught by the server (the check can fail).
            var tampered = OutboundRequest(method: "POST", upstream: loopback(port), path: "/tc3",
                                           headers: [HTTPHeaderLine("Content-Type", "application/json")],
                                           body: Array(#"{"Name":"a"}"#.utf8), bodyFormat: .json)
            try await injector.authorize(&tampered, credentialFields: [])
            tampered.body = Array(#"{"Name":"b"}"#.utf8)
            #expect(try await client.send(tampered.upstreamRequest()).status == 401)

            #expect(await state.tc3Results == [true, true, false])
            await client.shutdown()
        }
    }
}

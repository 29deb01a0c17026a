@testable import BrokerTesting
import Testing

/// Tencent Cloud's "Signature v3" worked example (API 3.0 docs, DescribeInstances
/// on cvm): every intermediate value the document prints is checked.
@Suite struct TC3SignatureTests {
    static let payload = #"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#
    static let headers = [(name: "Content-Type", value: "application/json; charset=utf-8"),
                          (name: "Host", value: "cvm.tencentcloudapi.com")]

    @Test func canonicalRequestMatchesTheDocument() {
        let canonical = TC3Signature.canonicalRequest(method: "POST", headers: Self.headers, body: Array(Self.payload.utf8))
        #expect(canonical == """
            POST
            /

            content-type:application/json; charset=utf-8
            host:cvm.tencentcloudapi.com

            content-type;host
            35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064
            """)
        #expect(TC3Signature.sha256Hex(Array(canonical.utf8)) == "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    }

    @Test func stringToSignAndSignatureMatchTheDocument() {
        let canonical = TC3Signature.canonicalRequest(method: "POST", headers: Self.headers, body: Array(Self.payload.utf8))
        let toSign = TC3Signature.stringToSign(timestamp: 1_551_113_065, service: "cvm", canonicalRequest: canonical)
        #expect(toSign == """
            TC3-HMAC-SHA256
            1551113065
            2019-02-25/cvm/tc3_request
            5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031
            """)
        let signature = TC3Signature.signature(secretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", date: "2019-02-25",
                                               service: "cvm", stringToSign: toSign)
        #expect(signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
    }

    @Test func authorizationHeaderMatchesTheDocument() {
        let header = TC3Signature.authorization(
            secretID: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            service: "cvm", timestamp: 1_551_113_065, headers: Self.headers, body: Array(Self.payload.utf8))
        #expect(header == "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
            + "SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
    }

    @Test func dateIsTheUTCDateOfTheTimestamp() {
        // 2019-02-26 00:44:25 in UTC+8 is still 2019-02-25 in UTC (the document's warning).
        #expect(TC3Signature.utcDate(1_551_113_065) == "2019-02-25")
        #expect(TC3Signature.utcDate(0) == "1970-01-01")
        #expect(TC3Signature.utcDate(1_709_164_800) == "2024-02-29")
    }

    @Test func authorizationParsing() {
        let parsed = TencentFaceIDBehavior.Authorization.parse(
            "TC3-HMAC-SHA256 Credential=AKIDx/2024-01-02/faceid/tc3_request, SignedHeaders=content-type;host, Signature=ab")
        #expect(parsed == .init(algorithm: "TC3-HMAC-SHA256", secretID: "AKIDx", date: "2024-01-02", service: "faceid",
                                terminator: "tc3_request", signedHeaders: ["content-type", "host"], signature: "ab"))
        #expect(TencentFaceIDBehavior.Authorization.parse("Bearer x") == nil)
        #expect(TencentFaceIDBehavior.isValidIDNumber("11010519491231002X"))
        #expect(TencentFaceIDBehavior.isValidIDNumber("110105194912310021") == false)
        #expect(TencentFaceIDBehavior.isValidIDNumber("1101051949123100") == false)
    }
}

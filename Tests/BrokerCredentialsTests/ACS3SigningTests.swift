import BrokerCore
import BrokerCurl
import Foundation
import Testing
@testable import BrokerCredentials

/// Alibaba Cloud API signature V3 (ACS3-HMAC-SHA256), against the two worked examples of Alibaba
/// Cloud's "V3 request structure and signature" documentation (alibabacloud.com/help/en/sdk/
/// product-overview/v3-request-structure-and-signature and help.aliyun.com's Chinese page): ECS
/// RunInstances, version 2014-05-26, host ecs.cn-shanghai.aliyuncs.com, query ImageId=…&RegionId=
/// cn-shanghai, an empty POST body, AccessKeySecret `YourAccessKeySecret`.
@Suite struct ACS3SigningTests {
    static func signed(date: String, nonce: String) -> OutboundRequest {
        var request = OutboundRequest(method: "POST", upstream: UpstreamURL("https://ecs.cn-shanghai.aliyuncs.com")!, path: "/",
                                      query: "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
                                      headers: [HTTPHeaderLine("x-acs-action", "RunInstances")], body: [], bodyFormat: .none)
        let signer = ACS3Signer(accessKeyID: "YourAccessKeyId", accessKeySecret: "YourAccessKeySecret", version: "2014-05-26")
        signer.sign(&request, now: ISO8601DateFormatter().date(from: date)!, nonce: nonce)
        return request
    }

    @Test func alibabasWorkedExamples() {
        for (date, nonce, signature) in [
            ("2023-10-26T10:22:32Z", "3156853299f313e23d1673dc12e1703d", "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"),
            ("2023-10-26T09:01:01Z", "d410180a5abf7fe235dd9b74aca91fc0", "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"),
        ] {
            let request = Self.signed(date: date, nonce: nonce)
            #expect(request.headerValue("Authorization") == "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
                    + "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=" + signature)
            #expect(request.headerValue("x-acs-date") == date)
            #expect(request.headerValue("x-acs-content-sha256") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        }
    }

    @Test func theCanonicalQueryIsSortedAndRFC3986Encoded() {
        #expect(ACS3Signer.canonicalQuery("b=2&a=x+y&c=%E4%B8%AD*") == "a=x%20y&b=2&c=%E4%B8%AD%2A")
    }
}

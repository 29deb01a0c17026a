import BrokerCore
import Foundation
import Testing
@testable import BrokerCredentials

/// `md5_query_sig` (Tencent Location Service's SN check), against Tencent's documented worked
/// example (lbs.qq.com "WebServiceAPI Key配置中签名校验如何使用"): reverse geocoding with key
/// 5Q5BZ-5EVWJ-SN5F3-K6QBZ-B3FAO-RVBWM, location 28.7033487,115.8660847 and SK
/// SWvT26ypwq5Nwb5RvS8cLi6NSoH8HlJX signs as 90da272bfa19122547298e2b0bcc0e50.
@Suite struct MD5QuerySignatureTests {
    static let key = "5Q5BZ-5EVWJ-SN5F3-K6QBZ-B3FAO-RVBWM"
    static let secretKey = "SWvT26ypwq5Nwb5RvS8cLi6NSoH8HlJX"

    @Test func tencentsWorkedExample() {
        let signature = MD5QuerySignature.signature(path: "/ws/geocoder/v1",
                                                    pairs: [("location", "28.7033487,115.8660847"), ("key", Self.key)],
                                                    secretKey: Self.secretKey)
        #expect(signature == "90da272bfa19122547298e2b0bcc0e50")
    }

    @Test func theInjectorAddsTheKeyThenSignsTheEncodedQueryByItsRawValues() async throws {
        let spec = CredentialSpec(kind: .md5QuerySig, parameters: [
            "params": .table(["key": .secret(.env("LBS_KEY"))]), "secret_key": .secret(.env("LBS_SK")),
        ])
        let injector = try CredentialInjector(spec: spec, secrets: secrets(["LBS_KEY": Self.key, "LBS_SK": Self.secretKey]),
                                              client: NoNetworkClient(), logger: .init(label: "t"))
        var request = OutboundRequest(method: "GET", upstream: UpstreamURL("https://apis.map.qq.com")!, path: "/ws/geocoder/v1",
                                      query: "location=28.7033487%2C115.8660847", headers: [], body: [], bodyFormat: .none)
        try await injector.authorize(&request, credentialFields: [field(.query, "key")])
        #expect(request.query == "location=28.7033487%2C115.8660847&key=\(Self.key)&sig=90da272bfa19122547298e2b0bcc0e50")
    }
}

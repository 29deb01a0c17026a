import BrokerTLS
import Foundation
import Testing
import X509

/// Issue 23 §6: the broker's CA carries critical name constraints permitting only the adapters'
/// hosts, so even a client that trusts it widely accepts nothing it signs for another name.
@Suite struct InterceptionCAConstraintTests {
    @Test func theCAPermitsOnlyTheAdapterHostsAndNoAddress() throws {
        let ca = try InterceptionCA.generate(permittedHosts: ["Push-API.cloud.huawei.com", "api.weixin.qq.com", "api.weixin.qq.com"])
        let constraints = try #require(try ca.certificate.extensions.nameConstraints)
        #expect(ca.certificate.extensions[oid: .X509ExtensionID.nameConstraints]?.critical == true)
        #expect(ca.permittedHosts == ["api.weixin.qq.com", "push-api.cloud.huawei.com"])
        #expect(constraints.excludedSubtrees.count == 2, "every IPv4 and IPv6 address is excluded")
        #expect(ca.permits("push-api.cloud.huawei.com") && ca.permits("API.WEIXIN.QQ.COM"))
        #expect(!ca.permits("example.org") && !ca.permits("evilapi.weixin.qq.com") && !ca.permits("weixin.qq.com"))

        // A host a reload added after the CA was made gets no certificate (clients would refuse it).
        let tunnels = TunnelCertificates(ca: ca)
        #expect(throws: TLSSetupError.self) { try tunnels.context(for: "fcm.googleapis.com") }
        #expect(try tunnels.certificate(for: "api.weixin.qq.com").issuer == ca.certificate.subject)

        // The constraints survive a round trip through PEM (what .sharebroker/tls-ca.pem holds).
        let again = try InterceptionCA(certificatePEM: try ca.certificatePEM, keyPEM: ca.keyPEM)
        #expect(again.permittedHosts == ca.permittedHosts)
        #expect(try InterceptionCA.generate().permittedHosts == nil, "without hosts: unconstrained")
    }
}

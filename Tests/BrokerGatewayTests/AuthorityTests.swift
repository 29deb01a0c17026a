@testable import BrokerGateway
import Testing

/// `Host` and absolute-form authorities, checked on their bytes (issue 24 moved the check off `Character`).
@Suite struct AuthorityTests {
    static func parts(_ authority: Authority) -> [String] { [authority.host, authority.port.map(String.init) ?? "-"] }

    @Test func validAuthoritiesParse() {
        #expect(Authority("Push-API.Cloud.Huawei.com").map(Self.parts) == ["push-api.cloud.huawei.com", "-"])
        #expect(Authority("127.0.0.1:8080").map(Self.parts) == ["127.0.0.1", "8080"])
        #expect(Authority("[::1]:443").map(Self.parts) == ["[::1]", "443"])
        #expect(Authority("[FE80::1]").map(Self.parts) == ["[fe80::1]", "-"])
        #expect(Authority("a_b-c.example:65535")?.port == 65_535)
    }

    @Test func invalidAuthoritiesAreRefused() {
        for text in ["", ":80", "host:", "host:65536", "host:123456", "host:8a", "ho st", "hö.example", "[::1", "[::1]x",
                     "[]", "[::g]", "user@host", "host/path", String(repeating: "a", count: 254), "a:b:c"] {
            #expect(Authority(text) == nil, "\(text)")
        }
    }
}

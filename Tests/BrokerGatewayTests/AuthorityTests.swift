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

    /// An absolute-form target's scheme and authority; every other form (origin-form shares with
    /// colons in their path among them) is not one.
    @Test func absoluteFormTargets() {
        let form = { (uri: String) in RequestTargetGuard.absoluteForm(uri).map { [$0.scheme, $0.authority] } }
        #expect(form("http://push-api.cloud.huawei.com/v1/1/messages:send") == ["http", "push-api.cloud.huawei.com"])
        #expect(form("HTTPS://Api.Example:8443?x=1") == ["https", "Api.Example:8443"])
        #expect(form("hTtP://h#f") == ["http", "h"])
        for uri in ["/v1/proxy/huawei-push/v1/10086/messages:send", "/a?b=c:d", "ftp://host/", "http:/host", "httpx://h/",
                    "htt://h/", "*", "example.com:443", "", "http"] {
            #expect(form(uri) == nil, "\(uri)")
        }
    }

    /// A provider's hop-by-hop, framing and cookie fields, and its own `X-Share-*` (the broker sets
    /// those), are dropped from the answer, whatever their case; every other field passes.
    @Test func droppedResponseFields() {
        for name in ["Connection", "KEEP-ALIVE", "Transfer-Encoding", "te", "Content-Length", "Set-Cookie", "set-cookie2",
                     "X-Share-Id", "x-share-decision", "Proxy-Connection", "Upgrade", "Trailer"] {
            #expect(ShareEdge.isDroppedResponseHeader(name), "\(name)")
        }
        for name in ["Content-Type", "X-Request-Id", "Date", "t", "tE2", "X-Share-Ids", "Set-Cookie3", "Server", ""] {
            #expect(!ShareEdge.isDroppedResponseHeader(name), "\(name)")
        }
    }
}

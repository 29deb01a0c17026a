import BrokerService
import Testing

struct RevocationKeyVaultTests {
    let vault = RevocationKeyVault(secret: Array("a revocation secret of enough entropy for a test".utf8))

    /// The share path seals (name, value) pairs; a box opens to the keys by name, each name's values
    /// in the order given, as the dictionary form always sealed them.
    @Test func pairsSealAsTheDictionaryDoes() throws {
        let pairs: [(name: String, value: String)] = [
            ("token", "t-2"), ("app", "com.example"), ("token", "t-1"), ("token", "t-3"), ("account", "ünïcode ✓"),
        ]
        let expected = ["token": ["t-2", "t-1", "t-3"], "app": ["com.example"], "account": ["ünïcode ✓"]]
        #expect(try vault.open(vault.seal(pairs, shareID: "s-1"), shareID: "s-1") == expected)
        #expect(try vault.open(vault.seal(expected, shareID: "s-1"), shareID: "s-1") == expected)
        #expect(try vault.open(vault.seal([("token", "only")], shareID: "s-2"), shareID: "s-2") == ["token": ["only"]])
    }

    /// A box is bound to its share id and its key: moved, altered or opened with another key, it does not open.
    @Test func aBoxOpensOnlyForItsShare() throws {
        let box = vault.seal([("token", "t-1")], shareID: "s-1")
        #expect(throws: RevocationKeyVault.OpenError.self) { try vault.open(box, shareID: "s-2") }
        var altered = box
        altered[altered.count / 2] ^= 0x01
        #expect(throws: RevocationKeyVault.OpenError.self) { try vault.open(altered, shareID: "s-1") }
        let other = RevocationKeyVault(secret: Array("another revocation secret of enough entropy".utf8))
        #expect(throws: RevocationKeyVault.OpenError.self) { try other.open(box, shareID: "s-1") }
        // A fresh nonce per box: the same keys never seal to the same bytes.
        #expect(vault.seal([("token", "t-1")], shareID: "s-1") != box)
    }
}

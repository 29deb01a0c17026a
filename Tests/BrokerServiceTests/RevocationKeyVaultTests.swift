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

    /// A key set is named by a keyed print of its pairs (the same pairs in another order print the
    /// same; other values or another vault key print differently), and its box opens only for its
    /// provider and print.
    @Test func aKeySetIsNamedByItsPrintAndItsBoxOpensOnlyThere() throws {
        let set = vault.keySet([("token", "t-1"), ("app", "com.example")])
        #expect(vault.keySet([("app", "com.example"), ("token", "t-1")]) == set)
        #expect(vault.keySet([("token", "t-2"), ("app", "com.example")]).print != set.print)
        let other = RevocationKeyVault(secret: Array("another revocation secret of enough entropy".utf8))
        #expect(other.keySet([("token", "t-1"), ("app", "com.example")]).print != set.print)
        #expect(set.print > 0)

        let box = vault.seal(set, provider: "huawei-push")
        #expect(try vault.open(box, keySet: set.print, provider: "huawei-push") == ["token": ["t-1"], "app": ["com.example"]])
        #expect(throws: RevocationKeyVault.OpenError.self) { try vault.open(box, keySet: set.print, provider: "xiaomi-push") }
        #expect(throws: RevocationKeyVault.OpenError.self) { try vault.open(box, keySet: set.print ^ 1, provider: "huawei-push") }
        #expect(throws: RevocationKeyVault.OpenError.self) { try vault.open(box, shareID: "s-1") }
        #expect(throws: RevocationKeyVault.OpenError.self) { try other.open(box, keySet: set.print, provider: "huawei-push") }
        #expect(vault.seal(set, provider: "huawei-push") != box, "a fresh nonce per box")
    }
}

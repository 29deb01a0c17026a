import BrokerCore
import BrokerFields
import BrokerLogStore
import BrokerService
import Foundation
import Testing

/// Issue 23, item 4, at the store: a folded entry (one path repeated, its values listed by short
/// prints) is found by `fingerprint_of`, counts as personal in the exposure report and the sharing
/// list, and keeps the chain intact — on SQLite and PostgreSQL alike.
@Suite struct FoldedFieldStoreTests {
    static let category = "user.device.push_token"
    static let printer = Fingerprinter(key: Array("folded-field-test-key-0123456789".utf8))

    /// What `fingerprint_of=VALUE&category=…` asks the store.
    static func filter(_ value: String) -> ShareFilter {
        var filter = ShareFilter()
        filter.carrying(value, category: category, printer: printer)
        return filter
    }

    /// Share 1 sends three tokens folded into one entry; share 2 one token as a plain entry.
    func seed(_ store: StoreUnderTest) async throws {
        try await store.log.addGrant(grant("g-1"))
        var folded = entry(1)
        var tokens = LoggedField(location: .body, path: "message.token[*]", category: Self.category, action: .sent,
                                 reason: nil, fingerprint: nil)
        tokens.count = 3
        tokens.fingerprints = ["tok-a", "tok-b", "tok-c"].map {
            Self.printer.shortPrint(category: Self.category, value: .string($0))
        }.sorted()
        folded.fields = [tokens, LoggedField(location: .path, path: "app_id", category: "system.operations", action: .sent,
                                             reason: nil, fingerprint: nil)]
        _ = try await store.log.appendIntent(folded)
        var single = entry(2)
        single.fields = [LoggedField(location: .body, path: "message.token[0]", category: Self.category, action: .sent,
                                     reason: nil, fingerprint: Self.printer.fingerprint(category: Self.category, value: .string("tok-z")))]
        _ = try await store.log.appendIntent(single)
    }

    @Test(arguments: storeKinds)
    func fingerprintOfFindsAValueInAFoldedEntry(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await seed(store)
            func found(_ value: String) async throws -> [String] {
                try await store.log.shares(Self.filter(value), after: nil, limit: 10).map {
                    (try? JSONSerialization.jsonObject(with: Data($0.record.utf8)) as? [String: Any])?["share_id"] as? String ?? "?"
                }
            }
            #expect(try await found("tok-b") == ["node-1-share-1"])
            #expect(try await found("tok-z") == ["node-1-share-2"], "an entry written before 2026-12-07, by its full fingerprint")
            #expect(try await found("tok-q").isEmpty)
            // The value must have gone under the category asked about.
            var other = Self.filter("tok-c")
            other.category = "user.location"
            #expect(try await store.log.shares(other, after: nil, limit: 10).isEmpty, "the category is the folded entry's")

            // A folded entry of personal values counts like a plain one.
            let exposure = try await store.log.exposure(ExposureQuery(provider: "demo-push"), afterSubject: nil, limit: 10)
            #expect(exposure.map(\.shares) == [2] && exposure.first?.categories == [Self.category])
            let list = try await store.log.sharingList(since: nil, until: nil)
            let row = list.first { $0.category == Self.category }
            #expect(row?.sent == 2 && row?.subjects == 1, "\(list)")

            let records = try await store.records("node-1")
            #expect(chainIsIntact(records))
            let body = try #require(records.first { $0.shareID == "node-1-share-1" }?.body)
            #expect(body.contains(#""count":3,"fingerprints":["#))
            #expect(!body.contains(#""fingerprint":"#), "the app id's entry is non-personal: its null fingerprint is left out")
            #expect(!body.contains("null"), "no member is null")

            // A record written since 2026-12-07 holds the record print.
            var current = entry(3)
            current.fields = [LoggedField(location: .body, path: "message.token[0]", category: Self.category, action: .sent,
                                          reason: nil, fingerprint: Self.printer.recordPrint(category: Self.category, value: .string("tok-y")))]
            _ = try await store.log.appendIntent(current)
            #expect(try await found("tok-y") == ["node-1-share-3"], "an entry written since, by its record print")
            #expect(try await found("tok-z") == ["node-1-share-2"])
        }
    }
}

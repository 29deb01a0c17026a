import BrokerCore
import BrokerService
@testable import BrokerSQLite
import Foundation
import GRDB
import Testing

/// Whole seconds, so instants survive the microsecond round trip exactly.
private let t0 = Date(timeIntervalSince1970: 1_726_000_000)

@Suite struct GrantStoreTests {
    @Test func subjectsRoundTripAndUpdateInPlace() async throws {
        try await withStore { store, _ in
            #expect(try await store.subject("nobody") == nil)
            let subject = Subject(id: "s-1", birthDate: CalendarDay(year: 2008, month: 2, day: 29), minor: false, region: "CN")
            try await store.putSubject(subject)
            #expect(try await store.subject("s-1") == subject)
            let changed = Subject(id: "s-1", minor: true)
            try await store.putSubject(changed)
            #expect(try await store.subject("s-1") == changed)
        }
    }

    @Test func grantsRoundTripAndContextFiltersByProvider() async throws {
        try await withStore { store, _ in
            let push = Grant(id: "g-push", subject: "s-1", provider: "demo-push",
                             purpose: "essential.service.notifications.push", categories: ["user.device"],
                             separateConsent: true, crossBorderConsent: false, policyVersion: "3", evidence: "app:consent#7",
                             grantedAt: t0, expiresAt: t0.addingTimeInterval(86_400))
            let login = Grant(id: "g-login", subject: "s-1", provider: "demo-login",
                              purpose: "essential.service.authentication", grantedAt: t0.addingTimeInterval(-10),
                              revokedAt: t0.addingTimeInterval(5))
            let other = Grant(id: "g-other", subject: "s-2", provider: "demo-push",
                              purpose: "essential.service.notifications.push", grantedAt: t0)
            for grant in [push, login, other] { try await store.addGrant(grant) }

            // A grant for a subject without a record creates an empty one.
            #expect(try await store.subject("s-2") == Subject(id: "s-2"))
            #expect(try await store.grants(of: "s-1") == [login, push])

            try await store.putSubject(Subject(id: "s-1", region: "DE"))
            let context = try await store.context(subject: "s-1", provider: "demo-push")
            #expect(context.subject == Subject(id: "s-1", region: "DE"))
            #expect(context.grants == [push])
            #expect(try await store.grants(of: "s-1").count == 2, "an upsert of the subject keeps its grants")

            let none = try await store.context(subject: "nobody", provider: "demo-push")
            #expect(none.subject == nil && none.grants.isEmpty)
        }
    }

    @Test func aDuplicateGrantIDIsRefused() async throws {
        try await withStore { store, _ in
            let grant = Grant(id: "g-1", subject: "s-1", provider: "p", purpose: "u", grantedAt: t0)
            try await store.addGrant(grant)
            await #expect(throws: LogUnavailable.self) { try await store.addGrant(grant) }
        }
    }
}

/// The writer runs with SQLite's `secure_delete` on, whatever the platform's build defaults to
/// (Debian's is on, SQLite's own is off): a subject's overwritten or deleted values are zeroed in
/// the file, not left in a page's free space.
@Suite struct SecureDeleteTests {
    @Test func theWriterZeroesWhatItFrees() async throws {
        try await withStore { store, _ in
            try await store.putSubject(Subject(id: "subject-1", minor: false, region: "CN"))
            _ = try await appendIntents(store, count: 3)
            let mode = try await store.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA secure_delete") }
            #expect(mode == 1)
        }
    }
}

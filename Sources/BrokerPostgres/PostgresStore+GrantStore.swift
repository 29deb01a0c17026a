import BrokerCore
import BrokerLogStore
import BrokerService
import Foundation
import PostgresNIO

extension PostgresStore {
    /// Creates or updates a subject (an upsert, so the subject's grants stay attached).
    public func putSubject(_ subject: Subject) async throws(LogUnavailable) {
        let updatedAt = Microseconds.from(now())
        try await run("storing a subject") { connection in
            try await connection.query("""
                INSERT INTO subjects (id, birth_date, minor, region, updated_at)
                VALUES (\(subject.id), \(subject.birthDate?.description), \(subject.minor), \(subject.region), \(updatedAt))
                ON CONFLICT (id) DO UPDATE SET birth_date = excluded.birth_date, minor = excluded.minor,
                    region = excluded.region, updated_at = excluded.updated_at
                """, logger: self.logger)
        }
    }

    public func subject(_ id: String) async throws(LogUnavailable) -> Subject? {
        try await run("reading a subject") { connection in try await self.fetchSubject(id, connection) }
    }

    /// Stores a new grant; a subject without a record gets an empty one (the foreign key needs it).
    public func addGrant(_ grant: Grant) async throws(LogUnavailable) {
        let updatedAt = Microseconds.from(now())
        let categories = grant.categories.map { list in
            String(decoding: CanonicalJSON.array(list.map { .string($0) }).bytes, as: UTF8.self)
        }
        try await transaction("storing a grant") { connection in
            try await connection.query("""
                INSERT INTO subjects (id, updated_at) VALUES (\(grant.subject), \(updatedAt)) ON CONFLICT (id) DO NOTHING
                """, logger: self.logger)
            try await connection.query("""
                INSERT INTO grants (id, subject_id, provider, purpose, categories, separate_consent, cross_border_consent,
                                    policy_version, evidence, granted_at, expires_at, revoked_at, account_fingerprint)
                VALUES (\(grant.id), \(grant.subject), \(grant.provider), \(grant.purpose), \(categories),
                        \(grant.separateConsent), \(grant.crossBorderConsent), \(grant.policyVersion), \(grant.evidence),
                        \(Microseconds.from(grant.grantedAt)), \(grant.expiresAt.map(Microseconds.from)),
                        \(grant.revokedAt.map(Microseconds.from)), \(grant.accountFingerprint))
                """, logger: self.logger)
        }
    }

    /// Every grant of `subject`, oldest first (by `granted_at`, then insertion).
    public func grants(of subject: String) async throws(LogUnavailable) -> [Grant] {
        try await run("reading grants") { connection in
            try await self.fetchGrants(connection.query("""
                SELECT \(unescaped: Self.grantColumns()) FROM grants WHERE subject_id = \(subject) ORDER BY granted_at, ord
                """, logger: self.logger))
        }
    }

    /// The subject (or `nil`) and its grants for `provider`, read in one snapshot: one statement (its
    /// snapshot is the statement's), one round trip. A grant needs its subject (the foreign key), so no
    /// row means no subject; a row without a grant id, a subject without grants for `provider`.
    public func context(subject: String, provider: String) async throws(LogUnavailable) -> SubjectContext {
        try await run("reading a subject's grants") { connection in
            let rows = try await connection.query("""
                SELECT s.birth_date, s.minor, s.region, s.deleted_at, \(unescaped: Self.grantColumns("g."))
                FROM subjects s LEFT JOIN grants g ON g.subject_id = s.id AND g.provider = \(provider)
                WHERE s.id = \(subject) ORDER BY g.granted_at, g.ord
                """, logger: self.logger)
            var record: Subject?
            var grants: [Grant] = []
            for try await row in rows {
                let columns = PostgresRandomAccessRow(row)
                if record == nil { record = try Self.decodeSubject(subject, columns) }
                if try columns[4].decode(String?.self) != nil { grants.append(try Self.decodeGrant(columns, from: 4)) }
            }
            return SubjectContext(subject: record, grants: grants)
        }
    }

    /// The grant columns `decodeGrant` reads, in its order, each with `prefix` (a table alias).
    static func grantColumns(_ prefix: String = "") -> String {
        ["id", "subject_id", "provider", "purpose", "categories", "separate_consent", "cross_border_consent", "policy_version",
         "evidence", "granted_at", "expires_at", "revoked_at", "account_fingerprint"].map { prefix + $0 }.joined(separator: ", ")
    }

    private func fetchSubject(_ id: String, _ connection: PostgresConnection) async throws -> Subject? {
        let rows = try await connection.query("SELECT birth_date, minor, region, deleted_at FROM subjects WHERE id = \(id)",
                                              logger: logger)
        for try await row in rows { return try Self.decodeSubject(id, PostgresRandomAccessRow(row)) }
        return nil
    }

    /// `birth_date, minor, region, deleted_at` from the row's first four columns.
    private static func decodeSubject(_ id: String, _ columns: PostgresRandomAccessRow) throws -> Subject {
        Subject(id: id, birthDate: try columns[0].decode(String?.self).flatMap(CalendarDay.init),
                minor: try columns[1].decode(Bool?.self), region: try columns[2].decode(String?.self),
                deletedAt: try columns[3].decode(Int64?.self).map(Microseconds.date))
    }

    private func fetchGrants(_ rows: PostgresRowSequence) async throws -> [Grant] {
        var grants: [Grant] = []
        for try await row in rows { grants.append(try Self.decodeGrant(PostgresRandomAccessRow(row), from: 0)) }
        return grants
    }

    /// A grant from `grantColumns()`, starting at column `first`.
    private static func decodeGrant(_ columns: PostgresRandomAccessRow, from first: Int) throws -> Grant {
        func column(_ index: Int) -> PostgresCell { columns[first + index] }
        let categories = try column(4).decode(String?.self).map { text in
            try CanonicalJSON.stringArray(text) ?? JSONDecoder().decode([String].self, from: Data(text.utf8))
        }
        var grant = Grant(id: try column(0).decode(String.self), subject: try column(1).decode(String.self),
                          provider: try column(2).decode(String.self), purpose: try column(3).decode(String.self),
                          categories: categories, separateConsent: try column(5).decode(Bool.self),
                          crossBorderConsent: try column(6).decode(Bool.self), policyVersion: try column(7).decode(String.self),
                          evidence: try column(8).decode(String.self), grantedAt: Microseconds.date(try column(9).decode(Int64.self)),
                          expiresAt: try column(10).decode(Int64?.self).map(Microseconds.date),
                          revokedAt: try column(11).decode(Int64?.self).map(Microseconds.date))
        grant.accountFingerprint = try column(12).decode(String?.self)
        return grant
    }
}

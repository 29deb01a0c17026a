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
                SELECT \(unescaped: Self.grantColumns) FROM grants WHERE subject_id = \(subject) ORDER BY granted_at, ord
                """, logger: self.logger))
        }
    }

    /// The subject (or `nil`) and its grants for `provider`, read in one snapshot.
    public func context(subject: String, provider: String) async throws(LogUnavailable) -> SubjectContext {
        try await run("reading a subject's grants") { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: self.logger)
            do {
                let record = try await self.fetchSubject(subject, connection)
                let grants = try await self.fetchGrants(connection.query("""
                    SELECT \(unescaped: Self.grantColumns) FROM grants WHERE subject_id = \(subject) AND provider = \(provider)
                    ORDER BY granted_at, ord
                    """, logger: self.logger))
                try await connection.query("COMMIT", logger: self.logger)
                return SubjectContext(subject: record, grants: grants)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    static let grantColumns = """
        id, subject_id, provider, purpose, categories, separate_consent, cross_border_consent, policy_version, \
        evidence, granted_at, expires_at, revoked_at, account_fingerprint
        """

    private func fetchSubject(_ id: String, _ connection: PostgresConnection) async throws -> Subject? {
        let rows = try await connection.query("SELECT birth_date, minor, region, deleted_at FROM subjects WHERE id = \(id)",
                                              logger: logger)
        for try await (birth, minor, region, deletedAt) in rows.decode((String?, Bool?, String?, Int64?).self) {
            return Subject(id: id, birthDate: birth.flatMap(CalendarDay.init), minor: minor, region: region,
                           deletedAt: deletedAt.map(Microseconds.date))
        }
        return nil
    }

    private func fetchGrants(_ rows: PostgresRowSequence) async throws -> [Grant] {
        var grants: [Grant] = []
        for try await row in rows {
            let (id, subject, provider, purpose, categoriesText, separate, crossBorder, policyVersion) =
                try row.decode((String, String, String, String, String?, Bool, Bool, String).self)
            let columns = PostgresRandomAccessRow(row)
            let evidence = try columns[8].decode(String.self)
            let grantedAt = try columns[9].decode(Int64.self)
            let expiresAt = try columns[10].decode(Int64?.self)
            let revokedAt = try columns[11].decode(Int64?.self)
            let account = try columns[12].decode(String?.self)
            let categories = try categoriesText.map { text in
                try CanonicalJSON.stringArray(text) ?? JSONDecoder().decode([String].self, from: Data(text.utf8))
            }
            var grant = Grant(id: id, subject: subject, provider: provider, purpose: purpose, categories: categories,
                              separateConsent: separate, crossBorderConsent: crossBorder, policyVersion: policyVersion,
                              evidence: evidence, grantedAt: Microseconds.date(grantedAt),
                              expiresAt: expiresAt.map(Microseconds.date), revokedAt: revokedAt.map(Microseconds.date))
            grant.accountFingerprint = account
            grants.append(grant)
        }
        return grants
    }
}

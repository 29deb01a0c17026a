import BrokerCore
import BrokerService
import Foundation
import GRDB

extension SQLiteStore {
    /// Creates or updates a subject (an upsert, so the subject's grants stay attached).
    public func putSubject(_ subject: Subject) async throws(LogUnavailable) {
        let updatedAt = Microseconds.from(now())
        do {
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO subjects (id, birth_date, minor, region, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET birth_date = excluded.birth_date, minor = excluded.minor,
                        region = excluded.region, updated_at = excluded.updated_at
                    """, arguments: [subject.id, subject.birthDate?.description, subject.minor, subject.region, updatedAt])
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "storing a subject")
        }
    }

    public func subject(_ id: String) async throws(LogUnavailable) -> Subject? {
        do {
            return try await pool.read { db in try Self.fetchSubject(id, db) }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading a subject")
        }
    }

    /// Stores a new grant. A subject without a record gets an empty one (the
    /// foreign key from `grants` needs it; an empty record means what no record means).
    public func addGrant(_ grant: Grant) async throws(LogUnavailable) {
        let updatedAt = Microseconds.from(now())
        let categories = grant.categories.map { list in
            String(decoding: CanonicalJSON.array(list.map { .string($0) }).bytes, as: UTF8.self)
        }
        do {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO subjects (id, updated_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                               arguments: [grant.subject, updatedAt])
                try db.execute(sql: """
                    INSERT INTO grants (id, subject_id, provider, purpose, categories, separate_consent,
                                        cross_border_consent, policy_version, evidence, granted_at, expires_at, revoked_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [
                        grant.id, grant.subject, grant.provider, grant.purpose, categories, grant.separateConsent,
                        grant.crossBorderConsent, grant.policyVersion, grant.evidence, Microseconds.from(grant.grantedAt),
                        grant.expiresAt.map(Microseconds.from), grant.revokedAt.map(Microseconds.from),
                    ])
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "storing a grant")
        }
    }

    /// Every grant of `subject`, oldest first (by `granted_at`, then insertion).
    public func grants(of subject: String) async throws(LogUnavailable) -> [Grant] {
        do {
            return try await pool.read { db in
                try Self.fetchGrants(db, sql: "SELECT * FROM grants WHERE subject_id = ? ORDER BY granted_at, rowid",
                                     arguments: [subject])
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading grants")
        }
    }

    /// The subject (or `nil`) and its grants for `provider`, read in one snapshot.
    public func context(subject: String, provider: String) async throws(LogUnavailable) -> SubjectContext {
        do {
            return try await pool.read { db in
                SubjectContext(
                    subject: try Self.fetchSubject(subject, db),
                    grants: try Self.fetchGrants(
                        db, sql: "SELECT * FROM grants WHERE subject_id = ? AND provider = ? ORDER BY granted_at, rowid",
                        arguments: [subject, provider]))
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading a subject's grants")
        }
    }

    private static func fetchSubject(_ id: String, _ db: Database) throws -> Subject? {
        guard let row = try Row.fetchOne(db, sql: "SELECT birth_date, minor, region FROM subjects WHERE id = ?",
                                         arguments: [id]) else { return nil }
        let birthText: String? = row["birth_date"]
        return Subject(id: id, birthDate: birthText.flatMap(CalendarDay.init), minor: row["minor"], region: row["region"])
    }

    private static func fetchGrants(_ db: Database, sql: String, arguments: StatementArguments) throws -> [Grant] {
        try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            let categoriesText: String? = row["categories"]
            let categories = try categoriesText.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            let expiresAt: Int64? = row["expires_at"]
            let revokedAt: Int64? = row["revoked_at"]
            return Grant(id: row["id"], subject: row["subject_id"], provider: row["provider"], purpose: row["purpose"],
                         categories: categories, separateConsent: row["separate_consent"],
                         crossBorderConsent: row["cross_border_consent"], policyVersion: row["policy_version"],
                         evidence: row["evidence"], grantedAt: Microseconds.date(row["granted_at"]),
                         expiresAt: expiresAt.map(Microseconds.date), revokedAt: revokedAt.map(Microseconds.date))
        }
    }
}

import BrokerLogStore
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
            return try await readSnapshot { db in try Self.fetchSubject(id, db) }
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
                                        cross_border_consent, policy_version, evidence, granted_at, expires_at, revoked_at,
                                        account_fingerprint)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [
                        grant.id, grant.subject, grant.provider, grant.purpose, categories, grant.separateConsent,
                        grant.crossBorderConsent, grant.policyVersion, grant.evidence, Microseconds.from(grant.grantedAt),
                        grant.expiresAt.map(Microseconds.from), grant.revokedAt.map(Microseconds.from),
                        grant.accountFingerprint,
                    ])
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "storing a grant")
        }
    }

    /// Every grant of `subject`, oldest first (by `granted_at`, then insertion).
    public func grants(of subject: String) async throws(LogUnavailable) -> [Grant] {
        do {
            return try await readSnapshot { db in
                try Self.fetchGrants(db, sql: "\(Self.grantColumns) WHERE subject_id = ? ORDER BY granted_at, rowid",
                                     arguments: [subject])
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading grants")
        }
    }

    /// The subject (or `nil`) and its grants for `provider`, read in one snapshot.
    public func context(subject: String, provider: String) async throws(LogUnavailable) -> SubjectContext {
        do {
            return try await readSnapshot { db in
                SubjectContext(
                    subject: try Self.fetchSubject(subject, db),
                    grants: try Self.fetchGrants(
                        db, sql: "\(Self.grantColumns) WHERE subject_id = ? AND provider = ? ORDER BY granted_at, rowid",
                        arguments: [subject, provider]))
            }
        } catch {
            throw LogUnavailable.sqlite(error, during: "reading a subject's grants")
        }
    }

    /// Runs `body` in one read transaction (one snapshot) on a reader, as
    /// `DatabasePool.read` does, but with `BEGIN`/`COMMIT` prepared once per
    /// connection (`read` compiles both again on every call).
    func readSnapshot<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.unsafeRead { db in
            try db.cachedStatement(sql: "BEGIN DEFERRED TRANSACTION").execute()
            defer {
                // Leave the read transaction whatever happens (commit may fail when interrupted).
                do {
                    try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                } catch {
                    if db.isInsideTransaction { try? db.cachedStatement(sql: "ROLLBACK TRANSACTION").execute() }
                }
            }
            return try body(db)
        }
    }

    private static let grantColumns = """
        SELECT id, subject_id, provider, purpose, categories, separate_consent, cross_border_consent, policy_version,
               evidence, granted_at, expires_at, revoked_at, account_fingerprint FROM grants
        """

    private static func fetchSubject(_ id: String, _ db: Database) throws -> Subject? {
        let statement = try db.cachedStatement(sql: "SELECT birth_date, minor, region, deleted_at FROM subjects WHERE id = ?")
        let rows = try Row.fetchCursor(statement, arguments: [id])
        guard let row = try rows.next() else { return nil }
        let birthText: String? = row[0]
        let deletedAt: Int64? = row[3]
        return Subject(id: id, birthDate: birthText.flatMap(CalendarDay.init), minor: row[1], region: row[2],
                       deletedAt: deletedAt.map(Microseconds.date))
    }

    /// Reads grants with `sql` (`grantColumns` then a condition) from the
    /// statement cache, straight from the cursor's row (no row copies, no
    /// column lookups by name).
    private static func fetchGrants(_ db: Database, sql: String, arguments: StatementArguments) throws -> [Grant] {
        let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
        var grants: [Grant] = []
        while let row = try rows.next() {
            let categoriesText: String? = row[4]
            let categories = try categoriesText.map { text in
                try CanonicalJSON.stringArray(text) ?? JSONDecoder().decode([String].self, from: Data(text.utf8))
            }
            let expiresAt: Int64? = row[10]
            let revokedAt: Int64? = row[11]
            var grant = Grant(
                id: row[0], subject: row[1], provider: row[2], purpose: row[3],
                categories: categories, separateConsent: row[5], crossBorderConsent: row[6], policyVersion: row[7],
                evidence: row[8], grantedAt: Microseconds.date(row[9]),
                expiresAt: expiresAt.map(Microseconds.date), revokedAt: revokedAt.map(Microseconds.date))
            grant.accountFingerprint = row[12]
            grants.append(grant)
        }
        return grants
    }
}

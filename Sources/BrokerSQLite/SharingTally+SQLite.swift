import BrokerLogStore
import GRDB

extension SharingTally {
    /// Writes the tally in the current transaction; subject rows in `known` are skipped.
    /// Returns the subject rows written, to be marked known once the transaction commits.
    func write(_ db: Database, known: Set<SubjectKey>) throws -> [SubjectKey] {
        try writeExposure(db)
        let days = self.days
        if !days.isEmpty {
            let upsert = try BoundStatement(db, """
                INSERT INTO sharing_daily (day, provider, purpose, category, action, shares, first_us, last_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT DO UPDATE SET shares = shares + excluded.shares, first_us = min(first_us, excluded.first_us),
                                          last_us = max(last_us, excluded.last_us)
                """)
            for (key, count) in days {
                try upsert.run { b in
                    b.int(1, key.day); b.text(2, key.provider); b.text(3, key.purpose); b.text(4, key.category)
                    b.text(5, key.action); b.int(6, count.shares); b.int(7, count.first); b.int(8, count.last)
                }
            }
        }
        let fresh = self.subjects.filter { !known.contains($0) }
        guard !fresh.isEmpty else { return [] }
        let daily = try BoundStatement(db, """
            INSERT OR IGNORE INTO sharing_subjects (day, provider, purpose, category, subject) VALUES (?, ?, ?, ?, ?)
            """)
        let span = try BoundStatement(db, """
            INSERT OR IGNORE INTO sharing_subject_span (provider, purpose, category, subject) VALUES (?, ?, ?, ?)
            """)
        for key in fresh {
            if let day = key.day {
                try daily.run { b in
                    b.int(1, day); b.text(2, key.provider); b.text(3, key.purpose); b.text(4, key.category)
                    b.text(5, key.subject)
                }
            } else {
                try span.run { b in
                    b.text(1, key.provider); b.text(2, key.purpose); b.text(3, key.category); b.text(4, key.subject)
                }
            }
        }
        return Array(fresh)
    }

    /// The exposure rows alone (also what the migration that introduced them back-fills).
    func writeExposure(_ db: Database) throws {
        let exposure = self.exposure
        guard !exposure.isEmpty else { return }
        let merge = """
            ON CONFLICT DO UPDATE SET shares = shares + excluded.shares, first_us = min(first_us, excluded.first_us),
                                      last_us = max(last_us, excluded.last_us), sent = max(sent, excluded.sent)
            """
        let daily = try BoundStatement(db, """
            INSERT INTO exposure_daily (provider, subject, day, category, shares, first_us, last_us, sent)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """ + merge)
        let span = try BoundStatement(db, """
            INSERT INTO exposure_span (provider, subject, category, shares, first_us, last_us, sent) VALUES (?, ?, ?, ?, ?, ?, ?)
            """ + merge)
        for (key, value) in exposure {
            let count = value.count
            if let day = key.day {
                try daily.run { b in
                    b.text(1, key.provider); b.text(2, key.subject); b.int(3, day); b.text(4, key.category)
                    b.int(5, count.shares); b.int(6, count.first); b.int(7, count.last); b.int(8, value.sent ? 1 : 0)
                }
            } else {
                try span.run { b in
                    b.text(1, key.provider); b.text(2, key.subject); b.text(3, key.category)
                    b.int(4, count.shares); b.int(5, count.first); b.int(6, count.last); b.int(7, value.sent ? 1 : 0)
                }
            }
        }
    }
}

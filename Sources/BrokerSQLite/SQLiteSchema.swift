import BrokerLogStore
import BrokerService
import Foundation
import GRDB

/// The database schema, as append-only migrations.
///
/// Each migration is registered once by name and never edited after release:
/// a change is a new migration. They are SQL strings only (never app types),
/// so an old migration still means what it meant. Integrity lives in the
/// schema: STRICT tables, NOT NULL, CHECK, primary keys, a foreign key from
/// grants to subjects, and triggers that make `share_log` append-only for
/// anyone going through SQLite normally (tamper-evidence against anyone else
/// is the hash chain's job).
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-subjects-grants") { db in
            try db.execute(sql: """
                CREATE TABLE subjects (
                    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
                    birth_date TEXT CHECK (birth_date IS NULL
                        OR birth_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
                    minor INTEGER CHECK (minor IS NULL OR minor IN (0, 1)),
                    region TEXT,
                    updated_at INTEGER NOT NULL
                ) STRICT;

                CREATE TABLE grants (
                    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
                    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE RESTRICT,
                    provider TEXT NOT NULL CHECK (length(provider) > 0),
                    purpose TEXT NOT NULL CHECK (length(purpose) > 0),
                    categories TEXT CHECK (categories IS NULL
                        OR (json_valid(categories) AND json_type(categories) = 'array')),
                    separate_consent INTEGER NOT NULL CHECK (separate_consent IN (0, 1)),
                    cross_border_consent INTEGER NOT NULL CHECK (cross_border_consent IN (0, 1)),
                    policy_version TEXT NOT NULL,
                    evidence TEXT NOT NULL,
                    granted_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER
                ) STRICT;
                CREATE INDEX grants_subject_provider ON grants(subject_id, provider);
                """)
        }
        migrator.registerMigration("v1-share-log") { db in
            try db.execute(sql: """
                CREATE TABLE share_log (
                    stream TEXT NOT NULL CHECK (length(stream) > 0),
                    seq INTEGER NOT NULL CHECK (seq >= 1),
                    kind TEXT NOT NULL CHECK (kind IN ('share', 'outcome')),
                    share_id TEXT NOT NULL,
                    time_us INTEGER NOT NULL,
                    subject TEXT,
                    provider TEXT,
                    purpose TEXT,
                    decision TEXT CHECK (decision IS NULL OR decision IN ('allowed', 'redacted', 'blocked')),
                    caller TEXT,
                    channel TEXT CHECK (channel IS NULL OR channel IN ('proxy', 'sdk')),
                    body TEXT NOT NULL,
                    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
                    hash BLOB NOT NULL CHECK (length(hash) = 32),
                    PRIMARY KEY (stream, seq),
                    CHECK ((kind = 'share') = (decision IS NOT NULL AND provider IS NOT NULL
                                               AND caller IS NOT NULL AND channel IS NOT NULL))
                ) STRICT;
                CREATE INDEX share_log_subject_time ON share_log(subject, time_us);
                CREATE INDEX share_log_provider_time ON share_log(provider, time_us);
                CREATE INDEX share_log_share_id ON share_log(share_id);

                CREATE TRIGGER share_log_no_update BEFORE UPDATE ON share_log
                BEGIN SELECT RAISE(ABORT, 'share_log is append-only'); END;
                CREATE TRIGGER share_log_no_delete BEFORE DELETE ON share_log
                BEGIN SELECT RAISE(ABORT, 'share_log is append-only'); END;
                """)
        }
        migrator.registerMigration("v2-revocations") { db in
            try db.execute(sql: """
                -- Which grants each committed (allowed or redacted) intent relied on, written in the intent's transaction.
                CREATE TABLE share_grants (
                    grant_id TEXT NOT NULL,
                    share_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    PRIMARY KEY (grant_id, share_id)
                ) STRICT, WITHOUT ROWID;
                CREATE TABLE revocations (
                    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
                    subject_id TEXT NOT NULL REFERENCES subjects(id),
                    grant_ids TEXT NOT NULL CHECK (json_valid(grant_ids) AND json_type(grant_ids) = 'array'),
                    created_at INTEGER NOT NULL
                ) STRICT;
                CREATE TABLE revocation_shares (
                    revocation_id TEXT NOT NULL REFERENCES revocations(id),
                    share_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    PRIMARY KEY (revocation_id, share_id)
                ) STRICT, WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v3-revocation-propagation") { db in
            // share_log gains the `revocation` kind (a revoke and each provider's final state,
            // chained like shares). SQLite cannot alter a CHECK, so the table is rebuilt with
            // its rows, bodies and hashes unchanged.
            try db.execute(sql: """
                CREATE TABLE share_log_v3 (
                    stream TEXT NOT NULL CHECK (length(stream) > 0),
                    seq INTEGER NOT NULL CHECK (seq >= 1),
                    kind TEXT NOT NULL CHECK (kind IN ('share', 'outcome', 'revocation')),
                    share_id TEXT CHECK ((share_id IS NULL) = (kind = 'revocation')),
                    time_us INTEGER NOT NULL,
                    subject TEXT,
                    provider TEXT,
                    purpose TEXT,
                    decision TEXT CHECK (decision IS NULL OR decision IN ('allowed', 'redacted', 'blocked')),
                    caller TEXT,
                    channel TEXT CHECK (channel IS NULL OR channel IN ('proxy', 'sdk')),
                    body TEXT NOT NULL,
                    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
                    hash BLOB NOT NULL CHECK (length(hash) = 32),
                    PRIMARY KEY (stream, seq),
                    CHECK ((kind = 'share') = (decision IS NOT NULL AND provider IS NOT NULL
                                               AND caller IS NOT NULL AND channel IS NOT NULL))
                ) STRICT;
                INSERT INTO share_log_v3 SELECT * FROM share_log;
                DROP TABLE share_log;
                ALTER TABLE share_log_v3 RENAME TO share_log;
                CREATE INDEX share_log_subject_time ON share_log(subject, time_us);
                CREATE INDEX share_log_provider_time ON share_log(provider, time_us);
                CREATE INDEX share_log_share_id ON share_log(share_id);
                CREATE TRIGGER share_log_no_update BEFORE UPDATE ON share_log
                BEGIN SELECT RAISE(ABORT, 'share_log is append-only'); END;
                CREATE TRIGGER share_log_no_delete BEFORE DELETE ON share_log
                BEGIN SELECT RAISE(ABORT, 'share_log is append-only'); END;

                -- The sealed values of a share's revocation_key fields (AES-GCM), written in the
                -- intent's transaction; deleted once acknowledged or when retention has passed.
                CREATE TABLE revocation_keys (
                    share_id TEXT NOT NULL PRIMARY KEY,
                    provider TEXT NOT NULL,
                    sealed BLOB NOT NULL,
                    expires_at INTEGER NOT NULL
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX revocation_keys_expiry ON revocation_keys(expires_at);
                CREATE INDEX revocation_shares_share ON revocation_shares(share_id);

                -- The outbox: one propagation job per revocation and provider.
                CREATE TABLE revocation_jobs (
                    revocation_id TEXT NOT NULL REFERENCES revocations(id),
                    provider TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'acknowledged', 'failed', 'manual_required')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    next_attempt_at INTEGER,
                    last_error TEXT,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (revocation_id, provider)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX revocation_jobs_due ON revocation_jobs(next_attempt_at)
                    WHERE status IN ('pending', 'sent');
                -- Jobs of revocations made before this migration: the worker sorts them out.
                INSERT INTO revocation_jobs (revocation_id, provider, status, next_attempt_at, updated_at)
                    SELECT DISTINCT rs.revocation_id, rs.provider, 'pending', r.created_at, r.created_at
                    FROM revocation_shares rs JOIN revocations r ON r.id = rs.revocation_id;

                CREATE TABLE revocation_attempts (
                    revocation_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    attempt INTEGER NOT NULL CHECK (attempt >= 1),
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    result TEXT CHECK (result IS NULL OR result IN ('acknowledged', 'retry', 'failed', 'manual_required')),
                    error TEXT,
                    calls INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (revocation_id, provider, attempt)
                ) STRICT, WITHOUT ROWID;

                -- Calls the provider acknowledged, by idempotency key (an HMAC, no value):
                -- a retry or a restart never sends them again.
                CREATE TABLE revocation_calls (
                    revocation_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    call_key TEXT NOT NULL,
                    upstream_status INTEGER NOT NULL,
                    acknowledged_at INTEGER NOT NULL,
                    PRIMARY KEY (revocation_id, provider, call_key)
                ) STRICT, WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v4-grant-accounts") { db in
            try db.execute(sql: """
                ALTER TABLE grants ADD COLUMN account_fingerprint TEXT;
                CREATE INDEX grants_provider_account ON grants(provider, account_fingerprint)
                    WHERE account_fingerprint IS NOT NULL;
                """)
        }
        migrator.registerMigration("v5-checkpoints") { db in
            try db.execute(sql: """
                -- Ed25519-signed (stream, size, head, time): written in the batch that crosses each
                -- checkpoint_every records, and on shutdown.
                CREATE TABLE log_checkpoints (
                    stream TEXT NOT NULL,
                    size INTEGER NOT NULL CHECK (size >= 1),
                    head BLOB NOT NULL CHECK (length(head) = 32),
                    time_us INTEGER NOT NULL,
                    signature BLOB NOT NULL,
                    key_id TEXT NOT NULL,
                    PRIMARY KEY (stream, size)
                ) STRICT;
                """)
        }
        migrator.registerMigration("v6-sharing-aggregates") { db in
            // Derived from the share log (not part of the chain), kept in each intent's transaction, so the
            // sharing list reads whole days from here instead of every record's fields. Personal fields only
            // (those with a fingerprint). Rebuilt from the log for records written before.
            try db.execute(sql: """
                CREATE TABLE sharing_daily (
                    day INTEGER NOT NULL, provider TEXT NOT NULL, purpose TEXT NOT NULL, category TEXT NOT NULL,
                    action TEXT NOT NULL, shares INTEGER NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
                    PRIMARY KEY (day, provider, purpose, category, action)
                ) STRICT, WITHOUT ROWID;
                CREATE TABLE sharing_subjects (
                    day INTEGER NOT NULL, provider TEXT NOT NULL, purpose TEXT NOT NULL, category TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    PRIMARY KEY (day, provider, purpose, category, subject)
                ) STRICT, WITHOUT ROWID;
                INSERT INTO sharing_daily
                    SELECT s.time_us / 86400000000, s.provider, s.purpose, json_extract(f.value, '$.category') AS c,
                           json_extract(f.value, '$.action') AS a, count(DISTINCT s.share_id), min(s.time_us), max(s.time_us)
                    FROM share_log s, json_each(s.body, '$.fields') f
                    WHERE s.kind = 'share' AND s.purpose IS NOT NULL AND c IS NOT NULL
                      AND json_extract(f.value, '$.fingerprint') IS NOT NULL
                    GROUP BY 1, 2, 3, 4, 5;
                INSERT OR IGNORE INTO sharing_subjects
                    SELECT DISTINCT s.time_us / 86400000000, s.provider, s.purpose, json_extract(f.value, '$.category') AS c, s.subject
                    FROM share_log s, json_each(s.body, '$.fields') f
                    WHERE s.kind = 'share' AND s.purpose IS NOT NULL AND s.subject IS NOT NULL AND c IS NOT NULL
                      AND json_extract(f.value, '$.action') = 'sent' AND json_extract(f.value, '$.fingerprint') IS NOT NULL;
                """)
        }
        migrator.registerMigration("v7-query-indexes") { db in
            // Time windows without a subject or provider, and a provider's shares in log order
            // (a window is first turned into a seq range per stream, then walked in order).
            try db.execute(sql: """
                CREATE INDEX share_log_time ON share_log(time_us);
                CREATE INDEX share_log_provider_seq ON share_log(provider, stream, seq);
                """)
        }
        migrator.registerMigration("v8-sharing-subject-span") { db in
            // Each subject once per provider × purpose × category ever sent: the whole-log sharing
            // list counts its distinct subjects here instead of de-duplicating every day's.
            try db.execute(sql: """
                CREATE TABLE sharing_subject_span (
                    provider TEXT NOT NULL, purpose TEXT NOT NULL, category TEXT NOT NULL, subject TEXT NOT NULL,
                    PRIMARY KEY (provider, purpose, category, subject)
                ) STRICT, WITHOUT ROWID;
                INSERT OR IGNORE INTO sharing_subject_span
                    SELECT DISTINCT provider, purpose, category, subject FROM sharing_subjects;
                """)
        }
        migrator.registerMigration("v9-partial-log-indexes") { db in
            // Outcome records (half the log) carry no subject or provider and are never looked up by
            // time: the indexes that serve share queries leave them out, so an outcome's INSERT
            // updates two B-trees (the key and share_id) instead of six. Every query these serve
            // names the column (`subject = ?`, `provider = ?`) or `kind = 'share'`, which implies
            // the index's WHERE, so the planner still uses them.
            try db.execute(sql: """
                DROP INDEX share_log_subject_time;
                CREATE INDEX share_log_subject_time ON share_log(subject, time_us) WHERE subject IS NOT NULL;
                DROP INDEX share_log_provider_time;
                CREATE INDEX share_log_provider_time ON share_log(provider, time_us) WHERE provider IS NOT NULL;
                DROP INDEX share_log_provider_seq;
                CREATE INDEX share_log_provider_seq ON share_log(provider, stream, seq) WHERE provider IS NOT NULL;
                DROP INDEX share_log_time;
                CREATE INDEX share_log_time ON share_log(time_us) WHERE kind = 'share';
                """)
        }
        migrator.registerMigration("v10-subject-deleted") { db in
            // An account deletion marks the subject (µs since 1970); every later share for them is refused.
            try db.execute(sql: "ALTER TABLE subjects ADD COLUMN deleted_at INTEGER")
        }
        migrator.registerMigration("v11-subject-history-index") { db in
            // A subject's history in log order: every page, oldest or newest first, is one range of
            // this index (the time-ordered one made each page sort the subject's whole history).
            try db.execute(sql: """
                DROP INDEX share_log_subject_time;
                CREATE INDEX share_log_subject_seq ON share_log(subject, stream, seq) WHERE subject IS NOT NULL;
                """)
        }
        migrator.registerMigration("v12-log-follower") { db in
            // The aggregates leave the intent's transaction: a follower folds committed share records
            // into them in batches and records how far it got per stream (`log_follower`); queries add
            // the records past that mark. The exposure report gets aggregates of its own (see
            // `SharingTally`), built here from the records already logged.
            try db.execute(sql: """
                CREATE TABLE log_follower (
                    stream TEXT NOT NULL PRIMARY KEY,
                    seq INTEGER NOT NULL CHECK (seq >= 0)
                ) STRICT, WITHOUT ROWID;
                CREATE TABLE exposure_span (
                    provider TEXT NOT NULL, subject TEXT NOT NULL, category TEXT NOT NULL,
                    shares INTEGER NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
                    sent INTEGER NOT NULL CHECK (sent IN (0, 1)),
                    PRIMARY KEY (provider, subject, category)
                ) STRICT, WITHOUT ROWID;
                CREATE TABLE exposure_daily (
                    provider TEXT NOT NULL, subject TEXT NOT NULL, day INTEGER NOT NULL, category TEXT NOT NULL,
                    shares INTEGER NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
                    sent INTEGER NOT NULL CHECK (sent IN (0, 1)),
                    PRIMARY KEY (provider, subject, day, category)
                ) STRICT, WITHOUT ROWID;
                """)
            try SQLiteStore.backfillExposure(db)
            try db.execute(sql: "INSERT INTO log_follower (stream, seq) SELECT stream, max(seq) FROM share_log GROUP BY stream")
        }
        migrator.registerMigration("v13-resolved-mark") { db in
            // Every allowed or redacted intent up to `resolved` has its outcome: start looks for intents
            // without one past it only, instead of in the whole stream. 0 until a process has resolved
            // its stream at start once.
            try db.execute(sql: "ALTER TABLE log_follower ADD COLUMN resolved INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v14-share-log-checks") { db in
            // SQLite checks `x IN (three or more constants)` through a temporary B-tree it builds for
            // every row inserted: two per record (`kind`, `decision`), ~90k instructions per share.
            // The same constraints as comparisons, which it checks in place. Rows already stored
            // satisfy both forms, so the stored definition is edited, as SQLite documents for changing a
            // CHECK constraint (writable_schema, then a new schema_version): no rebuild of the log.
            let edits = [
                ("kind IN ('share', 'outcome', 'revocation')", "kind = 'share' OR kind = 'outcome' OR kind = 'revocation'"),
                ("decision IN ('allowed', 'redacted', 'blocked')",
                 "decision = 'allowed' OR decision = 'redacted' OR decision = 'blocked'"),
            ]
            try editTableDefinition(db, table: "share_log", edits)
        }
        migrator.registerMigration("v15-packed-records") { db in
            // Records as they cost what they say (issue 33, ~3 KB per share before): a body is stored
            // packed against a dictionary (`RecordPacking`; `dict` names it, `log_dictionaries` holds
            // it), `prev_hash` is no longer copied into each row (it is the previous row's `hash`), and
            // the provider × time index goes (a time window's seq range comes from `share_log_time`,
            // then the provider's `(provider, stream, seq)` index is walked within it). Rows already
            // stored keep their text bodies and copies, and verify as before: `body` becomes `ANY` and
            // `prev_hash` nullable, edited in the stored definition as in v14 (no rebuild of the log).
            try db.execute(sql: """
                CREATE TABLE log_dictionaries (
                    id INTEGER NOT NULL PRIMARY KEY,
                    bytes BLOB NOT NULL
                ) STRICT;
                CREATE TRIGGER log_dictionaries_no_update BEFORE UPDATE ON log_dictionaries
                BEGIN SELECT RAISE(ABORT, 'log_dictionaries is append-only'); END;
                CREATE TRIGGER log_dictionaries_no_delete BEFORE DELETE ON log_dictionaries
                BEGIN SELECT RAISE(ABORT, 'log_dictionaries is append-only'); END;
                DROP INDEX share_log_provider_time;
                """)
            let edits = [
                ("body TEXT NOT NULL,", "body ANY NOT NULL,"),
                ("prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),",
                 "prev_hash BLOB CHECK (prev_hash IS NULL OR length(prev_hash) = 32),"),
            ]
            try editTableDefinition(db, table: "share_log", edits)
            try db.execute(sql: "ALTER TABLE share_log ADD COLUMN dict INTEGER")
        }
        migrator.registerMigration("v16-revocation-key-sets") { db in
            // Revocation keys once per grant and key set instead of once per share (issue 33: ~300 bytes
            // and two index entries per share; a push token stays the same for months). Each share's
            // grant link names the set it sent; a revocation's shares remember the grant that covered
            // them, so its job reads the sets through the links. Boxes stored per share before this
            // stay in `revocation_keys` and are read, acknowledged and purged as before.
            try db.execute(sql: """
                CREATE TABLE revocation_key_sets (
                    grant_id TEXT NOT NULL,
                    key_set INTEGER NOT NULL,
                    provider TEXT NOT NULL,
                    sealed BLOB NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (grant_id, key_set)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX revocation_key_sets_expiry ON revocation_key_sets(expires_at);
                ALTER TABLE share_grants ADD COLUMN key_set INTEGER;
                ALTER TABLE revocation_shares ADD COLUMN grant_id TEXT;
                """)
        }
        return migrator
    }

    /// Replaces text in a table's stored definition, for changes that rows already stored satisfy
    /// (a CHECK written another way, a constraint relaxed), as SQLite documents for them:
    /// writable_schema, then a new schema_version. No rebuild of the table.
    static func editTableDefinition(_ db: Database, table: String, _ edits: [(String, String)]) throws {
        guard var sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
                                            arguments: [table]) else {
            throw LogUnavailable("the \(table) table is missing")
        }
        for (old, new) in edits {
            guard sql.contains(old) else { throw LogUnavailable("\(table)'s definition has no \(old)") }
            sql = sql.replacingOccurrences(of: old, with: new)
        }
        let version = try Int.fetchOne(db, sql: "PRAGMA schema_version") ?? 0
        try db.execute(sql: "PRAGMA writable_schema = ON")
        try db.execute(sql: "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?", arguments: [sql, table])
        try db.execute(sql: "PRAGMA schema_version = \(version + 1)")
        try db.execute(sql: "PRAGMA writable_schema = OFF")
    }
}

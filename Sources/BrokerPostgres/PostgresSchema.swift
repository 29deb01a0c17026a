/// The PostgreSQL schema, as named, append-only migrations: the same logical schema as
/// SQLite's (`SQLiteSchema`), written for PostgreSQL from the start rather than replayed
/// through SQLite's history. Instants are integer microseconds (`bigint`), as there, so a
/// record's columns and canonical body are the same in both stores and `db copy` keeps
/// every hash.
///
/// Each migration runs in its own transaction and records its name in `schema_migrations`;
/// the first node to start runs them under a transaction-level advisory lock, so nodes that
/// start together wait for it instead of racing. A migration is never edited once released:
/// a change is a new one.
enum PostgresSchema {
    /// `pg_advisory_xact_lock` key of the migrations ("sharebro" in ASCII).
    static let migrationLock: Int64 = 0x7368_6172_6562_726F

    static let migrations: [(name: String, sql: String)] = [
        ("v1-subjects-grants", """
            CREATE TABLE subjects (
                id text PRIMARY KEY CHECK (length(id) > 0),
                birth_date text CHECK (birth_date IS NULL OR birth_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
                minor boolean,
                region text,
                updated_at bigint NOT NULL
            );
            CREATE TABLE grants (
                id text PRIMARY KEY CHECK (length(id) > 0),
                -- Insertion order, the tie-break of grants granted in the same microsecond (SQLite's rowid).
                ord bigserial NOT NULL UNIQUE,
                subject_id text NOT NULL REFERENCES subjects(id) ON DELETE RESTRICT,
                provider text NOT NULL CHECK (length(provider) > 0),
                purpose text NOT NULL CHECK (length(purpose) > 0),
                categories text CHECK (categories IS NULL OR jsonb_typeof(categories::jsonb) = 'array'),
                separate_consent boolean NOT NULL,
                cross_border_consent boolean NOT NULL,
                policy_version text NOT NULL,
                evidence text NOT NULL,
                granted_at bigint NOT NULL,
                expires_at bigint,
                revoked_at bigint,
                account_fingerprint text
            );
            CREATE INDEX grants_subject_provider ON grants(subject_id, provider);
            CREATE INDEX grants_provider_account ON grants(provider, account_fingerprint)
                WHERE account_fingerprint IS NOT NULL;
            """),
        ("v1-share-log", """
            -- One hash chain per stream (a node); rows are never updated or deleted.
            CREATE TABLE share_log (
                stream text NOT NULL CHECK (length(stream) > 0),
                seq bigint NOT NULL CHECK (seq >= 1),
                kind text NOT NULL CHECK (kind IN ('share', 'outcome', 'revocation')),
                share_id text CHECK ((share_id IS NULL) = (kind = 'revocation')),
                time_us bigint NOT NULL,
                subject text,
                provider text,
                purpose text,
                decision text CHECK (decision IS NULL OR decision IN ('allowed', 'redacted', 'blocked')),
                caller text,
                channel text CHECK (channel IS NULL OR channel IN ('proxy', 'sdk')),
                -- The canonical bytes as hashed: text, never jsonb (which would re-format them).
                body text NOT NULL,
                prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
                hash bytea NOT NULL CHECK (length(hash) = 32),
                PRIMARY KEY (stream, seq),
                CHECK ((kind = 'share') = (decision IS NOT NULL AND provider IS NOT NULL
                                           AND caller IS NOT NULL AND channel IS NOT NULL))
            );
            CREATE INDEX share_log_share_id ON share_log(share_id);
            CREATE INDEX share_log_subject_time ON share_log(subject, time_us) WHERE subject IS NOT NULL;
            CREATE INDEX share_log_provider_time ON share_log(provider, time_us) WHERE provider IS NOT NULL;
            CREATE INDEX share_log_provider_seq ON share_log(provider, stream, seq) WHERE provider IS NOT NULL;
            CREATE INDEX share_log_time ON share_log(time_us) WHERE kind = 'share';

            CREATE FUNCTION share_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'share_log is append-only'; END $$;
            CREATE TRIGGER share_log_no_change BEFORE UPDATE OR DELETE ON share_log
                FOR EACH ROW EXECUTE FUNCTION share_log_append_only();
            CREATE TRIGGER share_log_no_truncate BEFORE TRUNCATE ON share_log
                FOR EACH STATEMENT EXECUTE FUNCTION share_log_append_only();

            -- Who appends to each stream: a node holds its stream while its lease runs (renewed by
            -- every batch and by a heartbeat); a second live node with the same name is refused.
            CREATE TABLE log_streams (
                stream text PRIMARY KEY,
                holder text NOT NULL,
                host text NOT NULL,
                started_at bigint NOT NULL,
                expires_at bigint NOT NULL
            );

            -- Ed25519-signed (stream, size, head, time), signed by the node that wrote the stream.
            CREATE TABLE log_checkpoints (
                stream text NOT NULL,
                size bigint NOT NULL CHECK (size >= 1),
                head bytea NOT NULL CHECK (length(head) = 32),
                time_us bigint NOT NULL,
                signature bytea NOT NULL,
                key_id text NOT NULL,
                PRIMARY KEY (stream, size)
            );
            """),
        ("v1-revocations", """
            -- Which grants each committed (allowed or redacted) intent relied on, written in the intent's transaction.
            CREATE TABLE share_grants (
                grant_id text NOT NULL,
                share_id text NOT NULL,
                provider text NOT NULL,
                PRIMARY KEY (grant_id, share_id)
            );
            CREATE TABLE revocations (
                id text PRIMARY KEY CHECK (length(id) > 0),
                subject_id text NOT NULL REFERENCES subjects(id),
                grant_ids text NOT NULL CHECK (jsonb_typeof(grant_ids::jsonb) = 'array'),
                created_at bigint NOT NULL
            );
            CREATE TABLE revocation_shares (
                revocation_id text NOT NULL REFERENCES revocations(id),
                share_id text NOT NULL,
                provider text NOT NULL,
                PRIMARY KEY (revocation_id, share_id)
            );
            CREATE INDEX revocation_shares_share ON revocation_shares(share_id);
            -- The sealed values of a share's revocation_key fields (AES-GCM).
            CREATE TABLE revocation_keys (
                share_id text PRIMARY KEY,
                provider text NOT NULL,
                sealed bytea NOT NULL,
                expires_at bigint NOT NULL
            );
            CREATE INDEX revocation_keys_expiry ON revocation_keys(expires_at);
            -- The outbox: one propagation job per revocation and provider, claimed with a lease.
            CREATE TABLE revocation_jobs (
                revocation_id text NOT NULL REFERENCES revocations(id),
                provider text NOT NULL,
                status text NOT NULL CHECK (status IN ('pending', 'sent', 'acknowledged', 'failed', 'manual_required')),
                attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                next_attempt_at bigint,
                last_error text,
                updated_at bigint NOT NULL,
                PRIMARY KEY (revocation_id, provider)
            );
            CREATE INDEX revocation_jobs_due ON revocation_jobs(next_attempt_at) WHERE status IN ('pending', 'sent');
            CREATE TABLE revocation_attempts (
                revocation_id text NOT NULL,
                provider text NOT NULL,
                attempt integer NOT NULL CHECK (attempt >= 1),
                started_at bigint NOT NULL,
                finished_at bigint,
                result text CHECK (result IS NULL OR result IN ('acknowledged', 'retry', 'failed', 'manual_required')),
                error text,
                calls integer NOT NULL DEFAULT 0,
                PRIMARY KEY (revocation_id, provider, attempt)
            );
            CREATE TABLE revocation_calls (
                revocation_id text NOT NULL,
                provider text NOT NULL,
                call_key text NOT NULL,
                upstream_status integer NOT NULL,
                acknowledged_at bigint NOT NULL,
                PRIMARY KEY (revocation_id, provider, call_key)
            );
            """),
        ("v1-sharing-aggregates", """
            -- Derived from the share log (not part of the chain), kept in each batch's transaction.
            CREATE TABLE sharing_daily (
                day bigint NOT NULL, provider text NOT NULL, purpose text NOT NULL, category text NOT NULL,
                action text NOT NULL, shares bigint NOT NULL, first_us bigint NOT NULL, last_us bigint NOT NULL,
                PRIMARY KEY (day, provider, purpose, category, action)
            );
            CREATE TABLE sharing_subjects (
                day bigint NOT NULL, provider text NOT NULL, purpose text NOT NULL, category text NOT NULL,
                subject text NOT NULL,
                PRIMARY KEY (day, provider, purpose, category, subject)
            );
            CREATE TABLE sharing_subject_span (
                provider text NOT NULL, purpose text NOT NULL, category text NOT NULL, subject text NOT NULL,
                PRIMARY KEY (provider, purpose, category, subject)
            );
            """),
        ("v2-node-keys", """
            -- Each node's checkpoint public key, registered by the node with its first checkpoint, so that
            -- every node's signatures can be checked (and published) by any node.
            CREATE TABLE log_keys (
                stream text NOT NULL,
                key_id text NOT NULL,
                public_key bytea NOT NULL CHECK (length(public_key) = 32),
                registered_at bigint NOT NULL,
                PRIMARY KEY (stream, key_id)
            );
            """),
        ("v3-subject-deleted", """
            -- An account deletion marks the subject (µs since 1970); every later share for them is refused.
            ALTER TABLE subjects ADD COLUMN deleted_at bigint;
            """),
        ("v4-subject-history-index", """
            -- A subject's history in log order: every page, oldest or newest first, is one range of
            -- this index (the time-ordered one made each page sort the subject's whole history).
            DROP INDEX share_log_subject_time;
            CREATE INDEX share_log_subject_seq ON share_log(subject, stream, seq) WHERE subject IS NOT NULL;
            """),
        ("v5-log-follower", """
            -- The aggregates leave the batch's transaction: each node's follower folds its committed share
            -- records into them and records how far it got (log_follower); queries add the records past
            -- the mark. The exposure report's own aggregates (see SharingTally), built from the records
            -- already logged: each share once per category sent, each ancestor of one, and '' (all).
            CREATE TABLE log_follower (stream text PRIMARY KEY, seq bigint NOT NULL CHECK (seq >= 0));
            CREATE TABLE exposure_span (
                provider text NOT NULL, subject text NOT NULL, category text NOT NULL,
                shares bigint NOT NULL, first_us bigint NOT NULL, last_us bigint NOT NULL, sent boolean NOT NULL,
                PRIMARY KEY (provider, subject, category)
            );
            CREATE TABLE exposure_daily (
                provider text NOT NULL, subject text NOT NULL, day bigint NOT NULL, category text NOT NULL,
                shares bigint NOT NULL, first_us bigint NOT NULL, last_us bigint NOT NULL, sent boolean NOT NULL,
                PRIMARY KEY (provider, subject, day, category)
            );
            CREATE TEMPORARY TABLE exposure_backfill ON COMMIT DROP AS
                WITH fields AS (
                    SELECT DISTINCT l.provider, l.subject, l.share_id, l.time_us, f->>'category' AS category
                    FROM share_log l, jsonb_array_elements(l.body::jsonb -> 'fields') f
                    WHERE l.kind = 'share' AND l.subject IS NOT NULL AND l.purpose IS NOT NULL
                      AND l.decision IN ('allowed', 'redacted') AND f->>'action' IN ('sent', 'minimised')
                      AND (f->>'fingerprint' IS NOT NULL OR f->'fingerprints' IS NOT NULL) AND f->>'category' IS NOT NULL),
                prefixes AS (
                    SELECT provider, subject, share_id, time_us,
                           array_to_string((string_to_array(category, '.'))[1:n], '.') AS category,
                           n = cardinality(string_to_array(category, '.')) AS sent
                    FROM fields, generate_series(1, cardinality(string_to_array(category, '.'))) n
                    UNION ALL
                    SELECT provider, subject, share_id, time_us, '', false FROM fields)
                SELECT provider, subject, share_id, time_us, category, bool_or(sent) AS sent FROM prefixes
                GROUP BY provider, subject, share_id, time_us, category;
            INSERT INTO exposure_span
                SELECT provider, subject, category, count(*), min(time_us), max(time_us), bool_or(sent)
                FROM exposure_backfill GROUP BY provider, subject, category;
            INSERT INTO exposure_daily
                SELECT provider, subject, time_us / 86400000000, category, count(*), min(time_us), max(time_us), bool_or(sent)
                FROM exposure_backfill GROUP BY provider, subject, time_us / 86400000000, category;
            INSERT INTO log_follower SELECT stream, max(seq) FROM share_log GROUP BY stream;
            """),
        ("v6-resolved-mark", """
            -- Every allowed or redacted intent up to resolved has its outcome: a node's start looks for
            -- intents without one past it only. 0 until the stream's node has resolved it at start once.
            ALTER TABLE log_follower ADD COLUMN resolved bigint NOT NULL DEFAULT 0;
            """),
        ("v7-append-batch", """
            -- A batch of intents and outcomes in one round trip (one statement, its own transaction):
            -- the lease renewed, the fence read, every row of every table. The fence is the batch
            -- transaction's as before: the grants its allowed or redacted intents rely on, share-locked in
            -- id order; when one is revoked nothing is written and the revoked ids are returned, so the
            -- node writes those intents as blocked and calls again. NULL columns travel as ''.
            CREATE FUNCTION sharebroker_append_batch(
                p_stream text, p_holder text, p_expires bigint, p_grants text[],
                r_seq bigint[], r_kind text[], r_share_id text[], r_time_us bigint[], r_subject text[],
                r_provider text[], r_purpose text[], r_decision text[], r_caller text[], r_channel text[],
                r_body text[], r_prev bytea[], r_hash bytea[],
                l_grant text[], l_share text[], l_provider text[],
                k_share text[], k_provider text[], k_sealed bytea[], k_expires bigint[]) RETURNS text[]
            LANGUAGE plpgsql AS $$
            DECLARE revoked text[];
            BEGIN
                UPDATE log_streams SET expires_at = p_expires WHERE stream = p_stream AND holder = p_holder;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'log stream % is no longer held by this node: another node took it', p_stream
                        USING ERRCODE = 'SB001';
                END IF;
                IF cardinality(p_grants) > 0 THEN
                    -- Every grant locked first (a filter in the same query would skip a row whose revoke is
                    -- still in flight, without waiting for it), then read afresh: this statement's snapshot
                    -- sees a revoke that committed while the lock waited.
                    PERFORM 1 FROM grants WHERE id = ANY(p_grants) ORDER BY id FOR SHARE;
                    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO revoked
                    FROM grants WHERE id = ANY(p_grants) AND revoked_at IS NOT NULL;
                    IF cardinality(revoked) > 0 THEN RETURN revoked; END IF;
                END IF;
                INSERT INTO share_log (stream, seq, kind, share_id, time_us, subject, provider, purpose, decision,
                                       caller, channel, body, prev_hash, hash)
                    SELECT p_stream, x.seq, x.kind, NULLIF(x.share_id, ''), x.time_us, NULLIF(x.subject, ''),
                           NULLIF(x.provider, ''), NULLIF(x.purpose, ''), NULLIF(x.decision, ''), NULLIF(x.caller, ''),
                           NULLIF(x.channel, ''), x.body, x.prev, x.hash
                    FROM unnest(r_seq, r_kind, r_share_id, r_time_us, r_subject, r_provider, r_purpose, r_decision,
                                r_caller, r_channel, r_body, r_prev, r_hash)
                        AS x(seq, kind, share_id, time_us, subject, provider, purpose, decision, caller, channel, body, prev, hash);
                INSERT INTO share_grants (grant_id, share_id, provider)
                    SELECT * FROM unnest(l_grant, l_share, l_provider) ON CONFLICT DO NOTHING;
                INSERT INTO revocation_keys (share_id, provider, sealed, expires_at)
                    SELECT * FROM unnest(k_share, k_provider, k_sealed, k_expires)
                    ON CONFLICT (share_id) DO UPDATE SET provider = excluded.provider, sealed = excluded.sealed,
                        expires_at = excluded.expires_at;
                RETURN '{}';
            END
            $$;
            """),
        ("v8-append-batch-costs", """
            -- The batch function's statements run on plans made once per connection: with the default
            -- (auto) each call planned its INSERTs afresh, partial-index predicates read from the
            -- catalog and all, a fixed ~0.3 ms of the backend's CPU per batch.
            ALTER FUNCTION sharebroker_append_batch(text, text, bigint, text[], bigint[], text[], text[], bigint[],
                text[], text[], text[], text[], text[], text[], text[], bytea[], bytea[], text[], text[], text[],
                text[], text[], bytea[], bigint[]) SET plan_cache_mode = force_generic_plan;
            -- A record's body passes the 2 kB TOAST threshold and is compressed: lz4 at a fraction of
            -- pglz's CPU (new rows; a row already written keeps its compression, and reads take both),
            -- where the server was built with lz4 (PostgreSQL 14 and later, as packaged).
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
                    ALTER TABLE share_log ALTER COLUMN body SET COMPRESSION lz4;
                END IF;
            END
            $$;
            """),
        ("v9-revocation-key-sets", """
            -- Revocation keys once per grant and key set instead of once per share (as SQLite's v16): each
            -- share's grant link names the set it sent, a revocation's shares remember the grant that
            -- covered them, and boxes stored per share before this stay in revocation_keys.
            CREATE TABLE revocation_key_sets (
                grant_id text NOT NULL,
                key_set bigint NOT NULL,
                provider text NOT NULL,
                sealed bytea NOT NULL,
                expires_at bigint NOT NULL,
                PRIMARY KEY (grant_id, key_set)
            );
            CREATE INDEX revocation_key_sets_expiry ON revocation_key_sets(expires_at);
            ALTER TABLE share_grants ADD COLUMN key_set bigint;
            ALTER TABLE revocation_shares ADD COLUMN grant_id text;
            DROP FUNCTION sharebroker_append_batch(text, text, bigint, text[], bigint[], text[], text[], bigint[],
                text[], text[], text[], text[], text[], text[], text[], bytea[], bytea[], text[], text[], text[],
                text[], text[], bytea[], bigint[]);
            -- As v7, with the links' key sets (0: none), the key sets (one element per grant and set: a
            -- set stored already keeps its box and only moves its expiry on) and the links an outcome's
            -- keys move to a new set.
            CREATE FUNCTION sharebroker_append_batch(
                p_stream text, p_holder text, p_expires bigint, p_grants text[],
                r_seq bigint[], r_kind text[], r_share_id text[], r_time_us bigint[], r_subject text[],
                r_provider text[], r_purpose text[], r_decision text[], r_caller text[], r_channel text[],
                r_body text[], r_prev bytea[], r_hash bytea[],
                l_grant text[], l_share text[], l_provider text[], l_set bigint[],
                k_grant text[], k_set bigint[], k_provider text[], k_sealed bytea[], k_expires bigint[],
                u_grant text[], u_share text[], u_set bigint[]) RETURNS text[]
            LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
            DECLARE revoked text[];
            BEGIN
                UPDATE log_streams SET expires_at = p_expires WHERE stream = p_stream AND holder = p_holder;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'log stream % is no longer held by this node: another node took it', p_stream
                        USING ERRCODE = 'SB001';
                END IF;
                IF cardinality(p_grants) > 0 THEN
                    PERFORM 1 FROM grants WHERE id = ANY(p_grants) ORDER BY id FOR SHARE;
                    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO revoked
                    FROM grants WHERE id = ANY(p_grants) AND revoked_at IS NOT NULL;
                    IF cardinality(revoked) > 0 THEN RETURN revoked; END IF;
                END IF;
                INSERT INTO share_log (stream, seq, kind, share_id, time_us, subject, provider, purpose, decision,
                                       caller, channel, body, prev_hash, hash)
                    SELECT p_stream, x.seq, x.kind, NULLIF(x.share_id, ''), x.time_us, NULLIF(x.subject, ''),
                           NULLIF(x.provider, ''), NULLIF(x.purpose, ''), NULLIF(x.decision, ''), NULLIF(x.caller, ''),
                           NULLIF(x.channel, ''), x.body, x.prev, x.hash
                    FROM unnest(r_seq, r_kind, r_share_id, r_time_us, r_subject, r_provider, r_purpose, r_decision,
                                r_caller, r_channel, r_body, r_prev, r_hash)
                        AS x(seq, kind, share_id, time_us, subject, provider, purpose, decision, caller, channel, body, prev, hash);
                INSERT INTO share_grants (grant_id, share_id, provider, key_set)
                    SELECT x.g, x.s, x.p, NULLIF(x.k, 0) FROM unnest(l_grant, l_share, l_provider, l_set) AS x(g, s, p, k)
                    ON CONFLICT DO NOTHING;
                UPDATE share_grants SET key_set = x.k FROM unnest(u_grant, u_share, u_set) AS x(g, s, k)
                    WHERE share_grants.grant_id = x.g AND share_grants.share_id = x.s;
                INSERT INTO revocation_key_sets (grant_id, key_set, provider, sealed, expires_at)
                    SELECT * FROM unnest(k_grant, k_set, k_provider, k_sealed, k_expires)
                    ON CONFLICT (grant_id, key_set) DO UPDATE SET expires_at = excluded.expires_at
                    WHERE excluded.expires_at > revocation_key_sets.expires_at;
                RETURN '{}';
            END
            $$;
            """),
    ]
}

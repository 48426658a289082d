-- EXPLAIN (ANALYZE, BUFFERS) of every statement of send-code, verify-code and the authenticated
-- lookups, as the store sends them on PostgreSQL (issue 13), on a market database — run it on
-- grown tables (bench/grow.sql) to check that no hot query reads what retention has not removed
-- yet. Everything runs in one transaction that is rolled back.
--   psql -d marque_bench_kg -f bench/explain.sql
\set ON_ERROR_STOP on
\set phone '''+996709000001'''
\set now '(now() AT TIME ZONE ''utc'')'
BEGIN;

\echo '--- send-code 1/5: the number''s failure record, locked (placeholder when new)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
INSERT INTO phone_failures (phone_number, consecutive, updated_at) VALUES (:phone, 0, :now)
ON CONFLICT (phone_number) DO UPDATE SET phone_number = excluded.phone_number
RETURNING consecutive, locked_until;

\echo '--- send-code 2/5: supersede, new code, its message (pg_batch::IssueInserts)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH s AS (UPDATE phone_verifications SET status = 'superseded'
           WHERE phone_number = :phone AND purpose = 'login' AND status = 'active' RETURNING 1),
     c AS (INSERT INTO phone_verifications (phone_number, code_hash, status, attempts, client_ip,
           created_at, expires_at, purpose, challenge_id, channel)
           VALUES (:phone, '\x00', 'active', 0, '127.0.0.1', :now, :now + interval '10 minutes',
                   'login', 'explain-1', 'sms') RETURNING 1),
     o AS (INSERT INTO outbox (channel, fallback_channels, challenge_id, recipient, payload, status,
           attempts, next_attempt_at, expires_at, created_at)
           SELECT 'sms', '', 'explain-1', :phone, '\x00', 'pending', 0, :now,
                  :now + interval '10 minutes', :now WHERE TRUE RETURNING 1)
SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM o);

\echo '--- send-code 3/5: lock the buckets, the SMS day and the prefix (pg_batch::LockRows)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH b AS (INSERT INTO rate_limits (bucket, window_started_at, hits, last_hit_at)
           SELECT k.key, :now, 0, :now
           FROM unnest(ARRAY['send:ip:127.0.0.1', 'send:phone:' || :phone, 'sms:day']::text[])
                WITH ORDINALITY AS k (key, n) ORDER BY k.n
           ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket
           RETURNING bucket, window_started_at, hits, last_hit_at),
     p AS (INSERT INTO sms_prefix_stats (prefix, hour_start, sent, baseline_milli)
           SELECT q.prefix, date_trunc('hour', :now), 0, 0
           FROM (SELECT '+996709'::text AS prefix) AS q WHERE q.prefix IS NOT NULL
           ON CONFLICT (prefix) DO UPDATE SET prefix = excluded.prefix
           RETURNING prefix, hour_start, sent, baseline_milli)
SELECT FALSE, bucket, window_started_at, hits, last_hit_at, 0::int8 FROM b
UNION ALL SELECT TRUE, prefix, hour_start, sent, NULL, baseline_milli FROM p;

\echo '--- send-code 4/5: the new counters (pg_batch::StoreCounters)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH b AS (UPDATE rate_limits AS r SET window_started_at = v.w, hits = v.h, last_hit_at = v.l
           FROM unnest(ARRAY['send:ip:127.0.0.1', 'send:phone:' || :phone, 'sms:day']::text[],
                       ARRAY[:now, :now, :now]::timestamp[], ARRAY[1, 1, 1]::int4[],
                       ARRAY[:now, :now, :now]::timestamp[]) AS v (k, w, h, l)
           WHERE r.bucket = v.k RETURNING 1),
     p AS (UPDATE sms_prefix_stats SET hour_start = date_trunc('hour', :now), sent = 1,
           baseline_milli = 0 WHERE prefix = '+996709' RETURNING 1)
SELECT (SELECT count(*) FROM b) + (SELECT count(*) FROM p);

\echo '--- send-code 5/5 (the other market, before the transaction): its counts of the shared buckets'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT bucket, window_started_at, hits, last_hit_at FROM rate_limits
WHERE bucket = ANY (ARRAY['send:ip:127.0.0.1', 'sms:day']);

\echo '--- outbox worker: claim a batch (partial index of pending rows)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
UPDATE outbox SET locked_until = :now + interval '30 seconds' WHERE id IN (
    SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now
    AND (locked_until IS NULL OR locked_until < :now) ORDER BY id LIMIT 32 FOR UPDATE SKIP LOCKED)
RETURNING id, channel, recipient, payload, attempts, expires_at, fallback_channels, fallback_from;

\echo '--- outbox worker: mark one sent (by primary key)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
UPDATE outbox SET status = 'sent', sent_at = :now,
       payload = CASE WHEN fallback_channels = '' THEN '\x'::bytea ELSE payload END,
       locked_until = NULL, provider = 'console', provider_message_id = NULL, segments = NULL
WHERE id = (SELECT max(id) FROM outbox);

\echo '--- verify-code 1/3: the newest code of the number, locked'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, code_hash, status, attempts, expires_at FROM phone_verifications
WHERE phone_number = :phone AND purpose = 'login' ORDER BY id DESC LIMIT 1 FOR UPDATE;

\echo '--- verify-code 2/3: consume it'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
UPDATE phone_verifications SET status = 'consumed', consumed_at = :now
WHERE id = (SELECT max(id) FROM phone_verifications WHERE phone_number = :phone);

INSERT INTO users (phone_number, is_verified, is_active, created_at, updated_at)
VALUES (:phone, TRUE, TRUE, :now, :now);

\echo '--- verify-code 3/3 (returning user): login, session, refresh token, audit (pg_batch::ReturningSignIn)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH u AS (UPDATE users SET last_login = :now, is_verified = TRUE, updated_at = :now
           WHERE phone_number = :phone AND is_active
           RETURNING id, phone_number, full_name, profile_image_url, is_verified, last_login,
                     created_at, updated_at),
     s AS (INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, user_agent,
           client_ip) SELECT 'explain-session', u.id, :now, :now + interval '30 days', :now,
           'bench', '127.0.0.1' FROM u RETURNING id),
     r AS (INSERT INTO refresh_tokens (session_id, token_hash, created_at, expires_at)
           SELECT s.id, '\x01', :now, :now + interval '30 days' FROM s RETURNING 1),
     a AS (INSERT INTO audit_log (occurred_at, event, user_id, client_ip, user_agent, detail)
           SELECT :now, 'sign_in', u.id, '127.0.0.1', 'bench', NULL FROM u RETURNING 1)
SELECT u.id, u.phone_number, u.full_name, u.profile_image_url, u.is_verified, u.last_login,
       u.created_at, u.updated_at,
       EXISTS (SELECT 1 FROM sessions k WHERE k.user_id = u.id
               AND k.user_agent IS NOT DISTINCT FROM 'bench')
FROM u;

\echo '--- auth: profile (session ⋈ user) and verify-token (session only)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT u.id, u.phone_number, u.full_name, u.profile_image_url, u.is_verified, u.last_login,
       u.created_at, u.updated_at
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = 'explain-session' AND s.user_id = (SELECT id FROM users WHERE phone_number = :phone)
  AND s.revoked_at IS NULL AND s.expires_at > :now AND u.is_active LIMIT 1;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT expires_at FROM sessions
WHERE id = 'explain-session' AND user_id = (SELECT id FROM users WHERE phone_number = :phone)
  AND revoked_at IS NULL AND expires_at > :now LIMIT 1;

ROLLBACK;

-- Grown tables for the bench's `grown-*` scenarios (bench/run.sh): :rows rows each in the
-- challenge, outbox and rate-limit tables of one market database, as a busy day leaves them
-- before retention removes them (codes 24 h after expiry, buckets 48 h after their last hit,
-- sent messages after 7 days). Mostly finished rows; none of them is due for delivery, so the
-- outbox worker has nothing to send. Numbers are outside every range the bench sends to
-- (+99677… in KG, +1212… in US; only the SQL sees them, so they need not be valid).
--   psql -v rows=1000000 -v cc=996 -d marque_bench_kg -f bench/grow.sql
\set ON_ERROR_STOP on
BEGIN;

-- Codes: one to three per number, spread over the last 30 hours; 55 % expired unused, 20 %
-- consumed, 20 % superseded, 4 % dead (too many wrong tries), 1 % still 'active' but expired.
INSERT INTO phone_verifications
    (phone_number, code_hash, status, attempts, client_ip, created_at, expires_at, consumed_at,
     purpose, challenge_id, channel)
SELECT '+' || :'cc' || '77' || lpad((i / 2)::text, 8, '0'),
       decode(md5(i::text), 'hex'),
       CASE WHEN i % 100 < 55 THEN 'expired'
            WHEN i % 100 < 75 THEN 'consumed'
            WHEN i % 100 < 95 THEN 'superseded'
            WHEN i % 100 < 99 THEN 'dead'
            ELSE 'active' END,
       CASE WHEN i % 100 BETWEEN 95 AND 98 THEN 3 ELSE 0 END,
       '10.' || (i % 250) || '.' || (i / 250 % 250) || '.' || (i % 7),
       t.at,
       t.at + interval '10 minutes',
       CASE WHEN i % 100 BETWEEN 55 AND 74 THEN t.at + interval '1 minute' END,
       CASE WHEN i % 50 = 0 THEN 'delete_account' ELSE 'login' END,
       'grown-' || i,
       'sms'
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT (now() AT TIME ZONE 'utc') - interval '30 hours'
                     + (i::float8 / :rows) * interval '29 hours' AS at) AS t;

-- Messages: 96 % sent (sealed body scrubbed), 2 % expired, 2 % failed; over the last 6 days.
INSERT INTO outbox
    (channel, recipient, payload, status, attempts, next_attempt_at, locked_until, expires_at,
     created_at, sent_at, last_error, challenge_id, fallback_channels, provider,
     provider_message_id, delivery_status, delivered_at, segments)
SELECT 'sms',
       '+' || :'cc' || '77' || lpad((i / 2)::text, 8, '0'),
       '\x'::bytea,
       CASE WHEN i % 100 < 96 THEN 'sent' WHEN i % 100 < 98 THEN 'expired' ELSE 'failed' END,
       CASE WHEN i % 100 < 96 THEN 1 ELSE 8 END,
       t.at,
       NULL,
       t.at + interval '10 minutes',
       t.at,
       CASE WHEN i % 100 < 96 THEN t.at + interval '1 second' END,
       CASE WHEN i % 100 >= 98 THEN 'provider said no' END,
       'grown-' || i,
       '',
       CASE WHEN i % 100 < 96 THEN 'console' END,
       CASE WHEN i % 100 < 96 THEN 'grown-msg-' || i END,
       CASE WHEN i % 100 < 90 THEN 'delivered' END,
       CASE WHEN i % 100 < 90 THEN t.at + interval '5 seconds' END,
       CASE WHEN i % 100 < 96 THEN 1 END
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT (now() AT TIME ZONE 'utc') - interval '6 days'
                     + (i::float8 / :rows) * interval '6 days' AS at) AS t;

-- Buckets: 70 % per number, 25 % per IPv4, 5 % per IPv6 /64 and /48, for sends and
-- verifications; last hit within the last 47 hours, windows long closed.
INSERT INTO rate_limits (bucket, window_started_at, hits, last_hit_at)
SELECT CASE WHEN i % 100 < 70 THEN 'send:phone:+' || :'cc' || '77' || lpad(i::text, 8, '0')
            WHEN i % 100 < 85 THEN 'send:ip:10.' || (i % 250) || '.' || (i / 250 % 250) || '.' || (i / 62500 % 250)
            WHEN i % 100 < 95 THEN 'verify:ip:10.' || (i % 250) || '.' || (i / 250 % 250) || '.' || (i / 62500 % 250)
            WHEN i % 100 < 98 THEN 'send:ip6/64:2001:DB8:' || to_hex(i) || '::/64'
            ELSE 'send:ip6/48:2001:DB8:' || to_hex(i) || '::/48' END || ':' || i,
       t.at - interval '5 minutes',
       1 + i % 3,
       t.at
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT (now() AT TIME ZONE 'utc') - interval '47 hours'
                     + (i::float8 / :rows) * interval '46 hours' AS at) AS t;

COMMIT;
VACUUM ANALYZE phone_verifications;
VACUUM ANALYZE outbox;
VACUUM ANALYZE rate_limits;

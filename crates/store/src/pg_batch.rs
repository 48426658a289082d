//! PostgreSQL statements that do in one round trip what the portable code does in several
//! (issue 13: send-code was 14 statements). Each is a query type with fixed SQL text, so diesel
//! prepares it once per connection and PostgreSQL never parses or plans it again (a
//! `diesel::sql_query` is prepared anew on every call); variable-length inputs are bound as
//! arrays and expanded with `unnest`. The decisions stay in the domain: these statements only lock
//! rows and write what Rust decided.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Binary, Bool, Integer, Nullable, SmallInt, Text, Timestamp,
};

/// Locks, in one statement (issue 13), every shared row a batch of send-codes decides on: the
/// `phone_failures` rows of `failures`, then the `rate_limits` rows of `keys`, then the
/// `sms_prefix_stats` rows of `prefixes` — creating a placeholder for each row that does not exist
/// yet (no failures; `hits = 0`; a prefix with nothing sent and no history) — and returns their
/// committed states. Rows are locked in the order of the arrays (callers pass each sorted and
/// distinct, bucket keys with the SMS day bucket last), so transactions sharing rows always lock
/// them in the same order. The no-op `DO UPDATE` takes the row lock on an existing row, waiting
/// for any other holder, as `crate::connection::lock_rows` explains.
///
/// Rows: `(kind, key, a, b, c, d)` in no particular order, one per key: kind 0 a failure record
/// `(phone, updated_at, consecutive, locked_until, 0)`, kind 1 a bucket `(key, window_started_at,
/// hits, last_hit_at, 0)`, kind 2 a prefix `(prefix, hour_start, sent, NULL, baseline_milli)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockRows<'a> {
    /// Phone numbers (E.164) whose failure records to lock, in locking order, distinct.
    pub(crate) failures: &'a [&'a str],
    /// Bucket keys, in locking order, distinct.
    pub(crate) keys: &'a [&'a str],
    /// Window start and last hit of a placeholder bucket; `updated_at` of a placeholder failure
    /// record.
    pub(crate) now: NaiveDateTime,
    /// The prefixes whose counters to lock, in locking order, distinct.
    pub(crate) prefixes: &'a [&'a str],
    /// Hour start of a placeholder prefix row.
    pub(crate) hour: NaiveDateTime,
}

/// A row of [`LockRows`].
pub(crate) type LockedRow = (i16, String, NaiveDateTime, i32, Option<NaiveDateTime>, i64);

/// [`LockedRow`] kind of a `phone_failures` row.
pub(crate) const LOCKED_FAILURE: i16 = 0;
/// [`LockedRow`] kind of a `rate_limits` row.
pub(crate) const LOCKED_BUCKET: i16 = 1;
/// [`LockedRow`] kind of an `sms_prefix_stats` row.
pub(crate) const LOCKED_PREFIX: i16 = 2;

impl QueryId for LockRows<'_> {
    type QueryId = LockRows<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for LockRows<'_> {
    type SqlType = (
        SmallInt,
        Text,
        Timestamp,
        Integer,
        Nullable<Timestamp>,
        BigInt,
    );
}

impl<Conn> RunQueryDsl<Conn> for LockRows<'_> {}

impl QueryFragment<Pg> for LockRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // `WITH ORDINALITY … ORDER BY` keeps the caller's order: rows are inserted, and their
        // conflicting rows locked, one after the other in the order the SELECT yields them. The
        // final UNION ALL reads each CTE to its end before it starts the next, so the failure
        // records are locked first, then the buckets, then the prefixes.
        out.push_sql(
            "WITH f AS (INSERT INTO phone_failures (phone_number, consecutive, updated_at) \
             SELECT k.key, 0, ",
        );
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.failures)?;
        out.push_sql(
            "::text[]) WITH ORDINALITY AS k (key, n) ORDER BY k.n \
             ON CONFLICT (phone_number) DO UPDATE SET phone_number = excluded.phone_number \
             RETURNING phone_number, updated_at, consecutive, locked_until), \
             b AS (INSERT INTO rate_limits (bucket, window_started_at, hits, last_hit_at) \
             SELECT k.key, ",
        );
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", 0, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.keys)?;
        out.push_sql(
            "::text[]) WITH ORDINALITY AS k (key, n) ORDER BY k.n \
             ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket \
             RETURNING bucket, window_started_at, hits, last_hit_at), \
             p AS (INSERT INTO sms_prefix_stats (prefix, hour_start, sent, baseline_milli) \
             SELECT k.key, ",
        );
        out.push_bind_param::<Timestamp, _>(&self.hour)?;
        out.push_sql(", 0, 0 FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.prefixes)?;
        out.push_sql(
            "::text[]) WITH ORDINALITY AS k (key, n) ORDER BY k.n \
             ON CONFLICT (prefix) DO UPDATE SET prefix = excluded.prefix \
             RETURNING prefix, hour_start, sent, baseline_milli) \
             SELECT 0::int2, phone_number, updated_at, consecutive, locked_until, 0::int8 FROM f \
             UNION ALL SELECT 1::int2, bucket, window_started_at, hits, last_hit_at, 0::int8 FROM b \
             UNION ALL SELECT 2::int2, prefix, hour_start, sent, NULL, baseline_milli FROM p",
        );
        Ok(())
    }
}

/// New states of locked `rate_limits` rows, as parallel arrays (one entry per bucket).
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketWrites<'a> {
    /// Bucket keys.
    pub(crate) keys: Vec<&'a str>,
    /// `window_started_at` of each.
    pub(crate) window_started_at: Vec<NaiveDateTime>,
    /// `hits` of each.
    pub(crate) hits: Vec<i32>,
    /// `last_hit_at` of each.
    pub(crate) last_hit_at: Vec<NaiveDateTime>,
}

impl<'a> BucketWrites<'a> {
    /// Adds one bucket's new state.
    pub(crate) fn push(&mut self, key: &'a str, state: &marque_domain::BucketState) {
        use crate::models::{to_db, to_i32};
        self.keys.push(key);
        self.window_started_at.push(to_db(state.window_started_at));
        self.hits.push(to_i32(state.hits));
        self.last_hit_at.push(to_db(state.last_hit_at));
    }

    /// Writes the states with one `UPDATE … FROM unnest(…)` (the rows exist: they were locked).
    fn walk_update<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE rate_limits AS r SET window_started_at = v.w, hits = v.h, last_hit_at = v.l \
             FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.keys)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.window_started_at)?;
        out.push_sql("::timestamp[], ");
        out.push_bind_param::<Array<Integer>, _>(&self.hits)?;
        out.push_sql("::int4[], ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.last_hit_at)?;
        out.push_sql("::timestamp[]) AS v (k, w, h, l) WHERE r.bucket = v.k");
        Ok(())
    }
}

/// New states of locked counters, in one statement: the buckets and the prefixes' counters, each
/// as parallel arrays (empty arrays match no row, so the SQL text stays the same — one prepared
/// statement).
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreCounters<'a> {
    /// New bucket states.
    pub(crate) buckets: BucketWrites<'a>,
    /// The prefixes whose counters change.
    pub(crate) prefixes: Vec<&'a str>,
    /// Their new hour starts.
    pub(crate) hour_start: Vec<NaiveDateTime>,
    /// Their new sent counts.
    pub(crate) sent: Vec<i32>,
    /// Their new baselines, in thousandths of a message per hour.
    pub(crate) baseline_milli: Vec<i64>,
}

impl QueryId for StoreCounters<'_> {
    type QueryId = StoreCounters<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for StoreCounters<'_> {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for StoreCounters<'_> {}

impl QueryFragment<Pg> for StoreCounters<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH b AS (");
        self.buckets.walk_update(&mut out)?;
        out.push_sql(
            " RETURNING 1), p AS (UPDATE sms_prefix_stats AS s SET hour_start = v.h, sent = v.n, \
             baseline_milli = v.m FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.prefixes)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.hour_start)?;
        out.push_sql("::timestamp[], ");
        out.push_bind_param::<Array<Integer>, _>(&self.sent)?;
        out.push_sql("::int4[], ");
        out.push_bind_param::<Array<BigInt>, _>(&self.baseline_milli)?;
        // Counted so the caller can check that every row was there (they were locked).
        out.push_sql(
            "::int8[]) AS v (k, h, n, m) WHERE s.prefix = v.k RETURNING 1) \
             SELECT (SELECT count(*) FROM b) + (SELECT count(*) FROM p)",
        );
        Ok(())
    }
}

/// The rows of a batch of new codes, in one statement: each number's previous active code of the
/// purpose superseded, each new code inserted and, for each that has one, its outbox message
/// inserted. Parallel arrays, one entry per code (the SQL text is the same for any batch: one
/// prepared statement); a code without a message (a test number) has NULL message columns.
/// Data-modifying CTEs all see the statement's snapshot, so the supersede never touches the codes
/// inserted beside it — which is why a batch holds at most one code per number and purpose. Only
/// the numbers' own rows are touched.
#[derive(Debug, Clone, Default)]
pub(crate) struct IssueInserts<'a> {
    /// E.164 numbers.
    pub(crate) phone: Vec<&'a str>,
    /// Keyed hashes of the codes.
    pub(crate) code_hash: Vec<&'a [u8]>,
    /// Requesting clients' IPs.
    pub(crate) client_ip: Vec<Option<&'a str>>,
    /// Issue times (also the messages' creation and first attempt times).
    pub(crate) now: Vec<NaiveDateTime>,
    /// Ends of the codes' lives.
    pub(crate) expires_at: Vec<NaiveDateTime>,
    /// `OtpPurpose::as_str`.
    pub(crate) purpose: Vec<&'a str>,
    /// The challenge ids given to the clients.
    pub(crate) challenge_id: Vec<&'a str>,
    /// Channels the codes go out on.
    pub(crate) channel: Vec<&'a str>,
    /// The messages' first channels (NULL: no message).
    pub(crate) message_channel: Vec<Option<&'a str>>,
    /// The messages' next channels, joined (`Channel::join`).
    pub(crate) fallback_channels: Vec<Option<String>>,
    /// The messages' recipients, E.164.
    pub(crate) recipient: Vec<Option<&'a str>>,
    /// The sealed bodies.
    pub(crate) payload: Vec<Option<&'a [u8]>>,
    /// When each message is no longer worth sending.
    pub(crate) message_expires_at: Vec<Option<NaiveDateTime>>,
}

impl QueryId for IssueInserts<'_> {
    type QueryId = IssueInserts<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for IssueInserts<'_> {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for IssueInserts<'_> {}

impl QueryFragment<Pg> for IssueInserts<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH v AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.phone)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Binary>, _>(&self.code_hash)?;
        out.push_sql("::bytea[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.client_ip)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.now)?;
        out.push_sql("::timestamp[], ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.expires_at)?;
        out.push_sql("::timestamp[], ");
        out.push_bind_param::<Array<Text>, _>(&self.purpose)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.challenge_id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.channel)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.message_channel)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.fallback_channels)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.recipient)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Binary>>, _>(&self.payload)?;
        out.push_sql("::bytea[], ");
        out.push_bind_param::<Array<Nullable<Timestamp>>, _>(&self.message_expires_at)?;
        out.push_sql(
            "::timestamp[]) WITH ORDINALITY AS v (phone, code_hash, client_ip, now, expires_at, \
             purpose, challenge_id, channel, message_channel, fallback_channels, recipient, \
             payload, message_expires_at, n)), \
             s AS (UPDATE phone_verifications AS c SET status = 'superseded' FROM v \
             WHERE c.phone_number = v.phone AND c.purpose = v.purpose AND c.status = 'active' \
             RETURNING 1), \
             c AS (INSERT INTO phone_verifications (phone_number, code_hash, status, attempts, \
             client_ip, created_at, expires_at, purpose, challenge_id, channel) \
             SELECT phone, code_hash, 'active', 0, client_ip, now, expires_at, purpose, \
             challenge_id, channel FROM v ORDER BY n RETURNING 1), \
             o AS (INSERT INTO outbox (channel, fallback_channels, challenge_id, recipient, \
             payload, status, attempts, next_attempt_at, expires_at, created_at) \
             SELECT message_channel, fallback_channels, challenge_id, recipient, payload, \
             'pending', 0, now, message_expires_at, now FROM v \
             WHERE message_channel IS NOT NULL ORDER BY n RETURNING 1) \
             SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM o)",
        );
        Ok(())
    }
}

/// A returning user's sign-in in one statement (issue 13: it was six): the active user of `phone`
/// gets its login recorded (`last_login`, `is_verified`, `updated_at`), and — only when there is
/// such a user — the new session, its first refresh token and the `sign_in` audit row are
/// inserted. Returns the user's columns (as `crate::models::USER_COLUMNS`) and whether the user
/// already had a session (of any state) signed in with this `User-Agent` — read from the
/// statement's snapshot, so the new session does not count. No row: no active user with that
/// number (a new number, or a disabled account), and nothing was written; the caller then takes
/// the portable path, which tells the two apart.
#[derive(Debug, Clone)]
pub(crate) struct ReturningSignIn<'a> {
    /// E.164 number.
    pub(crate) phone: &'a str,
    /// Sign-in time.
    pub(crate) now: NaiveDateTime,
    /// The new session's id.
    pub(crate) session_id: &'a str,
    /// The new session's end.
    pub(crate) session_expires_at: NaiveDateTime,
    /// The client's `User-Agent`, as the session stores it.
    pub(crate) user_agent: Option<&'a str>,
    /// The client's IP.
    pub(crate) client_ip: Option<&'a str>,
    /// Keyed hash of the first refresh token.
    pub(crate) refresh_hash: &'a [u8],
    /// The refresh token's end.
    pub(crate) refresh_expires_at: NaiveDateTime,
    /// The audit row's event kind (`sign_in`).
    pub(crate) audit_event: &'a str,
    /// The audit row's `User-Agent` (truncated as every audit row's).
    pub(crate) audit_user_agent: Option<&'a str>,
    /// The audit row's detail.
    pub(crate) audit_detail: Option<&'a str>,
}

/// The columns [`ReturningSignIn`] returns: the user's, then "known device".
pub(crate) type ReturningSignInRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
    NaiveDateTime,
    bool,
);

impl QueryId for ReturningSignIn<'_> {
    type QueryId = ReturningSignIn<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for ReturningSignIn<'_> {
    type SqlType = (
        BigInt,
        Text,
        Nullable<Text>,
        Nullable<Text>,
        Bool,
        Nullable<Timestamp>,
        Timestamp,
        Timestamp,
        Bool,
    );
}

impl<Conn> RunQueryDsl<Conn> for ReturningSignIn<'_> {}

impl QueryFragment<Pg> for ReturningSignIn<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH u AS (UPDATE users SET last_login = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", is_verified = TRUE, updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" WHERE phone_number = ");
        out.push_bind_param::<Text, _>(&self.phone)?;
        out.push_sql(
            " AND is_active RETURNING id, phone_number, full_name, profile_image_url, \
             is_verified, last_login, created_at, updated_at), \
             s AS (INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, \
             user_agent, client_ip) SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.session_id)?;
        out.push_sql(", u.id, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.session_expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_ip)?;
        out.push_sql(
            " FROM u RETURNING id), r AS (INSERT INTO refresh_tokens (session_id, token_hash, \
             created_at, expires_at) SELECT s.id, ",
        );
        out.push_bind_param::<Binary, _>(&self.refresh_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.refresh_expires_at)?;
        out.push_sql(
            " FROM s RETURNING 1), a AS (INSERT INTO audit_log (occurred_at, event, user_id, \
             client_ip, user_agent, detail) SELECT ",
        );
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.audit_event)?;
        out.push_sql(", u.id, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_ip)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.audit_user_agent)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.audit_detail)?;
        // `r` and `a` are not read by the final SELECT, but data-modifying CTEs always run to
        // completion.
        out.push_sql(
            " FROM u RETURNING 1) SELECT u.id, u.phone_number, u.full_name, \
             u.profile_image_url, u.is_verified, u.last_login, u.created_at, u.updated_at, \
             EXISTS (SELECT 1 FROM sessions k WHERE k.user_id = u.id AND \
             k.user_agent IS NOT DISTINCT FROM ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(") FROM u");
        Ok(())
    }
}

/// Messages handed to their providers, marked in one statement (issue 13: one commit per message
/// was most of the outbox worker's database time): status `sent`, the send time, the providers'
/// receipts, the lease released, and the sealed body scrubbed unless a fallback channel is left
/// (a later "undelivered" report may still send the code there; the text is never stored).
/// Parallel arrays, one entry per message.
#[derive(Debug, Clone)]
pub(crate) struct MarkSent<'a> {
    /// When they were sent.
    pub(crate) now: NaiveDateTime,
    /// Outbox row ids.
    pub(crate) ids: Vec<i64>,
    /// Provider names.
    pub(crate) provider: Vec<&'a str>,
    /// The providers' message ids.
    pub(crate) provider_message_id: Vec<Option<&'a str>>,
    /// SMS segments billed (NULL on messenger channels).
    pub(crate) segments: Vec<Option<i32>>,
}

impl QueryId for MarkSent<'_> {
    type QueryId = MarkSent<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn> RunQueryDsl<Conn> for MarkSent<'_> {}

impl QueryFragment<Pg> for MarkSent<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE outbox AS o SET status = 'sent', sent_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(
            ", payload = CASE WHEN o.fallback_channels = '' THEN ''::bytea ELSE o.payload END, \
             locked_until = NULL, provider = v.p, provider_message_id = v.m, segments = v.s \
             FROM unnest(",
        );
        out.push_bind_param::<Array<BigInt>, _>(&self.ids)?;
        out.push_sql("::int8[], ");
        out.push_bind_param::<Array<Text>, _>(&self.provider)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.provider_message_id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Integer>>, _>(&self.segments)?;
        out.push_sql("::int4[]) AS v (id, p, m, s) WHERE o.id = v.id");
        Ok(())
    }
}

/// The verdict on a challenge written to its row, in one prepared statement for every verdict:
/// the new status, and the attempt count and consumption time when given (NULL keeps the stored
/// value).
///
/// diesel never keeps an `UPDATE` prepared (its SQL text may vary with the changeset, so every
/// call is parsed and planned anew: issue 13 found one plan per call of the code-consuming update
/// on the verify path); this statement's text is fixed, so it is prepared once per connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetChallengeStatus<'a> {
    /// The challenge's row id.
    pub(crate) id: i64,
    /// Its new status (`ChallengeStatus::as_str`).
    pub(crate) status: &'a str,
    /// Its new attempt count, if it changes.
    pub(crate) attempts: Option<i32>,
    /// When it was consumed, if it was.
    pub(crate) consumed_at: Option<NaiveDateTime>,
}

impl QueryId for SetChallengeStatus<'_> {
    type QueryId = SetChallengeStatus<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn> RunQueryDsl<Conn> for SetChallengeStatus<'_> {}

impl QueryFragment<Pg> for SetChallengeStatus<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE phone_verifications SET status = ");
        out.push_bind_param::<Text, _>(&self.status)?;
        out.push_sql(", attempts = COALESCE(");
        out.push_bind_param::<Nullable<Integer>, _>(&self.attempts)?;
        out.push_sql(", attempts), consumed_at = COALESCE(");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.consumed_at)?;
        out.push_sql(", consumed_at) WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::pg::PgConnection;

    use super::*;

    diesel::table! {
        phone_verifications (id) {
            id -> Int8,
            status -> Text,
            attempts -> Int4,
            consumed_at -> Nullable<Timestamp>,
        }
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    /// The statements PostgreSQL holds prepared on `conn` whose text starts with `prefix`.
    fn prepared(conn: &mut PgConnection, prefix: &str) -> i64 {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_prepared_statements WHERE starts_with(statement, $1)",
        )
        .bind::<Text, _>(prefix)
        .get_result::<Count>(conn)
        .unwrap()
        .n
    }

    /// diesel parses every `UPDATE` anew; `SetChallengeStatus` is prepared once per connection
    /// and writes each verdict's columns, keeping the others.
    #[test]
    fn the_verdict_update_is_prepared_once_per_connection() {
        let Some(admin) = marque_testkit::postgres_admin_url() else {
            return;
        };
        let db = marque_testkit::TestDatabase::postgres(&admin).unwrap();
        let mut conn = PgConnection::establish(db.url()).unwrap();
        conn.batch_execute(
            "CREATE TABLE phone_verifications (id int8 PRIMARY KEY, status text NOT NULL, \
             attempts int4 NOT NULL, consumed_at timestamp); \
             INSERT INTO phone_verifications VALUES (1, 'active', 0, NULL), \
             (2, 'active', 1, NULL)",
        )
        .unwrap();
        let table = phone_verifications::table;
        for id in [1, 2] {
            diesel::update(table.find(id))
                .set(phone_verifications::status.eq("active"))
                .execute(&mut conn)
                .unwrap();
        }
        assert_eq!(prepared(&mut conn, "UPDATE"), 0, "diesel does not keep it");
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let verdicts = [
            SetChallengeStatus {
                id: 1,
                status: "consumed",
                attempts: None,
                consumed_at: Some(at),
            },
            SetChallengeStatus {
                id: 2,
                status: "active",
                attempts: Some(2),
                consumed_at: None,
            },
            SetChallengeStatus {
                id: 2,
                status: "expired",
                attempts: None,
                consumed_at: None,
            },
        ];
        for verdict in verdicts {
            assert_eq!(verdict.execute(&mut conn).unwrap(), 1);
        }
        assert_eq!(prepared(&mut conn, "UPDATE"), 1);
        let rows: Vec<(i64, String, i32, Option<NaiveDateTime>)> = table
            .order(phone_verifications::id)
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "consumed".to_owned(), 0, Some(at)),
                (2, "expired".to_owned(), 2, None),
            ]
        );
    }
}

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
use diesel::sql_types::{Array, BigInt, Binary, Bool, Integer, Nullable, Text, Timestamp};

/// Locks the `rate_limits` rows of `keys` and, when given, the `sms_prefix_stats` row of
/// `prefix`, creating a placeholder for each row that does not exist yet (`hits = 0`; a prefix
/// with nothing sent and no history), and returns their committed states — one statement
/// (issue 13). Rows are locked in the order of `keys` (callers pass the request's buckets sorted,
/// then the SMS day bucket), then the prefix, so transactions sharing rows always lock them in the
/// same order. The no-op `DO UPDATE` takes the row lock on an existing row, waiting for any other
/// holder, as `crate::connection::lock_buckets` explains.
///
/// Rows: `(is_prefix, key, window_started_at | hour_start, hits | sent, last_hit_at | NULL,
/// 0 | baseline_milli)`, one per key and one for the prefix, in no particular order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockRows<'a> {
    /// Bucket keys, in locking order, distinct.
    pub(crate) keys: &'a [&'a str],
    /// Window start and last hit of a placeholder bucket.
    pub(crate) now: NaiveDateTime,
    /// The prefix whose counters to lock, if any.
    pub(crate) prefix: Option<&'a str>,
    /// Hour start of a placeholder prefix row.
    pub(crate) hour: NaiveDateTime,
}

/// A row of [`LockRows`].
pub(crate) type LockedRow = (bool, String, NaiveDateTime, i32, Option<NaiveDateTime>, i64);

impl QueryId for LockRows<'_> {
    type QueryId = LockRows<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for LockRows<'_> {
    type SqlType = (Bool, Text, Timestamp, Integer, Nullable<Timestamp>, BigInt);
}

impl<Conn> RunQueryDsl<Conn> for LockRows<'_> {}

impl QueryFragment<Pg> for LockRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // `WITH ORDINALITY … ORDER BY` keeps the caller's order: rows are inserted, and their
        // conflicting rows locked, one after the other in the order the SELECT yields them. The
        // final UNION ALL reads `b` to its end before it starts `p`, so the buckets are locked
        // before the prefix.
        out.push_sql(
            "WITH b AS (INSERT INTO rate_limits (bucket, window_started_at, hits, last_hit_at) \
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
             SELECT q.prefix, ",
        );
        out.push_bind_param::<Timestamp, _>(&self.hour)?;
        out.push_sql(", 0, 0 FROM (SELECT ");
        out.push_bind_param::<Nullable<Text>, _>(&self.prefix)?;
        out.push_sql(
            "::text AS prefix) AS q WHERE q.prefix IS NOT NULL \
             ON CONFLICT (prefix) DO UPDATE SET prefix = excluded.prefix \
             RETURNING prefix, hour_start, sent, baseline_milli) \
             SELECT FALSE, bucket, window_started_at, hits, last_hit_at, 0::int8 FROM b \
             UNION ALL SELECT TRUE, prefix, hour_start, sent, NULL, baseline_milli FROM p",
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

/// New states of locked counters, in one statement: the buckets and, when given, the prefix
/// counters (a NULL prefix matches no row, so the SQL text stays the same — one prepared
/// statement).
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreCounters<'a> {
    /// New bucket states.
    pub(crate) buckets: BucketWrites<'a>,
    /// The prefix whose counters change (`None`: none).
    pub(crate) prefix: Option<&'a str>,
    /// Its new hour start, sent count and baseline (thousandths of a message per hour).
    pub(crate) prefix_counters: (Option<NaiveDateTime>, Option<i32>, Option<i64>),
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
        out.push_sql(" RETURNING 1), p AS (UPDATE sms_prefix_stats SET hour_start = ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.prefix_counters.0)?;
        out.push_sql(", sent = ");
        out.push_bind_param::<Nullable<Integer>, _>(&self.prefix_counters.1)?;
        out.push_sql(", baseline_milli = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.prefix_counters.2)?;
        out.push_sql(" WHERE prefix = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.prefix)?;
        // Counted so the caller can check that every row was there (they were locked).
        out.push_sql(" RETURNING 1) SELECT (SELECT count(*) FROM b) + (SELECT count(*) FROM p)");
        Ok(())
    }
}

/// The rows of a new code, in one statement: the number's previous active code of the purpose
/// superseded, the new code inserted and, when `message` is set, its outbox message inserted
/// (the SQL text is the same either way: one prepared statement). Data-modifying CTEs all see
/// the statement's snapshot, so the supersede never touches the code inserted beside it. Only
/// the number's own rows are touched: no lock any other number's request waits for.
#[derive(Debug, Clone)]
pub(crate) struct IssueInserts<'a> {
    /// E.164 number.
    pub(crate) phone: &'a str,
    /// Keyed hash of the code.
    pub(crate) code_hash: &'a [u8],
    /// Requesting client's IP.
    pub(crate) client_ip: Option<&'a str>,
    /// Issue time (also the message's creation and first attempt time).
    pub(crate) now: NaiveDateTime,
    /// End of the code's life.
    pub(crate) expires_at: NaiveDateTime,
    /// `OtpPurpose::as_str`.
    pub(crate) purpose: &'a str,
    /// The challenge id given to the client.
    pub(crate) challenge_id: &'a str,
    /// Channel the code goes out on.
    pub(crate) channel: &'a str,
    /// Whether a message goes out (false for a test number).
    pub(crate) message: bool,
    /// The message's first channel.
    pub(crate) message_channel: Option<&'a str>,
    /// The message's next channels, joined (`Channel::join`).
    pub(crate) fallback_channels: Option<String>,
    /// The message's recipient, E.164.
    pub(crate) recipient: Option<&'a str>,
    /// The sealed body.
    pub(crate) payload: Option<&'a [u8]>,
    /// When the message is no longer worth sending.
    pub(crate) message_expires_at: Option<NaiveDateTime>,
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
        out.push_sql(
            "WITH s AS (UPDATE phone_verifications SET status = 'superseded' \
             WHERE phone_number = ",
        );
        out.push_bind_param::<Text, _>(&self.phone)?;
        out.push_sql(" AND purpose = ");
        out.push_bind_param::<Text, _>(&self.purpose)?;
        out.push_sql(
            " AND status = 'active' RETURNING 1), c AS (INSERT INTO phone_verifications \
             (phone_number, code_hash, status, attempts, client_ip, created_at, expires_at, \
             purpose, challenge_id, channel) VALUES (",
        );
        out.push_bind_param::<Text, _>(&self.phone)?;
        out.push_sql(", ");
        out.push_bind_param::<Binary, _>(&self.code_hash)?;
        out.push_sql(", 'active', 0, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_ip)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.purpose)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.challenge_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.channel)?;
        out.push_sql(
            ") RETURNING 1), o AS (INSERT INTO outbox (channel, fallback_channels, challenge_id, \
             recipient, payload, status, attempts, next_attempt_at, expires_at, created_at) \
             SELECT ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.message_channel)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.fallback_channels)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.challenge_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.recipient)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Binary>, _>(&self.payload)?;
        out.push_sql(", 'pending', 0, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.message_expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" WHERE ");
        out.push_bind_param::<Bool, _>(&self.message)?;
        out.push_sql(" RETURNING 1) SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM o)");
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

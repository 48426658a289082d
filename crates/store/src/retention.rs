//! [`RetentionRepository`] on a market database: ended rows deleted in bounded batches.
//!
//! Each batch is two short statements outside any long transaction: select up to
//! `batch_size` keys by an indexed column (`expires_at`, `last_hit_at`, `created_at`,
//! `revoked_at`, `occurred_at`; see migration `2026-12-02-000400_audit_retention`), then delete
//! those keys *with the condition repeated*, so a row that came back to life in between (a
//! rate-limit bucket hit again) is kept.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use marque_domain::{Purged, RepoError, RetentionPolicy, RetentionRepository};
use marque_markets::Market;
use tracing::instrument;

use crate::MarketStore;
use crate::auth::OUTBOX_PENDING;
use crate::connection::DbConnection;
use crate::models::to_db;
use crate::schema::{
    audit_log, email_tokens, messenger_logins, messenger_seen, outbox, phone_failures,
    phone_verifications, rate_limits, refresh_tokens, sessions,
};

/// Deletes in batches of `$batch` the rows of `$table` (key column `$key` of type `$ty`) matching
/// `$cond`, or whose column `$col` is before `$cutoff`; evaluates to the number deleted.
macro_rules! purge_batches {
    ($conn:expr, $batch:expr, $table:ident, $key:ident : $ty:ty, $col:ident < $cutoff:expr) => {
        purge_batches!($conn, $batch, $table, $key: $ty, $table::$col.lt($cutoff))
    };
    ($conn:expr, $batch:expr, $table:ident, $key:ident : $ty:ty, $cond:expr) => {{
        let conn: &mut DbConnection = $conn;
        let batch: i64 = $batch;
        let mut deleted: u64 = 0;
        loop {
            let keys = $table::table
                .filter($cond)
                .select($table::$key)
                .order($table::$key.asc())
                .limit(batch)
                .load::<$ty>(conn)?;
            if keys.is_empty() {
                break;
            }
            let n = diesel::delete(
                $table::table
                    .filter($table::$key.eq_any(&keys))
                    .filter($cond),
            )
            .execute(conn)?;
            deleted += n as u64;
            if (keys.len() as i64) < batch {
                break;
            }
        }
        deleted
    }};
}

impl RetentionRepository for MarketStore {
    fn market(&self) -> Market {
        MarketStore::market(self)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn purge(&self, now: DateTime<Utc>, policy: &RetentionPolicy) -> Result<Purged, RepoError> {
        let batch = i64::from(policy.batch_size.max(1));
        let challenges = to_db(now - policy.challenges);
        let buckets = to_db(now - policy.rate_limits);
        let messages = to_db(now - policy.outbox);
        let ended = to_db(now - policy.sessions);
        let audit = to_db(now - policy.audit);
        self.with_conn(|conn| {
            let mut p = Purged {
                challenges: purge_batches!(
                    conn, batch, phone_verifications, id: i64, expires_at < challenges
                ),
                rate_limits: purge_batches!(
                    conn,
                    batch,
                    rate_limits,
                    bucket: String,
                    rate_limits::last_hit_at
                        .lt(buckets)
                        .and(rate_limits::window_started_at.lt(buckets))
                ),
                // Failure counts of numbers idle that long, unless still locked.
                phone_failures: purge_batches!(
                    conn,
                    batch,
                    phone_failures,
                    phone_number: String,
                    phone_failures::updated_at.lt(buckets).and(
                        phone_failures::locked_until
                            .is_null()
                            .or(phone_failures::locked_until.lt(buckets))
                    )
                ),
                outbox: purge_batches!(
                    conn,
                    batch,
                    outbox,
                    id: i64,
                    outbox::created_at.lt(messages).and(
                        outbox::status
                            .ne(OUTBOX_PENDING)
                            .or(outbox::expires_at.lt(messages))
                    )
                ),
                ..Purged::default()
            };
            // Expired sessions, then revoked ones: one indexed column each. Their refresh
            // tokens go with them (ON DELETE CASCADE).
            p.sessions = purge_batches!(conn, batch, sessions, id: String, expires_at < ended);
            p.sessions += purge_batches!(conn, batch, sessions, id: String, revoked_at < ended);
            // Expired generations of sessions still kept (a presented expired token is refused
            // whatever its row says, so reuse detection loses nothing).
            p.refresh_tokens =
                purge_batches!(conn, batch, refresh_tokens, id: i64, expires_at < ended);
            p.audit = purge_batches!(conn, batch, audit_log, id: i64, occurred_at < audit);
            // Messenger logins (with any tokens never polled) and handled webhook events, as
            // long as challenges (issue 9).
            p.messenger =
                purge_batches!(conn, batch, messenger_logins, id: String, expires_at < challenges);
            p.messenger += purge_batches!(
                conn, batch, messenger_seen, event_id: String, received_at < challenges
            );
            // Email link tokens once expired or used, as long as challenges (issue 10).
            p.email_tokens =
                purge_batches!(conn, batch, email_tokens, id: i64, expires_at < challenges);
            p.email_tokens +=
                purge_batches!(conn, batch, email_tokens, id: i64, used_at < challenges);
            // Sent messages keep their sealed code only while a delivery report could still
            // move them to another channel: once the code expired, it goes.
            diesel::update(
                outbox::table
                    .filter(outbox::status.eq("sent"))
                    .filter(outbox::expires_at.lt(to_db(now)))
                    .filter(outbox::fallback_channels.ne(""))
                    .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "LENGTH(payload) > 0",
                    )),
            )
            .set(outbox::payload.eq(Vec::<u8>::new()))
            .execute(conn)?;
            Ok(p)
        })
    }
}

//! [`OutboxRepository`] on a market database.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use marque_domain::{OutboxMessage, OutboxRepository, RepoError};
use marque_markets::Market;
use tracing::instrument;

use crate::auth::OUTBOX_PENDING;
use crate::models::{OUTBOX_COLUMNS, OutboxRow, to_db};
use crate::schema::outbox;
use crate::{DbError, MarketStore};

/// Longest `last_error` kept, in characters.
const MAX_ERROR_CHARS: usize = 500;

impl OutboxRepository for MarketStore {
    fn market(&self) -> Market {
        MarketStore::market(self)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), limit = limit))]
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let market = MarketStore::market(self);
        let now = to_db(now);
        let lease_until = to_db(lease_until);
        let rows = self.with_conn(|conn| {
            let due = outbox::table
                .filter(outbox::status.eq(OUTBOX_PENDING))
                .filter(outbox::next_attempt_at.le(now))
                .filter(
                    outbox::locked_until
                        .is_null()
                        .or(outbox::locked_until.lt(now)),
                )
                .order(outbox::id.asc())
                .limit(i64::from(limit))
                .select(outbox::id)
                .load::<i64>(conn)?;
            let mut claimed = Vec::with_capacity(due.len());
            for id in due {
                // Re-checks the conditions: another worker may have claimed it since the select;
                // then no row is updated and the message is skipped.
                let row = diesel::update(
                    outbox::table
                        .find(id)
                        .filter(outbox::status.eq(OUTBOX_PENDING))
                        .filter(
                            outbox::locked_until
                                .is_null()
                                .or(outbox::locked_until.lt(now)),
                        ),
                )
                .set(outbox::locked_until.eq(lease_until))
                .returning(OUTBOX_COLUMNS)
                .get_result::<OutboxRow>(conn)
                .optional()?;
                claimed.extend(row);
            }
            Ok(claimed)
        })?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_message(market))
            .collect::<Result<_, DbError>>()?)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), id = id))]
    fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), RepoError> {
        let now = to_db(now);
        self.finish(id, |conn| {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::status.eq("sent"),
                    outbox::sent_at.eq(now),
                    outbox::payload.eq(Vec::<u8>::new()),
                    outbox::locked_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), id = id))]
    fn mark_failed(
        &self,
        id: i64,
        _now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), RepoError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        self.finish(id, |conn| {
            let this = diesel::update(outbox::table.find(id));
            let common = (
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::locked_until.eq(None::<NaiveDateTime>),
                outbox::last_error.eq(error.as_str()),
            );
            match retry_at {
                Some(at) => this
                    .set((common, outbox::next_attempt_at.eq(to_db(at))))
                    .execute(conn),
                None => this
                    .set((
                        common,
                        outbox::status.eq("failed"),
                        outbox::payload.eq(Vec::<u8>::new()),
                    ))
                    .execute(conn),
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), id = id))]
    fn mark_expired(&self, id: i64, _now: DateTime<Utc>) -> Result<(), RepoError> {
        self.finish(id, |conn| {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::status.eq("expired"),
                    outbox::payload.eq(Vec::<u8>::new()),
                    outbox::locked_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)
        })
    }
}

impl MarketStore {
    /// Runs a single-row outbox update; a missing row is logged, not an error (the message may
    /// have been purged).
    fn finish(
        &self,
        id: i64,
        update: impl FnOnce(&mut crate::connection::DbConnection) -> QueryResult<usize>,
    ) -> Result<(), RepoError> {
        let updated = self.with_conn(|conn| Ok(update(conn)?))?;
        if updated == 0 {
            tracing::warn!(
                market = MarketStore::market(self).code(),
                id,
                "outbox message not found"
            );
        }
        Ok(())
    }
}

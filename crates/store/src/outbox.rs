//! [`OutboxRepository`] on a market database.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use marque_domain::{
    ChallengeDelivery, Channel, DeliveryReport, DeliveryState, NewOutboxMessage, OutboxMessage,
    OutboxRepository, RepoError, ReportedStatus, SentReceipt,
};
use marque_markets::Market;
use tracing::instrument;

use crate::auth::OUTBOX_PENDING;
use crate::models::{OutboxRow, from_db, to_db};
use crate::schema::{outbox, phone_verifications};
use crate::store::TxError;
use crate::{DbError, MarketStore};

/// The columns of [`OutboxRow`] (read by name), as the claim statement returns them.
const CLAIMED: &str =
    "id, channel, recipient, payload, attempts, expires_at, fallback_channels, fallback_from";

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
        // One statement claims the batch by primary key (issue 13: a select then one update per
        // message scanned the pending rows once per message). On PostgreSQL the due rows are
        // locked with SKIP LOCKED, so concurrent workers of other instances take other rows
        // instead of waiting; SQLite has one writer at a time.
        let rows = self.with_conn(|conn| {
            use diesel::sql_types::{BigInt, Timestamp};
            let mut claimed: Vec<OutboxRow> = match conn {
                crate::connection::DbConnection::Pg(pg) => diesel::sql_query(format!(
                    "UPDATE outbox SET locked_until = $1 WHERE id IN (SELECT id FROM outbox \
                     WHERE status = 'pending' AND next_attempt_at <= $2 \
                     AND (locked_until IS NULL OR locked_until < $2) \
                     ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {CLAIMED}"
                ))
                .bind::<Timestamp, _>(lease_until)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .load(pg)?,
                crate::connection::DbConnection::Sqlite(lite) => diesel::sql_query(format!(
                    "UPDATE outbox SET locked_until = ?1 WHERE id IN (SELECT id FROM outbox \
                     WHERE status = 'pending' AND next_attempt_at <= ?2 \
                     AND (locked_until IS NULL OR locked_until < ?2) \
                     ORDER BY id LIMIT ?3) RETURNING {CLAIMED}"
                ))
                .bind::<Timestamp, _>(lease_until)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .load(lite)?,
            };
            claimed.sort_by_key(|r| r.id);
            Ok(claimed)
        })?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_message(market))
            .collect::<Result<_, DbError>>()?)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), messages = sent.len()))]
    fn mark_sent(
        &self,
        now: DateTime<Utc>,
        sent: &[(i64, SentReceipt<'_>)],
    ) -> Result<(), RepoError> {
        if sent.is_empty() {
            return Ok(());
        }
        let now = to_db(now);
        let updated = self.with_conn(|conn| {
            if let crate::connection::DbConnection::Pg(pg) = conn {
                let statement = crate::pg_batch::MarkSent {
                    now,
                    ids: sent.iter().map(|(id, _)| *id).collect(),
                    provider: sent.iter().map(|(_, r)| r.provider).collect(),
                    provider_message_id: sent.iter().map(|(_, r)| r.provider_message_id).collect(),
                    segments: sent
                        .iter()
                        .map(|(_, r)| r.segments.map(crate::models::to_i32))
                        .collect(),
                };
                return Ok(statement.execute(pg)?);
            }
            // SQLite: one statement per message, committed together.
            crate::connection::write_tx(conn, |conn| {
                let mut updated = 0;
                for (id, receipt) in sent {
                    updated += diesel::update(outbox::table.find(id))
                        .set((
                            outbox::status.eq("sent"),
                            outbox::sent_at.eq(now),
                            // As `MarkSent`: the sealed code stays only while a fallback channel
                            // is left.
                            outbox::payload.eq(diesel::dsl::case_when::<
                                _,
                                _,
                                diesel::sql_types::Binary,
                            >(
                                outbox::fallback_channels.eq(""),
                                Vec::<u8>::new(),
                            )
                            .otherwise(outbox::payload)),
                            outbox::locked_until.eq(None::<NaiveDateTime>),
                            outbox::provider.eq(receipt.provider),
                            outbox::provider_message_id.eq(receipt.provider_message_id),
                            outbox::segments.eq(receipt.segments.map(crate::models::to_i32)),
                        ))
                        .execute(conn)?;
                }
                Ok::<_, TxError>(updated)
            })
        })?;
        if updated < sent.len() {
            tracing::warn!(
                market = MarketStore::market(self).code(),
                missing = sent.len() - updated,
                "outbox messages not found"
            );
        }
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), id = id, next = %next))]
    fn fall_back(
        &self,
        id: i64,
        now: DateTime<Utc>,
        next: Channel,
        remaining: &[Channel],
        error: &str,
    ) -> Result<(), RepoError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        self.finish(id, |conn| {
            move_to_channel(conn, id, next, remaining, to_db(now), Some(&error))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), provider = provider))]
    fn record_report(
        &self,
        provider: &str,
        report: &DeliveryReport,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let now_db = to_db(now);
        let error: Option<String> = report
            .error
            .as_deref()
            .map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
        let found = self.with_conn(|conn| {
            let this = outbox::table
                .filter(outbox::provider.eq(provider))
                .filter(outbox::provider_message_id.eq(report.provider_message_id.as_str()));
            let n = match report.status {
                // Nothing to record, but say whether the message is ours.
                ReportedStatus::InProgress => this.count().get_result::<i64>(conn)?,
                // Final: the sealed code goes; a late "undelivered" does not overwrite it.
                ReportedStatus::Delivered => diesel::update(this)
                    .set((
                        outbox::delivery_status.eq("delivered"),
                        outbox::delivered_at.eq(now_db),
                        outbox::payload.eq(Vec::<u8>::new()),
                    ))
                    .execute(conn)? as i64,
                ReportedStatus::Failed => {
                    let row = this
                        .filter(outbox::status.eq("sent"))
                        .filter(
                            outbox::delivery_status
                                .is_null()
                                .or(outbox::delivery_status.ne("delivered")),
                        )
                        .select((
                            outbox::id,
                            outbox::fallback_channels,
                            outbox::expires_at,
                            diesel::dsl::sql::<diesel::sql_types::Bool>("LENGTH(payload) > 0"),
                        ))
                        .first::<(i64, String, NaiveDateTime, bool)>(conn)
                        .optional()?;
                    let Some((id, fallback, expires_at, sealed)) = row else {
                        return Ok(this.count().get_result::<i64>(conn)? > 0);
                    };
                    let mut rest = Channel::parse_list(&fallback)
                        .unwrap_or_default()
                        .into_iter();
                    match rest.next() {
                        // Undelivered on this channel: the same code goes out on the next one,
                        // while it is still worth sending.
                        Some(next) if sealed && from_db(expires_at) > now => {
                            let remaining: Vec<Channel> = rest.collect();
                            let error = error.as_deref();
                            move_to_channel(conn, id, next, &remaining, now_db, error)? as i64
                        }
                        _ => diesel::update(outbox::table.find(id))
                            .set((
                                outbox::delivery_status.eq("undelivered"),
                                outbox::payload.eq(Vec::<u8>::new()),
                                outbox::last_error.eq(error.as_deref()),
                            ))
                            .execute(conn)? as i64,
                    }
                }
            };
            Ok(n > 0)
        })?;
        Ok(found)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn challenge_delivery(
        &self,
        challenge_id: &str,
    ) -> Result<Option<ChallengeDelivery>, RepoError> {
        let market = MarketStore::market(self);
        type Row = (String, String, Option<String>, Option<String>);
        let found = self.with_conn(|conn| {
            let message = outbox::table
                .filter(outbox::challenge_id.eq(challenge_id))
                .select((
                    outbox::channel,
                    outbox::status,
                    outbox::fallback_from,
                    outbox::delivery_status,
                ))
                .first::<Row>(conn)
                .optional()?;
            if message.is_some() {
                return Ok(message.map(|m| (m, true)));
            }
            // A test number's challenge has no message: nothing to send counts as sent.
            let challenge = phone_verifications::table
                .filter(phone_verifications::challenge_id.eq(challenge_id))
                .select(phone_verifications::channel)
                .first::<String>(conn)
                .optional()?;
            Ok(challenge.map(|c| ((c, "sent".to_owned(), None, None), false)))
        })?;
        let Some(((channel, status, fallback_from, reported), _)) = found else {
            return Ok(None);
        };
        let corrupt = |column| DbError::corrupt(market, "outbox", 0, column);
        let channel = Channel::from_stored(&channel).ok_or_else(|| corrupt("channel"))?;
        let fallback_from = match fallback_from {
            Some(c) => Some(Channel::from_stored(&c).ok_or_else(|| corrupt("fallback_from"))?),
            None => None,
        };
        let status = match (status.as_str(), reported.as_deref()) {
            ("pending", _) => DeliveryState::Queued,
            ("sent", Some("delivered")) => DeliveryState::Delivered,
            ("sent", Some(_)) => DeliveryState::Failed,
            ("sent", None) => DeliveryState::Sent,
            _ => DeliveryState::Failed,
        };
        Ok(Some(ChallengeDelivery {
            channel,
            status,
            fallback_from,
        }))
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

/// Queues `message` for delivery now, to `recipient` (the message's own, or the stored address
/// an email goes to), linked to challenge `challenge_id` when it carries a code: the one insert
/// of an outbox row (codes, messenger replies, emails), in the caller's transaction.
pub(crate) fn insert_outbox(
    conn: &mut crate::connection::DbConnection,
    message: &NewOutboxMessage,
    recipient: &str,
    challenge_id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::channel.eq(message.channel.as_str()),
            outbox::fallback_channels.eq(Channel::join(&message.fallback)),
            outbox::challenge_id.eq(challenge_id),
            outbox::recipient.eq(recipient),
            outbox::payload.eq(message.sealed_body.as_slice()),
            outbox::status.eq(OUTBOX_PENDING),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::expires_at.eq(to_db(message.expires_at)),
            outbox::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Puts message `id` back in the queue on channel `next`, with `remaining` still to try: the
/// same sealed code, attempts reset, due at `now`, the provider's receipt cleared, and
/// `fallback_from` keeping the first channel tried.
fn move_to_channel(
    conn: &mut crate::connection::DbConnection,
    id: i64,
    next: Channel,
    remaining: &[Channel],
    now: NaiveDateTime,
    error: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::fallback_from.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Text>,
            >("COALESCE(fallback_from, channel)")),
            outbox::channel.eq(next.as_str()),
            outbox::fallback_channels.eq(Channel::join(remaining)),
            outbox::status.eq(OUTBOX_PENDING),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::provider.eq(None::<String>),
            outbox::provider_message_id.eq(None::<String>),
            outbox::segments.eq(None::<i32>),
            outbox::last_error.eq(error),
        ))
        .execute(conn)
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

/// The outbox rows of one status, for the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStatusCount {
    /// `pending`, `sent`, `failed` or `expired`.
    pub status: String,
    /// Rows with this status (kept until the retention job purges them).
    pub count: i64,
    /// Creation time of the oldest of them.
    pub oldest: Option<DateTime<Utc>>,
}

impl MarketStore {
    /// The outbox's rows per status with the oldest creation time of each (one grouped query;
    /// statuses without rows are absent).
    ///
    /// Errors: [`RepoError::Unavailable`] when the database cannot be reached.
    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    pub fn outbox_counts(&self) -> Result<Vec<OutboxStatusCount>, RepoError> {
        use diesel::dsl::{count_star, min};
        let rows = self.read(|conn| {
            Ok(outbox::table
                .group_by(outbox::status)
                .select((outbox::status, count_star(), min(outbox::created_at)))
                .load::<(String, i64, Option<NaiveDateTime>)>(conn)?)
        })?;
        Ok(rows
            .into_iter()
            .map(|(status, count, oldest)| OutboxStatusCount {
                status,
                count,
                oldest: oldest.map(crate::models::from_db),
            })
            .collect())
    }
}

//! [`MessengerRepository`] on a market database (issue 9): pending messenger logins, webhook
//! events already handled, and replies queued in the outbox.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use marque_domain::{
    Channel, MessengerRepository, NewMessengerLogin, NewOutboxMessage, NonceLookup, PendingLogin,
    RepoError, RetryAfter, StoredPoll,
};
use marque_markets::Market;
use tracing::instrument;

use crate::MarketStore;
use crate::auth::hit_limits;
use crate::models::{from_db, to_db};
use crate::schema::{messenger_logins, messenger_seen};
use crate::store::TxError;
use crate::{DbError, connection::write_tx};

const PENDING: &str = "pending";
const CLAIMED: &str = "claimed";
const COMPLETED: &str = "completed";
const CONSUMED: &str = "consumed";
const FAILED: &str = "failed";

type LoginRow = (String, String, String, Option<String>, NaiveDateTime);

impl MarketStore {
    fn pending_login(&self, row: LoginRow) -> Result<PendingLogin, DbError> {
        let (id, channel, _, user_agent, _) = row;
        let channel = Channel::parse(&channel)
            .ok_or_else(|| DbError::corrupt(self.market(), "messenger_logins", 0, "channel"))?;
        Ok(PendingLogin {
            id,
            channel,
            user_agent,
        })
    }
}

impl MessengerRepository for MarketStore {
    fn market(&self) -> Market {
        MarketStore::market(self)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn start_login(&self, login: &NewMessengerLogin) -> Result<Result<(), RetryAfter>, RepoError> {
        let now = to_db(login.now);
        self.with_conn(|conn| {
            let outcome = write_tx(conn, |conn| {
                hit_limits(conn, &login.limits, login.now)?;
                diesel::insert_into(messenger_logins::table)
                    .values((
                        messenger_logins::id.eq(login.id.as_str()),
                        messenger_logins::channel.eq(login.channel.as_str()),
                        messenger_logins::nonce_hash.eq(login.nonce_hash.as_slice()),
                        messenger_logins::poll_secret_hash.eq(login.poll_secret_hash.as_slice()),
                        messenger_logins::status.eq(PENDING),
                        messenger_logins::user_agent.eq(login.user_agent.as_deref()),
                        messenger_logins::created_at.eq(now),
                        messenger_logins::expires_at.eq(to_db(login.expires_at)),
                    ))
                    .execute(conn)?;
                Ok(Ok(()))
            });
            match outcome {
                Err(TxError::RateLimited(retry)) => Ok(Err(retry)),
                other => other,
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn find_nonce(&self, nonce_hash: &[u8], now: DateTime<Utc>) -> Result<NonceLookup, RepoError> {
        let row = self.read(|conn| {
            Ok(messenger_logins::table
                .filter(messenger_logins::nonce_hash.eq(nonce_hash))
                .filter(messenger_logins::status.eq(PENDING))
                .select((
                    messenger_logins::id,
                    messenger_logins::channel,
                    messenger_logins::status,
                    messenger_logins::user_agent,
                    messenger_logins::expires_at,
                ))
                .first::<LoginRow>(conn)
                .optional()?)
        })?;
        Ok(match row {
            None => NonceLookup::Unknown,
            Some(row) if from_db(row.4) <= now => NonceLookup::Expired,
            Some(row) => NonceLookup::Live(self.pending_login(row)?),
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn attach_telegram_user(&self, id: &str, user_hash: &[u8]) -> Result<(), RepoError> {
        self.with_conn(|conn| {
            diesel::update(
                messenger_logins::table
                    .find(id)
                    .filter(messenger_logins::status.eq(PENDING)),
            )
            .set(messenger_logins::telegram_user_hash.eq(user_hash))
            .execute(conn)?;
            Ok(())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn pending_for_telegram(
        &self,
        user_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, RepoError> {
        let now = to_db(now);
        let row = self.read(|conn| {
            Ok(messenger_logins::table
                .filter(messenger_logins::telegram_user_hash.eq(user_hash))
                .filter(messenger_logins::status.eq(PENDING))
                .filter(messenger_logins::expires_at.gt(now))
                .order(messenger_logins::created_at.desc())
                .select((
                    messenger_logins::id,
                    messenger_logins::channel,
                    messenger_logins::status,
                    messenger_logins::user_agent,
                    messenger_logins::expires_at,
                ))
                .first::<LoginRow>(conn)
                .optional()?)
        })?;
        Ok(row.map(|r| self.pending_login(r)).transpose()?)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn claim(&self, id: &str, now: DateTime<Utc>) -> Result<bool, RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            // One conditional update: of two concurrent completions only one changes the row.
            let n = diesel::update(
                messenger_logins::table
                    .find(id)
                    .filter(messenger_logins::status.eq(PENDING))
                    .filter(messenger_logins::expires_at.gt(now)),
            )
            .set(messenger_logins::status.eq(CLAIMED))
            .execute(conn)?;
            Ok(n == 1)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn release(&self, id: &str) -> Result<(), RepoError> {
        self.with_conn(|conn| {
            diesel::update(
                messenger_logins::table
                    .find(id)
                    .filter(messenger_logins::status.eq(CLAIMED)),
            )
            .set(messenger_logins::status.eq(PENDING))
            .execute(conn)?;
            Ok(())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn complete(&self, id: &str, sealed: &[u8], now: DateTime<Utc>) -> Result<(), RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            diesel::update(
                messenger_logins::table
                    .find(id)
                    .filter(messenger_logins::status.eq(CLAIMED)),
            )
            .set((
                messenger_logins::status.eq(COMPLETED),
                messenger_logins::result.eq(sealed),
                messenger_logins::completed_at.eq(now),
            ))
            .execute(conn)?;
            Ok(())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn fail(&self, id: &str, error: &str, now: DateTime<Utc>) -> Result<(), RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            diesel::update(
                messenger_logins::table
                    .find(id)
                    .filter(messenger_logins::status.eq(CLAIMED)),
            )
            .set((
                messenger_logins::status.eq(FAILED),
                messenger_logins::error.eq(error),
                messenger_logins::completed_at.eq(now),
            ))
            .execute(conn)?;
            Ok(())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn poll(
        &self,
        id: &str,
        secret_matches: &(dyn Fn(&[u8]) -> bool + Sync),
        now: DateTime<Utc>,
    ) -> Result<Option<StoredPoll>, RepoError> {
        type Row = (Vec<u8>, String, NaiveDateTime, Option<String>);
        self.with_conn(|conn| {
            let row = messenger_logins::table
                .find(id)
                .select((
                    messenger_logins::poll_secret_hash,
                    messenger_logins::status,
                    messenger_logins::expires_at,
                    messenger_logins::error,
                ))
                .first::<Row>(conn)
                .optional()?;
            let Some((hash, status, expires_at, error)) = row else {
                return Ok(None);
            };
            if !secret_matches(&hash) {
                return Ok(None);
            }
            Ok(Some(match status.as_str() {
                COMPLETED => {
                    let sealed = messenger_logins::table
                        .find(id)
                        .select(messenger_logins::result)
                        .first::<Option<Vec<u8>>>(conn)?;
                    // A conditional update: of two concurrent polls only one changes the row
                    // and hands the tokens out; the other reads `consumed`.
                    let taken = diesel::update(
                        messenger_logins::table
                            .find(id)
                            .filter(messenger_logins::status.eq(COMPLETED)),
                    )
                    .set((
                        messenger_logins::status.eq(CONSUMED),
                        messenger_logins::result.eq(None::<Vec<u8>>),
                    ))
                    .execute(conn)?;
                    match sealed {
                        Some(sealed) if taken == 1 => StoredPoll::Completed(sealed),
                        _ => StoredPoll::Consumed,
                    }
                }
                CONSUMED => StoredPoll::Consumed,
                FAILED => StoredPoll::Failed(error.unwrap_or_default()),
                _ if from_db(expires_at) <= now => StoredPoll::Expired,
                _ => StoredPoll::Pending,
            }))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn mark_seen(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool, RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            let inserted = diesel::insert_into(messenger_seen::table)
                .values((
                    messenger_seen::event_id.eq(event_id),
                    messenger_seen::received_at.eq(now),
                ))
                .execute(conn);
            match inserted {
                Ok(_) => Ok(true),
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn forget_seen(&self, event_id: &str) -> Result<(), RepoError> {
        self.with_conn(|conn| {
            diesel::delete(messenger_seen::table.find(event_id)).execute(conn)?;
            Ok(())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), channel = %reply.channel))]
    fn queue_reply(&self, reply: &NewOutboxMessage, now: DateTime<Utc>) -> Result<(), RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            crate::outbox::insert_outbox(conn, reply, &reply.recipient, None, now)?;
            Ok(())
        })
    }
}

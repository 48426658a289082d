//! Rows as diesel reads them, and their conversion to domain types.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use marque_domain::{
    BucketState, ChallengeState, ChallengeStatus, Channel, FullName, ImageUrl, OutboxMessage, User,
    UserId,
};
use marque_markets::{Market, PhoneNumber};

use crate::DbError;
use crate::schema::{outbox, phone_verifications, rate_limits, users};

/// UTC instant → stored `TIMESTAMP`, truncated to microseconds (PostgreSQL's precision) so
/// both backends store and return the same value.
pub(crate) fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(6)
}

/// Stored `TIMESTAMP` → UTC instant.
pub(crate) fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A constant tuple of a table's columns: its type and its value name the same columns, so they
/// are written once.
macro_rules! columns {
    ($(#[$meta:meta])* $name:ident = $table:ident: $($column:ident),+ $(,)?) => {
        $(#[$meta])*
        pub(crate) const $name: ($($table::$column,)+) = ($($table::$column,)+);
    };
}

columns! {
    /// Columns of [`UserRow`], in field order (for `RETURNING`, which cannot use
    /// `as_returning()` through the multi-backend connection).
    USER_COLUMNS = users:
        id,
        phone_number,
        full_name,
        profile_image_url,
        is_verified,
        last_login,
        created_at,
        updated_at,
}

/// A `users` row (the columns the domain needs).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) phone_number: Option<String>,
    pub(crate) full_name: Option<String>,
    pub(crate) profile_image_url: Option<String>,
    pub(crate) is_verified: bool,
    pub(crate) last_login: Option<NaiveDateTime>,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
}

impl UserRow {
    /// The domain user; a stored value that no longer passes validation is a data error.
    pub(crate) fn into_user(self, market: Market) -> Result<User, DbError> {
        let bad = |what| DbError::corrupt(market, "users", self.id, what);
        // Written by this service after a full parse: only its shape is checked.
        let phone = match &self.phone_number {
            Some(p) => Some(PhoneNumber::from_stored(p, market).map_err(|_| bad("phone_number"))?),
            None => None,
        };
        let full_name = match &self.full_name {
            // Cleaned, not refused: names stored before the display-text rules (issue 12).
            Some(s) => FullName::from_stored(s).map_err(|_| bad("full_name"))?,
            None => None,
        };
        let profile_image_url = match &self.profile_image_url {
            Some(s) => Some(ImageUrl::parse(s).map_err(|_| bad("profile_image_url"))?),
            None => None,
        };
        Ok(User {
            id: UserId(self.id),
            market,
            phone,
            email: None,
            email_verified: false,
            full_name,
            profile_image_url,
            is_verified: self.is_verified,
            last_login: self.last_login.map(from_db),
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
        })
    }
}

columns! {
    /// Columns of [`ChallengeRow`], in field order: a constant tuple has a static query id, so
    /// diesel finds the prepared statement without rendering the SQL again (`as_select()` does
    /// not have one).
    CHALLENGE_COLUMNS = phone_verifications:
        id,
        code_hash,
        status,
        attempts,
        expires_at,
}

/// A `phone_verifications` row (without the audit columns).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = phone_verifications)]
pub(crate) struct ChallengeRow {
    pub(crate) id: i64,
    pub(crate) code_hash: Vec<u8>,
    pub(crate) status: String,
    pub(crate) attempts: i32,
    pub(crate) expires_at: NaiveDateTime,
}

/// A `phone_failures` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::phone_failures)]
pub(crate) struct FailureRow {
    pub(crate) consecutive: i32,
    pub(crate) locked_until: Option<NaiveDateTime>,
}

impl FailureRow {
    /// The stored state of the number.
    pub(crate) fn state(&self) -> marque_domain::FailureState {
        marque_domain::FailureState {
            consecutive: u32::try_from(self.consecutive).unwrap_or(0),
            locked_until: self.locked_until.map(from_db),
        }
    }
}

impl ChallengeRow {
    /// The facts `challenge::judge` decides on.
    pub(crate) fn state(&self, market: Market) -> Result<ChallengeState, DbError> {
        let status = ChallengeStatus::parse(&self.status)
            .ok_or_else(|| DbError::corrupt(market, "phone_verifications", self.id, "status"))?;
        Ok(ChallengeState {
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            expires_at: from_db(self.expires_at),
            status,
        })
    }
}

/// A `rate_limits` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rate_limits)]
pub(crate) struct BucketRow {
    pub(crate) window_started_at: NaiveDateTime,
    pub(crate) hits: i32,
    pub(crate) last_hit_at: NaiveDateTime,
}

impl BucketRow {
    /// The stored state of the bucket.
    pub(crate) fn state(&self) -> BucketState {
        BucketState {
            window_started_at: from_db(self.window_started_at),
            hits: u32::try_from(self.hits).unwrap_or(0),
            last_hit_at: from_db(self.last_hit_at),
        }
    }
}

/// An `outbox` row as a worker needs it.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = outbox)]
pub(crate) struct OutboxRow {
    pub(crate) id: i64,
    pub(crate) channel: String,
    pub(crate) recipient: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) attempts: i32,
    pub(crate) expires_at: NaiveDateTime,
    pub(crate) fallback_channels: String,
    pub(crate) fallback_from: Option<String>,
}

impl OutboxRow {
    /// The message to deliver.
    pub(crate) fn into_message(self, market: Market) -> Result<OutboxMessage, DbError> {
        let corrupt = |column| DbError::corrupt(market, "outbox", self.id, column);
        let channel = Channel::from_stored(&self.channel).ok_or_else(|| corrupt("channel"))?;
        let fallback = Channel::parse_list(&self.fallback_channels)
            .map_err(|_| corrupt("fallback_channels"))?;
        let fallback_from = match &self.fallback_from {
            Some(c) => Some(Channel::from_stored(c).ok_or_else(|| corrupt("fallback_from"))?),
            None => None,
        };
        Ok(OutboxMessage {
            id: self.id,
            channel,
            fallback,
            fallback_from,
            recipient: self.recipient,
            sealed_body: self.payload,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            expires_at: from_db(self.expires_at),
        })
    }
}

/// Clamps a count into an SQL `INTEGER`.
pub(crate) fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A refresh-token row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = crate::schema::refresh_tokens)]
pub(crate) struct RefreshRow {
    pub(crate) id: i64,
    pub(crate) session_id: String,
    pub(crate) expires_at: NaiveDateTime,
    pub(crate) rotated_at: Option<NaiveDateTime>,
    pub(crate) successor_id: Option<i64>,
    pub(crate) rotated_client: Option<Vec<u8>>,
}

/// A session row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = crate::schema::sessions)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) user_id: i64,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) expires_at: NaiveDateTime,
    pub(crate) last_seen_at: NaiveDateTime,
    pub(crate) revoked_at: Option<NaiveDateTime>,
    pub(crate) user_agent: Option<String>,
    pub(crate) client_ip: Option<String>,
}

impl SessionRow {
    pub(crate) fn into_info(self) -> marque_domain::SessionInfo {
        marque_domain::SessionInfo {
            id: marque_domain::SessionId(self.id),
            created_at: from_db(self.created_at),
            last_seen_at: from_db(self.last_seen_at),
            expires_at: from_db(self.expires_at),
            user_agent: self.user_agent,
            client_ip: self.client_ip,
        }
    }
}

//! [`AdminRepository`] on a market database: the admin API's reads and changes (issue 11).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use marque_domain::{
    ActiveChange, AdminRepository, AdminUser, AuditQuery, AuditRecord, Channel, ClientInfo,
    OutboxQuery, OutboxSummary, RepoError, StoredAudit, UserId,
};
use marque_markets::PhoneNumber;
use tracing::instrument;

use crate::audit::insert_audit;
use crate::models::{UserRow, from_db, to_db};
use crate::schema::{audit_log, outbox, sessions, users};
use crate::{DbError, MarketStore};

/// Writes `record` on `conn` (inside the caller's transaction).
fn insert_record(
    conn: &mut crate::connection::DbConnection,
    record: &AuditRecord,
) -> QueryResult<()> {
    let client = ClientInfo {
        ip: record.client_ip.clone(),
        user_agent: record.user_agent.clone(),
    };
    insert_audit(conn, record.at, record.user, &client, &record.event)
}

/// Revokes every active session of `user` at `now`; how many.
fn revoke_all(
    conn: &mut crate::connection::DbConnection,
    user: UserId,
    now: NaiveDateTime,
) -> QueryResult<u64> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user.0))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?;
    Ok(n as u64)
}

type OutboxSummaryRow = (
    i64,
    String,
    String,
    String,
    i32,
    NaiveDateTime,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl AdminRepository for MarketStore {
    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<AdminUser>, RepoError> {
        let market = self.market();
        let row = self.read(|conn| {
            Ok(users::table
                .filter(users::phone_number.eq(phone.e164()))
                .select((UserRow::as_select(), users::is_active))
                .first::<(UserRow, bool)>(conn)
                .optional()?)
        })?;
        Ok(row
            .map(|(row, is_active)| {
                row.into_user(market)
                    .map(|user| AdminUser { user, is_active })
            })
            .transpose()?)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, active))]
    fn set_user_active(
        &self,
        user: UserId,
        active: bool,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<Option<ActiveChange>, RepoError> {
        let now = to_db(now);
        self.write(|conn| {
            insert_record(conn, audit)?;
            let found = diesel::update(users::table.find(user.0))
                .set((users::is_active.eq(active), users::updated_at.eq(now)))
                .execute(conn)?;
            if found == 0 {
                return Ok(None);
            }
            let sessions_ended = if active {
                0
            } else {
                revoke_all(conn, user, now)?
            };
            Ok(Some(ActiveChange {
                is_active: active,
                sessions_ended,
            }))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn end_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<Option<u64>, RepoError> {
        let now = to_db(now);
        self.write(|conn| {
            insert_record(conn, audit)?;
            let exists = users::table
                .find(user.0)
                .select(users::id)
                .first::<i64>(conn)
                .optional()?
                .is_some();
            if !exists {
                return Ok(None);
            }
            Ok(Some(revoke_all(conn, user, now)?))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), limit = query.limit))]
    fn audit_rows(&self, query: &AuditQuery) -> Result<Vec<StoredAudit>, RepoError> {
        let since = query.since.map(to_db);
        let rows = self.read(|conn| {
            let mut q = audit_log::table
                .order(audit_log::id.desc())
                .limit(i64::from(query.limit))
                .select((
                    audit_log::id,
                    audit_log::occurred_at,
                    audit_log::event,
                    audit_log::user_id,
                    audit_log::client_ip,
                    audit_log::user_agent,
                    audit_log::detail,
                ))
                .into_boxed();
            if let Some(user) = query.user {
                q = q.filter(audit_log::user_id.eq(user.0));
            }
            if let Some(since) = since {
                q = q.filter(audit_log::occurred_at.ge(since));
            }
            Ok(q.load::<(
                i64,
                NaiveDateTime,
                String,
                Option<i64>,
                Option<String>,
                Option<String>,
                Option<String>,
            )>(conn)?)
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, event, user, client_ip, user_agent, detail)| StoredAudit {
                    id,
                    at: from_db(at),
                    event,
                    user: user.map(UserId),
                    client_ip,
                    user_agent,
                    detail,
                },
            )
            .collect())
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), limit = query.limit))]
    fn outbox_rows(&self, query: &OutboxQuery) -> Result<Vec<OutboxSummary>, RepoError> {
        let market = self.market();
        let rows = self.read(|conn| {
            // Never the payload column: operators see where a message stands, not its code.
            let mut q = outbox::table
                .order(outbox::id.desc())
                .limit(i64::from(query.limit))
                .select((
                    outbox::id,
                    outbox::channel,
                    outbox::recipient,
                    outbox::status,
                    outbox::attempts,
                    outbox::created_at,
                    outbox::next_attempt_at,
                    outbox::expires_at,
                    outbox::sent_at,
                    outbox::last_error,
                    outbox::provider,
                    outbox::delivery_status,
                    outbox::fallback_from,
                ))
                .into_boxed();
            if let Some(status) = query.status {
                q = q.filter(outbox::status.eq(status.as_str()));
            }
            Ok(q.load::<OutboxSummaryRow>(conn)?)
        })?;
        let summaries = rows
            .into_iter()
            .map(|r| {
                let channel = Channel::from_stored(&r.1)
                    .ok_or_else(|| DbError::corrupt(market, "outbox", r.0, "channel"))?;
                Ok(OutboxSummary {
                    id: r.0,
                    channel,
                    recipient: r.2,
                    status: r.3,
                    attempts: u32::try_from(r.4).unwrap_or(0),
                    created_at: from_db(r.5),
                    next_attempt_at: from_db(r.6),
                    expires_at: from_db(r.7),
                    sent_at: r.8.map(from_db),
                    last_error: r.9,
                    provider: r.10,
                    delivery_status: r.11,
                    fallback_from: r.12,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(summaries)
    }
}

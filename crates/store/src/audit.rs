//! [`AuditRepository`] on a market database, and the insert the other repositories call inside
//! their own transactions.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use marque_domain::audit::MAX_AUDIT_USER_AGENT_CHARS;
use marque_domain::{
    AuditEvent, AuditRecord, AuditRepository, ClientInfo, RepoError, StoredAudit, UserId,
};
use tracing::instrument;

use crate::MarketStore;
use crate::connection::DbConnection;
use crate::models::{from_db, to_db};
use crate::schema::audit_log;

/// The `User-Agent` an audit row keeps of `client`: its first
/// [`MAX_AUDIT_USER_AGENT_CHARS`] characters.
pub(crate) fn audit_user_agent(client: &ClientInfo) -> Option<String> {
    client
        .user_agent
        .as_ref()
        .map(|ua| ua.chars().take(MAX_AUDIT_USER_AGENT_CHARS).collect())
}

/// Inserts one audit row on `conn` (inside the caller's transaction, if any): `event` at `at`
/// for `user` from `client`. The `User-Agent` is truncated; nothing else is derived from secrets.
pub(crate) fn insert_audit(
    conn: &mut DbConnection,
    at: DateTime<Utc>,
    user: Option<UserId>,
    client: &ClientInfo,
    event: &AuditEvent,
) -> QueryResult<()> {
    let user_agent = audit_user_agent(client);
    let values = (
        audit_log::occurred_at.eq(to_db(at)),
        audit_log::event.eq(event.kind()),
        audit_log::user_id.eq(user.map(|u| u.0)),
        audit_log::client_ip.eq(client.ip.as_deref()),
        audit_log::user_agent.eq(user_agent.as_deref()),
        audit_log::detail.eq(event.detail()),
    );
    // On the backend's own connection: written on every sign-in (`on_backend!`).
    on_backend!(conn, |c| diesel::insert_into(audit_log::table)
        .values(values)
        .execute(c))?;
    Ok(())
}

type AuditRow = (
    i64,
    NaiveDateTime,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl AuditRepository for MarketStore {
    #[instrument(level = "debug", skip_all, fields(market = self.code(), event = record.event.kind()))]
    fn record_audit(&self, record: &AuditRecord) -> Result<(), RepoError> {
        let client = ClientInfo {
            ip: record.client_ip.clone(),
            user_agent: record.user_agent.clone(),
        };
        self.with_conn(|conn| {
            Ok(insert_audit(
                conn,
                record.at,
                record.user,
                &client,
                &record.event,
            )?)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn recent_audit(&self, limit: u32) -> Result<Vec<StoredAudit>, RepoError> {
        let rows = self.read(|conn| {
            Ok(audit_log::table
                .order(audit_log::id.desc())
                .limit(i64::from(limit))
                .select((
                    audit_log::id,
                    audit_log::occurred_at,
                    audit_log::event,
                    audit_log::user_id,
                    audit_log::client_ip,
                    audit_log::user_agent,
                    audit_log::detail,
                ))
                .load::<AuditRow>(conn)?)
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
}

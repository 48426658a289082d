//! The audit log: security events of one market, kept in that market's database (issue 12,
//! item 18; OWASP ASVS 4.0 V7.1–V7.2).
//!
//! A record says what happened ([`AuditEvent`]), when, to which user, and from which client (IP
//! and `User-Agent`). It never holds a one-time code, an access or refresh token, or a hash of
//! either: [`AuditEvent`] has no field that could carry one, and its [`AuditEvent::detail`] is
//! built from ids, counts and names only.
//!
//! Writing: inside a store transaction that already exists (sign-in, refresh reuse, account
//! deletion) the store inserts the row in that transaction; elsewhere the service calls
//! [`AuditRepository::record_audit`] (a plain insert; the [`crate::AuthService`] helper
//! `audit` logs a failure instead of failing the request).

use chrono::{DateTime, Utc};
use marque_markets::{Market, PhoneNumber};

use crate::{ClientInfo, RepoError, SessionId, UserId};

/// Longest `User-Agent` kept in an audit row, in characters.
pub const MAX_AUDIT_USER_AGENT_CHARS: usize = 512;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// A number was proven (a right code, or a messenger: issue 9) and a session opened.
    SignIn {
        /// The new session.
        session: SessionId,
        /// Whether this sign-in created the account.
        new_user: bool,
        /// How the number was proven: `code`, `whatsapp`, `telegram`, `telegram_widget`.
        via: &'static str,
    },
    /// The user ended sessions (`POST /auth/logout`, `DELETE /auth/sessions/{id}`).
    SignOut {
        /// `local`, `global`, `others` or `session`.
        scope: &'static str,
        /// How many sessions ended.
        sessions: u64,
    },
    /// A rotated refresh token came back after the grace window: its session was revoked.
    RefreshReuse {
        /// The revoked session.
        session: SessionId,
    },
    /// Too many consecutive wrong codes: the number is locked (item 8).
    PhoneLocked {
        /// The locked number.
        phone: PhoneNumber,
        /// End of the lock.
        until: DateTime<Utc>,
    },
    /// An SMS guard refused a send (item 14): daily budget, prefix velocity, CAPTCHA.
    SmsBudgetTripped {
        /// Which guard, e.g. `daily_market`, `daily_total`, `prefix_hourly`, `captcha`.
        guard: String,
        /// The number the send was for, when known.
        phone: Option<PhoneNumber>,
    },
    /// A configured test number was used (item 7).
    TestNumberUsed {
        /// The test number.
        phone: PhoneNumber,
        /// `send_code` or `verify_code`.
        action: &'static str,
    },
    /// The user deleted their account (the row keeps the id it had, nothing else of it).
    AccountDeleted,
    /// A call of the admin API (issue 11), recorded in the market it concerns.
    AdminAction {
        /// The fingerprint of the admin key used ([`crate::AdminKey::fingerprint`]), never the
        /// key.
        admin: String,
        /// `find_user`, `disable_user`, `enable_user`, `end_sessions`, `read_audit` or
        /// `read_outbox`.
        action: &'static str,
        /// What it concerned, e.g. `user:42`, `phone:+996…`, `email:…`, `outbox:pending`.
        target: String,
    },
    /// Anything else worth an audit row; `kind` is a stable snake_case name. `detail` must not
    /// hold a code, a token or a secret.
    Other {
        /// Stable event name.
        kind: String,
        /// Free text without secrets.
        detail: Option<String>,
    },
}

impl AuditEvent {
    /// The stored event name (`sign_in`, `sign_out`, `refresh_reuse`, `phone_locked`,
    /// `sms_budget_tripped`, `test_number_used`, `account_deleted`, `admin_action`, or `Other`'s
    /// `kind`).
    pub fn kind(&self) -> &str {
        match self {
            Self::SignIn { .. } => "sign_in",
            Self::SignOut { .. } => "sign_out",
            Self::RefreshReuse { .. } => "refresh_reuse",
            Self::PhoneLocked { .. } => "phone_locked",
            Self::SmsBudgetTripped { .. } => "sms_budget_tripped",
            Self::TestNumberUsed { .. } => "test_number_used",
            Self::AccountDeleted => "account_deleted",
            Self::AdminAction { .. } => "admin_action",
            Self::Other { kind, .. } => kind,
        }
    }

    /// The stored detail: `key=value` pairs of ids, counts and names (never a secret).
    pub fn detail(&self) -> Option<String> {
        match self {
            // `via` only when it is not a code, so code sign-ins read as they always did.
            Self::SignIn {
                session,
                new_user,
                via: "code",
            } => Some(format!("session={} new_user={new_user}", session.0)),
            Self::SignIn {
                session,
                new_user,
                via,
            } => Some(format!(
                "session={} new_user={new_user} via={via}",
                session.0
            )),
            Self::SignOut { scope, sessions } => Some(format!("scope={scope} sessions={sessions}")),
            Self::RefreshReuse { session } => Some(format!("session={}", session.0)),
            Self::PhoneLocked { phone, until } => Some(format!(
                "phone={} until={}",
                phone.e164(),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            Self::SmsBudgetTripped { guard, phone } => Some(match phone {
                Some(p) => format!("guard={guard} phone={}", p.e164()),
                None => format!("guard={guard}"),
            }),
            Self::TestNumberUsed { phone, action } => {
                Some(format!("phone={} action={action}", phone.e164()))
            }
            Self::AccountDeleted => None,
            Self::AdminAction {
                admin,
                action,
                target,
            } => Some(format!("admin={admin} action={action} target={target}")),
            Self::Other { detail, .. } => detail.clone(),
        }
    }
}

/// One audit row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The market whose database receives the row.
    pub market: Market,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The user concerned, when known.
    pub user: Option<UserId>,
    /// Client IP (after trusted-proxy resolution).
    pub client_ip: Option<String>,
    /// `User-Agent`, truncated to [`MAX_AUDIT_USER_AGENT_CHARS`] when stored.
    pub user_agent: Option<String>,
    /// What happened.
    pub event: AuditEvent,
}

impl AuditRecord {
    /// A record of `event` in `market` at `at`, for `user`, from `client`.
    pub fn new(
        market: Market,
        at: DateTime<Utc>,
        user: Option<UserId>,
        client: &ClientInfo,
        event: AuditEvent,
    ) -> Self {
        Self {
            market,
            at,
            user,
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            event,
        }
    }

    /// The `User-Agent` as stored (truncated).
    pub fn stored_user_agent(&self) -> Option<String> {
        self.user_agent
            .as_ref()
            .map(|ua| ua.chars().take(MAX_AUDIT_USER_AGENT_CHARS).collect())
    }
}

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAudit {
    /// Row id (ascending in write order).
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// [`AuditEvent::kind`].
    pub event: String,
    /// The user concerned.
    pub user: Option<UserId>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// [`AuditEvent::detail`].
    pub detail: Option<String>,
}

/// The audit log of one market database.
pub trait AuditRepository: Send + Sync {
    /// Appends `record` (a plain insert, its own transaction).
    fn record_audit(&self, record: &AuditRecord) -> Result<(), RepoError>;

    /// The newest `limit` rows, newest first (for operators and tests).
    fn recent_audit(&self, limit: u32) -> Result<Vec<StoredAudit>, RepoError>;
}

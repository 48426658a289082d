//! The operators' service behind the admin API (issue 11): find a user by phone number (or,
//! once accounts have one, by email), disable or enable an account, end its sessions, read a
//! market's audit log and outbox.
//!
//! Authentication is one shared key (`ADMIN_API_KEY`), checked by [`AdminKey::verify`] in
//! constant time: both the presented and the configured key go through HMAC-SHA-256 and the
//! 32-byte tags are compared with `hmac`'s `verify_slice` (built on `subtle`), so neither the
//! content nor the length of the key leaks through timing (OWASP ASVS 4.0 V2.9.1/V6.2.1). The key
//! itself is never logged or stored: records name the caller by [`AdminKey::fingerprint`].
//!
//! Every call is audited in the `audit_log` of the market it concerns, as
//! [`AuditEvent::AdminAction`] (OWASP ASVS 4.0 V7.1.3, V7.2.2): changes (disable, enable, end
//! sessions) write their row in the same transaction as the change; reads write theirs before
//! reading, and a read whose audit row cannot be written is refused (fail closed: no admin read
//! goes unrecorded). A lookup that names no market (by email) is recorded in every served market.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use marque_markets::{Market, PhoneNumber};
use sha2::{Digest, Sha256};

use crate::{
    AuditEvent, AuditRecord, AuthRepository, Channel, ClientInfo, Clock, ExposeSecret,
    MarketUnavailable, RepoError, SecretString, SessionInfo, StoredAudit, User, UserId,
};

type HmacSha256 = Hmac<Sha256>;

/// HMAC key of the constant-time comparison: not a secret (the comparison needs none), only a
/// fixed domain separator so the tags are not plain SHA-256 digests of the key.
const COMPARE_LABEL: &[u8] = b"marque admin api key compare v1";

/// Prefix hashed before the key for its fingerprint (domain separation from the comparison).
const FINGERPRINT_LABEL: &[u8] = b"marque admin api key fingerprint v1\0";

/// Most rows one audit or outbox page returns.
pub const MAX_PAGE: u32 = 500;

/// Rows an audit or outbox page returns when the caller names no limit.
pub const DEFAULT_PAGE: u32 = 100;

/// The admin API key (`ADMIN_API_KEY`): compares presented keys in constant time and names
/// itself by a fingerprint. `Debug` prints only the fingerprint.
#[derive(Clone)]
pub struct AdminKey {
    tag: [u8; 32],
    fingerprint: String,
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl AdminKey {
    /// The key `key` (its text, as configured).
    pub fn new(key: &SecretString) -> Self {
        let key = key.expose_secret().as_bytes();
        let mut tag = [0u8; 32];
        tag.copy_from_slice(&compare_mac(key).finalize().into_bytes());
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_LABEL)
            .chain_update(key)
            .finalize();
        let fingerprint = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self { tag, fingerprint }
    }

    /// Whether `presented` is the key. Constant time in the key and in `presented`'s content:
    /// only `presented`'s length affects the time taken by hashing it, never how much of it
    /// matches.
    pub fn verify(&self, presented: &str) -> bool {
        compare_mac(presented.as_bytes())
            .verify_slice(&self.tag)
            .is_ok()
    }

    /// 12 hex digits (48 bits of SHA-256 over a label and the key) naming the key in audit rows
    /// and logs: stable across restarts and instances, changes when the key is rotated, and
    /// useless for guessing a key of ≥ 32 random bytes.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn compare_mac(bytes: &[u8]) -> HmacSha256 {
    // An HMAC accepts a key of any length: this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(COMPARE_LABEL)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(bytes);
    mac
}

/// An operator proven by the admin key, with the client the call came from: what every audit
/// row of the call records. Built only by [`AdminService::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    fingerprint: String,
    client: ClientInfo,
}

impl AdminCaller {
    /// The fingerprint of the key the caller presented ([`AdminKey::fingerprint`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// A user as an operator sees them: the profile, whether the account is enabled, its market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    /// The profile.
    pub user: User,
    /// `users.is_active`: a disabled account cannot sign in, refresh or use its tokens.
    pub is_active: bool,
}

/// A found user with their active sessions, for `GET /admin/users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReport {
    /// The market whose database holds the user.
    pub market: Market,
    /// The user.
    pub user: AdminUser,
    /// Active sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}

/// The outcome of disabling or enabling an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveChange {
    /// `is_active` after the change.
    pub is_active: bool,
    /// Sessions ended by the change (disable only; 0 on enable).
    pub sessions_ended: u64,
}

/// Delivery state of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutboxStatus {
    /// Waiting for delivery or a retry.
    Pending,
    /// Handed to a provider (its body scrubbed).
    Sent,
    /// Given up after its attempts on every channel.
    Failed,
    /// Its code expired before delivery.
    Expired,
}

impl OutboxStatus {
    /// Every status.
    pub const ALL: [OutboxStatus; 4] = [Self::Pending, Self::Sent, Self::Failed, Self::Expired];

    /// The stored name (`pending`, `sent`, `failed`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// The status named `s` (stored name).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An outbox row as operators see it: never its payload (the sealed code), never a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSummary {
    /// Row id.
    pub id: i64,
    /// The channel it is (or was last) tried on.
    pub channel: Channel,
    /// The recipient, E.164.
    pub recipient: String,
    /// Stored status (`pending`, `sent`, `failed`, `expired`).
    pub status: String,
    /// Failed attempts on the current channel.
    pub attempts: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Not retried before this instant.
    pub next_attempt_at: DateTime<Utc>,
    /// Pointless after this instant.
    pub expires_at: DateTime<Utc>,
    /// When a provider took it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The last provider error (truncated to 500 characters by the worker).
    pub last_error: Option<String>,
    /// The provider that took it.
    pub provider: Option<String>,
    /// `delivered` or `undelivered`, from the provider's report.
    pub delivery_status: Option<String>,
    /// The first channel tried, once it fell back.
    pub fallback_from: Option<String>,
}

/// Which audit rows to read: newest first, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only rows about this user.
    pub user: Option<UserId>,
    /// Only rows at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Rows at most (1–[`MAX_PAGE`]).
    pub limit: u32,
}

/// Which outbox rows to read: newest first, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxQuery {
    /// Only rows in this state.
    pub status: Option<OutboxStatus>,
    /// Rows at most (1–[`MAX_PAGE`]).
    pub limit: u32,
}

/// What the admin service needs of a market database, on top of [`AuthRepository`] (sessions
/// and the audit log).
pub trait AdminRepository: AuthRepository {
    /// The user with number `phone`, enabled or not.
    fn user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<AdminUser>, RepoError>;

    /// Sets `user`'s `is_active`; when disabling, also revokes every active session of theirs;
    /// writes `audit` — one transaction. `None` (with the audit row still written) when the user
    /// does not exist.
    fn set_user_active(
        &self,
        user: UserId,
        active: bool,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<Option<ActiveChange>, RepoError>;

    /// Revokes every active session of `user` and writes `audit` — one transaction. The number
    /// ended, or `None` (with the audit row still written) when the user does not exist.
    fn end_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<Option<u64>, RepoError>;

    /// Audit rows matching `query`, newest first.
    fn audit_rows(&self, query: &AuditQuery) -> Result<Vec<StoredAudit>, RepoError>;

    /// Outbox rows matching `query`, newest first, without payloads.
    fn outbox_rows(&self, query: &OutboxQuery) -> Result<Vec<OutboxSummary>, RepoError>;
}

/// Failures of [`AdminService`] calls.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The key is missing or wrong.
    #[error("admin key missing or wrong")]
    Unauthorized,
    /// No such user in the named market.
    #[error("not found")]
    NotFound,
    /// The market's database is not configured or not reachable (answered 503).
    #[error(transparent)]
    Unavailable(#[from] MarketUnavailable),
    /// Any other storage failure (answered 500, logged with its cause).
    #[error("internal error")]
    Internal(#[source] RepoError),
}

/// The admin API's service: one [`AdminRepository`] per served market and the key.
pub struct AdminService {
    repos: BTreeMap<Market, Arc<dyn AdminRepository>>,
    clock: Arc<dyn Clock>,
    key: AdminKey,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("markets", &self.repos.keys().collect::<Vec<_>>())
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl AdminService {
    /// The service over `repos` (one per market), accepting `key`.
    pub fn new(repos: Vec<Arc<dyn AdminRepository>>, clock: Arc<dyn Clock>, key: AdminKey) -> Self {
        Self {
            repos: repos.into_iter().map(|r| (r.market(), r)).collect(),
            clock,
            key,
        }
    }

    /// The caller presenting `presented` (the bearer credentials, if any) from `client`.
    ///
    /// Errors: [`AdminError::Unauthorized`] when no key or a wrong key is presented (compared in
    /// constant time); the attempt is logged at `info` under target `audit` with the client, never
    /// with what was presented.
    pub fn authenticate(
        &self,
        presented: Option<&str>,
        client: ClientInfo,
    ) -> Result<AdminCaller, AdminError> {
        match presented {
            Some(p) if self.key.verify(p) => Ok(AdminCaller {
                fingerprint: self.key.fingerprint().to_owned(),
                client,
            }),
            _ => {
                tracing::info!(
                    target: "audit",
                    event = "admin_unauthorized",
                    key_presented = presented.is_some(),
                    client_ip = client.ip.as_deref(),
                    user_agent = client.user_agent.as_deref(),
                    "admin API call refused"
                );
                Err(AdminError::Unauthorized)
            }
        }
    }

    fn repo(&self, market: Market) -> Result<&dyn AdminRepository, AdminError> {
        self.repos
            .get(&market)
            .map(|r| r.as_ref())
            .ok_or_else(|| MarketUnavailable::not_served(market).into())
    }

    fn storage(market: Market) -> impl Fn(RepoError) -> AdminError {
        move |e| match MarketUnavailable::sort(market, e) {
            Ok(down) => AdminError::Unavailable(down),
            Err(other) => AdminError::Internal(other),
        }
    }

    fn record(
        &self,
        who: &AdminCaller,
        market: Market,
        user: Option<UserId>,
        action: &'static str,
        target: String,
    ) -> AuditRecord {
        let event = AuditEvent::AdminAction {
            admin: who.fingerprint.clone(),
            action,
            target,
        };
        AuditRecord::new(market, self.clock.now(), user, &who.client, event)
    }

    /// Writes the audit row of a read before the read; a failure refuses the read.
    fn audit_read(&self, record: &AuditRecord) -> Result<(), AdminError> {
        let market = record.market;
        self.repo(market)?
            .record_audit(record)
            .map_err(Self::storage(market))
    }

    /// The user with number `phone` (in the number's market), with their active sessions:
    /// one report, or none when the number has no account.
    ///
    /// Errors: [`AdminError::Unavailable`], [`AdminError::Internal`].
    pub fn find_by_phone(
        &self,
        who: &AdminCaller,
        phone: &PhoneNumber,
    ) -> Result<Vec<UserReport>, AdminError> {
        let market = phone.market();
        let repo = self.repo(market)?;
        let target = format!("phone:{}", phone.e164());
        self.audit_read(&self.record(who, market, None, "find_user", target))?;
        let Some(user) = repo.user_by_phone(phone).map_err(Self::storage(market))? else {
            return Ok(Vec::new());
        };
        let sessions = repo
            .list_sessions(user.user.id, self.clock.now())
            .map_err(Self::storage(market))?;
        Ok(vec![UserReport {
            market,
            user,
            sessions,
        }])
    }

    /// Users with email `email`: always none today, since accounts have no email yet (issue 10
    /// adds email accounts, and then this searches every market). The lookup is still audited,
    /// in every served market.
    ///
    /// Errors: [`AdminError::Unavailable`], [`AdminError::Internal`].
    pub fn find_by_email(
        &self,
        who: &AdminCaller,
        email: &str,
    ) -> Result<Vec<UserReport>, AdminError> {
        let email: String = email.chars().take(254).collect();
        for market in self.repos.keys() {
            let target = format!("email:{email}");
            self.audit_read(&self.record(who, *market, None, "find_user", target))?;
        }
        Ok(Vec::new())
    }

    /// Disables `user` of `market` and ends all their sessions: their access tokens are refused
    /// at once, refreshes fail, and a sign-in with a right code answers `account_disabled`.
    ///
    /// Errors: [`AdminError::NotFound`], [`AdminError::Unavailable`], [`AdminError::Internal`].
    pub fn disable(
        &self,
        who: &AdminCaller,
        market: Market,
        user: UserId,
    ) -> Result<ActiveChange, AdminError> {
        self.set_active(who, market, user, false)
    }

    /// Enables `user` of `market` again (sign-in works; ended sessions stay ended).
    ///
    /// Errors: as [`AdminService::disable`].
    pub fn enable(
        &self,
        who: &AdminCaller,
        market: Market,
        user: UserId,
    ) -> Result<ActiveChange, AdminError> {
        self.set_active(who, market, user, true)
    }

    fn set_active(
        &self,
        who: &AdminCaller,
        market: Market,
        user: UserId,
        active: bool,
    ) -> Result<ActiveChange, AdminError> {
        let repo = self.repo(market)?;
        let action = if active {
            "enable_user"
        } else {
            "disable_user"
        };
        let record = self.record(who, market, Some(user), action, format!("user:{user}"));
        let change = repo
            .set_user_active(user, active, self.clock.now(), &record)
            .map_err(Self::storage(market))?
            .ok_or(AdminError::NotFound)?;
        tracing::info!(target: "audit", event = action, %market, %user, admin = who.fingerprint(), sessions_ended = change.sessions_ended);
        Ok(change)
    }

    /// Ends every active session of `user` of `market` (the account stays enabled: the user
    /// can sign in again). Returns how many ended.
    ///
    /// Errors: as [`AdminService::disable`].
    pub fn end_sessions(
        &self,
        who: &AdminCaller,
        market: Market,
        user: UserId,
    ) -> Result<u64, AdminError> {
        let repo = self.repo(market)?;
        let record = self.record(
            who,
            market,
            Some(user),
            "end_sessions",
            format!("user:{user}"),
        );
        let ended = repo
            .end_user_sessions(user, self.clock.now(), &record)
            .map_err(Self::storage(market))?
            .ok_or(AdminError::NotFound)?;
        tracing::info!(target: "audit", event = "end_sessions", %market, %user, admin = who.fingerprint(), sessions_ended = ended);
        Ok(ended)
    }

    /// `market`'s audit rows matching `query` (limit clamped to 1–[`MAX_PAGE`]), newest first.
    /// The row recording this read is written first, so it is the newest row returned.
    ///
    /// Errors: [`AdminError::Unavailable`], [`AdminError::Internal`].
    pub fn audit_log(
        &self,
        who: &AdminCaller,
        market: Market,
        query: AuditQuery,
    ) -> Result<Vec<StoredAudit>, AdminError> {
        let repo = self.repo(market)?;
        let query = AuditQuery {
            limit: query.limit.clamp(1, MAX_PAGE),
            ..query
        };
        let target = match query.user {
            Some(u) => format!("audit:user:{u}"),
            None => "audit".to_owned(),
        };
        self.audit_read(&self.record(who, market, query.user, "read_audit", target))?;
        repo.audit_rows(&query).map_err(Self::storage(market))
    }

    /// `market`'s outbox rows matching `query` (limit clamped to 1–[`MAX_PAGE`]), newest first,
    /// without payloads.
    ///
    /// Errors: [`AdminError::Unavailable`], [`AdminError::Internal`].
    pub fn outbox(
        &self,
        who: &AdminCaller,
        market: Market,
        query: OutboxQuery,
    ) -> Result<Vec<OutboxSummary>, AdminError> {
        let repo = self.repo(market)?;
        let query = OutboxQuery {
            limit: query.limit.clamp(1, MAX_PAGE),
            ..query
        };
        let target = match query.status {
            Some(s) => format!("outbox:{}", s.as_str()),
            None => "outbox".to_owned(),
        };
        self.audit_read(&self.record(who, market, None, "read_outbox", target))?;
        repo.outbox_rows(&query).map_err(Self::storage(market))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_verifies_itself_only_and_is_named_by_a_stable_fingerprint() {
        let key = AdminKey::new(&SecretString::from("k".repeat(40)));
        assert!(key.verify(&"k".repeat(40)));
        for wrong in ["", "k", &"k".repeat(39), &"k".repeat(41), &"K".repeat(40)] {
            assert!(!key.verify(wrong), "{wrong:?}");
        }
        let again = AdminKey::new(&SecretString::from("k".repeat(40)));
        let other = AdminKey::new(&SecretString::from("j".repeat(40)));
        assert_eq!(key.fingerprint(), again.fingerprint());
        assert_ne!(key.fingerprint(), other.fingerprint());
        assert_eq!(key.fingerprint().len(), 12);
        assert!(!format!("{key:?}").contains("kkkk"));
    }

    #[test]
    fn outbox_statuses_round_trip() {
        for s in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxStatus::parse("delivered"), None);
    }
}

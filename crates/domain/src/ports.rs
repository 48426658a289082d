//! Ports: what the domain needs from storage and delivery, implemented by `marque-store` and
//! `marque-messaging`.
//!
//! Repository methods are synchronous (diesel is); callers on an async runtime run them on a
//! blocking pool. Each method that changes several rows is one database transaction: the store
//! gathers the stored state, asks the domain's pure rules ([`RateLimitPolicy::admit`],
//! [`crate::challenge::judge`]) what to do, and writes the result, so concurrent requests on any
//! number of instances see one consistent state.

use chrono::{DateTime, Duration, Utc};
use marque_markets::{Market, OtpPurpose, PhoneNumber};

use crate::challenge::FailurePolicy;
use crate::delivery::{ChallengeDelivery, Channel, DeliveryReport};
use crate::rate_limit::Elsewhere;
use crate::sms_guard::{BudgetTrip, PrefixAlarm, SmsGuards};
use crate::{
    AuditRepository, BucketState, ClientInfo, NewSession, ProfileUpdate, RateLimitPolicy,
    RetryAfter, SessionId, User, UserId,
};

/// A storage failure. Business outcomes are never errors: they are variants of the outcomes below.
///
/// The cause (the store's own error, with the driver's error under it) is the `source()`, not
/// part of the `Display` text: log the whole chain, never show it to clients.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The database cannot be reached or the pool timed out; callers answer 503.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other database error (constraint, corrupt row…); callers answer 500 and log it.
    #[error("database error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A market's database is not configured (`source` is `None`) or not reachable: the
/// `Unavailable` failure of every service (503).
#[derive(Debug, thiserror::Error)]
#[error("market {market} unavailable")]
pub struct MarketUnavailable {
    /// The market.
    pub market: Market,
    /// The storage failure, when the database was tried.
    #[source]
    pub source: Option<RepoError>,
}

impl MarketUnavailable {
    /// `market` has no database here.
    pub fn not_served(market: Market) -> Self {
        Self {
            market,
            source: None,
        }
    }

    /// Sorts a storage failure in `market`: the database not reachable is `Ok` (answered 503),
    /// any other failure comes back as `Err` (answered 500).
    pub fn sort(market: Market, e: RepoError) -> Result<Self, RepoError> {
        match e {
            RepoError::Unavailable(..) => Ok(Self {
                market,
                source: Some(e),
            }),
            other => Err(other),
        }
    }
}

/// One rate-limit bucket to hit when issuing a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitCheck {
    /// Bucket key, e.g. `send:phone:+996505325311` or `send:ip:203.0.113.7`.
    pub bucket: String,
    /// The limit that applies.
    pub policy: RateLimitPolicy,
    /// Hits of the same bucket in the other markets' databases, counted against the same limit
    /// (one budget across markets; zero for per-market buckets such as a phone number's).
    pub elsewhere: Elsewhere,
}

/// A message to write to the outbox in the same transaction as its challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    /// Channel to deliver on first.
    pub channel: Channel,
    /// The channels to fall back to, in order, when `channel` fails permanently (each tried
    /// once).
    pub fallback: Vec<Channel>,
    /// Recipient: E.164, or an email address on [`Channel::Email`].
    pub recipient: String,
    /// An [`crate::OtpPayload`] (or [`crate::EmailPayload`]) sealed with [`crate::PayloadSealer`].
    pub sealed_body: Vec<u8>,
    /// After this instant the message is pointless (its code expired) and is dropped.
    pub expires_at: DateTime<Utc>,
}

/// Everything `AuthRepository::issue_challenge` writes, in one transaction.
#[derive(Debug, Clone)]
pub struct IssueChallenge {
    /// The number the code is for.
    pub phone: PhoneNumber,
    /// HMAC of the code ([`crate::OtpHasher::hash`]).
    pub code_hash: Vec<u8>,
    /// What the code is for; only a verification of this purpose may use it, and it supersedes
    /// only the number's active code of the same purpose.
    pub purpose: OtpPurpose,
    /// The unguessable id returned to the client (22 base64url characters, 128 random bits); a
    /// verification that carries it is judged on this challenge only.
    pub challenge_id: String,
    /// The channel the code goes out on first (recorded with the challenge, also for test
    /// numbers, which send nothing).
    pub channel: Channel,
    /// Whether a failure lock of the number refuses the code ([`IssueOutcome::Locked`]); `false`
    /// only for test numbers outside production.
    pub check_lock: bool,
    /// Issue time.
    pub now: DateTime<Utc>,
    /// Expiry of the code.
    pub expires_at: DateTime<Utc>,
    /// Client IP, for the record.
    pub client_ip: Option<String>,
    /// Buckets to hit; all must admit or nothing is written.
    pub limits: Vec<RateLimitCheck>,
    /// Message to deliver (`None` for test numbers).
    pub outbox: Option<NewOutboxMessage>,
    /// SMS-pumping guards, checked after `limits` (`None` when nothing is sent).
    pub sms: Option<SmsGuards>,
}

/// Result of `AuthRepository::issue_challenge`.
#[derive(Debug, Clone, PartialEq)]
pub enum IssueOutcome {
    /// Stored; any earlier active code of the number is superseded.
    Issued,
    /// Stored like [`IssueOutcome::Issued`], and this message took the number's prefix over its
    /// velocity alarm line (an alarm, not a refusal).
    IssuedWithAlarm(PrefixAlarm),
    /// A bucket refused; nothing was written.
    RateLimited(RetryAfter),
    /// An SMS budget or the prefix velocity limit refused; nothing was written.
    BudgetExceeded(BudgetTrip),
    /// The number is locked after too many consecutive wrong codes; nothing was written.
    Locked(RetryAfter),
}

/// Limits on verification attempts, decided in the attempt's transaction under row locks
/// (issue 12, item 8). Empty (`Default`) for test numbers outside production.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptGuard {
    /// Buckets to hit before judging (the per-IP verify limit); a refusal is
    /// [`VerifyOutcome::RateLimited`] and nothing is judged.
    pub limits: Vec<RateLimitCheck>,
    /// Consecutive wrong codes per number across challenges, and the lock that follows;
    /// `None` for no counting.
    pub failures: Option<FailurePolicy>,
}

/// A presented code to judge, as [`VerifyChallenge`] and [`DeleteAccount`] carry it.
pub struct CodeCheck<'a> {
    /// The number the code is for.
    pub phone: &'a PhoneNumber,
    /// Attempt time.
    pub now: DateTime<Utc>,
    /// Wrong tries allowed per code.
    pub max_attempts: u32,
    /// Compares the presented code with a stored hash, in constant time.
    pub matches: &'a (dyn Fn(&[u8]) -> bool + Sync),
    /// The `challenge_id` the client sent: when given, only the number's active challenge with
    /// this id is judged, and an unknown id touches nothing. `None`: the newest challenge.
    pub challenge_id: Option<&'a str>,
    /// Per-IP and failure limits.
    pub guard: AttemptGuard,
}

/// Input of `AuthRepository::verify_challenge`.
pub struct VerifyChallenge<'a> {
    /// The code presented for the number being verified (sign-in challenges only).
    pub check: CodeCheck<'a>,
    /// The session to create when the code is right.
    pub session: NewSession,
    /// The session's first refresh token.
    pub refresh: NewRefreshToken,
    /// A signed-in account to attach the number to instead of signing in the number's own
    /// account (issue 10: an email user adds a phone); the number must be nobody else's.
    pub attach_to: Option<UserId>,
}

/// A refresh token to store (only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// SHA-256 of the token text ([`crate::refresh::hash`]).
    pub token_hash: Vec<u8>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Input of `AuthRepository::rotate_refresh`.
#[derive(Debug, Clone)]
pub struct RotateRefresh<'a> {
    /// Hash of the presented token.
    pub token_hash: &'a [u8],
    /// Attempt time.
    pub now: DateTime<Utc>,
    /// Window after a rotation in which the rotated token gets its successor again.
    pub grace: Duration,
    /// Session idle timeout: a rotation extends the session to `now + idle`…
    pub idle: Duration,
    /// …but never past `created_at + max_lifetime`.
    pub max_lifetime: Duration,
    /// Hash of the successor to store when rotating (its `expires_at` is the new session deadline).
    pub successor_hash: Vec<u8>,
    /// The requesting client's binding ([`crate::RefreshKeys::client_binding`]): kept on the
    /// rotated row, compared on a replay within the grace window.
    pub client_binding: Vec<u8>,
    /// The client presenting the token (for the audit row of a reuse).
    pub client: &'a ClientInfo,
}

/// Result of `AuthRepository::rotate_refresh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// Rotated: the successor is stored and the session extended.
    Rotated {
        /// The session.
        session: SessionId,
        /// Its user.
        user: UserId,
        /// Expiry of the successor (= the session's new deadline).
        refresh_expires_at: DateTime<Utc>,
    },
    /// A retry by the same client within the grace window: the successor already issued (the
    /// caller recomputes its text from the presented token).
    Replayed {
        /// The session.
        session: SessionId,
        /// Its user.
        user: UserId,
        /// Expiry of the successor.
        refresh_expires_at: DateTime<Utc>,
    },
    /// A rotated token came back after the grace window: the session is now revoked.
    Reused,
    /// Unknown token, or its session or itself has ended.
    Invalid,
}

/// Which sessions of a user to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeScope {
    /// One session.
    One(SessionId),
    /// Every session.
    All,
    /// Every session but this one.
    AllExcept(SessionId),
}

/// An active session, for the user's session list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Id.
    pub id: SessionId,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last sign-in or refresh.
    pub last_seen_at: DateTime<Utc>,
    /// When it ends unless refreshed.
    pub expires_at: DateTime<Utc>,
    /// `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// Client IP at sign-in.
    pub client_ip: Option<String>,
}

/// Input of `AuthRepository::delete_account`: a step-up check of a fresh code for the account's
/// own number, then deletion.
pub struct DeleteAccount<'a> {
    /// The account.
    pub user: UserId,
    /// The code presented for the account's phone number (`delete_account` challenges only).
    pub check: CodeCheck<'a>,
    /// The client asking (for the audit row of the deletion).
    pub client: &'a ClientInfo,
}

/// Result of `AuthRepository::verify_challenge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Right code: the challenge is consumed, the user exists (created if new), `last_login` is
    /// `now`, and the session is stored.
    Verified {
        /// The signed-in user.
        user: User,
        /// Whether this verification created the user.
        is_new_user: bool,
        /// Whether an earlier session of the user had the same `User-Agent` (checked in the same
        /// transaction, so sign-in observers need no database work for a known device).
        known_device: bool,
    },
    /// Wrong code; `attempts_left` more tries on this code.
    WrongCode {
        /// Tries left.
        attempts_left: u32,
    },
    /// The code has expired.
    Expired,
    /// Too many wrong tries: the code is dead.
    AttemptsExceeded,
    /// No usable code for the number (or none with the given `challenge_id`).
    NoActiveCode,
    /// Right code, but the account is disabled (`is_active = false`): the code is consumed,
    /// no session is opened.
    Disabled,
    /// The number is locked after too many consecutive wrong codes: nothing was judged, or this
    /// wrong code was the one that locked it (`just_locked`).
    Locked {
        /// Until the lock ends.
        retry_after: RetryAfter,
        /// Whether this attempt set the lock (notify the user, audit it once).
        just_locked: bool,
        /// The number's user, if signed up (for the security notification).
        user: Option<UserId>,
    },
    /// A limit of the [`AttemptGuard`] refused the attempt; nothing was judged.
    RateLimited(RetryAfter),
    /// Right code for a number that belongs to another account than the one it was to be
    /// attached to ([`VerifyChallenge::attach_to`]); the code is consumed, nothing attached.
    PhoneInUse,
}

/// Storage of one market's authentication state. One implementation per market database; its
/// audit log ([`AuditRepository`]) lives in the same database.
pub trait AuthRepository: AuditRepository + Send + Sync {
    /// The market whose database this is.
    fn market(&self) -> Market;

    /// Round-trips the database (`SELECT 1`).
    fn ping(&self) -> Result<(), RepoError>;

    /// Hits `limits`, supersedes the number's active code, stores the new one and its outbox
    /// message — all or nothing.
    fn issue_challenge(&self, cmd: IssueChallenge) -> Result<IssueOutcome, RepoError>;

    /// The stored state of each of `buckets` (`None` for a bucket never hit), read without
    /// locking: the service adds other markets' counts of a client to one budget this way.
    fn bucket_states(&self, buckets: &[&str]) -> Result<Vec<Option<BucketState>>, RepoError>;

    /// Judges an attempt on the number's newest `login` challenge (or the one with
    /// `challenge_id`) and applies the verdict (see [`VerifyOutcome`]), after the guard's limits
    /// and lock.
    fn verify_challenge(&self, cmd: VerifyChallenge<'_>) -> Result<VerifyOutcome, RepoError>;

    /// The session's expiry, if the session exists, belongs to `user`, is not revoked and has not
    /// expired at `now`.
    fn active_session(
        &self,
        session: &SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RepoError>;

    /// The user of an active session (same conditions as [`AuthRepository::active_session`],
    /// and the user is active: `is_active`), read in one query.
    fn session_user(
        &self,
        session: &SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, RepoError>;

    /// Applies `update` to the user; `None` when the user does not exist.
    fn update_profile(
        &self,
        user: UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, RepoError>;

    /// Revokes the session; `false` when it was already revoked or does not exist.
    fn revoke_session(&self, session: &SessionId, now: DateTime<Utc>) -> Result<bool, RepoError>;

    /// Revokes `user`'s sessions in `scope` that are not revoked yet; returns how many.
    fn revoke_sessions(
        &self,
        user: UserId,
        scope: &RevokeScope,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// `user`'s sessions that are active at `now`, newest first.
    fn list_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, RepoError>;

    /// Judges a refresh ([`crate::refresh::judge`]) with the token row locked, and applies the
    /// verdict: rotate (store successor, extend session, keep the client binding on the old
    /// row), replay, or revoke the whole session on reuse.
    fn rotate_refresh(&self, cmd: RotateRefresh<'_>) -> Result<RotateOutcome, RepoError>;

    /// Judges the code like `verify_challenge`; when accepted, deletes the user and every row of
    /// theirs (sessions, refresh tokens, challenges, limit buckets and outbox messages of the
    /// number, and through `ON DELETE CASCADE` any account data) and records an audit row without
    /// personal data — all in one transaction. `Verified` in the outcome means deleted (its
    /// `user` is the deleted account as it was).
    fn delete_account(&self, cmd: DeleteAccount<'_>) -> Result<VerifyOutcome, RepoError>;

    /// Signs in a number a messenger has proven (issue 9), in one transaction: refuses a
    /// number whose failure lock holds ([`VerifyOutcome::Locked`], `just_locked: false`) or a
    /// disabled account ([`VerifyOutcome::Disabled`]); else creates the user if new, stores
    /// the session and refresh token, links `link_telegram` to the user (replacing any other
    /// link of either) and writes the `sign_in` audit row, as `verify_challenge` does after a
    /// right code.
    fn sign_in_proven(&self, cmd: SignInProven<'_>) -> Result<VerifyOutcome, RepoError>;

    /// The number (E.164) of the active account linked to Telegram user `telegram_user`.
    fn telegram_user_phone(&self, telegram_user: i64) -> Result<Option<String>, RepoError>;

    /// `user`'s Telegram link.
    fn telegram_link(&self, user: UserId) -> Result<Option<crate::TelegramLink>, RepoError>;

    /// Removes `user`'s Telegram link; `false` when there was none.
    fn unlink_telegram(&self, user: UserId) -> Result<bool, RepoError>;
}

/// Input of `AuthRepository::sign_in_proven`.
#[derive(Debug, Clone)]
pub struct SignInProven<'a> {
    /// The proven number.
    pub phone: &'a PhoneNumber,
    /// Sign-in time.
    pub now: DateTime<Utc>,
    /// The session to open.
    pub session: NewSession,
    /// Its first refresh token.
    pub refresh: NewRefreshToken,
    /// How it was proven (`whatsapp`, `telegram`, `telegram_widget`), for the audit row.
    pub via: &'static str,
    /// A Telegram user id to link to the account.
    pub link_telegram: Option<i64>,
}

/// A stored outbox message claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Row id.
    pub id: i64,
    /// Channel to deliver on now.
    pub channel: Channel,
    /// Channels still to fall back to, in order.
    pub fallback: Vec<Channel>,
    /// The channel first tried, once the message has fallen back.
    pub fallback_from: Option<Channel>,
    /// Recipient, E.164.
    pub recipient: String,
    /// Sealed [`crate::OtpPayload`], or a sealed [`crate::ReplyPayload`] (issue 9).
    pub sealed_body: Vec<u8>,
    /// Delivery attempts made on the current channel before this one.
    pub attempts: u32,
    /// When the message becomes pointless.
    pub expires_at: DateTime<Utc>,
}

/// What a provider answered for a delivered message, recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentReceipt<'a> {
    /// Provider name (`twilio`, `sns`…).
    pub provider: &'a str,
    /// The provider's message id, which its delivery reports name.
    pub provider_message_id: Option<&'a str>,
    /// SMS segments billed (GSM-7: 160 characters, or 153 each when split; UCS-2: 70, or 67);
    /// `None` on messenger channels.
    pub segments: Option<u32>,
}

/// The delivery outbox of one market database.
pub trait OutboxRepository: Send + Sync {
    /// The market whose database this is.
    fn market(&self) -> Market;

    /// Claims up to `limit` pending messages due at `now` that no other worker holds, leasing them
    /// until `lease_until` (a crashed worker's messages are picked up again after that).
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, RepoError>;

    /// Marks messages handed to their providers at `now`, records each provider's receipt and
    /// scrubs the bodies (no code or text is kept once sent): `sent` holds `(message id,
    /// receipt)` pairs, all written in one statement (issue 13: a worker used to commit each
    /// message on its own). An id that no longer exists (purged) is skipped and logged.
    fn mark_sent(
        &self,
        now: DateTime<Utc>,
        sent: &[(i64, SentReceipt<'_>)],
    ) -> Result<(), RepoError>;

    /// Moves a message that failed permanently on its channel to `next`: the same sealed code,
    /// attempts reset, due at `now`; `remaining` are the channels still left after `next`.
    /// `fallback_from` keeps the first channel tried.
    fn fall_back(
        &self,
        id: i64,
        now: DateTime<Utc>,
        next: Channel,
        remaining: &[Channel],
        error: &str,
    ) -> Result<(), RepoError>;

    /// Applies a provider's delivery report to the message it names (by provider and provider
    /// message id). Returns whether a message of this database was found.
    fn record_report(
        &self,
        provider: &str,
        report: &DeliveryReport,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// The delivery of the message of challenge `challenge_id`, if the challenge is in this
    /// database.
    fn challenge_delivery(
        &self,
        challenge_id: &str,
    ) -> Result<Option<ChallengeDelivery>, RepoError>;

    /// Records a failed attempt: retried at `retry_at`, or given up (body scrubbed) when `None`.
    fn mark_failed(
        &self,
        id: i64,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), RepoError>;

    /// Marks a message that expired before delivery and scrubs its body.
    fn mark_expired(&self, id: i64, now: DateTime<Utc>) -> Result<(), RepoError>;
}

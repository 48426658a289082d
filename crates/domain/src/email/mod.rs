//! Email-and-password accounts (issue 10): addresses, the password policy and its Argon2id
//! storage, link tokens, the repository port and the service.
//!
//! Link tokens (verification, password reset): 256 random bits from the [`RandomSource`] as
//! base64url, prefixed with the market (`kg_…`, `us_…`) so a link finds its database, like refresh
//! tokens. Only an HMAC-SHA256 of the whole token under the key `marque/email-token-mac/v1` is
//! stored ([`crate::keys`]); a token is single use, and a new token of the same purpose for the
//! same account retires the older ones. Lifetimes: 24 hours for verification (the issue), 1 hour
//! for password reset (OWASP Forgot Password Cheat Sheet: short-lived).

mod address;
mod password;
mod service;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use marque_markets::Market;
use sha2::Sha256;

pub use address::{EmailAddress, EmailAddressError};
pub use password::{
    Argon2Cost, Argon2CostError, MIN_ZXCVBN_SCORE, Password, PasswordHashing, PasswordRule,
};
pub use service::{EmailAuthConfig, EmailAuthDeps, EmailAuthService, ResetForm};

use crate::challenge::{FailurePolicy, FailureState};
use crate::{
    NewOutboxMessage, NewRefreshToken, NewSession, RateLimitCheck, RepoError, RetryAfter, UserId,
    VerifyOutcome,
};

type HmacSha256 = Hmac<Sha256>;

/// What a link token is for (stored as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the address (`verify`).
    Verify,
    /// Sets a new password (`reset`).
    Reset,
}

impl TokenPurpose {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }
}

/// The MAC of link tokens and of the reset form's CSRF token. `Debug` prints nothing of the keys.
#[derive(Clone)]
pub struct EmailTokenKeys {
    token_mac: [u8; 32],
    csrf_mac: [u8; 32],
}

impl std::fmt::Debug for EmailTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailTokenKeys([REDACTED])")
    }
}

impl EmailTokenKeys {
    /// Keys from [`crate::KeyRing`] (labels `marque/email-token-mac/v1`, `marque/email-csrf/v1`).
    pub fn from_keys(token_mac: [u8; 32], csrf_mac: [u8; 32]) -> Self {
        Self {
            token_mac,
            csrf_mac,
        }
    }

    fn mac(key: &[u8; 32], parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any size"));
        for p in parts {
            mac.update(p);
            mac.update(&[0]);
        }
        mac
    }

    /// The stored hash of a link token of `purpose` (binding the purpose, so a verification
    /// token can never serve as a reset token).
    pub fn hash(&self, purpose: TokenPurpose, token: &str) -> Vec<u8> {
        Self::mac(
            &self.token_mac,
            &[purpose.as_str().as_bytes(), token.as_bytes()],
        )
        .finalize()
        .into_bytes()
        .to_vec()
    }

    /// The reset form's CSRF token for reset token `token`: HMAC under its own key, base64url
    /// (a "synchronizer token" bound to the reset token, OWASP CSRF Prevention Cheat Sheet;
    /// stateless, so any instance checks it).
    pub fn csrf(&self, token: &str) -> String {
        use base64::Engine as _;
        let tag = Self::mac(&self.csrf_mac, &[b"reset-form", token.as_bytes()]).finalize();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.into_bytes())
    }

    /// Whether `csrf` is the CSRF token of `token`, compared in constant time.
    pub fn csrf_matches(&self, token: &str, csrf: &str) -> bool {
        use base64::Engine as _;
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(csrf) else {
            return false;
        };
        Self::mac(&self.csrf_mac, &[b"reset-form", token.as_bytes()])
            .verify_slice(&tag)
            .is_ok()
    }
}

/// The market a link token was issued in (its prefix), if it has the shape of one.
pub fn token_market(token: &str) -> Option<Market> {
    let (prefix, rest) = token.split_once('_')?;
    let market: Market = prefix.parse().ok()?;
    (rest.len() == 43
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(market)
}

/// Growing delays after wrong passwords, per account key (OWASP Authentication Cheat Sheet,
/// "Account Lockout"; NIST SP 800-63B §5.2.2: at most 100 consecutive failures). After
/// `free_failures` wrong passwords in a row each further one blocks sign-in for
/// `base_delay · 2^(n − free_failures)`, at most `max_delay`; at the failure policy's
/// `max_consecutive` the account key is locked for its `lock`. Kept in the same failure rows as
/// phone numbers (key `email:<address key>`), and set for unknown addresses as well, so delays
/// tell nothing about which addresses exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Wrong passwords in a row without delay (default 5).
    pub free_failures: u32,
    /// First delay (default 1 s).
    pub base_delay: Duration,
    /// Longest delay (default 15 minutes).
    pub max_delay: Duration,
    /// The lock (default: the phone failure policy, 30 in a row → 24 hours).
    pub lock: FailurePolicy,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay: Duration::seconds(1),
            max_delay: Duration::minutes(15),
            lock: FailurePolicy {
                max_consecutive: 30,
                lock: Duration::minutes(1440),
            },
        }
    }
}

impl LoginThrottle {
    /// The state after one more wrong password at `now`, and whether it set the lock.
    pub fn record_failure(&self, state: FailureState, now: DateTime<Utc>) -> (FailureState, bool) {
        let (next, locked) = self.lock.record_failure(state, now);
        if locked {
            return (next, true);
        }
        let over = next.consecutive.saturating_sub(self.free_failures);
        if over == 0 {
            return (next, false);
        }
        let factor = 1i32.checked_shl(over - 1).unwrap_or(i32::MAX);
        let delay = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        (
            FailureState {
                consecutive: next.consecutive,
                locked_until: Some(now + delay),
            },
            false,
        )
    }
}

/// The failure-row key of an address key.
pub fn failure_key(address_key: &str) -> String {
    format!("email:{address_key}")
}

/// A token to store with the mail that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmailToken {
    /// [`EmailTokenKeys::hash`] of the token.
    pub hash: Vec<u8>,
    /// Its purpose.
    pub purpose: TokenPurpose,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// An email to queue: its outbox row (recipient may be replaced by the stored address) and the
/// token it carries, if any.
#[derive(Debug, Clone)]
pub struct PreparedMail {
    /// Token to store in the same transaction.
    pub token: Option<NewEmailToken>,
    /// The outbox row ([`crate::Channel::Email`], sealed [`crate::EmailPayload`]).
    pub outbox: NewOutboxMessage,
}

/// Limits on queuing mail: the client's IP buckets (a refusal answers 429 and writes nothing)
/// and the address's bucket (a refusal skips the email silently, so the answer stays the same).
#[derive(Debug, Clone)]
pub struct MailLimits {
    /// Per-IP buckets.
    pub ip: Vec<RateLimitCheck>,
    /// Per-address bucket.
    pub address: RateLimitCheck,
}

/// Input of [`EmailRepository::register`].
#[derive(Debug, Clone)]
pub struct RegisterEmail {
    /// The address.
    pub email: EmailAddress,
    /// PHC string of the password.
    pub password_hash: String,
    /// Display name.
    pub full_name: Option<crate::FullName>,
    /// Time.
    pub now: DateTime<Utc>,
    /// Limits.
    pub limits: MailLimits,
    /// Sent when the account is created.
    pub verify_mail: PreparedMail,
    /// Sent instead when the address exists.
    pub exists_mail: PreparedMail,
}

/// Whether a mail-sending request went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// Done (an email may or may not have been queued; the answer is the same).
    Done,
    /// A per-IP bucket refused; nothing was written.
    RateLimited(RetryAfter),
}

/// Which accounts a mail to an address goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailIf {
    /// Accounts whose address is not verified yet (resend verification).
    Unverified,
    /// Any account with the address (password reset).
    Exists,
}

/// Input of [`EmailRepository::mail_address`].
#[derive(Debug, Clone)]
pub struct AddressMail {
    /// The address key.
    pub key: String,
    /// Condition.
    pub only_if: MailIf,
    /// Time.
    pub now: DateTime<Utc>,
    /// Limits.
    pub limits: MailLimits,
    /// The email.
    pub mail: PreparedMail,
}

/// What [`EmailRepository::login_state`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginState {
    /// The IP bucket refused.
    RateLimited(RetryAfter),
    /// The account key is delayed or locked.
    Locked(RetryAfter),
    /// Go on; the stored credentials when the address is known.
    Ready(Option<StoredLogin>),
}

/// The stored credentials of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogin {
    /// Its account.
    pub user: UserId,
    /// PHC string.
    pub password_hash: String,
    /// Whether the address is verified.
    pub verified: bool,
}

/// Input of [`EmailRepository::login_succeeded`].
#[derive(Debug, Clone)]
pub struct EmailSignIn {
    /// The account.
    pub user: UserId,
    /// Failure-row key ([`failure_key`]).
    pub failure_key: String,
    /// Time.
    pub now: DateTime<Utc>,
    /// Session to open.
    pub session: NewSession,
    /// Its first refresh token.
    pub refresh: NewRefreshToken,
}

/// An account's email identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailIdentity {
    /// The address as stored.
    pub email: String,
    /// Whether it is verified.
    pub verified: bool,
    /// PHC string of the password.
    pub password_hash: String,
}

/// A live token's account and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The account.
    pub user: UserId,
    /// Its address as stored.
    pub email: String,
}

/// Input of [`EmailRepository::reset_password`].
#[derive(Debug, Clone)]
pub struct ResetPassword {
    /// Hash of the reset token.
    pub token_hash: Vec<u8>,
    /// The new PHC string.
    pub password_hash: String,
    /// Time.
    pub now: DateTime<Utc>,
    /// The "password changed" email (recipient: the stored address).
    pub mail: PreparedMail,
}

/// Input of [`EmailRepository::change_password`].
#[derive(Debug, Clone)]
pub struct ChangePassword {
    /// The account.
    pub user: UserId,
    /// The new PHC string.
    pub password_hash: String,
    /// Time.
    pub now: DateTime<Utc>,
    /// The "password changed" email (recipient: the stored address).
    pub mail: PreparedMail,
}

/// Input of [`EmailRepository::link_email`].
#[derive(Debug, Clone)]
pub struct LinkEmail {
    /// The account adding the address.
    pub user: UserId,
    /// The address.
    pub email: EmailAddress,
    /// PHC string of the password.
    pub password_hash: String,
    /// Time.
    pub now: DateTime<Utc>,
    /// Limits.
    pub limits: MailLimits,
    /// Sent when the address is linked.
    pub verify_mail: PreparedMail,
    /// Sent instead when another account has the address.
    pub exists_mail: PreparedMail,
}

/// Result of [`EmailRepository::link_email`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked (unverified) or the address belongs to another account (told by email only):
    /// the same answer.
    Done,
    /// The account already has a verified address.
    AlreadyLinked,
    /// A per-IP bucket refused.
    RateLimited(RetryAfter),
}

/// Storage of email identities and link tokens in one market database. Each method is one
/// transaction.
pub trait EmailRepository: Send + Sync {
    /// The market whose database this is.
    fn market(&self) -> Market;

    /// Whether an account has the address key.
    fn email_exists(&self, key: &str) -> Result<bool, RepoError>;

    /// Hits the limits; creates the account (no phone), its unverified identity, the
    /// verification token and email — or, when the address exists, queues `exists_mail` to it.
    fn register(&self, cmd: RegisterEmail) -> Result<MailOutcome, RepoError>;

    /// Uses a verification token: marks it used and the address verified. The account, when the
    /// token was live.
    fn confirm_email(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, RepoError>;

    /// Queues `mail` (with its token) to the account with the key, if `only_if` holds.
    fn mail_address(&self, cmd: AddressMail) -> Result<MailOutcome, RepoError>;

    /// Hits the IP buckets, reads the key's failure row and the stored credentials.
    fn login_state(
        &self,
        key: &str,
        ip_limits: &[RateLimitCheck],
        now: DateTime<Utc>,
    ) -> Result<LoginState, RepoError>;

    /// Records a wrong password for `failure_key`; the new state and whether it locked.
    fn login_failed(
        &self,
        failure_key: &str,
        throttle: &LoginThrottle,
        now: DateTime<Utc>,
    ) -> Result<(FailureState, bool), RepoError>;

    /// Clears the failures and opens the session (refusing a delayed key or a disabled account),
    /// with the `sign_in` audit row (`via=password`).
    fn login_succeeded(&self, cmd: EmailSignIn) -> Result<VerifyOutcome, RepoError>;

    /// The live token's owner (read only).
    fn token_owner(
        &self,
        purpose: TokenPurpose,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<TokenOwner>, RepoError>;

    /// Uses a reset token: sets the password, marks the address verified (the link proved it),
    /// clears its failures, ends every session of the account and queues the mail.
    fn reset_password(&self, cmd: ResetPassword) -> Result<Option<UserId>, RepoError>;

    /// The account's email identity.
    fn identity(&self, user: UserId) -> Result<Option<EmailIdentity>, RepoError>;

    /// Sets the password, ends every session of the account and queues the mail; `false` when
    /// the account has no identity.
    fn change_password(&self, cmd: ChangePassword) -> Result<bool, RepoError>;

    /// Adds an unverified address to an account (replacing an unverified one).
    fn link_email(&self, cmd: LinkEmail) -> Result<LinkOutcome, RepoError>;

    /// Deletes an account without a phone number (its password proven by the caller) and every
    /// row of it, with the `account_deleted` audit row and the `account_deletions` record, as the
    /// phone path does; `false` when there is no such account (or it has a number: that path
    /// proves a code to it instead).
    fn delete_email_account(
        &self,
        user: UserId,
        client: &crate::ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn delays_grow_then_lock() {
        let t = LoginThrottle::default();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut s = FailureState::default();
        let mut delays = Vec::new();
        for _ in 0..29 {
            let (next, locked) = t.record_failure(s, now);
            assert!(!locked);
            delays.push(next.locked_until.map(|u| (u - now).num_seconds()));
            s = next;
        }
        assert_eq!(&delays[..5], &[None; 5]);
        assert_eq!(&delays[5..9], &[Some(1), Some(2), Some(4), Some(8)]);
        assert_eq!(delays[28], Some(900), "capped at 15 minutes");
        let (locked, just) = t.record_failure(s, now);
        assert!(just);
        assert_eq!(locked.locked_until, Some(now + Duration::days(1)));
    }

    #[test]
    fn token_hashes_bind_purpose_and_csrf_checks() {
        let k = EmailTokenKeys::from_keys([1; 32], [2; 32]);
        assert_ne!(
            k.hash(TokenPurpose::Verify, "t"),
            k.hash(TokenPurpose::Reset, "t")
        );
        let csrf = k.csrf("kg_token");
        assert!(k.csrf_matches("kg_token", &csrf));
        assert!(!k.csrf_matches("kg_other", &csrf));
        assert!(!k.csrf_matches("kg_token", "not base64!"));
        let t = format!("kg_{}", "A".repeat(43));
        assert_eq!(token_market(&t), Some(Market::Kg));
        assert_eq!(token_market("xx_abc"), None);
        assert_eq!(token_market(&format!("us_{}", "A".repeat(42))), None);
    }
}

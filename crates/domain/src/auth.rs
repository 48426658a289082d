//! The phone-login service: send a code, verify it, authenticate tokens, manage the profile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use marque_markets::{Language, Market, OtpCode, OtpPurpose, PhoneNumber};

use crate::challenge::FailurePolicy;
use crate::ip_budget::{self, IpScope};
use crate::random::{generate_otp, new_uuid};
use crate::rate_limit::Elsewhere;
use crate::refresh::{self, session_deadline};
use crate::sms_guard::{self, BudgetTrip, PrefixCheck, SmsGuardConfig, SmsGuards};
use crate::tokens::ClaimsExt;
use crate::{
    AccessClaims, AttemptGuard, AuditEvent, AuditRecord, AuthRepository, Channel, Clock, CodeCheck,
    DeleteAccount, IssueChallenge, IssueOutcome, MarketUnavailable, NewOutboxMessage,
    NewRefreshToken, NewSession, OtpHasher, OtpPayload, Owner, PayloadSealer, ProfileUpdate,
    RandomSource, RateLimitCheck, RateLimitPolicy, RefreshKeys, RepoError, RevokeScope,
    RotateOutcome, RotateRefresh, SessionId, SessionInfo, TokenService, User, UserId,
    VerifyChallenge, VerifyOutcome,
};

/// Tunables of [`AuthService`]. Defaults follow NIST SP 800-63B §5.1.3 and the product's
/// original settings (`MAX_VERIFICATION_ATTEMPTS=3`, `VERIFICATION_ATTEMPTS_WINDOW=15`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Lifetime of a code per market (default 10 minutes each).
    pub otp_ttl: BTreeMap<Market, Duration>,
    /// Wrong tries per code before it dies (default 3).
    pub max_attempts: u32,
    /// Codes per phone number: default 3 per 15 minutes, 60 s between two.
    pub phone_send_limit: RateLimitPolicy,
    /// Codes per client IP (default 30 per 15 minutes, no cooldown); generous because mobile
    /// carriers put many shoppers behind one address (CGNAT). One budget over all markets;
    /// IPv4-mapped IPv6 counts as IPv4, IPv6 per /64 ([`crate::ip_budget`]).
    pub ip_send_limit: RateLimitPolicy,
    /// Codes per IPv6 /48 (default 240 per 15 minutes: eight /64s' worth), over all markets.
    pub ipv6_48_send_limit: RateLimitPolicy,
    /// SMS per market per day (default 10,000 each; `SMS_DAILY_LIMIT_{MARKET}`).
    pub sms_daily_limit: BTreeMap<Market, u32>,
    /// The other SMS-pumping guards: total daily budget, prefix velocity and alarm.
    pub sms_guard: SmsGuardConfig,
    /// Refresh-token lifetime per market, which is also the session idle timeout: a session not
    /// refreshed for this long ends (default 30 days each).
    pub refresh_ttl: BTreeMap<Market, Duration>,
    /// Absolute session lifetime, whatever the refreshes (default 90 days).
    pub session_max_lifetime: Duration,
    /// Window in which a just-rotated refresh token gets the same successor again instead of
    /// counting as reuse (default 10 s), for clients that retry concurrently.
    pub refresh_grace: Duration,
    /// Numbers (E.164) with fixed codes for app-store review, demos and load tests: no message is
    /// sent. Empty by default.
    pub test_numbers: HashMap<String, OtpCode>,
    /// After this instant test numbers are ordinary numbers (`TEST_PHONE_NUMBERS_VALID_UNTIL`;
    /// default: no end).
    pub test_numbers_valid_until: Option<DateTime<Utc>>,
    /// Whether test numbers skip the send and verify limits (per IP, per number, failure lock):
    /// `true` outside production (demos, load tests), `false` in production, where they obey the
    /// per-IP and failure limits (issue 12, item 7).
    pub test_numbers_exempt: bool,
    /// Verification attempts per client IP (`IP_VERIFY_LIMIT`, default 60 per the IP send window).
    pub ip_verify_limit: RateLimitPolicy,
    /// Consecutive wrong codes per number, across codes, before the number is locked
    /// (`MAX_CONSECUTIVE_FAILURES` 30, `FAILURE_LOCK_MINUTES` 1440).
    pub failures: FailurePolicy,
    /// Whether verify-code and account deletion require the `challenge_id` of send-code
    /// (`REQUIRE_CHALLENGE_ID`, default `false` so the original clients keep working).
    pub require_challenge_id: bool,
    /// The channels a market's codes may go out on, in fallback order; the first is the default
    /// (`CHANNELS_KG`, `CHANNELS_US`, narrowed to the channels whose provider is configured).
    /// Default: SMS only.
    pub channels: BTreeMap<Market, Vec<Channel>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            otp_ttl: Market::ALL
                .iter()
                .map(|m| {
                    (
                        *m,
                        Duration::minutes(i64::from(m.profile().default_otp_expiry_minutes)),
                    )
                })
                .collect(),
            max_attempts: 3,
            phone_send_limit: RateLimitPolicy {
                max_hits: 3,
                window: Duration::minutes(15),
                cooldown: Duration::seconds(60),
            },
            ip_send_limit: RateLimitPolicy {
                max_hits: 30,
                window: Duration::minutes(15),
                cooldown: Duration::zero(),
            },
            ipv6_48_send_limit: RateLimitPolicy {
                max_hits: 240,
                window: Duration::minutes(15),
                cooldown: Duration::zero(),
            },
            sms_daily_limit: Market::ALL.iter().map(|m| (*m, 10_000)).collect(),
            sms_guard: SmsGuardConfig::default(),
            refresh_ttl: Market::ALL
                .iter()
                .map(|m| (*m, Duration::days(30)))
                .collect(),
            session_max_lifetime: Duration::days(90),
            refresh_grace: Duration::seconds(10),
            test_numbers: HashMap::new(),
            test_numbers_valid_until: None,
            test_numbers_exempt: true,
            ip_verify_limit: RateLimitPolicy {
                max_hits: 60,
                window: Duration::minutes(15),
                cooldown: Duration::zero(),
            },
            failures: FailurePolicy {
                max_consecutive: 30,
                lock: Duration::minutes(1440),
            },
            require_challenge_id: false,
            channels: Market::ALL
                .iter()
                .map(|m| (*m, vec![Channel::Sms]))
                .collect(),
        }
    }
}

impl AuthConfig {
    /// SMS per day in `market`.
    pub fn sms_daily_limit(&self, market: Market) -> u32 {
        self.sms_daily_limit.get(&market).copied().unwrap_or(10_000)
    }

    /// Refresh-token lifetime (session idle timeout) in `market`.
    pub fn refresh_ttl(&self, market: Market) -> Duration {
        self.refresh_ttl
            .get(&market)
            .copied()
            .unwrap_or_else(|| Duration::days(30))
    }

    /// The fixed code of `phone` if it is a test number still valid at `now`.
    pub fn test_code(&self, phone: &PhoneNumber, now: DateTime<Utc>) -> Option<&OtpCode> {
        let code = self.test_numbers.get(phone.e164())?;
        match self.test_numbers_valid_until {
            Some(until) if now >= until => None,
            _ => Some(code),
        }
    }

    /// The channels of `market` in fallback order (empty when none is configured).
    pub fn channels(&self, market: Market) -> &[Channel] {
        self.channels.get(&market).map_or(&[], Vec::as_slice)
    }

    /// Code lifetime in `market`.
    pub fn otp_ttl(&self, market: Market) -> Duration {
        self.otp_ttl.get(&market).copied().unwrap_or_else(|| {
            Duration::minutes(i64::from(market.profile().default_otp_expiry_minutes))
        })
    }
}

/// What is known of the client making a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP (after trusted-proxy resolution), as text.
    pub ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
}

/// A code was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSent {
    /// Minutes until the code expires.
    pub expires_in_minutes: i64,
    /// The challenge's unguessable id (128 random bits, 22 base64url characters): a
    /// verification carrying it is the only kind that can use up this code.
    pub challenge_id: String,
    /// What the code is for.
    pub purpose: OtpPurpose,
    /// The channel the code goes out on first.
    pub channel: Channel,
}

/// Why a code was refused. Clients get one answer for all of them (`invalid_code`), so a probe
/// learns nothing about a number's codes; the reason is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Wrong code for a live challenge (counted).
    Wrong,
    /// The code expired.
    Expired,
    /// Too many wrong tries on the code: it is dead.
    AttemptsExceeded,
    /// No usable code: none issued, used, superseded, another purpose or an unknown
    /// `challenge_id`.
    NoActiveCode,
}

/// A successful verification.
#[derive(Debug, Clone)]
pub struct LoginSuccess {
    /// Signed JWT.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The signed-in user.
    pub user: User,
    /// Whether this login created the user.
    pub is_new_user: bool,
    /// Opaque refresh token (`mrt_…`), shown once.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

/// A successful refresh.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// New signed JWT.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The refresh token to use next time (the presented one no longer works).
    pub refresh_token: String,
    /// Seconds until that refresh token expires.
    pub refresh_expires_in: i64,
    /// The session's user.
    pub user: UserId,
    /// The user's market.
    pub market: Market,
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogoutScope {
    /// The token's own session.
    #[default]
    Local,
    /// All of the user's sessions.
    Global,
    /// All of the user's sessions except the token's.
    Others,
}

/// A caller proven by an authentic, unexpired access token whose session is active, with the
/// session's user as stored. The edge (the api's extractor) builds it once per request with
/// [`AuthService::authenticate`] and hands it to the services, which take ids, never tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user, read with the session in one query.
    pub user: User,
    /// The market whose database holds the user and the session (the token's `market`).
    pub market: Market,
    /// The token's session (`sid`).
    pub session: SessionId,
    /// When the access token expires (`exp`).
    pub token_expires_at: DateTime<Utc>,
}

impl SignedIn {
    /// The language of the user's market, for every answer to this caller.
    pub fn language(&self) -> Language {
        self.market.language()
    }

    /// The owner of the account data this caller may touch.
    pub fn owner(&self) -> Owner {
        Owner {
            market: self.market,
            user: self.user.id,
        }
    }
}

/// The collaborators of [`AuthService`].
pub struct AuthDeps {
    /// One repository per served market.
    pub repos: Vec<Arc<dyn AuthRepository>>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub rng: Arc<dyn RandomSource>,
    /// OTP hashing key.
    pub hasher: OtpHasher,
    /// Sealer of outbox payloads.
    pub outbox_sealer: PayloadSealer,
    /// Refresh-token MAC: successors and client bindings (nothing reversible is stored).
    pub refresh_keys: RefreshKeys,
    /// Access-token signer and verifier.
    pub tokens: TokenService,
}

/// A market database's state for health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketHealth {
    /// Market.
    pub market: Market,
    /// `None` when healthy, else what failed (safe to show: no secrets).
    pub error: Option<String>,
}

/// Failures of [`AuthService`] calls, each a distinct client-facing answer.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Too many codes; retry after this many seconds.
    #[error("rate limited, retry after {0} s")]
    RateLimited(u64),
    /// An SMS-pumping guard (daily budget, prefix velocity) refused; nothing was sent. Retry
    /// after this many seconds.
    #[error("sms budget exceeded, retry after {0} s")]
    SmsBudgetExceeded(u64),
    /// The asked-for channel is not in the market's list or has no configured provider.
    #[error("channel {0} not available")]
    ChannelNotAvailable(Channel),
    /// A CAPTCHA is configured and the request carries no token.
    #[error("captcha required")]
    CaptchaRequired,
    /// The CAPTCHA provider refused the token.
    #[error("captcha invalid")]
    CaptchaInvalid,
    /// The CAPTCHA provider could not be asked; answered 503.
    #[error("captcha provider unavailable")]
    CaptchaUnavailable(#[source] crate::CaptchaUnavailable),
    /// The code was not accepted, for whatever reason (one answer for all: issue 12, item 9).
    #[error("code refused: {0:?}")]
    InvalidCode(CodeRefusal),
    /// The number is locked after too many consecutive wrong codes; retry after this many
    /// seconds.
    #[error("number locked, retry after {0} s")]
    PhoneLocked(u64),
    /// The account is disabled (`is_active = false`); told only after a right code.
    #[error("account disabled")]
    AccountDisabled,
    /// Token missing, malformed, expired, or its session is not active.
    #[error("invalid token")]
    InvalidToken,
    /// Refresh token unknown, expired, or of an ended session.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A rotated refresh token was presented again: the session has been revoked.
    #[error("refresh token reused; session revoked")]
    RefreshTokenReused,
    /// The named resource (a session) does not exist for this user.
    #[error("not found")]
    NotFound,
    /// Telegram Login Widget data whose hash is wrong or whose `auth_date` is over a day old.
    #[error("invalid telegram login data")]
    InvalidTelegramAuth,
    /// The Telegram user is not linked to an account (issue 9).
    #[error("telegram user not linked")]
    TelegramNotLinked,
    /// Unknown address or wrong password: one answer for both (issue 10).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Right password, but the address is not verified yet.
    #[error("email not verified")]
    EmailNotVerified,
    /// A new password breaks the password policy.
    #[error("password refused: {0}")]
    WeakPassword(crate::PasswordRule),
    /// An email link token that is unknown, used, expired or malformed.
    #[error("invalid or expired link")]
    InvalidEmailLink,
    /// The address exists in several markets: the request must name one (`X-Market`).
    #[error("market required")]
    MarketRequired,
    /// The account already has a verified email address.
    #[error("email already linked")]
    EmailAlreadyLinked,
    /// The number belongs to another account (linking a phone to a signed-in account).
    #[error("phone in use")]
    PhoneInUse,
    /// The market's database is not configured or not reachable.
    #[error(transparent)]
    Unavailable(#[from] MarketUnavailable),
    /// An unexpected failure (storage, a sealed value that does not open); logged with its
    /// cause, answered as 500.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a sign-in opens: the session and refresh token to store, the refresh token's text, and
/// the session's deadline.
pub(crate) struct SessionOpening {
    market: Market,
    pub(crate) session: NewSession,
    pub(crate) refresh: NewRefreshToken,
    refresh_token: String,
    deadline: DateTime<Utc>,
}

/// A new challenge id: 128 bits from the CSPRNG as 22 base64url characters.
fn new_challenge_id(rng: &dyn RandomSource) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Phone-number login over the markets' repositories.
pub struct AuthService {
    repos: BTreeMap<Market, Arc<dyn AuthRepository>>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    hasher: OtpHasher,
    sealer: PayloadSealer,
    refresh_keys: RefreshKeys,
    tokens: TokenService,
    config: AuthConfig,
    sign_in_observers: Vec<Arc<dyn crate::SignInObserver>>,
    captcha: Option<Arc<dyn crate::CaptchaVerifier>>,
    guard_metrics: Arc<SmsGuardMetrics>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("markets", &self.repos.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Wires the service.
    pub fn new(deps: AuthDeps, config: AuthConfig) -> Self {
        let repos = deps.repos.into_iter().map(|r| (r.market(), r)).collect();
        Self {
            repos,
            clock: deps.clock,
            rng: deps.rng,
            hasher: deps.hasher,
            sealer: deps.outbox_sealer,
            refresh_keys: deps.refresh_keys,
            tokens: deps.tokens,
            config,
            sign_in_observers: Vec::new(),
            captcha: None,
            guard_metrics: Arc::default(),
        }
    }

    /// Public keys for `GET /.well-known/jwks.json`: the current Ed25519 key and the retired ones.
    pub fn jwks(&self) -> &jsonwebtoken::jwk::JwkSet {
        self.tokens.jwks()
    }

    /// Adds an observer told of every successful sign-in (after it is stored).
    #[must_use]
    pub fn with_sign_in_observer(mut self, observer: Arc<dyn crate::SignInObserver>) -> Self {
        self.sign_in_observers.push(observer);
        self
    }

    /// Markets this instance serves.
    pub fn markets(&self) -> impl Iterator<Item = Market> + '_ {
        self.repos.keys().copied()
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    fn repo(&self, market: Market) -> Result<&dyn AuthRepository, AuthError> {
        self.repos
            .get(&market)
            .map(|r| r.as_ref())
            .ok_or_else(|| MarketUnavailable::not_served(market).into())
    }

    /// Maps a storage failure in `market`, keeping it as the cause.
    fn storage(market: Market) -> impl Fn(RepoError) -> AuthError {
        move |e| match MarketUnavailable::sort(market, e) {
            Ok(down) => AuthError::Unavailable(down),
            Err(other) => AuthError::Internal(Box::new(other)),
        }
    }

    /// Issues a sign-in code for `phone` ([`AuthService::send_code_for`] with
    /// [`OtpPurpose::Login`]).
    pub fn send_code(
        &self,
        phone: &PhoneNumber,
        client: &ClientInfo,
    ) -> Result<CodeSent, AuthError> {
        self.send_code_for(phone, OtpPurpose::Login, client)
    }

    /// Issues a code for `purpose` to `phone`: supersedes the number's previous code of that
    /// purpose, refuses a locked number, enforces the phone and IP limits, and queues the message
    /// in the outbox — in one transaction of the number's market database.
    ///
    /// A test number (until `test_numbers_valid_until`) gets its fixed code and no message; it is
    /// exempt from every limit only when `test_numbers_exempt` (outside production).
    ///
    /// Errors: [`AuthError::RateLimited`], [`AuthError::PhoneLocked`],
    /// [`AuthError::Unavailable`], [`AuthError::Internal`].
    pub fn send_code_for(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        client: &ClientInfo,
    ) -> Result<CodeSent, AuthError> {
        self.send_code_via(phone, purpose, None, client)
    }

    /// [`AuthService::send_code_for`] on `channel` (`None`: the market's first channel). The
    /// other channels of the market's list, in order, are the message's fallbacks.
    ///
    /// Errors: [`AuthError::ChannelNotAvailable`] when `channel` is not in the market's list (or
    /// the list is empty), then those of [`AuthService::send_code_for`].
    pub fn send_code_via(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        channel: Option<Channel>,
        client: &ClientInfo,
    ) -> Result<CodeSent, AuthError> {
        let market = phone.market();
        let channels = self.config.channels(market);
        let channel = match channel {
            Some(c) if channels.contains(&c) => c,
            Some(c) => return Err(AuthError::ChannelNotAvailable(c)),
            None => *channels
                .first()
                .ok_or(AuthError::ChannelNotAvailable(Channel::Sms))?,
        };
        let fallback: Vec<Channel> = channels.iter().copied().filter(|c| *c != channel).collect();
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let ttl = self.config.otp_ttl(market);
        let expires_at = now + ttl;
        let test_code = self.config.test_code(phone, now);
        let exempt = test_code.is_some() && self.config.test_numbers_exempt;
        let mut limits = Vec::new();
        if test_code.is_none() {
            limits.push(RateLimitCheck {
                bucket: crate::rate_limit::phone_send_bucket(phone),
                policy: self.config.phone_send_limit,
                elsewhere: Elsewhere::default(),
            });
        }
        // The other markets' counts this send is judged against — its IP buckets and, when a
        // message goes out, the SMS day — in one read of each other market's database.
        let ip = if exempt {
            Vec::new()
        } else {
            ip_buckets(client, "send", true)
        };
        let mut shared: Vec<String> = ip.iter().map(|b| b.key.clone()).collect();
        if test_code.is_none() {
            shared.push(sms_guard::DAILY_BUCKET.to_owned());
        }
        let others = self.elsewhere(market, shared);
        limits.extend(ip_checks(
            ip,
            self.config.ip_send_limit,
            Some(self.config.ipv6_48_send_limit),
            &others,
            now,
        ));
        let (code, outbox) = match test_code {
            Some(code) => (code.clone(), None),
            None => {
                let code = generate_otp(self.rng.as_ref());
                let payload = OtpPayload {
                    code: code.clone(),
                    purpose,
                    ttl_minutes: u32::try_from(ttl.num_minutes()).unwrap_or(u32::MAX),
                };
                let outbox = NewOutboxMessage {
                    channel,
                    fallback,
                    recipient: phone.e164().to_owned(),
                    sealed_body: self.sealer.seal(&payload.encode(), self.rng.as_ref()),
                    expires_at,
                };
                (code, Some(outbox))
            }
        };
        let challenge_id = new_challenge_id(self.rng.as_ref());
        // The SMS-pumping guards count only what is sent (test numbers send nothing).
        let sms = outbox.as_ref().map(|_| self.sms_guards(phone, &others));
        let cmd = IssueChallenge {
            phone: phone.clone(),
            code_hash: self.hasher.hash(phone, purpose, &code),
            purpose,
            challenge_id: challenge_id.clone(),
            channel,
            check_lock: !exempt,
            now,
            expires_at,
            client_ip: client.ip.clone(),
            limits,
            outbox,
            sms,
        };
        let outcome = repo.issue_challenge(cmd).map_err(Self::storage(market))?;
        if test_code.is_some() {
            self.audit_test_number(phone, client, "send_code", None, &outcome);
        }
        match outcome {
            IssueOutcome::Issued => Ok(CodeSent {
                expires_in_minutes: ttl.num_minutes(),
                challenge_id,
                purpose,
                channel,
            }),
            IssueOutcome::IssuedWithAlarm(alarm) => {
                self.guard_metrics.alarm(market, &alarm);
                Ok(CodeSent {
                    expires_in_minutes: ttl.num_minutes(),
                    challenge_id,
                    purpose,
                    channel,
                })
            }
            IssueOutcome::RateLimited(r) => Err(AuthError::RateLimited(r.0)),
            IssueOutcome::BudgetExceeded(trip) => {
                self.guard_metrics.tripped(market, &trip, client);
                // The guard and the client, never the number (issue 12, item 18).
                let event = AuditEvent::SmsBudgetTripped {
                    guard: trip.guard.as_str().to_owned(),
                    phone: None,
                };
                self.audit(AuditRecord::new(market, now, None, client, event));
                Err(AuthError::SmsBudgetExceeded(trip.retry_after.0))
            }
            IssueOutcome::Locked(r) => Err(AuthError::PhoneLocked(r.0)),
        }
    }

    /// The per-IP and failure limits of a verification attempt on `phone`: none for a test
    /// number while test numbers are exempt.
    /// The code `matches` checks, presented for `phone` by `client` at `now`.
    fn code_check<'a>(
        &self,
        phone: &'a PhoneNumber,
        now: DateTime<Utc>,
        matches: &'a (dyn Fn(&[u8]) -> bool + Sync),
        challenge_id: Option<&'a str>,
        client: &ClientInfo,
    ) -> CodeCheck<'a> {
        CodeCheck {
            phone,
            now,
            max_attempts: self.config.max_attempts,
            matches,
            challenge_id,
            guard: self.attempt_guard(phone, client, now),
        }
    }

    fn attempt_guard(
        &self,
        phone: &PhoneNumber,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> AttemptGuard {
        let test = self.config.test_code(phone, now).is_some();
        if test && self.config.test_numbers_exempt {
            return AttemptGuard::default();
        }
        AttemptGuard {
            limits: self.ip_limits(
                phone.market(),
                client,
                "verify",
                self.config.ip_verify_limit,
                None,
            ),
            failures: Some(self.config.failures),
        }
    }

    /// The error for a refused verification of `phone`; a lock set by this attempt is reported
    /// to the observers (security notification) and logged for audit.
    fn refused(
        &self,
        phone: &PhoneNumber,
        client: &ClientInfo,
        step: &'static str,
        outcome: VerifyOutcome,
    ) -> AuthError {
        let market = phone.market();
        if self.config.test_code(phone, self.clock.now()).is_some() {
            self.audit_test_number(phone, client, step, None, &outcome);
        }
        match outcome {
            VerifyOutcome::Verified { .. }
            | VerifyOutcome::NoActiveCode
            | VerifyOutcome::PhoneInUse => AuthError::InvalidCode(CodeRefusal::NoActiveCode),
            VerifyOutcome::WrongCode { .. } => AuthError::InvalidCode(CodeRefusal::Wrong),
            VerifyOutcome::Expired => AuthError::InvalidCode(CodeRefusal::Expired),
            VerifyOutcome::AttemptsExceeded => {
                AuthError::InvalidCode(CodeRefusal::AttemptsExceeded)
            }
            VerifyOutcome::RateLimited(r) => AuthError::RateLimited(r.0),
            VerifyOutcome::Disabled => AuthError::AccountDisabled,
            VerifyOutcome::Locked {
                retry_after,
                just_locked,
                user,
            } => {
                if just_locked {
                    let at = self.clock.now();
                    let until =
                        at + Duration::seconds(i64::try_from(retry_after.0).unwrap_or(i64::MAX));
                    // Audit (issue 12, items 8 and 18): the log line and the market's audit log.
                    tracing::info!(
                        target: "audit",
                        event = "phone_locked",
                        step,
                        %market,
                        user = user.map(|u| u.0),
                        until = %until,
                        client_ip = client.ip.as_deref(),
                        user_agent = client.user_agent.as_deref(),
                    );
                    let audit = AuditEvent::PhoneLocked {
                        phone: phone.clone(),
                        until,
                    };
                    self.audit(AuditRecord::new(market, at, user, client, audit));
                    let event = crate::PhoneLockedEvent {
                        market,
                        user,
                        at,
                        until,
                    };
                    for observer in &self.sign_in_observers {
                        observer.phone_locked(&event);
                    }
                }
                AuthError::PhoneLocked(retry_after.0)
            }
        }
    }

    /// Checks a sign-in `code` for `phone` ([`AuthService::verify_code_with`] without a
    /// `challenge_id`).
    pub fn verify_code(
        &self,
        phone: &PhoneNumber,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        self.verify_code_with(phone, code, None, client)
    }

    /// Checks a sign-in `code` for `phone` — on the challenge `challenge_id` when given (an
    /// unknown id touches no code), else on the number's newest sign-in challenge; on success
    /// creates the user if new, opens a session and signs an access token bound to it.
    ///
    /// Errors: [`AuthError::InvalidCode`] (one answer for wrong, used, expired, dead or missing
    /// codes), [`AuthError::PhoneLocked`], [`AuthError::RateLimited`] (per-IP verify limit),
    /// storage errors.
    pub fn verify_code_with(
        &self,
        phone: &PhoneNumber,
        code: &OtpCode,
        challenge_id: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        self.verify_code_attaching(phone, code, challenge_id, None, client)
    }

    /// [`AuthService::verify_code_with`] by a signed-in caller (`attach_to`): the proven number
    /// is attached to the caller's account — an email user adding a phone (issue 10) — and the
    /// new session is the caller's account's. The number must be in the caller's market.
    ///
    /// Errors: those of [`AuthService::verify_code_with`]; [`AuthError::PhoneInUse`] when the
    /// number belongs to another account (the code is used up).
    pub fn verify_code_attaching(
        &self,
        phone: &PhoneNumber,
        code: &OtpCode,
        challenge_id: Option<&str>,
        attach_to: Option<&SignedIn>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        let market = phone.market();
        if attach_to.is_some_and(|who| who.market != market || who.user.phone.is_some()) {
            return Err(AuthError::PhoneInUse);
        }
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let matches = |stored: &[u8]| self.hasher.verify(phone, OtpPurpose::Login, code, stored);
        let opening = self.session_opening(market, client, now);
        let cmd = VerifyChallenge {
            check: self.code_check(phone, now, &matches, challenge_id, client),
            session: opening.session.clone(),
            refresh: opening.refresh.clone(),
            attach_to: attach_to.map(|who| who.user.id),
        };
        let outcome = repo.verify_challenge(cmd).map_err(Self::storage(market))?;
        if let VerifyOutcome::Verified { user, .. } = &outcome
            && self.config.test_code(phone, now).is_some()
        {
            self.audit_test_number(phone, client, "verify_code", Some(user.id), &"verified");
        }
        match outcome {
            VerifyOutcome::Verified { .. } => self.signed_in_with(opening, outcome, now),
            VerifyOutcome::Disabled => Err(AuthError::AccountDisabled),
            VerifyOutcome::PhoneInUse => Err(AuthError::PhoneInUse),
            refusal => Err(self.refused(phone, client, "verify_code", refusal)),
        }
    }

    /// The session and first refresh token a sign-in in `market` by `client` at `now` opens.
    pub(crate) fn session_opening(
        &self,
        market: Market,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> SessionOpening {
        let deadline = session_deadline(
            now,
            now,
            self.config.refresh_ttl(market),
            self.config.session_max_lifetime,
        );
        let (refresh_token, refresh_hash) = refresh::generate(market, self.rng.as_ref());
        let session = NewSession {
            id: crate::SessionId(new_uuid(self.rng.as_ref())),
            created_at: now,
            expires_at: deadline,
            user_agent: client
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(512).collect()),
            client_ip: client.ip.clone(),
        };
        SessionOpening {
            market,
            session,
            refresh: NewRefreshToken {
                token_hash: refresh_hash,
                expires_at: deadline,
            },
            refresh_token,
            deadline,
        }
    }

    /// The one ending of every sign-in: after the repository stored `opening` for a proven
    /// number (`outcome` is `Verified`), signs the access token and tells the observers (the
    /// new-device notice). Any other outcome is an internal error here.
    pub(crate) fn signed_in_with(
        &self,
        opening: SessionOpening,
        outcome: VerifyOutcome,
        now: DateTime<Utc>,
    ) -> Result<LoginSuccess, AuthError> {
        let VerifyOutcome::Verified {
            user,
            is_new_user,
            known_device,
        } = outcome
        else {
            return Err(AuthError::Internal(
                "sign-in without a verified user".into(),
            ));
        };
        let market = opening.market;
        let sid = opening.session.id.clone();
        let jti = new_uuid(self.rng.as_ref());
        let (access_token, claims) = self.tokens.issue(user.id, market, &sid, jti, now);
        let event = crate::SignInEvent {
            market,
            user: user.id,
            session: sid,
            user_agent: opening.session.user_agent,
            is_new_user,
            known_device,
            at: now,
        };
        for observer in &self.sign_in_observers {
            observer.signed_in(&event);
        }
        Ok(LoginSuccess {
            access_token,
            expires_in: claims.exp - claims.iat,
            user,
            is_new_user,
            refresh_token: opening.refresh_token,
            refresh_expires_in: (opening.deadline - now).num_seconds(),
        })
    }

    /// Signs in a number a messenger has proven (issue 9), exactly as a right code does: the
    /// user is created on first use, a session and refresh token are opened in the number's
    /// market database, the sign-in is audited (`via` = `whatsapp`, `telegram`,
    /// `telegram_widget`) and the observers are told. `link_telegram` links that Telegram user
    /// id to the account in the same transaction.
    ///
    /// Errors: [`AuthError::PhoneLocked`] (the number's failure lock holds),
    /// [`AuthError::AccountDisabled`], storage errors.
    pub fn sign_in_proven(
        &self,
        phone: &PhoneNumber,
        via: &'static str,
        link_telegram: Option<i64>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        let market = phone.market();
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let opening = self.session_opening(market, client, now);
        let cmd = crate::SignInProven {
            phone,
            now,
            session: opening.session.clone(),
            refresh: opening.refresh.clone(),
            via,
            link_telegram,
        };
        match repo.sign_in_proven(cmd).map_err(Self::storage(market))? {
            outcome @ VerifyOutcome::Verified { .. } => self.signed_in_with(opening, outcome, now),
            VerifyOutcome::Disabled => Err(AuthError::AccountDisabled),
            VerifyOutcome::Locked { retry_after, .. } => Err(AuthError::PhoneLocked(retry_after.0)),
            VerifyOutcome::RateLimited(r) => Err(AuthError::RateLimited(r.0)),
            _ => Err(AuthError::Internal(
                "unexpected proven sign-in outcome".into(),
            )),
        }
    }

    /// The number of the account linked to Telegram user `telegram_user`, in whichever market
    /// holds the link.
    ///
    /// Errors: storage errors.
    pub fn telegram_phone(&self, telegram_user: i64) -> Result<Option<PhoneNumber>, AuthError> {
        for (market, repo) in &self.repos {
            let found = repo
                .telegram_user_phone(telegram_user)
                .map_err(Self::storage(*market))?;
            if let Some(e164) = found {
                let phone = PhoneNumber::parse(&e164, Some(*market))
                    .map_err(|e| AuthError::Internal(format!("stored number: {e}").into()))?;
                return Ok(Some(phone));
            }
        }
        Ok(None)
    }

    /// The caller's Telegram link, if any.
    ///
    /// Errors: storage errors.
    pub fn telegram_link(&self, who: &SignedIn) -> Result<Option<crate::TelegramLink>, AuthError> {
        self.repo(who.market)?
            .telegram_link(who.user.id)
            .map_err(Self::storage(who.market))
    }

    /// Removes the caller's Telegram link (audited as `telegram_unlinked`).
    ///
    /// Errors: [`AuthError::NotFound`] when there is none, storage errors.
    pub fn unlink_telegram(&self, who: &SignedIn, client: &ClientInfo) -> Result<(), AuthError> {
        let removed = self
            .repo(who.market)?
            .unlink_telegram(who.user.id)
            .map_err(Self::storage(who.market))?;
        if !removed {
            return Err(AuthError::NotFound);
        }
        let event = AuditEvent::Other {
            kind: "telegram_unlinked".to_owned(),
            detail: None,
        };
        self.audit(AuditRecord::new(
            who.market,
            self.clock.now(),
            Some(who.user.id),
            client,
            event,
        ));
        Ok(())
    }

    /// Checks the signature, issuer and expiry of an access token, without the database. The
    /// claims name the market, so an edge can choose the language of its answer before
    /// [`AuthService::signed_in`] reads the session.
    ///
    /// Errors: [`AuthError::InvalidToken`].
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.tokens
            .verify(token, self.clock.now())
            .map_err(|_| AuthError::InvalidToken)
    }

    /// The caller behind verified `claims`: their session must be active and belong to the
    /// token's user; session and user are read in one query of the market's database.
    ///
    /// Errors: [`AuthError::InvalidToken`], storage errors.
    pub fn signed_in(&self, claims: &AccessClaims) -> Result<SignedIn, AuthError> {
        let user = claims.user_id().map_err(|_| AuthError::InvalidToken)?;
        let market = claims.market().map_err(|_| AuthError::InvalidToken)?;
        let session = claims.session_id();
        let user = self
            .repo(market)?
            .session_user(&session, user, self.clock.now())
            .map_err(Self::storage(market))?
            .ok_or(AuthError::InvalidToken)?;
        Ok(SignedIn {
            user,
            market,
            session,
            token_expires_at: claims.expires_at(),
        })
    }

    /// [`AuthService::verify_access_token`] then [`AuthService::signed_in`]: the one check of a
    /// bearer token.
    pub fn authenticate(&self, token: &str) -> Result<SignedIn, AuthError> {
        self.signed_in(&self.verify_access_token(token)?)
    }

    /// Applies `update` to the caller's profile.
    ///
    /// Errors: [`AuthError::InvalidToken`] when the user was deleted meanwhile, storage errors.
    pub fn update_profile(
        &self,
        who: &SignedIn,
        update: &ProfileUpdate,
    ) -> Result<User, AuthError> {
        self.repo(who.market)?
            .update_profile(who.user.id, update, self.clock.now())
            .map_err(Self::storage(who.market))?
            .ok_or(AuthError::InvalidToken)
    }

    /// Ends sessions of the caller: their own (`Local`), all (`Global`) or all others
    /// (`Others`). Takes effect at once on every instance, and is audited. Returns how many
    /// sessions ended.
    pub fn logout(
        &self,
        who: &SignedIn,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<u64, AuthError> {
        let (name, scope) = match scope {
            LogoutScope::Local => ("local", RevokeScope::One(who.session.clone())),
            LogoutScope::Global => ("global", RevokeScope::All),
            LogoutScope::Others => ("others", RevokeScope::AllExcept(who.session.clone())),
        };
        let now = self.clock.now();
        let ended = self
            .repo(who.market)?
            .revoke_sessions(who.user.id, &scope, now)
            .map_err(Self::storage(who.market))?;
        self.audit_sign_out(who, now, client, name, ended);
        Ok(ended)
    }

    /// Audits the end of `sessions` sessions of the caller, of `scope`.
    fn audit_sign_out(
        &self,
        who: &SignedIn,
        now: DateTime<Utc>,
        client: &ClientInfo,
        scope: &'static str,
        sessions: u64,
    ) {
        let event = AuditEvent::SignOut { scope, sessions };
        self.audit(AuditRecord::new(
            who.market,
            now,
            Some(who.user.id),
            client,
            event,
        ));
    }

    /// Records a use of a test number (issue 12, items 7 and 18): a `target: "audit"` log line
    /// with the outcome, and a `test_number_used` row in the market's audit log (`step` is
    /// `send_code`, `verify_code` or `delete_account`; never the code).
    fn audit_test_number(
        &self,
        phone: &PhoneNumber,
        client: &ClientInfo,
        step: &'static str,
        user: Option<UserId>,
        outcome: &dyn std::fmt::Debug,
    ) {
        let market = phone.market();
        tracing::info!(
            target: "audit",
            event = "test_number_used",
            step,
            %market,
            user = user.map(|u| u.0),
            outcome = ?outcome,
            client_ip = client.ip.as_deref(),
            user_agent = client.user_agent.as_deref(),
        );
        let event = AuditEvent::TestNumberUsed {
            phone: phone.clone(),
            action: step,
        };
        self.audit(AuditRecord::new(
            market,
            self.clock.now(),
            user,
            client,
            event,
        ));
    }

    /// Appends `record` to the audit log of its market's database (a plain insert). A failure is
    /// logged, not returned: the action it records has already happened.
    pub fn audit(&self, record: AuditRecord) {
        let market = record.market;
        let written = self.repo(market).map(|r| r.record_audit(&record));
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(%market, event = record.event.kind(), error = %e, "audit write failed");
            }
            Err(_) => {
                tracing::error!(%market, event = record.event.kind(), "audit write failed: market not served");
            }
        }
    }

    /// The caller's active sessions, newest first (their own is `who.session`).
    pub fn sessions(&self, who: &SignedIn) -> Result<Vec<SessionInfo>, AuthError> {
        self.repo(who.market)?
            .list_sessions(who.user.id, self.clock.now())
            .map_err(Self::storage(who.market))
    }

    /// Ends one session of the caller (audited as a `sign_out` of scope `session`). Another
    /// user's or an unknown id → [`AuthError::NotFound`].
    pub fn end_session(
        &self,
        who: &SignedIn,
        session: &SessionId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let scope = RevokeScope::One(session.clone());
        let now = self.clock.now();
        match self
            .repo(who.market)?
            .revoke_sessions(who.user.id, &scope, now)
            .map_err(Self::storage(who.market))?
        {
            0 => Err(AuthError::NotFound),
            ended => {
                self.audit_sign_out(who, now, client, "session", ended);
                Ok(())
            }
        }
    }

    /// Exchanges a refresh token for a new access token and a new refresh token (rotation).
    /// `client` is the requesting client: a retry within the grace window gets the same
    /// successor only from the client that rotated the token (same user agent and IP prefix,
    /// [`crate::refresh::ip_prefix`]); from any other client it is reuse (RFC 9700 §4.14.2).
    ///
    /// Errors: [`AuthError::InvalidRefreshToken`]; [`AuthError::RefreshTokenReused`] when a rotated
    /// token comes back after the grace window or from another client (the whole session is
    /// revoked).
    pub fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<Refreshed, AuthError> {
        let market = refresh::market_of(refresh_token).ok_or(AuthError::InvalidRefreshToken)?;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let presented = refresh::hash(refresh_token);
        // Deterministic: a replay recomputes the same successor, so none is ever stored.
        let (successor, successor_hash) = self.refresh_keys.successor(market, refresh_token);
        let cmd = RotateRefresh {
            token_hash: &presented,
            now,
            grace: self.config.refresh_grace,
            idle: self.config.refresh_ttl(market),
            max_lifetime: self.config.session_max_lifetime,
            successor_hash,
            client_binding: self
                .refresh_keys
                .client_binding(client.ip.as_deref(), client.user_agent.as_deref()),
            client,
        };
        let (session, user, refresh_token, refresh_expires_at) =
            match repo.rotate_refresh(cmd).map_err(Self::storage(market))? {
                RotateOutcome::Rotated {
                    session,
                    user,
                    refresh_expires_at,
                }
                | RotateOutcome::Replayed {
                    session,
                    user,
                    refresh_expires_at,
                } => (session, user, successor, refresh_expires_at),
                RotateOutcome::Reused => {
                    tracing::warn!(%market, "refresh token reuse: session revoked");
                    return Err(AuthError::RefreshTokenReused);
                }
                RotateOutcome::Invalid => return Err(AuthError::InvalidRefreshToken),
            };
        let jti = new_uuid(self.rng.as_ref());
        let (access_token, claims) = self.tokens.issue(user, market, &session, jti, now);
        Ok(Refreshed {
            access_token,
            expires_in: claims.exp - claims.iat,
            refresh_token,
            refresh_expires_in: (refresh_expires_at - now).num_seconds(),
            user,
            market,
        })
    }

    /// Deletes the caller's account after checking a fresh deletion code sent to its own number
    /// (step-up; App Store Review Guideline 5.1.1(v)): [`AuthService::delete_account_with`]
    /// without a `challenge_id`.
    pub fn delete_account(&self, who: &SignedIn, code: &OtpCode) -> Result<(), AuthError> {
        self.delete_account_with(who, code, None, &ClientInfo::default())
    }

    /// Deletes the caller's account after checking `code`, which must have been sent for
    /// [`OtpPurpose::DeleteAccount`] to the account's own number (a sign-in code is refused), on
    /// the challenge `challenge_id` when given. Limits and errors as
    /// [`AuthService::verify_code_with`].
    pub fn delete_account_with(
        &self,
        who: &SignedIn,
        code: &OtpCode,
        challenge_id: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let user = &who.user;
        // An account without a number (made with an email address) has no code to prove: it
        // must add a phone first (issue 10).
        let phone = user
            .phone
            .as_ref()
            .ok_or(AuthError::InvalidCode(CodeRefusal::NoActiveCode))?;
        let now = self.clock.now();
        let matches = |stored: &[u8]| {
            self.hasher
                .verify(phone, OtpPurpose::DeleteAccount, code, stored)
        };
        let cmd = DeleteAccount {
            user: user.id,
            check: self.code_check(phone, now, &matches, challenge_id, client),
            client,
        };
        match self
            .repo(who.market)?
            .delete_account(cmd)
            .map_err(Self::storage(who.market))?
        {
            VerifyOutcome::Verified { .. } => {
                tracing::info!(market = %who.market, user = %user.id, "account deleted");
                Ok(())
            }
            VerifyOutcome::Disabled => Err(AuthError::AccountDisabled),
            refusal => Err(self.refused(phone, client, "delete_account", refusal)),
        }
    }

    /// Pings every market database.
    pub fn health(&self) -> Vec<MarketHealth> {
        self.repos
            .iter()
            .map(|(m, r)| MarketHealth {
                market: *m,
                error: r.ping().err().map(|e| e.to_string()),
            })
            .collect()
    }

    /// Health of one market's database (`None` when the market is not served).
    pub fn health_of(&self, market: Market) -> Option<MarketHealth> {
        self.repos.get(&market).map(|r| MarketHealth {
            market,
            error: r.ping().err().map(|e| e.to_string()),
        })
    }
}

/// Send limits shared across markets and the SMS-pumping guards (issue 12, items 11 and 14).
impl AuthService {
    /// Requires a CAPTCHA token on send-code, checked by `verifier`.
    #[must_use]
    pub fn with_captcha(mut self, verifier: Arc<dyn crate::CaptchaVerifier>) -> Self {
        self.captcha = Some(verifier);
        self
    }

    /// Whether send-code requires a CAPTCHA token.
    pub fn captcha_required(&self) -> bool {
        self.captcha.is_some()
    }

    /// Counters of the SMS-pumping guards (for metrics).
    pub fn sms_guard_metrics(&self) -> Arc<SmsGuardMetrics> {
        self.guard_metrics.clone()
    }

    /// Checks the CAPTCHA token of a send-code with the provider, when one is configured: call
    /// it before [`AuthService::send_code`] (it is asynchronous: the provider is asked over HTTP,
    /// not on the database thread pool).
    ///
    /// Errors: [`AuthError::CaptchaRequired`] (no or empty token), [`AuthError::CaptchaInvalid`],
    /// [`AuthError::CaptchaUnavailable`].
    pub async fn check_captcha(
        &self,
        token: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let Some(verifier) = &self.captcha else {
            return Ok(());
        };
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::CaptchaRequired)?;
        // Providers refuse tokens over 2,048 characters; don't forward bigger ones.
        if token.len() > 2048 {
            return Err(AuthError::CaptchaInvalid);
        }
        match verifier.verify(token, client.ip.as_deref()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::CaptchaInvalid),
            Err(e) => {
                tracing::warn!(provider = verifier.name(), error = %e, "captcha check failed");
                Err(AuthError::CaptchaUnavailable(e))
            }
        }
    }

    /// The other markets' stored states of `buckets` (read, never written): one query per other
    /// market, none when `buckets` is empty. A market that cannot be read counts as nothing: its
    /// own database still enforces its share, and one market's outage must not stop the other
    /// from sending codes.
    fn elsewhere(&self, market: Market, buckets: Vec<String>) -> OtherMarkets {
        if buckets.is_empty() {
            return OtherMarkets::default();
        }
        let keys: Vec<&str> = buckets.iter().map(String::as_str).collect();
        let states = self
            .repos
            .iter()
            .filter(|(m, _)| **m != market)
            .filter_map(|(m, repo)| match repo.bucket_states(&keys) {
                Ok(states) => Some(states),
                Err(e) => {
                    tracing::warn!(market = %m, error = %e, "other market's counts not read");
                    None
                }
            })
            .collect();
        OtherMarkets { buckets, states }
    }

    /// The per-IP send limits of `client` in `market`: one bucket per IPv4 address or IPv6 /64
    /// (and a looser one per /48), each with the hits the same buckets hold in the other
    /// markets, so one budget covers every market while each database holds only its own
    /// market's hits.
    pub(crate) fn ip_send_limits(
        &self,
        market: Market,
        client: &ClientInfo,
    ) -> Vec<RateLimitCheck> {
        let site = self.config.ipv6_48_send_limit;
        self.ip_limits(
            market,
            client,
            "send",
            self.config.ip_send_limit,
            Some(site),
        )
    }

    /// The `kind` buckets of the client's IP per IPv4 address or IPv6 /64 under `policy`, with
    /// the other markets' hits (email sign-in and mail requests, issue 10).
    pub(crate) fn ip_limits_of(
        &self,
        market: Market,
        client: &ClientInfo,
        kind: &str,
        policy: RateLimitPolicy,
    ) -> Vec<RateLimitCheck> {
        self.ip_limits(market, client, kind, policy, None)
    }

    /// The `kind` (`send`, `verify`) buckets of the client's IP (IPv4-mapped IPv6 as IPv4, IPv6
    /// per /64 under `subscriber` and per /48 under `site`, when given), each with the other
    /// markets' hits of the same key, so one budget covers every market (issue 12, item 11).
    fn ip_limits(
        &self,
        market: Market,
        client: &ClientInfo,
        kind: &str,
        subscriber: RateLimitPolicy,
        site: Option<RateLimitPolicy>,
    ) -> Vec<RateLimitCheck> {
        let buckets = ip_buckets(client, kind, site.is_some());
        let others = self.elsewhere(market, buckets.iter().map(|b| b.key.clone()).collect());
        ip_checks(buckets, subscriber, site, &others, self.clock.now())
    }

    /// The SMS-pumping guards of a message to `phone`: the market's daily budget, the total
    /// over markets (other markets' daily counts read here), the prefix's hourly limit.
    /// `others` holds the other markets' [`sms_guard::DAILY_BUCKET`] states.
    fn sms_guards(&self, phone: &PhoneNumber, others: &OtherMarkets) -> SmsGuards {
        let market = phone.market();
        let guard = &self.config.sms_guard;
        let policy = sms_guard::daily_policy(self.config.sms_daily_limit(market));
        let elsewhere = others.elsewhere(sms_guard::DAILY_BUCKET, &policy, self.clock.now());
        SmsGuards {
            daily: RateLimitCheck {
                bucket: sms_guard::DAILY_BUCKET.to_owned(),
                policy,
                elsewhere,
            },
            total_daily_limit: guard.total_daily_limit,
            prefix: PrefixCheck {
                prefix: sms_guard::sms_prefix(phone),
                hourly_limit: guard.prefix_hourly_limit,
                alarm_multiple: guard.prefix_alarm_multiple,
            },
        }
    }
}

/// The other markets' stored states of some buckets, read once for a request
/// ([`AuthService::elsewhere`]): `states[m][i]` is other market `m`'s state of `buckets[i]`.
#[derive(Debug, Default)]
struct OtherMarkets {
    buckets: Vec<String>,
    states: Vec<Vec<Option<crate::BucketState>>>,
}

impl OtherMarkets {
    /// The other markets' hits of `bucket` in windows still open at `now` under `policy`
    /// (nothing for a bucket that was not read).
    fn elsewhere(&self, bucket: &str, policy: &RateLimitPolicy, now: DateTime<Utc>) -> Elsewhere {
        let Some(i) = self.buckets.iter().position(|b| b == bucket) else {
            return Elsewhere::default();
        };
        self.states
            .iter()
            .fold(Elsewhere::default(), |acc, states| {
                acc.plus(policy, states.get(i).copied().flatten().as_ref(), now)
            })
    }
}

/// The `kind` buckets of the client's IP: per IPv4 address or IPv6 /64, and per IPv6 /48 when
/// `with_site` (none without a client IP).
fn ip_buckets(client: &ClientInfo, kind: &str, with_site: bool) -> Vec<ip_budget::IpBucket> {
    let Some(ip) = &client.ip else {
        return Vec::new();
    };
    ip_budget::send_buckets(ip)
        .into_iter()
        .filter(|b| b.scope == IpScope::Subscriber || with_site)
        .map(|b| ip_budget::IpBucket {
            key: b.key.replacen("send:", &format!("{kind}:"), 1),
            scope: b.scope,
        })
        .collect()
}

/// The checks of IP `buckets`: `subscriber` per address or /64, `site` per /48, each with the
/// other markets' hits of its key from `others`.
fn ip_checks(
    buckets: Vec<ip_budget::IpBucket>,
    subscriber: RateLimitPolicy,
    site: Option<RateLimitPolicy>,
    others: &OtherMarkets,
    now: DateTime<Utc>,
) -> Vec<RateLimitCheck> {
    buckets
        .into_iter()
        .map(|bucket| {
            let policy = match (bucket.scope, site) {
                (IpScope::Site, Some(site)) => site,
                _ => subscriber,
            };
            RateLimitCheck {
                elsewhere: others.elsewhere(&bucket.key, &policy, now),
                bucket: bucket.key,
                policy,
            }
        })
        .collect()
}

/// Counters of the SMS-pumping guards since start-up, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct SmsGuardMetrics {
    /// Messages refused by a daily budget (market or total).
    pub daily_budget_trips: std::sync::atomic::AtomicU64,
    /// Messages refused by a prefix's hourly limit.
    pub prefix_limit_trips: std::sync::atomic::AtomicU64,
    /// Prefix velocity alarms raised.
    pub prefix_alarms: std::sync::atomic::AtomicU64,
}

impl SmsGuardMetrics {
    fn tripped(&self, market: Market, trip: &BudgetTrip, client: &ClientInfo) {
        use std::sync::atomic::Ordering::Relaxed;
        match trip.guard {
            crate::BudgetGuard::PrefixHourly => self.prefix_limit_trips.fetch_add(1, Relaxed),
            _ => self.daily_budget_trips.fetch_add(1, Relaxed),
        };
        // The audit record (issue 12, item 18): the guard, never the number.
        tracing::warn!(
            target: "audit",
            event = "sms_budget_exceeded",
            %market,
            guard = trip.guard.as_str(),
            prefix = trip.prefix.as_deref(),
            client_ip = client.ip.as_deref(),
            user_agent = client.user_agent.as_deref(),
            retry_after = trip.retry_after.0,
            "SMS guard tripped: nothing sent"
        );
    }

    fn alarm(&self, market: Market, alarm: &crate::PrefixAlarm) {
        self.prefix_alarms
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            %market,
            prefix = alarm.prefix.as_str(),
            sent_this_hour = alarm.sent,
            usual_per_hour = alarm.baseline,
            "SMS prefix velocity alarm: possible SMS pumping"
        );
    }
}

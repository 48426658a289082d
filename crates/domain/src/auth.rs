//! The phone-login service: send a code, verify it, authenticate tokens, manage the profile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Duration;
use marque_markets::{Market, OtpCode, PhoneNumber, otp_message};

use crate::random::{generate_otp, new_uuid};
use crate::{
    AccessClaims, AuthRepository, Channel, Clock, IssueChallenge, IssueOutcome, NewOutboxMessage,
    NewSession, OtpHasher, PayloadSealer, ProfileUpdate, RandomSource, RateLimitCheck,
    RateLimitPolicy, RepoError, TokenError, TokenService, User, UserId, VerifyChallenge,
    VerifyOutcome,
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
    /// carriers put many shoppers behind one address (CGNAT).
    pub ip_send_limit: RateLimitPolicy,
    /// Numbers (E.164) with fixed codes for app-store review, demos and load tests: no message is
    /// sent and send limits do not apply. Empty by default.
    pub test_numbers: HashMap<String, OtpCode>,
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
            test_numbers: HashMap::new(),
        }
    }
}

impl AuthConfig {
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
    /// Wrong code.
    #[error("wrong code, {attempts_left} tries left")]
    InvalidCode {
        /// Tries left on the code.
        attempts_left: u32,
    },
    /// The code expired.
    #[error("code expired")]
    CodeExpired,
    /// No usable code for this number.
    #[error("no active code")]
    CodeNotFound,
    /// Too many wrong tries; request a new code.
    #[error("too many wrong tries")]
    AttemptsExceeded,
    /// Token missing, malformed, expired, or its session is not active.
    #[error("invalid token")]
    InvalidToken,
    /// The market's database is not configured or not reachable.
    #[error("market {0} unavailable")]
    Unavailable(Market),
    /// An unexpected storage failure (logged, answered as 500).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Phone-number login over the markets' repositories.
pub struct AuthService {
    repos: BTreeMap<Market, Arc<dyn AuthRepository>>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    hasher: OtpHasher,
    sealer: PayloadSealer,
    tokens: TokenService,
    config: AuthConfig,
    sign_in_observers: Vec<Arc<dyn crate::SignInObserver>>,
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
    /// Wires the service. `repos` holds one repository per served market.
    pub fn new(
        repos: Vec<Arc<dyn AuthRepository>>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        hasher: OtpHasher,
        sealer: PayloadSealer,
        tokens: TokenService,
        config: AuthConfig,
    ) -> Self {
        let repos = repos.into_iter().map(|r| (r.market(), r)).collect();
        Self {
            repos,
            clock,
            rng,
            hasher,
            sealer,
            tokens,
            config,
            sign_in_observers: Vec::new(),
        }
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
            .ok_or(AuthError::Unavailable(market))
    }

    fn storage(market: Market) -> impl Fn(RepoError) -> AuthError {
        move |e| match e {
            RepoError::Unavailable(_) => AuthError::Unavailable(market),
            RepoError::Other(msg) => AuthError::Internal(msg),
        }
    }

    /// Issues a code for `phone`: supersedes the previous one, enforces the phone and IP limits,
    /// and queues the message in the outbox — in one transaction of the number's market database.
    ///
    /// Errors: [`AuthError::RateLimited`], [`AuthError::Unavailable`], [`AuthError::Internal`].
    pub fn send_code(
        &self,
        phone: &PhoneNumber,
        client: &ClientInfo,
    ) -> Result<CodeSent, AuthError> {
        let market = phone.market();
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let ttl = self.config.otp_ttl(market);
        let expires_at = now + ttl;
        let (code, limits, outbox) = match self.config.test_numbers.get(phone.e164()) {
            Some(code) => (code.clone(), Vec::new(), None),
            None => {
                let code = generate_otp(self.rng.as_ref());
                let body = otp_message(market.language(), &code);
                let mut limits = vec![RateLimitCheck {
                    bucket: format!("send:phone:{}", phone.e164()),
                    policy: self.config.phone_send_limit,
                }];
                if let Some(ip) = &client.ip {
                    limits.push(RateLimitCheck {
                        bucket: format!("send:ip:{ip}"),
                        policy: self.config.ip_send_limit,
                    });
                }
                let outbox = NewOutboxMessage {
                    channel: Channel::Sms,
                    recipient: phone.e164().to_owned(),
                    sealed_body: self.sealer.seal(body.as_bytes(), self.rng.as_ref()),
                    expires_at,
                };
                (code, limits, Some(outbox))
            }
        };
        let cmd = IssueChallenge {
            phone: phone.clone(),
            code_hash: self.hasher.hash(phone, &code),
            now,
            expires_at,
            client_ip: client.ip.clone(),
            limits,
            outbox,
        };
        match repo.issue_challenge(cmd).map_err(Self::storage(market))? {
            IssueOutcome::Issued => Ok(CodeSent {
                expires_in_minutes: ttl.num_minutes(),
            }),
            IssueOutcome::RateLimited(r) => Err(AuthError::RateLimited(r.0)),
        }
    }

    /// Checks `code` for `phone`; on success creates the user if new, opens a session and signs
    /// an access token bound to it.
    ///
    /// Errors: [`AuthError::InvalidCode`], [`AuthError::CodeExpired`], [`AuthError::CodeNotFound`],
    /// [`AuthError::AttemptsExceeded`], storage errors.
    pub fn verify_code(
        &self,
        phone: &PhoneNumber,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        let market = phone.market();
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let matches = |stored: &[u8]| self.hasher.verify(phone, code, stored);
        let session = NewSession {
            id: crate::SessionId(new_uuid(self.rng.as_ref())),
            created_at: now,
            expires_at: now + self.tokens.ttl(),
            user_agent: client
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(512).collect()),
            client_ip: client.ip.clone(),
        };
        let sid = session.id.clone();
        let user_agent = session.user_agent.clone();
        let cmd = VerifyChallenge {
            phone,
            now,
            max_attempts: self.config.max_attempts,
            matches: &matches,
            session,
        };
        match repo.verify_challenge(cmd).map_err(Self::storage(market))? {
            VerifyOutcome::Verified { user, is_new_user } => {
                let jti = new_uuid(self.rng.as_ref());
                let (access_token, claims) = self.tokens.issue(user.id, market, &sid, jti, now);
                let event = crate::SignInEvent {
                    market,
                    user: user.id,
                    session: sid,
                    user_agent,
                    is_new_user,
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
                })
            }
            VerifyOutcome::WrongCode { attempts_left } => {
                Err(AuthError::InvalidCode { attempts_left })
            }
            VerifyOutcome::Expired => Err(AuthError::CodeExpired),
            VerifyOutcome::AttemptsExceeded => Err(AuthError::AttemptsExceeded),
            VerifyOutcome::NoActiveCode => Err(AuthError::CodeNotFound),
        }
    }

    fn claims(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.tokens
            .verify(token, self.clock.now())
            .map_err(|e| match e {
                TokenError::Invalid | TokenError::Expired => AuthError::InvalidToken,
            })
    }

    /// The market of an authentic, unexpired `token`, without touching the database; for choosing
    /// the language of a response before the session is checked.
    pub fn token_market(&self, token: &str) -> Option<Market> {
        self.claims(token).ok().map(|c| c.market)
    }

    /// The claims of an authentic `token`, its user id and its market's repository.
    fn bearer(
        &self,
        token: &str,
    ) -> Result<(AccessClaims, UserId, &dyn AuthRepository), AuthError> {
        let claims = self.claims(token)?;
        let user = claims.user_id().map_err(|_| AuthError::InvalidToken)?;
        let repo = self.repo(claims.market)?;
        Ok((claims, user, repo))
    }

    /// Like [`AuthService::bearer`], and the token's session is active.
    fn active(
        &self,
        token: &str,
    ) -> Result<(AccessClaims, UserId, &dyn AuthRepository), AuthError> {
        let (claims, user, repo) = self.bearer(token)?;
        repo.active_session(&claims.session_id(), user, self.clock.now())
            .map_err(Self::storage(claims.market))?
            .ok_or(AuthError::InvalidToken)?;
        Ok((claims, user, repo))
    }

    /// Verifies `token` and that its session is active in its market's database.
    pub fn authenticate(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.active(token).map(|(claims, _, _)| claims)
    }

    /// The user behind `token` (one database round trip).
    pub fn current_user(&self, token: &str) -> Result<(AccessClaims, User), AuthError> {
        let (claims, user, repo) = self.bearer(token)?;
        let user = repo
            .session_user(&claims.session_id(), user, self.clock.now())
            .map_err(Self::storage(claims.market))?
            .ok_or(AuthError::InvalidToken)?;
        Ok((claims, user))
    }

    /// Applies `update` to the profile of the user behind `token` (whose session must be active).
    pub fn update_profile(&self, token: &str, update: &ProfileUpdate) -> Result<User, AuthError> {
        let (claims, user, repo) = self.active(token)?;
        repo.update_profile(user, update, self.clock.now())
            .map_err(Self::storage(claims.market))?
            .ok_or(AuthError::InvalidToken)
    }

    /// Revokes the session of `token`: the token (and any other of the session) is refused from
    /// then on, on every instance.
    pub fn logout(&self, token: &str) -> Result<(), AuthError> {
        let (claims, _, repo) = self.active(token)?;
        repo.revoke_session(&claims.session_id(), self.clock.now())
            .map_err(Self::storage(claims.market))?;
        Ok(())
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
}

//! The email-and-password service: register, verify, sign in, reset, change, link.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use marque_markets::Market;

use super::{
    AddressMail, ChangePassword, EmailAddress, EmailRepository, EmailSignIn, EmailTokenKeys,
    LinkEmail, LinkOutcome, LoginState, LoginThrottle, MailIf, MailLimits, MailOutcome,
    NewEmailToken, Password, PasswordHashing, PreparedMail, RegisterEmail, ResetPassword,
    TokenPurpose, failure_key, token_market,
};
use crate::{
    AuditEvent, AuditRecord, AuthError, AuthService, Channel, ClientInfo, Clock, EmailKind,
    EmailPayload, FullName, LoginSuccess, NewOutboxMessage, PayloadSealer, RandomSource,
    RateLimitCheck, RateLimitPolicy, RepoError, SignedIn, UserId, VerifyOutcome,
};

/// Tunables of [`EmailAuthService`].
#[derive(Debug, Clone)]
pub struct EmailAuthConfig {
    /// Lifetime of a verification link (24 hours).
    pub verify_ttl: Duration,
    /// Lifetime of a reset link (1 hour).
    pub reset_ttl: Duration,
    /// Mail-sending requests (register, resend, forgot, link) per client IP: 20 per 15 minutes,
    /// over all markets.
    pub mail_ip_limit: RateLimitPolicy,
    /// Mail requests per address, known or not (counted the same either way so the timing tells
    /// nothing): 5 per hour, 60 s apart; beyond that the email is skipped silently.
    pub address_limit: RateLimitPolicy,
    /// Growing delays after wrong passwords.
    pub throttle: LoginThrottle,
    /// Market of sign-ins and mail requests that name none and whose address no market holds.
    pub default_market: Market,
}

impl Default for EmailAuthConfig {
    fn default() -> Self {
        Self {
            verify_ttl: Duration::hours(24),
            reset_ttl: Duration::hours(1),
            mail_ip_limit: RateLimitPolicy {
                max_hits: 20,
                window: Duration::minutes(15),
                cooldown: Duration::zero(),
            },
            address_limit: RateLimitPolicy {
                max_hits: 5,
                window: Duration::hours(1),
                cooldown: Duration::seconds(60),
            },
            throttle: LoginThrottle::default(),
            default_market: Market::Kg,
        }
    }
}

/// Collaborators of [`EmailAuthService`].
pub struct EmailAuthDeps {
    /// The phone-login service: sessions, tokens, limits and audit are its.
    pub auth: Arc<AuthService>,
    /// One repository per served market.
    pub repos: Vec<Arc<dyn EmailRepository>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness (tokens, salts).
    pub rng: Arc<dyn RandomSource>,
    /// Argon2id.
    pub hashing: PasswordHashing,
    /// Token and CSRF MACs.
    pub keys: EmailTokenKeys,
    /// Sealer of outbox payloads.
    pub sealer: PayloadSealer,
}

/// What the reset page shows for a live token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetForm {
    /// The token's market (the page's language).
    pub market: Market,
    /// The CSRF token to embed in the form.
    pub csrf_token: String,
}

/// Email-and-password accounts over the markets' repositories.
pub struct EmailAuthService {
    auth: Arc<AuthService>,
    repos: BTreeMap<Market, Arc<dyn EmailRepository>>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    hashing: PasswordHashing,
    keys: EmailTokenKeys,
    sealer: PayloadSealer,
    config: EmailAuthConfig,
}

impl std::fmt::Debug for EmailAuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailAuthService")
            .field("markets", &self.repos.keys().collect::<Vec<_>>())
            .field("hashing", &self.hashing)
            .finish_non_exhaustive()
    }
}

fn storage(market: Market) -> impl Fn(RepoError) -> AuthError {
    move |e| match crate::MarketUnavailable::sort(market, e) {
        Ok(down) => AuthError::Unavailable(down),
        Err(other) => AuthError::Internal(Box::new(other)),
    }
}

impl EmailAuthService {
    /// Wires the service.
    pub fn new(deps: EmailAuthDeps, config: EmailAuthConfig) -> Self {
        Self {
            auth: deps.auth,
            repos: deps.repos.into_iter().map(|r| (r.market(), r)).collect(),
            clock: deps.clock,
            rng: deps.rng,
            hashing: deps.hashing,
            keys: deps.keys,
            sealer: deps.sealer,
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &EmailAuthConfig {
        &self.config
    }

    fn repo(&self, market: Market) -> Result<&dyn EmailRepository, AuthError> {
        self.repos
            .get(&market)
            .map(|r| r.as_ref())
            .ok_or_else(|| crate::MarketUnavailable::not_served(market).into())
    }

    /// A new link token of `market`: `<market>_` and 256 random bits as base64url.
    fn new_token(&self, market: Market) -> String {
        let mut bytes = [0u8; 32];
        self.rng.fill_bytes(&mut bytes);
        format!("{}_{}", market.code(), URL_SAFE_NO_PAD.encode(bytes))
    }

    /// An email of `kind` to `to`, with a fresh token when the kind carries one.
    fn prepare(
        &self,
        market: Market,
        kind: EmailKind,
        to: &str,
        now: DateTime<Utc>,
    ) -> PreparedMail {
        let (token, ttl, purpose) = match kind {
            EmailKind::VerifyAddress => (
                Some(self.new_token(market)),
                self.config.verify_ttl,
                Some(TokenPurpose::Verify),
            ),
            EmailKind::ResetPassword => (
                Some(self.new_token(market)),
                self.config.reset_ttl,
                Some(TokenPurpose::Reset),
            ),
            _ => (None, Duration::hours(24), None),
        };
        let expires_at = now + ttl;
        let payload = EmailPayload {
            kind,
            token: token.clone().unwrap_or_default(),
            ttl_minutes: if kind.has_token() {
                u32::try_from(ttl.num_minutes()).unwrap_or(u32::MAX)
            } else {
                0
            },
        };
        PreparedMail {
            token: token.zip(purpose).map(|(t, purpose)| NewEmailToken {
                hash: self.keys.hash(purpose, &t),
                purpose,
                expires_at,
            }),
            outbox: NewOutboxMessage {
                channel: Channel::Email,
                fallback: Vec::new(),
                recipient: to.to_owned(),
                sealed_body: self.sealer.seal(&payload.encode(), self.rng.as_ref()),
                expires_at,
            },
        }
    }

    fn mail_limits(&self, market: Market, key: &str, client: &ClientInfo) -> MailLimits {
        MailLimits {
            ip: self
                .auth
                .ip_limits_of(market, client, "email", self.config.mail_ip_limit),
            address: RateLimitCheck {
                bucket: format!("email:to:{key}"),
                policy: self.config.address_limit,
                elsewhere: crate::Elsewhere::default(),
            },
        }
    }

    /// The markets whose database holds `email` (`hint` alone when given).
    fn markets_of(
        &self,
        hint: Option<Market>,
        email: &EmailAddress,
    ) -> Result<Vec<Market>, AuthError> {
        if let Some(m) = hint {
            return Ok(vec![m]);
        }
        let key = email.key();
        let mut found = Vec::new();
        for (market, repo) in &self.repos {
            if repo.email_exists(&key).map_err(storage(*market))? {
                found.push(*market);
            }
        }
        Ok(found)
    }

    /// Creates an account for `email` with `password` in `market` and queues the verification
    /// email; an address that exists gets an "already registered" email instead, and the caller
    /// the same answer (no account enumeration; the password is hashed either way, so the time
    /// is the same too).
    ///
    /// Errors: [`AuthError::WeakPassword`] (checked first, whatever the address),
    /// [`AuthError::RateLimited`], storage errors.
    pub fn register(
        &self,
        market: Market,
        email: &EmailAddress,
        password: &str,
        full_name: Option<FullName>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let password = Password::new(password, email).map_err(AuthError::WeakPassword)?;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let cmd = RegisterEmail {
            email: email.clone(),
            password_hash: self.hashing.hash(&password, self.rng.as_ref()),
            full_name,
            now,
            limits: self.mail_limits(market, &email.key(), client),
            verify_mail: self.prepare(market, EmailKind::VerifyAddress, email.as_str(), now),
            exists_mail: self.prepare(market, EmailKind::AlreadyRegistered, email.as_str(), now),
        };
        match repo.register(cmd).map_err(storage(market))? {
            MailOutcome::Done => Ok(()),
            MailOutcome::RateLimited(r) => Err(AuthError::RateLimited(r.0)),
        }
    }

    /// The market of a link token, by its prefix (for the language of a page).
    pub fn token_market(token: &str) -> Option<Market> {
        token_market(token)
    }

    /// Uses a verification link token: the address is verified. Returns the token's market.
    ///
    /// Errors: [`AuthError::InvalidEmailLink`] (unknown, used or expired), storage errors.
    pub fn confirm_email(&self, token: &str, client: &ClientInfo) -> Result<Market, AuthError> {
        let market = token_market(token).ok_or(AuthError::InvalidEmailLink)?;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let hash = self.keys.hash(TokenPurpose::Verify, token);
        let user = repo
            .confirm_email(&hash, now)
            .map_err(storage(market))?
            .ok_or(AuthError::InvalidEmailLink)?;
        self.audit(market, now, Some(user), client, "email_verified");
        Ok(market)
    }

    /// Queues a new verification email when an unverified account has `email` (in `hint`'s
    /// market, else in every market that has it). The same answer either way.
    ///
    /// Errors: [`AuthError::RateLimited`], storage errors.
    pub fn resend_verification(
        &self,
        hint: Option<Market>,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.mail_to(
            hint,
            email,
            client,
            MailIf::Unverified,
            EmailKind::VerifyAddress,
        )
    }

    /// Queues a password-reset email when an account has `email` (in `hint`'s market, else in
    /// every market that has it). Always the same answer.
    ///
    /// Errors: [`AuthError::RateLimited`], storage errors.
    pub fn forgot_password(
        &self,
        hint: Option<Market>,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.mail_to(
            hint,
            email,
            client,
            MailIf::Exists,
            EmailKind::ResetPassword,
        )
    }

    fn mail_to(
        &self,
        hint: Option<Market>,
        email: &EmailAddress,
        client: &ClientInfo,
        only_if: MailIf,
        kind: EmailKind,
    ) -> Result<(), AuthError> {
        let mut markets = self.markets_of(hint, email)?;
        if markets.is_empty() {
            // Hit the IP limits all the same, so unknown and known addresses answer alike.
            markets.push(self.config.default_market);
        }
        let now = self.clock.now();
        for market in markets {
            let repo = self.repo(market)?;
            let cmd = AddressMail {
                key: email.key(),
                only_if,
                now,
                limits: self.mail_limits(market, &email.key(), client),
                mail: self.prepare(market, kind, email.as_str(), now),
            };
            if let MailOutcome::RateLimited(r) = repo.mail_address(cmd).map_err(storage(market))? {
                return Err(AuthError::RateLimited(r.0));
            }
        }
        Ok(())
    }

    /// The market a sign-in of `email` goes to: `hint`, else the one market holding the address,
    /// else (none) the default market.
    ///
    /// Errors: [`AuthError::MarketRequired`] when several markets hold it.
    fn login_market(
        &self,
        hint: Option<Market>,
        email: &EmailAddress,
    ) -> Result<Market, AuthError> {
        let found = self.markets_of(hint, email)?;
        match found.as_slice() {
            [] => Ok(hint.unwrap_or(self.config.default_market)),
            [one] => Ok(*one),
            _ => Err(AuthError::MarketRequired),
        }
    }

    /// Signs in with an address and password: the same tokens as a verified code.
    ///
    /// An unknown address verifies a dummy hash, so it takes as long as a wrong password, and
    /// both answer [`AuthError::InvalidCredentials`]; each wrong password counts against the
    /// address (growing delays, then a lock: [`LoginThrottle`]) and every attempt against the
    /// client's IP (the verify limit of phone sign-in, over all markets). The address's
    /// verification state is told only after a right password.
    ///
    /// Errors: [`AuthError::InvalidCredentials`], [`AuthError::EmailNotVerified`],
    /// [`AuthError::RateLimited`] (IP limit, or the address is delayed or locked),
    /// [`AuthError::AccountDisabled`], [`AuthError::MarketRequired`], storage errors.
    pub fn login(
        &self,
        hint: Option<Market>,
        email: &EmailAddress,
        password: &str,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        let market = self.login_market(hint, email)?;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let key = email.key();
        let fkey = failure_key(&key);
        let limits =
            self.auth
                .ip_limits_of(market, client, "login", self.auth.config().ip_verify_limit);
        let stored = match repo
            .login_state(&key, &limits, now)
            .map_err(storage(market))?
        {
            LoginState::RateLimited(r) | LoginState::Locked(r) => {
                return Err(AuthError::RateLimited(r.0));
            }
            LoginState::Ready(stored) => stored,
        };
        let presented = Password::presented(password);
        let ok = self.hashing.verify(
            &presented,
            stored.as_ref().map(|s| s.password_hash.as_str()),
        );
        let stored = match (ok, stored) {
            (true, Some(s)) => s,
            (_, stored) => {
                let (_, locked) = repo
                    .login_failed(&fkey, &self.config.throttle, now)
                    .map_err(storage(market))?;
                if locked {
                    let user = stored.map(|s| s.user);
                    tracing::info!(target: "audit", event = "email_locked", %market, user = user.map(|u| u.0));
                    self.audit(market, now, user, client, "email_locked");
                }
                return Err(AuthError::InvalidCredentials);
            }
        };
        if !stored.verified {
            return Err(AuthError::EmailNotVerified);
        }
        let opening = self.auth.session_opening(market, client, now);
        let cmd = EmailSignIn {
            user: stored.user,
            failure_key: fkey,
            now,
            session: opening.session.clone(),
            refresh: opening.refresh.clone(),
        };
        match repo.login_succeeded(cmd).map_err(storage(market))? {
            outcome @ VerifyOutcome::Verified { .. } => {
                self.auth.signed_in_with(opening, outcome, now)
            }
            VerifyOutcome::Disabled => Err(AuthError::AccountDisabled),
            VerifyOutcome::Locked { retry_after, .. } | VerifyOutcome::RateLimited(retry_after) => {
                Err(AuthError::RateLimited(retry_after.0))
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// What the reset page shows for `token`: its market and CSRF token when the token is live.
    ///
    /// Errors: [`AuthError::InvalidEmailLink`], storage errors.
    pub fn reset_form(&self, token: &str) -> Result<ResetForm, AuthError> {
        let market = token_market(token).ok_or(AuthError::InvalidEmailLink)?;
        let hash = self.keys.hash(TokenPurpose::Reset, token);
        self.repo(market)?
            .token_owner(TokenPurpose::Reset, &hash, self.clock.now())
            .map_err(storage(market))?
            .ok_or(AuthError::InvalidEmailLink)?;
        Ok(ResetForm {
            market,
            csrf_token: self.keys.csrf(token),
        })
    }

    /// Whether `csrf` is the reset form's CSRF token for `token` (constant time).
    pub fn csrf_matches(&self, token: &str, csrf: &str) -> bool {
        self.keys.csrf_matches(token, csrf)
    }

    /// Sets a new password with a reset link token: the password policy applies (with the
    /// account's address), every session of the account ends, the address counts as verified
    /// (the link proved it) and a "password changed" email is queued. Returns the market.
    ///
    /// Errors: [`AuthError::InvalidEmailLink`], [`AuthError::WeakPassword`], storage errors.
    pub fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<Market, AuthError> {
        let market = token_market(token).ok_or(AuthError::InvalidEmailLink)?;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let hash = self.keys.hash(TokenPurpose::Reset, token);
        let owner = repo
            .token_owner(TokenPurpose::Reset, &hash, now)
            .map_err(storage(market))?
            .ok_or(AuthError::InvalidEmailLink)?;
        let email = EmailAddress::from_stored(&owner.email)
            .map_err(|e| AuthError::Internal(format!("stored address: {e}").into()))?;
        let password = Password::new(new_password, &email).map_err(AuthError::WeakPassword)?;
        let cmd = ResetPassword {
            token_hash: hash,
            password_hash: self.hashing.hash(&password, self.rng.as_ref()),
            now,
            mail: self.prepare(market, EmailKind::PasswordChanged, email.as_str(), now),
        };
        let user = repo
            .reset_password(cmd)
            .map_err(storage(market))?
            .ok_or(AuthError::InvalidEmailLink)?;
        self.audit(market, now, Some(user), client, "password_reset");
        Ok(market)
    }

    /// Changes the caller's password after checking the current one (wrong ones count like
    /// sign-in failures); every session of the account ends, the caller's included, and a
    /// "password changed" email is queued.
    ///
    /// Errors: [`AuthError::NotFound`] (the account has no email password),
    /// [`AuthError::InvalidCredentials`], [`AuthError::RateLimited`], [`AuthError::WeakPassword`],
    /// storage errors.
    pub fn change_password(
        &self,
        who: &SignedIn,
        current: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let market = who.market;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let identity = repo
            .identity(who.user.id)
            .map_err(storage(market))?
            .ok_or(AuthError::NotFound)?;
        let email = EmailAddress::from_stored(&identity.email)
            .map_err(|e| AuthError::Internal(format!("stored address: {e}").into()))?;
        let fkey = failure_key(&email.key());
        if let LoginState::Locked(r) | LoginState::RateLimited(r) = repo
            .login_state(&email.key(), &[], now)
            .map_err(storage(market))?
        {
            return Err(AuthError::RateLimited(r.0));
        }
        if !self
            .hashing
            .verify(&Password::presented(current), Some(&identity.password_hash))
        {
            repo.login_failed(&fkey, &self.config.throttle, now)
                .map_err(storage(market))?;
            return Err(AuthError::InvalidCredentials);
        }
        let password = Password::new(new_password, &email).map_err(AuthError::WeakPassword)?;
        let cmd = ChangePassword {
            user: who.user.id,
            password_hash: self.hashing.hash(&password, self.rng.as_ref()),
            now,
            mail: self.prepare(market, EmailKind::PasswordChanged, email.as_str(), now),
        };
        if !repo.change_password(cmd).map_err(storage(market))? {
            return Err(AuthError::NotFound);
        }
        self.audit(market, now, Some(who.user.id), client, "password_changed");
        Ok(())
    }

    /// Adds `email` with `password` to the caller's account (a phone user's): usable for
    /// sign-in once verified by the emailed link. An address another account has gets an
    /// "already registered" email and the caller the same answer.
    ///
    /// Errors: [`AuthError::WeakPassword`], [`AuthError::EmailAlreadyLinked`] (the account has a
    /// verified address), [`AuthError::RateLimited`], storage errors.
    pub fn link_email(
        &self,
        who: &SignedIn,
        email: &EmailAddress,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let market = who.market;
        let password = Password::new(password, email).map_err(AuthError::WeakPassword)?;
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let cmd = LinkEmail {
            user: who.user.id,
            email: email.clone(),
            password_hash: self.hashing.hash(&password, self.rng.as_ref()),
            now,
            limits: self.mail_limits(market, &email.key(), client),
            verify_mail: self.prepare(market, EmailKind::VerifyAddress, email.as_str(), now),
            exists_mail: self.prepare(market, EmailKind::AlreadyRegistered, email.as_str(), now),
        };
        match repo.link_email(cmd).map_err(storage(market))? {
            LinkOutcome::Done => {
                self.audit(market, now, Some(who.user.id), client, "email_linked");
                Ok(())
            }
            LinkOutcome::AlreadyLinked => Err(AuthError::EmailAlreadyLinked),
            LinkOutcome::RateLimited(r) => Err(AuthError::RateLimited(r.0)),
        }
    }

    /// Deletes the caller's account — one made with an email address that has no phone number —
    /// after checking its password (a step-up, as the deletion code is for phone accounts; wrong
    /// passwords count like sign-in failures). Everything of the account goes, as with the code.
    ///
    /// Errors: [`AuthError::NotFound`] (no email password, or the account has a phone number:
    /// delete with a code then), [`AuthError::InvalidCredentials`], [`AuthError::RateLimited`],
    /// storage errors.
    pub fn delete_account(
        &self,
        who: &SignedIn,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let market = who.market;
        if who.user.phone.is_some() {
            return Err(AuthError::NotFound);
        }
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let identity = repo
            .identity(who.user.id)
            .map_err(storage(market))?
            .ok_or(AuthError::NotFound)?;
        let key = EmailAddress::from_stored(&identity.email)
            .map_err(|e| AuthError::Internal(format!("stored address: {e}").into()))?
            .key();
        if let LoginState::Locked(r) | LoginState::RateLimited(r) =
            repo.login_state(&key, &[], now).map_err(storage(market))?
        {
            return Err(AuthError::RateLimited(r.0));
        }
        if !self.hashing.verify(
            &Password::presented(password),
            Some(&identity.password_hash),
        ) {
            repo.login_failed(&failure_key(&key), &self.config.throttle, now)
                .map_err(storage(market))?;
            return Err(AuthError::InvalidCredentials);
        }
        if !repo
            .delete_email_account(who.user.id, client, now)
            .map_err(storage(market))?
        {
            return Err(AuthError::NotFound);
        }
        tracing::info!(%market, user = %who.user.id, "account deleted");
        Ok(())
    }

    fn audit(
        &self,
        market: Market,
        at: DateTime<Utc>,
        user: Option<UserId>,
        client: &ClientInfo,
        kind: &str,
    ) {
        let event = AuditEvent::Other {
            kind: kind.to_owned(),
            detail: None,
        };
        self.auth
            .audit(AuditRecord::new(market, at, user, client, event));
    }
}

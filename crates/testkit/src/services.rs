//! The domain services wired on real stores, and a capturing message sender.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use marque_domain::{
    Accepted, AccountLimits, AccountService, AdminKey, AdminService, AuthConfig, AuthDeps,
    AuthService, ClientInfo, DeliveryError, EmailSender, KeyRing, LoginSuccess, MessageSender,
    OtpPayload, OutgoingEmail, OutgoingMessage, SecretString, SignedIn, TokenService,
};
use marque_markets::{Market, OtpCode, PhoneNumber};
use marque_store::Backend;

use crate::{FixedRandom, ManualClock, TestStore};

/// The key every fixture derives its secrets from.
pub const SECRET: &[u8] = b"testkit-secret-testkit-secret-testkit!";

/// The admin API key of [`Services::admin`].
pub const ADMIN_KEY: &str = "testkit-admin-key-testkit-admin-key-0001";

/// `AuthService` and `AccountService` on a fresh KG and a fresh US [`TestStore`], with a
/// [`ManualClock`] and a [`FixedRandom`]; the account service observes sign-ins, as in
/// production. Access tokens live 30 minutes.
pub struct Services {
    /// The login service.
    pub auth: Arc<AuthService>,
    /// Addresses, payment methods, notifications.
    pub account: Arc<AccountService>,
    /// The admin service, accepting [`ADMIN_KEY`].
    pub admin: Arc<AdminService>,
    /// The clock of both services.
    pub clock: Arc<ManualClock>,
    /// The KG database.
    pub kg: TestStore,
    /// The US database.
    pub us: TestStore,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("kg", &self.kg)
            .field("us", &self.us)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Services on `backend` at `start` with `config`; `None` for PostgreSQL when it is not
    /// configured (see [`crate::postgres_admin_url`]).
    pub fn new(backend: Backend, config: AuthConfig, start: DateTime<Utc>) -> Option<Self> {
        let kg = TestStore::new(backend, Market::Kg)?;
        let us = TestStore::new(backend, Market::Us)?;
        let clock = Arc::new(ManualClock::new(start));
        let account = Arc::new(AccountService::new(
            vec![kg.repo(), us.repo()],
            clock.clone(),
            AccountLimits::default(),
        ));
        let keys = KeyRing::derive(SECRET);
        let auth = AuthService::new(
            AuthDeps {
                repos: vec![kg.repo(), us.repo()],
                clock: clock.clone(),
                rng: Arc::new(FixedRandom::new(7)),
                hasher: keys.otp_hasher(),
                outbox_sealer: keys.outbox_sealer(),
                refresh_keys: keys.refresh_keys(),
                tokens: TokenService::derived(&keys, "marque", Duration::minutes(30)),
            },
            config,
        )
        .with_sign_in_observer(account.clone());
        let admin = Arc::new(AdminService::new(
            vec![kg.repo(), us.repo()],
            clock.clone(),
            AdminKey::new(&SecretString::from(ADMIN_KEY)),
        ));
        Some(Self {
            auth: Arc::new(auth),
            account,
            admin,
            clock,
            kg,
            us,
        })
    }

    /// Services on SQLite files.
    pub fn sqlite(config: AuthConfig, start: DateTime<Utc>) -> Self {
        Self::new(Backend::Sqlite, config, start).expect("SQLite is always available")
    }

    /// The store of `market`.
    pub fn store(&self, market: Market) -> &TestStore {
        match market {
            Market::Kg => &self.kg,
            Market::Us => &self.us,
        }
    }

    /// The code of the newest pending message to `phone`, opened as the delivery worker would.
    pub fn delivered_code(&self, phone: &PhoneNumber) -> OtpCode {
        let body = self
            .store(phone.market())
            .pending_bodies(phone.e164())
            .pop()
            .expect("a pending message");
        let opened = KeyRing::derive(SECRET)
            .outbox_sealer()
            .open(&body)
            .expect("a sealed payload");
        OtpPayload::decode(&opened).expect("a code payload").code
    }

    /// Signs `e164` in from `user_agent` (a test number's fixed code, or the delivered one) and
    /// authenticates the access token: the login and the signed-in caller.
    pub fn sign_in(&self, e164: &str, user_agent: Option<&str>) -> (LoginSuccess, SignedIn) {
        let phone = PhoneNumber::parse(e164, None).expect("a valid number");
        let client = ClientInfo {
            ip: Some("203.0.113.9".to_owned()),
            user_agent: user_agent.map(str::to_owned),
        };
        self.auth.send_code(&phone, &client).expect("send a code");
        let code = match self.auth.config().test_numbers.get(phone.e164()) {
            Some(code) => code.clone(),
            None => self.delivered_code(&phone),
        };
        let login = self
            .auth
            .verify_code(&phone, &code, &client)
            .expect("verify the code");
        let who = self
            .auth
            .authenticate(&login.access_token)
            .expect("authenticate the new token");
        (login, who)
    }
}

/// A [`MessageSender`] and [`EmailSender`] that keeps every message and email instead of
/// sending it.
#[derive(Debug, Default)]
pub struct Capture(Mutex<Vec<OutgoingMessage>>, Mutex<Vec<OutgoingEmail>>);

impl Capture {
    /// Every message so far, in order.
    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every email so far, in order (issue 10).
    pub fn emails(&self) -> Vec<OutgoingEmail> {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The emails to `address`, in order.
    pub fn emails_to(&self, address: &str) -> Vec<OutgoingEmail> {
        let mut all = self.emails();
        all.retain(|e| e.to == address);
        all
    }

    /// The link (the first `http://` or `https://` word of the plain text) of the last email to
    /// `address`, if it has one.
    pub fn last_link_to(&self, address: &str) -> Option<String> {
        let email = self.emails_to(address).pop()?;
        email
            .text
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(str::to_owned)
    }

    /// The messages to `recipient`, in order.
    pub fn to(&self, recipient: &str) -> Vec<OutgoingMessage> {
        let mut all = self.messages();
        all.retain(|m| m.recipient == recipient);
        all
    }
}

#[async_trait::async_trait]
impl EmailSender for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, DeliveryError> {
        self.1
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(email.clone());
        Ok(Accepted::default())
    }
}

#[async_trait::async_trait]
impl MessageSender for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.push(message.clone());
        Ok(Accepted {
            provider_message_id: Some(format!("capture-{}", all.len())),
        })
    }
}

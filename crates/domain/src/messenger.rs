//! Messenger login (issue 9): sign in by sending a WhatsApp message or pressing Start in the
//! Telegram bot; the messenger proves the phone number, so there is no code to type.
//!
//! 1. [`MessengerService::start`] stores a pending login (in the database of the market the app
//!    named, else `DEFAULT_MARKET`) holding only keyed hashes of its `nonce` and `poll_secret`
//!    and the app's `User-Agent`, and returns a deep link carrying the nonce.
//! 2. A provider webhook ([`MessengerWebhook`] checks its signature and parses it into
//!    [`Inbound`] events) brings the nonce together with a proven number: the WhatsApp sender
//!    (`+<from>`) or a Telegram contact shared by its own user. [`MessengerService::handle`]
//!    then signs the number in exactly as a right code does ([`AuthService::sign_in_proven`]) in
//!    the number's market database, and keeps the tokens sealed on the pending row.
//! 3. [`MessengerService::poll`] hands the tokens out once.
//!
//! Replies to the user (the bot's contact keyboard, "this link expired", "not your contact")
//! go through the outbox as [`ReplyPayload`]s, so webhooks answer at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use marque_markets::{Language, Market, MessageKey, PhoneNumber, text};
use sha2::Sha256;

use crate::delivery::{CallbackError, CallbackRequest, Channel};
use crate::{
    AuthError, AuthService, ClientInfo, Clock, LoginSuccess, MarketUnavailable, NewOutboxMessage,
    PayloadSealer, RandomSource, RateLimitCheck, RepoError, RetryAfter, SignedIn, UserId,
};

type HmacSha256 = Hmac<Sha256>;

/// Length of a nonce: 128 random bits as base64url without padding.
pub const NONCE_CHARS: usize = 22;

/// Keyed hashing of the messenger-login secrets (nonce, poll secret) and of Telegram user ids:
/// `HMAC-SHA256(key, kind || 0x00 || value)` with the key derived under
/// `marque/messenger-mac/v1` ([`crate::KeyRing`]). `Debug` prints no key.
#[derive(Clone)]
pub struct MessengerHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for MessengerHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessengerHasher([REDACTED])")
    }
}

impl MessengerHasher {
    /// A hasher with `key`, an HMAC-SHA256 key from [`crate::KeyRing`].
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, kind: &str, value: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any size"));
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac
    }

    /// The 32-byte MAC of `value` of `kind` (`nonce`, `poll`, `telegram`).
    pub fn hash(&self, kind: &str, value: &[u8]) -> Vec<u8> {
        self.mac(kind, value).finalize().into_bytes().to_vec()
    }

    /// Whether `stored` is the MAC of `value`, compared in constant time.
    pub fn verify(&self, kind: &str, value: &[u8], stored: &[u8]) -> bool {
        self.mac(kind, value).verify_slice(stored).is_ok()
    }
}

/// What a messenger webhook brought, after its signature was checked. `Debug` hides texts and
/// numbers.
#[derive(Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A WhatsApp text message (`messages[].type = "text"`).
    WhatsAppText {
        /// The `wamid.…` id (replays carry the same one).
        message_id: String,
        /// The sender's number as Meta sends it: digits with country code, no `+`.
        from: String,
        /// `text.body`.
        text: String,
    },
    /// A Telegram `/start` command, with its deep-link parameter.
    TelegramStart {
        /// `update_id` (replays carry the same one).
        update_id: i64,
        /// `message.from.id`.
        user_id: i64,
        /// `message.chat.id`, where replies go.
        chat_id: i64,
        /// The text after `/start `, if any.
        payload: Option<String>,
    },
    /// A status update of a message we sent (WhatsApp `statuses[]`): applied to the outbox as a
    /// delivery report, so a code WhatsApp could not deliver (131026, not a WhatsApp user) goes
    /// out on the market's next channel.
    DeliveryStatus(crate::DeliveryReport),
    /// A Telegram `contact` message.
    TelegramContact {
        /// `update_id`.
        update_id: i64,
        /// `message.from.id`: who sent it.
        user_id: i64,
        /// `message.chat.id`.
        chat_id: i64,
        /// `contact.user_id`: whose contact it is (absent for a contact typed in by hand).
        contact_user_id: Option<i64>,
        /// `contact.phone_number`, with or without `+`.
        phone_number: String,
    },
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WhatsAppText { message_id, .. } => f
                .debug_struct("WhatsAppText")
                .field("message_id", message_id)
                .finish_non_exhaustive(),
            Self::TelegramStart { update_id, .. } => f
                .debug_struct("TelegramStart")
                .field("update_id", update_id)
                .finish_non_exhaustive(),
            Self::TelegramContact { update_id, .. } => f
                .debug_struct("TelegramContact")
                .field("update_id", update_id)
                .finish_non_exhaustive(),
            Self::DeliveryStatus(report) => f.debug_tuple("DeliveryStatus").field(report).finish(),
        }
    }
}

/// A messenger's webhook: checks the provider's signature on the raw request, then reads the
/// events we act on (everything else — status updates, other message types — is left out).
pub trait MessengerWebhook: Send + Sync {
    /// [`Channel::WhatsApp`] or [`Channel::Telegram`].
    fn channel(&self) -> Channel;

    /// Verifies `request` as the provider signs it, then parses its events.
    ///
    /// Errors: [`CallbackError::BadSignature`] (nothing is parsed), [`CallbackError::Malformed`].
    fn verify(&self, request: &CallbackRequest<'_>) -> Result<Vec<Inbound>, CallbackError>;

    /// The WhatsApp subscription handshake (`hub.verify_token`): whether `token` is ours.
    /// Channels without one answer `false`.
    fn verify_token_matches(&self, token: &str) -> bool {
        let _ = token;
        false
    }
}

/// Why Telegram Login Widget data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WidgetError {
    /// The `hash` is missing or does not match the fields.
    #[error("widget hash missing or wrong")]
    BadHash,
    /// `auth_date` is older than a day (or in the future).
    #[error("widget data stale")]
    Stale,
    /// `id` or `auth_date` is not a number.
    #[error("widget data malformed")]
    Malformed,
}

/// Checks Telegram Login Widget data (the bot token is the key).
pub trait WidgetVerifier: Send + Sync {
    /// The Telegram user id of `fields` (every field received, `hash` among them), if their
    /// hash is right and `auth_date` is at most a day before `now`.
    ///
    /// Errors: [`WidgetError`].
    fn verify(&self, fields: &[(String, String)], now: DateTime<Utc>) -> Result<i64, WidgetError>;
}

/// The keyboard sent with a bot reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKeyboard {
    /// None.
    None,
    /// One button that shares the user's contact (`request_contact`), with this label.
    RequestContact(String),
    /// Removes a keyboard sent before.
    Remove,
}

/// The second kind of outbox payload: a text reply to a messenger user (the recipient is the
/// WhatsApp number, E.164, or the Telegram chat id). Stored form: `r1:<k>:<label length>:<label>
/// <text>` where `<k>` is `n` (no keyboard), `c` (contact button) or `x` (remove keyboard).
/// `Debug` hides the text.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplyPayload {
    /// The text.
    pub text: String,
    /// Its keyboard.
    pub keyboard: ReplyKeyboard,
}

impl std::fmt::Debug for ReplyPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyPayload")
            .field("keyboard", &self.keyboard)
            .finish_non_exhaustive()
    }
}

impl ReplyPayload {
    /// The bytes to seal.
    pub fn encode(&self) -> Vec<u8> {
        let (k, label) = match &self.keyboard {
            ReplyKeyboard::None => ('n', ""),
            ReplyKeyboard::RequestContact(l) => ('c', l.as_str()),
            ReplyKeyboard::Remove => ('x', ""),
        };
        format!("r1:{k}:{}:{label}{}", label.len(), self.text).into_bytes()
    }

    /// Parses opened bytes; `None` for anything else (an [`crate::OtpPayload`]).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        let rest = s.strip_prefix("r1:")?;
        let mut parts = rest.splitn(3, ':');
        let k = parts.next()?;
        let len: usize = parts.next()?.parse().ok()?;
        let tail = parts.next()?;
        let label = tail.get(..len)?;
        let text = tail.get(len..)?.to_owned();
        let keyboard = match k {
            "n" => ReplyKeyboard::None,
            "c" => ReplyKeyboard::RequestContact(label.to_owned()),
            "x" => ReplyKeyboard::Remove,
            _ => return None,
        };
        Some(Self { text, keyboard })
    }
}

/// A reply ready for a messenger. `Debug` hides the text.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingReply {
    /// Stable id (`kg-42`), as [`crate::OutgoingMessage::id`].
    pub id: String,
    /// WhatsApp or Telegram.
    pub channel: Channel,
    /// WhatsApp: the number, E.164; Telegram: the chat id.
    pub recipient: String,
    /// The text and keyboard.
    pub payload: ReplyPayload,
}

impl std::fmt::Debug for OutgoingReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingReply")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// Sends text replies on one messenger (WhatsApp Cloud API text message, Telegram Bot API
/// `sendMessage`).
#[async_trait::async_trait]
pub trait ReplySender: Send + Sync {
    /// Provider name (`whatsapp`, `telegram_bot`).
    fn name(&self) -> &'static str;

    /// Sends `reply`.
    ///
    /// Errors: [`crate::DeliveryError`], transient ones retried with backoff.
    async fn reply(&self, reply: &OutgoingReply) -> Result<crate::Accepted, crate::DeliveryError>;
}

/// A pending login to store.
#[derive(Debug, Clone)]
pub struct NewMessengerLogin {
    /// `login_id`.
    pub id: String,
    /// WhatsApp or Telegram.
    pub channel: Channel,
    /// [`MessengerHasher::hash`] of the nonce.
    pub nonce_hash: Vec<u8>,
    /// [`MessengerHasher::hash`] of the poll secret.
    pub poll_secret_hash: Vec<u8>,
    /// The starting app's `User-Agent` (at most 512 characters), for the session it gets.
    pub user_agent: Option<String>,
    /// Start time.
    pub now: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Buckets to hit (the per-IP send limits); all must admit or nothing is stored.
    pub limits: Vec<RateLimitCheck>,
}

/// A live pending login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// `login_id`.
    pub id: String,
    /// Its channel.
    pub channel: Channel,
    /// The starting app's `User-Agent`.
    pub user_agent: Option<String>,
}

/// A nonce looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceLookup {
    /// A pending login, still live.
    Live(PendingLogin),
    /// Its login is pending but expired.
    Expired,
    /// No pending login has it (never issued, or already completed).
    Unknown,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPoll {
    /// Waiting for the messenger.
    Pending,
    /// Completed: the sealed tokens, now taken (the row is `consumed`).
    Completed(Vec<u8>),
    /// The tokens were taken before.
    Consumed,
    /// Expired before completion.
    Expired,
    /// Refused at completion, with the error code (`phone_locked`, `account_disabled`).
    Failed(String),
}

/// Storage of messenger logins in one market database.
pub trait MessengerRepository: Send + Sync {
    /// The market whose database this is.
    fn market(&self) -> Market;

    /// Hits `login.limits` and stores the pending login, in one transaction.
    /// `Err(retry)` when a limit refused (nothing stored).
    fn start_login(&self, login: &NewMessengerLogin) -> Result<Result<(), RetryAfter>, RepoError>;

    /// The pending login with this nonce hash.
    fn find_nonce(&self, nonce_hash: &[u8], now: DateTime<Utc>) -> Result<NonceLookup, RepoError>;

    /// Notes on the live pending login `id` the keyed hash of the Telegram user who pressed
    /// Start, so their contact completes it.
    fn attach_telegram_user(&self, id: &str, user_hash: &[u8]) -> Result<(), RepoError>;

    /// The newest live pending login of the Telegram user with `user_hash`.
    fn pending_for_telegram(
        &self,
        user_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, RepoError>;

    /// Takes the live pending login `id` for completion (`pending` → `claimed`); `false` when it
    /// is not live and pending (a concurrent completion won, or it expired).
    fn claim(&self, id: &str, now: DateTime<Utc>) -> Result<bool, RepoError>;

    /// Gives a claimed login back (`claimed` → `pending`) after a failure worth retrying.
    fn release(&self, id: &str) -> Result<(), RepoError>;

    /// Stores the sealed tokens of a claimed login (`completed`).
    fn complete(&self, id: &str, sealed: &[u8], now: DateTime<Utc>) -> Result<(), RepoError>;

    /// Marks a claimed login refused with `error` (`failed`).
    fn fail(&self, id: &str, error: &str, now: DateTime<Utc>) -> Result<(), RepoError>;

    /// Polls login `id` whose poll-secret hash `secret_matches` (compared in constant time);
    /// `None` when there is no such login or the secret is wrong. A completed login's tokens
    /// are taken in the same statement (`consumed`, sealed tokens deleted).
    fn poll(
        &self,
        id: &str,
        secret_matches: &(dyn Fn(&[u8]) -> bool + Sync),
        now: DateTime<Utc>,
    ) -> Result<Option<StoredPoll>, RepoError>;

    /// Records webhook event `event_id`; `false` when it was recorded before (a replay).
    fn mark_seen(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool, RepoError>;

    /// Forgets webhook event `event_id` (its handling failed; the provider's retry is wanted).
    fn forget_seen(&self, event_id: &str) -> Result<(), RepoError>;

    /// Queues a reply in the outbox.
    fn queue_reply(&self, reply: &NewOutboxMessage, now: DateTime<Utc>) -> Result<(), RepoError>;
}

/// Settings of messenger login.
#[derive(Debug, Clone)]
pub struct MessengerConfig {
    /// `MESSENGER_LOGIN_TTL_SECONDS` (default 300 s).
    pub ttl: Duration,
    /// Where logins without `X-Market` are stored, and webhook events recorded.
    pub default_market: Market,
    /// `WHATSAPP_BUSINESS_NUMBER`, digits only (`wa.me` links); `None`: WhatsApp login off.
    pub whatsapp_number: Option<String>,
    /// `TELEGRAM_BOT_USERNAME` without `@`; `None`: Telegram login off.
    pub telegram_bot: Option<String>,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::seconds(300),
            default_market: Market::Kg,
            whatsapp_number: None,
            telegram_bot: None,
        }
    }
}

/// A started login, as `POST /api/v1/auth/messenger/start` answers it. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct MessengerStart {
    /// 128 random bits, base64url.
    pub login_id: String,
    /// 256 random bits, base64url: the `X-Poll-Secret` of polls.
    pub poll_secret: String,
    /// `https://wa.me/…?text=…` or `https://t.me/…?start=…`.
    pub deep_link: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl std::fmt::Debug for MessengerStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessengerStart")
            .field("login_id", &self.login_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The state of a login, as a poll sees it.
#[derive(Debug, Clone)]
pub enum PollStatus {
    /// Waiting for the messenger.
    Pending,
    /// Signed in: the tokens, handed out this once.
    Completed(Box<LoginSuccessTokens>),
    /// The tokens were handed out before.
    Consumed,
    /// Expired before completion.
    Expired,
    /// Refused (`phone_locked`, `account_disabled`).
    Failed(String),
}

/// The tokens of a completed login, as kept sealed until the poll. `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginSuccessTokens {
    /// Access token.
    pub access_token: String,
    /// Its lifetime, seconds.
    pub expires_in: i64,
    /// Refresh token.
    pub refresh_token: String,
    /// Its lifetime, seconds.
    pub refresh_expires_in: i64,
    /// The user.
    pub user_id: UserId,
    /// The user's market.
    pub market: Market,
    /// Whether this login created the user.
    pub is_new_user: bool,
}

impl std::fmt::Debug for LoginSuccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSuccessTokens")
            .field("user_id", &self.user_id)
            .field("market", &self.market)
            .finish_non_exhaustive()
    }
}

impl LoginSuccessTokens {
    fn of(s: &LoginSuccess) -> Self {
        Self {
            access_token: s.access_token.clone(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token.clone(),
            refresh_expires_in: s.refresh_expires_in,
            user_id: s.user.id,
            market: s.user.market(),
            is_new_user: s.is_new_user,
        }
    }

    fn encode(&self) -> Vec<u8> {
        format!(
            "t1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.access_token,
            self.refresh_token,
            self.expires_in,
            self.refresh_expires_in,
            self.user_id.0,
            self.market.code(),
            self.is_new_user
        )
        .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        let mut l = s.split('\n');
        if l.next()? != "t1" {
            return None;
        }
        Some(Self {
            access_token: l.next()?.to_owned(),
            refresh_token: l.next()?.to_owned(),
            expires_in: l.next()?.parse().ok()?,
            refresh_expires_in: l.next()?.parse().ok()?,
            user_id: UserId(l.next()?.parse().ok()?),
            market: l.next()?.parse().ok()?,
            is_new_user: l.next()?.parse().ok()?,
        })
    }
}

/// A Telegram link of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelegramLink {
    /// Telegram user id.
    pub telegram_user_id: i64,
    /// When it was linked.
    pub linked_at: DateTime<Utc>,
}

/// What the messenger service needs.
pub struct MessengerDeps {
    /// The sign-in step.
    pub auth: Arc<AuthService>,
    /// One per served market.
    pub repos: Vec<Arc<dyn MessengerRepository>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness of ids and secrets.
    pub rng: Arc<dyn RandomSource>,
    /// Keyed hashes of the secrets.
    pub hasher: MessengerHasher,
    /// Seals the tokens kept until the poll, and replies in the outbox.
    pub sealer: PayloadSealer,
}

/// Messenger login over the markets' databases (see the module documentation). Repository calls
/// block: call from a blocking pool.
pub struct MessengerService {
    auth: Arc<AuthService>,
    repos: BTreeMap<Market, Arc<dyn MessengerRepository>>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    hasher: MessengerHasher,
    sealer: PayloadSealer,
    config: MessengerConfig,
    webhooks: Vec<Arc<dyn MessengerWebhook>>,
    widget: Option<Arc<dyn WidgetVerifier>>,
    delivery: Option<Arc<crate::DeliveryTracker>>,
}

impl std::fmt::Debug for MessengerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessengerService")
            .field("config", &self.config)
            .field(
                "webhooks",
                &self
                    .webhooks
                    .iter()
                    .map(|w| w.channel())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Why a webhook was not handled.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The channel's messenger login is not configured (404).
    #[error("messenger login not configured")]
    NotConfigured,
    /// Signature or body refused (401 / 400).
    #[error(transparent)]
    Refused(#[from] CallbackError),
    /// Storage failed: the provider should retry (503 / 500).
    #[error(transparent)]
    Failed(AuthError),
}

/// A random value of `n` bytes, base64url without padding.
fn random_text(rng: &dyn RandomSource, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Percent-encodes `s` for a URL query value (RFC 3986 unreserved characters kept; a space is
/// `%20`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The nonce in a message text: the first word of [`NONCE_CHARS`] base64url characters.
pub fn find_nonce(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace()).find(|w| {
        w.len() == NONCE_CHARS
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

impl MessengerService {
    /// Wires the service; add the webhooks and widget checker of the configured channels.
    pub fn new(deps: MessengerDeps, config: MessengerConfig) -> Self {
        Self {
            auth: deps.auth,
            repos: deps.repos.into_iter().map(|r| (r.market(), r)).collect(),
            clock: deps.clock,
            rng: deps.rng,
            hasher: deps.hasher,
            sealer: deps.sealer,
            config,
            webhooks: Vec::new(),
            widget: None,
            delivery: None,
        }
    }

    /// Accepts `webhook`'s channel's events.
    #[must_use]
    pub fn with_webhook(mut self, webhook: Arc<dyn MessengerWebhook>) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// Applies the delivery statuses webhooks bring (WhatsApp `statuses[]`) to the outbox.
    #[must_use]
    pub fn with_delivery_tracker(mut self, tracker: Arc<crate::DeliveryTracker>) -> Self {
        self.delivery = Some(tracker);
        self
    }

    /// Accepts Telegram Login Widget data checked by `widget`.
    #[must_use]
    pub fn with_widget(mut self, widget: Arc<dyn WidgetVerifier>) -> Self {
        self.widget = Some(widget);
        self
    }

    /// The webhook checker of `channel`, when its login is configured.
    pub fn webhook(&self, channel: Channel) -> Option<&Arc<dyn MessengerWebhook>> {
        self.webhooks.iter().find(|w| w.channel() == channel)
    }

    /// Whether `channel`'s messenger login is available (its settings are set).
    pub fn available(&self, channel: Channel) -> bool {
        let link = match channel {
            Channel::WhatsApp => self.config.whatsapp_number.is_some(),
            Channel::Telegram => self.config.telegram_bot.is_some(),
            Channel::Sms | Channel::Email => false,
        };
        link && self.webhook(channel).is_some()
    }

    /// Whether the Telegram Login Widget is accepted.
    pub fn widget_available(&self) -> bool {
        self.widget.is_some()
    }

    fn repo(&self, market: Market) -> Result<&Arc<dyn MessengerRepository>, AuthError> {
        self.repos
            .get(&market)
            .ok_or_else(|| MarketUnavailable::not_served(market).into())
    }

    fn storage(market: Market) -> impl Fn(RepoError) -> AuthError {
        move |e| match MarketUnavailable::sort(market, e) {
            Ok(down) => AuthError::Unavailable(down),
            Err(other) => AuthError::Internal(Box::new(other)),
        }
    }

    /// Starts a login on `channel`, stored in `market` (`None`: the default market). Counts
    /// against the client IP's send limits.
    ///
    /// Errors: [`AuthError::ChannelNotAvailable`], [`AuthError::RateLimited`], storage errors.
    pub fn start(
        &self,
        channel: Channel,
        market: Option<Market>,
        client: &ClientInfo,
    ) -> Result<MessengerStart, AuthError> {
        if !self.available(channel) {
            return Err(AuthError::ChannelNotAvailable(channel));
        }
        let market = market.unwrap_or(self.config.default_market);
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let login_id = random_text(self.rng.as_ref(), 16);
        let poll_secret = random_text(self.rng.as_ref(), 32);
        let nonce = random_text(self.rng.as_ref(), 16);
        let login = NewMessengerLogin {
            id: login_id.clone(),
            channel,
            nonce_hash: self.hasher.hash("nonce", nonce.as_bytes()),
            poll_secret_hash: self.hasher.hash("poll", poll_secret.as_bytes()),
            user_agent: client
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(512).collect()),
            now,
            expires_at: now + self.config.ttl,
            limits: self.auth.ip_send_limits(market, client),
        };
        if let Err(retry) = repo.start_login(&login).map_err(Self::storage(market))? {
            return Err(AuthError::RateLimited(retry.0));
        }
        let deep_link = match channel {
            Channel::WhatsApp => {
                let number = self.config.whatsapp_number.as_deref().unwrap_or_default();
                let prefix = text(MessageKey::MessengerLoginPrefix, market.language());
                format!(
                    "https://wa.me/{number}?text={}",
                    percent_encode(&format!("{prefix} {nonce}"))
                )
            }
            _ => {
                let bot = self.config.telegram_bot.as_deref().unwrap_or_default();
                format!("https://t.me/{bot}?start={nonce}")
            }
        };
        Ok(MessengerStart {
            login_id,
            poll_secret,
            deep_link,
            expires_in: self.config.ttl.num_seconds(),
        })
    }

    /// The state of login `login_id` for the holder of `poll_secret`; the tokens are handed out
    /// by the first poll after completion only.
    ///
    /// Errors: [`AuthError::NotFound`] (no such login, or the wrong secret), storage errors.
    pub fn poll(&self, login_id: &str, poll_secret: &str) -> Result<PollStatus, AuthError> {
        if login_id.is_empty() || login_id.len() > 64 || poll_secret.len() > 128 {
            return Err(AuthError::NotFound);
        }
        let now = self.clock.now();
        let matches = |stored: &[u8]| self.hasher.verify("poll", poll_secret.as_bytes(), stored);
        for (market, repo) in &self.repos {
            let Some(found) = repo
                .poll(login_id, &matches, now)
                .map_err(Self::storage(*market))?
            else {
                continue;
            };
            return Ok(match found {
                StoredPoll::Pending => PollStatus::Pending,
                StoredPoll::Consumed => PollStatus::Consumed,
                StoredPoll::Expired => PollStatus::Expired,
                StoredPoll::Failed(e) => PollStatus::Failed(e),
                StoredPoll::Completed(sealed) => {
                    let tokens = self
                        .sealer
                        .open(&sealed)
                        .ok()
                        .and_then(|b| LoginSuccessTokens::decode(&b))
                        .ok_or_else(|| {
                            AuthError::Internal("messenger login tokens do not open".into())
                        })?;
                    PollStatus::Completed(Box::new(tokens))
                }
            });
        }
        Err(AuthError::NotFound)
    }

    /// Checks the signature of a `channel` webhook and handles its events; returns how many
    /// events were acted on. A replayed event does nothing.
    ///
    /// Errors: [`WebhookError`].
    pub fn handle(
        &self,
        channel: Channel,
        request: &CallbackRequest<'_>,
    ) -> Result<usize, WebhookError> {
        let webhook = self.webhook(channel).ok_or(WebhookError::NotConfigured)?;
        let (reports, events): (Vec<Inbound>, Vec<Inbound>) = webhook
            .verify(request)?
            .into_iter()
            .partition(|e| matches!(e, Inbound::DeliveryStatus(_)));
        let mut acted = 0;
        if let Some(tracker) = &self.delivery {
            let reports: Vec<crate::DeliveryReport> = reports
                .into_iter()
                .filter_map(|e| match e {
                    Inbound::DeliveryStatus(r) => Some(r),
                    _ => None,
                })
                .collect();
            // Idempotent: a replayed status changes nothing more.
            acted += tracker
                .apply(channel.as_str(), &reports)
                .map_err(|e| WebhookError::Failed(AuthError::Unavailable(e)))?;
        }
        for event in events {
            let id = match &event {
                Inbound::DeliveryStatus(_) => continue,
                Inbound::WhatsAppText { message_id, .. } => format!("wa:{message_id}"),
                Inbound::TelegramStart { update_id, .. }
                | Inbound::TelegramContact { update_id, .. } => format!("tg:{update_id}"),
            };
            let home = self.config.default_market;
            let repo = self.repo(home).map_err(WebhookError::Failed)?;
            let now = self.clock.now();
            if !repo
                .mark_seen(&id, now)
                .map_err(|e| WebhookError::Failed(Self::storage(home)(e)))?
            {
                tracing::info!(event = %id, "messenger webhook replay ignored");
                continue;
            }
            let handled = match event {
                Inbound::DeliveryStatus(_) => Ok(()),
                Inbound::WhatsAppText { from, text, .. } => self.whatsapp_text(&from, &text),
                Inbound::TelegramStart {
                    user_id,
                    chat_id,
                    payload,
                    ..
                } => self.telegram_start(user_id, chat_id, payload.as_deref()),
                Inbound::TelegramContact {
                    user_id,
                    chat_id,
                    contact_user_id,
                    phone_number,
                    ..
                } => self.telegram_contact(user_id, chat_id, contact_user_id, &phone_number),
            };
            if let Err(e) = handled {
                // Let the provider's retry try again.
                if let Err(forget) = repo.forget_seen(&id) {
                    tracing::warn!(error = %forget, "messenger event not forgotten");
                }
                return Err(WebhookError::Failed(e));
            }
            acted += 1;
        }
        Ok(acted)
    }

    /// The pending login with `nonce`, in whichever market holds it.
    fn lookup(&self, nonce: &str) -> Result<Option<(Market, NonceLookup)>, AuthError> {
        let hash = self.hasher.hash("nonce", nonce.as_bytes());
        let now = self.clock.now();
        for (market, repo) in &self.repos {
            match repo
                .find_nonce(&hash, now)
                .map_err(Self::storage(*market))?
            {
                NonceLookup::Unknown => {}
                found => return Ok(Some((*market, found))),
            }
        }
        Ok(None)
    }

    /// Queues `key`'s text in `lang` to `recipient` on `channel`, in `market`'s outbox.
    fn reply(
        &self,
        market: Market,
        channel: Channel,
        recipient: &str,
        lang: Language,
        key: MessageKey,
        keyboard: ReplyKeyboard,
    ) -> Result<(), AuthError> {
        let repo = self.repo(market)?;
        let now = self.clock.now();
        let payload = ReplyPayload {
            text: text(key, lang).to_owned(),
            keyboard,
        };
        let message = NewOutboxMessage {
            channel,
            fallback: Vec::new(),
            recipient: recipient.to_owned(),
            sealed_body: self.sealer.seal(&payload.encode(), self.rng.as_ref()),
            expires_at: now + self.config.ttl,
        };
        repo.queue_reply(&message, now)
            .map_err(Self::storage(market))
    }

    fn whatsapp_text(&self, from: &str, body: &str) -> Result<(), AuthError> {
        let Some(nonce) = find_nonce(body) else {
            return Ok(());
        };
        let e164 = format!("+{}", from.trim_start_matches('+'));
        let phone = PhoneNumber::parse(&e164, None);
        let found = self.lookup(nonce)?;
        let login_market = found.as_ref().map(|(m, _)| *m);
        let lang = phone
            .as_ref()
            .map(|p| p.market())
            .ok()
            .or(login_market)
            .unwrap_or(self.config.default_market)
            .language();
        let outbox = login_market.unwrap_or(self.config.default_market);
        let say = |key| {
            self.reply(
                outbox,
                Channel::WhatsApp,
                &e164,
                lang,
                key,
                ReplyKeyboard::None,
            )
        };
        let login = match found {
            Some((_, NonceLookup::Live(login))) if login.channel == Channel::WhatsApp => login,
            _ => return say(MessageKey::MessengerLinkExpired),
        };
        let Ok(phone) = phone else {
            return say(MessageKey::MessengerNumberNotServed);
        };
        let key = self.complete(outbox, &login, &phone, "whatsapp", None)?;
        say(key)
    }

    fn telegram_start(
        &self,
        user_id: i64,
        chat_id: i64,
        payload: Option<&str>,
    ) -> Result<(), AuthError> {
        let Some(nonce) = payload.and_then(find_nonce) else {
            return Ok(());
        };
        let chat = chat_id.to_string();
        let found = self.lookup(nonce)?;
        let (market, login) = match found {
            Some((m, NonceLookup::Live(login))) if login.channel == Channel::Telegram => (m, login),
            other => {
                let m = other.map_or(self.config.default_market, |(m, _)| m);
                return self.reply(
                    m,
                    Channel::Telegram,
                    &chat,
                    m.language(),
                    MessageKey::MessengerLinkExpired,
                    ReplyKeyboard::None,
                );
            }
        };
        let lang = market.language();
        if let Some(phone) = self.auth.telegram_phone(user_id)? {
            let key = self.complete(market, &login, &phone, "telegram", None)?;
            return self.reply(
                market,
                Channel::Telegram,
                &chat,
                lang,
                key,
                ReplyKeyboard::Remove,
            );
        }
        let hash = self.hasher.hash("telegram", user_id.to_string().as_bytes());
        self.repo(market)?
            .attach_telegram_user(&login.id, &hash)
            .map_err(Self::storage(market))?;
        let button = text(MessageKey::MessengerShareContactButton, lang).to_owned();
        self.reply(
            market,
            Channel::Telegram,
            &chat,
            lang,
            MessageKey::MessengerShareContact,
            ReplyKeyboard::RequestContact(button),
        )
    }

    fn telegram_contact(
        &self,
        user_id: i64,
        chat_id: i64,
        contact_user_id: Option<i64>,
        phone_number: &str,
    ) -> Result<(), AuthError> {
        let chat = chat_id.to_string();
        let hash = self.hasher.hash("telegram", user_id.to_string().as_bytes());
        let now = self.clock.now();
        let mut pending = None;
        for (market, repo) in &self.repos {
            if let Some(login) = repo
                .pending_for_telegram(&hash, now)
                .map_err(Self::storage(*market))?
            {
                pending = Some((*market, login));
                break;
            }
        }
        let market = pending
            .as_ref()
            .map_or(self.config.default_market, |(m, _)| *m);
        let lang = market.language();
        let say = |key, keyboard| self.reply(market, Channel::Telegram, &chat, lang, key, keyboard);
        if contact_user_id != Some(user_id) {
            return say(MessageKey::MessengerNotYourContact, ReplyKeyboard::None);
        }
        let Some((_, login)) = pending else {
            return say(MessageKey::MessengerLinkExpired, ReplyKeyboard::Remove);
        };
        let e164 = format!("+{}", phone_number.trim().trim_start_matches('+'));
        let Ok(phone) = PhoneNumber::parse(&e164, None) else {
            return say(MessageKey::MessengerNumberNotServed, ReplyKeyboard::Remove);
        };
        let key = self.complete(market, &login, &phone, "telegram", Some(user_id))?;
        say(key, ReplyKeyboard::Remove)
    }

    /// Completes `login` (stored in `market`) for the proven `phone`: claims it, signs the
    /// number in, and keeps the tokens sealed for the poll. Returns the key of the reply to
    /// send.
    fn complete(
        &self,
        market: Market,
        login: &PendingLogin,
        phone: &PhoneNumber,
        via: &'static str,
        link: Option<i64>,
    ) -> Result<MessageKey, AuthError> {
        let repo = self.repo(market)?;
        let now = self.clock.now();
        if !repo.claim(&login.id, now).map_err(Self::storage(market))? {
            return Ok(MessageKey::MessengerLinkExpired);
        }
        let client = ClientInfo {
            ip: None,
            user_agent: login.user_agent.clone(),
        };
        match self.auth.sign_in_proven(phone, via, link, &client) {
            Ok(success) => {
                let tokens = LoginSuccessTokens::of(&success);
                let sealed = self.sealer.seal(&tokens.encode(), self.rng.as_ref());
                repo.complete(&login.id, &sealed, self.clock.now())
                    .map_err(Self::storage(market))?;
                Ok(MessageKey::MessengerSignedIn)
            }
            Err(e @ (AuthError::PhoneLocked(_) | AuthError::AccountDisabled)) => {
                let code = match e {
                    AuthError::PhoneLocked(_) => "phone_locked",
                    _ => "account_disabled",
                };
                repo.fail(&login.id, code, self.clock.now())
                    .map_err(Self::storage(market))?;
                Ok(MessageKey::MessengerSignInRefused)
            }
            Err(e) => {
                if let Err(r) = repo.release(&login.id) {
                    tracing::warn!(error = %r, "messenger login not released");
                }
                Err(e)
            }
        }
    }

    /// Signs in the Telegram user of Login Widget `fields` when linked to an account.
    ///
    /// Errors: [`AuthError::InvalidTelegramAuth`] (wrong or stale hash),
    /// [`AuthError::TelegramNotLinked`], [`AuthError::NotFound`] when the widget is not
    /// configured, and those of [`AuthService::sign_in_proven`].
    pub fn widget_sign_in(
        &self,
        fields: &[(String, String)],
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        let widget = self.widget.as_ref().ok_or(AuthError::NotFound)?;
        let user = widget
            .verify(fields, self.clock.now())
            .map_err(|_| AuthError::InvalidTelegramAuth)?;
        let phone = self
            .auth
            .telegram_phone(user)?
            .ok_or(AuthError::TelegramNotLinked)?;
        self.auth
            .sign_in_proven(&phone, "telegram_widget", None, client)
    }

    /// The caller's Telegram link, if any.
    pub fn telegram_link(&self, who: &SignedIn) -> Result<Option<TelegramLink>, AuthError> {
        self.auth.telegram_link(who)
    }

    /// Removes the caller's Telegram link.
    ///
    /// Errors: [`AuthError::NotFound`] when there is none.
    pub fn unlink_telegram(&self, who: &SignedIn, client: &ClientInfo) -> Result<(), AuthError> {
        self.auth.unlink_telegram(who, client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_payloads_round_trip_and_are_not_otp_payloads() {
        for keyboard in [
            ReplyKeyboard::None,
            ReplyKeyboard::Remove,
            ReplyKeyboard::RequestContact("Поделиться: номером".into()),
        ] {
            let p = ReplyPayload {
                text: "Привет: мир\nвторая строка".into(),
                keyboard,
            };
            assert_eq!(ReplyPayload::decode(&p.encode()), Some(p.clone()));
            assert!(crate::OtpPayload::decode(&p.encode()).is_none());
            assert!(!format!("{p:?}").contains("Привет"));
        }
        assert_eq!(ReplyPayload::decode(b"v1:login:5:123456"), None);
        assert_eq!(ReplyPayload::decode(b"r1:c:99:short"), None);
    }

    #[test]
    fn nonces_are_found_in_texts_and_links_are_encoded() {
        let n = "AbCdEfGhIjKlMnOpQrSt_-";
        assert_eq!(find_nonce(&format!("Войти {n}")), Some(n));
        assert_eq!(find_nonce("hello there"), None);
        assert_eq!(
            percent_encode("Войти a-b"),
            "%D0%92%D0%BE%D0%B9%D1%82%D0%B8%20a-b"
        );
    }

    #[test]
    fn tokens_round_trip_and_hashes_verify_in_constant_time() {
        let t = LoginSuccessTokens {
            access_token: "a.b.c".into(),
            expires_in: 1800,
            refresh_token: "mrt_x".into(),
            refresh_expires_in: 99,
            user_id: UserId(7),
            market: Market::Us,
            is_new_user: true,
        };
        assert_eq!(LoginSuccessTokens::decode(&t.encode()), Some(t.clone()));
        assert!(!format!("{t:?}").contains("mrt_x"));
        let h = MessengerHasher::from_key([7; 32]);
        let stored = h.hash("poll", b"secret");
        assert!(h.verify("poll", b"secret", &stored));
        assert!(!h.verify("nonce", b"secret", &stored));
        assert!(!h.verify("poll", b"secreT", &stored));
    }
}

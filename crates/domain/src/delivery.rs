//! Delivery of codes: channels, what a provider is handed, what it answers, how it reports back
//! later, and the retry rule of the outbox.
//!
//! The outbox stores a sealed [`OtpPayload`] (the code, its purpose and lifetime), not a rendered
//! text, so that the worker can render the message for whichever channel it ends up on: the same
//! code goes out on the next channel of the market's list when one fails permanently (a number not
//! on Telegram, not a WhatsApp user, an SMS provider's permanent error).

use chrono::{DateTime, Duration, Utc};
use marque_markets::{Language, Market, OtpCode, OtpPurpose};

/// Delivery channel of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Text message (Twilio, AWS SNS, a regional gateway by webhook, or the console).
    Sms,
    /// WhatsApp Cloud API authentication template.
    WhatsApp,
    /// Telegram Gateway API verification message.
    Telegram,
    /// Email (issue 10): an outbox channel only, for [`crate::EmailPayload`] rows. Not a channel
    /// for codes: it is not in [`Channel::ALL`] and [`Channel::parse`] refuses it (send-code and
    /// `CHANNELS_*` never name it); stored rows are read with [`Channel::from_stored`].
    Email,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::WhatsApp, Channel::Telegram];

    /// Storage and API text: `sms`, `whatsapp`, `telegram`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::WhatsApp => "whatsapp",
            Self::Telegram => "telegram",
            Self::Email => "email",
        }
    }

    /// Parses a stored outbox channel: any [`Channel::parse`] text, and `email`.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            _ => Self::parse(s),
        }
    }

    /// Parses the API text of a code channel (`sms`, `whatsapp`, `telegram`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sms" => Self::Sms,
            "whatsapp" => Self::WhatsApp,
            "telegram" => Self::Telegram,
            _ => return None,
        })
    }

    /// Parses a comma-separated list such as `telegram,whatsapp,sms` (spaces allowed, empty
    /// items skipped). Errors with the first unknown item; a channel named twice keeps its first
    /// place.
    pub fn parse_list(s: &str) -> Result<Vec<Channel>, String> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let c = Channel::parse(item).ok_or_else(|| item.to_owned())?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The stored form of a list: `telegram,sms` (empty for none).
    pub fn join(list: &[Channel]) -> String {
        list.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the outbox keeps, sealed, for one message: enough to render it on any channel.
/// Stored form: `v1:<purpose>:<ttl minutes>:<code>`. `Debug` hides the code.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpPayload {
    /// The one-time code.
    pub code: OtpCode,
    /// What the code is for (picks the template).
    pub purpose: OtpPurpose,
    /// The code's lifetime in minutes at issue (the `{minutes}` of templates).
    pub ttl_minutes: u32,
}

impl std::fmt::Debug for OtpPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpPayload")
            .field("code", &"[REDACTED]")
            .field("purpose", &self.purpose)
            .field("ttl_minutes", &self.ttl_minutes)
            .finish()
    }
}

impl OtpPayload {
    /// The bytes to seal.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "v1:{}:{}:{}",
            self.purpose.as_str(),
            self.ttl_minutes,
            self.code.as_str()
        )
        .into_bytes()
    }

    /// Parses opened bytes; `None` for anything else (a payload of an older format).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        let mut parts = s.splitn(4, ':');
        if parts.next()? != "v1" {
            return None;
        }
        let purpose = OtpPurpose::parse(parts.next()?)?;
        let ttl_minutes = parts.next()?.parse().ok()?;
        let code = OtpCode::parse(parts.next()?).ok()?;
        Some(Self {
            code,
            purpose,
            ttl_minutes,
        })
    }
}

/// A message ready for a provider. `Debug` hides the code and the text.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Stable id of the message, the same on every retry (`kg-42`: market and outbox row), for a
    /// provider's idempotency (the Standard Webhooks `webhook-id`).
    pub id: String,
    /// Channel.
    pub channel: Channel,
    /// Market of the recipient (picks sender ids, template languages).
    pub market: Market,
    /// Language of the text (the market's).
    pub language: Language,
    /// Recipient, E.164 (`+996505325311`).
    pub recipient: String,
    /// The code, for providers that take it apart from the text (WhatsApp templates, Telegram
    /// Gateway, webhooks).
    pub code: OtpCode,
    /// What the code is for.
    pub purpose: OtpPurpose,
    /// The rendered text for text channels, with the autofill line when configured.
    pub text: String,
    /// When the code expires; providers with a time to live (Telegram Gateway `ttl`) derive it.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("market", &self.market)
            .field("recipient", &self.recipient)
            .field("purpose", &self.purpose)
            .field("code", &"[REDACTED]")
            .field("text", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A provider took the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id of the message (Twilio `SM…`, SNS `MessageId`, Telegram `request_id`,
    /// WhatsApp `wamid…`), which its delivery reports name; `None` when it gives none.
    pub provider_message_id: Option<String>,
}

/// A provider's refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: timeouts, connection failures, 5xx, throttling (Twilio 20429, HTTP 429).
    #[error("transient delivery failure: {0}")]
    Transient(String),
    /// Retrying will not help: an invalid or unreachable number, a number not on this channel,
    /// rejected credentials, any other 4xx. The message falls back to the next channel.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// A delivery provider (console, Twilio, SNS, webhook, WhatsApp, Telegram).
#[async_trait::async_trait]
pub trait MessageSender: Send + Sync {
    /// Provider name for logs, metrics and the stored `provider` column (`console`, `twilio`…).
    fn name(&self) -> &'static str;

    /// Hands one message to the provider.
    ///
    /// Errors: [`DeliveryError::Transient`] (retried with backoff) or
    /// [`DeliveryError::Permanent`] (next channel, or dead letter).
    async fn send(&self, message: &OutgoingMessage) -> Result<Accepted, DeliveryError>;
}

/// What a provider's delivery report says of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedStatus {
    /// Still on its way (queued or sent by the provider); changes nothing stored.
    InProgress,
    /// Reached the phone.
    Delivered,
    /// Will not reach the phone (undelivered, failed, expired at the carrier).
    Failed,
}

/// One status report from a provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The provider's message id, as [`Accepted::provider_message_id`] recorded it.
    pub provider_message_id: String,
    /// The new status.
    pub status: ReportedStatus,
    /// The provider's error code or text, for `failed`.
    pub error: Option<String>,
}

/// A provider callback as received: the public URL the provider called (what it signed), the
/// headers and the raw body. Signatures are checked on these bytes before anything is parsed.
#[derive(Debug, Clone, Copy)]
pub struct CallbackRequest<'a> {
    /// The URL as the provider knows it (`PUBLIC_BASE_URL` + path + query).
    pub url: &'a str,
    /// Headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl CallbackRequest<'_> {
    /// The first value of header `name` (give it in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The signature is missing, stale or wrong (answered 401; nothing changes).
    #[error("callback signature missing or wrong")]
    BadSignature,
    /// Signed, but not a body we understand (answered 400).
    #[error("callback body not understood: {0}")]
    Malformed(String),
}

/// A provider's delivery-report callback: checks the provider's signature on the raw request
/// and reads the reports in it.
pub trait DeliveryCallback: Send + Sync {
    /// The provider name the reports belong to (matches [`MessageSender::name`]).
    fn provider(&self) -> &'static str;

    /// Verifies `request` as the provider signs it, then parses its reports.
    ///
    /// Errors: [`CallbackError::BadSignature`], [`CallbackError::Malformed`].
    fn verify(&self, request: &CallbackRequest<'_>) -> Result<Vec<DeliveryReport>, CallbackError>;
}

/// Where a challenge's message stands, as `GET /api/v1/auth/challenges/{challenge_id}` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// In the outbox, not yet taken by a provider (or being retried).
    Queued,
    /// Taken by the provider; no delivery report yet (test numbers: nothing to send).
    Sent,
    /// The provider reported it reached the phone.
    Delivered,
    /// Given up (every channel failed, or attempts exhausted), expired before delivery, or
    /// reported undeliverable.
    Failed,
}

impl DeliveryState {
    /// API text: `queued`, `sent`, `delivered`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// The delivery of one challenge's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeDelivery {
    /// The channel in use now (after any fallback).
    pub channel: Channel,
    /// Where it stands.
    pub status: DeliveryState,
    /// The channel first tried, when the code went out on another one instead.
    pub fallback_from: Option<Channel>,
}

/// The outbox's retry rule: exponential backoff with jitter, capped, for a bounded number of
/// attempts; after the last, the message is a dead letter (`failed`, with the provider's last
/// error). Defaults: 8 attempts, 2 s doubling to at most 60 s, so retries span ≈ 3 minutes —
/// longer than a provider's typical brown-out, shorter than a code's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts on one channel before giving up.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base: Duration,
    /// Longest delay between two attempts.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::seconds(2),
            cap: Duration::seconds(60),
        }
    }
}

impl RetryPolicy {
    /// When to try again after failed attempt number `attempts` (1 for the first failure), or
    /// `None` when it was the last. The delay is `min(cap, base·2^(attempts−1))` scaled by a
    /// jitter factor in `[0.5, 1.0]` taken from `jitter` (any `u32`, uniformly random), so
    /// retries from many instances after one outage spread out ("equal jitter").
    pub fn retry_at(
        &self,
        now: DateTime<Utc>,
        attempts: u32,
        jitter: u32,
    ) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let shift = attempts.saturating_sub(1).min(20);
        let full = self
            .base
            .checked_mul(1i32 << shift)
            .map_or(self.cap, |d| d.min(self.cap));
        let ms = full.num_milliseconds().max(0);
        let half = ms / 2;
        let extra = (i128::from(half) * i128::from(jitter) / i128::from(u32::MAX)) as i64;
        Some(now + Duration::milliseconds(half + extra))
    }
}

/// Delivery status across the markets' outboxes: what `GET /api/v1/auth/challenges/{id}`
/// answers, and where providers' delivery reports are applied. Repository calls block; call from
/// a blocking pool.
pub struct DeliveryTracker {
    repos: Vec<std::sync::Arc<dyn crate::OutboxRepository>>,
    clock: std::sync::Arc<dyn crate::Clock>,
}

impl std::fmt::Debug for DeliveryTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryTracker")
            .field(
                "markets",
                &self.repos.iter().map(|r| r.market()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl DeliveryTracker {
    /// A tracker over one outbox repository per served market.
    pub fn new(
        repos: Vec<std::sync::Arc<dyn crate::OutboxRepository>>,
        clock: std::sync::Arc<dyn crate::Clock>,
    ) -> Self {
        Self { repos, clock }
    }

    /// The delivery of challenge `challenge_id` in whichever market holds it; `Ok(None)` when
    /// no market does.
    ///
    /// Errors: [`crate::MarketUnavailable`] when it was not found and a market could not be
    /// asked (it may be there); other storage failures as [`crate::RepoError`] inside it.
    pub fn challenge(
        &self,
        challenge_id: &str,
    ) -> Result<Option<ChallengeDelivery>, crate::MarketUnavailable> {
        let mut failure = None;
        for repo in &self.repos {
            match repo.challenge_delivery(challenge_id) {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(e) => {
                    failure = Some(crate::MarketUnavailable {
                        market: repo.market(),
                        source: Some(e),
                    });
                }
            }
        }
        failure.map_or(Ok(None), Err)
    }

    /// Applies `reports` of `provider` to the messages they name, in whichever market holds
    /// each; returns how many were found. Unknown ids are ignored (a report of a message already
    /// purged by retention).
    ///
    /// Errors: the first storage failure (the provider retries the callback on a 5xx).
    pub fn apply(
        &self,
        provider: &str,
        reports: &[DeliveryReport],
    ) -> Result<usize, crate::MarketUnavailable> {
        let now = self.clock.now();
        let mut found = 0;
        for report in reports {
            for repo in &self.repos {
                let hit = repo.record_report(provider, report, now).map_err(|e| {
                    crate::MarketUnavailable {
                        market: repo.market(),
                        source: Some(e),
                    }
                })?;
                if hit {
                    found += 1;
                    break;
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_lists_parse_in_order_and_refuse_unknown_items() {
        assert_eq!(
            Channel::parse_list(" telegram, whatsapp ,sms,telegram,").unwrap(),
            vec![Channel::Telegram, Channel::WhatsApp, Channel::Sms]
        );
        assert_eq!(Channel::parse_list("sms,pigeon"), Err("pigeon".into()));
        assert_eq!(
            Channel::join(&[Channel::Telegram, Channel::Sms]),
            "telegram,sms"
        );
    }

    #[test]
    fn payload_round_trips_and_hides_the_code() {
        let p = OtpPayload {
            code: OtpCode::parse("012345").unwrap(),
            purpose: OtpPurpose::DeleteAccount,
            ttl_minutes: 5,
        };
        assert_eq!(OtpPayload::decode(&p.encode()), Some(p.clone()));
        assert!(!format!("{p:?}").contains("012345"));
        assert_eq!(OtpPayload::decode(b"Marque: your code is 123456"), None);
        assert_eq!(OtpPayload::decode(b"v1:login:5:12"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy::default();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let delay = |attempts, jitter| {
            p.retry_at(now, attempts, jitter)
                .map(|t| (t - now).num_milliseconds())
        };
        assert_eq!(delay(1, 0), Some(1_000));
        assert_eq!(delay(1, u32::MAX), Some(2_000));
        assert_eq!(delay(2, u32::MAX), Some(4_000));
        assert_eq!(delay(3, 0), Some(4_000));
        assert_eq!(delay(7, u32::MAX), Some(60_000));
        assert_eq!(delay(7, 0), Some(30_000));
        assert_eq!(delay(8, 0), None);
        assert_eq!(delay(40, 0), None);
    }
}

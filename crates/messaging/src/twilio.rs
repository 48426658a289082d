//! Twilio Programmable Messaging (SMS).
//!
//! Send: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `Body`,
//! `From` or `MessagingServiceSid`, `StatusCallback`; HTTP Basic with the account SID and auth
//! token. Status callbacks are signed with `X-Twilio-Signature`.

use marque_domain::{
    Accepted, CallbackError, CallbackRequest, DeliveryCallback, DeliveryError, DeliveryReport,
    MessageSender, OutgoingMessage, SecretString,
};

/// Twilio's public API base URL.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// Whom a Twilio message is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioFrom {
    /// A sender number or alphanumeric sender id (`TWILIO_FROM`).
    Number(String),
    /// A Messaging Service (`TWILIO_MESSAGING_SERVICE_SID`, `MG…`), which picks the sender.
    MessagingService(String),
}

/// Settings of the Twilio provider.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// API base URL (`TWILIO_BASE_URL`, default [`TWILIO_BASE_URL`]; tests point it at a fake).
    pub base_url: String,
    /// `TWILIO_ACCOUNT_SID` (`AC…`).
    pub account_sid: String,
    /// `TWILIO_AUTH_TOKEN`: the Basic-auth password and the key of callback signatures.
    pub auth_token: SecretString,
    /// Sender.
    pub from: TwilioFrom,
    /// The `StatusCallback` URL (`PUBLIC_BASE_URL` + `/api/v1/delivery/twilio/status`), when a
    /// public base URL is configured.
    pub status_callback: Option<String>,
}

/// The Twilio SMS provider.
#[derive(Debug)]
pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
}

impl Twilio {
    /// A provider sending with `http` (see [`crate::provider_client`]).
    pub fn new(config: TwilioConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }
}

#[async_trait::async_trait]
impl MessageSender for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, _m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let _ = (&self.config, &self.http);
        Err(DeliveryError::Permanent("twilio: not built yet".into()))
    }
}

/// Checks Twilio status callbacks (`POST /api/v1/delivery/twilio/status`).
#[derive(Debug, Clone)]
pub struct TwilioStatusCallback {
    auth_token: SecretString,
}

impl TwilioStatusCallback {
    /// A checker keyed with the account's auth token.
    pub fn new(auth_token: SecretString) -> Self {
        Self { auth_token }
    }
}

impl DeliveryCallback for TwilioStatusCallback {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    fn verify(&self, _r: &CallbackRequest<'_>) -> Result<Vec<DeliveryReport>, CallbackError> {
        let _ = &self.auth_token;
        Err(CallbackError::BadSignature)
    }
}

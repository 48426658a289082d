//! Telegram Gateway API: verification codes to any number registered on Telegram.

use marque_domain::{
    Accepted, CallbackError, CallbackRequest, DeliveryCallback, DeliveryError, DeliveryReport,
    MessageSender, OutgoingMessage, SecretString,
};

/// The Gateway API base URL.
pub const TELEGRAM_GATEWAY_BASE_URL: &str = "https://gatewayapi.telegram.org";

/// Settings of the Telegram Gateway provider.
#[derive(Debug, Clone)]
pub struct TelegramGatewayConfig {
    /// `TELEGRAM_GATEWAY_BASE_URL`, default [`TELEGRAM_GATEWAY_BASE_URL`].
    pub base_url: String,
    /// `TELEGRAM_GATEWAY_TOKEN` (Bearer), also the key of delivery-report signatures.
    pub token: SecretString,
    /// The `callback_url` (`PUBLIC_BASE_URL` + `/api/v1/delivery/telegram/report`), when a
    /// public base URL is configured.
    pub callback_url: Option<String>,
}

/// The Telegram Gateway provider.
#[derive(Debug)]
pub struct TelegramGateway {
    config: TelegramGatewayConfig,
    http: reqwest::Client,
}

impl TelegramGateway {
    /// A provider sending with `http` (see [`crate::provider_client`]).
    pub fn new(config: TelegramGatewayConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }
}

#[async_trait::async_trait]
impl MessageSender for TelegramGateway {
    fn name(&self) -> &'static str {
        "telegram"
    }

    async fn send(&self, _m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let _ = (&self.config, &self.http);
        Err(DeliveryError::Permanent("telegram: not built yet".into()))
    }
}

/// Checks Telegram Gateway delivery reports (`POST /api/v1/delivery/telegram/report`).
#[derive(Debug, Clone)]
pub struct TelegramReportCallback {
    token: SecretString,
}

impl TelegramReportCallback {
    /// A checker keyed with the Gateway API token.
    pub fn new(token: SecretString) -> Self {
        Self { token }
    }
}

impl DeliveryCallback for TelegramReportCallback {
    fn provider(&self) -> &'static str {
        "telegram"
    }

    fn verify(&self, _r: &CallbackRequest<'_>) -> Result<Vec<DeliveryReport>, CallbackError> {
        let _ = &self.token;
        Err(CallbackError::BadSignature)
    }
}

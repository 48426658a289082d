//! Any regional SMS gateway: a JSON `POST` signed as Standard Webhooks.

use marque_domain::{Accepted, DeliveryError, MessageSender, OutgoingMessage, SecretString};

/// Settings of the webhook provider.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `SMS_WEBHOOK_URL`.
    pub url: String,
    /// `SMS_WEBHOOK_SECRET`, `whsec_` followed by base64.
    pub secret: SecretString,
}

/// The webhook SMS provider.
#[derive(Debug)]
pub struct SmsWebhook {
    config: WebhookConfig,
    http: reqwest::Client,
}

impl SmsWebhook {
    /// A provider posting with `http` (see [`crate::provider_client`]).
    pub fn new(config: WebhookConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }
}

#[async_trait::async_trait]
impl MessageSender for SmsWebhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, _m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let _ = (&self.config, &self.http);
        Err(DeliveryError::Permanent("webhook: not built yet".into()))
    }
}

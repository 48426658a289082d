//! WhatsApp Cloud API authentication templates.

use std::collections::BTreeMap;

use marque_domain::{Accepted, DeliveryError, MessageSender, OutgoingMessage, SecretString};
use marque_markets::Market;

/// The Graph API base URL the Cloud API lives under.
pub const WHATSAPP_API_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// Settings of the WhatsApp provider.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    /// `WHATSAPP_API_BASE_URL`, default [`WHATSAPP_API_BASE_URL`].
    pub base_url: String,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the business phone number's id.
    pub phone_number_id: String,
    /// `WHATSAPP_ACCESS_TOKEN` (Bearer).
    pub access_token: SecretString,
    /// `WHATSAPP_TEMPLATE_NAME`: an approved authentication template.
    pub template_name: String,
    /// Template language per market (`WHATSAPP_TEMPLATE_LANGUAGE_KG` …; default `ru` for KG,
    /// `en_US` for US).
    pub languages: BTreeMap<Market, String>,
}

/// The WhatsApp provider.
#[derive(Debug)]
pub struct WhatsApp {
    config: WhatsAppConfig,
    http: reqwest::Client,
}

impl WhatsApp {
    /// A provider sending with `http` (see [`crate::provider_client`]).
    pub fn new(config: WhatsAppConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }
}

#[async_trait::async_trait]
impl MessageSender for WhatsApp {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    async fn send(&self, _m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let _ = (&self.config, &self.http);
        Err(DeliveryError::Permanent("whatsapp: not built yet".into()))
    }
}

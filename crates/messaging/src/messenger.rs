//! Messenger login (issue 9) at the providers: the WhatsApp Cloud API and Telegram Bot API
//! webhooks (signature checks on the raw bytes, then the JSON shapes Meta and Telegram send),
//! the Telegram Login Widget check, and the text replies of both messengers.
//!
//! Sources:
//! - WhatsApp webhooks: <https://developers.facebook.com/docs/graph-api/webhooks/getting-started>
//!   (the `hub.mode` / `hub.verify_token` / `hub.challenge` handshake, and `X-Hub-Signature-256:
//!   sha256=<hex HMAC-SHA256 of the raw payload keyed by the app secret>`),
//!   <https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples> (the
//!   `entry[].changes[].value.messages[]` shape: `from`, `id`, `timestamp`, `type`,
//!   `text.body`), <https://developers.facebook.com/docs/whatsapp/cloud-api/messages/text-messages>
//!   (a text reply: `{"messaging_product":"whatsapp","to":…,"type":"text","text":{"body":…}}`).
//! - Telegram: <https://core.telegram.org/bots/api#setwebhook> (`secret_token`, sent back in
//!   `X-Telegram-Bot-Api-Secret-Token`), <https://core.telegram.org/bots/api#update>,
//!   <https://core.telegram.org/bots/api#contact>, <https://core.telegram.org/bots/api#sendmessage>
//!   with <https://core.telegram.org/bots/api#keyboardbutton> (`request_contact`),
//!   <https://core.telegram.org/bots/features#deep-linking> (`/start <parameter>`), and
//!   <https://core.telegram.org/widgets/login#checking-authorization> (the widget's hash:
//!   HMAC-SHA256 of the sorted `key=value` lines keyed by SHA-256 of the bot token).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use marque_domain::{
    Accepted, CallbackError, CallbackRequest, Channel, DeliveryError, DeliveryReport, ExposeSecret,
    Inbound, MessengerWebhook, OutgoingReply, ReplyKeyboard, ReplySender, ReportedStatus,
    SecretString, WidgetError, WidgetVerifier,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{status_error, transport_error};

type HmacSha256 = Hmac<Sha256>;

/// The Bot API base URL.
pub const TELEGRAM_BOT_API_BASE_URL: &str = "https://api.telegram.org";

/// Longest age of Login Widget data: one day, in seconds.
const WIDGET_MAX_AGE_SECONDS: i64 = 86_400;

/// Compares two byte strings in time independent of where they differ (their lengths are not
/// secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes lower- or upper-case hex.
fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The WhatsApp Cloud API webhook: `X-Hub-Signature-256` checked with `WHATSAPP_APP_SECRET`
/// before anything is parsed; text messages become [`Inbound::WhatsAppText`], everything else
/// (status updates, media, reactions) is left out. `Debug` shows no secret.
#[derive(Debug)]
pub struct WhatsAppWebhook {
    app_secret: SecretString,
    verify_token: SecretString,
}

impl WhatsAppWebhook {
    /// A checker with the app secret (`WHATSAPP_APP_SECRET`) and the subscription's verify token
    /// (`WHATSAPP_VERIFY_TOKEN`).
    pub fn new(app_secret: SecretString, verify_token: SecretString) -> Self {
        Self {
            app_secret,
            verify_token,
        }
    }

    /// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with the app secret.
    fn signed(&self, header: Option<&str>, body: &[u8]) -> bool {
        let Some(sig) = header
            .and_then(|h| h.trim().strip_prefix("sha256="))
            .and_then(hex)
        else {
            return false;
        };
        let Ok(mut mac) =
            <HmacSha256 as Mac>::new_from_slice(self.app_secret.expose_secret().as_bytes())
        else {
            return false;
        };
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig).is_ok()
    }
}

#[derive(Deserialize)]
struct WaPayload {
    #[serde(default)]
    entry: Vec<WaEntry>,
}

#[derive(Deserialize)]
struct WaEntry {
    #[serde(default)]
    changes: Vec<WaChange>,
}

#[derive(Deserialize)]
struct WaChange {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: WaValue,
}

#[derive(Deserialize, Default)]
struct WaValue {
    #[serde(default)]
    statuses: Vec<WaStatus>,
    #[serde(default)]
    messages: Vec<WaMessage>,
}

#[derive(Deserialize)]
struct WaMessage {
    #[serde(default)]
    from: String,
    #[serde(default)]
    id: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<WaText>,
}

/// A `statuses[]` entry: `{"id": "wamid…", "status": "sent|delivered|read|failed",
/// "errors": [{"code": 131026, "title": "…"}]}`
/// (<https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components>).
#[derive(Deserialize)]
struct WaStatus {
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    errors: Vec<WaError>,
}

#[derive(Deserialize)]
struct WaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: String,
}

impl WaStatus {
    /// The delivery report it is; `None` without an id.
    fn report(self) -> Option<Inbound> {
        if self.id.is_empty() {
            return None;
        }
        let status = match self.status.as_str() {
            "delivered" | "read" => ReportedStatus::Delivered,
            "failed" => ReportedStatus::Failed,
            _ => ReportedStatus::InProgress,
        };
        let error = self.errors.first().map(|e| {
            let code = e.code.map(|c| c.to_string()).unwrap_or_default();
            let text = format!("{code} {}", e.title);
            text.trim().chars().take(200).collect()
        });
        Some(Inbound::DeliveryStatus(DeliveryReport {
            provider_message_id: self.id.chars().take(200).collect(),
            status,
            error,
        }))
    }
}

#[derive(Deserialize)]
struct WaText {
    #[serde(default)]
    body: String,
}

impl MessengerWebhook for WhatsAppWebhook {
    fn channel(&self) -> Channel {
        Channel::WhatsApp
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<Vec<Inbound>, CallbackError> {
        if !self.signed(request.header("x-hub-signature-256"), request.body) {
            return Err(CallbackError::BadSignature);
        }
        let payload: WaPayload = serde_json::from_slice(request.body)
            .map_err(|e| CallbackError::Malformed(format!("whatsapp webhook: {e}")))?;
        let values: Vec<WaValue> = payload
            .entry
            .into_iter()
            .flat_map(|e| e.changes)
            .filter(|c| c.field == "messages")
            .map(|c| c.value)
            .collect();
        let mut events: Vec<Inbound> = Vec::new();
        let mut messages = Vec::new();
        for v in values {
            events.extend(v.statuses.into_iter().filter_map(WaStatus::report));
            messages.extend(v.messages);
        }
        events.extend(
            messages
                .into_iter()
                .filter(|m| m.kind == "text" && !m.id.is_empty() && !m.from.is_empty())
                .filter(|m| m.from.len() <= 20 && m.from.bytes().all(|b| b.is_ascii_digit()))
                .filter_map(|m| {
                    Some(Inbound::WhatsAppText {
                        message_id: m.id.chars().take(200).collect(),
                        from: m.from,
                        text: m.text?.body.chars().take(1000).collect(),
                    })
                }),
        );
        Ok(events)
    }

    fn verify_token_matches(&self, token: &str) -> bool {
        ct_eq(
            token.as_bytes(),
            self.verify_token.expose_secret().as_bytes(),
        )
    }
}

/// The Telegram Bot API webhook: `X-Telegram-Bot-Api-Secret-Token` must equal
/// `TELEGRAM_WEBHOOK_SECRET`; `/start` commands and contacts of private chats become events,
/// everything else is left out. `Debug` shows no secret.
#[derive(Debug)]
pub struct TelegramWebhook {
    secret: SecretString,
}

impl TelegramWebhook {
    /// A checker with the webhook's `secret_token`.
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }
}

#[derive(Deserialize)]
struct TgUpdate {
    update_id: i64,
    #[serde(default)]
    message: Option<TgMessage>,
}

#[derive(Deserialize)]
struct TgMessage {
    #[serde(default)]
    from: Option<TgUser>,
    chat: TgChat,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    contact: Option<TgContact>,
}

#[derive(Deserialize)]
struct TgUser {
    id: i64,
    #[serde(default)]
    is_bot: bool,
}

#[derive(Deserialize)]
struct TgChat {
    id: i64,
}

#[derive(Deserialize)]
struct TgContact {
    phone_number: String,
    #[serde(default)]
    user_id: Option<i64>,
}

impl MessengerWebhook for TelegramWebhook {
    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<Vec<Inbound>, CallbackError> {
        let given = request
            .header("x-telegram-bot-api-secret-token")
            .unwrap_or_default();
        if given.is_empty() || !ct_eq(given.as_bytes(), self.secret.expose_secret().as_bytes()) {
            return Err(CallbackError::BadSignature);
        }
        let update: TgUpdate = serde_json::from_slice(request.body)
            .map_err(|e| CallbackError::Malformed(format!("telegram update: {e}")))?;
        let Some(message) = update.message else {
            return Ok(Vec::new());
        };
        let Some(from) = message.from.filter(|u| !u.is_bot) else {
            return Ok(Vec::new());
        };
        if let Some(contact) = message.contact {
            return Ok(vec![Inbound::TelegramContact {
                update_id: update.update_id,
                user_id: from.id,
                chat_id: message.chat.id,
                contact_user_id: contact.user_id,
                phone_number: contact.phone_number.chars().take(32).collect(),
            }]);
        }
        let Some(text) = message.text else {
            return Ok(Vec::new());
        };
        let mut words = text.split_whitespace();
        // `/start` or `/start@bot_username`.
        let command = words.next().unwrap_or_default();
        if command != "/start" && !command.starts_with("/start@") {
            return Ok(Vec::new());
        }
        Ok(vec![Inbound::TelegramStart {
            update_id: update.update_id,
            user_id: from.id,
            chat_id: message.chat.id,
            payload: words.next().map(|w| w.chars().take(64).collect()),
        }])
    }
}

/// The Telegram Login Widget check, keyed by the bot token. `Debug` shows no token.
#[derive(Debug)]
pub struct TelegramWidget {
    bot_token: SecretString,
}

impl TelegramWidget {
    /// A checker for the widget of the bot with `bot_token` (`TELEGRAM_BOT_TOKEN`).
    pub fn new(bot_token: SecretString) -> Self {
        Self { bot_token }
    }
}

impl WidgetVerifier for TelegramWidget {
    /// The data-check string is every received field but `hash`, as `key=value`, sorted by key
    /// and joined with `\n`; its HMAC-SHA256 keyed by SHA-256 of the bot token must equal `hash`
    /// (hex), and `auth_date` (Unix seconds) must be at most a day old and not in the future
    /// beyond a minute of clock skew.
    fn verify(&self, fields: &[(String, String)], now: DateTime<Utc>) -> Result<i64, WidgetError> {
        let value = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let hash = value("hash").and_then(hex).ok_or(WidgetError::BadHash)?;
        let mut lines: Vec<String> = fields
            .iter()
            .filter(|(k, _)| k != "hash")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.sort();
        let key = Sha256::digest(self.bot_token.expose_secret().as_bytes());
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&key).map_err(|_| WidgetError::BadHash)?;
        mac.update(lines.join("\n").as_bytes());
        mac.verify_slice(&hash).map_err(|_| WidgetError::BadHash)?;
        let auth_date: i64 = value("auth_date")
            .and_then(|d| d.parse().ok())
            .ok_or(WidgetError::Malformed)?;
        let age = now.timestamp() - auth_date;
        if !(-60..=WIDGET_MAX_AGE_SECONDS).contains(&age) {
            return Err(WidgetError::Stale);
        }
        value("id")
            .and_then(|id| id.parse().ok())
            .ok_or(WidgetError::Malformed)
    }
}

/// WhatsApp text replies through the Cloud API (`POST {base}/{phone_number_id}/messages`,
/// Bearer token), with the sender settings of the delivery provider. `Debug` shows no token.
#[derive(Debug)]
pub struct WhatsAppReplies {
    base_url: String,
    phone_number_id: String,
    access_token: SecretString,
    http: reqwest::Client,
}

impl WhatsAppReplies {
    /// A sender with `WHATSAPP_API_BASE_URL`, `WHATSAPP_PHONE_NUMBER_ID` and
    /// `WHATSAPP_ACCESS_TOKEN`.
    pub fn new(
        base_url: String,
        phone_number_id: String,
        access_token: SecretString,
        http: reqwest::Client,
    ) -> Self {
        Self {
            base_url,
            phone_number_id,
            access_token,
            http,
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for WhatsAppReplies {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    async fn reply(&self, r: &OutgoingReply) -> Result<Accepted, DeliveryError> {
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": r.recipient,
            "type": "text",
            "text": {"preview_url": false, "body": r.payload.text},
        });
        let url = format!(
            "{}/{}/messages",
            self.base_url.trim_end_matches('/'),
            self.phone_number_id
        );
        let res = self
            .http
            .post(url)
            .bearer_auth(self.access_token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error("whatsapp", &e))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| transport_error("whatsapp", &e))?;
        if !status.is_success() {
            return Err(status_error("whatsapp", status, ""));
        }
        let id = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["messages"][0]["id"].as_str().map(str::to_owned));
        Ok(Accepted {
            provider_message_id: id,
        })
    }
}

/// The bot's replies through the Bot API (`POST {TELEGRAM_BOT_API_BASE_URL}/bot<token>/
/// sendMessage`). The token is part of the URL, which therefore never reaches logs or errors.
/// `Debug` shows no token.
#[derive(Debug)]
pub struct TelegramBot {
    base_url: String,
    token: SecretString,
    http: reqwest::Client,
}

impl TelegramBot {
    /// A bot with `TELEGRAM_BOT_API_BASE_URL` and `TELEGRAM_BOT_TOKEN`.
    pub fn new(base_url: String, token: SecretString, http: reqwest::Client) -> Self {
        Self {
            base_url,
            token,
            http,
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for TelegramBot {
    fn name(&self) -> &'static str {
        "telegram_bot"
    }

    /// `sendMessage` with the reply's keyboard: a one-button `ReplyKeyboardMarkup` whose button
    /// has `request_contact: true`, or `ReplyKeyboardRemove`. Errors: 429 and 5xx transient,
    /// other refusals permanent (the Bot API's `description` is kept, never the URL).
    async fn reply(&self, r: &OutgoingReply) -> Result<Accepted, DeliveryError> {
        let chat_id: i64 = r
            .recipient
            .parse()
            .map_err(|_| DeliveryError::Permanent("telegram_bot: bad chat id".into()))?;
        let mut body = json!({"chat_id": chat_id, "text": r.payload.text});
        match &r.payload.keyboard {
            ReplyKeyboard::None => {}
            ReplyKeyboard::RequestContact(label) => {
                body["reply_markup"] = json!({
                    "keyboard": [[{"text": label, "request_contact": true}]],
                    "one_time_keyboard": true,
                    "resize_keyboard": true,
                });
            }
            ReplyKeyboard::Remove => {
                body["reply_markup"] = json!({"remove_keyboard": true});
            }
        }
        let url = format!(
            "{}/bot{}/sendMessage",
            self.base_url.trim_end_matches('/'),
            self.token.expose_secret()
        );
        let res = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error("telegram_bot", &e))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| transport_error("telegram_bot", &e))?;
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if !status.is_success() || answer["ok"] != json!(true) {
            let detail = answer["description"].as_str().unwrap_or_default();
            return Err(status_error("telegram_bot", status, detail));
        }
        Ok(Accepted {
            provider_message_id: answer["result"]["message_id"]
                .as_i64()
                .map(|id| id.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn request<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> CallbackRequest<'a> {
        CallbackRequest {
            url: "https://auth.shop.example/api/v1/whatsapp/webhook",
            headers,
            body,
        }
    }

    #[test]
    fn whatsapp_signature_is_checked_before_parsing() {
        let hook = WhatsAppWebhook::new(secret("app-secret"), secret("verify"));
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"996505325311","id":"wamid.A","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"app-secret").unwrap();
        mac.update(body);
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let good = vec![("x-hub-signature-256".to_owned(), format!("sha256={sig}"))];
        let events = hook.verify(&request(&good, body)).unwrap();
        assert_eq!(events.len(), 1);
        let bad = vec![(
            "x-hub-signature-256".to_owned(),
            format!("sha256={}", "0".repeat(64)),
        )];
        assert_eq!(
            hook.verify(&request(&bad, body)),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            hook.verify(&request(&[], b"not json")),
            Err(CallbackError::BadSignature)
        );
        assert!(hook.verify_token_matches("verify"));
        assert!(!hook.verify_token_matches("verif"));
    }

    #[test]
    fn widget_hash_and_age_are_checked() {
        let w = TelegramWidget::new(secret("123:bot-token"));
        let now = Utc::now();
        let date = now.timestamp().to_string();
        let mut fields = vec![
            ("id".to_owned(), "42".to_owned()),
            ("first_name".to_owned(), "Ann".to_owned()),
            ("auth_date".to_owned(), date),
        ];
        let mut lines: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.sort();
        let key = Sha256::digest(b"123:bot-token");
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        mac.update(lines.join("\n").as_bytes());
        let hash: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fields.push(("hash".to_owned(), hash));
        assert_eq!(w.verify(&fields, now), Ok(42));
        assert_eq!(
            w.verify(&fields, now + chrono::Duration::days(2)),
            Err(WidgetError::Stale)
        );
        fields[1].1 = "Bob".to_owned();
        assert_eq!(w.verify(&fields, now), Err(WidgetError::BadHash));
    }
}

//! WhatsApp Cloud API authentication templates.
//!
//! Send: `POST {base_url}/{phone_number_id}/messages` with `Authorization: Bearer
//! {access_token}` and a JSON body naming an approved authentication template, the code given
//! twice — as the body's `{{1}}` and as the parameter of the copy-code button (a `url` button at
//! index `"0"`), as Meta documents for authentication templates:
//!
//! ```json
//! {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+996505325311",
//!  "type": "template",
//!  "template": {"name": "verification_code", "language": {"code": "ru"},
//!   "components": [
//!    {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
//!    {"type": "button", "sub_type": "url", "index": "0",
//!     "parameters": [{"type": "text", "text": "123456"}]}]}}
//! ```
//!
//! Success is `200 {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
//! "messages":[{"id":"wamid.…"}]}`; the `wamid` is the provider message id. A refusal is a Graph
//! API error `{"error":{"message","type","code","error_data":{"messaging_product","details"},
//! "error_subcode","fbtrace_id"}}`, sorted by its `code` (Meta: "build your app's error handling
//! logic around `code` values", not HTTP statuses — throttling such as 130429 comes as HTTP 400).
//!
//! Sources:
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates/auth-otp-template-messages>,
//! <https://developers.facebook.com/docs/whatsapp/business-management-api/authentication-templates/copy-code-button-authentication-templates>,
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes>,
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/reference/phone-numbers>.

use std::collections::BTreeMap;

use marque_domain::{
    Accepted, DeliveryError, ExposeSecret, MessageSender, OutgoingMessage, SecretString,
};
use marque_markets::Market;
use serde::{Deserialize, Serialize};

use crate::{status_error, transport_error};

/// The Graph API base URL the Cloud API lives under.
pub const WHATSAPP_API_BASE_URL: &str = "https://graph.facebook.com/v21.0";

/// Template language used for a market missing from [`WhatsAppConfig::languages`].
const FALLBACK_LANGUAGE: &str = "en_US";

/// Longest part of the provider's error text kept in `last_error`, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// Settings of the WhatsApp provider. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    /// `WHATSAPP_API_BASE_URL`, default [`WHATSAPP_API_BASE_URL`] (a trailing `/` is ignored;
    /// tests point it at a fake).
    pub base_url: String,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the business phone number's id (a path segment).
    pub phone_number_id: String,
    /// `WHATSAPP_ACCESS_TOKEN` (Bearer).
    pub access_token: SecretString,
    /// `WHATSAPP_TEMPLATE_NAME`: an approved authentication template (copy-code button).
    pub template_name: String,
    /// Template language per market (`WHATSAPP_TEMPLATE_LANGUAGE_KG` …; default `ru` for KG,
    /// `en_US` for US). A market missing here is sent in `en_US`.
    pub languages: BTreeMap<Market, String>,
}

/// The WhatsApp provider: one authentication-template message per code.
///
/// Errors of [`MessageSender::send`]:
/// - [`DeliveryError::Permanent`] (the outbox falls back to the next channel): 131026 (message
///   undeliverable: not a WhatsApp user, terms not accepted, app too old), 131030 (recipient
///   not in the test allow-list), invalid parameters (100, 131008, 131009), template problems
///   (132000–132015), authorisation (0, 3, 10, 190, 200–299), any other code or 4xx;
/// - [`DeliveryError::Transient`] (retried with backoff): throttling (4, 80007, 130429, 131048,
///   131056), temporary service errors (1, 2, 131000, 131016), any other 5xx or HTTP 429, and
///   requests that got no answer.
///
/// The error text keeps the Graph `code`, `message` and `details` (shortened, the code's digits
/// masked), never the token.
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

    /// The template language for `market`: its configured code, else `en_US`.
    fn language(&self, market: Market) -> &str {
        self.config
            .languages
            .get(&market)
            .map_or(FALLBACK_LANGUAGE, String::as_str)
    }
}

/// The send-message body (see the module documentation).
#[derive(Serialize)]
struct SendTemplate<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    template: Template<'a>,
}

#[derive(Serialize)]
struct Template<'a> {
    name: &'a str,
    language: TemplateLanguage<'a>,
    components: [Component<'a>; 2],
}

#[derive(Serialize)]
struct TemplateLanguage<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct Component<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'static str>,
    parameters: [TextParameter<'a>; 1],
}

#[derive(Serialize)]
struct TextParameter<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// The part of a success answer we read.
#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

/// A Graph API error answer.
#[derive(Deserialize)]
struct GraphErrorAnswer {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    code: i64,
    #[serde(default)]
    error_data: Option<GraphErrorData>,
}

#[derive(Deserialize)]
struct GraphErrorData {
    #[serde(default)]
    details: String,
}

/// Which way a Graph error code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Transient,
    Permanent,
}

/// Sorts a Graph error `code` (answered with HTTP `status`) per Meta's error-code reference:
/// throttling and temporary service errors are worth a retry; a recipient WhatsApp cannot reach,
/// a bad request, a bad template or rejected credentials are not. Codes not named fall back on
/// the status: 429 and 5xx transient, anything else permanent.
fn sort_code(code: i64, status: reqwest::StatusCode) -> Sort {
    match code {
        // Throttling: 4 app call rate, 80007 WABA rate, 130429 throughput, 131048 spam rate
        // limit, 131056 (business, consumer) pair rate limit.
        4 | 80007 | 130429 | 131048 | 131056 => Sort::Transient,
        // 1 API unknown, 2 API service (downtime/overload), 131000 something went wrong,
        // 131016 service unavailable.
        1 | 2 | 131000 | 131016 => Sort::Transient,
        // 131026 message undeliverable, 131030 recipient not in allowed list.
        131026 | 131030 => Sort::Permanent,
        // 100 invalid parameter, 131008 required parameter missing, 131009 parameter value
        // not valid.
        100 | 131008 | 131009 => Sort::Permanent,
        // Template errors: missing, paused, parameter mismatch, policy…
        132000..=132015 => Sort::Permanent,
        // 0 auth exception, 3 capability (answered 500, yet retrying cannot help), 10
        // permission denied, 190 access token expired, 200–299 API permission.
        0 | 3 | 10 | 190 | 200..=299 => Sort::Permanent,
        _ if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
            Sort::Transient
        }
        _ => Sort::Permanent,
    }
}

/// `text` shortened to [`MAX_DETAIL_CHARS`], with every occurrence of the code masked (a
/// provider's `details` may quote parameter values).
fn scrub(text: &str, code: &str) -> String {
    let masked = if code.is_empty() {
        text.to_owned()
    } else {
        text.replace(code, "******")
    };
    masked.chars().take(MAX_DETAIL_CHARS).collect()
}

/// The refusal for a non-2xx answer with `body`.
fn refusal(status: reqwest::StatusCode, body: &[u8], code: &str) -> DeliveryError {
    let Ok(GraphErrorAnswer { error }) = serde_json::from_slice::<GraphErrorAnswer>(body) else {
        // Not a Graph error (a proxy's page): sort by status alone, quoting no body.
        return status_error("whatsapp", status, "");
    };
    let details = error.error_data.map(|d| d.details).unwrap_or_default();
    let text = scrub(
        &format!(
            "HTTP {} code {}: {} {}",
            status.as_u16(),
            error.code,
            error.message,
            details
        ),
        code,
    );
    let text = format!("whatsapp: {}", text.trim_end());
    match sort_code(error.code, status) {
        Sort::Transient => DeliveryError::Transient(text),
        Sort::Permanent => DeliveryError::Permanent(text),
    }
}

#[async_trait::async_trait]
impl MessageSender for WhatsApp {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    /// Sends the configured authentication template to `m.recipient`, kept in E.164 with its
    /// `+`: Meta accepts the plus sign in `to` and recommends sending it with the country
    /// calling code, since a number without it gets the business number's country code
    /// prepended (Phone Numbers reference, "Phone Number Formats").
    ///
    /// `Ok` with the `wamid` when Meta took the message. Note that Meta may take a message and
    /// only later report it failed (131026 in a status webhook); such reports are not read
    /// here. A 2xx answer without a message id is still `Ok` (with no id): retrying would send
    /// the code twice.
    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let code = m.code.as_str();
        let body = SendTemplate {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: &m.recipient,
            kind: "template",
            template: Template {
                name: &self.config.template_name,
                language: TemplateLanguage {
                    code: self.language(m.market),
                },
                components: [
                    Component {
                        kind: "body",
                        sub_type: None,
                        index: None,
                        parameters: [TextParameter {
                            kind: "text",
                            text: code,
                        }],
                    },
                    Component {
                        kind: "button",
                        sub_type: Some("url"),
                        index: Some("0"),
                        parameters: [TextParameter {
                            kind: "text",
                            text: code,
                        }],
                    },
                ],
            },
        };
        let url = format!(
            "{}/{}/messages",
            self.config.base_url.trim_end_matches('/'),
            self.config.phone_number_id
        );
        let res = self
            .http
            .post(url)
            .bearer_auth(self.config.access_token.expose_secret())
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
            return Err(refusal(status, &bytes, code));
        }
        let id = serde_json::from_slice::<SendAnswer>(&bytes)
            .ok()
            .and_then(|a| a.messages.into_iter().next())
            .map(|sent| sent.id);
        if id.is_none() {
            tracing::warn!(
                message_id = %m.id,
                status = status.as_u16(),
                "whatsapp accepted a message without naming it"
            );
        }
        Ok(Accepted {
            provider_message_id: id,
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn codes_sort_by_code_before_status() {
        let bad = StatusCode::BAD_REQUEST;
        let err = StatusCode::INTERNAL_SERVER_ERROR;
        for c in [4, 80007, 130429, 131048, 131056, 1, 2, 131000, 131016] {
            assert_eq!(sort_code(c, bad), Sort::Transient, "{c}");
        }
        for c in [
            131026, 131030, 100, 131008, 131009, 132000, 132001, 132015, 0, 3, 10, 190, 200, 299,
        ] {
            assert_eq!(sort_code(c, err), Sort::Permanent, "{c}");
        }
        assert_eq!(sort_code(999_999, err), Sort::Transient);
        assert_eq!(
            sort_code(999_999, StatusCode::TOO_MANY_REQUESTS),
            Sort::Transient
        );
        assert_eq!(sort_code(999_999, bad), Sort::Permanent);
        assert_eq!(sort_code(132016, bad), Sort::Permanent);
    }

    #[test]
    fn error_text_masks_the_code_and_is_bounded() {
        let body = serde_json::json!({"error": {"message": "(#131009) Parameter value is not valid",
            "code": 131009, "error_data": {"details": format!("bad value 123456 {}", "x".repeat(900))}}});
        let DeliveryError::Permanent(t) = refusal(
            StatusCode::BAD_REQUEST,
            body.to_string().as_bytes(),
            "123456",
        ) else {
            panic!()
        };
        assert!(!t.contains("123456"), "{t}");
        assert!(t.contains("131009"));
        assert!(t.chars().count() < 400);
    }

    #[test]
    fn non_graph_bodies_sort_by_status() {
        assert!(matches!(
            refusal(
                StatusCode::BAD_GATEWAY,
                b"<html>bad gateway</html>",
                "123456"
            ),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            refusal(StatusCode::NOT_FOUND, b"", "123456"),
            DeliveryError::Permanent(_)
        ));
    }
}

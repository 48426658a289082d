//! Any regional SMS gateway: a JSON `POST` signed as Standard Webhooks.
//!
//! Each message is one `POST {SMS_WEBHOOK_URL}` with `Content-Type: application/json` and the
//! body
//!
//! ```json
//! {"type":"otp","id":"kg-42","market":"kg","channel":"sms","recipient":"+996505325311",
//!  "text":"Marque: ваш код 012345…","code":"012345","purpose":"login",
//!  "expires_at":"2026-12-01T12:05:00Z","language":"ru"}
//! ```
//!
//! signed as the Standard Webhooks spec says (<https://www.standardwebhooks.com/>,
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
//! `webhook-id` (the message id, the same on every retry, for the gateway's idempotency),
//! `webhook-timestamp` (unix seconds at sending) and `webhook-signature: v1,<base64 of
//! HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the base64 after `whsec_` of
//! `SMS_WEBHOOK_SECRET`. Signing is the spec's reference crate, `standardwebhooks`
//! (<https://docs.rs/standardwebhooks>), so a gateway verifying with any Standard Webhooks
//! library accepts it.

use chrono::{SecondsFormat, Utc};
use marque_domain::{
    Accepted, DeliveryError, ExposeSecret, MessageSender, OutgoingMessage, SecretString,
};
use serde::{Deserialize, Serialize};

use crate::http::{status_error, transport_error};

/// Provider name in logs, errors and the stored `provider` column.
const NAME: &str = "webhook";

/// The prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";

/// Key sizes the Standard Webhooks spec asks for, in bytes ("between 24 bytes (192 bits) and 64
/// bytes (512 bits)").
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Settings of the webhook provider. `Debug` shows neither the secret nor the URL's query or
/// credentials (a gateway may take an API key there).
#[derive(Clone)]
pub struct WebhookConfig {
    /// `SMS_WEBHOOK_URL`: absolute `http(s)` URL the messages are posted to.
    pub url: String,
    /// `SMS_WEBHOOK_SECRET`: `whsec_` followed by the standard base64 of a 24 to 64 byte key.
    pub secret: SecretString,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &shown_url(&self.url))
            .field("secret", &self.secret)
            .finish()
    }
}

/// `scheme://host[:port]/path` of `url`, without credentials, query or fragment.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "[not a URL]".to_owned(),
    }
}

/// Why [`SmsWebhook::new`] refused its settings (a start-up error). Never quotes the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookConfigError {
    /// `SMS_WEBHOOK_URL` is not an absolute `http` or `https` URL.
    Url,
    /// `SMS_WEBHOOK_SECRET` is not `whsec_` followed by the standard base64 of a 24 to 64 byte
    /// key.
    Secret,
}

impl std::fmt::Display for WebhookConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Url => "SMS_WEBHOOK_URL must be an absolute http(s) URL",
            Self::Secret => {
                "SMS_WEBHOOK_SECRET must be `whsec_` followed by the base64 of a 24 to 64 byte key"
            }
        })
    }
}

impl std::error::Error for WebhookConfigError {}

/// The webhook SMS provider.
///
/// Sorting of answers: any `2xx` → [`Accepted`], with `provider_message_id` the gateway's `id`
/// when it answers a JSON object with a string (or number) `id`, else `None`; `429` and `5xx`,
/// timeouts and connection failures → [`DeliveryError::Transient`]; any other status →
/// [`DeliveryError::Permanent`] (the shared rule, [`crate::status_error`]). Error texts carry the
/// status and a short excerpt of the gateway's answer with the recipient's number and the code
/// replaced.
pub struct SmsWebhook {
    url: reqwest::Url,
    signer: standardwebhooks::Webhook,
    http: reqwest::Client,
}

impl std::fmt::Debug for SmsWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsWebhook")
            .field("url", &shown_url(self.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl SmsWebhook {
    /// A provider posting with `http` (see [`crate::provider_client`]).
    ///
    /// Errors: [`WebhookConfigError::Url`] when `config.url` is not an absolute `http(s)` URL,
    /// [`WebhookConfigError::Secret`] when `config.secret` lacks the `whsec_` prefix, is not
    /// standard base64, or decodes to fewer than 24 or more than 64 bytes — refused at start-up
    /// rather than at the first send.
    pub fn new(config: WebhookConfig, http: reqwest::Client) -> Result<Self, WebhookConfigError> {
        let url = reqwest::Url::parse(&config.url).map_err(|_| WebhookConfigError::Url)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(WebhookConfigError::Url);
        }
        let signer = signer(config.secret.expose_secret())?;
        Ok(Self { url, signer, http })
    }
}

/// The signer for a `whsec_…` secret, its key size checked.
fn signer(secret: &str) -> Result<standardwebhooks::Webhook, WebhookConfigError> {
    use base64::Engine as _;
    let encoded = secret
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(WebhookConfigError::Secret)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| WebhookConfigError::Secret)?;
    if !KEY_BYTES.contains(&key.len()) {
        return Err(WebhookConfigError::Secret);
    }
    standardwebhooks::Webhook::from_bytes(key).map_err(|_| WebhookConfigError::Secret)
}

/// The JSON body, in this field order.
#[derive(Serialize)]
struct OtpEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    market: &'static str,
    channel: &'static str,
    recipient: &'a str,
    text: &'a str,
    code: &'a str,
    purpose: &'static str,
    expires_at: String,
    language: &'static str,
}

impl<'a> OtpEvent<'a> {
    fn of(m: &'a OutgoingMessage) -> Self {
        Self {
            kind: "otp",
            id: &m.id,
            market: m.market.code(),
            channel: m.channel.as_str(),
            recipient: &m.recipient,
            text: &m.text,
            code: m.code.as_str(),
            purpose: m.purpose.as_str(),
            expires_at: m.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            language: m.language.code(),
        }
    }
}

/// The gateway's answer, when it is a JSON object with an `id`.
#[derive(Deserialize)]
struct GatewayAnswer {
    id: Option<serde_json::Value>,
}

#[async_trait::async_trait]
impl MessageSender for SmsWebhook {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let body = serde_json::to_vec(&OtpEvent::of(m))
            .map_err(|e| DeliveryError::Permanent(format!("webhook: body not encodable: {e}")))?;
        let timestamp = Utc::now().timestamp();
        let signature = self
            .signer
            .sign(&m.id, timestamp, &body)
            .map_err(|e| DeliveryError::Permanent(format!("webhook: not signable: {e}")))?;
        let res = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &m.id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(NAME, &e))?;
        let status = res.status();
        if status.is_success() {
            // Taken: a body we cannot read only loses the gateway's id, never re-sends.
            let id = res
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<GatewayAnswer>(&b).ok())
                .and_then(|a| a.id)
                .and_then(|id| match id {
                    serde_json::Value::String(s) if !s.is_empty() => Some(s),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
            return Ok(Accepted {
                provider_message_id: id,
            });
        }
        let body = res.text().await.unwrap_or_default();
        Err(status_error(NAME, status, &scrub(&one_line(&body), m)))
    }
}

/// The first [`EXCERPT_CHARS`] characters of `body` on one line (whitespace runs as one space).
fn one_line(body: &str) -> String {
    let head: String = body.chars().take(EXCERPT_CHARS).collect();
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How much of a gateway's error answer is looked at (the shared rule keeps at most 300
/// characters of it).
const EXCERPT_CHARS: usize = 1000;

/// `detail` with the recipient's number (with and without `+`) and the code replaced: a gateway
/// may echo the request in its error, and error texts end up in `last_error` and logs.
fn scrub(detail: &str, m: &OutgoingMessage) -> String {
    let mut out = detail.to_owned();
    let digits = m.recipient.trim_start_matches('+');
    if !digits.is_empty() {
        out = out
            .replace(digits, "[recipient]")
            .replace("+[recipient]", "[recipient]");
    }
    let code = m.code.as_str();
    if !code.is_empty() {
        out = out.replace(code, "[code]");
    }
    out
}

#[cfg(test)]
mod tests {

    use marque_markets::{Market, OtpPurpose};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;

    /// The secret of the Standard Webhooks reference test vector (a 24-byte key).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /// Another valid secret (the one of the `standardwebhooks` crate's own tests).
    const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn message(market: Market) -> OutgoingMessage {
        marque_testkit::outgoing_sms(market, OtpPurpose::DeleteAccount)
    }

    fn config(url: String, secret: &str) -> WebhookConfig {
        WebhookConfig {
            url,
            secret: SecretString::from(secret.to_owned()),
        }
    }

    fn provider(server: &MockServer) -> SmsWebhook {
        SmsWebhook::new(
            config(format!("{}/sms/send?key=k1", server.uri()), SECRET),
            crate::provider_client().unwrap(),
        )
        .unwrap()
    }

    /// What a gateway does: verify the request with the Standard Webhooks crate's own `verify`.
    fn verifies_with(secret: &'static str) -> impl Fn(&Request) -> bool + Send + Sync {
        move |r: &Request| {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(&r.body, &r.headers)
                .is_ok()
        }
    }

    /// A gateway that answers `answer` only to a signed JSON `POST` on its path.
    async fn gateway(server: &MockServer, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/sms/send"))
            .and(header("content-type", "application/json"))
            .and(verifies_with(SECRET))
            .respond_with(answer)
            .expect(1)
            .mount(server)
            .await;
    }

    async fn only_request(server: &MockServer) -> Request {
        let mut requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        requests.remove(0)
    }

    #[tokio::test]
    async fn posts_the_signed_russian_otp_event_and_reads_the_gateway_id() {
        let server = MockServer::start().await;
        gateway(
            &server,
            ResponseTemplate::new(202).set_body_json(serde_json::json!({
                "id": "gw-7f3a9c", "status": "queued"
            })),
        )
        .await;

        let accepted = provider(&server).send(&message(Market::Kg)).await.unwrap();

        assert_eq!(accepted.provider_message_id.as_deref(), Some("gw-7f3a9c"));
        let r = only_request(&server).await;
        assert_eq!(r.url.query(), Some("key=k1"));
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            concat!(
                r#"{"type":"otp","id":"kg-42","market":"kg","channel":"sms","#,
                r#""recipient":"+996505325311","#,
                r#""text":"Marque: ваш код 012345. Никому его не сообщайте.","#,
                r#""code":"012345","purpose":"delete_account","#,
                r#""expires_at":"2026-12-01T12:05:00Z","language":"ru"}"#
            )
        );
        let h = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("webhook-id"), "kg-42");
        let ts: i64 = h("webhook-timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - ts).abs() < 60);
        let sig = h("webhook-signature");
        assert!(sig.starts_with("v1,"), "{sig}");
        // The signature is HMAC-SHA256 of "id.timestamp.body", as the crate computes it.
        let expected = standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .sign("kg-42", ts, &r.body)
            .unwrap();
        assert_eq!(sig, expected);
    }

    #[tokio::test]
    async fn english_event_and_an_empty_answer_give_no_provider_id() {
        let server = MockServer::start().await;
        gateway(&server, ResponseTemplate::new(200)).await;

        let accepted = provider(&server).send(&message(Market::Us)).await.unwrap();

        assert_eq!(accepted.provider_message_id, None);
        let r = only_request(&server).await;
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "otp",
                "id": "us-42",
                "market": "us",
                "channel": "sms",
                "recipient": "+12025550143",
                "text": "Marque: your code is 012345. Do not share it.",
                "code": "012345",
                "purpose": "delete_account",
                "expires_at": "2026-12-01T12:05:00Z",
                "language": "en"
            })
        );
    }

    #[tokio::test]
    async fn the_same_message_keeps_its_webhook_id_across_retries() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(verifies_with(SECRET))
            .respond_with(ResponseTemplate::new(503))
            .expect(2)
            .mount(&server)
            .await;
        let p = provider(&server);
        let m = message(Market::Kg);
        assert!(p.send(&m).await.is_err());
        assert!(p.send(&m).await.is_err());
        let ids: Vec<String> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["kg-42", "kg-42"]);
    }

    #[tokio::test]
    async fn a_gateway_with_another_secret_would_not_verify() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        provider(&server).send(&message(Market::Kg)).await.unwrap();
        let r = only_request(&server).await;
        assert!(verifies_with(SECRET)(&r));
        assert!(!verifies_with(OTHER_SECRET)(&r));
        // Nor does a body changed on the way.
        let mut tampered = r.clone();
        tampered.body = String::from_utf8(r.body.clone())
            .unwrap()
            .replace("012345", "999999")
            .into_bytes();
        assert!(!verifies_with(SECRET)(&tampered));
    }

    #[tokio::test]
    async fn client_errors_are_permanent_without_the_number_or_code() {
        let server = MockServer::start().await;
        gateway(
            &server,
            ResponseTemplate::new(422).set_body_json(serde_json::json!({
                "error": "invalid recipient +996505325311 for text with 012345"
            })),
        )
        .await;
        let err = provider(&server)
            .send(&message(Market::Kg))
            .await
            .unwrap_err();
        let DeliveryError::Permanent(text) = err else {
            panic!("expected permanent, got {err:?}")
        };
        assert!(text.starts_with("webhook: HTTP 422"), "{text}");
        assert!(text.contains("invalid recipient [recipient]"), "{text}");
        assert!(!text.contains("505325311"), "{text}");
        assert!(!text.contains("012345"), "{text}");
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_transient() {
        for status in [429, 500, 503] {
            let server = MockServer::start().await;
            gateway(
                &server,
                ResponseTemplate::new(status).set_body_string("busy"),
            )
            .await;
            let err = provider(&server)
                .send(&message(Market::Us))
                .await
                .unwrap_err();
            assert_eq!(
                err,
                DeliveryError::Transient(format!("webhook: HTTP {status} busy"))
            );
        }
    }

    #[tokio::test]
    async fn connection_failure_is_transient() {
        // A port nothing listens on (bound, then released; wiremock's servers are pooled and
        // keep listening when dropped).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/sms/send", listener.local_addr().unwrap());
        drop(listener);
        let p = SmsWebhook::new(config(url, SECRET), crate::provider_client().unwrap()).unwrap();
        assert_eq!(
            p.send(&message(Market::Us)).await.unwrap_err(),
            DeliveryError::Transient("webhook: connection failed".into())
        );
    }

    #[test]
    fn our_secret_parsing_signs_the_standard_webhooks_test_vector() {
        // The reference vector of the Standard Webhooks test suites: this secret, id, timestamp
        // and payload are signed `v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=` (checked apart
        // from this code with Python's hmac).
        let signed = signer(SECRET)
            .unwrap()
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn malformed_secrets_and_urls_are_refused_at_start_up() {
        let new = |url: &str, secret: &str| {
            SmsWebhook::new(
                config(url.to_owned(), secret),
                crate::provider_client().unwrap(),
            )
            .map(|_| ())
        };
        let ok_url = "https://sms.example.kg/send";
        assert_eq!(new(ok_url, SECRET), Ok(()));
        for bad in [
            "",
            "whsec_",
            // no prefix
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            // not base64
            "whsec_not*base64*at*all!",
            // 12 bytes: shorter than the spec's 24
            "whsec_AAAAAAAAAAAAAAAA",
            // 65 bytes: longer than 64
            &format!("whsec_{}", "A".repeat(88)),
        ] {
            assert_eq!(new(ok_url, bad), Err(WebhookConfigError::Secret), "{bad}");
        }
        for bad in [
            "",
            "sms.example.kg/send",
            "ftp://sms.example.kg/",
            "mailto:x@y",
        ] {
            assert_eq!(new(bad, SECRET), Err(WebhookConfigError::Url), "{bad}");
        }
        assert!(!WebhookConfigError::Secret.to_string().contains("MfKQ"));
    }

    #[test]
    fn debug_shows_neither_secret_nor_url_credentials() {
        let cfg = config(
            "https://user:pa55@sms.example.kg:8443/send?api_key=s3cr3t".into(),
            SECRET,
        );
        let p = SmsWebhook::new(cfg.clone(), crate::provider_client().unwrap()).unwrap();
        for shown in [format!("{cfg:?}"), format!("{p:?}")] {
            assert!(!shown.contains("MfKQ9r8G"), "{shown}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(!shown.contains("pa55"), "{shown}");
            assert!(
                shown.contains("https://sms.example.kg:8443/send"),
                "{shown}"
            );
        }
        assert_eq!(p.name(), "webhook");
    }
}

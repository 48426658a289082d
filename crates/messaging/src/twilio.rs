//! Twilio Programmable Messaging (SMS).
//!
//! Send: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `Body`,
//! `From` or `MessagingServiceSid`, and `StatusCallback`; HTTP Basic with the account SID and
//! auth token. A created message is answered `201` with the Message resource as JSON, whose `sid`
//! (`SM…`) names it in later status callbacks; a refusal is answered with Twilio's error JSON
//! `{"code":21211,"message":"…","more_info":"…","status":400}`.
//! Docs: <https://www.twilio.com/docs/messaging/api/message-resource>,
//! <https://www.twilio.com/docs/usage/twilios-response>,
//! <https://www.twilio.com/docs/api/errors>.
//!
//! Status callbacks are form-encoded `POST`s signed with `X-Twilio-Signature`:
//! base64(HMAC-SHA1(auth token, full URL + each POST field, sorted by name, as name then value)).
//! Docs: <https://www.twilio.com/docs/usage/webhooks/webhooks-security>,
//! <https://www.twilio.com/docs/messaging/guides/track-outbound-message-status>,
//! <https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks>.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use marque_domain::{
    Accepted, CallbackError, CallbackRequest, DeliveryCallback, DeliveryError, DeliveryReport,
    ExposeSecret, MessageSender, OutgoingMessage, ReportedStatus, SecretString,
};
use serde::Deserialize;
use sha1::Sha1;

use crate::http::{status_error, transport_error};

/// Twilio's public API base URL.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// Provider name in logs, errors and the stored `provider` column.
const NAME: &str = "twilio";

/// The request header carrying a callback's signature (headers reach us in lower case).
const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Twilio error codes that no retry can cure: the number is invalid or unreachable for SMS, or
/// the recipient has opted out. Any other 4xx is permanent as well; these are listed so that the
/// rule does not hang on the HTTP status Twilio pairs them with.
///
/// - 21211 invalid `To` number: <https://www.twilio.com/docs/api/errors/21211>
/// - 21408 permission to send to this region not enabled:
///   <https://www.twilio.com/docs/api/errors/21408>
/// - 21610 recipient unsubscribed (replied STOP): <https://www.twilio.com/docs/api/errors/21610>
/// - 21612 the `To` number is not reachable from this sender:
///   <https://www.twilio.com/docs/api/errors/21612>
/// - 21614 `To` is not a mobile number: <https://www.twilio.com/docs/api/errors/21614>
const PERMANENT_CODES: [u32; 5] = [21211, 21408, 21610, 21612, 21614];

/// Twilio's "Too Many Requests" error code (sent with HTTP 429): retried with backoff.
/// <https://www.twilio.com/docs/api/errors/20429>
const TOO_MANY_REQUESTS_CODE: u32 = 20429;

/// Whom a Twilio message is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioFrom {
    /// A sender number (E.164) or alphanumeric sender id (`TWILIO_FROM`), sent as `From`.
    Number(String),
    /// A Messaging Service (`TWILIO_MESSAGING_SERVICE_SID`, `MG…`), which picks the sender; sent
    /// as `MessagingServiceSid`.
    MessagingService(String),
}

/// Settings of the Twilio provider. `Debug` shows the auth token as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// API base URL (`TWILIO_BASE_URL`, default [`TWILIO_BASE_URL`]; tests point it at a fake).
    pub base_url: String,
    /// `TWILIO_ACCOUNT_SID` (`AC…`): the Basic-auth user and a segment of the send URL.
    pub account_sid: String,
    /// `TWILIO_AUTH_TOKEN`: the Basic-auth password and the key of callback signatures.
    pub auth_token: SecretString,
    /// Sender.
    pub from: TwilioFrom,
    /// The `StatusCallback` URL (`PUBLIC_BASE_URL` + `/api/v1/delivery/twilio/status`), when a
    /// public base URL is configured; Twilio then posts status changes there, signed.
    pub status_callback: Option<String>,
}

/// The Twilio SMS provider: one `POST …/Messages.json` per message.
///
/// Sorting of answers (<https://www.twilio.com/docs/api/errors>):
/// - `2xx` → [`Accepted`] with the Message `sid` (`SM…`);
/// - error codes 21211, 21408, 21610, 21612, 21614 and any other `4xx` →
///   [`DeliveryError::Permanent`];
/// - error code 20429, HTTP 429, `5xx`, timeouts and connection failures →
///   [`DeliveryError::Transient`].
///
/// A `2xx` whose body has no readable `sid` is still [`Accepted`] (with no id, and a warning
/// logged): Twilio created the message, and an error would send it twice.
///
/// Error texts carry the HTTP status, Twilio's code and message (with the recipient's number and
/// the code replaced), never the auth token. `Debug` redacts the auth token.
#[derive(Debug)]
pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
    /// `{base}/2010-04-01/Accounts/{sid}/Messages.json`; `None` when `base_url` is not a URL
    /// (every send then fails permanently, naming the setting).
    endpoint: Option<reqwest::Url>,
}

impl Twilio {
    /// A provider sending with `http` (see [`crate::provider_client`]).
    ///
    /// The send URL is built once here, the account SID as one escaped path segment. A
    /// `base_url` that is not an absolute `http(s)` URL is not refused here (the signature stays
    /// infallible) but makes every send a [`DeliveryError::Permanent`] naming `TWILIO_BASE_URL`.
    pub fn new(config: TwilioConfig, http: reqwest::Client) -> Self {
        let endpoint = messages_url(&config.base_url, &config.account_sid);
        Self {
            config,
            http,
            endpoint,
        }
    }
}

/// `{base}/2010-04-01/Accounts/{sid}/Messages.json`, keeping any path prefix of `base`.
fn messages_url(base: &str, account_sid: &str) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(base).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "2010-04-01",
        "Accounts",
        account_sid,
        "Messages.json",
    ]);
    Some(url)
}

/// The part of a created Message resource we read (`201 Created`).
#[derive(Deserialize)]
struct Created {
    sid: String,
}

/// Twilio's error body: `{"code":21211,"message":"…","more_info":"…","status":400}`.
/// <https://www.twilio.com/docs/usage/twilios-response>
#[derive(Deserialize)]
struct TwilioErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

#[async_trait::async_trait]
impl MessageSender for Twilio {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let Some(endpoint) = &self.endpoint else {
            return Err(DeliveryError::Permanent(
                "twilio: TWILIO_BASE_URL is not an http(s) URL".into(),
            ));
        };
        let mut form: Vec<(&str, &str)> = vec![("To", &m.recipient), ("Body", &m.text)];
        match &self.config.from {
            TwilioFrom::Number(from) => form.push(("From", from)),
            TwilioFrom::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        if let Some(callback) = &self.config.status_callback {
            form.push(("StatusCallback", callback));
        }
        let res = self
            .http
            .post(endpoint.clone())
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose_secret()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(NAME, &e))?;
        let status = res.status();
        if status.is_success() {
            // Twilio created the message: whatever happens to its body now, it is sent, and
            // an error here would send it twice.
            let sid = match res.bytes().await {
                Ok(body) => serde_json::from_slice::<Created>(&body).ok().map(|c| c.sid),
                Err(_) => None,
            };
            if sid.is_none() {
                tracing::warn!(
                    provider = NAME,
                    message_id = %m.id,
                    status = status.as_u16(),
                    "twilio accepted a message without a readable sid"
                );
            }
            return Ok(Accepted {
                provider_message_id: sid,
            });
        }
        // An unreadable error body still leaves the status to sort by.
        let body = res.text().await.unwrap_or_default();
        Err(refusal(status, &body, m))
    }
}

/// Sorts a non-2xx answer: by Twilio's error code first, then by HTTP status.
fn refusal(status: reqwest::StatusCode, body: &str, m: &OutgoingMessage) -> DeliveryError {
    let parsed = serde_json::from_str::<TwilioErrorBody>(body).ok();
    let code = parsed.as_ref().and_then(|e| e.code);
    let detail = match &parsed {
        Some(e) => format!(
            "code {}: {}",
            code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            e.message.as_deref().unwrap_or("")
        ),
        // Not Twilio's JSON (a proxy's page): a one-line excerpt of its start.
        None => body
            .chars()
            .take(1000)
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    };
    let detail = scrub(&detail, m);
    let sorted = status_error(NAME, status, &detail);
    match (code, sorted) {
        (Some(c), DeliveryError::Transient(text)) if PERMANENT_CODES.contains(&c) => {
            DeliveryError::Permanent(text)
        }
        (Some(TOO_MANY_REQUESTS_CODE), DeliveryError::Permanent(text)) => {
            DeliveryError::Transient(text)
        }
        (_, sorted) => sorted,
    }
}

/// `detail` with the recipient's number (with and without `+`) and the code replaced: error
/// texts end up in `last_error` and logs, where neither belongs. Twilio's 21211 message quotes
/// the `To` number.
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

/// Checks Twilio status callbacks (`POST /api/v1/delivery/twilio/status`) and reads the one
/// report each carries.
///
/// The signature is checked first, on the raw form body and [`CallbackRequest::url`] (which must
/// be the URL exactly as given to Twilio in `StatusCallback`, query included): base64 of
/// HMAC-SHA1 keyed by the auth token over the URL followed by every POST field, sorted by name
/// (then by value), each as name then value, with no separators; compared in constant time.
/// Only form-encoded callbacks are understood (SMS status callbacks are; the `bodySHA256`
/// variant of JSON webhooks is not used for them).
/// <https://www.twilio.com/docs/usage/webhooks/webhooks-security>
///
/// Then the fields (<https://www.twilio.com/docs/messaging/guides/track-outbound-message-status>):
/// `MessageSid` names the message; `MessageStatus` `delivered` → [`ReportedStatus::Delivered`],
/// `undelivered` or `failed` → [`ReportedStatus::Failed`] with `ErrorCode` (e.g. `30003`) as the
/// error, anything else (`queued`, `sending`, `sent`, `accepted`, `scheduled`, …) →
/// [`ReportedStatus::InProgress`].
///
/// `Debug` redacts the auth token.
#[derive(Debug, Clone)]
pub struct TwilioStatusCallback {
    auth_token: SecretString,
}

impl TwilioStatusCallback {
    /// A checker keyed with the account's auth token (`TWILIO_AUTH_TOKEN`).
    pub fn new(auth_token: SecretString) -> Self {
        Self { auth_token }
    }

    /// Whether `signature` (the header's base64 text) is Twilio's signature of `url` and the
    /// form `fields`. Constant-time in the compared MAC.
    fn signature_matches(
        &self,
        url: &str,
        fields: &[(Cow<'_, str>, Cow<'_, str>)],
        signature: &str,
    ) -> bool {
        let Ok(claimed) = BASE64.decode(signature.trim()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(self.auth_token.expose_secret().as_bytes())
        else {
            return false;
        };
        mac.update(url.as_bytes());
        let mut sorted: Vec<&(Cow<'_, str>, Cow<'_, str>)> = fields.iter().collect();
        sorted.sort();
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac.verify_slice(&claimed).is_ok()
    }
}

impl DeliveryCallback for TwilioStatusCallback {
    fn provider(&self) -> &'static str {
        NAME
    }

    fn verify(&self, r: &CallbackRequest<'_>) -> Result<Vec<DeliveryReport>, CallbackError> {
        let signature = r
            .header(SIGNATURE_HEADER)
            .ok_or(CallbackError::BadSignature)?;
        let fields: Vec<(Cow<'_, str>, Cow<'_, str>)> =
            url::form_urlencoded::parse(r.body).collect();
        if !self.signature_matches(r.url, &fields, signature) {
            return Err(CallbackError::BadSignature);
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let sid = field("MessageSid")
            .ok_or_else(|| CallbackError::Malformed("MessageSid missing".into()))?;
        let status = field("MessageStatus")
            .ok_or_else(|| CallbackError::Malformed("MessageStatus missing".into()))?;
        let (status, error) = match status.to_ascii_lowercase().as_str() {
            "delivered" => (ReportedStatus::Delivered, None),
            "undelivered" | "failed" => (
                ReportedStatus::Failed,
                field("ErrorCode").map(str::to_owned),
            ),
            _ => (ReportedStatus::InProgress, None),
        };
        Ok(vec![DeliveryReport {
            provider_message_id: sid.to_owned(),
            status,
            error,
        }])
    }
}

#[cfg(test)]
mod tests {

    use marque_markets::{Market, OtpPurpose};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "f00dfeedc0ffee0123456789abcdef00";
    /// `Basic ` + base64("AC0123456789abcdef0123456789abcdef:f00dfeedc0ffee0123456789abcdef00"),
    /// computed apart from the code under test (`printf … | base64`).
    const BASIC: &str = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpmMDBkZmVlZGMwZmZlZTAxMjM0NTY3ODlhYmNkZWYwMA==";
    const MESSAGES_PATH: &str =
        "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
    const CALLBACK: &str = "https://auth.example.kg/api/v1/delivery/twilio/status";

    fn message(market: Market) -> OutgoingMessage {
        marque_testkit::outgoing_sms(market, OtpPurpose::Login)
    }

    fn config(server: &MockServer, from: TwilioFrom, callback: Option<&str>) -> TwilioConfig {
        TwilioConfig {
            base_url: server.uri(),
            account_sid: SID.into(),
            auth_token: SecretString::from(TOKEN.to_owned()),
            from,
            status_callback: callback.map(str::to_owned),
        }
    }

    fn twilio(server: &MockServer, from: TwilioFrom, callback: Option<&str>) -> Twilio {
        Twilio::new(
            config(server, from, callback),
            crate::provider_client().unwrap(),
        )
    }

    /// Twilio's `201 Created` answer: the Message resource, as the API reference shows it.
    fn created_body() -> serde_json::Value {
        serde_json::json!({
            "account_sid": SID,
            "api_version": "2010-04-01",
            "body": "Marque: your code is 012345. Do not share it.",
            "date_created": "Tue, 01 Dec 2026 12:00:00 +0000",
            "date_sent": null,
            "date_updated": "Tue, 01 Dec 2026 12:00:00 +0000",
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": "+15557122661",
            "messaging_service_sid": null,
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
            "status": "queued",
            "subresource_uris": {
                "media": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f/Media.json"
            },
            "to": "+12025550143",
            "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f.json"
        })
    }

    /// Twilio's error body, as <https://www.twilio.com/docs/usage/twilios-response> shows it.
    fn error_body(code: u32, message: &str, status: u16) -> serde_json::Value {
        serde_json::json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status
        })
    }

    /// The form fields of the one request the fake received, sorted by name.
    async fn received_form(server: &MockServer) -> Vec<(String, String)> {
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(&requests[0].body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        fields.sort();
        fields
    }

    /// A fake that answers only the real path with the right Basic credentials and a form body.
    async fn fake(server: &MockServer, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .and(header("authorization", BASIC))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .respond_with(answer)
            .expect(1)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn sends_the_russian_text_from_a_number_and_returns_the_sid() {
        let server = MockServer::start().await;
        fake(
            &server,
            ResponseTemplate::new(201).set_body_json(created_body()),
        )
        .await;
        let t = twilio(&server, TwilioFrom::Number("Marque".into()), Some(CALLBACK));

        let accepted = t.send(&message(Market::Kg)).await.unwrap();

        assert_eq!(
            accepted.provider_message_id.as_deref(),
            Some("SM1f0e8ae6ade43cb3c0ce4525424e404f")
        );
        let expected = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            received_form(&server).await,
            expected(&[
                ("Body", "Marque: ваш код 012345. Никому его не сообщайте."),
                ("From", "Marque"),
                ("StatusCallback", CALLBACK),
                ("To", "+996505325311"),
            ])
        );
    }

    #[tokio::test]
    async fn sends_the_english_text_through_a_messaging_service_without_callback() {
        let server = MockServer::start().await;
        fake(
            &server,
            ResponseTemplate::new(201).set_body_json(created_body()),
        )
        .await;
        let service = "MG9752274e9e519418a7406176694466fa";
        let t = twilio(&server, TwilioFrom::MessagingService(service.into()), None);

        t.send(&message(Market::Us)).await.unwrap();

        let form = received_form(&server).await;
        assert_eq!(
            form,
            vec![
                (
                    "Body".to_owned(),
                    "Marque: your code is 012345. Do not share it.".to_owned()
                ),
                ("MessagingServiceSid".to_owned(), service.to_owned()),
                ("To".to_owned(), "+12025550143".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn invalid_number_21211_is_permanent_with_code_and_message_but_not_the_number() {
        let server = MockServer::start().await;
        fake(
            &server,
            ResponseTemplate::new(400).set_body_json(error_body(
                21211,
                "The 'To' number +996505325311 is not a valid phone number.",
                400,
            )),
        )
        .await;
        let t = twilio(&server, TwilioFrom::Number("+15557122661".into()), None);

        let err = t.send(&message(Market::Kg)).await.unwrap_err();

        let DeliveryError::Permanent(text) = err else {
            panic!("expected permanent, got {err:?}")
        };
        assert!(text.contains("HTTP 400"), "{text}");
        assert!(text.contains("21211"), "{text}");
        assert!(text.contains("is not a valid phone number"), "{text}");
        assert!(!text.contains("505325311"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }

    #[tokio::test]
    async fn unsubscribed_recipient_21610_is_permanent() {
        let server = MockServer::start().await;
        fake(
            &server,
            ResponseTemplate::new(400).set_body_json(error_body(
                21610,
                "Attempt to send to unsubscribed recipient",
                400,
            )),
        )
        .await;
        let t = twilio(&server, TwilioFrom::Number("+15557122661".into()), None);
        let err = t.send(&message(Market::Us)).await.unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Permanent(t) if t.contains("21610")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn too_many_requests_20429_is_transient() {
        let server = MockServer::start().await;
        fake(
            &server,
            ResponseTemplate::new(429).set_body_json(error_body(20429, "Too Many Requests", 429)),
        )
        .await;
        let t = twilio(&server, TwilioFrom::Number("+15557122661".into()), None);
        let err = t.send(&message(Market::Us)).await.unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Transient(t) if t.contains("20429")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn service_unavailable_503_is_transient() {
        let server = MockServer::start().await;
        fake(
            &server,
            ResponseTemplate::new(503).set_body_json(error_body(20503, "Service Unavailable", 503)),
        )
        .await;
        let t = twilio(&server, TwilioFrom::Number("+15557122661".into()), None);
        let err = t.send(&message(Market::Us)).await.unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Transient(t) if t.contains("HTTP 503")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn refused_credentials_are_permanent() {
        // No mock matches credentials other than ours: a wrong token is what Twilio answers 401.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_json(error_body(
                20003,
                "Authenticate",
                401,
            )))
            .mount(&server)
            .await;
        let t = twilio(&server, TwilioFrom::Number("+15557122661".into()), None);
        let err = t.send(&message(Market::Us)).await.unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Permanent(t) if t.contains("20003")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn connection_failure_is_transient() {
        let cfg = TwilioConfig {
            base_url: closed_port_url(),
            account_sid: SID.into(),
            auth_token: SecretString::from(TOKEN.to_owned()),
            from: TwilioFrom::Number("+15557122661".into()),
            status_callback: None,
        };
        let t = Twilio::new(cfg, crate::provider_client().unwrap());
        let err = t.send(&message(Market::Us)).await.unwrap_err();
        assert_eq!(
            err,
            DeliveryError::Transient("twilio: connection failed".into())
        );
    }

    /// `http://127.0.0.1:{port}` of a port nothing listens on (bound, then released; wiremock's
    /// own servers are pooled and keep listening when dropped).
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    #[test]
    fn error_codes_decide_before_http_status() {
        let m = message(Market::Us);
        let body = |code: u32| error_body(code, "x", 0).to_string();
        let s = |n: u16| reqwest::StatusCode::from_u16(n).unwrap();
        for code in PERMANENT_CODES {
            assert!(matches!(
                refusal(s(400), &body(code), &m),
                DeliveryError::Permanent(_)
            ));
            // Even if Twilio paired it with a status that alone would be retried.
            assert!(matches!(
                refusal(s(503), &body(code), &m),
                DeliveryError::Permanent(_)
            ));
        }
        assert!(matches!(
            refusal(s(400), &body(20429), &m),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            refusal(s(404), &body(20404), &m),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            refusal(s(502), "<html>Bad Gateway</html>", &m),
            DeliveryError::Transient(_)
        ));
    }

    #[test]
    fn bad_base_url_fails_every_send_permanently() {
        assert!(messages_url("not a url", SID).is_none());
        assert!(messages_url("ftp://example.com", SID).is_none());
        assert_eq!(
            messages_url("https://api.twilio.com", SID)
                .unwrap()
                .as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        // A hostile SID stays one path segment.
        assert_eq!(
            messages_url("https://proxy.example/twilio/", "AC1/../x?y")
                .unwrap()
                .as_str(),
            "https://proxy.example/twilio/2010-04-01/Accounts/AC1%2F..%2Fx%3Fy/Messages.json"
        );
    }

    #[test]
    fn debug_never_shows_the_auth_token() {
        let cfg = TwilioConfig {
            base_url: TWILIO_BASE_URL.into(),
            account_sid: SID.into(),
            auth_token: SecretString::from(TOKEN.to_owned()),
            from: TwilioFrom::Number("+15557122661".into()),
            status_callback: None,
        };
        let provider = Twilio::new(cfg.clone(), crate::provider_client().unwrap());
        let callback = TwilioStatusCallback::new(SecretString::from(TOKEN.to_owned()));
        for shown in [
            format!("{cfg:?}"),
            format!("{provider:?}"),
            format!("{callback:?}"),
        ] {
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(!shown.contains("f00dfeed"), "{shown}");
        }
        assert_eq!(provider.name(), "twilio");
        assert_eq!(callback.provider(), "twilio");
    }

    // ---- status callbacks ----

    /// Twilio's signature of `url` + `fields`, computed here from the documented algorithm with
    /// the MAC primitives directly (not through the code under test).
    fn twilio_signature(token: &str, url: &str, fields: &[(&str, &str)]) -> String {
        let mut sorted = fields.to_vec();
        sorted.sort();
        let mut data = url.to_owned();
        for (k, v) in sorted {
            data.push_str(k);
            data.push_str(v);
        }
        let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(data.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    fn form(fields: &[(&str, &str)]) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
            .into_bytes()
    }

    fn checker() -> TwilioStatusCallback {
        TwilioStatusCallback::new(SecretString::from(TOKEN.to_owned()))
    }

    fn headers(signature: &str) -> Vec<(String, String)> {
        vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("x-twilio-signature".into(), signature.into()),
        ]
    }

    /// A status callback as Twilio posts it for an SMS (fields of the guide
    /// <https://www.twilio.com/docs/messaging/guides/track-outbound-message-status>).
    fn status_fields<'a>(status: &'a str, error_code: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        // In Twilio's posting order, not sorted.
        let mut f = vec![
            ("SmsSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", "+12025550143"),
            ("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
            ("AccountSid", SID),
            ("From", "+15557122661"),
            ("ApiVersion", "2010-04-01"),
        ];
        if let Some(code) = error_code {
            f.push(("ErrorCode", code));
        }
        f
    }

    fn signed_report(
        status: &str,
        error_code: Option<&str>,
    ) -> Result<Vec<DeliveryReport>, CallbackError> {
        let fields = status_fields(status, error_code);
        let body = form(&fields);
        let headers = headers(&twilio_signature(TOKEN, CALLBACK, &fields));
        checker().verify(&CallbackRequest {
            url: CALLBACK,
            headers: &headers,
            body: &body,
        })
    }

    #[test]
    fn twilio_documented_example_signature_verifies() {
        // The worked example of Twilio's request-validation docs: auth token `12345`, this URL and
        // these POST fields are signed `RSOYDt4T1cUTdK1PDd93/VVr8B8=` (as given in twilio-php's
        // "Validate Incoming Requests", <https://twilio-php-atbaker.readthedocs.io/en/latest/usage/validation.html>,
        // the example of the former <https://www.twilio.com/docs/security> page).
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        // Posted in another order than the sorted one signed.
        let body = form(&[
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
        ]);
        let c = TwilioStatusCallback::new(SecretString::from("12345".to_owned()));
        let req = |sig: &str| {
            let headers = headers(sig);
            c.verify(&CallbackRequest {
                url,
                headers: &headers,
                body: &body,
            })
        };
        // Signed, but a voice request has no MessageSid: past the signature, refused as malformed.
        assert_eq!(
            req("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            Err(CallbackError::Malformed("MessageSid missing".into()))
        );
        assert_eq!(
            req("RSOYDt4T1cUTdK1PDd93/VVr8B9="),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn delivered_callback_is_a_delivered_report() {
        assert_eq!(
            signed_report("delivered", None).unwrap(),
            vec![DeliveryReport {
                provider_message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".into(),
                status: ReportedStatus::Delivered,
                error: None,
            }]
        );
    }

    #[test]
    fn undelivered_and_failed_callbacks_carry_the_error_code() {
        for status in ["undelivered", "failed"] {
            assert_eq!(
                signed_report(status, Some("30003")).unwrap(),
                vec![DeliveryReport {
                    provider_message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".into(),
                    status: ReportedStatus::Failed,
                    error: Some("30003".into()),
                }],
                "{status}"
            );
        }
    }

    #[test]
    fn sent_and_other_statuses_are_in_progress() {
        for status in [
            "sent",
            "queued",
            "sending",
            "accepted",
            "scheduled",
            "read-ish",
        ] {
            let reports = signed_report(status, None).unwrap();
            assert_eq!(reports.len(), 1);
            assert_eq!(reports[0].status, ReportedStatus::InProgress, "{status}");
            assert_eq!(reports[0].error, None);
        }
    }

    #[test]
    fn wrong_signature_is_refused() {
        let fields = status_fields("delivered", None);
        let body = form(&fields);
        let other_token = twilio_signature("another-accounts-token", CALLBACK, &fields);
        let other_url = twilio_signature(TOKEN, "https://evil.example/status", &fields);
        for sig in [
            other_token.as_str(),
            other_url.as_str(),
            "",
            "not base64!",
            "AAAA",
        ] {
            let headers = headers(sig);
            assert_eq!(
                checker().verify(&CallbackRequest {
                    url: CALLBACK,
                    headers: &headers,
                    body: &body,
                }),
                Err(CallbackError::BadSignature),
                "{sig}"
            );
        }
    }

    #[test]
    fn missing_signature_header_is_refused() {
        let fields = status_fields("delivered", None);
        let body = form(&fields);
        let headers = vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        assert_eq!(
            checker().verify(&CallbackRequest {
                url: CALLBACK,
                headers: &headers,
                body: &body,
            }),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn tampered_body_is_refused() {
        let fields = status_fields("undelivered", Some("30003"));
        let headers = headers(&twilio_signature(TOKEN, CALLBACK, &fields));
        let tampered = status_fields("delivered", None);
        let added = {
            let mut f = fields.clone();
            f.push(("Extra", "1"));
            f
        };
        for body in [form(&tampered), form(&added), Vec::new()] {
            assert_eq!(
                checker().verify(&CallbackRequest {
                    url: CALLBACK,
                    headers: &headers,
                    body: &body,
                }),
                Err(CallbackError::BadSignature)
            );
        }
    }

    #[test]
    fn signed_callback_without_message_sid_is_malformed() {
        let fields = [("MessageStatus", "delivered"), ("To", "+12025550143")];
        let body = form(&fields);
        let headers = headers(&twilio_signature(TOKEN, CALLBACK, &fields));
        assert_eq!(
            checker().verify(&CallbackRequest {
                url: CALLBACK,
                headers: &headers,
                body: &body,
            }),
            Err(CallbackError::Malformed("MessageSid missing".into()))
        );
    }

    #[test]
    fn hostile_bodies_do_not_panic() {
        let c = checker();
        for body in [&b"%%%=%zz&&=&"[..], b"\xff\xfe=\x00", b"MessageSid"] {
            let headers = headers("RSOYDt4T1cUTdK1PDd93/VVr8B8=");
            assert_eq!(
                c.verify(&CallbackRequest {
                    url: CALLBACK,
                    headers: &headers,
                    body,
                }),
                Err(CallbackError::BadSignature)
            );
        }
    }
}

//! Telegram Gateway API: verification codes to any number registered on Telegram.
//!
//! Send: `POST {base_url}/sendVerificationMessage` with `Authorization: Bearer {token}` and a
//! JSON body (the Gateway takes a query string, form or JSON alike; JSON keeps `ttl` an
//! integer):
//!
//! ```json
//! {"phone_number": "+996505325311", "code": "123456", "ttl": 300,
//!  "callback_url": "https://auth.example/api/v1/delivery/telegram/report"}
//! ```
//!
//! `phone_number` is E.164; `code` our own 6 digits (the Gateway takes 4–8); `ttl` the seconds
//! until the code expires, clamped to the 30–3600 the Gateway allows (a message not delivered
//! within `ttl` is deleted and its fee refunded); `callback_url` only when configured. The
//! answer always has `ok`: `{"ok":true,"result":RequestStatus}` (whose `request_id` names the
//! message in delivery reports) or `{"ok":false,"error":"PHONE_NUMBER_INVALID"}`.
//!
//! Delivery reports are `POST`ed to `callback_url` as a `RequestStatus` JSON, with headers
//! `X-Request-Timestamp` (Unix seconds) and `X-Request-Signature`: the hex HMAC-SHA-256 of
//! `timestamp + "\n" + raw body`, keyed by the SHA-256 hash of the API token.
//!
//! Source: <https://core.telegram.org/gateway/api> (sendVerificationMessage, checkSendAbility,
//! RequestStatus, DeliveryStatus, "Report delivery", "Checking report integrity"; `ttl` range
//! and the `delivered`/`expired` statuses per its changes of February 26, 2025).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use marque_domain::{
    Accepted, CallbackError, CallbackRequest, Clock, DeliveryCallback, DeliveryError,
    DeliveryReport, ExposeSecret, MessageSender, OutgoingMessage, ReportedStatus, SecretString,
    SystemClock,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{status_error, transport_error};

/// The Gateway API base URL.
pub const TELEGRAM_GATEWAY_BASE_URL: &str = "https://gatewayapi.telegram.org";

/// Shortest `ttl` the Gateway accepts, in seconds.
const MIN_TTL_SECONDS: i64 = 30;
/// Longest `ttl` the Gateway accepts, in seconds.
const MAX_TTL_SECONDS: i64 = 3600;

/// Largest distance between a report's `X-Request-Timestamp` and our clock, in seconds, either
/// way. The Gateway stamps each submission (retries included) when it sends it, so a genuine
/// report is seconds old; five minutes absorbs clock skew and slow networks, while bounding
/// how long a captured report could be replayed (and a replay only repeats a status already
/// applied).
const MAX_REPORT_SKEW_SECONDS: u64 = 300;

/// Longest part of the provider's error text kept in `last_error`, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// Settings of the Telegram Gateway provider. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct TelegramGatewayConfig {
    /// `TELEGRAM_GATEWAY_BASE_URL`, default [`TELEGRAM_GATEWAY_BASE_URL`] (a trailing `/` is
    /// ignored; tests point it at a fake).
    pub base_url: String,
    /// `TELEGRAM_GATEWAY_TOKEN` (Bearer), also the key of delivery-report signatures.
    pub token: SecretString,
    /// The `callback_url` (`PUBLIC_BASE_URL` + `/api/v1/delivery/telegram/report`), when a
    /// public base URL is configured; HTTPS, at most 256 bytes (the Gateway's limits).
    pub callback_url: Option<String>,
}

/// The Telegram Gateway provider: one `sendVerificationMessage` per code.
///
/// It does not call `checkSendAbility` first. That method only tells in advance what
/// `sendVerificationMessage` tells anyway — a number that cannot receive is refused with an
/// error and nothing is charged — and confirming ability is itself charged (free to redeem
/// once with its `request_id`). Calling it would double the round trips of every code, and a
/// transient failure between the two calls would make the retry pay a second check.
///
/// Errors of [`MessageSender::send`]:
/// - [`DeliveryError::Transient`] (retried with backoff): `FLOOD_WAIT…` and other
///   flood/too-many-requests/timeout/internal errors, HTTP 429 and 5xx, requests that got no
///   answer;
/// - [`DeliveryError::Permanent`] (the outbox falls back to the next channel): everything else —
///   a number that cannot receive (`PHONE_NUMBER_INVALID`, or whatever the Gateway answers for
///   a number not on Telegram: the docs name no such error, so any error not known to be
///   passing counts as permanent), rejected credentials (`ACCESS_TOKEN_INVALID`), an empty
///   balance (`BALANCE_NOT_ENOUGH`), parameters refused.
///
/// The error text keeps the Gateway's error string and the HTTP status, never the token.
pub struct TelegramGateway {
    config: TelegramGatewayConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TelegramGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramGateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TelegramGateway {
    /// A provider sending with `http` (see [`crate::provider_client`]), timing `ttl` by the
    /// system clock.
    pub fn new(config: TelegramGatewayConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same provider timing `ttl` (seconds until the code expires) by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The `sendVerificationMessage` parameters we pass.
#[derive(Serialize)]
struct SendVerification<'a> {
    phone_number: &'a str,
    code: &'a str,
    ttl: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
}

/// The envelope of every Gateway answer.
#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<RequestStatusId>,
    #[serde(default)]
    error: Option<String>,
}

/// The part of a `RequestStatus` a send answer needs.
#[derive(Deserialize)]
struct RequestStatusId {
    #[serde(default)]
    request_id: Option<String>,
}

/// `ttl` for a code expiring at `expires_at`: whole seconds from `now`, clamped to the
/// Gateway's 30–3600.
fn ttl_seconds(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> i64 {
    (expires_at - now)
        .num_seconds()
        .clamp(MIN_TTL_SECONDS, MAX_TTL_SECONDS)
}

/// Whether a Gateway error string names a passing condition (flood control, overload).
fn is_passing(error: &str) -> bool {
    let e = error.to_ascii_uppercase();
    [
        "FLOOD",
        "TOO_MANY",
        "TIMEOUT",
        "TIMED_OUT",
        "INTERNAL",
        "TRY_AGAIN",
        "UNAVAILABLE",
    ]
    .iter()
    .any(|p| e.contains(p))
}

/// The refusal `{"ok":false,"error":error}` answered with HTTP `status`.
fn refusal(status: reqwest::StatusCode, error: &str, code: &str) -> DeliveryError {
    let mut error: String = error.chars().take(MAX_DETAIL_CHARS).collect();
    if !code.is_empty() {
        error = error.replace(code, "******");
    }
    let text = format!("telegram: HTTP {} {error}", status.as_u16());
    if is_passing(&error)
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        DeliveryError::Transient(text)
    } else {
        DeliveryError::Permanent(text)
    }
}

#[async_trait::async_trait]
impl MessageSender for TelegramGateway {
    fn name(&self) -> &'static str {
        "telegram"
    }

    /// Sends `m.code` to `m.recipient` with `ttl` derived from `m.expires_at`.
    ///
    /// `Ok` with the `request_id` when the Gateway took the message. A 2xx answer that cannot
    /// be read is still `Ok` (with no id): retrying would send (and pay for) the code twice.
    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let code = m.code.as_str();
        let body = SendVerification {
            phone_number: &m.recipient,
            code,
            ttl: ttl_seconds(self.clock.now(), m.expires_at),
            callback_url: self.config.callback_url.as_deref(),
        };
        let url = format!(
            "{}/sendVerificationMessage",
            self.config.base_url.trim_end_matches('/')
        );
        let res = self
            .http
            .post(url)
            .bearer_auth(self.config.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error("telegram", &e))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| transport_error("telegram", &e))?;
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(answer) if answer.ok && status.is_success() => {
                let id = answer.result.and_then(|r| r.request_id);
                if id.is_none() {
                    tracing::warn!(message_id = %m.id, "telegram accepted a message without a request_id");
                }
                Ok(Accepted {
                    provider_message_id: id,
                })
            }
            Ok(Envelope {
                error: Some(error), ..
            }) => Err(refusal(status, &error, code)),
            _ if status.is_success() => {
                tracing::warn!(message_id = %m.id, "telegram answered 2xx with a body not understood");
                Ok(Accepted::default())
            }
            _ => Err(status_error("telegram", status, "")),
        }
    }
}

/// Checks Telegram Gateway delivery reports (`POST /api/v1/delivery/telegram/report`).
///
/// A report is accepted only when `X-Request-Signature` is the hex (either case) HMAC-SHA-256
/// of `X-Request-Timestamp + "\n" + raw body` keyed by SHA-256 of the API token (compared in
/// constant time), and the timestamp is within 5 minutes of the clock, either way; otherwise
/// [`CallbackError::BadSignature`]. The body, a `RequestStatus`, is then read:
/// `delivery_status.status` `sent` → [`ReportedStatus::InProgress`], `delivered` and `read` →
/// [`ReportedStatus::Delivered`], `expired` and `revoked` → [`ReportedStatus::Failed`] (with
/// the status as error). A signed report without `delivery_status` yields no report;
/// a body that is not a `RequestStatus`, or a status not listed, is
/// [`CallbackError::Malformed`].
#[derive(Clone)]
pub struct TelegramReportCallback {
    token: SecretString,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TelegramReportCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramReportCallback")
            .finish_non_exhaustive()
    }
}

impl TelegramReportCallback {
    /// A checker keyed with the Gateway API token, judging timestamps by the system clock.
    pub fn new(token: SecretString) -> Self {
        Self::with_clock(token, Arc::new(SystemClock))
    }

    /// A checker keyed with the Gateway API token, judging timestamps by `clock`.
    pub fn with_clock(token: SecretString, clock: Arc<dyn Clock>) -> Self {
        Self { token, clock }
    }

    /// Whether `request` carries a genuine, fresh signature.
    fn signature_holds(&self, request: &CallbackRequest<'_>) -> bool {
        let (Some(timestamp), Some(signature)) = (
            request.header("x-request-timestamp"),
            request.header("x-request-signature"),
        ) else {
            return false;
        };
        let Some(signature) = decode_hex(signature.trim()) else {
            return false;
        };
        let key = Sha256::digest(self.token.expose_secret().as_bytes());
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return false;
        };
        mac.update(timestamp.as_bytes());
        mac.update(b"\n");
        mac.update(request.body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&signature).is_err() {
            return false;
        }
        let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
            return false;
        };
        self.clock
            .now()
            .timestamp()
            .checked_sub(sent_at)
            .is_some_and(|skew| skew.unsigned_abs() <= MAX_REPORT_SKEW_SECONDS)
    }
}

/// Hex to bytes; `None` for an odd length or a non-hex character.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// A report body: a `RequestStatus`.
#[derive(Deserialize)]
struct Report {
    request_id: String,
    #[serde(default)]
    delivery_status: Option<ReportDelivery>,
}

#[derive(Deserialize)]
struct ReportDelivery {
    status: String,
}

impl DeliveryCallback for TelegramReportCallback {
    fn provider(&self) -> &'static str {
        "telegram"
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<Vec<DeliveryReport>, CallbackError> {
        if !self.signature_holds(request) {
            return Err(CallbackError::BadSignature);
        }
        let report: Report = serde_json::from_slice(request.body)
            .map_err(|_| CallbackError::Malformed("not a RequestStatus".into()))?;
        let Some(delivery) = report.delivery_status else {
            return Ok(Vec::new());
        };
        let (status, error) = match delivery.status.as_str() {
            "sent" => (ReportedStatus::InProgress, None),
            "delivered" | "read" => (ReportedStatus::Delivered, None),
            "expired" | "revoked" => (ReportedStatus::Failed, Some(delivery.status.clone())),
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(CallbackError::Malformed(format!(
                    "unknown delivery status {shown:?}"
                )));
            }
        };
        Ok(vec![DeliveryReport {
            provider_message_id: report.request_id,
            status,
            error,
        }])
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn ttl_is_seconds_to_expiry_within_the_gateway_range() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(ttl_seconds(now, now + Duration::seconds(300)), 300);
        assert_eq!(ttl_seconds(now, now + Duration::milliseconds(299_900)), 299);
        assert_eq!(ttl_seconds(now, now + Duration::seconds(5)), 30);
        assert_eq!(ttl_seconds(now, now - Duration::seconds(5)), 30);
        assert_eq!(ttl_seconds(now, now + Duration::hours(3)), 3600);
    }

    #[test]
    fn gateway_errors_sort() {
        let bad = StatusCode::BAD_REQUEST;
        for e in ["FLOOD_WAIT_17", "TOO_MANY_REQUESTS", "INTERNAL_ERROR"] {
            assert!(
                matches!(refusal(bad, e, "123456"), DeliveryError::Transient(_)),
                "{e}"
            );
        }
        for e in [
            "PHONE_NUMBER_INVALID",
            "PHONE_NUMBER_NOT_FOUND",
            "ACCESS_TOKEN_INVALID",
            "BALANCE_NOT_ENOUGH",
            "CODE_INVALID",
        ] {
            assert!(
                matches!(refusal(bad, e, "123456"), DeliveryError::Permanent(_)),
                "{e}"
            );
        }
        assert!(matches!(
            refusal(StatusCode::TOO_MANY_REQUESTS, "SOMETHING", "123456"),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, "SOMETHING", "123456"),
            DeliveryError::Transient(_)
        ));
        let DeliveryError::Permanent(t) = refusal(bad, "CODE 123456 REFUSED", "123456") else {
            panic!()
        };
        assert!(!t.contains("123456"));
    }

    #[test]
    fn hex_decoding_refuses_anything_but_hex() {
        assert_eq!(decode_hex("00ffA0"), Some(vec![0, 255, 160]));
        assert_eq!(decode_hex(""), Some(vec![]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }
}

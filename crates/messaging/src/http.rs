//! What every HTTP provider shares: one client with bounded timeouts, and the rule that sorts a
//! provider's answer into sent, retry or give up.

use std::time::Duration;

use marque_domain::DeliveryError;

/// Longest wait for a provider's answer; a slower one counts as a transient failure (retried).
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest part of a provider's error body kept in `last_error`, in characters.
const MAX_BODY_CHARS: usize = 300;

/// An HTTP client for providers: rustls, [`PROVIDER_TIMEOUT`] per request, 5 s to connect.
///
/// Errors: only when the TLS backend cannot start (reported at start-up).
pub fn provider_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(PROVIDER_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("marque-auth/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A request that never got an answer (connect refused, timeout, reset): transient. The URL is
/// left out of the text (it may carry an account id).
pub fn transport_error(provider: &str, e: &reqwest::Error) -> DeliveryError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    DeliveryError::Transient(format!("{provider}: {kind}"))
}

/// The default sorting of a non-2xx answer: 429 and 5xx are transient (retried with backoff),
/// any other status is permanent. `detail` (the provider's error code or message) is kept,
/// shortened, for `last_error`.
pub fn status_error(provider: &str, status: reqwest::StatusCode, detail: &str) -> DeliveryError {
    let detail: String = detail.chars().take(MAX_BODY_CHARS).collect();
    let text = format!("{provider}: HTTP {} {detail}", status.as_u16());
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        DeliveryError::Transient(text)
    } else {
        DeliveryError::Permanent(text)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retried_other_refusals_are_not() {
        for s in [429, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(matches!(
                status_error("x", s, ""),
                DeliveryError::Transient(_)
            ));
        }
        for s in [400, 401, 403, 404, 422] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(matches!(
                status_error("x", s, ""),
                DeliveryError::Permanent(_)
            ));
        }
        let long = "e".repeat(1000);
        let DeliveryError::Permanent(t) = status_error("x", StatusCode::BAD_REQUEST, &long) else {
            panic!()
        };
        assert!(t.len() < 400);
    }
}

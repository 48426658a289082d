//! The CAPTCHA port (issue 12, item 14): with a provider configured, send-code requires a token
//! the client got from the provider's widget, checked with the provider before any code is
//! issued. Implemented in `marque-messaging` (Cloudflare Turnstile, hCaptcha siteverify).

/// Why a token could not be checked (the provider did not answer usefully). Distinct from a
/// refused token, which is `Ok(false)`.
#[derive(Debug, thiserror::Error)]
#[error("captcha provider unavailable: {0}")]
pub struct CaptchaUnavailable(pub String);

/// A CAPTCHA provider's token check.
#[async_trait::async_trait]
pub trait CaptchaVerifier: Send + Sync {
    /// Provider name for logs (`turnstile`, `hcaptcha`).
    fn name(&self) -> &'static str;

    /// Whether the provider accepts `token`, solved by the client at `remote_ip`.
    async fn verify(
        &self,
        token: &str,
        remote_ip: Option<&str>,
    ) -> Result<bool, CaptchaUnavailable>;
}

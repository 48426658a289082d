//! CAPTCHA token checks at the provider's siteverify endpoint (issue 12, item 14).
//!
//! Cloudflare Turnstile and hCaptcha speak the same protocol: `POST` a form-encoded body with
//! `secret`, `response` (the widget's token) and optionally `remoteip`; the JSON answer has
//! `success: true|false` and `error-codes`. Docs:
//! <https://developers.cloudflare.com/turnstile/get-started/server-side-validation/>,
//! <https://docs.hcaptcha.com/#verify-the-user-response-server-side>.

use std::time::Duration;

use marque_domain::{CaptchaUnavailable, CaptchaVerifier, ExposeSecret, SecretString};
use serde::Deserialize;

/// Cloudflare Turnstile's siteverify URL.
pub const TURNSTILE_VERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";
/// hCaptcha's siteverify URL.
pub const HCAPTCHA_VERIFY_URL: &str = "https://api.hcaptcha.com/siteverify";

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaProvider {
    /// Cloudflare Turnstile.
    Turnstile,
    /// hCaptcha.
    HCaptcha,
}

impl CaptchaProvider {
    /// Name for logs and settings (`turnstile`, `hcaptcha`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::HCaptcha => "hcaptcha",
        }
    }

    /// The provider's public siteverify URL.
    pub fn default_verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => TURNSTILE_VERIFY_URL,
            Self::HCaptcha => HCAPTCHA_VERIFY_URL,
        }
    }
}

/// A siteverify client.
pub struct SiteVerify {
    provider: CaptchaProvider,
    url: String,
    secret: SecretString,
    http: reqwest::Client,
}

impl std::fmt::Debug for SiteVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteVerify")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The part of the answer we read.
#[derive(Deserialize)]
struct Answer {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

impl SiteVerify {
    /// A client of `provider` at `url` (its public endpoint unless a test or a proxy says
    /// otherwise) with the site's `secret`; each check gives up after `timeout`.
    pub fn new(
        provider: CaptchaProvider,
        url: Option<&str>,
        secret: SecretString,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent("marque-auth")
            .build()?;
        Ok(Self {
            provider,
            url: url.unwrap_or(provider.default_verify_url()).to_owned(),
            secret,
            http,
        })
    }
}

#[async_trait::async_trait]
impl CaptchaVerifier for SiteVerify {
    fn name(&self) -> &'static str {
        self.provider.name()
    }

    async fn verify(
        &self,
        token: &str,
        remote_ip: Option<&str>,
    ) -> Result<bool, CaptchaUnavailable> {
        let mut form = vec![("secret", self.secret.expose_secret()), ("response", token)];
        if let Some(ip) = remote_ip {
            form.push(("remoteip", ip));
        }
        let unavailable = |e: reqwest::Error| CaptchaUnavailable(e.without_url().to_string());
        let res = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(unavailable)?;
        let status = res.status();
        if !status.is_success() {
            return Err(CaptchaUnavailable(format!("siteverify answered {status}")));
        }
        let answer: Answer = res.json().await.map_err(unavailable)?;
        if !answer.success {
            // A misconfigured secret is ours to fix, not the client's: say so in the log.
            let ours = answer
                .error_codes
                .iter()
                .any(|c| c.contains("secret") || c == "internal-error");
            if ours {
                return Err(CaptchaUnavailable(format!(
                    "siteverify refused our request: {}",
                    answer.error_codes.join(", ")
                )));
            }
            tracing::debug!(provider = self.provider.name(), codes = ?answer.error_codes, "captcha token refused");
        }
        Ok(answer.success)
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    async fn client(server: &MockServer, provider: CaptchaProvider) -> SiteVerify {
        SiteVerify::new(
            provider,
            Some(&format!("{}/siteverify", server.uri())),
            SecretString::from("0x4AAAAAAA-secret".to_owned()),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn accepted_token_sends_the_form_the_providers_read() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/siteverify"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string_contains("secret=0x4AAAAAAA-secret"))
            .and(body_string_contains("response=tok%2Ben+1"))
            .and(body_string_contains("remoteip=203.0.113.7"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "success": true,
                "challenge_ts": "2026-12-01T12:00:00.000Z",
                "hostname": "shop.example",
                "error-codes": [],
                "action": "login",
                "cdata": ""
            })))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server, CaptchaProvider::Turnstile).await;
        assert!(c.verify("tok+en 1", Some("203.0.113.7")).await.unwrap());
    }

    #[tokio::test]
    async fn refused_token_is_false() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "success": false,
                "error-codes": ["invalid-input-response"]
            })))
            .mount(&server)
            .await;
        let c = client(&server, CaptchaProvider::HCaptcha).await;
        assert!(!c.verify("forged", None).await.unwrap());
        assert_eq!(c.name(), "hcaptcha");
    }

    #[tokio::test]
    async fn provider_trouble_is_unavailable_not_a_verdict() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string_contains("response=down"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("response=badsecret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "success": false,
                "error-codes": ["invalid-input-secret"]
            })))
            .mount(&server)
            .await;
        let c = client(&server, CaptchaProvider::Turnstile).await;
        assert!(c.verify("down", None).await.is_err());
        assert!(c.verify("badsecret", None).await.is_err());
    }

    #[test]
    fn default_urls() {
        assert_eq!(
            CaptchaProvider::Turnstile.default_verify_url(),
            "https://challenges.cloudflare.com/turnstile/v0/siteverify"
        );
        assert_eq!(
            CaptchaProvider::HCaptcha.default_verify_url(),
            "https://api.hcaptcha.com/siteverify"
        );
    }
}

//! Request and response bodies, in the shapes the product's existing clients read.

use chrono::{DateTime, SecondsFormat, Utc};
use marque_domain::User;
use marque_markets::{Market, PhoneNumber};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Formats a timestamp as RFC 3339 in UTC with whole seconds (`2024-01-15T10:00:00Z`).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Market code as it appears in JSON (`kg`, `us`); documents `marque_markets::Market`, which
/// stays free of HTTP concerns.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum MarketCode {
    /// Kyrgyzstan.
    Kg,
    /// United States.
    Us,
}

/// `POST /api/v1/auth/send-code` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendCodeRequest {
    /// Phone number, international (`+996505325311`, `+1 (212) 555-0100`) or, with an
    /// `X-Market` header, national (`0505 325 311`, `(212) 555-0100`).
    #[schema(example = "+996505325311")]
    pub phone_number: String,
    /// The token of the CAPTCHA widget (Cloudflare Turnstile or hCaptcha), required when the
    /// service has `CAPTCHA_PROVIDER` set (`captcha_required` without it, `captcha_invalid` when
    /// the provider refuses it); ignored otherwise.
    #[serde(default)]
    #[schema(example = "0.zrSnRHO7h0HwSjSCU8oyzbjEtD8p", max_length = 2048)]
    pub captcha_token: Option<String>,
    /// What the code is for: `login` (default) or `delete_account` (the step-up code of
    /// `DELETE /api/v1/auth/account`: needs the account's bearer token, and `phone_number` must
    /// be the account's own number). A code works only for its purpose.
    #[serde(default)]
    #[schema(example = "login")]
    pub purpose: Option<String>,
    /// Where to send the code: `sms`, `whatsapp` or `telegram`. Default: the market's first
    /// channel (`CHANNELS_{MARKET}`). A channel the market does not offer →
    /// 422 `channel_not_available`. If the channel fails for good (the number is not on
    /// Telegram, not a WhatsApp user), the same code goes out on the market's next channel.
    #[serde(default)]
    #[schema(example = "sms")]
    pub channel: Option<String>,
}

/// A code was sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SendCodeResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text in the market's language.
    pub message: String,
    /// The number in the market's display format, e.g. `+996 505 325 311`.
    #[schema(example = "+996 505 325 311")]
    pub phone_number: String,
    /// Market code (`kg`, `us`).
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// Language of the market (`ru`, `en`).
    #[schema(example = "ru")]
    pub language: String,
    /// Minutes until the code expires.
    #[schema(example = 10)]
    pub expires_in_minutes: i64,
    /// Unguessable id of this code (22 base64url characters, 128 random bits). Send it back with
    /// the code: then only requests carrying it can use up the code, so strangers guessing at the
    /// number cannot burn it.
    #[schema(example = "q3Jx0b5ZbqzQyGg1bT8l9w")]
    pub challenge_id: String,
    /// What the code is for (`login`, `delete_account`).
    #[schema(example = "login")]
    pub purpose: String,
    /// The channel the code goes out on first (`sms`, `whatsapp`, `telegram`);
    /// `GET /api/v1/auth/challenges/{challenge_id}` tells whether it fell back to another.
    #[schema(example = "sms")]
    pub channel: String,
}

/// Delivery channel as it appears in JSON.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ChannelName {
    /// Text message.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// Telegram.
    Telegram,
}

/// Delivery state as it appears in JSON.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryStatusName {
    /// Waiting in the outbox (or being retried).
    Queued,
    /// Taken by the provider; no delivery report (yet).
    Sent,
    /// The provider reported it delivered to the phone.
    Delivered,
    /// Every channel failed, it expired undelivered, or the provider reported it undeliverable.
    Failed,
}

/// `GET /api/v1/auth/challenges/{challenge_id}`: how a code's delivery stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChallengeStatusResponse {
    /// The channel in use now (after any fallback).
    #[schema(value_type = ChannelName, example = "sms")]
    pub channel: String,
    /// `queued`, `sent`, `delivered` or `failed`.
    #[schema(value_type = DeliveryStatusName, example = "sent")]
    pub status: String,
    /// The channel first tried, when the code went out on another one instead ("we sent it by
    /// SMS instead"); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ChannelName>, example = "telegram")]
    pub fallback_from: Option<String>,
}

/// `POST /api/v1/auth/verify-code` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyCodeRequest {
    /// The number the code was sent to (same formats as send-code).
    #[schema(example = "+996505325311")]
    pub phone_number: String,
    /// The 6-digit code.
    #[schema(example = "123456")]
    pub verification_code: String,
    /// The `challenge_id` send-code returned. Optional unless the server sets
    /// `REQUIRE_CHALLENGE_ID=true`; when given, the code is checked on that challenge only.
    #[serde(default)]
    #[schema(example = "q3Jx0b5ZbqzQyGg1bT8l9w")]
    pub challenge_id: Option<String>,
}

/// A successful login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyCodeResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text in the market's language.
    pub message: String,
    /// JWT access token (EdDSA, RFC 9068 `at+jwt`) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 1800)]
    pub expires_in: i64,
    /// User id within the market.
    pub user_id: i64,
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// Whether this login created the account.
    pub is_new_user: bool,
    /// Opaque refresh token (`mrt_…`) for `POST /api/v1/auth/refresh`; store it securely.
    pub refresh_token: String,
    /// Seconds until the refresh token expires (30 days by default).
    #[schema(example = 2592000)]
    pub refresh_expires_in: i64,
}

impl VerifyCodeResponse {
    /// The answer to a sign-in (verify-code, the Telegram widget), in the user's market's
    /// language.
    pub fn signed_in(login: marque_domain::LoginSuccess) -> Self {
        Self::signed_in_saying(login, marque_markets::MessageKey::PhoneVerified)
    }

    /// [`VerifyCodeResponse::signed_in`] with another message (email sign-in).
    pub fn signed_in_saying(
        login: marque_domain::LoginSuccess,
        message: marque_markets::MessageKey,
    ) -> Self {
        let market = login.user.market();
        Self {
            success: true,
            message: marque_markets::text(message, market.language()).to_owned(),
            access_token: login.access_token,
            token_type: "bearer".to_owned(),
            expires_in: login.expires_in,
            user_id: login.user.id.0,
            market,
            is_new_user: login.is_new_user,
            refresh_token: login.refresh_token,
            refresh_expires_in: login.refresh_expires_in,
        }
    }
}

/// `POST /api/v1/auth/refresh` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// New tokens; the presented refresh token no longer works.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefreshResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text.
    pub message: String,
    /// New access token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token to use next time.
    pub refresh_token: String,
    /// Seconds until it expires.
    pub refresh_expires_in: i64,
    /// User id within the market.
    pub user_id: i64,
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
}

/// `POST /api/v1/auth/logout` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutQuery {
    /// `local` (default): this session; `global`: every session of the user; `others`: every
    /// session but this one.
    pub scope: Option<String>,
}

/// Sessions ended.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogoutResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text.
    pub message: String,
    /// How many sessions ended.
    pub sessions_ended: u64,
}

/// One active session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionDto {
    /// Session id (for `DELETE /api/v1/auth/sessions/{id}`).
    pub id: String,
    /// Sign-in time, RFC 3339 UTC.
    pub created_at: String,
    /// Last sign-in or refresh, RFC 3339 UTC.
    pub last_seen_at: String,
    /// When it ends unless refreshed, RFC 3339 UTC.
    pub expires_at: String,
    /// `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// Client network at sign-in, truncated for privacy (`203.0.113.0/24`, `2001:db8:1::/48`).
    pub client_ip: Option<String>,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

/// The user's active sessions, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionsResponse {
    /// Always `true`.
    pub success: bool,
    /// Sessions.
    pub sessions: Vec<SessionDto>,
}

/// Truncates an IP address to its network (/24 for IPv4, /48 for IPv6) so the session list
/// shows where a sign-in came from without storing-grade precision being displayed.
pub fn truncate_ip(ip: &str) -> Option<String> {
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let prefix = if ip.is_ipv4() { 24 } else { 48 };
    ipnet::IpNet::new(ip, prefix)
        .ok()
        .map(|n| n.trunc().to_string())
}

/// `DELETE /api/v1/auth/account` body: a fresh code sent to the account's own number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// The 6-digit code from `send-code` with `purpose: delete_account` for the account's phone
    /// number (a sign-in code is refused). Required for an account with a phone number.
    #[serde(default)]
    #[schema(example = "123456")]
    pub verification_code: Option<String>,
    /// The account's password: the step-up of an account made with an email address that has
    /// no phone number (issue 10), instead of a code.
    #[serde(default)]
    pub password: Option<String>,
    /// The `challenge_id` that send-code returned (as in verify-code).
    #[serde(default)]
    #[schema(example = "q3Jx0b5ZbqzQyGg1bT8l9w")]
    pub challenge_id: Option<String>,
}

/// A JSON Web Key Set (RFC 7517 §5): `{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "…",
/// "kid": "…", "use": "sig", "alg": "EdDSA"}]}`: the current key and any retired ones still accepted.
#[derive(Debug, ToSchema)]
pub struct JwksDocument {
    /// Public keys.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// A user's profile.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileResponse {
    /// User id within the market.
    pub id: i64,
    /// E.164; `null` for an account made with an email address that has not added a phone.
    #[schema(example = "+996505325311")]
    pub phone_number: Option<String>,
    /// Display format of the market; `null` without a phone.
    #[schema(example = "+996 505 325 311")]
    pub formatted_phone: Option<String>,
    /// The account's email address, if it has one (issue 10).
    #[schema(example = "ann@example.org")]
    pub email: Option<String>,
    /// Whether that address is verified (only a verified address signs in).
    pub email_verified: bool,
    /// Display name.
    pub full_name: Option<String>,
    /// Avatar URL (https).
    pub profile_image_url: Option<String>,
    /// Whether the phone number is verified.
    pub is_verified: bool,
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// Language code.
    #[schema(example = "ru")]
    pub language: String,
    /// Country name.
    #[schema(example = "Kyrgyzstan")]
    pub country: String,
    /// Currency symbol.
    #[schema(example = "сом")]
    pub currency: String,
    /// ISO 4217 currency code.
    #[schema(example = "KGS")]
    pub currency_code: String,
    /// Last login, RFC 3339 UTC.
    pub last_login: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
}

impl From<&User> for ProfileResponse {
    fn from(u: &User) -> Self {
        let p = u.market().profile();
        Self {
            id: u.id.0,
            phone_number: u.phone.as_ref().map(|p| p.e164().to_owned()),
            formatted_phone: u.phone.as_ref().map(PhoneNumber::display),
            email: u.email.clone(),
            email_verified: u.email_verified,
            full_name: u.full_name.as_ref().map(|n| n.as_str().to_owned()),
            profile_image_url: u.profile_image_url.as_ref().map(|n| n.as_str().to_owned()),
            is_verified: u.is_verified,
            market: u.market(),
            language: p.language.code().to_owned(),
            country: p.country.to_owned(),
            currency: p.currency.symbol.to_owned(),
            currency_code: p.currency.code.to_owned(),
            last_login: u.last_login.map(timestamp),
            created_at: timestamp(u.created_at),
        }
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PUT /api/v1/auth/profile` body. Absent fields are left alone; `null` clears a field.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// 1–100 characters, no control characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "Анна Петровна Ахматова")]
    pub full_name: Option<Option<String>>,
    /// Absolute `https` URL, at most 2048 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "https://example.com/profile.jpg")]
    pub profile_image_url: Option<Option<String>>,
}

/// The token is valid.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyTokenResponse {
    /// Always `true` (invalid tokens get 401).
    pub valid: bool,
    /// User id within the market.
    pub user_id: i64,
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// Expiry of the token, RFC 3339 UTC.
    pub expires_at: String,
}

/// Generic success.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuccessResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text.
    pub message: String,
}

/// One market as clients display it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarketInfo {
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// Country name.
    pub country: String,
    /// Currency symbol.
    pub currency: String,
    /// ISO 4217 code.
    pub currency_code: String,
    /// Language code.
    pub language: String,
    /// Calling code with `+`.
    pub phone_prefix: String,
    /// Display pattern of numbers.
    pub phone_format: String,
    /// Tax rate as a fraction (0.12 = 12 %).
    pub tax_rate: f64,
    /// Date pattern (`DD.MM.YYYY`, `MM/DD/YYYY`).
    pub date_format: String,
    /// IANA time zone.
    pub timezone: String,
    /// Payment methods shoppers of the market can save (`visa`, `elcart`, `paypal`…).
    pub payment_methods: Vec<String>,
}

impl From<Market> for MarketInfo {
    fn from(m: Market) -> Self {
        let p = m.profile();
        Self {
            market: m,
            country: p.country.to_owned(),
            currency: p.currency.symbol.to_owned(),
            currency_code: p.currency.code.to_owned(),
            language: p.language.code().to_owned(),
            phone_prefix: p.phone_prefix.to_owned(),
            phone_format: p.phone_format.to_owned(),
            tax_rate: f64::from(p.tax_rate_basis_points) / 10_000.0,
            date_format: p.date_format.to_owned(),
            timezone: p.timezone.to_owned(),
            payment_methods: p
                .payment_methods
                .iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
        }
    }
}

/// `GET /api/v1/auth/markets`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarketsResponse {
    /// Served markets.
    pub supported_markets: Vec<MarketInfo>,
    /// Market assumed by clients that do not choose one.
    #[schema(value_type = MarketCode)]
    pub default_market: Market,
}

/// State of one market database.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarketHealthDto {
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// `up` or `down`.
    #[schema(example = "up")]
    pub status: String,
}

/// `GET /health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `healthy` when every market database answers, else `unhealthy` (HTTP 503).
    #[schema(example = "healthy")]
    pub status: String,
    /// Service version.
    pub version: String,
    /// Per-market database state.
    pub markets: Vec<MarketHealthDto>,
}

/// `GET /health/live`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveResponse {
    /// Always `ok`: the process answers.
    #[schema(example = "ok")]
    pub status: String,
    /// Service version.
    pub version: String,
}

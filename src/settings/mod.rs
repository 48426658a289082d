//! Settings of one `marque` process, read in three layers, each overriding the one before:
//! built-in defaults → an optional TOML file (`marque --config PATH` or `MARQUE_CONFIG=PATH`) →
//! environment variables. A file key is the lower-case name of its variable; per-market settings
//! sit in `[markets.kg]` / `[markets.us]` tables. `marque.example.toml` at the repository root
//! lists every key with its default; `marque config` prints the effective settings.
//!
//! Every default is written once: the OTP, rate-limit and session defaults are those of
//! [`AuthConfig::default`] in the domain (which test fixtures build without this crate), the
//! outbox poll interval that of [`WorkerConfig::default`]; the rest are written here.
//!
//! Only the variables below are read; an unknown key anywhere in the file, a value of the wrong
//! type or out of range stops start-up with one line naming the key as its source spells it. An
//! empty variable is a value, not an unset one: `WORKERS=` is refused (unset it instead); for a
//! list it is the empty list.
//!
//! | variable (file key = lower case) | default | meaning |
//! |---|---|---|
//! | `MARQUE_ENV` | `development` | `production` refuses to start without a strong `SECRET_KEY` (≥ 32 random bytes as hex or base64), without explicit database URLs, with the console provider (SMS or email), or with test numbers lacking a `TEST_PHONE_NUMBERS_VALID_UNTIL` at most 30 days ahead |
//! | `LOG_FORMAT` | `text` | `json` for JSON lines on stderr (`RUST_LOG`, default `info`, filters; environment only) |
//! | `HOST`, `PORT` | `127.0.0.1`, `8000` | listen address; port 1–65535 |
//! | `WORKERS` | one per core | HTTP worker threads, ≥ 1 |
//! | `BLOCKING_THREADS` | pool size / workers | database threads per HTTP worker, ≥ 1 |
//! | `ALLOWED_ORIGINS` | empty | CORS origins (`https://shop.example`, or `*` for any) |
//! | `TRUSTED_PROXIES` | empty | IPs/CIDRs whose `X-Forwarded-For` is believed |
//! | `DEFAULT_MARKET` | `kg` | reported by `GET /api/v1/auth/markets` |
//! | `METRICS_ADDR` | unset | `host:port` of a separate listener for `GET /metrics`; unset: `/metrics` on the API port |
//! | `SECRET_KEY` | random per run (development only) | ≥ 32 bytes; every key (token signing unless a key file is set, OTP MAC, outbox sealing, refresh MAC) is derived from it with HKDF |
//! | `JWT_ISSUER` | `marque` | `iss` claim |
//! | `JWT_AUDIENCE` | unset | `aud` claim, checked on every token when set |
//! | `ACCESS_TOKEN_EXPIRE_MINUTES` | `30` | access token lifetime, minutes |
//! | `REFRESH_TOKEN_EXPIRE_DAYS` | each market's | refresh token lifetime (= session idle timeout), days, for markets without their own |
//! | `SESSION_MAX_LIFETIME_DAYS` | `90` | absolute session lifetime, days |
//! | `REFRESH_REUSE_GRACE_SECONDS` | `10` | a rotated refresh token gets its successor again within this many seconds |
//! | `JWT_ALGORITHM` | `EdDSA` | the only algorithm (HS256 was removed): Ed25519, public keys at `/.well-known/jwks.json` |
//! | `JWT_SIGNING_KEY_FILE`, `JWT_SIGNING_KEY_ID` | unset | PKCS#8 PEM private key and its `kid`; unset: a key derived from `SECRET_KEY` |
//! | `JWT_VERIFICATION_KEYS` | empty | retired public keys still accepted, `kid=public.pem,…` |
//! | `ADMIN_API_KEY` | unset | bearer key of the admin API (`/api/v1/admin/*`), ≥ 32 bytes; unset: the admin API answers 404; production: ≥ 32 random bytes as base64 or hex, not `SECRET_KEY` |
//! | `DATABASE_POOL_SIZE` | `16` | connections per market, ≥ 1 |
//! | `DATABASE_CONNECT_TIMEOUT_SECONDS` | `5` | connect / pool checkout timeout, 1–3600 s |
//! | `MAX_VERIFICATION_ATTEMPTS` | `3` | wrong tries per code, ≥ 1 |
//! | `MAX_CODES_PER_WINDOW` | `3` | codes per number per send window, ≥ 1 |
//! | `VERIFICATION_ATTEMPTS_WINDOW` | `15` | that send window, minutes (despite the name it limits codes sent, not tries) |
//! | `RESEND_COOLDOWN_SECONDS` | `60` | minimum gap between two codes for a number, seconds |
//! | `IP_SEND_LIMIT`, `IP_SEND_WINDOW_MINUTES` | `30`, `15` | codes per client IP per window (minutes) |
//! | `IPV6_48_SEND_LIMIT` | `240` | codes per IPv6 /48 per `IP_SEND_WINDOW_MINUTES` (IPv6 /64s count against `IP_SEND_LIMIT`) |
//! | `SMS_DAILY_LIMIT` | `20000` | SMS per day over all markets (each market's `SMS_DAILY_LIMIT_{MARKET}` too) |
//! | `SMS_PREFIX_HOURLY_LIMIT` | `300` | SMS per hour per number prefix (country code + 3 national digits) |
//! | `SMS_PREFIX_ALARM_MULTIPLE` | `5` | WARN when a prefix's hour exceeds this multiple of its usual rate (and 20) |
//! | `CAPTCHA_PROVIDER` | unset | `turnstile` or `hcaptcha`: send-code then requires `captcha_token` |
//! | `CAPTCHA_SECRET` | unset | the site's secret at the provider (required with `CAPTCHA_PROVIDER`) |
//! | `CAPTCHA_VERIFY_URL` | the provider's | siteverify URL (Cloudflare / hCaptcha public endpoints) |
//! | `IP_VERIFY_LIMIT` | `60` | code verifications per client IP per `IP_SEND_WINDOW_MINUTES` |
//! | `MAX_CONSECUTIVE_FAILURES`, `FAILURE_LOCK_MINUTES` | `30`, `1440` | wrong codes in a row (across codes, 1–100) that lock a number, and the lock in minutes |
//! | `REQUIRE_CHALLENGE_ID` | `false` | verify-code and account deletion require send-code's `challenge_id` |
//! | `TEST_PHONE_NUMBERS` | empty | `+996555000001=123456,…`: fixed codes, no message; exempt from limits outside production |
//! | `TEST_PHONE_NUMBERS_VALID_UNTIL` | unset | RFC 3339 instant or date (through that day, UTC); after it test numbers are ordinary numbers; required in production with test numbers, ≤ 30 days ahead |
//! | `SMS_PROVIDER` | `console` | SMS provider: `console` (refused in production where SMS is a channel), `twilio`, `sns`, `webhook` |
//! | `PUBLIC_BASE_URL` | unset | where providers call back (Twilio `StatusCallback`, Telegram `callback_url`), and the origin of links in emails |
//! | `APP_NAME`, `OTP_AUTOFILL_DOMAIN` | `Marque`, unset | `{app}` of templates (SMS and email); the `@domain #code` autofill line of SMS |
//! | `EMAIL_PROVIDER` | `console` | mail transport: `console` (prints each email and its link; refused in production) or `smtp` |
//! | `SMTP_URL`, `SMTP_FROM` | unset | with `smtp`: `smtps://user:pass@host:465` (implicit TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25` (local relay), a secret; the sender mailbox `Shop <no-reply@shop.example>`. Email links start with `PUBLIC_BASE_URL` (required with `smtp` in production; else `http://HOST:PORT`) |
//! | `TWILIO_BASE_URL`, `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM`, `TWILIO_MESSAGING_SERVICE_SID` | `https://api.twilio.com`, unset | Twilio |
//! | `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `SNS_ENDPOINT_URL`, `SNS_SENDER_ID` | unset | AWS SNS |
//! | `SMS_WEBHOOK_URL`, `SMS_WEBHOOK_SECRET` | unset | Standard Webhooks gateway |
//! | `WHATSAPP_API_BASE_URL`, `WHATSAPP_PHONE_NUMBER_ID`, `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_TEMPLATE_NAME` | Graph v21.0, unset | WhatsApp Cloud API (the token turns the channel on) |
//! | `TELEGRAM_GATEWAY_BASE_URL`, `TELEGRAM_GATEWAY_TOKEN` | `https://gatewayapi.telegram.org`, unset | Telegram Gateway (the token turns the channel on) |
//! | `OUTBOX_MAX_ATTEMPTS` | `8` | tries per channel before the next channel or a dead letter |
//! | `RETENTION_INTERVAL_SECONDS` | `3600` | pause between two purges of ended rows |
//! | `RETENTION_CHALLENGES_HOURS`, `RETENTION_RATE_LIMITS_HOURS` | `24`, `48` | codes after expiry, rate-limit buckets after their last hit |
//! | `RETENTION_OUTBOX_DAYS`, `RETENTION_SESSIONS_DAYS`, `RETENTION_AUDIT_DAYS` | `7`, `30`, `365` | outbox messages once done, ended sessions and expired refresh tokens, audit rows |
//! | `RETENTION_BATCH_SIZE` | `1000` | rows per delete statement |
//! | `OUTBOX_POLL_INTERVAL_MS` | `200` | delivery worker poll interval, milliseconds |
//! | `MESSENGER_LOGIN_TTL_SECONDS` | `300` | lifetime of a WhatsApp / Telegram login (issue 9), 1–3600 s |
//! | `WHATSAPP_BUSINESS_NUMBER`, `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_APP_SECRET` | unset | WhatsApp login: the number of `wa.me` links, the webhook's verify token, the app secret that signs webhooks (with the Cloud API sender settings above, for replies) |
//! | `TELEGRAM_BOT_USERNAME`, `TELEGRAM_BOT_TOKEN`, `TELEGRAM_WEBHOOK_SECRET` | unset | Telegram login: the bot of `t.me` links, its token (replies, Login Widget), the webhook's `secret_token` |
//! | `TELEGRAM_BOT_API_BASE_URL` | `https://api.telegram.org` | Bot API base (`/bot<token>/sendMessage`) |
//! | `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`, `ARGON2_PARALLELISM` | `19456`, `2`, `1` | Argon2id cost of new password hashes (issue 10; OWASP's first choice); memory ≥ 8 × parallelism; production refuses memory × iterations below 35840 (OWASP's weakest listed equivalent) |
//! | `PASSWORD_HASH_CONCURRENCY` | `4` | password hashes running at once (each holds the memory above); more requests wait for a turn without taking a database thread |
//!
//! Per market (`KG`, `US`; file: `[markets.kg]`, `[markets.us]`):
//!
//! | variable | file key | default | meaning |
//! |---|---|---|---|
//! | `DATABASE_URL_MARQUE_KG` | `database_url` | `sqlite://data/marque-kg.db` | `postgres://`, `postgresql://` or `sqlite://` |
//! | `OTP_EXPIRY_MINUTES_KG` | `otp_expiry_minutes` | the market's (10) | code lifetime, minutes |
//! | `REFRESH_TOKEN_EXPIRE_DAYS_KG` | `refresh_token_expire_days` | `REFRESH_TOKEN_EXPIRE_DAYS`, else 30 | refresh token lifetime, days |
//! | `SMS_DAILY_LIMIT_KG` | `sms_daily_limit` | `10000` | SMS per day in the market |
//! | `SMS_PROVIDER_KG` | `sms_provider` | `SMS_PROVIDER` | the market's SMS provider |
//! | `TWILIO_FROM_KG`, `TWILIO_MESSAGING_SERVICE_SID_KG` | `twilio_from`, `twilio_messaging_service_sid` | the top-level pair | the market's Twilio sender |
//! | `CHANNELS_KG` | `channels` | `sms` | channels in fallback order (`telegram,whatsapp,sms`) |
//! | `WHATSAPP_TEMPLATE_LANGUAGE_KG` | `whatsapp_template_language` | `ru` / `en_US` | template language |
//! | `SMS_TEMPLATE_KG`, `SMS_DELETE_ACCOUNT_TEMPLATE_KG` | `sms_template`, `sms_delete_account_template` | the market language's | templates with `{code}`, `{minutes}`, `{app}` |
//!
//! A new per-market setting is a field of [`MarketSettings`]: its variable is `{FIELD}_{MARKET}`
//! (see [`sources`]), with no other list to update.

pub mod sources;
pub mod values;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::Duration;
use figment::Figment;
use marque_domain::{
    Argon2Cost, AuthConfig, Channel, Ed25519PublicKey, Ed25519SigningKey, RetentionPolicy,
    SecretString,
};
use marque_markets::Market;
use marque_messaging::WorkerConfig;
use serde::{Deserialize, Deserializer, Serialize};

pub use sources::SettingsError;
use sources::{EnvSource, FileSource, Schema, describe, field_names, spelled};
pub use values::{
    Argon2Lanes, Argon2Memory, Argon2Passes, CaptchaProviderName, ChannelName, ConnectionCap,
    Count, DatabaseUrl, Days, EmailProvider, Environment, FailureLimit, HashConcurrency, Hours,
    HttpUrl, Instant, JwtAlgorithm, KeyFile, List, LogFormat, Millis, Minutes, Origin, Port,
    PositiveSeconds, ProviderSecret, ProxyNet, Seconds, SecretKey, SmsProvider, TestNumber, Text,
};

/// The process: `MARQUE_ENV`, `LOG_FORMAT`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceSettings {
    /// `MARQUE_ENV`: `development` (default) or `production`.
    pub marque_env: Environment,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            marque_env: Environment::Development,
            log_format: LogFormat::Text,
        }
    }
}

/// The HTTP server: `HOST`, `PORT`, `WORKERS`, `BLOCKING_THREADS`, `ALLOWED_ORIGINS`,
/// `TRUSTED_PROXIES`, `DEFAULT_MARKET`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// `HOST`: address to listen on (default `127.0.0.1`).
    pub host: Text,
    /// `PORT`: TCP port, 1–65535 (default 8000).
    pub port: Port,
    /// `WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<Count>,
    /// `BLOCKING_THREADS`: threads per HTTP worker running database calls (default: pool size /
    /// workers, so waiting requests queue in FIFO order instead of contending for the pool).
    pub blocking_threads: Option<Count>,
    /// `ALLOWED_ORIGINS`: CORS origins; `*` allows any (default: none).
    pub allowed_origins: List<Origin>,
    /// `TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` gives the client IP (default: none).
    pub trusted_proxies: List<ProxyNet>,
    /// `BODY_READ_TIMEOUT_SECONDS`: seconds a request body may take to arrive after its head;
    /// then 408 and the connection is closed (default 30; slow-body DoS, OWASP ASVS V13).
    pub body_read_timeout_seconds: PositiveSeconds,
    /// `MAX_CONNECTIONS_PER_IP`: open connections per client IP (socket peer; IPv6 per /64;
    /// `TRUSTED_PROXIES` exempt); more get 429 and are closed. `0` turns the cap off (default 64).
    pub max_connections_per_ip: ConnectionCap,
    /// `DEFAULT_MARKET`: the market reported as default (default `kg`).
    #[serde(deserialize_with = "market_from_text")]
    pub default_market: Market,
    /// `METRICS_ADDR`: `host:port` of a separate listener for `GET /metrics` (Prometheus text),
    /// so the metrics need not be public (default: unset, `/metrics` on the API's own port).
    pub metrics_addr: Option<Text>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        let edge = marque_api::edge::EdgeSettings::default();
        Self {
            host: Text::fixed("127.0.0.1"),
            port: Port::clamped(8000),
            workers: None,
            blocking_threads: None,
            allowed_origins: List::default(),
            trusted_proxies: List::default(),
            // The edge's defaults are written once, in `EdgeSettings::default()`.
            body_read_timeout_seconds: PositiveSeconds::clamped(edge.body_read_timeout.as_secs()),
            max_connections_per_ip: ConnectionCap::clamped(edge.max_connections_per_ip as u64),
            default_market: Market::Kg,
            metrics_addr: None,
        }
    }
}

/// Tokens and sessions: `SECRET_KEY`, `JWT_*`, `ACCESS_TOKEN_EXPIRE_MINUTES`,
/// `REFRESH_TOKEN_EXPIRE_DAYS`, `SESSION_MAX_LIFETIME_DAYS`, `REFRESH_REUSE_GRACE_SECONDS`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// `SECRET_KEY`: ≥ 32 bytes (default: unset; development then uses a random key per run).
    pub secret_key: Option<SecretKey>,
    /// `JWT_ISSUER`: the `iss` claim (default `marque`).
    pub jwt_issuer: Text,
    /// `JWT_AUDIENCE`: the `aud` claim, required on every token when set (RFC 9068 §4;
    /// default: unset, no `aud`).
    pub jwt_audience: Option<Text>,
    /// `ACCESS_TOKEN_EXPIRE_MINUTES`: access token lifetime in minutes (default 30).
    pub access_token_expire_minutes: Minutes,
    /// `REFRESH_TOKEN_EXPIRE_DAYS`: refresh token lifetime in days for every market that sets
    /// none of its own (default: unset, each market's default).
    pub refresh_token_expire_days: Option<Days>,
    /// `SESSION_MAX_LIFETIME_DAYS`: absolute session lifetime in days.
    pub session_max_lifetime_days: Days,
    /// `REFRESH_REUSE_GRACE_SECONDS`: seconds in which a just-rotated refresh token gets the
    /// same successor again instead of counting as reuse.
    pub refresh_reuse_grace_seconds: Seconds,
    /// `JWT_ALGORITHM`: `EdDSA`, the only one.
    pub jwt_algorithm: JwtAlgorithm,
    /// `JWT_SIGNING_KEY_FILE`: Ed25519 private key, PKCS#8 PEM (default: unset, a key derived
    /// from `SECRET_KEY`).
    pub jwt_signing_key_file: Option<Text>,
    /// `JWT_SIGNING_KEY_ID`: the `kid` of that key (default: unset).
    pub jwt_signing_key_id: Option<Text>,
    /// `JWT_VERIFICATION_KEYS`: retired EdDSA public keys still accepted (default: none).
    pub jwt_verification_keys: List<KeyFile>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        let auth = AuthConfig::default();
        Self {
            secret_key: None,
            jwt_issuer: Text::fixed("marque"),
            jwt_audience: None,
            access_token_expire_minutes: Minutes::clamped(30),
            refresh_token_expire_days: None,
            session_max_lifetime_days: Days::clamped(whole(auth.session_max_lifetime.num_days())),
            refresh_reuse_grace_seconds: Seconds::clamped(whole(auth.refresh_grace.num_seconds())),
            jwt_algorithm: JwtAlgorithm::EdDsa,
            jwt_signing_key_file: None,
            jwt_signing_key_id: None,
            jwt_verification_keys: List::default(),
        }
    }
}

/// The admin API (issue 11): `ADMIN_API_KEY`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminSettings {
    /// `ADMIN_API_KEY`: the bearer key of `/api/v1/admin/*`, ≥ 32 bytes (default: unset, the
    /// admin API is off and answers 404). In production it must be ≥ 32 random bytes as base64 or
    /// hex, like `SECRET_KEY`, and differ from it.
    pub admin_api_key: Option<SecretKey>,
}

/// Database pools (one per market): `DATABASE_POOL_SIZE`, `DATABASE_CONNECT_TIMEOUT_SECONDS`.
/// The URLs are per market, in [`MarketSettings`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `DATABASE_POOL_SIZE`: connections per market (default 16).
    pub database_pool_size: Count,
    /// `DATABASE_CONNECT_TIMEOUT_SECONDS`: connect and pool checkout timeout in seconds
    /// (default 5).
    pub database_connect_timeout_seconds: PositiveSeconds,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_pool_size: Count::clamped(16),
            database_connect_timeout_seconds: PositiveSeconds::clamped(5),
        }
    }
}

/// Codes and send limits: `MAX_VERIFICATION_ATTEMPTS`, `MAX_CODES_PER_WINDOW`,
/// `VERIFICATION_ATTEMPTS_WINDOW`, `RESEND_COOLDOWN_SECONDS`, `IP_SEND_LIMIT`,
/// `IP_SEND_WINDOW_MINUTES`, `IP_VERIFY_LIMIT`, `MAX_CONSECUTIVE_FAILURES`,
/// `FAILURE_LOCK_MINUTES`, `REQUIRE_CHALLENGE_ID`, `TEST_PHONE_NUMBERS`,
/// `TEST_PHONE_NUMBERS_VALID_UNTIL`. Defaults: [`AuthConfig::default`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OtpSettings {
    /// `MAX_VERIFICATION_ATTEMPTS`: wrong tries per code before it dies.
    pub max_verification_attempts: Count,
    /// `MAX_CODES_PER_WINDOW`: codes sent to one number per send window.
    pub max_codes_per_window: Count,
    /// `VERIFICATION_ATTEMPTS_WINDOW` (the seed's name, kept): length in minutes of the window
    /// in which at most `MAX_CODES_PER_WINDOW` codes are sent to one number.
    #[serde(rename = "verification_attempts_window")]
    pub phone_send_window_minutes: Minutes,
    /// `RESEND_COOLDOWN_SECONDS`: minimum seconds between two codes for one number.
    pub resend_cooldown_seconds: Seconds,
    /// `IP_SEND_LIMIT`: codes per client IP per IP window.
    pub ip_send_limit: Count,
    /// `IP_SEND_WINDOW_MINUTES`: that window, minutes.
    pub ip_send_window_minutes: Minutes,
    /// `IPV6_48_SEND_LIMIT`: codes per IPv6 /48 per IP window (a /64 counts as one IP).
    pub ipv6_48_send_limit: Count,
    /// `IP_VERIFY_LIMIT`: code verifications per client IP per IP window (default 60).
    pub ip_verify_limit: Count,
    /// `MAX_CONSECUTIVE_FAILURES`: wrong codes in a row for one number, across its codes, that
    /// lock it (default 30; at most 100, NIST SP 800-63B §5.2.2).
    pub max_consecutive_failures: FailureLimit,
    /// `FAILURE_LOCK_MINUTES`: how long such a lock lasts (default 1440, a day).
    pub failure_lock_minutes: Minutes,
    /// `REQUIRE_CHALLENGE_ID`: verify-code and account deletion refuse requests without
    /// send-code's `challenge_id` (422) (default `false`: the original clients send none).
    pub require_challenge_id: bool,
    /// `TEST_PHONE_NUMBERS`: numbers with fixed codes (no message sent); exempt from send and
    /// verify limits outside production, bound by the per-IP and failure limits in production.
    pub test_phone_numbers: List<TestNumber>,
    /// `TEST_PHONE_NUMBERS_VALID_UNTIL`: after this instant test numbers are ordinary numbers
    /// (default: unset, no end; production requires it with test numbers, at most 30 days ahead).
    pub test_phone_numbers_valid_until: Option<Instant>,
}

impl Default for OtpSettings {
    fn default() -> Self {
        let auth = AuthConfig::default();
        let (phone, ip) = (auth.phone_send_limit, auth.ip_send_limit);
        Self {
            max_verification_attempts: Count::clamped(auth.max_attempts.into()),
            max_codes_per_window: Count::clamped(phone.max_hits.into()),
            phone_send_window_minutes: Minutes::clamped(whole(phone.window.num_minutes())),
            resend_cooldown_seconds: Seconds::clamped(whole(phone.cooldown.num_seconds())),
            ip_send_limit: Count::clamped(ip.max_hits.into()),
            ip_send_window_minutes: Minutes::clamped(whole(ip.window.num_minutes())),
            ipv6_48_send_limit: Count::clamped(auth.ipv6_48_send_limit.max_hits.into()),
            ip_verify_limit: Count::clamped(auth.ip_verify_limit.max_hits.into()),
            max_consecutive_failures: FailureLimit::clamped(auth.failures.max_consecutive.into()),
            failure_lock_minutes: Minutes::clamped(whole(auth.failures.lock.num_minutes())),
            require_challenge_id: auth.require_challenge_id,
            test_phone_numbers: List::default(),
            test_phone_numbers_valid_until: None,
        }
    }
}

/// Delivery of codes (issue 8): the SMS provider and every provider's credentials, the public
/// base URL providers call back, message text options and the outbox's pace. Per-market choices
/// (`SMS_PROVIDER_KG`, `CHANNELS_KG`, templates) are in [`MarketSettings`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliverySettings {
    /// `SMS_PROVIDER`: `console` (default; prints codes), `twilio`, `sns` or `webhook`, for
    /// markets without their own `SMS_PROVIDER_{MARKET}`.
    pub sms_provider: SmsProvider,
    /// `PUBLIC_BASE_URL`: where providers reach this service (`https://auth.shop.example`); the
    /// status-callback URLs given to Twilio and the Telegram Gateway are built from it, and their
    /// signatures cover it (default: unset, no callbacks requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<HttpUrl>,
    /// `APP_NAME`: the `{app}` of message templates (default `Marque`).
    pub app_name: Text,
    /// `OTP_AUTOFILL_DOMAIN`: when set (`shop.example`), SMS end with `@shop.example #123456`
    /// for WebOTP and iOS security-code autofill (default: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_autofill_domain: Option<Text>,
    /// `TWILIO_BASE_URL` (default `https://api.twilio.com`).
    pub twilio_base_url: HttpUrl,
    /// `TWILIO_ACCOUNT_SID` (`AC…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_account_sid: Option<Text>,
    /// `TWILIO_AUTH_TOKEN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_auth_token: Option<ProviderSecret>,
    /// `TWILIO_FROM`: sender number or alphanumeric sender id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_from: Option<Text>,
    /// `TWILIO_MESSAGING_SERVICE_SID` (`MG…`), instead of `TWILIO_FROM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_messaging_service_sid: Option<Text>,
    /// `AWS_REGION` of SNS (e.g. `us-east-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<Text>,
    /// `AWS_ACCESS_KEY_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<Text>,
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_secret_access_key: Option<ProviderSecret>,
    /// `SNS_ENDPOINT_URL` (default: `https://sns.{AWS_REGION}.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sns_endpoint_url: Option<HttpUrl>,
    /// `SNS_SENDER_ID`: the `AWS.SNS.SMS.SenderID` of every SMS (default: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sns_sender_id: Option<Text>,
    /// `SMS_WEBHOOK_URL`: the gateway's endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_webhook_url: Option<HttpUrl>,
    /// `SMS_WEBHOOK_SECRET`: `whsec_` + base64, the Standard Webhooks signing secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_webhook_secret: Option<ProviderSecret>,
    /// `WHATSAPP_API_BASE_URL` (default `https://graph.facebook.com/v21.0`).
    pub whatsapp_api_base_url: HttpUrl,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the business number's id in the Cloud API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_phone_number_id: Option<Text>,
    /// `WHATSAPP_ACCESS_TOKEN`: setting it turns the WhatsApp channel on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_access_token: Option<ProviderSecret>,
    /// `WHATSAPP_TEMPLATE_NAME`: the approved authentication template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_template_name: Option<Text>,
    /// `TELEGRAM_GATEWAY_BASE_URL` (default `https://gatewayapi.telegram.org`).
    pub telegram_gateway_base_url: HttpUrl,
    /// `TELEGRAM_GATEWAY_TOKEN`: setting it turns the Telegram channel on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_gateway_token: Option<ProviderSecret>,
    /// `EMAIL_PROVIDER` (issue 10): `console` (default; prints each email with its link) or
    /// `smtp`. Production refuses `console`.
    pub email_provider: EmailProvider,
    /// `SMTP_URL`: the SMTP server in lettre's URL form — `smtps://user:pass@host:465`
    /// (implicit TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtp://host:25` (a local relay, no TLS); user and password percent-encoded. A secret
    /// (it holds the password): redacted, never logged. Required with `EMAIL_PROVIDER=smtp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<ProviderSecret>,
    /// `SMTP_FROM`: the sender mailbox, `Shop <no-reply@shop.example>` or a bare address; the
    /// `Message-ID` domain is its domain. Required with `EMAIL_PROVIDER=smtp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<Text>,
    /// `OUTBOX_POLL_INTERVAL_MS`: milliseconds the delivery worker waits when the outbox is
    /// empty (default: [`WorkerConfig::default`]'s).
    pub outbox_poll_interval_ms: Millis,
    /// `OUTBOX_MAX_ATTEMPTS`: tries per channel before the next channel or a dead letter
    /// (default: [`WorkerConfig::default`]'s, 8; backoff 2 s doubling to 60 s, with jitter).
    pub outbox_max_attempts: Count,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let worker = WorkerConfig::default();
        let poll = worker.poll_interval.as_millis();
        Self {
            sms_provider: SmsProvider::Console,
            public_base_url: None,
            app_name: Text::fixed("Marque"),
            otp_autofill_domain: None,
            twilio_base_url: HttpUrl::fixed(marque_messaging::TWILIO_BASE_URL),
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from: None,
            twilio_messaging_service_sid: None,
            aws_region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            sns_endpoint_url: None,
            sns_sender_id: None,
            sms_webhook_url: None,
            sms_webhook_secret: None,
            whatsapp_api_base_url: HttpUrl::fixed(marque_messaging::WHATSAPP_API_BASE_URL),
            whatsapp_phone_number_id: None,
            whatsapp_access_token: None,
            whatsapp_template_name: None,
            telegram_gateway_base_url: HttpUrl::fixed(marque_messaging::TELEGRAM_GATEWAY_BASE_URL),
            telegram_gateway_token: None,
            email_provider: EmailProvider::Console,
            smtp_url: None,
            smtp_from: None,
            outbox_poll_interval_ms: Millis::clamped(u64::try_from(poll).unwrap_or(u64::MAX)),
            outbox_max_attempts: Count::clamped(worker.retry.max_attempts.into()),
        }
    }
}

/// Sign in with WhatsApp or Telegram (issue 9). A channel's messenger login is on when its
/// settings are set: WhatsApp needs `WHATSAPP_BUSINESS_NUMBER`, `WHATSAPP_VERIFY_TOKEN`,
/// `WHATSAPP_APP_SECRET` and the Cloud API sender (`WHATSAPP_PHONE_NUMBER_ID`,
/// `WHATSAPP_ACCESS_TOKEN`, for replies); Telegram needs `TELEGRAM_BOT_USERNAME`,
/// `TELEGRAM_BOT_TOKEN` and `TELEGRAM_WEBHOOK_SECRET`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MessengerSettings {
    /// `MESSENGER_LOGIN_TTL_SECONDS`: lifetime of a pending messenger login, 1–3600 s
    /// (default 300).
    pub messenger_login_ttl_seconds: PositiveSeconds,
    /// `WHATSAPP_BUSINESS_NUMBER`: the number users write to, digits with country code
    /// (`996555123456`; a leading `+` is dropped), for `https://wa.me/<number>` links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_business_number: Option<Text>,
    /// `WHATSAPP_VERIFY_TOKEN`: the verify token of the webhook subscription (`hub.verify_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_verify_token: Option<ProviderSecret>,
    /// `WHATSAPP_APP_SECRET`: the Meta app secret that signs webhooks (`X-Hub-Signature-256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_app_secret: Option<ProviderSecret>,
    /// `TELEGRAM_BOT_USERNAME`: the bot's username without `@`, for `https://t.me/<bot>` links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_bot_username: Option<Text>,
    /// `TELEGRAM_BOT_TOKEN`: the bot's token from @BotFather (replies, Login Widget check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_bot_token: Option<ProviderSecret>,
    /// `TELEGRAM_WEBHOOK_SECRET`: the `secret_token` given to `setWebhook`, checked on every
    /// update (`X-Telegram-Bot-Api-Secret-Token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_webhook_secret: Option<ProviderSecret>,
    /// `TELEGRAM_BOT_API_BASE_URL` (default `https://api.telegram.org`).
    pub telegram_bot_api_base_url: HttpUrl,
}

impl Default for MessengerSettings {
    fn default() -> Self {
        Self {
            messenger_login_ttl_seconds: PositiveSeconds::clamped(300),
            whatsapp_business_number: None,
            whatsapp_verify_token: None,
            whatsapp_app_secret: None,
            telegram_bot_username: None,
            telegram_bot_token: None,
            telegram_webhook_secret: None,
            telegram_bot_api_base_url: HttpUrl::fixed(marque_messaging::TELEGRAM_BOT_API_BASE_URL),
        }
    }
}

/// Passwords of email accounts (issue 10): `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`,
/// `ARGON2_PARALLELISM`, `PASSWORD_HASH_CONCURRENCY`. Defaults: [`Argon2Cost::default`]
/// (m = 19 MiB, t = 2, p = 1) and 4 hashes at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordSettings {
    /// `ARGON2_MEMORY_KIB`: memory per hash in KiB, 8–4194304 (default 19456).
    pub argon2_memory_kib: Argon2Memory,
    /// `ARGON2_ITERATIONS`: passes, 1–100 (default 2).
    pub argon2_iterations: Argon2Passes,
    /// `ARGON2_PARALLELISM`: lanes, 1–64 (default 1).
    pub argon2_parallelism: Argon2Lanes,
    /// `PASSWORD_HASH_CONCURRENCY`: hashes running at once, 1–1024 (default 4). Requests beyond
    /// it wait (asynchronously) for a turn before reaching the blocking pool.
    pub password_hash_concurrency: HashConcurrency,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        let cost = Argon2Cost::default();
        Self {
            argon2_memory_kib: Argon2Memory::clamped(cost.memory_kib.into()),
            argon2_iterations: Argon2Passes::clamped(cost.iterations.into()),
            argon2_parallelism: Argon2Lanes::clamped(cost.parallelism.into()),
            password_hash_concurrency: HashConcurrency::clamped(4),
        }
    }
}

impl PasswordSettings {
    /// The Argon2id cost.
    pub fn cost(&self) -> Argon2Cost {
        Argon2Cost {
            memory_kib: self.argon2_memory_kib.as_u32(),
            iterations: self.argon2_iterations.as_u32(),
            parallelism: self.argon2_parallelism.as_u32(),
        }
    }
}

/// The retention job (issue 12, item 19): `RETENTION_*`. Defaults:
/// [`RetentionPolicy::default`], and one run per hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// `RETENTION_INTERVAL_SECONDS`: pause between two purges of every market (default 3600).
    pub retention_interval_seconds: PositiveSeconds,
    /// `RETENTION_CHALLENGES_HOURS`: codes are deleted this long after their expiry (default 24).
    pub retention_challenges_hours: Hours,
    /// `RETENTION_RATE_LIMITS_HOURS`: rate-limit buckets are deleted this long after their last
    /// hit, and unlocked consecutive-failure counts after their last change (default 48; keep it
    /// above the longest limit window).
    pub retention_rate_limits_hours: Hours,
    /// `RETENTION_OUTBOX_DAYS`: delivered, given-up or expired messages are deleted this long
    /// after their creation (default 7).
    pub retention_outbox_days: Days,
    /// `RETENTION_SESSIONS_DAYS`: ended sessions and expired refresh tokens are deleted this long
    /// after their end (default 30).
    pub retention_sessions_days: Days,
    /// `RETENTION_AUDIT_DAYS`: audit rows are deleted this long after they were written
    /// (default 365).
    pub retention_audit_days: Days,
    /// `RETENTION_BATCH_SIZE`: rows deleted per statement (default 1000).
    pub retention_batch_size: Count,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        let p = RetentionPolicy::default();
        Self {
            retention_interval_seconds: PositiveSeconds::clamped(3600),
            retention_challenges_hours: Hours::clamped(whole(p.challenges.num_hours())),
            retention_rate_limits_hours: Hours::clamped(whole(p.rate_limits.num_hours())),
            retention_outbox_days: Days::clamped(whole(p.outbox.num_days())),
            retention_sessions_days: Days::clamped(whole(p.sessions.num_days())),
            retention_audit_days: Days::clamped(whole(p.audit.num_days())),
            retention_batch_size: Count::clamped(p.batch_size.into()),
        }
    }
}

/// SMS-pumping guards (issue 12, item 14): `SMS_DAILY_LIMIT`, `SMS_PREFIX_HOURLY_LIMIT`,
/// `SMS_PREFIX_ALARM_MULTIPLE`, `CAPTCHA_PROVIDER`, `CAPTCHA_SECRET`, `CAPTCHA_VERIFY_URL`.
/// Per-market daily budgets are in [`MarketSettings`]. Defaults: [`AuthConfig::default`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SmsGuardSettings {
    /// `SMS_DAILY_LIMIT`: SMS per day over all markets.
    pub sms_daily_limit: Count,
    /// `SMS_PREFIX_HOURLY_LIMIT`: SMS per hour per number prefix.
    pub sms_prefix_hourly_limit: Count,
    /// `SMS_PREFIX_ALARM_MULTIPLE`: alarm when a prefix runs at this multiple of its usual rate.
    pub sms_prefix_alarm_multiple: Count,
    /// `CAPTCHA_PROVIDER`: `turnstile` or `hcaptcha` (default: unset, no CAPTCHA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captcha_provider: Option<CaptchaProviderName>,
    /// `CAPTCHA_SECRET`: the site's secret at the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captcha_secret: Option<ProviderSecret>,
    /// `CAPTCHA_VERIFY_URL`: the siteverify URL (default: the provider's public one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captcha_verify_url: Option<Text>,
}

impl Default for SmsGuardSettings {
    fn default() -> Self {
        let guard = AuthConfig::default().sms_guard;
        Self {
            sms_daily_limit: Count::clamped(guard.total_daily_limit.into()),
            sms_prefix_hourly_limit: Count::clamped(guard.prefix_hourly_limit.into()),
            sms_prefix_alarm_multiple: Count::clamped(guard.prefix_alarm_multiple.into()),
            captcha_provider: None,
            captcha_secret: None,
            captcha_verify_url: None,
        }
    }
}

/// Settings of one market (`[markets.kg]`, variables `{FIELD}_KG`). Unset fields take the
/// market's default when the settings are resolved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketSettings {
    /// `DATABASE_URL_MARQUE_KG`: the market's database (default `sqlite://data/marque-kg.db`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrl>,
    /// `OTP_EXPIRY_MINUTES_KG`: code lifetime in minutes (default: [`AuthConfig::default`]'s,
    /// which is the market profile's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_expiry_minutes: Option<Minutes>,
    /// `REFRESH_TOKEN_EXPIRE_DAYS_KG`: refresh token lifetime in days (default:
    /// `REFRESH_TOKEN_EXPIRE_DAYS`, else [`AuthConfig::default`]'s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_expire_days: Option<Days>,
    /// `SMS_DAILY_LIMIT_KG`: SMS per day in the market (default: [`AuthConfig::default`]'s,
    /// 10,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_daily_limit: Option<Count>,
    /// `SMS_PROVIDER_KG`: the market's SMS provider (default: `SMS_PROVIDER`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_provider: Option<SmsProvider>,
    /// `TWILIO_FROM_KG`: the market's Twilio sender (a local number or alphanumeric sender id);
    /// with this or `TWILIO_MESSAGING_SERVICE_SID_KG` set, the market ignores the top-level pair
    /// (default: `TWILIO_FROM` / `TWILIO_MESSAGING_SERVICE_SID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_from: Option<Text>,
    /// `TWILIO_MESSAGING_SERVICE_SID_KG`: the market's Twilio Messaging Service, instead of
    /// `TWILIO_FROM_KG`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_messaging_service_sid: Option<Text>,
    /// `CHANNELS_KG`: the channels the market's codes may go out on, in fallback order, the
    /// first the default, e.g. `telegram,whatsapp,sms` (default `sms`). A channel whose provider
    /// is not configured is left out (with a warning at start-up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<List<ChannelName>>,
    /// `WHATSAPP_TEMPLATE_LANGUAGE_KG`: the template's language code (default `ru` for KG,
    /// `en_US` for US).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_template_language: Option<Text>,
    /// `SMS_TEMPLATE_KG`: the sign-in message, with `{code}`, `{minutes}`, `{app}` (default: the
    /// market language's, e.g. `{app}: ваш код {code}. Действует {minutes} мин. Никому не
    /// сообщайте.`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_template: Option<Text>,
    /// `SMS_DELETE_ACCOUNT_TEMPLATE_KG`: the account-deletion code's message, same
    /// placeholders (default: the market language's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_delete_account_template: Option<Text>,
}

/// Everything `marque` reads at start-up, one struct per concern. In the file (and in
/// `marque config`) the concerns' keys share the top level; markets are tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// The process.
    #[serde(flatten)]
    pub service: ServiceSettings,
    /// The HTTP server.
    #[serde(flatten)]
    pub server: ServerSettings,
    /// Tokens and sessions.
    #[serde(flatten)]
    pub tokens: TokenSettings,
    /// Database pools.
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// The admin API.
    #[serde(flatten)]
    pub admin: AdminSettings,
    /// Codes and send limits.
    #[serde(flatten)]
    pub otp: OtpSettings,
    /// Delivery.
    #[serde(flatten)]
    pub delivery: DeliverySettings,
    /// Retention job.
    #[serde(flatten)]
    pub retention: RetentionSettings,
    /// SMS-pumping guards and CAPTCHA.
    #[serde(flatten)]
    pub sms_guard: SmsGuardSettings,
    /// Messenger login.
    #[serde(flatten)]
    pub messenger: MessengerSettings,
    /// Passwords of email accounts.
    #[serde(flatten)]
    pub passwords: PasswordSettings,
    /// Per-market settings; a market missing here has its defaults.
    pub markets: BTreeMap<Market, MarketSettings>,
}

impl Settings {
    /// The keys and variables that exist.
    fn schema() -> Schema {
        let top = [
            field_names::<ServiceSettings>(),
            field_names::<ServerSettings>(),
            field_names::<TokenSettings>(),
            field_names::<DatabaseSettings>(),
            field_names::<AdminSettings>(),
            field_names::<OtpSettings>(),
            field_names::<DeliverySettings>(),
            field_names::<RetentionSettings>(),
            field_names::<SmsGuardSettings>(),
            field_names::<MessengerSettings>(),
            field_names::<PasswordSettings>(),
            &["markets"],
        ]
        .concat();
        Schema {
            top,
            market: field_names::<MarketSettings>(),
        }
    }

    /// Every top-level key a settings file may have (for tests of the example file).
    pub fn top_level_keys() -> Vec<&'static str> {
        Self::schema().top
    }

    /// Every key of a `[markets.*]` table.
    pub fn market_keys() -> &'static [&'static str] {
        field_names::<MarketSettings>()
    }

    /// Reads defaults ← `file` ← the process environment; the figment tells where each value
    /// came from.
    pub fn load(file: Option<&Path>) -> Result<(Self, Figment), SettingsError> {
        let schema = Self::schema();
        let env = EnvSource::process(&schema)?;
        Self::from_sources(&schema, file, env)
    }

    fn from_sources(
        schema: &Schema,
        file: Option<&Path>,
        env: EnvSource,
    ) -> Result<(Self, Figment), SettingsError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(FileSource::read(path, schema)?);
        }
        let figment = figment.merge(env);
        // Not `extract_inner("markets")`: figment appends the prefix after the error path.
        #[derive(Deserialize)]
        struct Markets {
            #[serde(default)]
            markets: BTreeMap<Market, MarketSettings>,
        }
        let Markets { markets } = figment.extract_lossy().map_err(describe)?;
        let settings = Self {
            service: figment.extract_lossy().map_err(describe)?,
            server: figment.extract_lossy().map_err(describe)?,
            tokens: figment.extract_lossy().map_err(describe)?,
            database: figment.extract_lossy().map_err(describe)?,
            admin: figment.extract_lossy().map_err(describe)?,
            otp: figment.extract_lossy().map_err(describe)?,
            delivery: figment.extract_lossy().map_err(describe)?,
            retention: figment.extract_lossy().map_err(describe)?,
            sms_guard: figment.extract_lossy().map_err(describe)?,
            messenger: figment.extract_lossy().map_err(describe)?,
            passwords: figment.extract_lossy().map_err(describe)?,
            markets,
        };
        Ok((settings, figment))
    }

    /// The settings of `market` with every unset field filled with its default.
    pub fn market(&self, market: Market) -> MarketSettings {
        let given = self.markets.get(&market).cloned().unwrap_or_default();
        // The market's own Twilio sender pair, or else the top-level one: never a mix.
        let own = given.twilio_from.is_some() || given.twilio_messaging_service_sid.is_some();
        let (twilio_from, twilio_service) = if own {
            (
                given.twilio_from.as_ref(),
                given.twilio_messaging_service_sid.as_ref(),
            )
        } else {
            (
                self.delivery.twilio_from.as_ref(),
                self.delivery.twilio_messaging_service_sid.as_ref(),
            )
        };
        let auth = AuthConfig::default();
        MarketSettings {
            database_url: given
                .database_url
                .or_else(|| Some(DatabaseUrl::default_for(market))),
            otp_expiry_minutes: given
                .otp_expiry_minutes
                .or_else(|| Some(Minutes::clamped(whole(auth.otp_ttl(market).num_minutes())))),
            refresh_token_expire_days: given
                .refresh_token_expire_days
                .or(self.tokens.refresh_token_expire_days)
                .or_else(|| Some(Days::clamped(whole(auth.refresh_ttl(market).num_days())))),
            sms_daily_limit: given
                .sms_daily_limit
                .or_else(|| Some(Count::clamped(auth.sms_daily_limit(market).into()))),
            sms_provider: given.sms_provider.or(Some(self.delivery.sms_provider)),
            twilio_from: twilio_from.cloned(),
            twilio_messaging_service_sid: twilio_service.cloned(),
            channels: given.channels.or_else(|| {
                let default = auth.channels(market).iter().map(|c| ChannelName(*c));
                Some(default.collect())
            }),
            whatsapp_template_language: given.whatsapp_template_language.or_else(|| {
                Some(Text::fixed(match market {
                    Market::Kg => "ru",
                    Market::Us => "en_US",
                }))
            }),
            sms_template: given.sms_template,
            sms_delete_account_template: given.sms_delete_account_template,
        }
    }

    /// These settings with every market's unset fields filled in: what `marque config` prints.
    pub fn effective(&self) -> Self {
        Self {
            markets: Market::ALL.iter().map(|m| (*m, self.market(*m))).collect(),
            ..self.clone()
        }
    }

    /// The effective settings as TOML, secrets redacted; unset optional keys are listed as
    /// comments.
    pub fn to_toml(&self) -> String {
        let effective = self.effective();
        let body = toml::to_string(&effective)
            .unwrap_or_else(|e| format!("# cannot print the settings: {e}\n"));
        let table: toml::Table = toml::from_str(&body).unwrap_or_default();
        let unset: Vec<&str> = Self::schema()
            .top
            .into_iter()
            .filter(|k| !table.contains_key(*k))
            .collect();
        let mut out = String::from(
            "# Effective settings of marque (defaults <- file <- environment); secrets redacted.\n",
        );
        for key in unset {
            out.push_str(&format!("# {key} is unset\n"));
        }
        out.push('\n');
        out.push_str(body.trim_end());
        out.push('\n');
        out
    }
}

/// Reads a market code the way `DEFAULT_MARKET` always accepted it (case-insensitive).
fn market_from_text<'de, D: Deserializer<'de>>(d: D) -> Result<Market, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::invalid_value(serde::de::Unexpected::Str(&text), &"`kg` or `us`")
    })
}

/// A non-negative whole number from a domain default (which are positive).
fn whole(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Which Ed25519 key signs access tokens (always EdDSA, RFC 8037).
#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// The key derived from `SECRET_KEY` with HKDF (no `JWT_SIGNING_KEY_FILE`), and the retired
    /// public keys still accepted.
    Derived {
        /// Retired keys.
        retired: Vec<Ed25519PublicKey>,
    },
    /// A key pair from `JWT_SIGNING_KEY_FILE` and the retired public keys still accepted.
    File {
        /// Current signing key.
        signing: Ed25519SigningKey,
        /// Retired keys.
        retired: Vec<Ed25519PublicKey>,
    },
}

/// The whole configuration of one `marque` process: the settings as read, plus what is derived
/// from them (the secret in use, keys read from files, the domain's [`AuthConfig`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// The settings as read.
    pub settings: Settings,
    /// Port to listen on: `settings.server.port`, or 0 (any free port) when set in code by tests.
    pub listen_port: u16,
    /// `SECRET_KEY`, or a random key for this run in development.
    pub secret_key: SecretString,
    /// Whether `secret_key` was generated because none was set.
    pub secret_generated: bool,
    /// Signing algorithm and keys.
    pub jwt_keys: JwtKeys,
    /// OTP rules, limits, session lifetimes and each market's delivery channels for the domain.
    pub auth: AuthConfig,
    /// What start-up should warn about (a listed channel without a provider).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads defaults ← `file` ← the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let (settings, figment) = Settings::load(file)?;
        Self::derive(settings, &figment)
    }

    /// Builds the configuration from `vars` (variable name → value) and the defaults, as if
    /// they were the environment; other names in `vars` are ignored. For tests.
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, SettingsError> {
        let schema = Settings::schema();
        let env = EnvSource::from_map(&schema, &vars);
        let (settings, figment) = Settings::from_sources(&schema, None, env)?;
        Self::derive(settings, &figment)
    }

    /// Checks what spans several keys and derives the runtime values.
    fn derive(settings: Settings, figment: &Figment) -> Result<Self, SettingsError> {
        let error = |key: &str, message: String| {
            let (key, file) = spelled(figment, key);
            SettingsError { key, file, message }
        };
        if settings.service.marque_env == Environment::Production {
            check_production(&settings, &error)?;
        }
        let cost = settings.passwords.cost();
        if cost.memory_kib < 8 * cost.parallelism {
            return Err(error(
                "argon2_memory_kib",
                format!(
                    "Argon2 needs at least 8 KiB per lane: at least {} with ARGON2_PARALLELISM={}",
                    8 * cost.parallelism,
                    cost.parallelism
                ),
            ));
        }
        let sms_guard = &settings.sms_guard;
        if sms_guard.captcha_provider.is_some() && sms_guard.captcha_secret.is_none() {
            return Err(error(
                "captcha_secret",
                "required when CAPTCHA_PROVIDER is set".to_owned(),
            ));
        }
        if let Some(url) = &sms_guard.captcha_verify_url
            && !(url.as_str().starts_with("https://") || url.as_str().starts_with("http://"))
        {
            return Err(error(
                "captcha_verify_url",
                "expected an http(s) URL".to_owned(),
            ));
        }
        let (secret_key, secret_generated) = match &settings.tokens.secret_key {
            Some(key) => (key.secret().clone(), false),
            None => (SecretString::from(random_secret()), true),
        };
        let tokens = &settings.tokens;
        let JwtAlgorithm::EdDsa = tokens.jwt_algorithm;
        let retired = tokens
            .jwt_verification_keys
            .items()
            .iter()
            .map(|k| {
                let public_pem = std::fs::read_to_string(&k.path).map_err(|e| {
                    error(
                        "jwt_verification_keys",
                        format!("cannot read `{}`: {e}", k.path),
                    )
                })?;
                Ok(Ed25519PublicKey {
                    kid: k.kid.clone(),
                    public_pem,
                })
            })
            .collect::<Result<_, SettingsError>>()?;
        let jwt_keys = match (&tokens.jwt_signing_key_file, &tokens.jwt_signing_key_id) {
            (None, None) => JwtKeys::Derived { retired },
            (Some(path), Some(kid)) => {
                let private_pem = std::fs::read_to_string(path.as_str()).map_err(|e| {
                    error(
                        "jwt_signing_key_file",
                        format!("cannot read `{}`: {e}", path.as_str()),
                    )
                })?;
                JwtKeys::File {
                    signing: Ed25519SigningKey {
                        kid: kid.as_str().to_owned(),
                        private_pem,
                    },
                    retired,
                }
            }
            (None, Some(_)) => {
                return Err(error(
                    "jwt_signing_key_file",
                    "required when JWT_SIGNING_KEY_ID is set".to_owned(),
                ));
            }
            (Some(_), None) => {
                return Err(error(
                    "jwt_signing_key_id",
                    "required when JWT_SIGNING_KEY_FILE is set".to_owned(),
                ));
            }
        };
        let mut auth = auth_config(&settings);
        let (channels, mut warnings) = delivery_channels(&settings, &error)?;
        if settings.service.marque_env == Environment::Production {
            for (market, list) in &channels {
                if list.contains(&Channel::Sms)
                    && settings.market(*market).sms_provider == Some(SmsProvider::Console)
                {
                    return Err(error(
                        &sms_provider_key(&settings, *market),
                        "`console` prints every code and is refused when MARQUE_ENV is production"
                            .to_owned(),
                    ));
                }
            }
        }
        auth.channels = channels;
        warnings.extend(check_email(&settings, &error)?);
        let listen_port = u16::try_from(settings.server.port.get()).unwrap_or(u16::MAX);
        Ok(Self {
            settings,
            listen_port,
            secret_key,
            secret_generated,
            jwt_keys,
            auth,
            warnings,
        })
    }

    /// The database URL of `market`.
    pub fn database_url(&self, market: Market) -> DatabaseUrl {
        self.settings
            .market(market)
            .database_url
            .unwrap_or_else(|| DatabaseUrl::default_for(market))
    }

    /// `ACCESS_TOKEN_EXPIRE_MINUTES` as a duration.
    pub fn access_token_ttl(&self) -> Duration {
        Duration::minutes(self.settings.tokens.access_token_expire_minutes.as_i64())
    }

    /// `DATABASE_CONNECT_TIMEOUT_SECONDS` as a duration.
    pub fn connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.settings
                .database
                .database_connect_timeout_seconds
                .get(),
        )
    }

    /// `OUTBOX_POLL_INTERVAL_MS` as a duration.
    pub fn outbox_poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settings.delivery.outbox_poll_interval_ms.get())
    }

    /// The retention periods (`RETENTION_*`).
    pub fn retention_policy(&self) -> RetentionPolicy {
        let r = &self.settings.retention;
        RetentionPolicy {
            challenges: Duration::hours(r.retention_challenges_hours.as_i64()),
            rate_limits: Duration::hours(r.retention_rate_limits_hours.as_i64()),
            outbox: Duration::days(r.retention_outbox_days.as_i64()),
            sessions: Duration::days(r.retention_sessions_days.as_i64()),
            audit: Duration::days(r.retention_audit_days.as_i64()),
            batch_size: r.retention_batch_size.as_u32(),
        }
    }

    /// `RETENTION_INTERVAL_SECONDS` as a duration.
    pub fn retention_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.retention.retention_interval_seconds.get())
    }

    /// `ALLOWED_ORIGINS` as the texts the CORS layer compares with `Origin` headers.
    pub fn allowed_origins(&self) -> Vec<String> {
        let origins = self.settings.server.allowed_origins.items();
        origins.iter().map(|o| o.as_str().to_owned()).collect()
    }

    /// The CAPTCHA check send-code requires (`CAPTCHA_PROVIDER`, `CAPTCHA_SECRET`,
    /// `CAPTCHA_VERIFY_URL`), or `None` without a provider.
    pub fn captcha(
        &self,
    ) -> Option<(
        marque_messaging::CaptchaProvider,
        Option<String>,
        SecretString,
    )> {
        let guard = &self.settings.sms_guard;
        let provider = match guard.captcha_provider? {
            CaptchaProviderName::Turnstile => marque_messaging::CaptchaProvider::Turnstile,
            CaptchaProviderName::HCaptcha => marque_messaging::CaptchaProvider::HCaptcha,
        };
        let secret = guard.captcha_secret.as_ref()?.secret().clone();
        let url = guard
            .captcha_verify_url
            .as_ref()
            .map(|u| u.as_str().to_owned());
        Some((provider, url, secret))
    }

    /// `TRUSTED_PROXIES` as networks.
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        let proxies = self.settings.server.trusted_proxies.items();
        proxies.iter().map(|p| p.0).collect()
    }

    /// The HTTP edge's limits: `BODY_READ_TIMEOUT_SECONDS`, `MAX_CONNECTIONS_PER_IP`.
    pub fn edge(&self) -> marque_api::edge::EdgeSettings {
        let server = &self.settings.server;
        marque_api::edge::EdgeSettings {
            body_read_timeout: std::time::Duration::from_secs(
                server.body_read_timeout_seconds.get(),
            ),
            max_connections_per_ip: server.max_connections_per_ip.as_usize(),
        }
    }

    /// HTTP worker threads: `WORKERS`, else one per core.
    pub fn workers(&self) -> usize {
        self.settings.server.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            Count::as_usize,
        )
    }

    /// Database threads per HTTP worker: `BLOCKING_THREADS`, else the pool shared out among the
    /// workers, so waiting requests queue in FIFO order instead of more threads than connections
    /// contending for the pool (long tails).
    pub fn blocking_threads(&self) -> usize {
        self.settings.server.blocking_threads.map_or_else(
            || (self.settings.database.database_pool_size.as_usize() / self.workers()).max(1),
            Count::as_usize,
        )
    }
}

/// What `MARQUE_ENV=production` refuses, each refusal naming its key through `error` (a dotted
/// key path such as `markets.kg.database_url`, spelled as its source spells it). Settings left
/// at their defaults are visible here as `None` (e.g. a market without `database_url` runs on
/// the implicit SQLite file), so further production rules are one `if` each.
fn check_production(
    settings: &Settings,
    error: &impl Fn(&str, String) -> SettingsError,
) -> Result<(), SettingsError> {
    match &settings.tokens.secret_key {
        None => {
            return Err(error(
                "secret_key",
                "required when MARQUE_ENV is production (e.g. `openssl rand -base64 32`)"
                    .to_owned(),
            ));
        }
        Some(key) => {
            if let Some(why) = key.production_weakness() {
                return Err(error(
                    "secret_key",
                    format!(
                        "{why}: in production it must be at least 32 random bytes given as \
                         base64 or hex; make one with `openssl rand -base64 32`"
                    ),
                ));
            }
        }
    }
    // OWASP Password Storage Cheat Sheet: Argon2id at m = 19 MiB, t = 2 or an equivalent; its
    // weakest listed equivalent is m = 7 MiB, t = 5 (35,840 KiB·passes).
    let cost = settings.passwords.cost();
    if u64::from(cost.memory_kib) * u64::from(cost.iterations) < 35_840 {
        return Err(error(
            "argon2_memory_kib",
            format!(
                "ARGON2_MEMORY_KIB × ARGON2_ITERATIONS is {}: production needs at least 35840 \
                 (e.g. the default 19456 × 2)",
                u64::from(cost.memory_kib) * u64::from(cost.iterations)
            ),
        ));
    }
    // The admin key opens every account: as strong as SECRET_KEY, and not the same secret.
    if let Some(admin) = &settings.admin.admin_api_key {
        if let Some(why) = admin.production_weakness() {
            return Err(error(
                "admin_api_key",
                format!(
                    "{why}: in production it must be at least 32 random bytes given as base64 \
                     or hex; make one with `openssl rand -base64 32`"
                ),
            ));
        }
        let same = settings.tokens.secret_key.as_ref().is_some_and(|k| {
            use marque_domain::ExposeSecret as _;
            k.secret().expose_secret().trim() == admin.secret().expose_secret().trim()
        });
        if same {
            return Err(error(
                "admin_api_key",
                "must differ from SECRET_KEY when MARQUE_ENV is production".to_owned(),
            ));
        }
    }
    // No implicit SQLite file: every market names its database.
    for market in Market::ALL {
        let given = settings.markets.get(&market);
        if given.and_then(|m| m.database_url.as_ref()).is_none() {
            return Err(error(
                &format!("markets.{}.database_url", market.code()),
                "required when MARQUE_ENV is production (no implicit SQLite file)".to_owned(),
            ));
        }
    }
    let otp = &settings.otp;
    if !otp.test_phone_numbers.items().is_empty() {
        let max = chrono::Utc::now() + Duration::days(MAX_TEST_NUMBERS_DAYS);
        match otp.test_phone_numbers_valid_until {
            None => {
                return Err(error(
                    "test_phone_numbers_valid_until",
                    "required with TEST_PHONE_NUMBERS when MARQUE_ENV is production".to_owned(),
                ));
            }
            Some(until) if until.0 > max => {
                return Err(error(
                    "test_phone_numbers_valid_until",
                    format!(
                        "at most {MAX_TEST_NUMBERS_DAYS} days ahead when MARQUE_ENV is production"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The key that chose `market`'s SMS provider: its own `SMS_PROVIDER_{MARKET}`, else
/// `SMS_PROVIDER`.
fn sms_provider_key(settings: &Settings, market: Market) -> String {
    match settings.markets.get(&market).and_then(|m| m.sms_provider) {
        Some(_) => format!("markets.{}.sms_provider", market.code()),
        None => "sms_provider".to_owned(),
    }
}

/// Each market's delivery channels, in fallback order.
type MarketChannels = BTreeMap<Market, Vec<Channel>>;

/// Each market's channels in fallback order: its `CHANNELS_{MARKET}` narrowed to the channels
/// whose provider is configured (a channel is on when its credential is set: the SMS provider's,
/// `WHATSAPP_ACCESS_TOKEN`, `TELEGRAM_GATEWAY_TOKEN`), and the warnings for those left out.
/// A provider in use with a credential but not the rest of its settings, or a market left with
/// no channel, is an error naming the key.
fn delivery_channels(
    settings: &Settings,
    error: &impl Fn(&str, String) -> SettingsError,
) -> Result<(MarketChannels, Vec<String>), SettingsError> {
    let d = &settings.delivery;
    let required = |key: &str, present: bool, why: &str| {
        if present {
            Ok(())
        } else {
            Err(error(key, format!("required {why}")))
        }
    };
    if d.whatsapp_access_token.is_some() {
        let why = "with WHATSAPP_ACCESS_TOKEN";
        required(
            "whatsapp_phone_number_id",
            d.whatsapp_phone_number_id.is_some(),
            why,
        )?;
        required(
            "whatsapp_template_name",
            d.whatsapp_template_name.is_some(),
            why,
        )?;
    }
    let mut out = BTreeMap::new();
    let mut warnings = Vec::new();
    for market in Market::ALL {
        let m = settings.market(market);
        let listed: Vec<Channel> = m
            .channels
            .as_ref()
            .map(|l| l.items().iter().map(|c| c.0).collect())
            .unwrap_or_default();
        let mut on = Vec::new();
        for channel in listed {
            let configured = match channel {
                Channel::Sms => {
                    let key = sms_provider_key(settings, market);
                    let why = |p: SmsProvider| format!("with {key} = {}", p.as_str());
                    match m.sms_provider.unwrap_or(SmsProvider::Console) {
                        SmsProvider::Console => {}
                        p @ SmsProvider::Twilio => {
                            required(
                                "twilio_account_sid",
                                d.twilio_account_sid.is_some(),
                                &why(p),
                            )?;
                            required("twilio_auth_token", d.twilio_auth_token.is_some(), &why(p))?;
                            if m.twilio_from.is_some() == m.twilio_messaging_service_sid.is_some() {
                                let own = settings.markets.get(&market).is_some_and(|g| {
                                    g.twilio_from.is_some()
                                        || g.twilio_messaging_service_sid.is_some()
                                });
                                let key = if own {
                                    format!("markets.{}.twilio_from", market.code())
                                } else {
                                    "twilio_from".to_owned()
                                };
                                return Err(error(
                                    &key,
                                    format!(
                                        "set exactly one of TWILIO_FROM and \
                                         TWILIO_MESSAGING_SERVICE_SID {}",
                                        why(p)
                                    ),
                                ));
                            }
                        }
                        p @ SmsProvider::Sns => {
                            required("aws_region", d.aws_region.is_some(), &why(p))?;
                            required("aws_access_key_id", d.aws_access_key_id.is_some(), &why(p))?;
                            required(
                                "aws_secret_access_key",
                                d.aws_secret_access_key.is_some(),
                                &why(p),
                            )?;
                        }
                        p @ SmsProvider::Webhook => {
                            required("sms_webhook_url", d.sms_webhook_url.is_some(), &why(p))?;
                            required(
                                "sms_webhook_secret",
                                d.sms_webhook_secret.is_some(),
                                &why(p),
                            )?;
                        }
                    }
                    true
                }
                Channel::WhatsApp => d.whatsapp_access_token.is_some(),
                Channel::Telegram => d.telegram_gateway_token.is_some(),
                // `Channel::parse` never yields it: not a code channel.
                Channel::Email => false,
            };
            if configured {
                on.push(channel);
            } else {
                warnings.push(format!(
                    "{}: channel `{channel}` is listed but its provider is not configured; left out",
                    market.code()
                ));
            }
        }
        if on.is_empty() {
            return Err(error(
                &format!("markets.{}.channels", market.code()),
                "no channel of the list has a configured provider".to_owned(),
            ));
        }
        out.insert(market, on);
    }
    Ok((out, warnings))
}

/// The mail transport's settings (issue 10): `EMAIL_PROVIDER=smtp` needs `SMTP_URL` and
/// `SMTP_FROM`, each read here as lettre reads it (never quoted back: the URL holds a password);
/// production refuses `console` (it prints live verification and reset links — whoever reads the
/// logs could take over accounts) and needs `PUBLIC_BASE_URL` (the links' origin). Returns the
/// warning of an `SMTP_URL` left unused.
fn check_email(
    settings: &Settings,
    error: &impl Fn(&str, String) -> SettingsError,
) -> Result<Option<String>, SettingsError> {
    let d = &settings.delivery;
    let production = settings.service.marque_env == Environment::Production;
    match d.email_provider {
        EmailProvider::Console if production => {
            return Err(error(
                "email_provider",
                "`console` prints every verification and reset link and is refused when                  MARQUE_ENV is production; set EMAIL_PROVIDER=smtp with SMTP_URL and SMTP_FROM"
                    .to_owned(),
            ));
        }
        EmailProvider::Console => {
            if d.smtp_url.is_some() {
                return Ok(Some(
                    "SMTP_URL is set but EMAIL_PROVIDER is `console`: emails are printed, not \
                     sent (set EMAIL_PROVIDER=smtp)"
                        .to_owned(),
                ));
            }
        }
        EmailProvider::Smtp => {
            let why = "required with EMAIL_PROVIDER = smtp".to_owned();
            let url = d
                .smtp_url
                .as_ref()
                .ok_or_else(|| error("smtp_url", why.clone()))?;
            let from = d
                .smtp_from
                .as_ref()
                .ok_or_else(|| error("smtp_from", why))?;
            let config = marque_messaging::SmtpConfig {
                url: url.secret().clone(),
                from: from.as_str().to_owned(),
            };
            config.check().map_err(|e| match e {
                marque_messaging::SmtpConfigError::Url(_) => error("smtp_url", e.to_string()),
                marque_messaging::SmtpConfigError::From => error("smtp_from", e.to_string()),
            })?;
            if production && d.public_base_url.is_none() {
                return Err(error(
                    "public_base_url",
                    "required with EMAIL_PROVIDER = smtp when MARQUE_ENV is production: the \
                     links in emails start with it"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(None)
}

/// How far ahead `TEST_PHONE_NUMBERS_VALID_UNTIL` may be in production.
const MAX_TEST_NUMBERS_DAYS: i64 = 30;

/// The domain's tunables from the settings.
fn auth_config(settings: &Settings) -> AuthConfig {
    let otp = &settings.otp;
    let mut auth = AuthConfig::default();
    for m in Market::ALL {
        let market = settings.market(m);
        if let Some(minutes) = market.otp_expiry_minutes {
            auth.otp_ttl.insert(m, Duration::minutes(minutes.as_i64()));
        }
        if let Some(days) = market.refresh_token_expire_days {
            auth.refresh_ttl.insert(m, Duration::days(days.as_i64()));
        }
        if let Some(limit) = market.sms_daily_limit {
            auth.sms_daily_limit.insert(m, limit.as_u32());
        }
    }
    auth.max_attempts = otp.max_verification_attempts.as_u32();
    auth.phone_send_limit.max_hits = otp.max_codes_per_window.as_u32();
    auth.phone_send_limit.window = Duration::minutes(otp.phone_send_window_minutes.as_i64());
    auth.phone_send_limit.cooldown = Duration::seconds(otp.resend_cooldown_seconds.as_i64());
    auth.ip_send_limit.max_hits = otp.ip_send_limit.as_u32();
    auth.ip_send_limit.window = Duration::minutes(otp.ip_send_window_minutes.as_i64());
    auth.ipv6_48_send_limit.max_hits = otp.ipv6_48_send_limit.as_u32();
    auth.ipv6_48_send_limit.window = auth.ip_send_limit.window;
    let guard = &settings.sms_guard;
    auth.sms_guard.total_daily_limit = guard.sms_daily_limit.as_u32();
    auth.sms_guard.prefix_hourly_limit = guard.sms_prefix_hourly_limit.as_u32();
    auth.sms_guard.prefix_alarm_multiple = guard.sms_prefix_alarm_multiple.as_u32();
    auth.ip_verify_limit.max_hits = otp.ip_verify_limit.as_u32();
    auth.ip_verify_limit.window = auth.ip_send_limit.window;
    auth.failures.max_consecutive = otp.max_consecutive_failures.as_u32();
    auth.failures.lock = Duration::minutes(otp.failure_lock_minutes.as_i64());
    auth.require_challenge_id = otp.require_challenge_id;
    auth.test_numbers_valid_until = otp.test_phone_numbers_valid_until.map(|t| t.0);
    // Issue 12, item 7: in production test numbers obey the per-IP and failure limits.
    auth.test_numbers_exempt = settings.service.marque_env != Environment::Production;
    auth.session_max_lifetime = Duration::days(settings.tokens.session_max_lifetime_days.as_i64());
    auth.refresh_grace = Duration::seconds(settings.tokens.refresh_reuse_grace_seconds.as_i64());
    auth.test_numbers = otp
        .test_phone_numbers
        .items()
        .iter()
        .map(|t| (t.e164.clone(), t.code.clone()))
        .collect();
    auth
}

/// 32 random bytes as hex, for development runs without `SECRET_KEY`.
fn random_secret() -> String {
    use marque_domain::RandomSource;
    let mut b = [0u8; 32];
    marque_domain::ThreadCsprng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests;

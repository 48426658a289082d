//! Service configuration from environment variables (12-factor). Every setting has a safe
//! development default except `SECRET_KEY` in production (`MARQUE_ENV=production`).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `MARQUE_ENV` | `development` | `production` refuses to start without `SECRET_KEY` |
//! | `HOST`, `PORT` | `127.0.0.1`, `8000` | listen address |
//! | `SECRET_KEY` | random (development only) | signs tokens, keys OTP hashes and outbox encryption; ≥ 32 bytes |
//! | `JWT_ISSUER` | `marque` | `iss` claim |
//! | `ACCESS_TOKEN_EXPIRE_MINUTES` | `30` | access token lifetime |
//! | `REFRESH_TOKEN_EXPIRE_DAYS` (`_KG`, `_US` per market) | `30` | refresh token lifetime = session idle timeout |
//! | `SESSION_MAX_LIFETIME_DAYS` | `90` | absolute session lifetime |
//! | `REFRESH_REUSE_GRACE_SECONDS` | `10` | a rotated refresh token gets its successor again within this window |
//! | `JWT_ALGORITHM` | `HS256` | `EdDSA` signs with an Ed25519 key and publishes `/.well-known/jwks.json` |
//! | `JWT_SIGNING_KEY_FILE`, `JWT_SIGNING_KEY_ID` | – | EdDSA: PKCS#8 PEM private key and its `kid` |
//! | `JWT_VERIFICATION_KEYS` | empty | EdDSA: retired keys still accepted, `kid=public.pem,…` |
//! | `DATABASE_URL_MARQUE_KG` | `sqlite://data/marque-kg.db` | KG database (`postgres://`, `postgresql://`, `sqlite://`) |
//! | `DATABASE_URL_MARQUE_US` | `sqlite://data/marque-us.db` | US database |
//! | `DATABASE_POOL_SIZE` | `16` | connections per market |
//! | `DATABASE_CONNECT_TIMEOUT_SECONDS` | `5` | pool checkout / connect timeout |
//! | `DEFAULT_MARKET` | `kg` | reported by `GET /api/v1/auth/markets` |
//! | `OTP_EXPIRY_MINUTES_KG`, `OTP_EXPIRY_MINUTES_US` | `10`, `10` | code lifetime per market |
//! | `MAX_VERIFICATION_ATTEMPTS` | `3` | wrong tries per code |
//! | `MAX_CODES_PER_WINDOW` | `3` | codes per number per window |
//! | `VERIFICATION_ATTEMPTS_WINDOW` | `15` | that window, minutes |
//! | `RESEND_COOLDOWN_SECONDS` | `60` | minimum gap between two codes for a number |
//! | `IP_SEND_LIMIT`, `IP_SEND_WINDOW_MINUTES` | `30`, `15` | codes per client IP per window |
//! | `TEST_PHONE_NUMBERS` | empty | `+996555000001=123456,+12125550100=654321`: fixed codes, no message, no send limits |
//! | `SMS_PROVIDER` | `console` | delivery provider (only `console` today) |
//! | `OUTBOX_POLL_INTERVAL_MS` | `200` | delivery worker poll interval |
//! | `ALLOWED_ORIGINS` | empty | CORS origins, comma separated (`*` for any) |
//! | `TRUSTED_PROXIES` | empty | IPs/CIDRs whose `X-Forwarded-For` is believed |
//! | `BODY_READ_TIMEOUT_SECONDS` | `30` | time for a request body to arrive, then 408 |
//! | `MAX_CONNECTIONS_PER_IP` | `64` | open connections per client IP (IPv6 /64), trusted proxies exempt; `0` = no limit |
//! | `WORKERS` | cores | HTTP worker threads |
//! | `BLOCKING_THREADS` | pool size / workers | database threads per HTTP worker |
//! | `LOG_FORMAT` | `text` | `json` for JSON lines |
//! | `RUST_LOG` | `info` | log filter |

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use chrono::Duration;
use ipnet::IpNet;
use marque_domain::{
    AuthConfig, Ed25519PublicKey, Ed25519SigningKey, RateLimitPolicy, SecretString,
};
use marque_markets::{Market, OtpCode, PhoneNumber};

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local development: generated secret allowed.
    Development,
    /// Production: secrets required.
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How access tokens are signed.
#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// HS256 with `SECRET_KEY`.
    Hs256,
    /// EdDSA (Ed25519) with a key pair and the retired public keys still accepted.
    EdDsa {
        /// Current signing key.
        signing: Ed25519SigningKey,
        /// Retired keys.
        retired: Vec<Ed25519PublicKey>,
    },
}

/// The whole configuration of one `marque` process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MARQUE_ENV`.
    pub environment: Environment,
    /// `HOST`.
    pub host: String,
    /// `PORT` (0 picks a free port).
    pub port: u16,
    /// `SECRET_KEY`.
    pub secret_key: SecretString,
    /// Whether `secret_key` was generated because none was set.
    pub secret_generated: bool,
    /// `JWT_ISSUER`.
    pub jwt_issuer: String,
    /// `ACCESS_TOKEN_EXPIRE_MINUTES`.
    pub access_token_ttl: Duration,
    /// Signing algorithm and keys.
    pub jwt_keys: JwtKeys,
    /// Database URL per market (secret: may hold a password).
    pub database_urls: BTreeMap<Market, SecretString>,
    /// `DATABASE_POOL_SIZE`.
    pub pool_size: u32,
    /// `DATABASE_CONNECT_TIMEOUT_SECONDS`.
    pub connect_timeout: std::time::Duration,
    /// `DEFAULT_MARKET`.
    pub default_market: Market,
    /// OTP rules and limits.
    pub auth: AuthConfig,
    /// `SMS_PROVIDER`.
    pub sms_provider: String,
    /// `OUTBOX_POLL_INTERVAL_MS`.
    pub outbox_poll_interval: std::time::Duration,
    /// `ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<String>,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpNet>,
    /// `BODY_READ_TIMEOUT_SECONDS`.
    pub body_read_timeout: std::time::Duration,
    /// `MAX_CONNECTIONS_PER_IP` (0 = unlimited).
    pub max_connections_per_ip: usize,
    /// `WORKERS`.
    pub workers: Option<usize>,
    /// `BLOCKING_THREADS`: database threads per HTTP worker.
    pub blocking_threads: usize,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Builds the configuration from `vars` (variable name → value). Unset or empty variables
    /// take their defaults; malformed values are errors naming the variable.
    pub fn from_vars(vars: HashMap<String, String>) -> anyhow::Result<Self> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        fn num<T: std::str::FromStr>(v: Option<&str>, name: &str, default: T) -> anyhow::Result<T> {
            match v {
                None => Ok(default),
                Some(s) => s
                    .parse()
                    .ok()
                    .with_context(|| format!("{name} must be a number, got `{s}`")),
            }
        }
        let environment = match get("MARQUE_ENV").map(str::to_ascii_lowercase).as_deref() {
            None | Some("development" | "dev" | "test") => Environment::Development,
            Some("production" | "prod") => Environment::Production,
            Some(other) => bail!("MARQUE_ENV must be `development` or `production`, got `{other}`"),
        };
        let (secret_key, secret_generated) = match get("SECRET_KEY") {
            Some(s) if s.len() >= 32 => (SecretString::new(s), false),
            Some(_) => bail!("SECRET_KEY must be at least 32 bytes"),
            None if environment == Environment::Production => {
                bail!("SECRET_KEY is required when MARQUE_ENV=production")
            }
            None => (SecretString::new(random_secret()), true),
        };
        let minutes = |name: &str, default: i64| -> anyhow::Result<Duration> {
            let m: i64 = num(get(name), name, default)?;
            if m <= 0 {
                bail!("{name} must be positive");
            }
            Ok(Duration::minutes(m))
        };
        let mut database_urls = BTreeMap::new();
        for m in Market::ALL {
            let name = format!("DATABASE_URL_MARQUE_{}", m.code().to_ascii_uppercase());
            let url = get(&name).map_or_else(
                || format!("sqlite://data/marque-{}.db", m.code()),
                str::to_owned,
            );
            database_urls.insert(m, SecretString::new(url));
        }
        let mut otp_ttl = BTreeMap::new();
        for m in Market::ALL {
            let name = format!("OTP_EXPIRY_MINUTES_{}", m.code().to_ascii_uppercase());
            otp_ttl.insert(
                m,
                minutes(&name, i64::from(m.profile().default_otp_expiry_minutes))?,
            );
        }
        let days = |name: &str, default: i64| -> anyhow::Result<Duration> {
            let d: i64 = num(get(name), name, default)?;
            if d <= 0 {
                bail!("{name} must be positive");
            }
            Ok(Duration::days(d))
        };
        let refresh_default: i64 = num(
            get("REFRESH_TOKEN_EXPIRE_DAYS"),
            "REFRESH_TOKEN_EXPIRE_DAYS",
            30,
        )?;
        let mut refresh_ttl = BTreeMap::new();
        for m in Market::ALL {
            let name = format!(
                "REFRESH_TOKEN_EXPIRE_DAYS_{}",
                m.code().to_ascii_uppercase()
            );
            refresh_ttl.insert(m, days(&name, refresh_default)?);
        }
        let jwt_keys = match get("JWT_ALGORITHM").map(str::to_ascii_uppercase).as_deref() {
            None | Some("HS256") => JwtKeys::Hs256,
            Some("EDDSA") => {
                let path = get("JWT_SIGNING_KEY_FILE")
                    .context("JWT_ALGORITHM=EdDSA needs JWT_SIGNING_KEY_FILE")?;
                let kid = get("JWT_SIGNING_KEY_ID")
                    .context("JWT_ALGORITHM=EdDSA needs JWT_SIGNING_KEY_ID")?;
                let private_pem = std::fs::read_to_string(path)
                    .with_context(|| format!("reading JWT_SIGNING_KEY_FILE `{path}`"))?;
                let retired = get("JWT_VERIFICATION_KEYS")
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(|entry| {
                        let (kid, path) = entry.split_once('=').with_context(|| {
                            format!("JWT_VERIFICATION_KEYS: `{entry}` is not `kid=path`")
                        })?;
                        let public_pem = std::fs::read_to_string(path.trim())
                            .with_context(|| format!("reading verification key `{path}`"))?;
                        Ok(Ed25519PublicKey {
                            kid: kid.trim().to_owned(),
                            public_pem,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?;
                JwtKeys::EdDsa {
                    signing: Ed25519SigningKey {
                        kid: kid.to_owned(),
                        private_pem,
                    },
                    retired,
                }
            }
            Some(other) => bail!("JWT_ALGORITHM must be `HS256` or `EdDSA`, got `{other}`"),
        };
        let auth = AuthConfig {
            otp_ttl,
            max_attempts: num(
                get("MAX_VERIFICATION_ATTEMPTS"),
                "MAX_VERIFICATION_ATTEMPTS",
                3,
            )?,
            phone_send_limit: RateLimitPolicy {
                max_hits: num(get("MAX_CODES_PER_WINDOW"), "MAX_CODES_PER_WINDOW", 3)?,
                window: minutes("VERIFICATION_ATTEMPTS_WINDOW", 15)?,
                cooldown: Duration::seconds(num(
                    get("RESEND_COOLDOWN_SECONDS"),
                    "RESEND_COOLDOWN_SECONDS",
                    60,
                )?),
            },
            ip_send_limit: RateLimitPolicy {
                max_hits: num(get("IP_SEND_LIMIT"), "IP_SEND_LIMIT", 30)?,
                window: minutes("IP_SEND_WINDOW_MINUTES", 15)?,
                cooldown: Duration::zero(),
            },
            refresh_ttl,
            session_max_lifetime: days("SESSION_MAX_LIFETIME_DAYS", 90)?,
            refresh_grace: Duration::seconds(num(
                get("REFRESH_REUSE_GRACE_SECONDS"),
                "REFRESH_REUSE_GRACE_SECONDS",
                10,
            )?),
            test_numbers: parse_test_numbers(get("TEST_PHONE_NUMBERS").unwrap_or(""))?,
        };
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let trusted_proxies = list("TRUSTED_PROXIES")
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .with_context(|| format!("TRUSTED_PROXIES: `{s}` is not an IP or CIDR"))
            })
            .collect::<anyhow::Result<_>>()?;
        let sms_provider = get("SMS_PROVIDER")
            .unwrap_or("console")
            .to_ascii_lowercase();
        if sms_provider != "console" {
            bail!("SMS_PROVIDER `{sms_provider}` is not available yet (supported: console)");
        }
        let pool_size: u32 = num(get("DATABASE_POOL_SIZE"), "DATABASE_POOL_SIZE", 16)?.max(1);
        let workers: Option<usize> = get("WORKERS")
            .map(|w| num(Some(w), "WORKERS", 1))
            .transpose()?;
        Ok(Self {
            environment,
            host: get("HOST").unwrap_or("127.0.0.1").to_owned(),
            port: num(get("PORT"), "PORT", 8000)?,
            secret_key,
            secret_generated,
            jwt_issuer: get("JWT_ISSUER").unwrap_or("marque").to_owned(),
            access_token_ttl: minutes("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?,
            jwt_keys,
            database_urls,
            pool_size,
            connect_timeout: std::time::Duration::from_secs(num(
                get("DATABASE_CONNECT_TIMEOUT_SECONDS"),
                "DATABASE_CONNECT_TIMEOUT_SECONDS",
                5,
            )?),
            default_market: get("DEFAULT_MARKET")
                .unwrap_or("kg")
                .parse()
                .context("DEFAULT_MARKET must be `kg` or `us`")?,
            auth,
            sms_provider,
            outbox_poll_interval: std::time::Duration::from_millis(num(
                get("OUTBOX_POLL_INTERVAL_MS"),
                "OUTBOX_POLL_INTERVAL_MS",
                200,
            )?),
            allowed_origins: list("ALLOWED_ORIGINS"),
            trusted_proxies,
            body_read_timeout: match num(
                get("BODY_READ_TIMEOUT_SECONDS"),
                "BODY_READ_TIMEOUT_SECONDS",
                30.0_f64,
            )? {
                s if s > 0.0 && s <= 3600.0 => std::time::Duration::from_secs_f64(s),
                _ => bail!("BODY_READ_TIMEOUT_SECONDS must be between 0 and 3600"),
            },
            max_connections_per_ip: num(
                get("MAX_CONNECTIONS_PER_IP"),
                "MAX_CONNECTIONS_PER_IP",
                64,
            )?,
            // Default: the pool shared out among the workers, so waiting requests queue in FIFO order
            // instead of more threads than connections contending for the pool (long tails).
            blocking_threads: num(
                get("BLOCKING_THREADS"),
                "BLOCKING_THREADS",
                (pool_size as usize / workers.unwrap_or_else(default_workers)).max(1),
            )?
            .max(1),
            workers,
            log_format: match get("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => bail!("LOG_FORMAT must be `text` or `json`, got `{other}`"),
            },
        })
    }
}

/// actix-web's default worker count: one per available core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Parses `+996555000001=123456,+12125550100=654321` into E.164 → code.
fn parse_test_numbers(s: &str) -> anyhow::Result<HashMap<String, OtpCode>> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (phone, code) = entry
                .split_once('=')
                .with_context(|| format!("TEST_PHONE_NUMBERS: `{entry}` is not `number=code`"))?;
            let phone = PhoneNumber::parse(phone, None)
                .map_err(|e| anyhow::anyhow!("TEST_PHONE_NUMBERS: `{phone}`: {e}"))?;
            let code = OtpCode::parse(code)
                .map_err(|e| anyhow::anyhow!("TEST_PHONE_NUMBERS: code for `{phone}`: {e}"))?;
            Ok((phone.e164().to_owned(), code))
        })
        .collect()
}

/// 32 random bytes as hex, for development runs without `SECRET_KEY`.
fn random_secret() -> String {
    use marque_domain::RandomSource;
    let mut b = [0u8; 32];
    marque_domain::OsRandom.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_in_development() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert!(c.secret_generated);
        assert_eq!(c.port, 8000);
        assert_eq!(
            c.database_urls[&Market::Kg].expose(),
            "sqlite://data/marque-kg.db"
        );
        assert_eq!(c.auth.max_attempts, 3);
        assert_eq!(c.auth.phone_send_limit.window, Duration::minutes(15));
        assert!(c.auth.test_numbers.is_empty());
        assert_eq!(c.body_read_timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.max_connections_per_ip, 64);
    }

    #[test]
    fn production_requires_a_secret() {
        let err = Config::from_vars(vars(&[("MARQUE_ENV", "production")])).unwrap_err();
        assert!(err.to_string().contains("SECRET_KEY"));
        let key = "k".repeat(32);
        assert!(
            Config::from_vars(vars(&[("MARQUE_ENV", "production"), ("SECRET_KEY", &key)])).is_ok()
        );
        assert!(Config::from_vars(vars(&[("SECRET_KEY", "short")])).is_err());
    }

    #[test]
    fn test_numbers_and_lists_parse() {
        let c = Config::from_vars(vars(&[
            (
                "TEST_PHONE_NUMBERS",
                "+996 555 000 001=123456, +12125550100=654321",
            ),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
            ("ALLOWED_ORIGINS", "https://shop.example"),
        ]))
        .unwrap();
        assert_eq!(c.auth.test_numbers["+996555000001"].as_str(), "123456");
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.allowed_origins, vec!["https://shop.example"]);
        assert!(Config::from_vars(vars(&[("TEST_PHONE_NUMBERS", "+996555000001=12")])).is_err());
        assert!(Config::from_vars(vars(&[("PORT", "eighty")])).is_err());
        assert!(Config::from_vars(vars(&[("DEFAULT_MARKET", "fr")])).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_vars(vars(&[(
            "DATABASE_URL_MARQUE_KG",
            "postgres://u:hunter2hunter2@db/kg",
        )]))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"));
        assert!(!dbg.contains(c.secret_key.expose()));
    }
}

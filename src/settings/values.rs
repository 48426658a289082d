//! Value types of the settings: each parses its text once (parse, don't validate), and its
//! `expected …` text is what an operator reads when a value is refused.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use ipnet::IpNet;
use marque_domain::{Channel, ExposeSecret, SecretString};
use marque_markets::{OtpCode, PhoneNumber};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A whole number from `MIN` to `MAX` (both included). Read from a TOML integer or from the text
/// of an environment variable; anything else is refused with the range in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Whole<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Whole<MIN, MAX> {
    /// `value` moved into the range. Used for built-in defaults, which are in range (a unit test
    /// checks that the defaults survive unchanged).
    pub fn clamped(value: u64) -> Self {
        Self(value.clamp(MIN, MAX))
    }

    /// `value` if it is in range.
    pub fn new(value: u64) -> Option<Self> {
        (MIN..=MAX).contains(&value).then_some(Self(value))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The number as `u32` (saturating; the ranges used for `u32` settings fit).
    pub fn as_u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }

    /// The number as `i64` (saturating), for `chrono::Duration`.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// The number as `usize` (saturating).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Whole<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Whole<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for V<MIN, MAX> {
            type Value = Whole<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if MAX >= u64::from(u32::MAX) {
                    write!(f, "a whole number of at least {MIN}")
                } else {
                    write!(f, "a whole number from {MIN} to {MAX}")
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Whole::new(v).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(
                        Unexpected::Other("a larger number"),
                        &self,
                    )),
                }
            }
        }
        // Text from the environment is turned into a number by figment's lossy extraction when
        // it reads as one; other text reaches `visit_str` and is refused with the range.
        d.deserialize_u64(V::<MIN, MAX>)
    }
}

/// A TCP port an operator can listen on (1–65535). Port 0 ("any free port") is refused here
/// because nobody could find the service; tests that want it set it on [`super::Config`] in code.
pub type Port = Whole<1, 65_535>;
/// A count that must be at least 1 (attempts, codes, connections, threads).
pub type Count = Whole<1, { u32::MAX as u64 }>;
/// Minutes, at least 1 and at most a year (525,600 minutes).
pub type Minutes = Whole<1, 525_600>;
/// Days, at least 1 and at most ten years (3,650 days).
pub type Days = Whole<1, 3_650>;
/// Seconds, 0 to one day (86,400 s).
pub type Seconds = Whole<0, 86_400>;
/// Seconds, 1 to one hour (3,600 s).
pub type PositiveSeconds = Whole<1, 3_600>;
/// Open connections per client, 0 (no cap) to 1,000,000.
pub type ConnectionCap = Whole<0, 1_000_000>;
/// Milliseconds, 1 to one minute (60,000 ms).
pub type Millis = Whole<1, 60_000>;
/// Consecutive wrong codes before a number is locked: 1 to 100 (NIST SP 800-63B §5.2.2 caps
/// failed attempts on one account at 100).
pub type FailureLimit = Whole<1, 100>;
/// Argon2 memory in KiB: 8 KiB to 4 GiB (issue 10).
pub type Argon2Memory = Whole<8, 4_194_304>;
/// Argon2 passes: 1 to 100.
pub type Argon2Passes = Whole<1, 100>;
/// Argon2 lanes: 1 to 64.
pub type Argon2Lanes = Whole<1, 64>;
/// Password hashes running at once: 1 to 1,024.
pub type HashConcurrency = Whole<1, 1_024>;

/// An instant, given as RFC 3339 (`2026-12-31T18:00:00Z`, any offset) or as a date
/// (`2026-12-31`, meaning through that day: until the start of the next day, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub chrono::DateTime<chrono::Utc>);

impl Instant {
    /// Parses either form.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(Self(t.with_timezone(&chrono::Utc)));
        }
        let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        let next = day.succ_opt()?.and_hms_opt(0, 0, 0)?;
        Some(Self(next.and_utc()))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Instant;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an RFC 3339 date-time like 2026-12-31T18:00:00Z or a date like 2026-12-31",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Instant::parse(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// Declares a closed set of spellings (case-insensitive, with aliases) read from settings.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $canon:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// The spelling written in settings files and printed by `marque config`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $canon ),+
                }
            }

            /// What a value must be, for error messages.
            fn expected() -> String {
                let choices: Vec<String> = [$($canon),+].iter().map(|c| format!("`{c}`")).collect();
                format!("one of {} (any case)", choices.join(", "))
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                let s = s.trim();
                $(
                    if s.eq_ignore_ascii_case($canon) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Ok(Self::$variant);
                    }
                )+
                Err(())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse()
                    .map_err(|()| {
                        de::Error::invalid_value(Unexpected::Str(&text), &Self::expected().as_str())
                    })
            }
        }
    };
}

choice! {
    /// Where the service runs (`MARQUE_ENV`).
    pub enum Environment {
        /// Local development: a random secret per run is allowed.
        Development = "development" | "dev" | "test",
        /// Production: a secret is required.
        Production = "production" | "prod",
    }
}

choice! {
    /// Log output format (`LOG_FORMAT`).
    pub enum LogFormat {
        /// Human-readable lines.
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

choice! {
    /// How access tokens are signed (`JWT_ALGORITHM`).
    /// Only EdDSA: the shared-secret HS256 mode was removed (issue 12 item 3), so no service
    /// that verifies tokens can mint them (RFC 8725 §3.5).
    pub enum JwtAlgorithm {
        /// Ed25519 with `JWT_SIGNING_KEY_FILE`, or a key derived from `SECRET_KEY`; public keys
        /// at `/.well-known/jwks.json`.
        EdDsa = "EdDSA",
    }
}

choice! {
    /// Delivery provider (`SMS_PROVIDER`).
    pub enum SmsProvider {
        /// Prints codes on the console (development only; refused in production).
        Console = "console",
        /// Twilio Programmable Messaging (`TWILIO_*`).
        Twilio = "twilio",
        /// AWS SNS `Publish` (`AWS_*`, `SNS_*`).
        Sns = "sns",
        /// Any regional gateway by a Standard Webhooks–signed POST (`SMS_WEBHOOK_*`).
        Webhook = "webhook",
    }
}

choice! {
    /// Mail transport (`EMAIL_PROVIDER`, issue 10).
    pub enum EmailProvider {
        /// Prints each email's recipient, subject and text (with its link) on the console
        /// (development only; refused in production).
        Console = "console",
        /// SMTP submission (`SMTP_URL`, `SMTP_FROM`).
        Smtp = "smtp",
    }
}

choice! {
    /// CAPTCHA provider whose token send-code requires (`CAPTCHA_PROVIDER`).
    pub enum CaptchaProviderName {
        /// Cloudflare Turnstile.
        Turnstile = "turnstile",
        /// hCaptcha.
        HCaptcha = "hcaptcha",
    }
}

/// A provider credential (`CAPTCHA_SECRET`, `TWILIO_AUTH_TOKEN`, `AWS_SECRET_ACCESS_KEY`,
/// `SMS_WEBHOOK_SECRET`, `WHATSAPP_ACCESS_TOKEN`, `TELEGRAM_GATEWAY_TOKEN`, `SMTP_URL`): non-empty, redacted
/// like [`SecretKey`] in `Debug` and `marque config`, never quoted in errors.
#[derive(Clone)]
pub struct ProviderSecret(SecretString);

impl ProviderSecret {
    /// The secret.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProviderSecret([REDACTED])")
    }
}

impl Serialize for ProviderSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for ProviderSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = deserialize_secret_text(d, "a provider secret")?;
        if text.expose_secret().trim().is_empty() {
            return Err(de::Error::custom("expected a non-empty secret"));
        }
        Ok(Self(text))
    }
}

/// `SECRET_KEY`: at least 32 bytes. `Debug` and `marque config` print it redacted; error
/// messages never quote it.
#[derive(Clone)]
pub struct SecretKey(SecretString);

/// Shortest accepted `SECRET_KEY`, in bytes.
pub const SECRET_KEY_MIN_BYTES: usize = 32;

/// Fewest distinct byte values accepted in a production `SECRET_KEY`: 32 random bytes have about
/// 30, a repeated pattern (`aaaa…`, `0000…`, `0123…cdef` twice) a handful.
const SECRET_KEY_MIN_DISTINCT_BYTES: usize = 16;

/// Fewest distinct characters accepted in a production `SECRET_KEY` text (`aaaa…`, `0000…`,
/// `abab…` have one or two).
const SECRET_KEY_MIN_DISTINCT_CHARS: usize = 8;

/// Placeholder words refused in a production `SECRET_KEY` (none is likely, ≥ 6 letters, in
/// random base64: the chance is below 10^-7).
const SECRET_KEY_PLACEHOLDERS: [&str; 7] = [
    "changeme",
    "change_me",
    "change-me",
    "secret",
    "password",
    "example",
    "placeholder",
];

impl SecretKey {
    /// The key.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// Why this key is too weak for production, if it is (NIST SP 800-63B §5.1.1.2 / §5.2.2
    /// spirit: a key must be random, not chosen; RFC 8725 §3.5: keys with enough entropy): it
    /// must be at least [`SECRET_KEY_MIN_BYTES`] bytes given as hex or base64 (standard or
    /// URL-safe, padding optional), with enough distinct bytes and no placeholder word. The
    /// answer never quotes the key.
    pub fn production_weakness(&self) -> Option<&'static str> {
        let text = self.0.expose_secret().trim();
        let lower = text.to_ascii_lowercase();
        if SECRET_KEY_PLACEHOLDERS.iter().any(|w| lower.contains(w)) {
            return Some("is a placeholder");
        }
        // Random hex of 64 characters uses all 16 digits, random base64 about 32 symbols.
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        if chars.len() < SECRET_KEY_MIN_DISTINCT_CHARS {
            return Some("has too little entropy (repeated characters)");
        }
        let Some(bytes) = decode_key_text(text) else {
            return Some("is not hex or base64");
        };
        if bytes.len() < SECRET_KEY_MIN_BYTES {
            return Some("decodes to fewer than 32 bytes");
        }
        let mut seen = [false; 256];
        for b in &bytes {
            seen[usize::from(*b)] = true;
        }
        if seen.iter().filter(|s| **s).count() < SECRET_KEY_MIN_DISTINCT_BYTES {
            return Some("has too little entropy (repeated characters)");
        }
        None
    }
}

/// The bytes of a key written as hex (even length, hex digits only) or base64 (standard or
/// URL-safe alphabet, padding optional).
fn decode_key_text(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if text.len().is_multiple_of(2)
        && !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect();
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

impl Serialize for SecretKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = deserialize_secret_text(d, "a string of at least 32 bytes")?;
        if text.expose_secret().len() < SECRET_KEY_MIN_BYTES {
            return Err(de::Error::custom(format_args!(
                "expected at least {SECRET_KEY_MIN_BYTES} bytes (e.g. `openssl rand -base64 32`), \
                 got {}",
                text.expose_secret().len()
            )));
        }
        Ok(Self(text))
    }
}

/// A database URL (`postgres://`, `postgresql://` or `sqlite://`). It may hold a password:
/// `Debug` prints nothing of it and [`Serialize`] (`marque config`) prints it with the password
/// replaced by `***`.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

/// URL schemes a market database may use; the store picks the backend from the scheme.
const DATABASE_SCHEMES: [&str; 3] = ["postgres://", "postgresql://", "sqlite://"];

impl DatabaseUrl {
    /// `url` if it has a supported scheme and something after it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let expected = "expected a URL starting with postgres://, postgresql:// or sqlite://";
        if url.is_empty() {
            return Err(format!("{expected}, got an empty value"));
        }
        match DATABASE_SCHEMES.iter().find_map(|s| url.strip_prefix(s)) {
            Some(rest) if !rest.is_empty() => Ok(Self(SecretString::from(url))),
            Some(_) => Err(format!("{expected} followed by a host or a file path")),
            None => Err(expected.to_owned()),
        }
    }

    /// The built-in default of `market`: an SQLite file under `./data/`.
    pub fn default_for(market: marque_markets::Market) -> Self {
        Self(SecretString::from(format!(
            "sqlite://data/marque-{}.db",
            market.code()
        )))
    }

    /// The URL, password included: only for connecting.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The URL with its password (in the user info or a `password=` parameter) as `***`.
    pub fn redacted(&self) -> String {
        let raw = self.0.expose_secret();
        if raw.starts_with("sqlite://") {
            return raw.to_owned();
        }
        match url::Url::parse(raw) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                if url.query_pairs().any(|(k, _)| k == "password") {
                    let pairs: Vec<(String, String)> = url
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if k == "password" {
                                "***".into()
                            } else {
                                v.into_owned()
                            };
                            (k.into_owned(), v)
                        })
                        .collect();
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                url.to_string()
            }
            // Not a URL the `url` crate reads (libpq accepts more): print nothing of it.
            Err(_) => "[REDACTED]".to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl([REDACTED])")
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = deserialize_secret_text(
            d,
            "a URL starting with postgres://, postgresql:// or sqlite://",
        )?;
        Self::parse(text.expose_secret()).map_err(de::Error::custom)
    }
}

/// Reads a string without ever echoing a non-string value in the error.
fn deserialize_secret_text<'de, D: Deserializer<'de>>(
    d: D,
    expected: &'static str,
) -> Result<SecretString, D::Error> {
    struct V(&'static str);
    impl Visitor<'_> for V {
        type Value = SecretString;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretString, E> {
            Ok(SecretString::from(v))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretString, E> {
            Err(E::invalid_type(Unexpected::Other("a number"), &self))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretString, E> {
            Err(E::invalid_type(Unexpected::Other("a number"), &self))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretString, E> {
            Err(E::invalid_type(Unexpected::Other("a number"), &self))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretString, E> {
            Err(E::invalid_type(Unexpected::Other("a boolean"), &self))
        }
    }
    d.deserialize_str(V(expected))
}

/// One entry of a [`List`]: parsed from text, printed back as text.
pub trait ListItem: Sized + fmt::Display {
    /// What an entry looks like, for error messages.
    const EXPECTED: &'static str;
    /// Parses one (trimmed, non-empty) entry.
    fn parse(entry: &str) -> Result<Self, String>;
}

/// A list read from a TOML array of strings or from comma-separated text (environment
/// variables); empty entries are skipped, so an empty variable is an empty list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> List<T> {
    /// The entries.
    pub fn items(&self) -> &[T] {
        &self.0
    }
}

impl<T: ListItem> Serialize for List<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de, T: ListItem> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: ListItem> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a comma-separated list or an array of {}", T::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<List<T>, E> {
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(parse_item)
                    .collect()
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    let entry = entry.trim();
                    if !entry.is_empty() {
                        items.push(parse_item(entry)?);
                    }
                }
                Ok(List(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

fn parse_item<T: ListItem, E: de::Error>(entry: &str) -> Result<T, E> {
    T::parse(entry)
        .map_err(|why| E::custom(format_args!("`{entry}`: {why}; expected {}", T::EXPECTED)))
}

/// A CORS origin: `*` (any) or `scheme://host[:port]`, stored the way browsers send it
/// (lowercase, default port dropped) because the comparison is byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// `*` or the serialized origin.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ListItem for Origin {
    const EXPECTED: &'static str =
        "`*` or origins like https://shop.example (scheme, host, optional port)";
    fn parse(entry: &str) -> Result<Self, String> {
        if entry == "*" {
            return Ok(Self(entry.to_owned()));
        }
        let url = url::Url::parse(entry).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("not an http(s) origin".to_owned());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("an origin has no path, query or fragment".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("an origin has no user name or password".to_owned());
        }
        Ok(Self(url.origin().ascii_serialization()))
    }
}

/// A proxy address or network whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(pub IpNet);

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ListItem for ProxyNet {
    const EXPECTED: &'static str = "IP addresses or CIDR networks like 10.0.0.0/8";
    fn parse(entry: &str) -> Result<Self, String> {
        entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
            .map(Self)
            .map_err(|_| "not an IP address or CIDR network".to_owned())
    }
}

/// A test number with its fixed code: `+996555000001=123456`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNumber {
    /// The number in E.164.
    pub e164: String,
    /// Its fixed code.
    pub code: OtpCode,
}

impl fmt::Display for TestNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.e164, self.code.as_str())
    }
}

impl ListItem for TestNumber {
    const EXPECTED: &'static str = "`number=code` entries like +996555000001=123456";
    fn parse(entry: &str) -> Result<Self, String> {
        let (phone, code) = entry.split_once('=').ok_or("no `=`")?;
        let phone = PhoneNumber::parse(phone.trim(), None).map_err(|e| e.to_string())?;
        let code = OtpCode::parse(code.trim()).map_err(|e| format!("code: {e}"))?;
        Ok(Self {
            e164: phone.e164().to_owned(),
            code,
        })
    }
}

/// A delivery channel in a `CHANNELS_{MARKET}` list: `sms`, `whatsapp` or `telegram`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelName(pub Channel);

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl ListItem for ChannelName {
    const EXPECTED: &'static str = "channels `sms`, `whatsapp`, `telegram` in fallback order";
    fn parse(entry: &str) -> Result<Self, String> {
        Channel::parse(&entry.to_ascii_lowercase())
            .map(Self)
            .ok_or_else(|| "unknown channel".to_owned())
    }
}

/// An absolute `http://` or `https://` URL (provider base URLs, `PUBLIC_BASE_URL`), kept
/// without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// A built-in default (written valid in the source).
    pub fn fixed(value: &'static str) -> Self {
        Self(value.trim_end_matches('/').to_owned())
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let text = text.trim();
        let url = url::Url::parse(text)
            .map_err(|e| de::Error::custom(format_args!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(de::Error::custom("expected an http:// or https:// URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(de::Error::custom(
                "credentials do not belong in the URL; use the provider's secret settings",
            ));
        }
        Ok(Self(text.trim_end_matches('/').to_owned()))
    }
}

/// A retired EdDSA verification key: `kid=path/to/public.pem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// Key id.
    pub kid: String,
    /// PEM file with the public key.
    pub path: String,
}

impl fmt::Display for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kid, self.path)
    }
}

impl ListItem for KeyFile {
    const EXPECTED: &'static str = "`kid=path.pem` entries";
    fn parse(entry: &str) -> Result<Self, String> {
        let (kid, path) = entry.split_once('=').ok_or("no `=`")?;
        let (kid, path) = (kid.trim(), path.trim());
        if kid.is_empty() || path.is_empty() {
            return Err("empty key id or path".to_owned());
        }
        Ok(Self {
            kid: kid.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// Text that must not be empty (a host name, an issuer, a key id, a file path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// `value` (trimmed) if it is not empty.
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty()).then(|| Self(value.to_owned()))
    }

    /// A built-in default (written non-empty in the source).
    pub fn fixed(value: &'static str) -> Self {
        Self(value.to_owned())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(&text).ok_or_else(|| de::Error::custom("expected a non-empty value"))
    }
}

/// Hours, at least 1 and at most ten years.
pub type Hours = Whole<1, 87_600>;

//! Shared test fixtures of Marque Auth (dev-only, never published).
//!
//! Tests run on the one storage implementation, `marque-store`: a migrated [`TestStore`] per
//! market on a throwaway SQLite file (fast, always available) or a throwaway PostgreSQL database
//! (where locking and concurrency matter) named by [`POSTGRES_URL_VAR`]. On top: a
//! [`ManualClock`], a [`FixedRandom`], [`Services`] (an `AuthService` and an `AccountService`
//! wired on the real stores, with [`Services::sign_in`]), a capturing [`marque_domain::MessageSender`]
//! ([`Capture`]) and an outage switch per store ([`TestStore::set_down`]). For email (issue 10): a
//! real SMTP server ([`SmtpServer`]) capturing what it accepts, and a headless Chromium
//! ([`Browser`]) for pages that must work in a real browser.
//!
//! Without [`POSTGRES_URL_VAR`] the PostgreSQL half of a suite is skipped, and says so once per
//! test binary on stderr (past the test harness's output capture); with `CI` set, a missing
//! variable fails the test instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod clock;
mod db;
mod email;
mod notifications;
mod proxy;
mod services;
mod smtp;
mod store;

pub use browser::{BROWSER_WAIT, Browser};
pub use clock::{FixedRandom, ManualClock};
pub use db::{TestDatabase, sqlite_connection};
pub use email::{emails, latest_email};
pub use marque_store::Backend;
pub use notifications::notification;
pub use proxy::TcpProxy;
pub use services::{ADMIN_KEY, Capture, SECRET, Services};
pub use smtp::{CapturedMail, SmtpServer};
pub use store::{OutboxRow, Switch, TestStore};

/// A phone number that must parse (E.164, or a form that names its market).
pub fn phone(number: &str) -> marque_markets::PhoneNumber {
    marque_markets::PhoneNumber::parse(number, None).unwrap()
}

/// A client at `ip` with `user_agent`.
pub fn client_info(ip: &str, user_agent: &str) -> marque_domain::ClientInfo {
    marque_domain::ClientInfo {
        ip: Some(ip.into()),
        user_agent: Some(user_agent.into()),
    }
}

/// A code other than `code` (so certainly wrong).
pub fn wrong_code(code: &marque_markets::OtpCode) -> marque_markets::OtpCode {
    marque_markets::OtpCode::parse(if code.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    })
    .unwrap()
}

/// A code for `phone` at `now` that `matches` checks: the newest challenge (no `challenge_id`),
/// no per-IP or failure limits.
pub fn code_check<'a>(
    phone: &'a marque_markets::PhoneNumber,
    now: chrono::DateTime<chrono::Utc>,
    max_attempts: u32,
    matches: &'a (dyn Fn(&[u8]) -> bool + Sync),
) -> marque_domain::CodeCheck<'a> {
    marque_domain::CodeCheck {
        phone,
        now,
        max_attempts,
        matches,
        challenge_id: None,
        guard: marque_domain::AttemptGuard::default(),
    }
}

/// Environment variable naming a PostgreSQL admin URL for throwaway databases, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_URL_VAR: &str = "MARQUE_TEST_POSTGRES_URL";

/// The PostgreSQL admin URL of [`POSTGRES_URL_VAR`], or `None` — after telling stderr, once per
/// test binary, that the PostgreSQL tests are skipped.
///
/// # Panics
/// When the variable is missing and `CI` is set: CI must run both backends.
pub fn postgres_admin_url() -> Option<String> {
    if let Some(url) = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{POSTGRES_URL_VAR} is not set, and CI is: the PostgreSQL half of the suite must run in CI"
    );
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        use std::io::Write;
        let binary = std::env::args().next().unwrap_or_default();
        // Written to the stderr handle, not with `eprintln!`, which the test harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "\n\
             ************************************************************************\n\
             * POSTGRESQL TESTS SKIPPED: {POSTGRES_URL_VAR} is not set.\n\
             * Only the SQLite half of {binary} runs.\n\
             * Set it to an admin URL, e.g. postgres://postgres@127.0.0.1:5432/postgres\n\
             ************************************************************************\n"
        );
    });
    None
}

/// Declares each named scenario `fn(&TestStore)` twice: `sqlite::<name>` and `postgres::<name>`,
/// each on a fresh migrated KG store.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() {
                super::$name(&$crate::TestStore::sqlite(::marque_markets::Market::Kg))
            } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(store) = $crate::TestStore::new(
                    $crate::Backend::Postgres,
                    ::marque_markets::Market::Kg,
                ) {
                    super::$name(&store)
                }
            } )*
        }
    };
}

/// An SMS as the outbox worker hands it to a provider, for provider tests: code `012345` for
/// `purpose`, id `{market}-42`, to `+996505325311` (KG) or `+12025550143` (US) with a text in the
/// market's language, expiring at 2026-12-01T12:05:00Z.
pub fn outgoing_sms(
    market: marque_markets::Market,
    purpose: marque_markets::OtpPurpose,
) -> marque_domain::OutgoingMessage {
    use chrono::TimeZone as _;
    use marque_markets::Market;
    let (recipient, text) = match market {
        Market::Kg => (
            "+996505325311",
            "Marque: ваш код 012345. Никому его не сообщайте.",
        ),
        Market::Us => (
            "+12025550143",
            "Marque: your code is 012345. Do not share it.",
        ),
    };
    marque_domain::OutgoingMessage {
        id: format!("{}-42", market.code()),
        channel: marque_domain::Channel::Sms,
        market,
        language: market.language(),
        recipient: recipient.into(),
        code: marque_markets::OtpCode::from_index(12_345),
        purpose,
        text: text.into(),
        expires_at: chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 12, 5, 0)
            .single()
            .expect("a valid instant"),
    }
}

//! The SMS-pumping guards through `AuthService` on the real store (issue 12, item 14).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::Ordering;

use chrono::{Duration, TimeZone, Utc};
use marque_domain::{AuthConfig, AuthError, ClientInfo};
use marque_markets::PhoneNumber;
use marque_testkit::Services;

fn client(i: u32) -> ClientInfo {
    ClientInfo {
        ip: Some(format!("198.51.100.{}", i % 250)),
        user_agent: None,
    }
}

fn kg(i: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+996555{:06}", 100_000 + i), None).unwrap()
}

/// A prefix running at five times its usual rate raises one alarm (WARN + counter) and keeps
/// sending; its hourly limit then refuses with `SmsBudgetExceeded`, counted too.
#[test]
fn prefix_alarm_and_limit_are_counted() {
    let mut config = AuthConfig::default();
    config.sms_guard.prefix_hourly_limit = 30;
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let s = Services::sqlite(config, start);
    let metrics = s.auth.sms_guard_metrics();
    // A day of two messages an hour: no alarm.
    let mut n = 0;
    for _ in 0..24 {
        for _ in 0..2 {
            n += 1;
            s.auth.send_code(&kg(n), &client(n)).unwrap();
        }
        s.clock.advance(Duration::hours(1));
    }
    assert_eq!(metrics.prefix_alarms.load(Ordering::Relaxed), 0);
    // Then 30 in one hour: the 21st crosses max(5 × baseline, 20).
    for sent in 1..=30 {
        n += 1;
        s.auth.send_code(&kg(n), &client(n)).unwrap();
        let expected = u64::from(sent >= 21);
        assert_eq!(
            metrics.prefix_alarms.load(Ordering::Relaxed),
            expected,
            "after {sent} messages this hour"
        );
    }
    n += 1;
    let refused = s.auth.send_code(&kg(n), &client(n)).unwrap_err();
    assert!(matches!(refused, AuthError::SmsBudgetExceeded(s) if s <= 3600));
    assert_eq!(metrics.prefix_limit_trips.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.daily_budget_trips.load(Ordering::Relaxed), 0);
}

//! Disabled accounts, the audit log and retention (issue 12, items 17–19), through `AuthService`
//! and `RetentionService` on the real stores of both backends, with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use marque_domain::Clock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use marque_domain::{
    AuditRepository, AuthConfig, AuthError, ClientInfo, LogoutScope, RetentionPolicy,
    RetentionRepository, RetentionService, StoredAudit,
};
use marque_markets::{Market, OtpCode};
use marque_testkit::{Backend, Services, client_info, phone, wrong_code};

const KG: &str = "+996505325311";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn client() -> ClientInfo {
    client_info("198.51.100.23", "ShopApp/7.1 (iPhone)")
}

/// Declares `$name_sqlite` and `$name_postgres` running `$name(backend)`.
macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::Postgres) } )*
        }
    };
}

both!(
    a_disabled_account_cannot_sign_in_refresh_or_use_its_token,
    the_audit_log_records_who_did_what_from_where_without_secrets,
    retention_deletes_what_is_past_its_period_and_keeps_the_rest,
    a_tripped_sms_guard_is_audited_without_the_number,
    a_lock_and_test_number_use_are_audited
);

fn services(backend: Backend) -> Option<Services> {
    Services::new(backend, AuthConfig::default(), start())
}

fn audit(f: &Services, market: Market) -> Vec<StoredAudit> {
    let mut rows = f.store(market).repo().recent_audit(100).unwrap();
    rows.reverse();
    rows
}

/// The event kinds of `rows`, in order.
fn kinds(rows: &[StoredAudit]) -> Vec<&str> {
    rows.iter().map(|r| r.event.as_str()).collect()
}

fn a_disabled_account_cannot_sign_in_refresh_or_use_its_token(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let p = phone(KG);
    let (login, who) = f.sign_in(KG, Some("test"));
    assert_eq!(
        f.kg.sql(&format!(
            "UPDATE users SET is_active = false WHERE id = {}",
            who.user.id.0
        )),
        1
    );
    // The access token of a live session no longer authenticates (the extractor's one query).
    assert!(matches!(
        f.auth.authenticate(&login.access_token),
        Err(AuthError::InvalidToken)
    ));
    // Nor does the refresh token rotate.
    assert!(matches!(
        f.auth.refresh(&login.refresh_token, &client()),
        Err(AuthError::InvalidRefreshToken)
    ));
    let sessions = f.kg.sql("SELECT COUNT(*) AS v FROM sessions");
    // A wrong code says only that it is wrong: nothing about the account.
    f.clock.advance(Duration::seconds(61));
    f.auth.send_code(&p, &client()).unwrap();
    let code = f.delivered_code(&p);
    assert!(matches!(
        f.auth.verify_code(&p, &wrong_code(&code), &client()),
        Err(AuthError::InvalidCode { .. })
    ));
    // The right code: refused as disabled, no session opened, the code is spent.
    assert!(matches!(
        f.auth.verify_code(&p, &code, &client()),
        Err(AuthError::AccountDisabled)
    ));
    assert_eq!(f.kg.sql("SELECT COUNT(*) AS v FROM sessions"), sessions);
    let spent = f.auth.verify_code(&p, &code, &client());
    assert!(
        matches!(&spent, Err(e) if !matches!(e, AuthError::AccountDisabled)),
        "{spent:?}"
    );
    // Enabled again, the user signs in as before.
    f.kg.sql("UPDATE users SET is_active = true");
    f.clock.advance(Duration::seconds(61));
    let (again, _) = f.sign_in(KG, Some("test"));
    assert!(!again.is_new_user);
}

fn the_audit_log_records_who_did_what_from_where_without_secrets(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let p = phone(KG);
    f.auth.send_code(&p, &client()).unwrap();
    let code = f.delivered_code(&p);
    let login = f.auth.verify_code(&p, &code, &client()).unwrap();
    let user = login.user.id;
    // Refresh, then present the rotated token after the grace window: reuse.
    f.clock.advance(Duration::seconds(30));
    let second = f.auth.refresh(&login.refresh_token, &client()).unwrap();
    f.clock.advance(Duration::seconds(30));
    let other = ClientInfo {
        ip: Some("203.0.113.66".into()),
        user_agent: Some("curl/8.5".into()),
    };
    assert!(matches!(
        f.auth.refresh(&login.refresh_token, &other),
        Err(AuthError::RefreshTokenReused)
    ));
    // A new session, ended by id, then signed out everywhere.
    f.clock.advance(Duration::seconds(61));
    let (third, who) = f.sign_in(KG, Some("ShopApp/7.1 (iPhone)"));
    // An unknown id ends nothing and is not audited.
    let unknown = marque_domain::SessionId("unknown".into());
    f.auth.end_session(&who, &unknown, &client()).unwrap_err();
    f.auth.end_session(&who, &who.session, &client()).unwrap();
    f.auth.logout(&who, LogoutScope::Global, &client()).unwrap();
    // A fourth session deletes the account with a fresh code (past the 3-per-15-minutes limit).
    f.clock.advance(Duration::minutes(16));
    let (fourth, who) = f.sign_in(KG, Some("ShopApp/7.1 (iPhone)"));
    f.clock.advance(Duration::seconds(61));
    f.auth
        .send_code_for(&p, marque_markets::OtpPurpose::DeleteAccount, &client())
        .unwrap();
    let deletion_code = f.delivered_code(&p);
    // A row naming the number (as a lock does): the deletion must not leave the number behind.
    f.auth.audit(marque_domain::AuditRecord::new(
        Market::Kg,
        f.clock.now(),
        Some(user),
        &client(),
        marque_domain::AuditEvent::PhoneLocked {
            phone: p.clone(),
            until: f.clock.now() + Duration::days(1),
        },
    ));
    f.auth
        .delete_account_with(&who, &deletion_code, None, &client())
        .unwrap();

    let rows = audit(&f, Market::Kg);
    assert_eq!(
        kinds(&rows),
        [
            "sign_in",
            "refresh_reuse",
            "sign_in",
            "sign_out",
            "sign_out",
            "sign_in",
            "phone_locked",
            "account_deleted"
        ]
    );
    assert_eq!(
        rows[6].detail, None,
        "the deleted account's number stays nowhere"
    );
    assert!(
        rows.iter().all(|r| !format!("{r:?}").contains(p.e164())),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.user == Some(user)), "{rows:?}");
    let sign_in = &rows[0];
    assert_eq!(sign_in.at, start());
    assert_eq!(sign_in.client_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(sign_in.user_agent.as_deref(), Some("ShopApp/7.1 (iPhone)"));
    assert!(sign_in.detail.as_deref().unwrap().contains("new_user=true"));
    // The reuse is recorded with the client that presented the token.
    assert_eq!(rows[1].client_ip.as_deref(), Some("203.0.113.66"));
    assert_eq!(rows[1].user_agent.as_deref(), Some("curl/8.5"));
    assert_eq!(rows[1].at, start() + Duration::seconds(60));
    assert_eq!(rows[3].detail.as_deref(), Some("scope=session sessions=1"));
    // The global sign-out found no session left to end: still recorded.
    assert_eq!(rows[4].detail.as_deref(), Some("scope=global sessions=0"));
    assert_eq!(rows[7].client_ip.as_deref(), Some("198.51.100.23"));
    // Nothing secret in any column of any row.
    let secrets = [
        code.as_str().to_owned(),
        deletion_code.as_str().to_owned(),
        login.access_token.clone(),
        login.refresh_token.clone(),
        second.access_token.clone(),
        second.refresh_token.clone(),
        third.access_token.clone(),
        third.refresh_token.clone(),
        fourth.access_token.clone(),
        fourth.refresh_token.clone(),
    ];
    for row in &rows {
        let text = format!("{row:?}");
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in {text}");
        }
    }
    // The US database got nothing.
    assert!(audit(&f, Market::Us).is_empty());
}

fn retention_deletes_what_is_past_its_period_and_keeps_the_rest(backend: Backend) {
    let mut config = AuthConfig::default();
    config.failures.max_consecutive = 2;
    config.failures.lock = Duration::days(40);
    let Some(f) = Services::new(backend, config, start()) else {
        return;
    };
    let policy = RetentionPolicy {
        batch_size: 2, // several batches per table
        ..RetentionPolicy::default()
    };
    let repos: Vec<Arc<dyn RetentionRepository>> = vec![f.kg.repo(), f.us.repo()];
    let retention = RetentionService::new(repos, f.clock.clone(), policy);
    let count = |table: &str| f.kg.sql(&format!("SELECT COUNT(*) AS v FROM {table}"));

    // Old: three numbers sign in (challenge, buckets, outbox, session, refresh token, audit);
    // two sign out.
    let mut old = Vec::new();
    for n in ["+996505325311", "+996505325312", "+996505325313"] {
        old.push(f.sign_in(n, Some("old")).1);
    }
    for who in &old[..2] {
        f.auth.logout(who, LogoutScope::Local, &client()).unwrap();
    }
    // Failure counts: one wrong code for a number that never comes back, and a number locked
    // for 40 days.
    let wrong = |e164: &str| {
        let p = phone(e164);
        f.auth.send_code(&p, &client()).unwrap();
        let code = f.delivered_code(&p);
        f.auth.verify_code(&p, &wrong_code(&code), &client())
    };
    assert!(wrong("+996555777777").is_err());
    assert!(wrong("+996555999999").is_err());
    let p = phone("+996555999999");
    let locked = f
        .auth
        .verify_code(&p, &OtpCode::parse("000000").unwrap(), &client());
    assert!(
        matches!(locked, Err(AuthError::PhoneLocked(_))),
        "{locked:?}"
    );
    let failures = |e164: &str| {
        f.kg.sql(&format!(
            "SELECT COUNT(*) AS v FROM phone_failures WHERE phone_number = '{e164}'"
        ))
    };
    assert_eq!(failures("+996555777777"), 1);
    f.kg.sql("UPDATE outbox SET status = 'sent'");
    // 29 days on: another number signs in (all of its rows are recent).
    f.clock.advance(Duration::days(29));
    let (_, fresh) = f.sign_in("+996555123456", Some("new"));
    // Purged at day 29: challenges (24 h), buckets (48 h), outbox (7 d) of the old numbers go;
    // their revoked sessions ended 29 days ago (< 30): kept.
    let purged = retention.run_once();
    assert!(purged.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(count("phone_verifications"), 1, "the fresh challenge stays");
    assert_eq!(
        count("outbox"),
        1,
        "the fresh message stays (pending, not expired)"
    );
    assert_eq!(
        f.kg.sql(
            "SELECT COUNT(*) AS v FROM rate_limits WHERE bucket LIKE 'send:phone:+99650532531%'"
        ),
        0
    );
    assert!(count("rate_limits") >= 1);
    assert_eq!(failures("+996555777777"), 0, "idle for 29 days");
    assert_eq!(failures("+996555999999"), 1, "still locked");
    assert_eq!(count("sessions"), 4);
    // Day 31: the two revoked sessions have been over for 30 days; the third old one is still
    // live (its refresh token is valid for 30 days from sign-in, so it expired at day 30).
    f.clock.advance(Duration::days(2));
    retention.run_once();
    assert_eq!(
        count("sessions"),
        2,
        "old live session (expired day 30) and fresh stay"
    );
    // Day 61: the session that expired at day 30 is 31 days over: gone with its token.
    f.clock.advance(Duration::days(30));
    retention.run_once();
    assert_eq!(count("sessions"), 1);
    assert_eq!(
        f.kg.sql(&format!(
            "SELECT COUNT(*) AS v FROM sessions WHERE id = '{}'",
            fresh.session.0
        )),
        1
    );
    assert_eq!(count("refresh_tokens"), 1);
    // Audit rows live a year: all still there, then gone.
    assert_eq!(failures("+996555999999"), 0, "lock ended on day 40");
    assert_eq!(count("audit_log"), 7, "4 sign-ins, 2 sign-outs, 1 lock");
    f.clock.advance(Duration::days(365 - 61 + 1));
    retention.run_once();
    assert_eq!(count("audit_log"), 1, "the fresh sign-in (day 29) stays");
    assert_eq!(count("users"), 4, "accounts are never purged");
}

fn a_tripped_sms_guard_is_audited_without_the_number(backend: Backend) {
    let mut config = AuthConfig::default();
    config.sms_guard.prefix_hourly_limit = 1;
    let Some(f) = Services::new(backend, config, start()) else {
        return;
    };
    f.auth
        .send_code(&phone("+996555100001"), &client())
        .unwrap();
    let refused = f.auth.send_code(&phone("+996555100002"), &client());
    assert!(
        matches!(refused, Err(AuthError::SmsBudgetExceeded(_))),
        "{refused:?}"
    );
    let rows = audit(&f, Market::Kg);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.event, "sms_budget_tripped");
    assert_eq!(row.user, None);
    assert_eq!(row.at, start());
    assert_eq!(row.client_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(row.user_agent.as_deref(), Some("ShopApp/7.1 (iPhone)"));
    let detail = row.detail.as_deref().unwrap();
    assert!(detail.starts_with("guard="), "{detail}");
    assert!(!format!("{row:?}").contains("555100002"), "{row:?}");
}

fn a_lock_and_test_number_use_are_audited(backend: Backend) {
    let mut config = AuthConfig::default();
    config.failures.max_consecutive = 2;
    config.test_numbers.insert(
        "+996555000001".to_owned(),
        OtpCode::parse("123456").unwrap(),
    );
    let Some(f) = Services::new(backend, config, start()) else {
        return;
    };
    // Two wrong codes in a row lock the number.
    let p = phone(KG);
    f.auth.send_code(&p, &client()).unwrap();
    let code = f.delivered_code(&p);
    let wrong = wrong_code(&code);
    let _ = f.auth.verify_code(&p, &wrong, &client());
    let locked = f.auth.verify_code(&p, &wrong, &client());
    assert!(
        matches!(locked, Err(AuthError::PhoneLocked(_))),
        "{locked:?}"
    );
    // A test number signs in.
    let (login, _) = f.sign_in("+996555000001", Some("review"));
    let rows = audit(&f, Market::Kg);
    assert_eq!(
        kinds(&rows),
        [
            "phone_locked",
            "test_number_used",
            "sign_in",
            "test_number_used"
        ],
        "{rows:?}"
    );
    let lock = &rows[0];
    assert_eq!(lock.user, None, "not signed up");
    assert_eq!(
        lock.detail.as_deref(),
        Some("phone=+996505325311 until=2026-03-02T09:00:00Z")
    );
    assert_eq!(lock.client_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(
        rows[1].detail.as_deref(),
        Some("phone=+996555000001 action=send_code")
    );
    assert_eq!(
        rows[3].detail.as_deref(),
        Some("phone=+996555000001 action=verify_code")
    );
    assert_eq!(rows[3].user, Some(login.user.id));
    for row in &rows {
        let text = format!("{row:?}");
        for secret in [code.as_str(), "123456", login.access_token.as_str()] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

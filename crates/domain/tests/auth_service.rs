//! Behaviour of `AuthService` over the real store (a SQLite file per market), with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::Barrier;

use chrono::{Duration, TimeZone, Utc};
use marque_domain::{
    AuthConfig, AuthError, ClientInfo, CodeRefusal, FullName, LoginSuccess, LogoutScope,
    MarketUnavailable, OtpPurpose, ProfileUpdate, SessionId,
};
use marque_markets::{Market, OtpCode, PhoneNumber};
use marque_testkit::{Backend, Services, client_info, phone, wrong_code};

fn fixture(config: AuthConfig) -> Services {
    Services::sqlite(config, Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
}

/// Sends a code to `p` (which must be accepted) and returns it as delivered.
fn send_and_read_code(f: &Services, p: &PhoneNumber) -> OtpCode {
    f.auth.send_code(p, &client()).unwrap();
    f.delivered_code(p)
}

/// A fresh fixture (default settings) that sent a code to `e164`: the fixture, the number and
/// the code delivered.
fn code_sent(e164: &str) -> (Services, PhoneNumber, OtpCode) {
    let f = fixture(AuthConfig::default());
    let p = phone(e164);
    let code = send_and_read_code(&f, &p);
    (f, p, code)
}

/// Verifies `code` for `p` from [`client`].
fn verify(f: &Services, p: &PhoneNumber, code: &OtpCode) -> Result<LoginSuccess, AuthError> {
    f.auth.verify_code(p, code, &client())
}

/// Why verifying `code` for `p` is refused (it must be, as `invalid_code`).
fn code_refusal(f: &Services, p: &PhoneNumber, code: &OtpCode) -> CodeRefusal {
    match verify(f, p, code) {
        Err(AuthError::InvalidCode(why)) => why,
        other => panic!("expected invalid_code, got {other:?}"),
    }
}

fn client() -> ClientInfo {
    client_info("203.0.113.9", "test")
}

#[test]
fn kg_login_creates_user_only_in_kg_and_token_works_until_logout() {
    let f = fixture(AuthConfig::default());
    let p = phone("+996505325311");
    let sent = f.auth.send_code(&p, &client()).unwrap();
    assert_eq!(sent.expires_in_minutes, 10);
    let code = f.delivered_code(&p);
    let login = verify(&f, &p, &code).unwrap();
    assert!(login.is_new_user);
    assert_eq!(login.expires_in, 1800);
    assert_eq!((f.kg.user_count(), f.us.user_count()), (1, 0));

    let who = f.auth.authenticate(&login.access_token).unwrap();
    assert_eq!(who.market, Market::Kg);
    assert_eq!(who.user.phone, Some(p.clone()));

    let upd = ProfileUpdate {
        full_name: Some(Some(FullName::parse("Анна").unwrap())),
        ..Default::default()
    };
    let user = f.auth.update_profile(&who, &upd).unwrap();
    assert_eq!(user.full_name.unwrap().as_str(), "Анна");

    f.auth.logout(&who, LogoutScope::Local, &client()).unwrap();
    assert!(matches!(
        f.auth.authenticate(&login.access_token),
        Err(AuthError::InvalidToken)
    ));

    // Second login: same user, not new.
    f.clock.advance(Duration::seconds(61));
    let code = send_and_read_code(&f, &p);
    let again = verify(&f, &p, &code).unwrap();
    assert!(!again.is_new_user);
    assert_eq!(again.user.id, login.user.id);
}

#[test]
fn code_is_single_use_and_outbox_body_is_sealed() {
    let f = fixture(AuthConfig::default());
    let p = phone("+12125550100");
    f.auth.send_code(&p, &client()).unwrap();
    let body = f.us.pending_bodies(p.e164()).pop().unwrap();
    let code = f.delivered_code(&p);
    assert!(!body.windows(6).any(|w| w == code.as_str().as_bytes()));
    verify(&f, &p, &code).unwrap();
    assert_eq!(code_refusal(&f, &p, &code), CodeRefusal::NoActiveCode);
}

#[test]
fn fourth_try_is_refused_even_with_the_right_code() {
    let (f, p, code) = code_sent("+996505325311");
    let wrong = wrong_code(&code);
    for left in [2, 1, 0] {
        match verify(&f, &p, &wrong) {
            // Issue 12, item 9: the answer no longer tells how many tries are left.
            Err(AuthError::InvalidCode(CodeRefusal::Wrong)) => {
                let _ = left;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(code_refusal(&f, &p, &code), CodeRefusal::AttemptsExceeded);
}

#[test]
fn expired_code_is_refused() {
    let (f, p, code) = code_sent("+996505325311");
    f.clock.advance(Duration::minutes(10));
    assert_eq!(code_refusal(&f, &p, &code), CodeRefusal::Expired);
}

#[test]
fn resend_cooldown_and_window_limits() {
    let f = fixture(AuthConfig::default());
    let p = phone("+996505325311");
    f.auth.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::seconds(10));
    assert!(matches!(
        f.auth.send_code(&p, &client()),
        Err(AuthError::RateLimited(50))
    ));
    f.clock.advance(Duration::seconds(50));
    f.auth.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::seconds(60));
    f.auth.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::seconds(60));
    // Fourth code within 15 minutes of the first: refused until the window closes.
    assert!(
        matches!(f.auth.send_code(&p, &client()), Err(AuthError::RateLimited(s)) if s == 12 * 60)
    );
    f.clock.advance(Duration::minutes(12));
    f.auth.send_code(&p, &client()).unwrap();
}

#[test]
fn ip_limit_applies_across_numbers() {
    let mut config = AuthConfig::default();
    config.ip_send_limit.max_hits = 2;
    let f = fixture(config);
    f.auth
        .send_code(&phone("+996505325311"), &client())
        .unwrap();
    f.auth
        .send_code(&phone("+996505325312"), &client())
        .unwrap();
    assert!(matches!(
        f.auth.send_code(&phone("+996505325313"), &client()),
        Err(AuthError::RateLimited(_))
    ));
    // Another client is not affected.
    let other = ClientInfo {
        ip: Some("198.51.100.1".into()),
        user_agent: None,
    };
    f.auth.send_code(&phone("+996505325313"), &other).unwrap();
}

#[test]
fn test_numbers_have_fixed_codes_no_message_and_no_limits() {
    let mut config = AuthConfig::default();
    let p = phone("+996555000001");
    config
        .test_numbers
        .insert(p.e164().into(), OtpCode::parse("123456").unwrap());
    let f = fixture(config);
    for _ in 0..5 {
        f.auth.send_code(&p, &client()).unwrap();
    }
    assert!(f.kg.outbox().is_empty());
    let login = f
        .auth
        .verify_code(&p, &OtpCode::parse("123456").unwrap(), &client())
        .unwrap();
    assert!(login.is_new_user);
}

#[test]
fn outage_maps_to_unavailable_and_tokens_of_one_market_do_not_reach_the_other() {
    let f = fixture(AuthConfig::default());
    f.kg.set_down(true);
    assert!(matches!(
        f.auth.send_code(&phone("+996505325311"), &client()),
        Err(AuthError::Unavailable(MarketUnavailable {
            market: Market::Kg,
            source: Some(_)
        }))
    ));
    let health = f.auth.health();
    assert!(
        health
            .iter()
            .any(|h| h.market == Market::Kg && h.error.is_some())
    );
    assert!(
        health
            .iter()
            .any(|h| h.market == Market::Us && h.error.is_none())
    );
    assert!(matches!(
        f.auth.authenticate("garbage"),
        Err(AuthError::InvalidToken)
    ));
}

fn login(f: &Services, e164: &str) -> marque_domain::LoginSuccess {
    f.sign_in(e164, Some("test")).0
}

#[test]
fn refresh_rotates_and_reuse_after_grace_revokes_the_session() {
    let f = fixture(AuthConfig::default());
    let first = login(&f, "+996505325311");
    assert!(first.refresh_token.starts_with("mrt_kg_"));
    assert_eq!(first.refresh_expires_in, 30 * 24 * 3600);
    f.clock.advance(Duration::seconds(60));
    let second = f.auth.refresh(&first.refresh_token, &client()).unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.market, Market::Kg);
    // A concurrent retry within the grace window gets the same successor.
    f.clock.advance(Duration::seconds(5));
    let retry = f.auth.refresh(&first.refresh_token, &client()).unwrap();
    assert_eq!(retry.refresh_token, second.refresh_token);
    // After the window, the rotated token is reuse: the whole session ends.
    f.clock.advance(Duration::seconds(6));
    assert!(matches!(
        f.auth.refresh(&first.refresh_token, &client()),
        Err(AuthError::RefreshTokenReused)
    ));
    assert!(matches!(
        f.auth.refresh(&second.refresh_token, &client()),
        Err(AuthError::InvalidRefreshToken)
    ));
    assert!(matches!(
        f.auth.authenticate(&second.access_token),
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        f.auth.refresh("garbage", &client()),
        Err(AuthError::InvalidRefreshToken)
    ));
}

/// Issue 12 item 6: within the grace window, a replay is honoured for the client that rotated
/// the token (same user agent, same IPv4 /24 or IPv6 /64) and is reuse from any other; nothing
/// of the successor is stored but its hash.
#[test]
fn refresh_replay_is_bound_to_the_rotating_client() {
    let f = fixture(AuthConfig::default());
    let client_at = |ip: &str, ua: &str| ClientInfo {
        ip: Some(ip.into()),
        user_agent: Some(ua.into()),
    };
    let refresh_from = |token: &str, ip: &str, ua: &str| f.auth.refresh(token, &client_at(ip, ua));
    // Same /24 and agent: the retry gets the same successor.
    let first = login(&f, "+996505325311");
    f.clock.advance(Duration::seconds(60));
    let second = refresh_from(&first.refresh_token, "203.0.113.7", "app/1").unwrap();
    let retry = refresh_from(&first.refresh_token, "203.0.113.99", "app/1").unwrap();
    assert_eq!(retry.refresh_token, second.refresh_token);
    // Another agent, or another network, inside the window: reuse, the session ends.
    for other in [
        client_at("203.0.113.7", "curl/8"),
        client_at("198.51.100.7", "app/1"),
    ] {
        f.clock.advance(Duration::seconds(61));
        let a = login(&f, "+996505325311");
        f.clock.advance(Duration::seconds(1));
        let b = refresh_from(&a.refresh_token, "203.0.113.7", "app/1").unwrap();
        assert!(matches!(
            f.auth.refresh(&a.refresh_token, &other),
            Err(AuthError::RefreshTokenReused)
        ));
        assert!(matches!(
            refresh_from(&b.refresh_token, "203.0.113.7", "app/1"),
            Err(AuthError::InvalidRefreshToken)
        ));
        assert!(f.auth.authenticate(&b.access_token).is_err());
    }
}

#[test]
fn logout_scopes_and_session_list() {
    let f = fixture(AuthConfig::default());
    let a = login(&f, "+996505325311");
    f.clock.advance(Duration::seconds(61));
    let b = login(&f, "+996505325311");
    f.clock.advance(Duration::seconds(61));
    let c = login(&f, "+996505325311");
    let who = f.auth.authenticate(&c.access_token).unwrap();
    let list = f.auth.sessions(&who).unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].id, who.session);
    assert_eq!(
        f.auth.logout(&who, LogoutScope::Others, &client()).unwrap(),
        2
    );
    assert!(f.auth.authenticate(&a.access_token).is_err());
    assert!(f.auth.authenticate(&b.access_token).is_err());
    assert!(f.auth.authenticate(&c.access_token).is_ok());
    assert!(matches!(
        f.auth
            .end_session(&who, &SessionId("nope".into()), &client()),
        Err(AuthError::NotFound)
    ));
    assert_eq!(
        f.auth.logout(&who, LogoutScope::Global, &client()).unwrap(),
        1
    );
    assert!(f.auth.authenticate(&c.access_token).is_err());
}

#[test]
fn account_deletion_needs_a_fresh_code_and_frees_the_number() {
    let f = fixture(AuthConfig::default());
    let p = phone("+12125550100");
    let first = login(&f, p.e164());
    let who = f.auth.authenticate(&first.access_token).unwrap();
    assert!(matches!(
        f.auth
            .delete_account(&who, &OtpCode::parse("123456").unwrap()),
        Err(AuthError::InvalidCode(CodeRefusal::NoActiveCode))
    ));
    f.clock.advance(Duration::seconds(61));
    // Issue 12, item 10: the step-up code is asked for with its purpose.
    f.auth
        .send_code_for(&p, OtpPurpose::DeleteAccount, &client())
        .unwrap();
    let code = f.delivered_code(&p);
    f.auth.delete_account(&who, &code).unwrap();
    assert_eq!(f.us.user_count(), 0);
    assert!(f.auth.authenticate(&first.access_token).is_err());
    f.clock.advance(Duration::seconds(61));
    let again = login(&f, p.e164());
    assert!(again.is_new_user);
    assert_ne!(again.user.id, first.user.id);
}

/// A client retrying a refresh in parallel: every request gets the same successor (one rotation,
/// the rest replays within the grace window), and the successor works. Decided under the store's
/// lock on the token row, so it runs on both backends.
fn concurrent_refreshes_share_one_successor(backend: Backend) {
    let Some(f) = Services::new(
        backend,
        AuthConfig::default(),
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    ) else {
        return;
    };
    let first = login(&f, "+996505325311");
    f.clock.advance(Duration::seconds(60));
    let barrier = Barrier::new(6);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    f.auth.refresh(&first.refresh_token, &client())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let successors: BTreeSet<String> = results
        .into_iter()
        .map(|r| r.unwrap().refresh_token)
        .collect();
    assert_eq!(successors.len(), 1, "{successors:?}");
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, first.refresh_token);
    f.auth.refresh(&successor, &client()).unwrap();
}

#[test]
fn concurrent_refreshes_share_one_successor_sqlite() {
    concurrent_refreshes_share_one_successor(Backend::Sqlite);
}

#[test]
fn concurrent_refreshes_share_one_successor_postgres() {
    concurrent_refreshes_share_one_successor(Backend::Postgres);
}

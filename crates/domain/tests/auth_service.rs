//! Behaviour of `AuthService` over the in-memory repository, with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use marque_domain::memory::{InMemoryStore, OutboxStatus};
use marque_domain::{
    AuthConfig, AuthDeps, AuthError, AuthService, ClientInfo, FullName, LogoutScope, ManualClock,
    OsRandom, OtpHasher, PayloadSealer, ProfileUpdate, TokenService,
};
use marque_markets::{Market, OtpCode, PhoneNumber};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

struct Fixture {
    svc: AuthService,
    clock: Arc<ManualClock>,
    kg: Arc<InMemoryStore>,
    us: Arc<InMemoryStore>,
}

fn fixture(config: AuthConfig) -> Fixture {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    ));
    let kg = Arc::new(InMemoryStore::new(Market::Kg));
    let us = Arc::new(InMemoryStore::new(Market::Us));
    let svc = AuthService::new(
        AuthDeps {
            repos: vec![kg.clone(), us.clone()],
            clock: clock.clone(),
            rng: Arc::new(OsRandom),
            hasher: OtpHasher::from_secret(SECRET),
            outbox_sealer: PayloadSealer::from_secret(SECRET),
            refresh_sealer: PayloadSealer::with_label(SECRET, b"refresh"),
            tokens: TokenService::hs256(SECRET, "marque", Duration::minutes(30)),
        },
        config,
    );
    Fixture { svc, clock, kg, us }
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s, None).unwrap()
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: Some("203.0.113.9".into()),
        user_agent: Some("test".into()),
    }
}

/// Reads the code out of the sealed outbox message, as the delivery worker would.
fn delivered_code(f: &Fixture, store: &InMemoryStore, p: &PhoneNumber) -> OtpCode {
    let _ = f;
    let body = store
        .pending_bodies(p.e164())
        .pop()
        .expect("a pending message");
    let text = String::from_utf8(PayloadSealer::from_secret(SECRET).open(&body).unwrap()).unwrap();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    OtpCode::parse(&digits[..6]).unwrap()
}

#[test]
fn kg_login_creates_user_only_in_kg_and_token_works_until_logout() {
    let f = fixture(AuthConfig::default());
    let p = phone("+996505325311");
    let sent = f.svc.send_code(&p, &client()).unwrap();
    assert_eq!(sent.expires_in_minutes, 10);
    let code = delivered_code(&f, &f.kg, &p);
    let login = f.svc.verify_code(&p, &code, &client()).unwrap();
    assert!(login.is_new_user);
    assert_eq!(login.expires_in, 1800);
    assert_eq!((f.kg.user_count(), f.us.user_count()), (1, 0));

    let claims = f.svc.authenticate(&login.access_token).unwrap();
    assert_eq!(claims.market, Market::Kg);
    let (_, user) = f.svc.current_user(&login.access_token).unwrap();
    assert_eq!(user.phone, p);

    let upd = ProfileUpdate {
        full_name: Some(Some(FullName::parse("Анна").unwrap())),
        ..Default::default()
    };
    let user = f.svc.update_profile(&login.access_token, &upd).unwrap();
    assert_eq!(user.full_name.unwrap().as_str(), "Анна");

    f.svc
        .logout(&login.access_token, LogoutScope::Local)
        .unwrap();
    assert!(matches!(
        f.svc.authenticate(&login.access_token),
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        f.svc.current_user(&login.access_token),
        Err(AuthError::InvalidToken)
    ));

    // Second login: same user, not new.
    f.clock.advance(Duration::seconds(61));
    f.svc.send_code(&p, &client()).unwrap();
    let code = delivered_code(&f, &f.kg, &p);
    let again = f.svc.verify_code(&p, &code, &client()).unwrap();
    assert!(!again.is_new_user);
    assert_eq!(again.user.id, login.user.id);
}

#[test]
fn code_is_single_use_and_outbox_body_is_sealed() {
    let f = fixture(AuthConfig::default());
    let p = phone("+12125550100");
    f.svc.send_code(&p, &client()).unwrap();
    let body = f.us.pending_bodies(p.e164()).pop().unwrap();
    let code = delivered_code(&f, &f.us, &p);
    assert!(!body.windows(6).any(|w| w == code.as_str().as_bytes()));
    f.svc.verify_code(&p, &code, &client()).unwrap();
    assert!(matches!(
        f.svc.verify_code(&p, &code, &client()),
        Err(AuthError::CodeNotFound)
    ));
}

#[test]
fn fourth_try_is_refused_even_with_the_right_code() {
    let f = fixture(AuthConfig::default());
    let p = phone("+996505325311");
    f.svc.send_code(&p, &client()).unwrap();
    let code = delivered_code(&f, &f.kg, &p);
    let wrong = OtpCode::parse(if code.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    })
    .unwrap();
    for left in [2, 1, 0] {
        match f.svc.verify_code(&p, &wrong, &client()) {
            Err(AuthError::InvalidCode { attempts_left }) => assert_eq!(attempts_left, left),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(
        f.svc.verify_code(&p, &code, &client()),
        Err(AuthError::AttemptsExceeded)
    ));
}

#[test]
fn expired_code_is_refused() {
    let f = fixture(AuthConfig::default());
    let p = phone("+996505325311");
    f.svc.send_code(&p, &client()).unwrap();
    let code = delivered_code(&f, &f.kg, &p);
    f.clock.advance(Duration::minutes(10));
    assert!(matches!(
        f.svc.verify_code(&p, &code, &client()),
        Err(AuthError::CodeExpired)
    ));
}

#[test]
fn resend_cooldown_and_window_limits() {
    let f = fixture(AuthConfig::default());
    let p = phone("+996505325311");
    f.svc.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::seconds(10));
    assert!(matches!(
        f.svc.send_code(&p, &client()),
        Err(AuthError::RateLimited(50))
    ));
    f.clock.advance(Duration::seconds(50));
    f.svc.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::seconds(60));
    f.svc.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::seconds(60));
    // Fourth code within 15 minutes of the first: refused until the window closes.
    assert!(
        matches!(f.svc.send_code(&p, &client()), Err(AuthError::RateLimited(s)) if s == 12 * 60)
    );
    f.clock.advance(Duration::minutes(12));
    f.svc.send_code(&p, &client()).unwrap();
}

#[test]
fn ip_limit_applies_across_numbers() {
    let mut config = AuthConfig::default();
    config.ip_send_limit.max_hits = 2;
    let f = fixture(config);
    f.svc.send_code(&phone("+996505325311"), &client()).unwrap();
    f.svc.send_code(&phone("+996505325312"), &client()).unwrap();
    assert!(matches!(
        f.svc.send_code(&phone("+996505325313"), &client()),
        Err(AuthError::RateLimited(_))
    ));
    // Another client is not affected.
    let other = ClientInfo {
        ip: Some("198.51.100.1".into()),
        user_agent: None,
    };
    f.svc.send_code(&phone("+996505325313"), &other).unwrap();
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
        f.svc.send_code(&p, &client()).unwrap();
    }
    assert!(f.kg.outbox_statuses().is_empty());
    let login = f
        .svc
        .verify_code(&p, &OtpCode::parse("123456").unwrap(), &client())
        .unwrap();
    assert!(login.is_new_user);
}

#[test]
fn outage_maps_to_unavailable_and_tokens_of_one_market_do_not_reach_the_other() {
    let f = fixture(AuthConfig::default());
    f.kg.set_down(true);
    assert!(matches!(
        f.svc.send_code(&phone("+996505325311"), &client()),
        Err(AuthError::Unavailable(Market::Kg))
    ));
    let health = f.svc.health();
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
        f.svc.authenticate("garbage"),
        Err(AuthError::InvalidToken)
    ));
    let _ = OutboxStatus::Pending;
}

fn login(f: &Fixture, e164: &str) -> marque_domain::LoginSuccess {
    let p = phone(e164);
    f.svc.send_code(&p, &client()).unwrap();
    let code = delivered_code(
        f,
        if p.market() == Market::Kg {
            &f.kg
        } else {
            &f.us
        },
        &p,
    );
    f.svc.verify_code(&p, &code, &client()).unwrap()
}

#[test]
fn refresh_rotates_and_reuse_after_grace_revokes_the_session() {
    let f = fixture(AuthConfig::default());
    let first = login(&f, "+996505325311");
    assert!(first.refresh_token.starts_with("mrt_kg_"));
    assert_eq!(first.refresh_expires_in, 30 * 24 * 3600);
    f.clock.advance(Duration::seconds(60));
    let second = f.svc.refresh(&first.refresh_token).unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.market, Market::Kg);
    // A concurrent retry within the grace window gets the same successor.
    f.clock.advance(Duration::seconds(5));
    let retry = f.svc.refresh(&first.refresh_token).unwrap();
    assert_eq!(retry.refresh_token, second.refresh_token);
    // After the window, the rotated token is reuse: the whole session ends.
    f.clock.advance(Duration::seconds(6));
    assert!(matches!(
        f.svc.refresh(&first.refresh_token),
        Err(AuthError::RefreshTokenReused)
    ));
    assert!(matches!(
        f.svc.refresh(&second.refresh_token),
        Err(AuthError::InvalidRefreshToken)
    ));
    assert!(matches!(
        f.svc.authenticate(&second.access_token),
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        f.svc.refresh("garbage"),
        Err(AuthError::InvalidRefreshToken)
    ));
}

#[test]
fn logout_scopes_and_session_list() {
    let f = fixture(AuthConfig::default());
    let a = login(&f, "+996505325311");
    f.clock.advance(Duration::seconds(61));
    let b = login(&f, "+996505325311");
    f.clock.advance(Duration::seconds(61));
    let c = login(&f, "+996505325311");
    let (current, list) = f.svc.sessions(&c.access_token).unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].id, current);
    assert_eq!(
        f.svc.logout(&c.access_token, LogoutScope::Others).unwrap(),
        2
    );
    assert!(f.svc.authenticate(&a.access_token).is_err());
    assert!(f.svc.authenticate(&b.access_token).is_err());
    assert!(f.svc.authenticate(&c.access_token).is_ok());
    assert!(matches!(
        f.svc.end_session(&c.access_token, "nope"),
        Err(AuthError::NotFound)
    ));
    assert_eq!(
        f.svc.logout(&c.access_token, LogoutScope::Global).unwrap(),
        1
    );
    assert!(f.svc.authenticate(&c.access_token).is_err());
}

#[test]
fn account_deletion_needs_a_fresh_code_and_frees_the_number() {
    let f = fixture(AuthConfig::default());
    let p = phone("+12125550100");
    let first = login(&f, p.e164());
    assert!(matches!(
        f.svc
            .delete_account(&first.access_token, &OtpCode::parse("123456").unwrap()),
        Err(AuthError::CodeNotFound)
    ));
    f.clock.advance(Duration::seconds(61));
    f.svc.send_code(&p, &client()).unwrap();
    let code = delivered_code(&f, &f.us, &p);
    f.svc.delete_account(&first.access_token, &code).unwrap();
    assert_eq!(f.us.user_count(), 0);
    assert!(f.svc.authenticate(&first.access_token).is_err());
    f.clock.advance(Duration::seconds(61));
    let again = login(&f, p.e164());
    assert!(again.is_new_user);
    assert_ne!(again.user.id, first.user.id);
}

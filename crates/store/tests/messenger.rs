#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Messenger-login storage (issue 9) on both backends: concurrent completions and polls, replayed
//! webhook events, Telegram links, the phone lock on proven sign-ins.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use marque_domain::{
    AuthRepository, Channel, MessengerRepository, NewMessengerLogin, NewRefreshToken, NewSession,
    NonceLookup, SessionId, SignInProven, StoredPoll, VerifyOutcome,
};
use marque_markets::{Market, PhoneNumber};
use marque_store::MarketStore;
use marque_testkit::{TestStore as Ctx, on_both_backends};

on_both_backends!(
    a_login_is_claimed_once_and_its_tokens_taken_once,
    replayed_events_are_seen_once,
    telegram_links_move_and_go_with_their_user,
    a_locked_number_is_refused_a_proven_sign_in,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn new_login(id: &str, nonce: &[u8]) -> NewMessengerLogin {
    NewMessengerLogin {
        id: id.to_owned(),
        channel: Channel::Telegram,
        nonce_hash: nonce.to_vec(),
        poll_secret_hash: b"poll".to_vec(),
        user_agent: Some("app/1.0".to_owned()),
        now: t0(),
        expires_at: t0() + Duration::seconds(300),
        limits: Vec::new(),
    }
}

fn proven(store: &MarketStore, e164: &str, link: Option<i64>, n: u8) -> VerifyOutcome {
    let phone = PhoneNumber::parse(e164, None).unwrap();
    let sid = SessionId(format!("00000000-0000-4000-8000-0000000000{n:02}"));
    let session = NewSession {
        id: sid,
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
        user_agent: Some("app/1.0".to_owned()),
        client_ip: None,
    };
    store
        .sign_in_proven(SignInProven {
            phone: &phone,
            now: t0(),
            session,
            refresh: NewRefreshToken {
                token_hash: vec![n; 32],
                expires_at: t0() + Duration::days(30),
            },
            via: "telegram",
            link_telegram: link,
        })
        .unwrap()
}

fn a_login_is_claimed_once_and_its_tokens_taken_once(ctx: &Ctx) {
    let store = &ctx.store;
    store.start_login(&new_login("L1", b"n1")).unwrap().unwrap();
    assert!(matches!(
        store.find_nonce(b"n1", t0()).unwrap(),
        NonceLookup::Live(_)
    ));
    assert_eq!(
        store
            .find_nonce(b"n1", t0() + Duration::seconds(300))
            .unwrap(),
        NonceLookup::Expired
    );
    // Eight concurrent completions: exactly one claims the login.
    let barrier = Arc::new(Barrier::new(8));
    let claims: Vec<bool> = (0..8)
        .map(|_| {
            let (s, b) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                s.claim("L1", t0()).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(claims.iter().filter(|c| **c).count(), 1);
    assert_eq!(store.find_nonce(b"n1", t0()).unwrap(), NonceLookup::Unknown);
    store.complete("L1", b"sealed", t0()).unwrap();
    let right = |h: &[u8]| h == b"poll";
    assert_eq!(store.poll("L1", &|_| false, t0()).unwrap(), None);
    // Eight concurrent polls: exactly one gets the tokens.
    let polls: Vec<StoredPoll> = (0..8)
        .map(|_| {
            let (s, b) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                s.poll("L1", &|h: &[u8]| h == b"poll", t0())
                    .unwrap()
                    .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let got: Vec<_> = polls
        .iter()
        .filter(|p| matches!(p, StoredPoll::Completed(_)))
        .collect();
    assert_eq!(got, vec![&StoredPoll::Completed(b"sealed".to_vec())]);
    assert_eq!(
        store.poll("L1", &right, t0()).unwrap(),
        Some(StoredPoll::Consumed)
    );
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM messenger_logins WHERE result IS NOT NULL"),
        0
    );
}

fn replayed_events_are_seen_once(ctx: &Ctx) {
    let store = &ctx.store;
    assert!(store.mark_seen("wa:wamid.1", t0()).unwrap());
    assert!(!store.mark_seen("wa:wamid.1", t0()).unwrap());
    store.forget_seen("wa:wamid.1").unwrap();
    assert!(store.mark_seen("wa:wamid.1", t0()).unwrap());
}

fn telegram_links_move_and_go_with_their_user(ctx: &Ctx) {
    let store = &ctx.store;
    let VerifyOutcome::Verified { user: a, .. } = proven(store, "+996505325311", Some(7), 1) else {
        panic!()
    };
    assert_eq!(
        store.telegram_user_phone(7).unwrap().as_deref(),
        Some("+996505325311")
    );
    // The same Telegram account shares another number: the link moves.
    let VerifyOutcome::Verified { user: b, .. } = proven(store, "+996555123456", Some(7), 2) else {
        panic!()
    };
    assert_eq!(
        store.telegram_user_phone(7).unwrap().as_deref(),
        Some("+996555123456")
    );
    assert!(store.telegram_link(a.id).unwrap().is_none());
    assert_eq!(
        store.telegram_link(b.id).unwrap().unwrap().telegram_user_id,
        7
    );
    assert!(store.unlink_telegram(b.id).unwrap());
    assert!(!store.unlink_telegram(b.id).unwrap());
    assert_eq!(store.telegram_user_phone(7).unwrap(), None);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM sessions"), 2);
    let _ = Market::Kg;
}

fn a_locked_number_is_refused_a_proven_sign_in(ctx: &Ctx) {
    let store = &ctx.store;
    ctx.sql(
        "INSERT INTO phone_failures (phone_number, consecutive, locked_until, updated_at) \
         VALUES ('+996505325311', 30, '2026-12-05 10:00:00', '2026-12-04 09:00:00')",
    );
    assert!(matches!(
        proven(store, "+996505325311", Some(9), 3),
        VerifyOutcome::Locked { .. }
    ));
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 0);
    assert_eq!(store.telegram_user_phone(9).unwrap(), None);
}

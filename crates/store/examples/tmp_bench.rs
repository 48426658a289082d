#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]
use chrono::{Duration, TimeZone, Utc};
use marque_domain::*;
use marque_markets::{Market, PhoneNumber};
use marque_store::{MarketStore, testdb::TestDatabase};
use std::time::{Duration as StdDuration, Instant};

fn main() {
    let db = TestDatabase::postgres("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
    let store = MarketStore::connect(Market::Kg, db.url(), 8, StdDuration::from_secs(5)).unwrap();
    store.migrate().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let phone = PhoneNumber::parse("+996505325311", None).unwrap();
    store
        .issue_challenge(IssueChallenge {
            phone: phone.clone(),
            code_hash: b"r".to_vec(),
            now: t0,
            expires_at: t0 + Duration::minutes(10),
            client_ip: None,
            limits: vec![],
            outbox: None,
        })
        .unwrap();
    let sid = SessionId("s1".into());
    let m = |h: &[u8]| h == b"r";
    let VerifyOutcome::Verified { user, .. } = store
        .verify_challenge(VerifyChallenge {
            phone: &phone,
            now: t0,
            max_attempts: 3,
            matches: &m,
            session: NewSession {
                id: sid.clone(),
                created_at: t0,
                expires_at: t0 + Duration::days(1),
                user_agent: None,
                client_ip: None,
            },
        })
        .unwrap()
    else {
        panic!()
    };
    for threads in [1usize, 4, 8] {
        let n = 20000 / threads;
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                let store = store.clone();
                let sid = sid.clone();
                s.spawn(move || {
                    for _ in 0..n {
                        store.session_user(&sid, user.id, t0).unwrap().unwrap();
                    }
                });
            }
        });
        let el = start.elapsed();
        println!(
            "{threads} threads: {:.0} req/s",
            (n * threads) as f64 / el.as_secs_f64()
        );
    }
}

//! Failure isolation (issue 11): a market whose PostgreSQL refuses connections answers 503
//! `service_unavailable` fast, does not slow the other market, and recovers by itself.
//!
//! The KG database sits behind a [`TcpProxy`]; stopping the proxy refuses new connections and
//! cuts the open ones, like a stopped server, while the shared cluster keeps running. PostgreSQL
//! only (skipped without `MARQUE_TEST_POSTGRES_URL`); all traffic goes to 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use marque_testkit::{TcpProxy, TestDatabase, postgres_admin_url};
use serde_json::Value;

use crate::helpers::{Backend, TestApp};

const KG: &str = "+996505325311";
const US: &str = "+12025550123";
const PROFILE: &str = "/api/v1/auth/profile";

/// Profile reads (one session lookup in the user's market database each).
/// Small numbers: the machine has 2 shared cores and this is a debug build; the point is many
/// more KG requests in flight than the blocking threads per worker (4 here), which is what
/// starved the healthy market before the breaker.
const US_CLIENTS: usize = 2;
const US_REQUESTS_PER_CLIENT: usize = 100;
/// KG clients hammering their market meanwhile, without pause.
const KG_CLIENTS: usize = 12;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// US profile reads by [`US_CLIENTS`] clients while [`KG_CLIENTS`] clients read KG profiles
/// without pause; the US latencies sorted, and the KG answers (status, latency).
async fn phase(
    app: &TestApp,
    us_token: &str,
    kg_token: &str,
) -> (Vec<Duration>, Vec<(u16, Duration)>) {
    let done = Arc::new(AtomicBool::new(false));
    let mut kg = Vec::new();
    for _ in 0..KG_CLIENTS {
        let (http, url, token, done) = (
            app.http.clone(),
            format!("{}{PROFILE}", app.base),
            kg_token.to_owned(),
            done.clone(),
        );
        kg.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                let start = Instant::now();
                let res = http.get(&url).bearer_auth(&token).send().await.unwrap();
                let status = res.status().as_u16();
                drop(res.bytes().await);
                seen.push((status, start.elapsed()));
            }
            seen
        }));
    }
    let mut us = Vec::new();
    for _ in 0..US_CLIENTS {
        let (http, url, token) = (
            app.http.clone(),
            format!("{}{PROFILE}", app.base),
            us_token.to_owned(),
        );
        us.push(tokio::spawn(async move {
            let mut took = Vec::new();
            for _ in 0..US_REQUESTS_PER_CLIENT {
                let start = Instant::now();
                let res = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(res.status(), 200, "the US market must keep answering");
                drop(res.bytes().await);
                took.push(start.elapsed());
            }
            took
        }));
    }
    let mut us_took = Vec::new();
    for t in us {
        us_took.extend(t.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let mut kg_seen = Vec::new();
    for t in kg {
        kg_seen.extend(t.await.unwrap());
    }
    us_took.sort();
    (us_took, kg_seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_whose_database_refuses_connections_fails_fast_without_slowing_the_other() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let a = admin.clone();
    let kg_db = tokio::task::spawn_blocking(move || TestDatabase::postgres(&a).unwrap())
        .await
        .unwrap();
    let (mut proxy, kg_url) = TcpProxy::to_postgres(kg_db.url()).unwrap();
    let app = TestApp::spawn(
        Backend::Postgres,
        &[
            ("DATABASE_URL_MARQUE_KG", kg_url.as_str()),
            ("WORKERS", "2"),
            ("DATABASE_POOL_SIZE", "8"),
        ],
    )
    .await
    .unwrap();
    let kg_login: Value = app.login(KG, KG).await;
    let us_login: Value = app.login(US, US).await;
    let kg_token = kg_login["access_token"].as_str().unwrap().to_owned();
    let us_token = us_login["access_token"].as_str().unwrap().to_owned();

    // Normal: the same load with both markets up (so the comparison measures the outage, not
    // the extra CPU the KG clients cost on a 2-core machine).
    let (normal, kg_up) = phase(&app, &us_token, &kg_token).await;
    assert!(kg_up.iter().all(|(s, _)| *s == 200), "KG is up");

    proxy.stop();
    let (during, kg_down) = phase(&app, &us_token, &kg_token).await;

    let (p50_n, p99_n) = (percentile(&normal, 0.5), percentile(&normal, 0.99));
    let (p50_d, p99_d) = (percentile(&during, 0.5), percentile(&during, 0.99));
    let mut refused: Vec<Duration> = kg_down
        .iter()
        .filter(|(s, _)| *s == 503)
        .map(|(_, t)| *t)
        .collect();
    refused.sort();
    eprintln!(
        "US profile reads: normal p50 {p50_n:?} p99 {p99_n:?}; KG down p50 {p50_d:?} p99 \
         {p99_d:?}; KG 503s: {} of {}, p50 {:?} p99 {:?} max {:?}",
        refused.len(),
        kg_down.len(),
        percentile(&refused, 0.5),
        percentile(&refused, 0.99),
        refused.last().unwrap(),
    );

    // Every KG answer during the outage is 503, none after waiting out the 5 s connect timeout
    // (under this load each answer also queues for CPU, so the 100 ms bound is checked below,
    // without load).
    assert!(kg_down.iter().all(|(s, _)| *s == 503), "KG answers 503");
    assert!(refused.len() >= KG_CLIENTS, "the KG clients were served");
    assert!(*refused.last().unwrap() < Duration::from_secs(2));

    // One client: the median of 20 KG requests under 100 ms (the bound) — a median,
    // because single requests on a loaded 2-core CI machine can stall for scheduling reasons;
    // waiting out the connect timeout would take 5 s each.
    let mut alone = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let res = app.get_auth(PROFILE, &kg_token).await;
        assert_eq!(res.status(), 503);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "service_unavailable");
        alone.push(start.elapsed());
    }
    alone.sort();
    eprintln!(
        "KG 503 alone: p50 {:?} max {:?}",
        percentile(&alone, 0.5),
        alone[19]
    );
    assert!(
        percentile(&alone, 0.5) < Duration::from_millis(100),
        "{alone:?}"
    );

    // The US p99 stays within twice its normal value. 20 ms of slack: p99s of a few
    // milliseconds on a shared 2-core machine jitter by that much run to run, while a
    // shared blocking pool starved by the outage would add seconds.
    assert!(
        p99_d <= p99_n * 2 + Duration::from_millis(20),
        "US p99 {p99_d:?} during the KG outage, {p99_n:?} normally"
    );

    // The database returns: KG answers again within seconds, without a restart.
    proxy.start().unwrap();
    let back = Instant::now();
    loop {
        let res = app.get_auth(PROFILE, &kg_token).await;
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 503);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "KG did not recover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "KG recovered {:?} after its database returned",
        back.elapsed()
    );
    assert!(back.elapsed() < Duration::from_secs(5));
}

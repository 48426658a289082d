//! Email timing (issue 10): an unknown address and a wrong password take the same time, and so do
//! registering or asking a reset for a known and an unknown address.
//! In a test binary of its own (`tests/timing.rs`), so no other end-to-end test loads the
//! machine while it measures; the two backends run one after the other.

use std::time::Instant;

use chrono::Duration;
use serde_json::json;

use crate::helpers::{Backend, TestApp};

const PASSWORD: &str = "violet tractor nebula spoon";

/// The tests of this binary measure one at a time (the test harness would run them in parallel).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn register(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_with(
        "/api/v1/auth/email/register",
        json!({"email": email, "password": PASSWORD}),
        &[("X-Market", "kg")],
    )
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/email/login",
        json!({"email": email, "password": password}),
    )
    .await
}

/// A service on `backend` with [`TRIES`] accounts `{prefix}{i}@example.org` (KG), registered 61 s
/// apart so no mail limit answers; `None` when `backend` is not available.
async fn spawn_with_accounts(backend: Backend, prefix: &str) -> Option<TestApp> {
    let app = TestApp::spawn(backend, &[]).await?;
    for i in 0..TRIES {
        let email = format!("{prefix}{i}@example.org");
        assert_eq!(register(&app, &email).await.status(), 201);
        app.clock.advance(Duration::seconds(61));
    }
    Some(app)
}

/// Median of `xs` (seconds).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Tries per side and round.
const TRIES: usize = 11;

/// Whether two kinds of request take the same time: `timed(first_kind, i, round)` sends try `i`
/// of a round as the first kind (`true`) or the second and returns how long it took (seconds).
/// Each round interleaves the kinds, alternating which goes first so neither pays for the
/// other's position, and passes when the medians are within ±20 %. Up to 5 rounds, so one burst
/// of load from outside does not fail it; a real difference fails every round.
async fn same_time<F, Fut>(label: &str, mut timed: F)
where
    F: FnMut(bool, usize, usize) -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut best = f64::MAX;
    for round in 0..5 {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for i in 0..TRIES {
            for first_kind in [i % 2 == 0, i % 2 == 1] {
                let took = timed(first_kind, i, round).await;
                if first_kind {
                    first.push(took);
                } else {
                    second.push(took);
                }
            }
        }
        let (a, b) = (median(first), median(second));
        eprintln!("{label} medians: {a:.4} s vs {b:.4} s");
        best = best.min((a / b - 1.0).abs());
        if (0.8..=1.2).contains(&(a / b)) {
            return;
        }
    }
    panic!("{label}: the two differ by {:.0} %", best * 100.0);
}

/// An unknown address and a wrong password take the same time (a dummy hash is verified), at the
/// production Argon2 cost ([`same_time`]).
async fn login_timing(backend: Backend) {
    // One account per try: repeated wrong passwords on one address are delayed after five.
    let Some(app) = spawn_with_accounts(backend, "timing").await else {
        return;
    };
    // Warm up connections and code paths.
    login(&app, "warm@example.org", PASSWORD).await;
    let app = &app;
    let label = format!("{backend:?} login: unknown address vs wrong password");
    same_time(&label, |unknown, i, round| async move {
        let (email, password) = if unknown {
            (format!("ghost{i}-{round}@example.org"), PASSWORD)
        } else {
            (format!("timing{i}@example.org"), "not the password")
        };
        let t = Instant::now();
        let res = login(app, &email, password).await;
        let took = t.elapsed().as_secs_f64();
        assert_eq!(res.status(), 401);
        took
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_address_and_wrong_password_take_the_same_time() {
    let _serial = ONE_AT_A_TIME.lock().await;
    login_timing(Backend::Sqlite).await;
    login_timing(Backend::Postgres).await;
}

/// The mail-sending requests whose answer must not tell whether an address has an account.
#[derive(Debug, Clone, Copy)]
enum MailProbe {
    /// `POST /api/v1/auth/email/register` (known: "you already have an account" email).
    Register,
    /// `POST /api/v1/auth/email/forgot-password` without `X-Market` (known: a reset email).
    Forgot,
}

impl MailProbe {
    async fn send(self, app: &TestApp, email: &str) -> (u16, String) {
        let res = match self {
            Self::Register => register(app, email).await,
            Self::Forgot => {
                app.post(
                    "/api/v1/auth/email/forgot-password",
                    json!({ "email": email }),
                )
                .await
            }
        };
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

/// A known and an unknown address get the same status and body, in the same time
/// ([`same_time`]). The manual clock moves 61 s before each request, so the per-IP mail limit
/// (20 per 15 minutes) never answers; the per-address limit skips emails silently, which is part
/// of what is timed.
async fn mail_timing(backend: Backend, probe: MailProbe) {
    let Some(app) = spawn_with_accounts(backend, "known").await else {
        return;
    };
    // Warm up connections and code paths.
    probe.send(&app, "warm@example.org").await;
    let reference = std::cell::RefCell::new(None::<(u16, String)>);
    let (app, reference) = (&app, &reference);
    let label = format!("{backend:?} {probe:?}: unknown vs known address");
    same_time(&label, |unknown, i, round| async move {
        let email = if unknown {
            format!("ghost{i}-{round}@example.org")
        } else {
            format!("known{i}@example.org")
        };
        app.clock.advance(Duration::seconds(61));
        let t = Instant::now();
        let answer = probe.send(app, &email).await;
        let took = t.elapsed().as_secs_f64();
        let mut reference = reference.borrow_mut();
        let expected = reference.get_or_insert_with(|| answer.clone());
        assert_eq!(
            &answer, expected,
            "{probe:?} answered differently for {email}"
        );
        took
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_takes_the_same_answer_and_time_for_known_and_unknown_addresses() {
    let _serial = ONE_AT_A_TIME.lock().await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        mail_timing(backend, MailProbe::Register).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_takes_the_same_answer_and_time_for_known_and_unknown_addresses() {
    let _serial = ONE_AT_A_TIME.lock().await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        mail_timing(backend, MailProbe::Forgot).await;
    }
}

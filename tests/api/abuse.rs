//! Issue 12, items 11, 12 and 14: the per-IP budget covers every market and IPv6 networks, no
//! spurious 429 under concurrency, SMS-pumping guards and the CAPTCHA.

use marque_markets::Market;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    parallel_send_codes_from_one_ip_get_no_spurious_429,
    one_ip_budget_covers_both_markets,
    ipv6_is_counted_per_64_and_48,
    daily_sms_budgets_per_market_and_in_total,
    prefix_hourly_limit_refuses_and_sends_nothing,
    captcha_token_is_required_and_checked,
);

/// A send-code from `ip` (the service trusts 127.0.0.1 as a proxy in these tests).
async fn send_from(app: &TestApp, phone: &str, ip: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/api/v1/auth/send-code", app.base))
        .header("X-Forwarded-For", ip)
        .json(&json!({ "phone_number": phone }))
        .send()
        .await
        .unwrap()
}

/// The app behind a trusted proxy at 127.0.0.1 (so `X-Forwarded-For` names the client), with
/// `vars` set.
async fn spawn_behind_proxy(backend: Backend, vars: &[(&str, &str)]) -> Option<TestApp> {
    let mut vars = vars.to_vec();
    vars.push(("TRUSTED_PROXIES", "127.0.0.1"));
    TestApp::spawn(backend, &vars).await
}

/// KG mobile number number `i` (Megacom range 555).
fn kg(i: u32) -> String {
    format!("+996555{:06}", 100_000 + i)
}

/// US number number `i` (New York, 212-555-01xx are real-area-code test numbers).
fn us(i: u32) -> String {
    format!("+1212555{:04}", 100 + i)
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Item 12: N parallel send-codes from one IP for N different numbers, N below the IP limit, on
/// the real clock: every one is admitted. Before, `now` was read before the bucket's row lock,
/// so a request that waited saw the hit of a later reader "in its future" and got 429
/// `Retry-After: 1`.
async fn parallel_send_codes_from_one_ip_get_no_spurious_429(backend: Backend) {
    let Some(app) = TestApp::spawn_with_system_clock(
        backend,
        &[("DATABASE_POOL_SIZE", "8"), ("BLOCKING_THREADS", "8")],
    )
    .await
    else {
        return;
    };
    let n = 25; // IP_SEND_LIMIT is 30
    for round in 0..2 {
        let phones: Vec<String> = (0..n).map(|i| kg(round * 100 + i)).collect();
        let tasks: Vec<_> = phones
            .into_iter()
            .map(|p| {
                let (http, url) = (
                    app.http.clone(),
                    format!("{}/api/v1/auth/send-code", app.base),
                );
                tokio::spawn(async move {
                    let res = http
                        .post(url)
                        .json(&json!({ "phone_number": p }))
                        .send()
                        .await
                        .unwrap();
                    (res.status(), res.headers().get("retry-after").cloned())
                })
            })
            .collect();
        let mut refused = Vec::new();
        for task in tasks {
            let (status, retry) = task.await.unwrap();
            if status != 200 {
                refused.push(format!("{status} {retry:?}"));
            }
        }
        assert!(refused.is_empty(), "round {round}: refused {refused:?}");
        if round == 0 {
            // The second round would exceed the IP limit: start a new window.
            assert_eq!(app.count(Market::Kg, "outbox").await, i64::from(n));
            let url = app.db_url(Market::Kg).to_owned();
            tokio::task::spawn_blocking(move || crate::abuse::clear_ip_buckets(&url))
                .await
                .unwrap();
        }
    }
}

/// Deletes the per-IP buckets (as if their window had ended).
fn clear_ip_buckets(url: &str) {
    use diesel::prelude::*;
    let q = "DELETE FROM rate_limits WHERE bucket LIKE 'send:ip%'";
    if let Some(path) = url.strip_prefix("sqlite://") {
        // Waits for the write lock while the service's outbox worker writes.
        let mut c = marque_testkit::sqlite_connection(path);
        diesel::sql_query(q).execute(&mut c).unwrap();
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(q).execute(&mut c).unwrap();
    }
}

/// Item 11: one IPv4 address gets `IP_SEND_LIMIT` codes in all markets together (it got the
/// limit in each market before), and `::ffff:a.b.c.d` is the same address.
async fn one_ip_budget_covers_both_markets(backend: Backend) {
    let Some(app) = spawn_behind_proxy(backend, &[("IP_SEND_LIMIT", "4")]).await else {
        return;
    };
    let ip = "203.0.113.7";
    assert_eq!(send_from(&app, &kg(1), ip).await.status(), 200);
    assert_eq!(send_from(&app, &us(1), ip).await.status(), 200);
    assert_eq!(
        send_from(&app, &kg(2), "::ffff:203.0.113.7").await.status(),
        200
    );
    assert_eq!(send_from(&app, &us(2), ip).await.status(), 200);
    for phone in [kg(3), us(3)] {
        let (status, err) = error_of(send_from(&app, &phone, "::ffff:cb00:7107").await).await;
        assert_eq!(status, 429, "{phone}: {err}");
        assert_eq!(err["error"], "rate_limited");
    }
    // Another address is not affected.
    assert_eq!(send_from(&app, &kg(4), "198.51.100.1").await.status(), 200);
    assert_eq!(app.count(Market::Kg, "outbox").await, 3);
    assert_eq!(app.count(Market::Us, "outbox").await, 2);
    // Each database holds only its own market's hits of the address.
    assert_eq!(app.count(Market::Us, "phone_verifications").await, 2);
}

/// Item 11: every address of an IPv6 /64 shares one budget (each was a new bucket before), and
/// the /64s of one /48 share a looser one.
async fn ipv6_is_counted_per_64_and_48(backend: Backend) {
    let Some(app) = spawn_behind_proxy(
        backend,
        &[("IP_SEND_LIMIT", "2"), ("IPV6_48_SEND_LIMIT", "3")],
    )
    .await
    else {
        return;
    };
    assert_eq!(
        send_from(&app, &kg(1), "2001:db8:1:1::1").await.status(),
        200
    );
    assert_eq!(
        send_from(&app, &us(1), "2001:db8:1:1::2").await.status(),
        200
    );
    let (status, err) = error_of(send_from(&app, &kg(2), "2001:db8:1:1:ffff::3").await).await;
    assert_eq!((status, err["error"].as_str()), (429, Some("rate_limited")));
    // Another /64 of the same /48: its own /64 budget, but the /48 has one code left.
    assert_eq!(
        send_from(&app, &kg(3), "2001:db8:1:2::1").await.status(),
        200
    );
    let (status, _) = error_of(send_from(&app, &us(3), "2001:db8:1:3::1").await).await;
    assert_eq!(status, 429, "the /48 is used up");
    // Another /48 is not affected.
    assert_eq!(send_from(&app, &kg(4), "2001:db8:2::1").await.status(), 200);
}

/// Item 14: a market's daily SMS budget and the total over markets; a tripped guard answers
/// 429 `sms_budget_exceeded` and nothing is stored or sent.
async fn daily_sms_budgets_per_market_and_in_total(backend: Backend) {
    let Some(app) = spawn_behind_proxy(
        backend,
        &[("SMS_DAILY_LIMIT_KG", "2"), ("SMS_DAILY_LIMIT", "3")],
    )
    .await
    else {
        return;
    };
    // Each from its own address, so only the SMS budgets can refuse.
    assert_eq!(send_from(&app, &kg(1), "198.51.100.1").await.status(), 200);
    assert_eq!(send_from(&app, &kg(2), "198.51.100.2").await.status(), 200);
    let res = send_from(&app, &kg(3), "198.51.100.3").await;
    let retry = res.headers()["retry-after"].to_str().unwrap().to_owned();
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (429, Some("sms_budget_exceeded"))
    );
    assert_eq!(err["retry_after"].to_string(), retry);
    assert!(err["message"].as_str().unwrap().contains("SMS"), "{err}");
    // The US has its own budget, but the total is 3.
    assert_eq!(send_from(&app, &us(1), "198.51.100.4").await.status(), 200);
    let (status, err) = error_of(send_from(&app, &us(2), "198.51.100.5").await).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (429, Some("sms_budget_exceeded"))
    );
    // Nothing stored or queued for the refused ones.
    assert_eq!(app.count(Market::Kg, "outbox").await, 2);
    assert_eq!(app.count(Market::Kg, "phone_verifications").await, 2);
    assert_eq!(app.count(Market::Us, "outbox").await, 1);
    assert_eq!(app.count(Market::Us, "phone_verifications").await, 1);
    assert!(app.messages_to(&kg(3)).is_empty());
}

/// Item 14: at most `SMS_PREFIX_HOURLY_LIMIT` messages per hour to one number prefix (country
/// code + 3 national digits); other prefixes are not affected.
async fn prefix_hourly_limit_refuses_and_sends_nothing(backend: Backend) {
    let Some(app) = spawn_behind_proxy(backend, &[("SMS_PREFIX_HOURLY_LIMIT", "2")]).await else {
        return;
    };
    assert_eq!(send_from(&app, &kg(1), "198.51.100.1").await.status(), 200);
    assert_eq!(send_from(&app, &kg(2), "198.51.100.2").await.status(), 200);
    let (status, err) = error_of(send_from(&app, &kg(3), "198.51.100.3").await).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (429, Some("sms_budget_exceeded"))
    );
    assert!(err["retry_after"].as_u64().unwrap() <= 3600);
    // +996505… is another prefix.
    assert_eq!(
        send_from(&app, "+996505325311", "198.51.100.4")
            .await
            .status(),
        200
    );
    assert_eq!(app.count(Market::Kg, "outbox").await, 3);
    // An hour later the prefix may send again.
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(send_from(&app, &kg(3), "198.51.100.3").await.status(), 200);
}

/// Item 14: with `CAPTCHA_PROVIDER`, send-code needs `captcha_token`, checked at the provider's
/// siteverify URL (here a local fake speaking its wire format).
async fn captcha_token_is_required_and_checked(backend: Backend) {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("secret=site-secret"))
        .and(body_string_contains("response=good-token"))
        .and(body_string_contains("remoteip=127.0.0.1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true,
            "error-codes": []
        })))
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": false,
            "error-codes": ["invalid-input-response"]
        })))
        .mount(&provider)
        .await;
    let url = format!("{}/turnstile/v0/siteverify", provider.uri());
    let Some(app) = TestApp::spawn(
        backend,
        &[
            ("CAPTCHA_PROVIDER", "turnstile"),
            ("CAPTCHA_SECRET", "site-secret"),
            ("CAPTCHA_VERIFY_URL", &url),
        ],
    )
    .await
    else {
        return;
    };
    let send = |body: Value| app.post("/api/v1/auth/send-code", body);
    let phone = kg(1);
    let (status, err) = error_of(send(json!({ "phone_number": phone })).await).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("captcha_required"))
    );
    let (status, err) =
        error_of(send(json!({ "phone_number": phone, "captcha_token": "forged" })).await).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("captcha_invalid"))
    );
    assert_eq!(app.count(Market::Kg, "phone_verifications").await, 0);
    let res = send(json!({ "phone_number": phone, "captcha_token": "good-token" })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count(Market::Kg, "outbox").await, 1);
}

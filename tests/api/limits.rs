use chrono::Duration;
use marque_markets::Market;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    fourth_wrong_try_is_refused,
    expired_code_is_refused,
    code_is_single_use_and_superseded,
    resend_limits_answer_429_with_retry_after,
    test_numbers_skip_delivery_and_limits,
);

async fn fourth_wrong_try_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let phone = "+996505325311";
    let code = app.send_and_read_code(phone, 0).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Issue 12, item 9: the answers no longer tell how many tries are left, nor that the code
    // died: every refusal is the same `invalid_code`.
    for _ in 0..3 {
        let res = app.verify(phone, wrong).await;
        assert_eq!(res.status(), 400);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_code");
        assert!(err.get("attempts_left").is_none(), "{err}");
    }
    let res = app.verify(phone, &code).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_code");
    assert_eq!(app.count(Market::Kg, "users").await, 0);
}

async fn expired_code_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[("OTP_EXPIRY_MINUTES_US", "5")]).await else {
        return;
    };
    let res: Value = app.send_code("+12025550123").await.json().await.unwrap();
    assert_eq!(res["expires_in_minutes"], 5);
    let code = app.code_for("+12025550123", 0).await;
    app.clock.advance(Duration::minutes(5));
    let res = app.verify("+12025550123", &code).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_code");
    assert!(
        err["message"].as_str().unwrap().is_ascii(),
        "US errors are in English"
    );
    assert_eq!(app.count(Market::Us, "users").await, 0);
}

async fn code_is_single_use_and_superseded(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let phone = "+996555123456";
    let old = app.send_and_read_code(phone, 0).await;
    app.clock.advance(Duration::seconds(60));
    let new = app.send_and_read_code(phone, 1).await;
    if old != new {
        let res = app.verify(phone, &old).await;
        assert_eq!(res.status(), 400, "a superseded code must not work");
    }
    assert_eq!(app.verify(phone, &new).await.status(), 200);
    let res = app.verify(phone, &new).await;
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_code");
}

async fn resend_limits_answer_429_with_retry_after(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let phone = "+996505325311";
    assert_eq!(app.send_code(phone).await.status(), 200);
    app.clock.advance(Duration::seconds(20));
    let res = app.send_code(phone).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "40");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "rate_limited");
    assert_eq!(err["retry_after"], 40);
    app.clock.advance(Duration::seconds(40));
    assert_eq!(app.send_code(phone).await.status(), 200);
    app.clock.advance(Duration::seconds(60));
    assert_eq!(app.send_code(phone).await.status(), 200);
    app.clock.advance(Duration::seconds(60));
    // Fourth code within 15 minutes of the first (sent 180 s ago).
    let res = app.send_code(phone).await;
    assert_eq!(res.status(), 429);
    assert_eq!(
        res.headers()["retry-after"],
        (15 * 60 - 180).to_string().as_str()
    );
    // Only three messages were queued.
    assert_eq!(app.count(Market::Kg, "outbox").await, 3);
    app.clock.advance(Duration::seconds(15 * 60 - 180));
    assert_eq!(app.send_code(phone).await.status(), 200);
}

async fn test_numbers_skip_delivery_and_limits(backend: Backend) {
    let Some(app) = TestApp::spawn(
        backend,
        &[(
            "TEST_PHONE_NUMBERS",
            "+996555000001=123456,+12125550199=654321",
        )],
    )
    .await
    else {
        return;
    };
    for _ in 0..5 {
        assert_eq!(app.send_code("+996555000001").await.status(), 200);
    }
    assert_eq!(app.verify("+996555000001", "123456").await.status(), 200);
    assert_eq!(app.send_code("+12125550199").await.status(), 200);
    assert_eq!(app.verify("+12125550199", "654321").await.status(), 200);
    assert_eq!(app.count(Market::Kg, "outbox").await, 0);
    assert_eq!(app.count(Market::Us, "outbox").await, 0);
    assert!(app.messages_to("+996555000001").is_empty());
}

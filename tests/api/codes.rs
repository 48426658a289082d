//! Issue 12, items 8–10 over HTTP: `challenge_id`, one `invalid_code` answer, codes bound to
//! their purpose, the failure lock (`phone_locked`) and the per-IP verify limit. (Item 7, test
//! numbers in production, is proven in `crates/domain/tests/codes.rs` and the settings tests:
//! production start-up refuses the console provider these tests deliver through.)

use chrono::Duration;
use marque_markets::Market;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    every_refused_code_gets_the_same_answer,
    a_wrong_challenge_id_does_not_burn_the_code,
    challenge_id_can_be_required,
    codes_work_only_for_their_purpose,
    wrong_codes_across_codes_lock_the_number,
    verify_code_is_limited_per_client_ip,
);

const KG: &str = "+996505325311";

async fn verify_with(
    app: &TestApp,
    phone: &str,
    code: &str,
    id: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "phone_number": phone, "verification_code": code });
    if let Some(id) = id {
        body["challenge_id"] = json!(id);
    }
    app.post("/api/v1/auth/verify-code", body).await
}

/// Status, headers that could tell something, and body of a refusal. The body's `request_id`
/// (new for every request, so it tells nothing) is checked against `X-Request-Id` and left out.
async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut body: Value = res.json().await.unwrap();
    let quoted = body.as_object_mut().unwrap().remove("request_id");
    assert_eq!(quoted, Some(Value::String(id)));
    (status, body)
}

fn not(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn every_refused_code_gets_the_same_answer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let mut answers = Vec::new();
    // No code was ever sent.
    answers.push(answer(app.verify(KG, "123456").await).await);
    // A wrong code.
    let code = app.send_and_read_code(KG, 0).await;
    answers.push(answer(app.verify(KG, not(&code)).await).await);
    // A used code.
    assert_eq!(app.verify(KG, &code).await.status(), 200);
    answers.push(answer(app.verify(KG, &code).await).await);
    // An expired code.
    app.clock.advance(Duration::seconds(61));
    let code = app.send_and_read_code(KG, 1).await;
    app.clock.advance(Duration::minutes(10));
    answers.push(answer(app.verify(KG, &code).await).await);
    // A code dead after three wrong tries, tried with the right digits.
    let code = app.send_and_read_code(KG, 2).await;
    for _ in 0..3 {
        app.verify(KG, not(&code)).await;
    }
    answers.push(answer(app.verify(KG, &code).await).await);
    // An unknown challenge id, with the right digits of a live code (so only the id refuses it).
    app.clock.advance(Duration::minutes(16));
    let code = app.send_and_read_code(KG, 3).await;
    answers.push(answer(verify_with(&app, KG, &code, Some("nope")).await).await);

    let first = &answers[0];
    assert_eq!(first.0, 400);
    assert_eq!(first.1["error"], "invalid_code");
    for a in &answers {
        assert_eq!(a, first, "every refusal must read the same");
    }
}

async fn a_wrong_challenge_id_does_not_burn_the_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let sent: Value = app.send_code(KG).await.json().await.unwrap();
    let id = sent["challenge_id"]
        .as_str()
        .expect("send-code returns challenge_id");
    assert!(id.len() >= 22, "128 bits at least: {id}");
    assert_eq!(sent["purpose"], "login");
    let code = app.code_for(KG, 0).await;
    // A stranger guessing with any other id: far more tries than the code allows.
    for _ in 0..6 {
        let res = verify_with(&app, KG, not(&code), Some("AAAAAAAAAAAAAAAAAAAAAA")).await;
        assert_eq!(res.status(), 400);
    }
    let res = verify_with(&app, KG, &code, Some(id)).await;
    assert_eq!(res.status(), 200, "the owner's code still works");
}

async fn challenge_id_can_be_required(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[("REQUIRE_CHALLENGE_ID", "true")]).await else {
        return;
    };
    let sent: Value = app.send_code(KG).await.json().await.unwrap();
    let code = app.code_for(KG, 0).await;
    let res = app.verify(KG, &code).await;
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        (&err["error"], &err["field"]),
        (&json!("validation_error"), &json!("challenge_id"))
    );
    let id = sent["challenge_id"].as_str().unwrap();
    assert_eq!(verify_with(&app, KG, &code, Some(id)).await.status(), 200);
}

async fn delete(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.send_auth(Method::DELETE, "/api/v1/auth/account", token, Some(body))
        .await
}

/// Asks for a deletion code for `phone`, with or without a bearer token.
async fn ask(app: &TestApp, token: Option<&str>, phone: &str) -> reqwest::Response {
    let body = json!({"phone_number": phone, "purpose": "delete_account"});
    match token {
        Some(t) => app.post_auth("/api/v1/auth/send-code", t, body).await,
        None => app.post("/api/v1/auth/send-code", body).await,
    }
}

async fn codes_work_only_for_their_purpose(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let token = login["access_token"].as_str().unwrap();

    // A sign-in code does not delete the account.
    app.clock.advance(Duration::seconds(61));
    let login_code = app.send_and_read_code(KG, 1).await;
    assert_eq!(
        delete(&app, token, json!({"verification_code": login_code}))
            .await
            .status(),
        400
    );
    assert_eq!(app.count(Market::Kg, "users").await, 1);

    // Only the account asks for its deletion code, for its own number.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(ask(&app, None, KG).await.status(), 401);
    assert_eq!(ask(&app, Some(token), "+996505325312").await.status(), 422);
    let res = app
        .post(
            "/api/v1/auth/send-code",
            json!({"phone_number": KG, "purpose": "reset"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = ask(&app, Some(token), KG).await;
    assert_eq!(res.status(), 200);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["purpose"], "delete_account");
    let deletion_code = app.code_for(KG, 2).await;
    let message = &app.messages_to(KG)[2];
    assert!(
        message.text.contains("удаления аккаунта"),
        "{}",
        message.text
    );

    // A deletion code does not sign in.
    assert_eq!(app.verify(KG, &deletion_code).await.status(), 400);
    let res = delete(
        &app,
        token,
        json!({
            "verification_code": deletion_code,
            "challenge_id": sent["challenge_id"],
        }),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count(Market::Kg, "users").await, 0);
}

async fn wrong_codes_across_codes_lock_the_number(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[("MAX_CONSECUTIVE_FAILURES", "4")]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::seconds(61));
    let code = app.send_and_read_code(KG, 1).await;
    for _ in 0..3 {
        assert_eq!(app.verify(KG, not(&code)).await.status(), 400);
    }
    app.clock.advance(Duration::seconds(61));
    let code = app.send_and_read_code(KG, 2).await;
    let res = app.verify(KG, not(&code)).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "86400");
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        (&err["error"], &err["retry_after"]),
        (&json!("phone_locked"), &json!(86400))
    );
    // The right code, and new codes, wait for the lock too.
    assert_eq!(app.verify(KG, &code).await.status(), 429);
    app.clock.advance(Duration::seconds(100));
    let res = app.send_code(KG).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "86300");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "phone_locked");

    // The account holder is told.
    let res = app.get_auth("/api/v1/profile/notifications", &token).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let text = page.to_string();
    assert!(text.contains("Вход заблокирован"), "{text}");
}

async fn verify_code_is_limited_per_client_ip(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[("IP_VERIFY_LIMIT", "3")]).await else {
        return;
    };
    for n in 1..=3 {
        let res = app.verify(&format!("+99650532531{n}"), "123456").await;
        assert_eq!(res.status(), 400);
    }
    let res = app.verify("+996505325319", "123456").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "rate_limited");
}

use chrono::Duration;
use marque_markets::Market;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    refresh_rotates_and_reuse_revokes_the_session,
    concurrent_refresh_in_grace_window_gets_one_successor,
    logout_scopes_and_session_list,
    account_deletion_leaves_no_row_and_frees_the_number,
);

const KG: &str = "+996505325311";

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/api/v1/auth/refresh", json!({ "refresh_token": token }))
        .await
}

async fn refresh_rotates_and_reuse_revokes_the_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let r1 = login["refresh_token"].as_str().unwrap().to_owned();
    assert!(r1.starts_with("mrt_kg_"));
    assert_eq!(login["refresh_expires_in"], 30 * 24 * 3600);

    app.clock.advance(Duration::minutes(20));
    let res = refresh(&app, &r1).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(r2, r1);
    assert_eq!(second["token_type"], "bearer");
    assert_eq!(second["expires_in"], 1800);
    assert_eq!(second["market"], "kg");
    assert_eq!(second["user_id"], login["user_id"]);
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", &a2).await.status(),
        200
    );

    // The rotated token comes back after the grace window: the whole session ends.
    app.clock.advance(Duration::seconds(11));
    let res = refresh(&app, &r1).await;
    assert_eq!(res.status(), 401);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "refresh_token_reused");
    assert!(
        !err["message"].as_str().unwrap().is_ascii(),
        "KG answers in Russian"
    );
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", &a2).await.status(),
        401
    );
    let err: Value = refresh(&app, &r2).await.json().await.unwrap();
    assert_eq!(err["error"], "invalid_refresh_token");
    // Only hashes are stored.
    for b in app
        .blobs(Market::Kg, "SELECT token_hash AS b FROM refresh_tokens")
        .await
    {
        assert_eq!(b.len(), 32);
        assert!(
            !b.windows(16)
                .any(|w| r1.as_bytes().windows(16).any(|x| x == w))
        );
    }
    let err: Value = refresh(&app, "mrt_us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(err["error"], "invalid_refresh_token");
    let res = app.post("/api/v1/auth/refresh", json!({})).await;
    assert_eq!(res.status(), 422);
}

async fn concurrent_refresh_in_grace_window_gets_one_successor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let r1 = login["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&app, r1), refresh(&app, r1));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let a: Value = a.json().await.unwrap();
    let b: Value = b.json().await.unwrap();
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "both get the same successor"
    );
    // The successor works; the session is intact.
    let next = refresh(&app, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(next.status(), 200);
}

async fn logout_scopes_and_session_list(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let login = app.login(KG, KG).await;
        tokens.push(login["access_token"].as_str().unwrap().to_owned());
        app.clock.advance(Duration::seconds(61));
    }
    let list = app.get_auth_json("/api/v1/auth/sessions", &tokens[2]).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[0]["client_ip"], "127.0.0.0/24");
    assert_eq!(sessions[0]["user_agent"], "marque-e2e/1.0");

    // End one other session by id.
    let victim = sessions[2]["id"].as_str().unwrap();
    let res = end_session(&app, victim, &tokens[2]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(token_status(&app, &tokens[0]).await, 401);
    let res = end_session(&app, "nope", &tokens[2]).await;
    assert_eq!(res.status(), 404);

    let res = logout(&app, "everything", &tokens[2]).await;
    assert_eq!(res.status(), 422);
    let res = logout(&app, "others", &tokens[2]).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sessions_ended"], 1);
    assert_eq!(token_status(&app, &tokens[1]).await, 401);
    assert_eq!(token_status(&app, &tokens[2]).await, 200);

    // Another user's session id is out of reach.
    let other = app.login("+996700123456", "+996700123456").await;
    let other_token = other["access_token"].as_str().unwrap();
    let mine = app.get_auth_json("/api/v1/auth/sessions", &tokens[2]).await;
    let my_id = mine["sessions"][0]["id"].as_str().unwrap();
    let res = end_session(&app, my_id, other_token).await;
    assert_eq!(res.status(), 404);
    assert_eq!(token_status(&app, &tokens[2]).await, 200);

    let res = logout(&app, "global", &tokens[2]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(token_status(&app, &tokens[2]).await, 401);
    assert_eq!(token_status(&app, other_token).await, 200);
}

async fn account_deletion_leaves_no_row_and_frees_the_number(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let bystander = app.login("+996700123456", "+996700123456").await;
    // Account data of the user goes with the account.
    let address =
        json!({"street": "ул. Юнусалиева", "building": "34", "city": "Бишкек", "region": "Бишкек"});
    let res = app
        .post_auth("/api/v1/profile/addresses", &token, address)
        .await;
    assert_eq!(res.status(), 201);
    let cash = json!({"payment_type": "cash_on_delivery"});
    let res = app
        .post_auth("/api/v1/profile/payment-methods", &token, cash)
        .await;
    assert_eq!(res.status(), 201);

    // Without a fresh code nothing is deleted.
    let res = app
        .send_auth(
            Method::DELETE,
            "/api/v1/auth/account",
            &token,
            Some(json!({"verification_code": "000000"})),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.count(Market::Kg, "users").await, 2);

    // Issue 12, item 10: a sign-in code does not delete; the step-up code is asked for with
    // `purpose: delete_account` and the account's token.
    app.clock.advance(Duration::seconds(61));
    let code = {
        let before = app.messages_to(KG).len();
        assert_eq!(app.send_code(KG).await.status(), 200);
        app.code_for(KG, before).await
    };
    let res = app
        .send_auth(
            Method::DELETE,
            "/api/v1/auth/account",
            &token,
            Some(json!({"verification_code": code})),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.count(Market::Kg, "users").await, 2);
    app.clock.advance(Duration::seconds(61));
    let (code, challenge_id) = {
        let before = app.messages_to(KG).len();
        let res = app
            .post_auth(
                "/api/v1/auth/send-code",
                &token,
                json!({"phone_number": KG, "purpose": "delete_account"}),
            )
            .await;
        assert_eq!(res.status(), 200);
        let sent: serde_json::Value = res.json().await.unwrap();
        let id = sent["challenge_id"].as_str().unwrap().to_owned();
        (app.code_for(KG, before).await, id)
    };
    let res = app
        .send_auth(
            Method::DELETE,
            "/api/v1/auth/account",
            &token,
            Some(json!({"verification_code": code, "challenge_id": challenge_id})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", &token).await.status(),
        401
    );

    let uid = login["user_id"].as_i64().unwrap();
    for (table, n) in [
        ("users", 1),
        ("sessions", 1),
        ("refresh_tokens", 1),
        ("account_deletions", 1),
        ("user_addresses", 0),
        ("user_payment_methods", 0),
    ] {
        assert_eq!(app.count(Market::Kg, table).await, n, "{table}");
    }
    // The remaining rows are the bystander's.
    let b_token = bystander["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", b_token).await.status(),
        200
    );
    for table in [
        "users",
        "sessions",
        "refresh_tokens",
        "phone_verifications",
        "outbox",
    ] {
        assert_eq!(app.count(Market::Us, table).await, 0, "us {table}");
    }
    let outbox_for_number = app
        .blobs(Market::Kg, "SELECT payload AS b FROM outbox")
        .await
        .len();
    assert_eq!(outbox_for_number, 1, "only the bystander's message is left");

    // The number signs up again as a new user.
    app.clock.advance(Duration::minutes(16));
    let again = app.login(KG, KG).await;
    assert_eq!(again["is_new_user"], true);
    assert_ne!(again["user_id"].as_i64().unwrap(), uid);
}

/// The status `verify-token` answers for `token` (200: valid, 401: not).
async fn token_status(app: &TestApp, token: &str) -> reqwest::StatusCode {
    app.get_auth("/api/v1/auth/verify-token", token)
        .await
        .status()
}

/// Ends session `id` with the bearer `token`.
async fn end_session(app: &TestApp, id: &str, token: &str) -> reqwest::Response {
    let path = format!("/api/v1/auth/sessions/{id}");
    app.send_auth(Method::DELETE, &path, token, None).await
}

/// Signs out with `scope` and the bearer `token`.
async fn logout(app: &TestApp, scope: &str, token: &str) -> reqwest::Response {
    let path = format!("/api/v1/auth/logout?scope={scope}");
    app.send_auth(Method::POST, &path, token, None).await
}

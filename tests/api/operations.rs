//! Disabled accounts and the audit log over HTTP (issue 12, items 17 and 18).

use marque_markets::Market;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    a_disabled_account_gets_403_at_sign_in_and_401_with_its_tokens,
    sign_in_and_logout_are_audited_with_the_client
);

const KG: &str = "+996505325311";

async fn a_disabled_account_gets_403_at_sign_in_and_401_with_its_tokens(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let token = login["access_token"].as_str().unwrap();
    let refresh = login["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", token).await.status(),
        200
    );
    let changed = app
        .execute(Market::Kg, "UPDATE users SET is_active = false".to_owned())
        .await;
    assert_eq!(changed, 1);

    let res = app.get_auth("/api/v1/auth/profile", token).await;
    assert_eq!(res.status(), 401);
    let res = app
        .post("/api/v1/auth/refresh", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(res.status(), 401);

    app.clock.advance(chrono::Duration::seconds(61));
    let sessions = app.count(Market::Kg, "sessions").await;
    assert_eq!(app.send_code(KG).await.status(), 200);
    let code = app.code_for(KG, 1).await;
    let res = app.verify(KG, &code).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "account_disabled");
    assert_eq!(
        body["message"],
        "Учётная запись отключена, обратитесь в поддержку"
    );
    assert!(body.get("access_token").is_none());
    assert_eq!(app.count(Market::Kg, "sessions").await, sessions);
}

async fn sign_in_and_logout_are_audited_with_the_client(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login(KG, KG).await;
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(app.count(Market::Kg, "audit_log").await, 1);
    let res = app
        .send_auth(reqwest::Method::POST, "/api/v1/auth/logout", token, None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count(Market::Kg, "audit_log").await, 2);
    assert_eq!(app.count(Market::Us, "audit_log").await, 0);
    // Both rows name the client (the socket peer: no trusted proxy) and the user.
    let from_client = "audit_log WHERE client_ip = '127.0.0.1' AND user_id IS NOT NULL \
                       AND event IN ('sign_in', 'sign_out')";
    assert_eq!(app.count(Market::Kg, from_client).await, 2);
}

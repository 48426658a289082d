use marque_markets::Market;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    kg_login_profile_logout,
    us_login_with_national_format,
    relogin_is_same_user
);

async fn put_profile(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.send_auth(Method::PUT, "/api/v1/auth/profile", token, Some(body))
        .await
}

async fn kg_login_profile_logout(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let res = app.send_code("+996505325311").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["phone_number"], "+996 505 325 311");
    assert_eq!(body["market"], "kg");
    assert_eq!(body["language"], "ru");
    assert_eq!(body["expires_in_minutes"], 10);

    let code = app.code_for("+996505325311", 0).await;
    let msg = &app.messages_to("+996505325311")[0];
    assert!(
        msg.text.starts_with(&format!("Marque: ваш код {code}")),
        "{}",
        msg.text
    );

    // Neither the stored hash nor the queued message holds the code in clear.
    for b in app
        .blobs(Market::Kg, "SELECT code_hash AS b FROM phone_verifications")
        .await
    {
        assert!(!b.windows(6).any(|w| w == code.as_bytes()));
    }
    for b in app
        .blobs(Market::Kg, "SELECT payload AS b FROM outbox")
        .await
    {
        assert!(!b.windows(6).any(|w| w == code.as_bytes()));
    }

    let res = app.verify("+996 505 325 311", &code).await;
    assert_eq!(res.status(), 200);
    let login: Value = res.json().await.unwrap();
    assert_eq!(login["token_type"], "bearer");
    assert_eq!(login["expires_in"], 1800);
    assert_eq!(login["market"], "kg");
    assert_eq!(login["is_new_user"], true);
    let token = login["access_token"].as_str().unwrap().to_owned();

    // The user exists in the KG database only.
    assert_eq!(app.count(Market::Kg, "users").await, 1);
    assert_eq!(app.count(Market::Us, "users").await, 0);
    assert_eq!(app.count(Market::Us, "phone_verifications").await, 0);
    assert_eq!(app.count(Market::Us, "sessions").await, 0);

    let profile = app.get_auth_json("/api/v1/auth/profile", &token).await;
    assert_eq!(profile["id"], login["user_id"]);
    assert_eq!(profile["phone_number"], "+996505325311");
    assert_eq!(profile["formatted_phone"], "+996 505 325 311");
    assert_eq!(profile["currency"], "сом");
    assert_eq!(profile["currency_code"], "KGS");
    assert_eq!(profile["country"], "Kyrgyzstan");
    assert_eq!(profile["language"], "ru");
    assert_eq!(profile["is_verified"], true);
    assert_eq!(profile["full_name"], Value::Null);

    let res = put_profile(
        &app,
        &token,
        json!({"full_name": "Анна Ахматова", "profile_image_url": "https://example.com/a.jpg"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["full_name"], "Анна Ахматова");
    assert_eq!(updated["profile_image_url"], "https://example.com/a.jpg");

    // A bad name is refused in Russian and changes nothing.
    let res = put_profile(&app, &token, json!({"full_name": "x".repeat(101)})).await;
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "validation_error");
    assert_eq!(err["field"], "full_name");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| ('а'..='я').contains(&c))
    );
    let profile = app.get_auth_json("/api/v1/auth/profile", &token).await;
    assert_eq!(profile["full_name"], "Анна Ахматова");

    let vt = app.get_auth_json("/api/v1/auth/verify-token", &token).await;
    assert_eq!(vt["valid"], true);
    assert_eq!(vt["market"], "kg");
    assert_eq!(vt["user_id"], login["user_id"]);

    let res = app
        .send_auth(Method::POST, "/api/v1/auth/logout", &token, None)
        .await;
    assert_eq!(res.status(), 200);
    for path in ["/api/v1/auth/profile", "/api/v1/auth/verify-token"] {
        let res = app.get_auth(path, &token).await;
        assert_eq!(res.status(), 401, "{path}");
        assert!(res.headers().contains_key("www-authenticate"));
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_token");
        assert_eq!(err["success"], false);
    }
}

async fn us_login_with_national_format(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let res = app
        .http
        .post(format!("{}/api/v1/auth/send-code", app.base))
        .header("X-Market", "us")
        .json(&json!({"phone_number": "(212) 555-0100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["phone_number"], "+1 (212) 555-0100");
    assert_eq!(body["market"], "us");
    assert_eq!(body["language"], "en");
    let code = app.code_for("+12125550100", 0).await;
    assert!(
        app.messages_to("+12125550100")[0]
            .text
            .starts_with("Marque: your code is")
    );
    let login: Value = app
        .verify("+12125550100", &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["market"], "us");
    let token = login["access_token"].as_str().unwrap();
    let profile = app.get_auth_json("/api/v1/auth/profile", token).await;
    assert_eq!(profile["currency"], "$");
    assert_eq!(profile["currency_code"], "USD");
    assert_eq!(profile["formatted_phone"], "+1 (212) 555-0100");
    assert_eq!(app.count(Market::Us, "users").await, 1);
    assert_eq!(app.count(Market::Kg, "users").await, 0);
    assert_eq!(app.count(Market::Kg, "outbox").await, 0);
}

async fn relogin_is_same_user(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let first = app.login("+996700123456", "+996700123456").await;
    app.clock.advance(chrono::Duration::seconds(61));
    let second = app.login("+996700123456", "+996700123456").await;
    assert_eq!(first["user_id"], second["user_id"]);
    assert_eq!(second["is_new_user"], false);
    // Both sessions are valid independently.
    for login in [&first, &second] {
        let t = login["access_token"].as_str().unwrap();
        assert_eq!(
            app.get_auth("/api/v1/auth/verify-token", t).await.status(),
            200
        );
    }
}

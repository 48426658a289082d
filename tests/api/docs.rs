use serde_json::Value;

use crate::calls::{app_get, openapi};
use crate::helpers::{Backend, TestApp};

#[tokio::test]
async fn openapi_lists_every_route_and_the_bearer_scheme() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let doc = openapi(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/api/v1/auth/send-code", "post"),
        ("/api/v1/auth/verify-code", "post"),
        ("/api/v1/auth/profile", "get"),
        ("/api/v1/auth/profile", "put"),
        ("/api/v1/auth/verify-token", "get"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/markets", "get"),
        ("/api/v1/auth/health", "get"),
        ("/health", "get"),
        ("/health", "head"),
        ("/health/live", "get"),
        ("/health/live", "head"),
        ("/health/ready", "get"),
        ("/health/ready", "head"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/sessions", "get"),
        ("/api/v1/auth/sessions/{id}", "delete"),
        ("/api/v1/auth/account", "delete"),
        ("/.well-known/jwks.json", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    for schema in [
        "RefreshRequest",
        "RefreshResponse",
        "SessionsResponse",
        "DeleteAccountRequest",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    let refresh_errors = &doc["paths"]["/api/v1/auth/refresh"]["post"]["responses"]["401"];
    assert!(
        refresh_errors["description"]
            .as_str()
            .unwrap()
            .contains("refresh_token_reused")
    );
    let ui = app_get(&app, "/docs/").await;
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn markets_health_and_security_headers() {
    let app = TestApp::spawn(Backend::Sqlite, &[("DEFAULT_MARKET", "us")])
        .await
        .unwrap();
    let res = app_get(&app, "/api/v1/auth/markets").await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["default_market"], "us");
    let kg = &m["supported_markets"][0];
    assert_eq!(kg["market"], "kg");
    assert_eq!(kg["phone_prefix"], "+996");
    assert_eq!(kg["phone_format"], "+996 XXX XXX XXX");
    assert_eq!(kg["currency"], "сом");
    assert_eq!(
        m["supported_markets"][1]["phone_format"],
        "+1 (XXX) XXX-XXXX"
    );
    for path in ["/health", "/api/v1/auth/health"] {
        let res = app_get(&app, path).await;
        assert_eq!(res.status(), 200);
        let h: Value = res.json().await.unwrap();
        assert_eq!(h["status"], "healthy");
        assert_eq!(h["markets"][0]["status"], "up");
    }
    let res = app_get(&app, "/health/live").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = app_get(&app, "/health/ready").await;
    assert_eq!(res.status(), 200);
    let h: Value = res.json().await.unwrap();
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["markets"][1]["status"], "up");
    // HEAD answers like GET, without a body (it was 405).
    for path in ["/health", "/health/live", "/health/ready"] {
        let res = app
            .http
            .head(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "HEAD {path}");
        assert!(res.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
}

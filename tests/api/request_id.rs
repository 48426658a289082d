//! `X-Request-Id` (issue 11): on every response, the incoming one when sane, else a new UUID; in
//! every JSON error body as `request_id`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

fn id_of(res: &reqwest::Response) -> String {
    res.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_sane_incoming_id_is_echoed_an_insane_one_replaced() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let url = format!("{}/api/v1/auth/markets", app.base);
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let first = id_of(&res);
    assert_eq!(uuid::Uuid::parse_str(&first).unwrap().get_version_num(), 4);
    let res = app.http.get(&url).send().await.unwrap();
    assert_ne!(id_of(&res), first, "a new id per request");

    let sane = "edge-7f3a:42_b.c";
    let res = app
        .http
        .get(&url)
        .header("X-Request-Id", sane)
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&res), sane);

    let long = "a".repeat(129);
    for insane in ["two words", "<script>", "a/b", long.as_str()] {
        let res = app
            .http
            .get(&url)
            .header("X-Request-Id", insane)
            .send()
            .await
            .unwrap();
        let id = id_of(&res);
        assert_ne!(id, insane);
        assert_eq!(
            uuid::Uuid::parse_str(&id).unwrap().get_version_num(),
            4,
            "{insane:?}"
        );
    }
}

/// Errors from handlers, extractors, the router (404, 405) all carry the header's id in their
/// body; success bodies and the health report keep their shape.
#[tokio::test]
async fn every_error_body_carries_the_request_id() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let base = &app.base;
    let requests = [
        // handler: invalid phone number
        app.http
            .post(format!("{base}/api/v1/auth/send-code"))
            .json(&json!({"phone_number": "12"})),
        // extractor: malformed JSON
        app.http
            .post(format!("{base}/api/v1/auth/send-code"))
            .header("Content-Type", "application/json")
            .body("{"),
        // extractor: no bearer token
        app.http.get(format!("{base}/api/v1/auth/profile")),
        // router: 404 and 405
        app.http.get(format!("{base}/api/v1/nope")),
        app.http.request(Method::PATCH, format!("{base}/health")),
        // 405 under /api
        app.http.get(format!("{base}/api/v1/auth/send-code")),
    ];
    for request in requests {
        let res = request
            .header("X-Request-Id", "quote-me-1")
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(status.is_client_error(), "{status}");
        assert_eq!(id_of(&res), "quote-me-1");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["request_id"], "quote-me-1", "{body}");
    }
    let res = app
        .http
        .get(format!("{base}/api/v1/nope"))
        .send()
        .await
        .unwrap();
    let id = id_of(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], id);

    let res = app.http.get(format!("{base}/health")).send().await.unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert!(body.get("request_id").is_none(), "{body}");
}

/// Browsers may read the header from another origin.
#[tokio::test]
async fn cors_exposes_the_request_id() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[("ALLOWED_ORIGINS", "https://shop.example")],
    )
    .await
    .unwrap();
    let res = app
        .http
        .get(format!("{}/api/v1/auth/markets", app.base))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.to_ascii_lowercase().contains("x-request-id"),
        "{exposed}"
    );
}

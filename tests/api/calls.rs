//! HTTP calls that several scenario files make the same way: a plain `GET` of a JSON document, a
//! sign-in with a fixed test code (`TEST_PHONE_NUMBERS`), and an authenticated call that answers
//! status and JSON body.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// The code of every `TEST_PHONE_NUMBERS` entry these tests set.
pub const FIXED_CODE: &str = "123456";

/// Starts the app where each of `phones` signs in with [`FIXED_CODE`] (`TEST_PHONE_NUMBERS`: no
/// delivery to wait for); `None` when the backend is not available.
pub async fn spawn_with_fixed_codes(backend: Backend, phones: &[&str]) -> Option<TestApp> {
    let codes: Vec<String> = phones.iter().map(|p| format!("{p}={FIXED_CODE}")).collect();
    TestApp::spawn(backend, &[("TEST_PHONE_NUMBERS", &codes.join(","))]).await
}

/// `GET url` without credentials; the response.
pub async fn get(http: &reqwest::Client, url: String) -> reqwest::Response {
    http.get(url).send().await.unwrap()
}

/// `GET url` without credentials; the JSON body (whatever the status).
pub async fn get_json(http: &reqwest::Client, url: String) -> Value {
    get(http, url).await.json().await.unwrap()
}

/// `GET path` of `app` without credentials; the response.
pub async fn app_get(app: &TestApp, path: &str) -> reqwest::Response {
    get(&app.http, format!("{}{path}", app.base)).await
}

/// `GET path` of `app` without credentials; the JSON body.
pub async fn app_get_json(app: &TestApp, path: &str) -> Value {
    get_json(&app.http, format!("{}{path}", app.base)).await
}

/// The OpenAPI document `app` serves.
pub async fn openapi(app: &TestApp) -> Value {
    app_get_json(app, "/api-docs/openapi.json").await
}

/// Signs `phone` in with [`FIXED_CODE`], sending `user_agent` when given; the access
/// token.
pub async fn sign_in_fixed(app: &TestApp, phone: &str, user_agent: Option<&str>) -> String {
    assert_eq!(app.send_code(phone).await.status(), 200);
    let mut req = app
        .http
        .post(format!("{}/api/v1/auth/verify-code", app.base))
        .json(&json!({ "phone_number": phone, "verification_code": FIXED_CODE }));
    if let Some(ua) = user_agent {
        req = req.header("User-Agent", ua);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls `method path` with the bearer `token` and an optional JSON body; returns status and body
/// (which must be JSON).
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let res = app
        .send_auth(method.parse().unwrap(), path, token, body)
        .await;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

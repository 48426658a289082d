use marque_markets::Market;
use serde_json::{Value, json};

use crate::both_backends;
use crate::calls::app_get;
use crate::helpers::{Backend, TestApp};

both_backends!(bad_input_gets_clear_errors_and_writes_nothing);

async fn error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "expected {code}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], code);
    assert!(!body["message"].as_str().unwrap().is_empty());
    body
}

async fn bad_input_gets_clear_errors_and_writes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let url = format!("{}/api/v1/auth/send-code", app.base);
    let raw = async |body: String, ct: &str| {
        let req = app.http.post(&url).header("content-type", ct).body(body);
        req.send().await.unwrap()
    };
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    for (body, ct, status, code, field) in [
        ("{\"phone_number\": ", json, 400, "invalid_json", None),
        ("{}", json, 422, "validation_error", Some("phone_number")),
        (
            "{\"phone_number\": 5}",
            json,
            422,
            "validation_error",
            Some("phone_number"),
        ),
        ("phone_number=1", form, 415, "unsupported_media_type", None),
    ] {
        let b = error(raw(body.to_owned(), ct).await, status, code).await;
        if let Some(field) = field {
            assert_eq!(b["field"], field);
        }
    }
    let big = format!("{{\"phone_number\": \"{}\"}}", "1".repeat(17 * 1024));
    error(raw(big, json).await, 413, "payload_too_large").await;

    let cases = [
        ("+996 505 325 31a", "invalid_phone"),
        ("+1 555 123 4567", "invalid_phone"),
        ("+99650532531", "invalid_phone"),
        ("", "invalid_phone"),
        ("+1 202-555-0123 ext. 12", "invalid_phone"),
        ("+1 416 555 0123", "unsupported_market"),
        ("+1 876 555 0123", "unsupported_market"),
        ("+7 916 123 4567", "unsupported_market"),
        ("+996 312 123 456", "phone_not_mobile"),
    ];
    for (phone, code) in cases {
        let b = error(app.send_code(phone).await, 422, code).await;
        assert!(
            b["message"].as_str().unwrap().is_ascii(),
            "{phone}: English without a market"
        );
    }
    // Puerto Rico is in the US market.
    assert_eq!(app.send_code("+1 787 555 0123").await.status(), 200);

    let with_market = async |m: &str, phone: &str| {
        let req = app.http.post(&url).header("X-Market", m);
        req.json(&json!({ "phone_number": phone }))
            .send()
            .await
            .unwrap()
    };
    error(
        with_market("fr", "+996505325311").await,
        400,
        "unknown_market",
    )
    .await;
    let b = error(
        with_market("kg", "+12125550100").await,
        422,
        "market_mismatch",
    )
    .await;
    assert!(
        !b["message"].as_str().unwrap().is_ascii(),
        "KG errors are in Russian"
    );
    assert_eq!(with_market("KG", "0505 325 311").await.status(), 200);

    let verify = format!("{}/api/v1/auth/verify-code", app.base);
    for body in [
        json!({"phone_number": "+996505325311", "verification_code": "12a456"}),
        json!({"phone_number": "+996505325311"}),
    ] {
        let res = app.http.post(&verify).json(&body).send().await.unwrap();
        let b = error(res, 422, "validation_error").await;
        assert_eq!(b["field"], "verification_code", "{body}");
    }
    error(
        app.verify("+996700000001", "123456").await,
        400,
        "invalid_code",
    )
    .await;

    let res = app_get(&app, "/api/v1/nope").await;
    error(res, 404, "not_found").await;
    let res = app.http.get(&url).send().await.unwrap();
    error(res, 405, "method_not_allowed").await;
    let res = app_get(&app, "/api/v1/auth/profile").await;
    error(res, 401, "invalid_token").await;
    let res = app.get_auth("/api/v1/auth/profile", "a.b.c").await;
    error(res, 401, "invalid_token").await;

    // Nothing but the two accepted sends was written.
    assert_eq!(app.count(Market::Kg, "users").await, 0);
    assert_eq!(app.count(Market::Kg, "phone_verifications").await, 1);
    assert_eq!(app.count(Market::Us, "phone_verifications").await, 1);
}

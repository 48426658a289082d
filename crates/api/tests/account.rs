//! HTTP behaviour of the account routes over the real store (a SQLite file per market): card
//! numbers never leave the request, and malformed ids, queries and tokens get JSON errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use actix_web::{App, test, web};
use chrono::{TimeZone, Utc};
mod common;

use common::{answer, capture_logs};

use marque_api::{ApiState, configure, routes};
use marque_testkit::Services;
use serde_json::{Value, json};
use tracing_actix_web::TracingLogger;

const KG_PHONE: &str = "+996555000001";
/// A valid Visa test number; refused in some requests below for other reasons.
const PAN: &str = "4111111111111111";
/// An American Express test number (not offered in Kyrgyzstan).
const AMEX: &str = "378282246310005";

fn state() -> (Services, web::Data<ApiState>) {
    common::state(
        Utc.with_ymd_and_hms(2026, 3, 15, 9, 0, 0).unwrap(),
        KG_PHONE,
    )
}

/// The services (which own the databases: keep them alive) and the app.
macro_rules! app {
    () => {{
        let (services, state) = state();
        let app = test::init_service(
            App::new()
                .app_data(state)
                .configure(configure)
                .default_service(web::to(routes::not_found))
                .wrap(TracingLogger::default()),
        )
        .await;
        (services, app)
    }};
}

macro_rules! login {
    ($app:expr) => {{
        let send = test::TestRequest::post()
            .uri("/api/v1/auth/send-code")
            .set_json(json!({"phone_number": KG_PHONE}))
            .to_request();
        assert_eq!(test::call_service(&$app, send).await.status(), 200);
        let verify = test::TestRequest::post()
            .uri("/api/v1/auth/verify-code")
            .set_json(json!({"phone_number": KG_PHONE, "verification_code": "123456"}))
            .to_request();
        let login: Value = test::call_and_read_body_json(&$app, verify).await;
        ("Authorization", format!("Bearer {}", login["access_token"].as_str().unwrap()))
    }};
}

/// Digits of a card number that must appear nowhere: its first twelve.
fn leaks(text: &str, number: &str) -> bool {
    text.contains(&number[..12])
}

#[actix_web::test]
async fn card_numbers_never_reach_responses_or_logs() {
    let logs = capture_logs(tracing::Level::TRACE);
    let (_services, app) = app!();
    let auth = login!(app);
    let bad_luhn = format!("{}2", &PAN[..15]);
    let cases: Vec<(String, u16, &str)> = vec![
        (json!({"card_number": bad_luhn, "expiry_month": 1, "expiry_year": 2030}).to_string(), 422, "validation_error"),
        (json!({"card_number": AMEX, "expiry_month": 1, "expiry_year": 2030}).to_string(), 422, "payment_method_not_available"),
        (json!({"card_number": PAN, "expiry_month": 1, "expiry_year": 2026}).to_string(), 422, "card_expired"),
        (format!(r#"{{"card_number": {PAN}, "expiry_month": 1, "expiry_year": 2030}}"#), 422, "validation_error"),
        (json!({"card_number": PAN, "card_holder_name": PAN, "expiry_month": 1, "expiry_year": 2030}).to_string(), 422, "validation_error"),
        (json!({"card_number": PAN, "expiry_month": PAN, "expiry_year": 2030}).to_string(), 422, "validation_error"),
        // A token holding a card number (issue 12 item 15): its own code, the field named.
        (json!({"card_number": PAN, "provider_token": PAN}).to_string(), 422, "card_number_in_text"),
        (format!(r#"{{"card_number": "{PAN}", "is_default": "{PAN}"}}"#), 422, "validation_error"),
        (json!({"payment_type": "card", "card_number": PAN, "expiry_month": "12", "expiry_year": "2030", "cvv": "123"}).to_string(), 201, ""),
    ];
    for (body, status, code) in cases {
        let req = test::TestRequest::post()
            .uri("/api/v1/profile/payment-methods")
            .insert_header(auth.clone())
            .insert_header(("content-type", "application/json"))
            .set_payload(body.clone())
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        assert!(!leaks(&text, PAN) && !leaks(&text, AMEX), "{body} → {text}");
        if !code.is_empty() {
            let err: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(err["error"], code, "{body} → {text}");
        } else {
            let ok: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(ok["payment_method"]["card_number_masked"], "1111");
            assert_eq!(ok["payment_method"]["card_type"], "visa");
        }
    }
    let list = test::TestRequest::get()
        .uri("/api/v1/profile/payment-methods")
        .insert_header(auth.clone())
        .to_request();
    let res = test::call_service(&app, list).await;
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(text.contains("\"card_number_masked\":\"1111\""), "{text}");
    assert!(!leaks(&text, PAN), "{text}");
    let logged = logs.text();
    assert!(
        logged.contains("validation_error") || logged.contains("422"),
        "nothing logged?"
    );
    assert!(!leaks(&logged, PAN) && !leaks(&logged, AMEX), "{logged}");
}

#[actix_web::test]
async fn malformed_tokens_ids_and_queries_get_json_errors() {
    let (_services, app) = app!();
    for (method, uri) in [
        ("GET", "/api/v1/profile/addresses"),
        ("POST", "/api/v1/profile/payment-methods"),
        ("PUT", "/api/v1/profile/notifications/read-all"),
    ] {
        let req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .insert_header(("Authorization", "Bearer not-a-token"))
            .set_json(json!({}))
            .to_request();
        let body = answer(&app, req, 401).await;
        assert_eq!(body["error"], "invalid_token", "{method} {uri}");
    }
    let auth = login!(app);
    for uri in [
        "/api/v1/profile/addresses/abc",
        "/api/v1/profile/addresses/0",
        "/api/v1/profile/addresses/-3",
        "/api/v1/profile/addresses/99999999999999999999",
        "/api/v1/profile/addresses/7",
    ] {
        let req = test::TestRequest::delete()
            .uri(uri)
            .insert_header(auth.clone())
            .to_request();
        let body = answer(&app, req, 404).await;
        assert_eq!(body["error"], "not_found", "{uri}");
        assert_eq!(body["message"], "Ресурс не найден");
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("unread_only=maybe", "unread_only"),
    ] {
        let req = test::TestRequest::get()
            .uri(&format!("/api/v1/profile/notifications?{query}"))
            .insert_header(auth.clone())
            .to_request();
        let body = answer(&app, req, 422).await;
        assert_eq!(body["error"], "validation_error", "{query}");
        assert_eq!(body["field"], field);
    }
    let req = test::TestRequest::get()
        .uri("/api/v1/profile/notifications?limit=100&offset=0&unread_only=true&other=1")
        .insert_header(auth.clone())
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(body["success"], true);
    assert_eq!(body["total"], 0);
    let req = test::TestRequest::patch()
        .uri("/api/v1/profile/addresses")
        .insert_header(auth.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 405);
    let req = test::TestRequest::put()
        .uri("/api/v1/profile/payment-methods/1")
        .insert_header(auth)
        .set_json(json!({"card_number": PAN}))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 422);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(text.contains("card_number") && !leaks(&text, PAN), "{text}");
}

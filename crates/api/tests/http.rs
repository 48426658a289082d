//! HTTP behaviour of the api crate over the real store (a SQLite file per market).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use actix_web::{App, test, web};
use chrono::Utc;
mod common;

use common::answer;

use marque_api::{ApiState, configure, routes};
use marque_testkit::Services;
use serde_json::{Value, json};

fn state() -> (Services, web::Data<ApiState>) {
    common::state(Utc::now(), "+996555000001")
}

/// `GET /api/v1/auth/profile` with `Authorization: Bearer token`, and `X-Market` when given.
fn profile(token: &str, market: Option<&str>) -> test::TestRequest {
    let mut req = test::TestRequest::get()
        .uri("/api/v1/auth/profile")
        .insert_header(("Authorization", format!("Bearer {token}")));
    if let Some(market) = market {
        req = req.insert_header(("X-Market", market));
    }
    req
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(
            App::new()
                .app_data($state)
                .configure(configure)
                .default_service(web::to(routes::not_found)),
        )
        .await
    };
}

#[actix_web::test]
async fn health_is_503_when_a_market_database_is_down() {
    let (services, state) = state();
    let app = app!(state);
    let res = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(res.status(), 200);
    services.kg.set_down(true);
    let health = test::TestRequest::get().uri("/health").to_request();
    let body = answer(&app, health, 503).await;
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["markets"][0]["status"], "down");
    assert_eq!(body["markets"][1]["status"], "up");
}

/// `/health/live` never asks a database; `/health/ready` is 503 naming the market that is down,
/// quickly; HEAD answers like GET without a body.
#[actix_web::test]
async fn live_and_ready_when_a_market_database_is_down() {
    let (services, state) = state();
    let app = app!(state);
    let ready = || test::TestRequest::get().uri("/health/ready").to_request();
    let body = answer(&app, ready(), 200).await;
    assert_eq!(body["status"], "healthy");
    services.kg.set_down(true);
    let started = std::time::Instant::now();
    let body = answer(&app, ready(), 503).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["markets"][0]["market"], "kg");
    assert_eq!(body["markets"][0]["status"], "down");
    assert_eq!(body["markets"][1]["status"], "up");
    let live = test::TestRequest::get().uri("/health/live").to_request();
    let body = answer(&app, live, 200).await;
    assert_eq!(body["status"], "ok");
    for (uri, status) in [
        ("/health/live", 200),
        ("/health/ready", 503),
        ("/health", 503),
    ] {
        let head = test::TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri(uri)
            .to_request();
        let res = test::call_service(&app, head).await;
        assert_eq!(res.status(), status, "HEAD {uri}");
    }
}

/// A database that hangs does not hold `/health/ready` past its deadline: 503 within 1 s, the
/// hanging market `down`, the other `up`.
#[actix_web::test]
async fn ready_answers_within_a_second_when_a_database_hangs() {
    let (services, state) = state();
    let app = app!(state);
    services.us.set_stall(std::time::Duration::from_secs(3));
    let started = std::time::Instant::now();
    let ready = test::TestRequest::get().uri("/health/ready").to_request();
    let body = answer(&app, ready, 503).await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    assert_eq!(body["markets"][0]["status"], "up");
    assert_eq!(body["markets"][1]["market"], "us");
    assert_eq!(body["markets"][1]["status"], "down");
    services.us.set_stall(std::time::Duration::ZERO);
}

#[actix_web::test]
async fn outage_during_login_is_503_in_the_market_language() {
    let (services, state) = state();
    let app = app!(state);
    services.kg.set_down(true);
    let req = test::TestRequest::post()
        .uri("/api/v1/auth/send-code")
        .set_json(json!({"phone_number": "+996505325311"}))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 503);
    // When to try again: the breaker probes the database again within 2 s.
    assert_eq!(res.headers().get("retry-after").unwrap(), "2");
    let body: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(body["error"], "service_unavailable");
    assert_eq!(body["retry_after"], 2);
    assert!(!body["message"].as_str().unwrap().is_ascii());
}

#[actix_web::test]
async fn test_number_login_then_logout() {
    let (services, state) = state();
    let app = app!(state);
    let send = test::TestRequest::post()
        .uri("/api/v1/auth/send-code")
        .set_json(json!({"phone_number": "+996555000001"}))
        .to_request();
    assert_eq!(test::call_service(&app, send).await.status(), 200);
    let verify = test::TestRequest::post()
        .uri("/api/v1/auth/verify-code")
        .set_json(json!({"phone_number": "+996555000001", "verification_code": "123456"}))
        .to_request();
    let login: Value = test::call_and_read_body_json(&app, verify).await;
    let token = login["access_token"].as_str().unwrap();
    let auth = ("Authorization", format!("Bearer {token}"));
    let logout = test::TestRequest::post()
        .uri("/api/v1/auth/logout")
        .insert_header(auth.clone());
    assert_eq!(
        test::call_service(&app, logout.to_request()).await.status(),
        200
    );
    let again = test::TestRequest::get()
        .uri("/api/v1/auth/verify-token")
        .insert_header(auth);
    let body = answer(&app, again.to_request(), 401).await;
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(services.kg.user_count(), 1);
}

#[actix_web::test]
async fn token_errors_speak_the_token_market_language_once_the_token_is_authentic() {
    let (services, state) = state();
    let app = app!(state);
    let (login, who) = services.sign_in("+996555000001", Some("test"));
    services
        .auth
        .logout(
            &who,
            marque_domain::LogoutScope::Local,
            &marque_domain::ClientInfo::default(),
        )
        .unwrap();
    // Authentic KG token of an ended session: Russian, whatever X-Market says.
    let body = answer(
        &app,
        profile(&login.access_token, Some("us")).to_request(),
        401,
    )
    .await;
    assert_eq!(body["error"], "invalid_token");
    assert!(!body["message"].as_str().unwrap().is_ascii());
    // A forged token: the X-Market language (English for US, Russian for KG).
    for (market, ascii) in [("us", true), ("kg", false)] {
        let body = answer(&app, profile("a.b.c", Some(market)).to_request(), 401).await;
        assert_eq!(
            body["message"].as_str().unwrap().is_ascii(),
            ascii,
            "{market}"
        );
    }
    // The signed-in caller's market database down: 503 in its language.
    let (login, _) = services.sign_in("+996555000001", Some("test"));
    services.kg.set_down(true);
    let body = answer(&app, profile(&login.access_token, None).to_request(), 503).await;
    assert_eq!(body["error"], "service_unavailable");
    assert!(!body["message"].as_str().unwrap().is_ascii());
}

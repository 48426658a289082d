//! Issue 12, items 15 and 16: free text that becomes stored data. A card number (13–19 digits
//! passing Luhn, spaces or dashes between them) is refused in every free-text field with 422
//! `card_number_in_text`; provider tokens must have a processor's token format; display text
//! refuses Unicode format characters (bidi overrides, zero-width characters) and must show
//! something. Each refusal names the field, and nothing is stored.

use marque_markets::Market;
use serde_json::{Value, json};

use crate::both_backends;
use crate::calls::{self, sign_in_fixed, spawn_with_fixed_codes};
use crate::helpers::{Backend, TestApp};

both_backends!(
    card_numbers_in_free_text_are_refused,
    provider_tokens_need_a_processor_format,
    display_text_refuses_format_characters,
);

const KG: &str = "+996555000011";
const US: &str = "+12125550111";

async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with_fixed_codes(backend, &[KG, US]).await
}

async fn login(app: &TestApp, phone: &str) -> String {
    sign_in_fixed(app, phone, None).await
}

async fn call(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    calls::call(app, method, path, token, Some(body)).await
}

/// Asserts a 422 with `code` naming `field`, whose message is in the market's language; the body
/// never repeats the refused value.
fn refused(got: (u16, Value), code: &str, field: &str, market: Market, sent: &str) {
    let (status, body) = got;
    assert_eq!(status, 422, "{field}: {body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["field"], field, "{body}");
    let message = body["message"].as_str().unwrap();
    let russian = message.chars().any(|c| ('а'..='я').contains(&c));
    assert_eq!(russian, market == Market::Kg, "{message}");
    assert!(message.contains(field), "{message}");
    let digits: String = sent.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 13 {
        let shown: String = body
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        assert!(!shown.contains(&digits[..8]), "{body}");
    }
}

async fn profile_name(app: &TestApp, token: &str) -> Value {
    let res = app.get_auth("/api/v1/auth/profile", token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["full_name"].clone()
}

/// A valid address of `market` with `field` set to `value`.
fn address(market: Market, field: &str, value: &str) -> Value {
    let mut a = match market {
        Market::Kg => json!({
            "title": "Дом",
            "street": "ул. Юнусалиева",
            "building": "34",
            "apartment": "12",
            "city": "Бишкек",
            "region": "Чуйская область",
            "postal_code": "720000",
        }),
        Market::Us => json!({
            "title": "Home",
            "street_address": "123 Main St",
            "address_line2": "Apt 4B",
            "city": "New York",
            "state": "NY",
            "zip_code": "10001-1234",
        }),
    };
    a[field] = json!(value);
    a
}

const ADDRESSES: &str = "/api/v1/profile/addresses";
const PAYMENTS: &str = "/api/v1/profile/payment-methods";
const PROFILE: &str = "/api/v1/auth/profile";

async fn card_numbers_in_free_text_are_refused(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let kg = login(&app, KG).await;
    let us = login(&app, US).await;
    let card = "5555 5555 5555 4444";

    // The three examples of the issue.
    let name = format!("Анна {card}");
    refused(
        call(&app, "PUT", PROFILE, &kg, json!({ "full_name": name })).await,
        "card_number_in_text",
        "full_name",
        Market::Kg,
        &name,
    );
    assert_eq!(profile_name(&app, &kg).await, Value::Null, "nothing stored");
    let title = format!("Карта {card}");
    refused(
        call(
            &app,
            "POST",
            ADDRESSES,
            &kg,
            address(Market::Kg, "title", &title),
        )
        .await,
        "card_number_in_text",
        "title",
        Market::Kg,
        &title,
    );
    let token = "tok_4012888888881881_0431";
    refused(
        call(
            &app,
            "POST",
            PAYMENTS,
            &us,
            json!({"card_type": "visa", "card_last4": "0431", "provider_token": token}),
        )
        .await,
        "card_number_in_text",
        "provider_token",
        Market::Us,
        token,
    );

    // Every free-text address field of both markets, with dashes or no separators.
    for (market, field, value) in [
        (Market::Kg, "street", "ул. Токтогула 4111-1111-1111-1111"),
        (Market::Kg, "building", "4111111111111111"),
        (Market::Kg, "apartment", "кв. 4111 1111 1111 1111"),
        (Market::Kg, "city", "Бишкек 4111111111111111"),
        (Market::Us, "title", "Visa 4111 1111 1111 1111"),
        (Market::Us, "street_address", "4111-1111-1111-1111 Main St"),
        (Market::Us, "address_line2", "Card 3782 822463 10005"),
        (Market::Us, "city", "New York 6011111111111117"),
    ] {
        let token = if market == Market::Kg { &kg } else { &us };
        let body = address(market, field, value);
        let got = call(&app, "POST", ADDRESSES, token, body).await;
        refused(got, "card_number_in_text", field, market, value);
    }
    assert_eq!(app.count(Market::Kg, "user_addresses").await, 0);
    assert_eq!(app.count(Market::Us, "user_addresses").await, 0);
    assert_eq!(app.count(Market::Us, "user_payment_methods").await, 0);

    // Ordinary numbers still pass: phone numbers, dates, postal codes, house numbers.
    let kg_note = address(Market::Kg, "title", "Звонить +996 555 123 456, 01.02.2026");
    let (status, ok) = call(&app, "POST", ADDRESSES, &kg, kg_note).await;
    assert_eq!(status, 201, "{ok}");
    let us_note = address(
        Market::Us,
        "address_line2",
        "Call (212) 555-0100, gate 2026-02-01",
    );
    let (status, ok) = call(&app, "POST", ADDRESSES, &us, us_note).await;
    assert_eq!(status, 201, "{ok}");
    let id = ok["address"]["id"].as_i64().unwrap();

    // A change is checked like a creation and leaves the row as it was.
    refused(
        call(
            &app,
            "PUT",
            &format!("{ADDRESSES}/{id}"),
            &us,
            json!({"address_line2": "4111 1111 1111 1111"}),
        )
        .await,
        "card_number_in_text",
        "address_line2",
        Market::Us,
        "4111 1111 1111 1111",
    );
    let res = app.get_auth(ADDRESSES, &us).await;
    let list: Value = res.json().await.unwrap();
    assert_eq!(
        list["addresses"][0]["address_line2"],
        "Call (212) 555-0100, gate 2026-02-01"
    );
    let (status, named) = call(
        &app,
        "PUT",
        PROFILE,
        &us,
        json!({"full_name": "Ann Lee 2nd"}),
    )
    .await;
    assert_eq!(status, 200, "{named}");
    assert_eq!(named["full_name"], "Ann Lee 2nd");
}

async fn provider_tokens_need_a_processor_format(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let us = login(&app, US).await;
    let kg = login(&app, KG).await;
    for (market, card, token, code) in [
        (
            Market::Us,
            "visa 1881",
            "tok_4012888888881881_0431",
            "card_number_in_text",
        ),
        (
            Market::Us,
            "visa 1881",
            "pm_4012888888881881",
            "card_number_in_text",
        ),
        (
            Market::Us,
            "visa 1881",
            "4012-8888-8888-1881",
            "card_number_in_text",
        ),
        (Market::Us, "visa 1881", "hello", "validation_error"),
        (Market::Us, "visa 1881", "gp_tok_123", "validation_error"),
        (
            Market::Us,
            "visa 1881",
            "javascript:alert(1)",
            "validation_error",
        ),
        (
            Market::Kg,
            "elcart 9013",
            "9417 1234 5678 9013",
            "card_number_in_text",
        ),
    ] {
        let (card_type, last4) = card.split_once(' ').unwrap();
        let body = json!({"card_type": card_type, "card_last4": last4, "provider_token": token});
        let bearer = if market == Market::Kg { &kg } else { &us };
        let got = call(&app, "POST", PAYMENTS, bearer, body).await;
        refused(got, code, "provider_token", market, token);
    }
    assert_eq!(app.count(Market::Us, "user_payment_methods").await, 0);
    assert_eq!(app.count(Market::Kg, "user_payment_methods").await, 0);

    // The documented formats are accepted.
    for body in [
        json!({"card_type": "visa", "card_last4": "4242", "provider_token": "pm_1Q0PsIJvEtkwdCNYMd8A0Pjx"}),
        json!({"payment_type": "apple_pay", "provider_token": "tok_1Q0PsIJvEtkwdCNY"}),
        json!({"payment_type": "paypal", "provider_token": "B-5YM93434ES9012345"}),
    ] {
        let (status, made) = call(&app, "POST", PAYMENTS, &us, body).await;
        assert_eq!(status, 201, "{made}");
    }
    let (status, made) = call(
        &app,
        "POST",
        PAYMENTS,
        &kg,
        json!({"card_type": "elcart", "card_last4": "9013",
               "provider_token": "3f2b8c1e-9a4d-4e7f-8b6a-1c2d3e4f5a6b"}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
}

async fn display_text_refuses_format_characters(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let kg = login(&app, KG).await;
    let us = login(&app, US).await;
    for name in [
        "Anna\u{202E}gpj.exe",
        "\u{2066}Анна\u{2069}",
        "Ан\u{200B}на",
        "Anna\u{200D}",
        "\u{FEFF}Anna",
        "An\u{2060}na",
        "\u{200B}\u{200C}",
        "\u{0301}\u{0308}",
        "\u{3164}",
    ] {
        refused(
            call(&app, "PUT", PROFILE, &kg, json!({ "full_name": name })).await,
            "validation_error",
            "full_name",
            Market::Kg,
            name,
        );
    }
    assert_eq!(profile_name(&app, &kg).await, Value::Null, "nothing stored");
    for (market, field, value) in [
        (Market::Kg, "title", "Дом\u{202E}"),
        (Market::Kg, "city", "Бишкек\u{200B}"),
        (Market::Us, "street_address", "\u{2067}123 Main St"),
        (Market::Us, "address_line2", "\u{0301}"),
    ] {
        let token = if market == Market::Kg { &kg } else { &us };
        let got = call(
            &app,
            "POST",
            ADDRESSES,
            token,
            address(market, field, value),
        )
        .await;
        refused(got, "validation_error", field, market, "");
    }
    assert_eq!(app.count(Market::Kg, "user_addresses").await, 0);
    assert_eq!(app.count(Market::Us, "user_addresses").await, 0);

    // Names in any script, with combining accents, still pass.
    for name in [
        "Zoë O'Neil",
        "Анна-Мария Ахматова",
        "Jose\u{0301} Garci\u{0301}a",
        "李小龍",
    ] {
        let (status, named) = call(&app, "PUT", PROFILE, &us, json!({ "full_name": name })).await;
        assert_eq!(status, 200, "{name}: {named}");
        assert_eq!(named["full_name"], name);
    }
}

//! Shopper account data over HTTP: addresses, payment methods, notifications, in both markets and
//! on both backends. Logins use `TEST_PHONE_NUMBERS` (fixed codes, no delivery to wait for).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use diesel::prelude::*;
use marque_domain::{
    AccountLimits, AccountRepository, AccountService, NewNotification, NotificationBody,
    NotificationKind, NotificationTitle, Owner, UserId,
};
use marque_markets::Market;
use marque_store::MarketStore;
use serde_json::{Value, json};

use crate::both_backends;
use crate::calls::{app_get_json, call, openapi, sign_in_fixed, spawn_with_fixed_codes};
use crate::helpers::{Backend, TestApp};

both_backends!(
    kg_addresses,
    us_addresses_and_kg_shapes_refused,
    rows_are_private_and_stay_in_their_market,
    at_most_twenty_addresses,
    payment_methods,
    notifications,
);

const KG_A: &str = "+996555000001";
const KG_B: &str = "+996555000002";
const US_A: &str = "+12125550100";
/// Элкарт test number (IIN 9417, valid Luhn digit).
const ELCART: &str = "9417 1234 5678 9013";

async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with_fixed_codes(backend, &[KG_A, KG_B, US_A]).await
}

/// Signs `phone` in (fixed code) from `user_agent`; returns the access token. The clock moves on a
/// second first, as it does between two real sign-ins.
async fn login(app: &TestApp, phone: &str, user_agent: Option<&str>) -> String {
    app.clock.advance(chrono::Duration::seconds(1));
    sign_in_fixed(app, phone, user_agent).await
}

const ADDRESSES: &str = "/api/v1/profile/addresses";
const PAYMENTS: &str = "/api/v1/profile/payment-methods";

/// Calls as [`call`] and asserts an error answer (see [`error`]); returns its body.
async fn refused(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    status: u16,
    code: &str,
) -> Value {
    error(call(app, method, path, token, body).await, status, code)
}

/// Sends `body` as [`call`] and asserts a 422 `validation_error`; returns its body.
async fn invalid(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> Value {
    refused(
        app,
        method,
        path,
        token,
        Some(body),
        422,
        "validation_error",
    )
    .await
}

/// Posts each body to the addresses and asserts that each is refused as invalid, naming its
/// field; returns the error bodies.
async fn invalid_addresses(app: &TestApp, token: &str, cases: Vec<(Value, &str)>) -> Vec<Value> {
    let mut errors = Vec::new();
    for (body, field) in cases {
        let err = invalid(app, "POST", ADDRESSES, token, body.clone()).await;
        assert_eq!(err["field"], field, "{body}");
        errors.push(err);
    }
    errors
}

/// `POST`s `body` as [`call`].
async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    call(app, "POST", path, token, Some(body)).await
}

/// A fresh app with `phone` signed in (no user agent); `None` when the backend is not available.
async fn signed_in(backend: Backend, phone: &str) -> Option<(TestApp, String)> {
    let app = spawn(backend).await?;
    let token = login(&app, phone, None).await;
    Some((app, token))
}

/// `valid` with `key` set to `value`.
fn with(valid: &Value, key: &str, value: Value) -> Value {
    let mut body = valid.clone();
    body[key] = value;
    body
}

/// Asserts an error answer and returns its body.
fn error(got: (u16, Value), status: u16, code: &str) -> Value {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["success"], false, "{}", got.1);
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert!(!got.1["message"].as_str().unwrap().is_empty());
    got.1
}

fn is_russian(text: &Value) -> bool {
    text.as_str()
        .unwrap()
        .chars()
        .any(|c| ('а'..='я').contains(&c))
}

async fn kg_addresses(backend: Backend) {
    let Some((app, token)) = signed_in(backend, KG_A).await else {
        return;
    };
    let home = json!({
        "title": "Дом",
        "street": "ул. Юнусалиева",
        "building": "34",
        "apartment": "12",
        "city": "Бишкек",
        "region": "Чүй облусу",
    });
    let (status, created) = post(&app, ADDRESSES, &token, home).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["success"], true);
    assert!(is_russian(&created["message"]));
    let first = &created["address"];
    assert_eq!(first["region"], "C");
    assert_eq!(first["region_name"], "Чуйская область");
    assert_eq!(
        first["full_address"],
        "ул. Юнусалиева, 34, кв. 12, Бишкек, Чуйская область"
    );
    assert_eq!(first["postal_code"], Value::Null);
    assert_eq!(first["country"], "Kyrgyzstan");
    assert_eq!(first["market"], "kg");
    assert_eq!(
        first["is_default"], true,
        "the first address is the default"
    );
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        first.get("zip_code").is_none(),
        "no US fields in a KG address"
    );
    let first_id = first["id"].as_i64().unwrap();
    let first_url = format!("{ADDRESSES}/{first_id}");

    let (status, second) = post(
        &app,
        ADDRESSES,
        &token,
        json!({
            "street": "пр. Чуй",
            "building": "100",
            "city": "Бишкек",
            "region": "г. Бишкек",
            "postal_code": "720040",
            "is_default": true,
        }),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let second = &second["address"];
    assert_eq!(second["is_default"], true);
    assert_eq!(second["region"], "GB");
    assert_eq!(second["full_address"], "пр. Чуй, 100, Бишкек, 720040");
    let second_id = second["id"].as_i64().unwrap();

    let (_, list) = call(&app, "GET", ADDRESSES, &token, None).await;
    assert_eq!(list["total"], 2);
    let ids: Vec<i64> = list["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [second_id, first_id], "default first");
    assert_eq!(list["addresses"][1]["is_default"], false);

    // Partial update: apartment cleared, made the default again.
    let (status, updated) = call(
        &app,
        "PUT",
        &first_url,
        &token,
        Some(json!({"apartment": null, "is_default": true})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["address"]["full_address"],
        "ул. Юнусалиева, 34, Бишкек, Чуйская область"
    );
    assert_eq!(updated["address"]["title"], "Дом");
    assert_eq!(updated["address"]["is_default"], true);

    // Bad input: 422 naming the field, in Russian, nothing written.
    let before = app.count(Market::Kg, "user_addresses").await;
    let valid = json!({"street": "ул. Киевская", "building": "1", "city": "Ош", "region": "Ош"});
    let with = |key: &str, value: Value| with(&valid, key, value);
    let cases = vec![
        (with("postal_code", json!("10001")), "postal_code"),
        (with("zip_code", json!("10001")), "zip_code"),
        (with("region", json!("Ontario")), "region"),
        (with("street", json!("у".repeat(201))), "street"),
        (with("building", json!("")), "building"),
        (with("title", json!("т".repeat(51))), "title"),
        (
            json!({"building": "1", "city": "Ош", "region": "Ош"}),
            "street",
        ),
    ];
    for err in invalid_addresses(&app, &token, cases).await {
        assert!(is_russian(&err["message"]), "{err}");
    }
    // A mistyped value is refused by the JSON reader (before the token's market is known).
    let err = invalid(&app, "POST", ADDRESSES, &token, with("city", json!(42))).await;
    assert_eq!(err["field"], "city");
    let err = invalid(&app, "PUT", &first_url, &token, json!({"street": null})).await;
    assert_eq!(err["field"], "street");
    assert_eq!(app.count(Market::Kg, "user_addresses").await, before);

    // Deleting the default promotes the other address.
    let (status, deleted) = call(&app, "DELETE", &first_url, &token, None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["success"], true);
    let (_, list) = call(&app, "GET", ADDRESSES, &token, None).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["addresses"][0]["id"], second_id);
    assert_eq!(list["addresses"][0]["is_default"], true);
    refused(&app, "DELETE", &first_url, &token, None, 404, "not_found").await;
}

async fn us_addresses_and_kg_shapes_refused(backend: Backend) {
    let Some((app, token)) = signed_in(backend, US_A).await else {
        return;
    };
    let (status, created) = post(
        &app,
        ADDRESSES,
        &token,
        json!({
            "title": "Home",
            "street_address": "123 Main St",
            "city": "New York",
            "state": "ny",
            "zip_code": "10001",
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["message"], "Address created successfully");
    let a = &created["address"];
    assert_eq!(a["full_address"], "123 Main St, New York, NY 10001");
    assert_eq!(a["state"], "NY");
    assert_eq!(a["state_name"], "New York");
    assert_eq!(a["address_line2"], Value::Null);
    assert_eq!(a["country"], "United States");
    assert!(a.get("region").is_none());
    let id = a["id"].as_i64().unwrap();
    let (status, updated) = call(
        &app,
        "PUT",
        &format!("{ADDRESSES}/{id}"),
        &token,
        Some(json!({"address_line2": "Apt 4B", "zip_code": "10001-1234", "title": null})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["address"]["full_address"],
        "123 Main St, Apt 4B, New York, NY 10001-1234"
    );
    assert_eq!(updated["address"]["title"], Value::Null);

    // A Kyrgyz address posted with a US token: refused, in English, nothing written.
    let kg_shape = json!({
        "street": "ул. Юнусалиева", "building": "34", "city": "Бишкек", "region": "Чуйская область",
    });
    let err = invalid(&app, "POST", ADDRESSES, &token, kg_shape).await;
    assert_eq!(err["field"], "street");
    assert!(err["message"].as_str().unwrap().is_ascii());
    let valid =
        json!({"street_address": "1 Elm St", "city": "Austin", "state": "TX", "zip_code": "73301"});
    let with = |key: &str, value: Value| with(&valid, key, value);
    let cases = vec![
        (with("state", json!("XX")), "state"),
        (with("state", json!("ON")), "state"),
        (with("zip_code", json!("7330")), "zip_code"),
        (with("zip_code", json!("720000")), "zip_code"),
        (with("region", json!("C")), "region"),
        (
            with("address_line2", json!("a".repeat(201))),
            "address_line2",
        ),
    ];
    invalid_addresses(&app, &token, cases).await;
    assert_eq!(app.count(Market::Us, "user_addresses").await, 1);
    assert_eq!(app.count(Market::Kg, "user_addresses").await, 0);
}

async fn rows_are_private_and_stay_in_their_market(backend: Backend) {
    let Some((app, a)) = signed_in(backend, KG_A).await else {
        return;
    };
    let b = login(&app, KG_B, None).await;
    let us = login(&app, US_A, None).await;
    let (_, address) = post(
        &app,
        ADDRESSES,
        &a,
        json!({"street": "ул. Токтогула", "building": "5", "city": "Нарын", "region": "Naryn"}),
    )
    .await;
    let address_id = address["address"]["id"].as_i64().unwrap();
    let (_, method) = post(
        &app,
        PAYMENTS,
        &a,
        json!({"payment_type": "cash_on_delivery"}),
    )
    .await;
    let method_id = method["payment_method"]["id"].as_i64().unwrap();

    // Another user of the same market: empty lists, 404 on A's rows (not 403).
    for token in [&b, &us] {
        let (_, list) = call(&app, "GET", ADDRESSES, token, None).await;
        assert_eq!(list["total"], 0);
        let (_, list) = call(&app, "GET", PAYMENTS, token, None).await;
        assert_eq!(list["total"], 0);
        for (method, path, body) in [
            (
                "PUT",
                format!("{ADDRESSES}/{address_id}"),
                Some(json!({"title": "x"})),
            ),
            ("DELETE", format!("{ADDRESSES}/{address_id}"), None),
            (
                "PUT",
                format!("{PAYMENTS}/{method_id}"),
                Some(json!({"is_default": true})),
            ),
            ("DELETE", format!("{PAYMENTS}/{method_id}"), None),
        ] {
            refused(&app, method, &path, token, body, 404, "not_found").await;
        }
    }
    // A's rows are untouched and live in the KG database only. The US user has the same numeric
    // id as A in the other database and still sees nothing of A's.
    let (_, list) = call(&app, "GET", ADDRESSES, &a, None).await;
    assert_eq!(list["addresses"][0]["title"], Value::Null);
    for table in ["user_addresses", "user_payment_methods"] {
        assert_eq!(app.count(Market::Kg, table).await, 1, "{table}");
        assert_eq!(app.count(Market::Us, table).await, 0, "{table}");
    }
}

async fn at_most_twenty_addresses(backend: Backend) {
    let Some((app, token)) = signed_in(backend, US_A).await else {
        return;
    };
    for i in 0..20 {
        let (status, body) = post(&app, ADDRESSES, &token, json!({"street_address": format!("{i} Main St"), "city": "Boston", "state": "MA", "zip_code": "02108"}))
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let err = refused(&app, "POST", ADDRESSES, &token, Some(json!({"street_address": "21 Main St", "city": "Boston", "state": "MA", "zip_code": "02108"})), 409, "limit_reached").await;
    assert_eq!(
        err["message"],
        "The maximum number of entries has been reached"
    );
    assert_eq!(app.count(Market::Us, "user_addresses").await, 20);
}

/// Whether any stored row of `user_payment_methods` in `market`'s database contains `digits`
/// (PostgreSQL: every column as text; SQLite: the database file and its WAL, byte for byte).
async fn stored_anywhere(app: &TestApp, market: Market, digits: &'static str) -> bool {
    let url = app.db_url(market).to_owned();
    tokio::task::spawn_blocking(move || {
        if let Some(path) = url.strip_prefix("sqlite://") {
            [path.to_owned(), format!("{path}-wal")].iter().any(|f| {
                std::fs::read(f)
                    .map(|bytes| bytes.windows(digits.len()).any(|w| w == digits.as_bytes()))
                    .unwrap_or(false)
            })
        } else {
            #[derive(QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let mut c = PgConnection::establish(&url).unwrap();
            let sql = format!(
                "SELECT COUNT(*) AS n FROM user_payment_methods t WHERE t::text LIKE '%{digits}%'"
            );
            diesel::sql_query(sql).get_result::<N>(&mut c).unwrap().n > 0
        }
    })
    .await
    .unwrap()
}

async fn payment_methods(backend: Backend) {
    let Some((app, kg)) = signed_in(backend, KG_A).await else {
        return;
    };
    let path = PAYMENTS;
    let (status, created) = post(
        &app,
        path,
        &kg,
        json!({
            "card_number": ELCART,
            "card_holder_name": "AIBEK ASANOV",
            "expiry_month": "04",
            "expiry_year": 2031,
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(is_russian(&created["message"]));
    let card = &created["payment_method"];
    assert_eq!(card["payment_type"], "card");
    assert_eq!(card["card_type"], "elcart");
    assert_eq!(card["card_number_masked"], "9013");
    assert_eq!(card["expiry_month"], "04");
    assert_eq!(card["expiry_year"], "2031");
    assert_eq!(card["is_default"], true);
    assert!(!created.to_string().contains("94171234"));
    let card_id = card["id"].as_i64().unwrap();
    assert!(!stored_anywhere(&app, Market::Kg, "941712345678").await);
    assert!(
        stored_anywhere(&app, Market::Kg, "AIBEK ASANOV").await,
        "the scan works"
    );

    // Kinds of the other market, expired and malformed cards: refused, nothing written.
    for (body, code) in [
        (
            json!({"card_number": "378282246310005", "expiry_month": 1, "expiry_year": 2031}),
            "payment_method_not_available",
        ),
        (
            json!({"payment_type": "paypal"}),
            "payment_method_not_available",
        ),
        (
            json!({"payment_type": "apple_pay"}),
            "payment_method_not_available",
        ),
        (
            json!({"card_number": "4111111111111111", "expiry_month": 1, "expiry_year": 2020}),
            "card_expired",
        ),
        (
            json!({"card_number": "4111111111111112", "expiry_month": 1, "expiry_year": 2031}),
            "validation_error",
        ),
        (
            json!({"card_number": "4111111111111111"}),
            "validation_error",
        ),
        (json!({"payment_type": "bitcoin"}), "validation_error"),
    ] {
        let got = post(&app, path, &kg, body.clone()).await;
        assert!(!got.1.to_string().contains("41111111"), "{body}");
        error(got, 422, code);
    }
    assert_eq!(app.count(Market::Kg, "user_payment_methods").await, 1);

    let (status, cash) = post(&app, path, &kg, json!({"payment_type": "cash_on_delivery"})).await;
    assert_eq!(status, 201, "{cash}");
    assert_eq!(cash["payment_method"]["is_default"], false);
    assert_eq!(cash["payment_method"]["card_type"], Value::Null);
    let cash_id = cash["payment_method"]["id"].as_i64().unwrap();
    let (status, made) = call(
        &app,
        "PUT",
        &format!("{path}/{cash_id}"),
        &kg,
        Some(json!({"is_default": true})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["payment_method"]["is_default"], true);
    let (status, renewed) = call(
        &app,
        "PUT",
        &format!("{path}/{card_id}"),
        &kg,
        Some(json!({"expiry_month": 9, "expiry_year": "2033", "card_holder_name": null})),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["payment_method"]["expiry_year"], "2033");
    assert_eq!(renewed["payment_method"]["card_holder_name"], Value::Null);
    assert_eq!(renewed["payment_method"]["is_default"], false);
    invalid(
        &app,
        "PUT",
        &format!("{path}/{cash_id}"),
        &kg,
        json!({"card_holder_name": "A B"}),
    )
    .await;
    let (_, list) = call(&app, "GET", path, &kg, None).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["payment_methods"][0]["id"], cash_id);
    let (status, _) = call(&app, "DELETE", &format!("{path}/{cash_id}"), &kg, None).await;
    assert_eq!(status, 200);
    let (_, list) = call(&app, "GET", path, &kg, None).await;
    assert_eq!(list["payment_methods"][0]["id"], card_id);
    assert_eq!(list["payment_methods"][0]["is_default"], true, "promoted");

    // The US catalog.
    let us = login(&app, US_A, None).await;
    let (status, amex) = post(
        &app,
        path,
        &us,
        json!({"card_number": "3782-822463-10005", "expiry_month": 12, "expiry_year": 30}),
    )
    .await;
    assert_eq!(status, 201, "{amex}");
    assert_eq!(amex["payment_method"]["card_type"], "amex");
    assert_eq!(amex["payment_method"]["card_number_masked"], "0005");
    assert_eq!(amex["payment_method"]["expiry_year"], "2030");
    let (status, wallet) = post(
        &app,
        path,
        &us,
        json!({"payment_type": "google_pay", "provider_token": "tok_1Q0PsIJvEtkwdCNY"}),
    )
    .await;
    assert_eq!(status, 201, "{wallet}");
    assert_eq!(wallet["payment_method"]["has_provider_token"], true);
    assert!(!wallet.to_string().contains("tok_1Q0PsIJvEtkwdCNY"));
    let err = refused(
        &app,
        "POST",
        path,
        &us,
        Some(json!({"card_number": ELCART, "expiry_month": 1, "expiry_year": 2031})),
        422,
        "payment_method_not_available",
    )
    .await;
    assert_eq!(
        err["message"],
        "This payment method is not available in your market"
    );
    refused(
        &app,
        "POST",
        path,
        &us,
        Some(json!({"payment_type": "cash_on_delivery"})),
        422,
        "payment_method_not_available",
    )
    .await;
    assert_eq!(app.count(Market::Us, "user_payment_methods").await, 2);
    assert_eq!(app.count(Market::Kg, "user_payment_methods").await, 1);
}

/// Another service creating a notification through the domain function, on its own connection
/// to the market's database.
async fn notify_from_another_service(app: &TestApp, market: Market, user: i64) {
    let url = app.db_url(market).to_owned();
    app.clock.advance(chrono::Duration::seconds(1));
    let clock = app.clock.clone();
    tokio::task::spawn_blocking(move || {
        let store = MarketStore::connect(market, &url, 1, StdDuration::from_secs(5)).unwrap();
        let repos: Vec<Arc<dyn AccountRepository>> = vec![Arc::new(store)];
        let service = AccountService::new(repos, clock, AccountLimits::default());
        service
            .notify(
                Owner {
                    market,
                    user: UserId(user),
                },
                NewNotification {
                    kind: NotificationKind::Order,
                    title: NotificationTitle::parse("Заказ отправлен").unwrap(),
                    message: NotificationBody::parse("Заказ №1042 передан курьеру").unwrap(),
                    order_id: Some(1042),
                },
            )
            .unwrap();
    })
    .await
    .unwrap();
}

async fn notifications(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let path = "/api/v1/profile/notifications";
    let first = login(&app, KG_A, Some("Phone/1.0")).await;
    let (_, list) = call(&app, "GET", path, &first, None).await;
    assert_eq!(
        (list["total"].as_u64(), list["unread_count"].as_u64()),
        (Some(0), Some(0))
    );
    login(&app, KG_A, Some("Phone/1.0")).await;
    let (_, list) = call(&app, "GET", path, &first, None).await;
    assert_eq!(list["total"], 0, "a known device is not reported: {list}");
    let token = login(&app, KG_A, Some("Laptop/2.0")).await;
    let (_, list) = call(&app, "GET", path, &token, None).await;
    assert_eq!(list["total"], 1, "{list}");
    let security = &list["notifications"][0];
    assert_eq!(security["type"], "security");
    assert_eq!(security["title"], "Вход в аккаунт с нового устройства");
    assert!(security["message"].as_str().unwrap().contains("Laptop/2.0"));
    assert_eq!(security["is_read"], false);
    assert_eq!(security["read_at"], Value::Null);

    // An order notification from another service, through the domain function.
    let (_, profile) = call(&app, "GET", "/api/v1/auth/profile", &token, None).await;
    notify_from_another_service(&app, Market::Kg, profile["id"].as_i64().unwrap()).await;
    let (_, list) = call(&app, "GET", path, &token, None).await;
    assert_eq!(
        (list["total"].as_u64(), list["unread_count"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(list["notifications"][0]["type"], "order");
    assert_eq!(list["notifications"][0]["order_id"], 1042);
    let (_, page) = call(
        &app,
        "GET",
        &format!("{path}?unread_only=true&limit=1&offset=1"),
        &token,
        None,
    )
    .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(page["notifications"][0]["type"], "security");

    let security_id = security["id"].as_i64().unwrap();
    let read_url = format!("{path}/{security_id}/read");
    let (status, read) = call(&app, "PUT", &read_url, &token, None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["notification"]["is_read"], true);
    assert!(read["notification"]["read_at"].is_string());
    let (_, unread) = call(
        &app,
        "GET",
        &format!("{path}?unread_only=true"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        (unread["total"].as_u64(), unread["unread_count"].as_u64()),
        (Some(1), Some(1))
    );

    // Another user cannot read or mark them.
    let other = login(&app, KG_B, None).await;
    let (_, theirs) = call(&app, "GET", path, &other, None).await;
    assert_eq!(theirs["total"], 0);
    refused(&app, "PUT", &read_url, &other, None, 404, "not_found").await;
    let (_, all) = call(&app, "PUT", &format!("{path}/read-all"), &other, None).await;
    assert_eq!(all["count"], 0);

    let (status, all) = call(&app, "PUT", &format!("{path}/read-all"), &token, None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["count"], 1);
    assert!(is_russian(&all["message"]));
    let (_, list) = call(&app, "GET", path, &token, None).await;
    assert_eq!(
        (list["total"].as_u64(), list["unread_count"].as_u64()),
        (Some(2), Some(0))
    );
    refused(
        &app,
        "GET",
        &format!("{path}?limit=101"),
        &token,
        None,
        422,
        "validation_error",
    )
    .await;

    // The US user is warned in English, in the US database.
    login(&app, US_A, Some("Phone/1.0")).await;
    let us = login(&app, US_A, Some("Tablet/3.0")).await;
    let (_, list) = call(&app, "GET", path, &us, None).await;
    assert_eq!(list["total"], 1);
    assert_eq!(
        list["notifications"][0]["title"],
        "New sign-in to your account"
    );
    assert_eq!(app.count(Market::Us, "user_notifications").await, 1);
    assert_eq!(app.count(Market::Kg, "user_notifications").await, 2);
}

#[tokio::test]
async fn openapi_lists_the_account_routes_schemas_and_errors() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let doc = openapi(&app).await;
    // Each line: method, path under /api/v1/profile, the documented statuses.
    for route in [
        "get addresses 200 401",
        "post addresses 201 401 409 422",
        "put addresses/{id} 200 404 422",
        "delete addresses/{id} 200 404",
        "get payment-methods 200 401",
        "post payment-methods 201 409 422",
        "put payment-methods/{id} 200 404 422",
        "delete payment-methods/{id} 200 404",
        "get notifications 200 401 422",
        "put notifications/{id}/read 200 404",
        "put notifications/read-all 200 401",
    ] {
        let mut words = route.split_whitespace();
        let (method, path) = (words.next().unwrap(), words.next().unwrap());
        let path = format!("/api/v1/profile/{path}");
        let statuses: Vec<&str> = words.collect();
        let op = &doc["paths"][&path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert_eq!(op["security"][0]["bearer"], json!([]), "{method} {path}");
        for status in statuses {
            assert!(
                op["responses"][status].is_object(),
                "{method} {path} {status}"
            );
        }
    }
    let post = &doc["paths"][PAYMENTS]["post"]["responses"]["422"];
    let text = post["description"].as_str().unwrap();
    assert!(text.contains("payment_method_not_available") && text.contains("card_expired"));
    for schema in [
        "AddressRequest",
        "AddressDto",
        "KgAddress",
        "UsAddress",
        "AddressListResponse",
        "PaymentMethodRequest",
        "UpdatePaymentMethodRequest",
        "PaymentMethodDto",
        "PaymentMethodListResponse",
        "NotificationDto",
        "NotificationListResponse",
        "ReadAllResponse",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // Two complete objects, so SDK generators keep the address models.
    assert_eq!(
        doc["components"]["schemas"]["AddressDto"]["oneOf"],
        json!([
            {"$ref": "#/components/schemas/KgAddress"},
            {"$ref": "#/components/schemas/UsAddress"}
        ])
    );
    for (schema, field) in [("KgAddress", "region"), ("UsAddress", "zip_code")] {
        let required = &doc["components"]["schemas"][schema]["required"];
        for name in ["id", "market", "full_address", field] {
            assert!(
                required.as_array().unwrap().contains(&json!(name)),
                "{schema}.{name}"
            );
        }
    }

    let markets: Value = app_get_json(&app, "/api/v1/auth/markets").await;
    for (i, tax_rate, date_format, timezone, payment_methods) in [
        (
            0,
            0.12,
            "DD.MM.YYYY",
            "Asia/Bishkek",
            "visa mastercard elcart cash_on_delivery bank_transfer",
        ),
        (
            1,
            0.08,
            "MM/DD/YYYY",
            "America/New_York",
            "visa mastercard amex discover paypal apple_pay google_pay",
        ),
    ] {
        let market = &markets["supported_markets"][i];
        assert_eq!(market["tax_rate"], tax_rate);
        assert_eq!(market["date_format"], date_format);
        assert_eq!(market["timezone"], timezone);
        let payment_methods: Vec<&str> = payment_methods.split(' ').collect();
        assert_eq!(market["payment_methods"], json!(payment_methods));
    }
}

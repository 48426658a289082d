//! Delivery end to end (issue 8): the channel of send-code, fallback from Telegram to SMS through
//! local fakes of the Telegram Gateway and Twilio speaking their wire formats, the challenge's
//! delivery status, signed status callbacks, and message templates from the settings.

use std::time::Duration as StdDuration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
const PUBLIC: &str = "https://auth.shop.example";
const STATUS_PATH: &str = "/api/v1/delivery/twilio/status";

/// Twilio's signature of a form callback: base64(HMAC-SHA1(auth token, URL + each field's name
/// and value, sorted by name)) — computed here independently of the service's checker.
fn twilio_signature(url: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Fakes of the Telegram Gateway (the number is not on Telegram) and Twilio (accepts).
async fn providers() -> (MockServer, MockServer) {
    let telegram = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/sendVerificationMessage"))
        .and(matchers::header("authorization", "Bearer gateway-token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"ok": false, "error": "PHONE_NUMBER_NOT_FOUND"})),
        )
        .mount(&telegram)
        .await;
    let twilio = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/2010-04-01/Accounts/AC0123/Messages.json"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "status": "queued",
        })))
        .mount(&twilio)
        .await;
    (telegram, twilio)
}

async fn app(backend: Backend, telegram: &MockServer, twilio: &MockServer) -> Option<TestApp> {
    let (tg, tw) = (telegram.uri(), twilio.uri());
    TestApp::spawn_with_providers(
        backend,
        &[
            ("CHANNELS_KG", "telegram,sms"),
            ("TELEGRAM_GATEWAY_TOKEN", "gateway-token"),
            ("TELEGRAM_GATEWAY_BASE_URL", &tg),
            ("SMS_PROVIDER", "twilio"),
            ("TWILIO_BASE_URL", &tw),
            ("TWILIO_ACCOUNT_SID", "AC0123"),
            ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
            ("TWILIO_FROM", "+15005550006"),
            ("PUBLIC_BASE_URL", PUBLIC),
        ],
    )
    .await
}

/// Polls the challenge until `until` holds of its status body.
async fn challenge_until(app: &TestApp, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let url = format!("{}/api/v1/auth/challenges/{id}", app.base);
    for _ in 0..2000 {
        let res = app.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        if until(&body) {
            return body;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    panic!("challenge {id} never reached the expected state");
}

/// A form field of a request the fake received.
fn field(request: &wiremock::Request, name: &str) -> Option<String> {
    url::form_urlencoded::parse(&request.body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn telegram_falls_back_to_sms_and_reports_delivery(backend: Backend) {
    let (telegram, twilio) = providers().await;
    let Some(app) = app(backend, &telegram, &twilio).await else {
        return;
    };
    let sent: Value = app.send_code("+996505325311").await.json().await.unwrap();
    assert_eq!(sent["channel"], "telegram", "{sent}");
    let id = sent["challenge_id"].as_str().unwrap().to_owned();

    let status = challenge_until(&app, &id, |b| b["status"] == "sent").await;
    assert_eq!(
        status,
        json!({"channel": "sms", "status": "sent", "fallback_from": "telegram"})
    );
    // The same code went to Telegram first, then by SMS, in Russian.
    let tg = &telegram.received_requests().await.unwrap()[0];
    let tg: Value = serde_json::from_slice(&tg.body).unwrap();
    assert_eq!(tg["phone_number"], "+996505325311");
    let code = tg["code"].as_str().unwrap().to_owned();
    let sms = twilio.received_requests().await.unwrap();
    assert_eq!(sms.len(), 1);
    assert_eq!(field(&sms[0], "To").as_deref(), Some("+996505325311"));
    let body = field(&sms[0], "Body").unwrap();
    assert!(body.contains(&code) && body.contains("ваш код"), "{body}");
    assert_eq!(
        field(&sms[0], "StatusCallback").as_deref(),
        Some(format!("{PUBLIC}{STATUS_PATH}").as_str())
    );
    // The code signs in.
    assert_eq!(app.verify("+996505325311", &code).await.status(), 200);

    // Twilio reports the SMS delivered: a wrong signature changes nothing, the right one does.
    let fields = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC0123"),
    ];
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let post = |signature: String| {
        app.http
            .post(format!("{}{STATUS_PATH}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(form.clone())
            .send()
    };
    let wrong = post(twilio_signature("https://evil.example/status", &fields))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"], "invalid_signature");
    let still = challenge_until(&app, &id, |_| true).await;
    assert_eq!(still["status"], "sent");

    let right = post(twilio_signature(&format!("{PUBLIC}{STATUS_PATH}"), &fields))
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(right.json::<Value>().await.unwrap()["applied"], 1);
    let done = challenge_until(&app, &id, |_| true).await;
    assert_eq!(
        done,
        json!({"channel": "sms", "status": "delivered", "fallback_from": "telegram"})
    );
}

both_backends!(telegram_falls_back_to_sms_and_reports_delivery);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_picks_a_channel_among_the_markets_only() {
    let (telegram, twilio) = providers().await;
    let app = app(Backend::Sqlite, &telegram, &twilio).await.unwrap();
    // SMS is allowed in KG: no fallback needed.
    let res = app
        .post(
            "/api/v1/auth/send-code",
            json!({"phone_number": "+996505325312", "channel": "sms"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["channel"], "sms");
    let id = body["challenge_id"].as_str().unwrap();
    let status = challenge_until(&app, id, |b| b["status"] == "sent").await;
    assert_eq!(status, json!({"channel": "sms", "status": "sent"}));
    assert!(telegram.received_requests().await.unwrap().is_empty());
    // WhatsApp is not configured; US allows SMS only; an unknown channel is no channel.
    for (phone, channel) in [
        ("+996505325313", "whatsapp"),
        ("+12125550100", "telegram"),
        ("+996505325314", "pigeon"),
    ] {
        let res = app
            .post(
                "/api/v1/auth/send-code",
                json!({"phone_number": phone, "channel": channel}),
            )
            .await;
        assert_eq!(res.status(), 422, "{phone} {channel}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "channel_not_available", "{body}");
    }
    // Nothing was stored or sent for the refused requests.
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
    // Unknown challenges are 404; the status route needs no token.
    let res = app
        .http
        .get(format!(
            "{}/api/v1/auth/challenges/AAAAAAAAAAAAAAAAAAAAAA",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_the_autofill_line_come_from_the_settings() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("APP_NAME", "Bazar"),
            ("SMS_TEMPLATE_KG", "{app}: {code} — код на {minutes} мин"),
            ("OTP_AUTOFILL_DOMAIN", "bazar.example"),
            ("OTP_EXPIRY_MINUTES_KG", "5"),
        ],
    )
    .await
    .unwrap();
    let code = app.send_and_read_code("+996505325311", 0).await;
    let kg = &app.messages_to("+996505325311")[0];
    assert_eq!(
        kg.text,
        format!("Bazar: {code} — код на 5 мин\n\n@bazar.example #{code}")
    );
    let code = app.send_and_read_code("+12125550100", 0).await;
    let us = &app.messages_to("+12125550100")[0];
    assert!(
        us.text.starts_with(&format!(
            "Bazar: your code is {code}. It expires in 10 min."
        )),
        "{}",
        us.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_of_providers_not_in_use_are_not_found() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    for path in [STATUS_PATH, "/api/v1/delivery/telegram/report"] {
        let res = app
            .http
            .post(format!("{}{path}", app.base))
            .body("MessageSid=SM1&MessageStatus=delivered")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

/// The Telegram Gateway's signature of a report: hex HMAC-SHA256 of `timestamp + "\n" + body`,
/// keyed by SHA-256 of the API token (core.telegram.org/gateway/api) — computed here
/// independently of the service's checker.
fn telegram_signature(token: &str, timestamp: &str, body: &str) -> String {
    use sha2::Digest;
    let key = sha2::Sha256::digest(token.as_bytes());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{timestamp}\n{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_delivery_reports_are_signed() {
    let telegram = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/sendVerificationMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true,
            "result": {"request_id": "tg-req-42", "phone_number": "+996505325311", "request_cost": 0.01}
        })))
        .mount(&telegram)
        .await;
    let tg = telegram.uri();
    let app = TestApp::spawn_with_providers(
        Backend::Sqlite,
        &[
            ("CHANNELS_KG", "telegram"),
            ("TELEGRAM_GATEWAY_TOKEN", "gateway-token"),
            ("TELEGRAM_GATEWAY_BASE_URL", &tg),
            ("PUBLIC_BASE_URL", PUBLIC),
        ],
    )
    .await
    .unwrap();
    let sent: Value = app.send_code("+996505325311").await.json().await.unwrap();
    let id = sent["challenge_id"].as_str().unwrap().to_owned();
    challenge_until(&app, &id, |b| b["status"] == "sent").await;
    let request: Value =
        serde_json::from_slice(&telegram.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        request["callback_url"],
        format!("{PUBLIC}/api/v1/delivery/telegram/report")
    );

    let body = json!({
        "request_id": "tg-req-42",
        "phone_number": "+996505325311",
        "delivery_status": {"status": "delivered", "updated_at": 1_760_000_000}
    })
    .to_string();
    let now = chrono::Utc::now().timestamp().to_string();
    let post = |timestamp: String, signature: String| {
        app.http
            .post(format!("{}/api/v1/delivery/telegram/report", app.base))
            .header("content-type", "application/json")
            .header("x-request-timestamp", timestamp)
            .header("x-request-signature", signature)
            .body(body.clone())
            .send()
    };
    let wrong = post(
        now.clone(),
        telegram_signature("another-token", &now, &body),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let stale = (chrono::Utc::now().timestamp() - 3600).to_string();
    let old = post(
        stale.clone(),
        telegram_signature("gateway-token", &stale, &body),
    )
    .await
    .unwrap();
    assert_eq!(old.status(), 401, "a replayed old report");
    assert_eq!(challenge_until(&app, &id, |_| true).await["status"], "sent");
    let right = post(
        now.clone(),
        telegram_signature("gateway-token", &now, &body),
    )
    .await
    .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(
        challenge_until(&app, &id, |_| true).await,
        json!({"channel": "telegram", "status": "delivered"})
    );
}

/// Each market may send from its own Twilio sender (`TWILIO_FROM_KG`); the others use
/// `TWILIO_FROM`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_market_sends_from_its_own_twilio_sender() {
    let (_telegram, twilio) = providers().await;
    let tw = twilio.uri();
    let app = TestApp::spawn_with_providers(
        Backend::Sqlite,
        &[
            ("SMS_PROVIDER", "twilio"),
            ("TWILIO_BASE_URL", &tw),
            ("TWILIO_ACCOUNT_SID", "AC0123"),
            ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
            ("TWILIO_FROM", "+15005550006"),
            ("TWILIO_FROM_KG", "Marque"),
        ],
    )
    .await
    .unwrap();
    for phone in ["+996505325311", "+12125550100"] {
        let sent: Value = app.send_code(phone).await.json().await.unwrap();
        let id = sent["challenge_id"].as_str().unwrap().to_owned();
        challenge_until(&app, &id, |b| b["status"] == "sent").await;
    }
    let from: Vec<(String, String)> = twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (field(r, "To").unwrap(), field(r, "From").unwrap()))
        .collect();
    assert_eq!(
        from,
        vec![
            ("+996505325311".to_owned(), "Marque".to_owned()),
            ("+12125550100".to_owned(), "+15005550006".to_owned()),
        ]
    );
}

//! The Telegram Gateway provider against a local fake of the Gateway API, and its delivery
//! reports signed as the Gateway signs them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use marque_domain::{
    CallbackError, CallbackRequest, Channel, DeliveryCallback, DeliveryError, DeliveryReport,
    MessageSender, OutgoingMessage, ReportedStatus, SecretString,
};
use marque_markets::{Market, OtpCode, OtpPurpose};
use marque_messaging::{
    TelegramGateway, TelegramGatewayConfig, TelegramReportCallback, provider_client,
};
use marque_testkit::ManualClock;
use serde_json::json;
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "AAGZ-gateway-token-0123456789";
const CALLBACK: &str = "https://auth.example/api/v1/delivery/telegram/report";

/// 2026-01-01T00:00:00Z.
fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

fn gateway(server: &MockServer, callback_url: Option<&str>) -> (TelegramGateway, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let tg = TelegramGateway::new(
        TelegramGatewayConfig {
            base_url: server.uri(),
            token: SecretString::from(TOKEN.to_owned()),
            callback_url: callback_url.map(str::to_owned),
        },
        provider_client().unwrap(),
    )
    .with_clock(clock.clone());
    (tg, clock)
}

fn message(recipient: &str, code: &str, expires_at: DateTime<Utc>) -> OutgoingMessage {
    OutgoingMessage {
        id: "kg-42".into(),
        channel: Channel::Telegram,
        market: Market::Kg,
        language: Market::Kg.language(),
        recipient: recipient.to_owned(),
        code: OtpCode::parse(code).unwrap(),
        purpose: OtpPurpose::Login,
        text: format!("Marque: your code is {code}"),
        expires_at,
    }
}

/// The Gateway's answer `{"ok":true,"result":RequestStatus}`.
fn request_status(request_id: &str, phone: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "ok": true,
        "result": {
            "request_id": request_id,
            "phone_number": phone,
            "request_cost": 0.01,
            "remaining_balance": 9.99,
            "delivery_status": {"status": "sent", "updated_at": 1_767_225_601}
        }
    }))
}

fn gateway_error(status: u16, error: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"ok": false, "error": error}))
}

#[tokio::test]
async fn sends_code_ttl_and_callback_as_json_with_the_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sendVerificationMessage"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "phone_number": "+996505325311",
            "code": "012345",
            "ttl": 300,
            "callback_url": CALLBACK
        })))
        .respond_with(request_status("a1b2c3d4", "+996505325311"))
        .expect(1)
        .mount(&server)
        .await;
    let (tg, _) = gateway(&server, Some(CALLBACK));
    let got = tg
        .send(&message(
            "+996505325311",
            "012345",
            start() + Duration::seconds(300),
        ))
        .await
        .unwrap();
    assert_eq!(got.provider_message_id.as_deref(), Some("a1b2c3d4"));
    assert_eq!(tg.name(), "telegram");
}

#[tokio::test]
async fn ttl_is_clamped_to_the_gateway_range_and_callback_left_out_when_unset() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"phone_number": "+12015553931", "code": "111111", "ttl": 30}),
        ))
        .respond_with(request_status("short", "+12015553931"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_json(
            json!({"phone_number": "+12015553931", "code": "222222", "ttl": 3600}),
        ))
        .respond_with(request_status("long", "+12015553931"))
        .expect(1)
        .mount(&server)
        .await;
    let (tg, clock) = gateway(&server, None);
    let short = tg
        .send(&message(
            "+12015553931",
            "111111",
            start() + Duration::seconds(10),
        ))
        .await
        .unwrap();
    assert_eq!(short.provider_message_id.as_deref(), Some("short"));
    clock.advance(Duration::seconds(1));
    let long = tg
        .send(&message(
            "+12015553931",
            "222222",
            start() + Duration::hours(2),
        ))
        .await
        .unwrap();
    assert_eq!(long.provider_message_id.as_deref(), Some("long"));
}

#[tokio::test]
async fn a_number_that_cannot_receive_is_permanent_so_the_code_falls_back() {
    // `PHONE_NUMBER_INVALID` is what the Gateway's clients document; the name it gives an
    // unregistered number is not documented, so an unknown error must also be permanent.
    for error in [
        "PHONE_NUMBER_INVALID",
        "PHONE_NUMBER_NOT_REGISTERED_ON_TELEGRAM",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(gateway_error(400, error))
            .mount(&server)
            .await;
        let (tg, _) = gateway(&server, None);
        let err = tg
            .send(&message(
                "+996505325311",
                "987654",
                start() + Duration::minutes(5),
            ))
            .await
            .unwrap_err();
        let DeliveryError::Permanent(text) = err else {
            panic!("{error} must be permanent: {err:?}")
        };
        assert!(text.contains(error), "{text}");
        assert!(!text.contains(TOKEN) && !text.contains("987654"), "{text}");
    }
}

#[tokio::test]
async fn credentials_and_balance_errors_are_permanent() {
    for error in ["ACCESS_TOKEN_INVALID", "BALANCE_NOT_ENOUGH"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(gateway_error(400, error))
            .mount(&server)
            .await;
        let (tg, _) = gateway(&server, None);
        let err = tg
            .send(&message(
                "+996505325311",
                "123456",
                start() + Duration::minutes(5),
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Permanent(_)),
            "{error}: {err:?}"
        );
    }
}

#[tokio::test]
async fn flood_control_and_outages_are_transient() {
    let cases = [
        gateway_error(429, "FLOOD_WAIT_17"),
        gateway_error(400, "FLOOD_WAIT_5"),
        gateway_error(500, "INTERNAL_SERVER_ERROR"),
        ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
    ];
    for answer in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let (tg, _) = gateway(&server, None);
        let err = tg
            .send(&message(
                "+996505325311",
                "123456",
                start() + Duration::minutes(5),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    }
}

#[test]
fn debug_output_never_shows_the_token() {
    let config = TelegramGatewayConfig {
        base_url: "https://gatewayapi.telegram.org".into(),
        token: SecretString::from(TOKEN.to_owned()),
        callback_url: None,
    };
    assert!(!format!("{config:?}").contains(TOKEN));
    let tg = TelegramGateway::new(config, provider_client().unwrap());
    assert!(!format!("{tg:?}").contains(TOKEN));
    let cb = TelegramReportCallback::new(SecretString::from(TOKEN.to_owned()));
    assert!(!format!("{cb:?}").contains(TOKEN));
}

// --- Delivery reports -------------------------------------------------------------------------

fn checker() -> (TelegramReportCallback, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let cb =
        TelegramReportCallback::with_clock(SecretString::from(TOKEN.to_owned()), clock.clone());
    (cb, clock)
}

/// hex(HMAC-SHA-256(timestamp + "\n" + body, SHA-256(token))), as the Gateway documents.
fn sign(timestamp: &str, body: &[u8]) -> String {
    let key = Sha256::digest(TOKEN.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn report_body(request_id: &str, status: &str) -> Vec<u8> {
    json!({
        "request_id": request_id,
        "phone_number": "+996505325311",
        "request_cost": 0.01,
        "delivery_status": {"status": status, "updated_at": 1_767_225_598}
    })
    .to_string()
    .into_bytes()
}

fn headers(timestamp: &str, signature: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-request-timestamp".into(), timestamp.into()),
        ("x-request-signature".into(), signature.into()),
    ]
}

fn verify(
    cb: &TelegramReportCallback,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<DeliveryReport>, CallbackError> {
    cb.verify(&CallbackRequest {
        url: CALLBACK,
        headers,
        body,
    })
}

#[test]
fn a_report_signed_as_documented_is_read() {
    // Signature computed apart from this code (Python hmac/hashlib) over this exact body.
    let body = br#"{"request_id":"req-1","phone_number":"+996505325311","request_cost":0.01,"delivery_status":{"status":"delivered","updated_at":1767225598}}"#;
    let signature = "4645ef96e0b8a61ed85ed69f76fe0d4547524da8dc652ed726389775779a1792";
    let (cb, _) = checker();
    assert_eq!(
        verify(&cb, &headers("1767225600", signature), body).unwrap(),
        vec![DeliveryReport {
            provider_message_id: "req-1".into(),
            status: ReportedStatus::Delivered,
            error: None,
        }]
    );
    // Upper-case hex is the same signature.
    let upper = signature.to_ascii_uppercase();
    assert!(verify(&cb, &headers("1767225600", &upper), body).is_ok());
    assert_eq!(cb.provider(), "telegram");
}

#[test]
fn each_delivery_status_maps() {
    let (cb, _) = checker();
    let cases = [
        ("sent", ReportedStatus::InProgress, None),
        ("delivered", ReportedStatus::Delivered, None),
        ("read", ReportedStatus::Delivered, None),
        ("expired", ReportedStatus::Failed, Some("expired")),
        ("revoked", ReportedStatus::Failed, Some("revoked")),
    ];
    for (status, expected, error) in cases {
        let body = report_body("req-9", status);
        let got = verify(
            &cb,
            &headers("1767225600", &sign("1767225600", &body)),
            &body,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![DeliveryReport {
                provider_message_id: "req-9".into(),
                status: expected,
                error: error.map(str::to_owned),
            }],
            "{status}"
        );
    }
}

#[test]
fn a_wrong_signature_is_refused() {
    let (cb, _) = checker();
    let body = report_body("req-1", "delivered");
    let good = sign("1767225600", &body);
    // Another key.
    let key = Sha256::digest(b"someone-else's-token");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(b"1767225600\n");
    mac.update(&body);
    let other: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Keyed with the raw token instead of its hash.
    let mut raw = Hmac::<Sha256>::new_from_slice(TOKEN.as_bytes()).unwrap();
    raw.update(b"1767225600\n");
    raw.update(&body);
    let raw: String = raw
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let flipped = format!(
        "{}{}",
        &good[..63],
        if good.ends_with('0') { "1" } else { "0" }
    );
    for signature in [
        other.as_str(),
        raw.as_str(),
        flipped.as_str(),
        &good[..62],
        "",
        "not-hex-at-all",
        "é",
    ] {
        assert_eq!(
            verify(&cb, &headers("1767225600", signature), &body),
            Err(CallbackError::BadSignature),
            "{signature}"
        );
    }
}

#[test]
fn missing_headers_are_refused() {
    let (cb, _) = checker();
    let body = report_body("req-1", "delivered");
    let sig = sign("1767225600", &body);
    let only_sig = vec![("x-request-signature".to_owned(), sig)];
    let only_ts = vec![("x-request-timestamp".to_owned(), "1767225600".to_owned())];
    for h in [only_sig, only_ts, Vec::new()] {
        assert_eq!(verify(&cb, &h, &body), Err(CallbackError::BadSignature));
    }
}

#[test]
fn stale_or_future_timestamps_are_refused_even_when_signed() {
    let (cb, clock) = checker();
    let body = report_body("req-1", "delivered");
    // Five minutes either way is accepted…
    for ts in ["1767225300", "1767225900"] {
        assert!(
            verify(&cb, &headers(ts, &sign(ts, &body)), &body).is_ok(),
            "{ts}"
        );
    }
    // …a second more is not.
    for ts in [
        "1767225299",
        "1767225901",
        "-9223372036854775808",
        "17672256OO",
    ] {
        assert_eq!(
            verify(&cb, &headers(ts, &sign(ts, &body)), &body),
            Err(CallbackError::BadSignature),
            "{ts}"
        );
    }
    // A genuine report replayed an hour later.
    let sig = sign("1767225600", &body);
    clock.advance(Duration::hours(1));
    assert_eq!(
        verify(&cb, &headers("1767225600", &sig), &body),
        Err(CallbackError::BadSignature)
    );
}

#[test]
fn a_tampered_body_or_timestamp_is_refused() {
    let (cb, _) = checker();
    let body = report_body("req-1", "expired");
    let sig = sign("1767225600", &body);
    let tampered = report_body("req-1", "delivered");
    assert_eq!(
        verify(&cb, &headers("1767225600", &sig), &tampered),
        Err(CallbackError::BadSignature)
    );
    assert_eq!(
        verify(&cb, &headers("1767225601", &sig), &body),
        Err(CallbackError::BadSignature)
    );
}

#[test]
fn signed_bodies_we_cannot_read_are_malformed() {
    let (cb, _) = checker();
    for body in [
        b"not json".to_vec(),
        br#"{"phone_number":"+996505325311"}"#.to_vec(),
        report_body("req-1", "teleported"),
    ] {
        let got = verify(
            &cb,
            &headers("1767225600", &sign("1767225600", &body)),
            &body,
        );
        assert!(matches!(got, Err(CallbackError::Malformed(_))), "{got:?}");
    }
    // A signed status without a delivery status reports nothing.
    let body = br#"{"request_id":"req-1","phone_number":"+996505325311","request_cost":0}"#;
    assert_eq!(
        verify(&cb, &headers("1767225600", &sign("1767225600", body)), body),
        Ok(Vec::new())
    );
}

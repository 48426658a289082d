//! The WhatsApp provider against a local fake of the Cloud API, speaking Meta's wire format:
//! the exact request Meta receives, and how each documented answer is sorted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use marque_domain::{Channel, DeliveryError, MessageSender, OutgoingMessage, SecretString};
use marque_markets::{Market, OtpCode, OtpPurpose};
use marque_messaging::{WhatsApp, WhatsAppConfig, provider_client};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "EAAJBsecretaccesstoken";
const PHONE_ID: &str = "105954558954427";

fn config(base_url: &str, languages: &[(Market, &str)]) -> WhatsAppConfig {
    WhatsAppConfig {
        base_url: base_url.to_owned(),
        phone_number_id: PHONE_ID.to_owned(),
        access_token: SecretString::from(TOKEN.to_owned()),
        template_name: "verification_code".to_owned(),
        languages: languages
            .iter()
            .map(|(m, l)| (*m, (*l).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn provider(server: &MockServer, languages: &[(Market, &str)]) -> WhatsApp {
    WhatsApp::new(config(&server.uri(), languages), provider_client().unwrap())
}

fn message(market: Market, recipient: &str, code: &str) -> OutgoingMessage {
    OutgoingMessage {
        id: format!("{}-42", market.code()),
        channel: Channel::WhatsApp,
        market,
        language: market.language(),
        recipient: recipient.to_owned(),
        code: OtpCode::parse(code).unwrap(),
        purpose: OtpPurpose::Login,
        text: format!("Marque: your code is {code}"),
        expires_at: Utc::now() + Duration::minutes(5),
    }
}

/// The body Meta documents for an authentication template with a copy-code button.
fn expected_body(to: &str, language: &str, code: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "verification_code",
            "language": {"code": language},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": code}]},
                {"type": "button", "sub_type": "url", "index": "0",
                 "parameters": [{"type": "text", "text": code}]}
            ]
        }
    })
}

/// Meta's success answer.
fn accepted(input: &str, wamid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": input, "wa_id": input.trim_start_matches('+')}],
        "messages": [{"id": wamid}]
    }))
}

/// A Graph API error answer as Meta's error-code reference shows it.
fn graph_error(status: u16, code: i64, message: &str, details: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "error_subcode": 2494055,
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
        }
    }))
}

#[tokio::test]
async fn sends_the_authentication_template_meta_documents_and_returns_the_wamid() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{PHONE_ID}/messages")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(expected_body("+996505325311", "ru", "012345")))
        .respond_with(accepted(
            "+996505325311",
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let wa = provider(&server, &[(Market::Kg, "ru"), (Market::Us, "en_US")]);
    let got = wa
        .send(&message(Market::Kg, "+996505325311", "012345"))
        .await
        .unwrap();
    assert_eq!(
        got.provider_message_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA")
    );
    assert_eq!(wa.name(), "whatsapp");
}

#[tokio::test]
async fn template_language_follows_the_market_and_falls_back_to_en_us() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(expected_body("+12015553931", "en_US", "654321")))
        .respond_with(accepted("+12015553931", "wamid.US"))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_json(expected_body("+996700123456", "ky", "111222")))
        .respond_with(accepted("+996700123456", "wamid.KY"))
        .expect(1)
        .mount(&server)
        .await;

    // US from the map; KG overridden to Kyrgyz.
    let wa = provider(&server, &[(Market::Kg, "ky"), (Market::Us, "en_US")]);
    let us = wa
        .send(&message(Market::Us, "+12015553931", "654321"))
        .await;
    assert_eq!(us.unwrap().provider_message_id.as_deref(), Some("wamid.US"));
    let kg = wa
        .send(&message(Market::Kg, "+996700123456", "111222"))
        .await;
    assert_eq!(kg.unwrap().provider_message_id.as_deref(), Some("wamid.KY"));

    // A market missing from the map is sent in en_US.
    let bare = provider(&server, &[]);
    let us = bare
        .send(&message(Market::Us, "+12015553931", "654321"))
        .await;
    assert_eq!(us.unwrap().provider_message_id.as_deref(), Some("wamid.US"));
}

#[tokio::test]
async fn a_number_not_on_whatsapp_is_permanent_so_the_code_falls_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(graph_error(
            400,
            131026,
            "(#131026) Message Undeliverable.",
            "Unable to deliver message. Reasons can include: The recipient phone number is not \
             a WhatsApp phone number.",
        ))
        .mount(&server)
        .await;
    let err = provider(&server, &[])
        .send(&message(Market::Kg, "+996505325311", "987654"))
        .await
        .unwrap_err();
    let DeliveryError::Permanent(text) = err else {
        panic!("131026 must be permanent: {err:?}")
    };
    assert!(text.contains("131026"), "{text}");
    assert!(text.contains("Message Undeliverable"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains("987654"), "{text}");
}

#[tokio::test]
async fn throttling_answered_as_400_is_still_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(graph_error(
            400,
            130429,
            "(#130429) Rate limit hit",
            "Message failed to send because there were too many messages sent from this phone \
             number in a short period of time",
        ))
        .mount(&server)
        .await;
    let err = provider(&server, &[])
        .send(&message(Market::Us, "+12015553931", "123456"))
        .await
        .unwrap_err();
    let DeliveryError::Transient(text) = err else {
        panic!("130429 must be transient: {err:?}")
    };
    assert!(
        text.contains("130429") && text.contains("Rate limit hit"),
        "{text}"
    );
}

#[tokio::test]
async fn other_documented_codes_sort_as_meta_describes_them() {
    let cases: &[(u16, i64, &str, bool)] = &[
        (
            400,
            131030,
            "(#131030) Recipient phone number not in allowed list",
            false,
        ),
        (
            400,
            132001,
            "(#132001) Template name does not exist in the translation",
            false,
        ),
        (
            401,
            190,
            "Error validating access token: Session has expired",
            false,
        ),
        (
            400,
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            true,
        ),
        (429, 80007, "(#80007) Rate limit issues", true),
        (503, 131016, "(#131016) Service unavailable", true),
        (500, 131000, "(#131000) Something went wrong", true),
    ];
    for (status, code, msg, transient) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(graph_error(*status, *code, msg, ""))
            .mount(&server)
            .await;
        let err = provider(&server, &[])
            .send(&message(Market::Us, "+12015553931", "123456"))
            .await
            .unwrap_err();
        assert_eq!(
            matches!(err, DeliveryError::Transient(_)),
            *transient,
            "{code}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_server_error_without_a_graph_body_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>Internal error</html>"))
        .mount(&server)
        .await;
    let err = provider(&server, &[])
        .send(&message(Market::Us, "+12015553931", "123456"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_api_is_transient() {
    // A port nothing listens on (wiremock keeps its servers alive in a pool once dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let wa = WhatsApp::new(config(&uri, &[]), provider_client().unwrap());
    let err = wa
        .send(&message(Market::Us, "+12015553931", "123456"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
}

#[test]
fn debug_output_never_shows_the_token() {
    let c = config("https://graph.facebook.com/v21.0", &[(Market::Kg, "ru")]);
    assert!(!format!("{c:?}").contains(TOKEN));
    let wa = WhatsApp::new(c, provider_client().unwrap());
    assert!(!format!("{wa:?}").contains(TOKEN));
}

//! The AWS SNS provider against moto's server (a local AWS fake that records each SMS) and
//! against wiremock (what moto cannot show: the signature, AWS's error answers, broken answers).
//!
//! moto's server is named by [`MOTO_URL_VAR`]; without it the moto tests are skipped, loudly,
//! unless `CI` is set, where they fail (as the PostgreSQL tests of `marque-testkit` do).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::Utc;
use marque_domain::{Channel, DeliveryError, MessageSender, OutgoingMessage, SecretString};
use marque_markets::{Market, OtpCode, OtpPurpose};
use marque_messaging::{Sns, SnsConfig, provider_client};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Environment variable naming moto's server, e.g. `http://127.0.0.1:5055`.
const MOTO_URL_VAR: &str = "MARQUE_TEST_MOTO_URL";

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ACCESS_KEY: &str = "AKIDEXAMPLE";

/// moto's URL from [`MOTO_URL_VAR`], or `None` after telling stderr, once per test binary, that
/// the moto tests are skipped.
///
/// # Panics
/// When the variable is missing and `CI` is set: CI must run the SNS tests.
fn moto_url() -> Option<String> {
    if let Some(url) = std::env::var(MOTO_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return Some(url.trim().trim_end_matches('/').to_owned());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{MOTO_URL_VAR} is not set, and CI is: the SNS tests against moto must run in CI"
    );
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        use std::io::Write;
        // Written to the stderr handle, not with `eprintln!`, which the test harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "\n\
             ************************************************************************\n\
             * SNS TESTS SKIPPED ({MOTO_URL_VAR} not set).\n\
             * The tests against moto's server did not run; the wiremock ones did.\n\
             * Start one: pip install 'moto[server]'; moto_server -H 127.0.0.1 -p 5055\n\
             * then set {MOTO_URL_VAR}=http://127.0.0.1:5055\n\
             ************************************************************************\n"
        );
    });
    None
}

fn config(endpoint: &str, region: &str, sender_id: Option<&str>) -> SnsConfig {
    SnsConfig {
        region: region.into(),
        endpoint_url: Some(endpoint.into()),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SecretString::from(SECRET),
        sender_id: sender_id.map(Into::into),
    }
}

fn sns(endpoint: &str, region: &str, sender_id: Option<&str>) -> Sns {
    Sns::new(
        config(endpoint, region, sender_id),
        provider_client().unwrap(),
    )
}

/// A code no other test run is likely to have used (moto keeps every message it got).
fn fresh_code() -> OtpCode {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    OtpCode::parse(&format!("{:06}", (nanos / 1_000) % 1_000_000)).unwrap()
}

fn message(market: Market, recipient: &str, code: &OtpCode) -> OutgoingMessage {
    let text = match market {
        Market::Kg => format!(
            "Marque: ваш код {}. Никому его не сообщайте.",
            code.as_str()
        ),
        Market::Us => format!("Marque: your code is {}. Don't share it.", code.as_str()),
    };
    OutgoingMessage {
        id: format!("{}-1", market.code().to_lowercase()),
        channel: Channel::Sms,
        market,
        language: market.language(),
        recipient: recipient.into(),
        code: code.clone(),
        purpose: OtpPurpose::Login,
        text,
        expires_at: Utc::now() + chrono::Duration::minutes(5),
    }
}

/// The SMS moto recorded under `message_id`: `(phone_number, message)`.
///
/// moto 5.2's `GET /moto-api/data.json` lists them at `sns.SMS[]` as
/// `{message_id, phone_number, message}`; it does not record message attributes.
async fn moto_sms(moto: &str, message_id: &str) -> Option<(String, String)> {
    let data: serde_json::Value = reqwest::get(format!("{moto}/moto-api/data.json"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = data["sns"]["SMS"]
        .as_array()
        .unwrap_or_else(|| panic!("no sns.SMS list in moto's data.json: {data}"));
    list.iter()
        .find(|sms| sms["message_id"] == message_id)
        .map(|sms| {
            (
                sms["phone_number"].as_str().unwrap().to_owned(),
                sms["message"].as_str().unwrap().to_owned(),
            )
        })
}

/// Publishes one message of `market` through moto and reads it back.
async fn published_through_moto(
    market: Market,
    region: &str,
    recipient: &str,
    sender: Option<&str>,
) {
    let Some(moto) = moto_url() else { return };
    let code = fresh_code();
    let m = message(market, recipient, &code);
    let accepted = sns(&moto, region, sender).send(&m).await.unwrap();
    let id = accepted.provider_message_id.expect("a MessageId");
    let (phone, text) = moto_sms(&moto, &id)
        .await
        .unwrap_or_else(|| panic!("moto has no SMS with MessageId {id}"));
    assert_eq!(phone, recipient);
    assert_eq!(text, m.text);
    assert!(text.contains(code.as_str()));
}

#[tokio::test]
async fn moto_records_a_kg_sms_with_the_exact_text_and_message_id() {
    published_through_moto(Market::Kg, "eu-central-1", "+996505325311", Some("Marque")).await;
}

#[tokio::test]
async fn moto_records_a_us_sms_with_the_exact_text_and_message_id() {
    published_through_moto(Market::Us, "us-east-1", "+12025550143", None).await;
}

#[tokio::test]
async fn moto_refusal_of_a_number_is_permanent_and_names_the_code() {
    let Some(moto) = moto_url() else { return };
    let code = fresh_code();
    let m = message(Market::Us, "+1 202 555", &code);
    let err = sns(&moto, "us-east-1", None).send(&m).await.unwrap_err();
    let DeliveryError::Permanent(text) = err else {
        panic!("not permanent: {err:?}")
    };
    assert!(text.contains("HTTP 400 InvalidParameter"), "{text}");
    assert!(!text.contains(code.as_str()) && !text.contains(SECRET));
}

const PUBLISH_OK: &str = r#"<PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/">
    <PublishResult>
        <MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId>
    </PublishResult>
    <ResponseMetadata>
        <RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId>
    </ResponseMetadata>
</PublishResponse>"#;

fn error_xml(kind: &str, code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error>
    <Type>{kind}</Type>
    <Code>{code}</Code>
    <Message>{message}</Message>
  </Error>
  <RequestId>9f4bd1b9-1f35-5c5c-a4e4-7d0b4bc1a3b0</RequestId>
</ErrorResponse>"#
    )
}

/// A fake answering every POST with `status` and `body`.
async fn fake(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), "text/xml"))
        .mount(&server)
        .await;
    server
}

/// Sends a US message through a fake answering `status` and `body`.
async fn send_to_fake(status: u16, body: &str) -> Result<marque_domain::Accepted, DeliveryError> {
    let server = fake(status, body).await;
    let m = message(Market::Us, "+12025550143", &fresh_code());
    sns(&server.uri(), "us-east-1", None).send(&m).await
}

#[tokio::test]
async fn request_is_a_sigv4_signed_publish_form() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PUBLISH_OK, "text/xml"))
        .expect(1)
        .mount(&server)
        .await;
    let code = fresh_code();
    let m = message(Market::Kg, "+996505325311", &code);
    let accepted = sns(&server.uri(), "eu-central-1", Some("Marque"))
        .send(&m)
        .await
        .unwrap();
    assert_eq!(
        accepted.provider_message_id.as_deref(),
        Some("567910cd-659e-55d4-8ccb-5aaf14679dc0")
    );

    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/x-www-form-urlencoded");
    // X-Amz-Date: ISO 8601 basic format, UTC, close to now.
    let amz_date = header("x-amz-date");
    let parsed = chrono::NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
        .unwrap_or_else(|e| panic!("x-amz-date {amz_date}: {e}"))
        .and_utc();
    assert!((Utc::now() - parsed).num_seconds().abs() < 60, "{amz_date}");
    // Authorization: AWS4-HMAC-SHA256 with the credential scope
    // {access key}/{date}/{region}/sns/aws4_request, the signed headers and a hex signature.
    let auth = header("authorization");
    let scope = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{}/eu-central-1/sns/aws4_request, ",
        &amz_date[..8]
    );
    assert!(auth.starts_with(&scope), "{auth}");
    let signed_headers = auth
        .split(", ")
        .find_map(|p| p.strip_prefix("SignedHeaders="))
        .unwrap();
    assert_eq!(signed_headers, "content-type;host;x-amz-date");
    let signature = auth
        .split(", ")
        .find_map(|p| p.strip_prefix("Signature="))
        .unwrap();
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));

    let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let expected: HashMap<String, String> = [
        ("Action", "Publish"),
        ("Version", "2010-03-31"),
        ("PhoneNumber", "+996505325311"),
        ("Message", m.text.as_str()),
        ("MessageAttributes.entry.1.Name", "AWS.SNS.SMS.SMSType"),
        ("MessageAttributes.entry.1.Value.DataType", "String"),
        (
            "MessageAttributes.entry.1.Value.StringValue",
            "Transactional",
        ),
        ("MessageAttributes.entry.2.Name", "AWS.SNS.SMS.SenderID"),
        ("MessageAttributes.entry.2.Value.DataType", "String"),
        ("MessageAttributes.entry.2.Value.StringValue", "Marque"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(form, expected);

    // The secret key travels nowhere: not in a header, not in the body.
    let everything = format!(
        "{:?} {}",
        request.headers,
        String::from_utf8_lossy(&request.body)
    );
    assert!(!everything.contains(SECRET));
    assert!(!everything.contains("wJalrXUtnFEMI"));
}

#[tokio::test]
async fn without_a_sender_id_only_the_sms_type_is_sent() {
    let server = fake(200, PUBLISH_OK).await;
    let m = message(Market::Us, "+12025550143", &fresh_code());
    sns(&server.uri(), "us-east-1", Some(""))
        .send(&m)
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&requests[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        form["MessageAttributes.entry.1.Name"],
        "AWS.SNS.SMS.SMSType"
    );
    assert!(
        !form
            .keys()
            .any(|k| k.starts_with("MessageAttributes.entry.2"))
    );
    assert!(
        requests[0].headers["authorization"]
            .to_str()
            .unwrap()
            .contains("/us-east-1/sns/aws4_request")
    );
}

#[tokio::test]
async fn throttling_is_transient_and_keeps_code_and_message() {
    for code in ["Throttling", "ThrottlingException", "KMSThrottling"] {
        let body = error_xml("Sender", code, "Rate exceeded");
        let err = send_to_fake(400, &body).await.unwrap_err();
        let DeliveryError::Transient(text) = err else {
            panic!("{code}: not transient: {err:?}")
        };
        assert!(
            text.contains(code) && text.contains("Rate exceeded"),
            "{text}"
        );
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[tokio::test]
async fn invalid_parameter_and_refused_credentials_are_permanent() {
    for (status, code) in [
        (400, "InvalidParameter"),
        (400, "InvalidParameterValue"),
        (400, "OptedOut"),
        (403, "AuthorizationError"),
        (403, "InvalidClientTokenId"),
        (403, "SignatureDoesNotMatch"),
        (404, "SomethingNew"),
    ] {
        let body = error_xml("Sender", code, "Invalid parameter: PhoneNumber");
        let err = send_to_fake(status, &body).await.unwrap_err();
        let DeliveryError::Permanent(text) = err else {
            panic!("{code}: not permanent: {err:?}")
        };
        assert!(text.contains(code), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[tokio::test]
async fn server_errors_are_transient() {
    for (status, body) in [
        (500, String::new()),
        (
            500,
            error_xml("Receiver", "InternalError", "Internal failure"),
        ),
        (502, "<html><body>Bad Gateway</body></html>".to_owned()),
        (
            503,
            error_xml("Receiver", "ServiceUnavailable", "Service unavailable"),
        ),
    ] {
        let err = send_to_fake(status, &body).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Transient(_)),
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn garbled_success_answers_are_errors_not_panics() {
    let huge = format!("<PublishResponse>{}", "<a>".repeat(200_000));
    for body in [
        "",
        "not xml at all",
        "<PublishResponse><PublishResult></PublishResult></PublishResponse>",
        "<PublishResponse><PublishResult><MessageId>  </MessageId></PublishResult></PublishResponse>",
        "<PublishResponse><PublishResult><MessageId>abc",
        "<PublishResponse><PublishResult><MessageId><x/></MessageId></PublishResult></PublishResponse>",
        "\u{0}\u{fffd}<<<>>>&&&;",
        "{\"MessageId\": \"abc\"}",
        huge.as_str(),
    ] {
        let err = send_to_fake(200, body).await.unwrap_err();
        let DeliveryError::Permanent(text) = err else {
            panic!("not permanent: {err:?}")
        };
        assert!(text.contains("HTTP 200"), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = message(Market::Us, "+12025550143", &fresh_code());
    let err = sns(&format!("http://127.0.0.1:{port}"), "us-east-1", None)
        .send(&m)
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
}

#[test]
fn debug_never_shows_the_secret_key() {
    let c = config("http://127.0.0.1:1", "us-east-1", Some("Marque"));
    let shown = format!("{c:?} {c:#?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains("wJalrXUtnFEMI"),
        "{shown}"
    );
    assert!(shown.contains(ACCESS_KEY));
    let p = Sns::new(c, reqwest::Client::new());
    let shown = format!("{p:?} {p:#?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains("wJalrXUtnFEMI"),
        "{shown}"
    );
    assert!(shown.contains("us-east-1"));
    assert_eq!(p.name(), "sns");
}

//! AWS SNS `Publish` to a phone number (SMS), signed with SigV4.
//!
//! Request: `POST {endpoint}/`, form-encoded in the AWS Query protocol: `Action=Publish`,
//! `Version=2010-03-31`, `PhoneNumber` (E.164), `Message` (the text), and the message attributes
//! `AWS.SNS.SMS.SMSType=Transactional` and, when configured, `AWS.SNS.SMS.SenderID`, as
//! `MessageAttributes.entry.N.{Name,Value.DataType,Value.StringValue}`. The request is signed with
//! AWS Signature Version 4 (service `sns`) by AWS's `aws-sigv4` crate.
//!
//! Answer: XML. `PublishResponse/PublishResult/MessageId` on success;
//! `ErrorResponse/Error/{Type,Code,Message}` on failure.
//!
//! Sources:
//! <https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>,
//! <https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html>,
//! <https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html>,
//! <https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html#sms_publish_sdk>
//! (the SMS message attributes),
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use marque_domain::{
    Accepted, DeliveryError, ExposeSecret, MessageSender, OutgoingMessage, SecretString,
};
use serde::Deserialize;

use crate::http::{status_error, transport_error};

/// Provider name, in logs, errors and the stored `provider` column.
const NAME: &str = "sns";

/// The SigV4 signing name (the credential scope's service) of SNS.
const SIGNING_NAME: &str = "sns";

/// The Query API version of SNS `Publish`.
const API_VERSION: &str = "2010-03-31";

/// Most bytes of an answer read; SNS answers are well under 2 KiB, anything past this is cut (an
/// answer cut short does not parse, and is an error).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// SNS error codes worth retrying whatever the HTTP status: throttling (ours or KMS's) and
/// AWS-side failures.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "ThrottledException",
    "KMSThrottling",
    "KMSThrottlingException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// SNS error codes that retrying cannot fix whatever the HTTP status: a bad number or text, a
/// recipient who opted out, refused credentials or signature. Any other code is sorted by its
/// status ([`status_error`]: 429 and 5xx transient, other 4xx permanent).
const PERMANENT_CODES: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "OptedOut",
    "AuthorizationError",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidSecurity",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AccessDenied",
    "EndpointDisabled",
    "NotFound",
];

/// Settings of the SNS provider.
///
/// `Debug` shows the access key id, never the secret access key ([`SecretString`] redacts it).
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// `AWS_REGION`, e.g. `us-east-1`: the SigV4 credential scope's region and, without
    /// [`endpoint_url`](Self::endpoint_url), the endpoint's. Lower-case letters, digits and `-`.
    pub region: String,
    /// `SNS_ENDPOINT_URL`; default `https://sns.{region}.amazonaws.com` (tests: moto's server;
    /// also the way to reach regions outside the `amazonaws.com` partition). An `http` or `https`
    /// URL with a host and no user name or password.
    pub endpoint_url: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: SecretString,
    /// `SNS_SENDER_ID`: the `AWS.SNS.SMS.SenderID` attribute, when set (1–11 letters and digits;
    /// honoured only in countries that support sender ids). Empty counts as unset.
    pub sender_id: Option<String>,
}

impl SnsConfig {
    /// The endpoint requests go to: [`endpoint_url`](Self::endpoint_url), or
    /// `https://sns.{region}.amazonaws.com`
    /// (<https://docs.aws.amazon.com/general/latest/gr/sns.html>).
    pub fn endpoint(&self) -> String {
        match &self.endpoint_url {
            Some(url) => url.clone(),
            None => format!("https://sns.{}.amazonaws.com", self.region),
        }
    }
}

/// The AWS SNS SMS provider: one signed `Publish` per message, with `SMSType=Transactional`.
///
/// `Debug` shows the region, endpoint, access key id and sender id, never the secret key.
pub struct Sns {
    config: SnsConfig,
    /// The credentials as the signer takes them, built once.
    identity: Identity,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sns")
            .field("region", &self.config.region)
            .field("endpoint", &self.config.endpoint())
            .field("access_key_id", &self.config.access_key_id)
            .field("sender_id", &self.config.sender_id)
            .finish_non_exhaustive()
    }
}

impl Sns {
    /// A provider sending with `http` (see [`crate::provider_client`]). The settings are checked
    /// on each send (a bad region or endpoint URL is a permanent error then).
    pub fn new(config: SnsConfig, http: reqwest::Client) -> Self {
        let identity = Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.expose_secret(),
            None,
            None,
            "marque-config",
        )
        .into();
        Self {
            config,
            identity,
            http,
        }
    }

    /// The endpoint as a URL, refused unless `http(s)://host…` without credentials in it (the
    /// signer needs a host; a password in the URL would end up in logs).
    fn endpoint(&self) -> Result<reqwest::Url, DeliveryError> {
        let bad = |why: &str| DeliveryError::Permanent(format!("{NAME}: endpoint URL {why}"));
        let region_ok = !self.config.region.is_empty()
            && self
                .config
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(DeliveryError::Permanent(format!(
                "{NAME}: region must be lower-case letters, digits and '-'"
            )));
        }
        let url =
            reqwest::Url::parse(&self.config.endpoint()).map_err(|_| bad("does not parse"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is not http(s)"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        Ok(url)
    }

    /// The `Publish` form fields for `m`, in order.
    fn form<'a>(&'a self, m: &'a OutgoingMessage) -> Vec<(String, &'a str)> {
        let mut form: Vec<(String, &str)> = vec![
            ("Action".into(), "Publish"),
            ("Version".into(), API_VERSION),
            ("PhoneNumber".into(), &m.recipient),
            ("Message".into(), &m.text),
        ];
        let mut attributes = vec![("AWS.SNS.SMS.SMSType", "Transactional")];
        if let Some(sender) = self.config.sender_id.as_deref().filter(|s| !s.is_empty()) {
            attributes.push(("AWS.SNS.SMS.SenderID", sender));
        }
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            let prefix = format!("MessageAttributes.entry.{}", i + 1);
            form.push((format!("{prefix}.Name"), name));
            form.push((format!("{prefix}.Value.DataType"), "String"));
            form.push((format!("{prefix}.Value.StringValue"), value));
        }
        form
    }

    /// Adds SigV4 headers (`Authorization`, `X-Amz-Date`) to `request`, signing its method, URL,
    /// headers and body at `time`.
    fn sign(&self, request: &mut reqwest::Request, time: SystemTime) -> Result<(), DeliveryError> {
        let failed =
            |what: &str| DeliveryError::Permanent(format!("{NAME}: signing failed: {what}"));
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers,
            SignableBody::Bytes(body),
        )
        .map_err(|_| failed("request not signable"))?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.config.region)
            .name(SIGNING_NAME)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| failed("incomplete parameters"))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|_| failed("signer refused"))?
            .into_parts();
        let (headers, _query) = instructions.into_parts();
        for header in headers {
            let name = reqwest::header::HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|_| failed("header name"))?;
            let mut value = reqwest::header::HeaderValue::from_str(header.value())
                .map_err(|_| failed("header value"))?;
            value.set_sensitive(header.sensitive() || name == reqwest::header::AUTHORIZATION);
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

/// `PublishResponse` (the root element's name is not checked).
#[derive(Deserialize)]
struct PublishResponse {
    #[serde(rename = "PublishResult")]
    result: PublishResult,
}

/// `PublishResponse/PublishResult`.
#[derive(Deserialize)]
struct PublishResult {
    #[serde(rename = "MessageId")]
    message_id: String,
}

/// `ErrorResponse` (the root element's name is not checked).
#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(rename = "Error")]
    error: AwsError,
}

/// `ErrorResponse/Error`.
#[derive(Deserialize)]
struct AwsError {
    /// `Sender` or `Receiver`.
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// Sorts a non-2xx answer: by its SNS error code when the body is an `ErrorResponse` and the code
/// is one we know ([`TRANSIENT_CODES`], [`PERMANENT_CODES`]), else by the status. The text keeps
/// the code, type and message, with the message's text and code blanked should the provider's
/// message quote them; never the raw body (an unknown server might echo the request).
fn refusal(status: reqwest::StatusCode, body: &str, m: &OutgoingMessage) -> DeliveryError {
    let Ok(ErrorResponse { error }) = quick_xml::de::from_str::<ErrorResponse>(body) else {
        return status_error(NAME, status, "(no SNS error in the answer)");
    };
    let mut message = error.message.unwrap_or_default();
    for (quoted, stand_in) in [
        (m.text.as_str(), "[message text]"),
        (m.code.as_str(), "[code]"),
    ] {
        if !quoted.is_empty() {
            message = message.replace(quoted, stand_in);
        }
    }
    let detail = match error.kind {
        Some(kind) => format!("{} ({kind}): {message}", error.code),
        None => format!("{}: {message}", error.code),
    };
    let by_status = status_error(NAME, status, &detail);
    let text = match &by_status {
        DeliveryError::Transient(t) | DeliveryError::Permanent(t) => t.clone(),
    };
    if TRANSIENT_CODES.contains(&error.code.as_str()) {
        DeliveryError::Transient(text)
    } else if PERMANENT_CODES.contains(&error.code.as_str()) {
        DeliveryError::Permanent(text)
    } else {
        by_status
    }
}

/// Reads at most [`MAX_ANSWER_BYTES`] of `res`'s body.
async fn read_answer(mut res: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(body)
}

#[async_trait::async_trait]
impl MessageSender for Sns {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Publishes `m.text` to `m.recipient`.
    ///
    /// Returns the SNS `MessageId` as [`Accepted::provider_message_id`].
    ///
    /// Errors: transient for transport failures (see [`transport_error`]), 429, 5xx and the
    /// throttling and internal error codes; permanent for other 4xx (invalid number or text,
    /// opted-out recipient, refused credentials or signature), for bad settings, and for a 200
    /// whose body is not a `PublishResponse` with a `MessageId` (not SNS speaking: a wrong
    /// endpoint; the message falls back to the next channel rather than being retried here).
    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        let url = self.endpoint()?;
        let mut request = self
            .http
            .post(url)
            .form(&self.form(m))
            .build()
            .map_err(|e| transport_error(NAME, &e))?;
        self.sign(&mut request, SystemTime::now())?;
        let res = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(NAME, &e))?;
        let status = res.status();
        let body = read_answer(res)
            .await
            .map_err(|e| transport_error(NAME, &e))?;
        let body = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(refusal(status, &body, m));
        }
        match quick_xml::de::from_str::<PublishResponse>(&body) {
            Ok(PublishResponse { result }) if !result.message_id.trim().is_empty() => {
                let id = result.message_id.trim().to_owned();
                tracing::debug!(provider = NAME, message = %m.id, provider_message_id = %id, "published");
                Ok(Accepted {
                    provider_message_id: Some(id),
                })
            }
            _ => Err(DeliveryError::Permanent(format!(
                "{NAME}: HTTP {} but no PublishResponse/PublishResult/MessageId in the answer",
                status.as_u16()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn message() -> OutgoingMessage {
        OutgoingMessage {
            id: "kg-1".into(),
            channel: marque_domain::Channel::Sms,
            market: marque_markets::Market::Kg,
            language: marque_markets::Language::Ru,
            recipient: "+996505325311".into(),
            code: marque_markets::OtpCode::parse("482913").unwrap(),
            purpose: marque_markets::OtpPurpose::Login,
            text: "Marque: код 482913".into(),
            expires_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn error_codes_sort_before_statuses() {
        let m = message();
        let xml = |code: &str| {
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>m</Message></Error></ErrorResponse>"
            )
        };
        let bad = reqwest::StatusCode::BAD_REQUEST;
        for code in [
            "Throttling",
            "ThrottlingException",
            "KMSThrottling",
            "InternalError",
        ] {
            assert!(matches!(
                refusal(bad, &xml(code), &m),
                DeliveryError::Transient(_)
            ));
        }
        let server = reqwest::StatusCode::INTERNAL_SERVER_ERROR;
        for code in ["InvalidParameter", "OptedOut", "SignatureDoesNotMatch"] {
            assert!(matches!(
                refusal(server, &xml(code), &m),
                DeliveryError::Permanent(_)
            ));
        }
        // Unknown codes and bodies go by the status.
        assert!(matches!(
            refusal(server, &xml("Odd"), &m),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            refusal(bad, &xml("Odd"), &m),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            refusal(server, "<html>", &m),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(refusal(bad, "", &m), DeliveryError::Permanent(_)));
    }

    #[test]
    fn error_text_keeps_the_code_and_blanks_a_quoted_text() {
        let m = message();
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code>\
                    <Message>Bad Message: Marque: код 482913, again 482913</Message></Error>\
                    </ErrorResponse>";
        let DeliveryError::Permanent(text) = refusal(reqwest::StatusCode::BAD_REQUEST, body, &m)
        else {
            panic!("not permanent")
        };
        assert!(text.contains("InvalidParameter (Sender)"), "{text}");
        assert!(!text.contains("482913"), "{text}");
        assert!(!text.contains("код"), "{text}");
    }

    #[test]
    fn bad_settings_are_permanent_errors_not_panics() {
        let config = |region: &str, endpoint: Option<&str>| SnsConfig {
            region: region.into(),
            endpoint_url: endpoint.map(Into::into),
            access_key_id: "AKID".into(),
            secret_access_key: SecretString::from("s3cr3t"),
            sender_id: None,
        };
        let http = reqwest::Client::new();
        for (region, endpoint) in [
            ("us-east-1", Some("not a url")),
            ("us-east-1", Some("unix:/tmp/sock")),
            ("us-east-1", Some("file:///etc/passwd")),
            ("us-east-1", Some("http://user:pw@example.com")),
            ("", None),
            ("us-east-1/evil", None),
        ] {
            let sns = Sns::new(config(region, endpoint), http.clone());
            assert!(
                matches!(sns.endpoint(), Err(DeliveryError::Permanent(_))),
                "{region} {endpoint:?}"
            );
        }
        // An access key id that is no header value: refused by us, not a panic in the signer.
        let mut odd = config("eu-west-1", None);
        odd.access_key_id = "AKID\nInjected: yes".into();
        let sns = Sns::new(odd, http.clone());
        let mut request = http.post(sns.endpoint().unwrap()).build().unwrap();
        assert!(matches!(
            sns.sign(&mut request, SystemTime::now()),
            Err(DeliveryError::Permanent(_))
        ));
        let sns = Sns::new(config("eu-west-1", None), http);
        assert_eq!(
            sns.endpoint().unwrap().as_str(),
            "https://sns.eu-west-1.amazonaws.com/"
        );
    }

    /// Known answer: botocore 1.44.8's `SigV4Auth` (an independent implementation), given the same
    /// URL, `Content-Type`, body, credentials and time, computes this very `Authorization`.
    #[test]
    fn signature_matches_botocore_for_the_same_request() {
        let sns = Sns::new(
            SnsConfig {
                region: "us-east-1".into(),
                endpoint_url: None,
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                sender_id: Some("Marque".into()),
            },
            reqwest::Client::new(),
        );
        let m = message();
        let mut request = sns
            .http
            .post(sns.endpoint().unwrap())
            .form(&sns.form(&m))
            .build()
            .unwrap();
        // 2026-12-01T12:00:00Z
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_126_400);
        sns.sign(&mut request, time).unwrap();

        assert_eq!(
            request.url().as_str(),
            "https://sns.us-east-1.amazonaws.com/"
        );
        let body = std::str::from_utf8(request.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(
            body,
            "Action=Publish&Version=2010-03-31&PhoneNumber=%2B996505325311\
             &Message=Marque%3A+%D0%BA%D0%BE%D0%B4+482913\
             &MessageAttributes.entry.1.Name=AWS.SNS.SMS.SMSType\
             &MessageAttributes.entry.1.Value.DataType=String\
             &MessageAttributes.entry.1.Value.StringValue=Transactional\
             &MessageAttributes.entry.2.Name=AWS.SNS.SMS.SenderID\
             &MessageAttributes.entry.2.Value.DataType=String\
             &MessageAttributes.entry.2.Value.StringValue=Marque"
        );
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), "application/x-www-form-urlencoded");
        assert_eq!(header("x-amz-date"), "20261201T120000Z");
        assert_eq!(
            header("authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/sns/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=494f2e6cfb41ae6775061873d7d61df614341f96df155c31e204bfbdeef2f897"
        );
        assert!(request.headers()["authorization"].is_sensitive());
    }
}

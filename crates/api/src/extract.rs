//! Request parsing at the edge: market header, the signed-in caller, client identity, JSON
//! errors.

use std::net::IpAddr;

use actix_web::http::{StatusCode, header};
use actix_web::mime;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use ipnet::IpNet;
use marque_domain::{ClaimsExt, ClientInfo, SignedIn};
use marque_markets::{Language, Market};
use serde::de::DeserializeOwned;

use crate::ApiState;
use crate::error::{ApiError, ErrorKind};
use crate::routes::run_blocking;

/// Name of the header that selects a market explicitly.
pub const MARKET_HEADER: &str = "X-Market";

/// The market named by `X-Market`, if any. An unknown value → 400 `unknown_market`.
pub fn header_market(req: &HttpRequest) -> Result<Option<Market>, ApiError> {
    let Some(v) = req.headers().get(MARKET_HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.parse::<Market>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::new(ErrorKind::UnknownMarket, Language::En))
}

/// Language for errors raised before the market is known: the `X-Market` market's, else English.
pub fn fallback_lang(req: &HttpRequest) -> Language {
    header_market(req)
        .ok()
        .flatten()
        .map_or(Language::En, Market::language)
}

/// The credentials of `Authorization: Bearer <token>` (RFC 6750 §2.1), if well-formed.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .map(str::to_owned)
}

/// The signed-in caller of a protected route, authenticated once at the edge: the bearer token's
/// signature and expiry are checked without the database, then its session and user are read in
/// one query on the blocking pool ([`marque_domain::AuthService::signed_in`]).
///
/// Failures: 401 `invalid_token` (missing, malformed, forged or expired token, or a session that
/// ended) and 503 `service_unavailable` (the token's market database is down) — in the token's
/// market language when the token is authentic, else in the `X-Market` language or English.
#[derive(Debug, Clone)]
pub struct Authenticated(pub SignedIn);

impl std::ops::Deref for Authenticated {
    type Target = SignedIn;

    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let fallback = fallback_lang(req);
        let token = bearer_token(req);
        let state = req.app_data::<web::Data<ApiState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::new(ErrorKind::Internal, fallback))?;
            let token = token.ok_or_else(|| ApiError::new(ErrorKind::InvalidToken, fallback))?;
            let claims = state
                .auth
                .verify_access_token(&token)
                .map_err(|e| ApiError::from_auth(e, fallback))?;
            let lang = claims.market().map_or(fallback, Market::language);
            let auth = state.auth.clone();
            run_blocking(lang, move || {
                auth.signed_in(&claims)
                    .map_err(|e| ApiError::from_auth(e, lang))
            })
            .await
            .map(Authenticated)
        })
    }
}

/// The client's IP: the socket peer, or — only when the peer is a trusted proxy — the address
/// `X-Forwarded-For` names right of the trusted hops (see [`crate::client_ip::resolve`]).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    // Lossy, not `to_str().ok()`: dropping a line with odd bytes would skip a hop's entry.
    let forwarded: Vec<_> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    Some(crate::client_ip::resolve(
        peer,
        forwarded.iter().map(|v| v.as_ref()),
        trusted,
    ))
}

/// IP and user agent of the request, for limits and the session record.
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    let trusted = req
        .app_data::<web::Data<ApiState>>()
        .map(|s| s.trusted_proxies.as_slice());
    ClientInfo {
        ip: client_ip(req, trusted.unwrap_or(&[])).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// A JSON request body of type `T`, parsed at the edge. Failures: 413 over the payload limit
/// (16 KiB), 415 when the content type is not JSON, 400 `invalid_json` for malformed JSON, 422
/// `validation_error` naming the missing or mistyped field (path via `serde_path_to_error`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let lang = fallback_lang(req);
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(ErrorKind::UnsupportedMediaType, lang));
            }
            let bytes = bytes.await.map_err(|e| {
                let kind = if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorKind::PayloadTooLarge
                } else {
                    ErrorKind::InvalidJson
                };
                ApiError::new(kind, lang)
            })?;
            parse_json(&bytes)
                .map(JsonBody)
                .map_err(|kind| ApiError::new(kind, lang))
        })
    }
}

/// serde's data-error text without the value it quotes (`invalid type: string "5555 …",
/// expected a boolean` → `invalid type: expected a boolean`): a refused value may be a card
/// number or a secret and is never echoed (PCI DSS 3.3, OWASP ASVS V7.1).
fn without_value(msg: &str) -> String {
    match (msg.split_once(": "), msg.rsplit_once(", expected ")) {
        (Some((kind, _)), Some((_, expected))) => format!("{kind}: expected {expected}"),
        _ => msg.to_owned(),
    }
}

/// Parses `bytes` as `T`, classifying failures as [`JsonBody`] documents.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ErrorKind> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return ErrorKind::InvalidJson;
        }
        let msg = inner.to_string();
        let detail = without_value(msg.split(" at line ").next().unwrap_or(&msg));
        let field = if path == "." {
            missing_field(&msg)
        } else {
            path
        };
        ErrorKind::Validation { field, detail }
    })?;
    // Trailing characters after the value are malformed JSON too.
    de.end().map_err(|_| ErrorKind::InvalidJson)?;
    Ok(value)
}

/// The field serde names in "missing field `phone_number`"; `body` when none is named (e.g. a
/// JSON array where an object was expected).
fn missing_field(msg: &str) -> String {
    msg.strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("body")
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn refused_values_are_not_echoed() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            is_default: bool,
        }
        let err =
            super::parse_json::<Body>(br#"{"is_default": "5555 5555 5555 4444"}"#).unwrap_err();
        let text = format!("{err:?}");
        assert!(!text.contains("5555"), "{text}");
        assert!(text.contains("expected a boolean"), "{text}");
    }

    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let direct = TestRequest::default()
            .peer_addr("203.0.113.5:1000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "1.2.3.4"))
            .to_http_request();
        assert_eq!(
            client_ip(&direct, &trusted),
            Some("203.0.113.5".parse().unwrap())
        );
        let proxied = TestRequest::default()
            .peer_addr("10.0.0.2:1000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.0.0.9"))
            .to_http_request();
        assert_eq!(
            client_ip(&proxied, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_for_entries_with_ports_cannot_be_skipped() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |xff: &str| {
            let req = TestRequest::default()
                .peer_addr("10.0.0.2:1000".parse().unwrap())
                .insert_header(("X-Forwarded-For", xff))
                .to_http_request();
            client_ip(&req, &trusted).unwrap().to_string()
        };
        assert_eq!(ip("6.6.6.6, 198.51.100.7:5678"), "198.51.100.7");
        assert_eq!(ip("6.6.6.6, [2001:db8::7]:443"), "2001:db8::7");
        assert_eq!(ip("6.6.6.6, [2001:db8::7]"), "2001:db8::7");
        assert_eq!(ip("6.6.6.6, unknown"), "10.0.0.2");
        assert_eq!(ip("::ffff:198.51.100.7"), "198.51.100.7");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        phone_number: String,
    }

    fn field(r: Result<Body, ErrorKind>) -> String {
        match r {
            Err(ErrorKind::Validation { field, .. }) => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_failures_are_classified_and_name_the_field() {
        assert_eq!(field(parse_json(br#"{}"#)), "phone_number");
        assert_eq!(field(parse_json(br#"{"phone_number": 5}"#)), "phone_number");
        assert_eq!(field(parse_json(br#""abc""#)), "body");
        assert_eq!(
            parse_json::<Body>(br#"{"phone_number": "#).unwrap_err(),
            ErrorKind::InvalidJson
        );
        assert_eq!(
            parse_json::<Body>(b"nope").unwrap_err(),
            ErrorKind::InvalidJson
        );
        assert_eq!(
            parse_json::<Body>(br#"{"phone_number": "1"} x"#).unwrap_err(),
            ErrorKind::InvalidJson
        );
        assert!(parse_json::<Body>(br#"{"phone_number": "1", "extra": true}"#).is_ok());
    }
}

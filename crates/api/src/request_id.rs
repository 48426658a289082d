//! `X-Request-Id`: the id a user can quote. The incoming header is kept when it is a sane token
//! (1–128 characters of `[A-Za-z0-9._:-]`), else the request gets a new UUID v4. The id is chosen
//! when the request's root span opens ([`crate::access_log`]), so every log line of the request
//! carries it; [`middleware`] puts it on the response and into every JSON error body as
//! `request_id`, whichever layer made the error (extractors, 404/405, the edge guard).

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing_actix_web::RequestId as GeneratedId;

/// `X-Request-Id`.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id kept.
const MAX_LEN: usize = 128;

/// Largest error body the middleware rewrites (error bodies are a few hundred bytes).
const MAX_ERROR_BODY: u64 = 16 * 1024;

/// The id of a request, in its extensions once the root span is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether an incoming id is kept as it is.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The id of `request`: its sane `X-Request-Id`, else tracing-actix-web's UUID v4, else a new
/// one; stored in the request's extensions, so later calls return the same id.
pub fn assign(request: &ServiceRequest) -> String {
    if let Some(id) = request.extensions().get::<RequestId>() {
        return id.0.clone();
    }
    let incoming = request
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map(str::to_owned);
    let id = incoming.unwrap_or_else(|| {
        request
            .extensions()
            .get::<GeneratedId>()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), ToString::to_string)
    });
    request.extensions_mut().insert(RequestId(id.clone()));
    id
}

/// Sets `X-Request-Id` on the response and `request_id` in a JSON error body (`"success":
/// false`). Registered inside the request's root span and outside every layer that makes errors.
pub async fn middleware<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = assign(&req);
    // The inner layers answer errors as responses (handlers, extractors, router, CORS, the edge
    // guard); an `Err` would reach actix's dispatcher untouched. The request cannot be kept to
    // shape one here: a clone of it would stop the router from writing the path parameters.
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let small = matches!(res.response().body().size(), BodySize::Sized(n) if n <= MAX_ERROR_BODY);
    if !(status.is_client_error() || status.is_server_error()) || !json || !small {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut error))
            if error.get("success") == Some(&serde_json::Value::Bool(false)) =>
        {
            error.insert("request_id".to_owned(), id.into());
            serde_json::to_vec(&error).map_or(bytes, Into::into)
        }
        _ => bytes,
    };
    Ok(ServiceResponse::new(
        req,
        head.set_body(BoxBody::new(bytes)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids() {
        for id in [
            "a",
            "req-1",
            "3f2c1d9e-8b7a-4c5d-9e0f-1a2b3c4d5e6f",
            "a.b_c:d-E9",
        ] {
            assert!(is_sane(id), "{id}");
        }
        let long = "x".repeat(129);
        for id in ["", "a b", "a/b", "ä", "a\"b", "<script>", long.as_str()] {
            assert!(!is_sane(id), "{id:?}");
        }
        assert!(is_sane(&"x".repeat(128)));
    }
}

//! The JSON error shape on every error the service produces, whoever made it (issue 11): the
//! routes' own errors are [`ApiError`]s already, but Swagger UI's 404s and 405s under `/docs/`,
//! actix's default 405s and CORS refusals come with an empty or plain-text body. This middleware
//! gives such answers the body of the matching error-table row, keeping their status, their
//! headers (`Allow`, CORS, …) and the error attached to them for the access log. The security
//! headers and `X-Request-Id` are added by the layers outside it.
//!
//! Not reachable from here: answers actix-http writes before the application sees a request
//! (malformed request line → 400, headers over the limit → 431); `docs/api.md` says so.

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

use crate::error::{ApiError, ErrorKind};
use crate::extract::fallback_lang;

/// The error-table row answered for a bare `status`, if any (other statuses pass unchanged).
fn kind_of(status: StatusCode) -> Option<ErrorKind> {
    Some(match status {
        StatusCode::BAD_REQUEST => ErrorKind::BadRequest,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorKind::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorKind::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::UnsupportedMediaType,
        StatusCode::INTERNAL_SERVER_ERROR => ErrorKind::Internal,
        StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Unavailable,
        _ => return None,
    })
}

/// Gives an error answer without a JSON body the JSON error shape of its status.
pub async fn middleware<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?.map_into_boxed_body();
    // JSON errors are shaped already; HTML pages (issue 10's link pages) answer errors as pages
    // on purpose, for the person who followed the link.
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    let Some(kind) = kind_of(res.status()).filter(|_| !json) else {
        return Ok(res);
    };
    let error = ApiError::new(kind, fallback_lang(res.request()));
    let body = serde_json::to_vec(&error.body()).unwrap_or_default();
    Ok(res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        head.headers.remove(header::CONTENT_ENCODING);
        BoxBody::new(body)
    }))
}

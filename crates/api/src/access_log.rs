//! The request span (one access-log line when it closes). tracing-actix-web's default span takes
//! the client IP from `Forwarded`/`X-Forwarded-For` whoever sent them, so any client could write
//! its own address into our logs; this one records the address the limits use
//! ([`crate::extract::client_ip`], `TRUSTED_PROXIES` only) and leaves out the other
//! proxy-controlled fields (`X-Forwarded-Host`, `-Proto`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::{Error, web};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::client_ip;

/// Root span builder for `TracingLogger::<AccessLog>::new()`.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog;

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let trusted = request
            .app_data::<web::Data<ApiState>>()
            .map(|s| s.trusted_proxies.as_slice())
            .unwrap_or(&[]);
        let ip = client_ip(request.request(), trusted)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let request_id = crate::request_id::assign(request);
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.uri().path_and_query().map_or("", |p| p.as_str()),
            http.host = %header(header::HOST),
            http.client_ip = %ip,
            http.user_agent = %header(header::USER_AGENT),
            http.status_code = Empty,
            otel.status_code = Empty,
            request_id = %request_id,
            exception.message = Empty,
            exception.details = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let error = match outcome {
            Ok(res) => res.response().error().map(|e| (e, res.status())),
            Err(e) => Some((e, e.as_response_error().status_code())),
        };
        if let Some((error, status)) = error {
            span.in_scope(|| log_error(error, status));
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// One line for an error answer: client errors (4xx) at DEBUG, they are the client's; server
/// errors at ERROR with what they wrap, unless an [`ApiError`] logged its cause already.
fn log_error(error: &Error, status: StatusCode) {
    if status.is_server_error() {
        if error.as_error::<ApiError>().is_none() {
            // actix's errors are not `std::error::Error`s; their `Debug` shows what they wrap.
            tracing::error!(%status, %error, cause = ?error, "server error");
        }
    } else {
        tracing::debug!(%status, %error, "client error");
    }
}

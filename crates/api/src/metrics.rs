//! Prometheus metrics (issue 11): the recorder, the HTTP middleware that counts and times every
//! request, the counters of codes sent, verifications and rate-limit refusals, and
//! [`Exporter`], which renders the text exposition format for `GET /metrics`.
//!
//! Recording goes through the `metrics` facade (like `tracing` for numbers): without an
//! installed recorder every call is a no-op. The figures only known elsewhere (pools, outbox,
//! SMS guards) are read at scrape time by the collector the binary hands to [`Exporter::new`].
//! Every metric is documented in `docs/operations.md` ("Metrics"). Labels never carry a phone
//! number, token or client address.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use marque_markets::Market;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{ApiError, ErrorKind};

/// Bucket bounds of the latency histograms (`*_seconds`), in seconds: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `Content-Type` of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the process-wide Prometheus recorder on first call; later calls (e.g. several
/// services in one test process) return the same handle.
///
/// Errors: the recorder cannot be built, or another recorder is installed already.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let mut slot = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)?
        .install_recorder()?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// Renders the metrics: runs the collector (which sets the gauges read at scrape time), then
/// the recorder's text. Cheap to clone.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    collect: Arc<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter of `handle`'s metrics; `collect` runs before each rendering (it may block:
    /// [`Exporter::render`] is called on the blocking pool).
    pub fn new(handle: PrometheusHandle, collect: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self { handle, collect }
    }

    /// The Prometheus text exposition of every metric (blocking: the collector may query the
    /// databases).
    pub fn render(&self) -> String {
        (self.collect)();
        self.handle.render()
    }

    /// Drains the histograms' sample buffers into their buckets; the binary calls it
    /// periodically so memory stays bounded when nobody scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// `GET /metrics`: the text exposition (not in the OpenAPI document: it is for the scraper, not
/// API clients).
pub async fn endpoint(exporter: actix_web::web::Data<Exporter>) -> actix_web::HttpResponse {
    let e = exporter.get_ref().clone();
    match actix_web::web::block(move || e.render()).await {
        Ok(text) => actix_web::HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            actix_web::ResponseError::error_response(&ApiError::new(
                ErrorKind::Internal,
                marque_markets::Language::En,
            ))
        }
    }
}

/// The `method` label: the standard methods by name, anything else `other` (a client must not
/// be able to make new series at will).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request: `marque_http_requests_total` and
/// `marque_http_request_duration_seconds` by method, route pattern (`unmatched` for requests
/// no route took) and status.
pub async fn middleware<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let start = Instant::now();
    let method = method_label(req.method());
    let outcome = next.call(req).await;
    let (status, route) = match &outcome {
        Ok(res) => (
            res.status(),
            res.request().match_pattern().unwrap_or_default(),
        ),
        Err(e) => (e.as_response_error().status_code(), String::new()),
    };
    let route = if route.is_empty() {
        "unmatched".to_owned()
    } else {
        route
    };
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("marque_http_requests_total", &labels).increment(1);
    metrics::histogram!("marque_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    outcome
}

/// The `result` label of a refused call: the error's stable code.
fn result_of<T>(outcome: &Result<T, ApiError>, ok: &'static str) -> &'static str {
    match outcome {
        Ok(_) => ok,
        Err(e) => e.code(),
    }
}

/// Counts a send-code answer: `marque_codes_sent_total{market, channel, result}` (`result` is
/// `sent` or the error code), and a refusal by a limit.
pub(crate) fn code_sent<T>(market: Market, channel: &'static str, outcome: &Result<T, ApiError>) {
    metrics::counter!(
        "marque_codes_sent_total",
        "market" => market.code(),
        "channel" => channel,
        "result" => result_of(outcome, "sent"),
    )
    .increment(1);
    refused("send", outcome);
}

/// Counts a verify-code answer: `marque_verifications_total{market, result}` (`result` is
/// `success` or the error code), and a refusal by a limit.
pub(crate) fn verified<T>(market: Market, outcome: &Result<T, ApiError>) {
    metrics::counter!(
        "marque_verifications_total",
        "market" => market.code(),
        "result" => result_of(outcome, "success"),
    )
    .increment(1);
    refused("verify", outcome);
}

/// `marque_rate_limit_refusals_total{kind}` for a refusal by a limit: `send` (a number's or
/// client IP's send buckets), `verify` (a client IP's verify buckets), `sms_budget` (a daily
/// SMS budget or a prefix's hourly limit), `phone_lock` (consecutive wrong codes).
fn refused<T>(endpoint: &'static str, outcome: &Result<T, ApiError>) {
    let kind = match outcome.as_ref().map_err(|e| &e.kind) {
        Err(ErrorKind::RateLimited(_)) => endpoint,
        Err(ErrorKind::SmsBudgetExceeded(_)) => "sms_budget",
        Err(ErrorKind::PhoneLocked(_)) => "phone_lock",
        _ => return,
    };
    metrics::counter!("marque_rate_limit_refusals_total", "kind" => kind).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}

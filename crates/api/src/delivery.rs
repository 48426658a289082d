//! Code delivery as clients and providers see it: the status of a challenge's message, and the
//! providers' signed delivery-report callbacks.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use marque_domain::{CallbackError, CallbackRequest, DeliveryCallback, DeliveryTracker};
use marque_markets::Language;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::dto::ChallengeStatusResponse;
use crate::error::{ApiError, ErrorKind};
use crate::extract::fallback_lang;
use crate::routes::run_blocking;

/// What the delivery routes need: the tracker over the markets' outboxes, the providers'
/// callback checkers, and the public base URL the providers were given (what they sign).
#[derive(Clone, Default)]
pub struct DeliveryState {
    /// Status lookups and report application; `None` answers 404 on these routes.
    pub tracker: Option<Arc<DeliveryTracker>>,
    /// One checker per provider that reports delivery (`twilio`, `telegram`).
    pub callbacks: Vec<Arc<dyn DeliveryCallback>>,
    /// `PUBLIC_BASE_URL` (`https://auth.shop.example`), without a trailing slash.
    pub public_base_url: Option<String>,
}

impl std::fmt::Debug for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryState")
            .field(
                "callbacks",
                &self
                    .callbacks
                    .iter()
                    .map(|c| c.provider())
                    .collect::<Vec<_>>(),
            )
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

/// The acknowledgement of a callback.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackAck {
    /// Always `true`.
    pub success: bool,
    /// Reports that named a message of ours.
    pub applied: usize,
}

/// Where a code's delivery stands: the channel in use, `queued` / `sent` / `delivered` /
/// `failed`, and `fallback_from` when it went out on another channel than the first ("we sent
/// it by SMS instead"). No token: the `challenge_id` from send-code is the secret. Unknown ids
/// answer 404 `not_found`.
#[utoipa::path(
    get, path = "/api/v1/auth/challenges/{challenge_id}", tag = "auth",
    params(("challenge_id" = String, Path, description = "The `challenge_id` of send-code")),
    responses(
        (status = 200, description = "The delivery of the challenge's code", body = ChallengeStatusResponse),
        (status = 404, description = "`not_found`: no such challenge"),
        (status = 503, description = "`service_unavailable`: a market database is down"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn challenge_status(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lang = fallback_lang(&req);
    let id = path.into_inner();
    let Some(tracker) = state.delivery.tracker.clone() else {
        return Err(ApiError::new(ErrorKind::NotFound, lang));
    };
    // Ours are 22 base64url characters; anything longer is not one of ours.
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::new(ErrorKind::NotFound, lang));
    }
    let found = run_blocking(lang, move || {
        tracker
            .challenge(&id)
            .map_err(|e| ApiError::caused_by(ErrorKind::Unavailable, lang, e))
    })
    .await?;
    let d = found.ok_or_else(|| ApiError::new(ErrorKind::NotFound, lang))?;
    Ok(HttpResponse::Ok().json(ChallengeStatusResponse {
        channel: d.channel.as_str().to_owned(),
        status: d.status.as_str().to_owned(),
        fallback_from: d.fallback_from.map(|c| c.as_str().to_owned()),
    }))
}

/// Twilio's message status callback (`StatusCallback`), form-encoded and signed with
/// `X-Twilio-Signature` (HMAC-SHA1 of the public URL and the sorted fields, keyed by the auth
/// token). A wrong or missing signature → 401 `invalid_signature` and nothing changes.
#[utoipa::path(
    post, path = "/api/v1/delivery/twilio/status", tag = "delivery",
    params(("X-Twilio-Signature" = String, Header, description = "Twilio's request signature")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio's status fields (`MessageSid`, `MessageStatus`, `ErrorCode`…)"),
    responses(
        (status = 200, description = "Applied", body = CallbackAck),
        (status = 400, description = "`invalid_callback`"),
        (status = 401, description = "`invalid_signature`"),
        (status = 404, description = "`not_found`: Twilio is not configured"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn twilio_status(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    callback("twilio", &req, &state, &body).await
}

/// The Telegram Gateway's delivery report (`callback_url`), signed with `X-Request-Timestamp`
/// and `X-Request-Signature` as the Gateway API documents. A wrong, missing or stale signature →
/// 401 `invalid_signature` and nothing changes.
#[utoipa::path(
    post, path = "/api/v1/delivery/telegram/report", tag = "delivery",
    params(
        ("X-Request-Timestamp" = String, Header, description = "Unix time of the report"),
        ("X-Request-Signature" = String, Header, description = "The Gateway's signature"),
    ),
    request_body(content = String, content_type = "application/json", description = "A Gateway `RequestStatus` object"),
    responses(
        (status = 200, description = "Applied", body = CallbackAck),
        (status = 400, description = "`invalid_callback`"),
        (status = 401, description = "`invalid_signature`"),
        (status = 404, description = "`not_found`: the Telegram Gateway is not configured"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn telegram_report(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    callback("telegram", &req, &state, &body).await
}

/// Checks the signature of `provider`'s callback on the raw bytes, then applies its reports.
async fn callback(
    provider: &str,
    req: &HttpRequest,
    state: &ApiState,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let lang = Language::En;
    let (Some(checker), Some(tracker)) = (
        state
            .delivery
            .callbacks
            .iter()
            .find(|c| c.provider() == provider),
        state.delivery.tracker.clone(),
    ) else {
        return Err(ApiError::new(ErrorKind::NotFound, lang));
    };
    let url = public_url(req, state.delivery.public_base_url.as_deref());
    let headers = raw_headers(req);
    let request = CallbackRequest {
        url: &url,
        headers: &headers,
        body,
    };
    let reports = checker.verify(&request).map_err(|e| {
        tracing::info!(provider, error = %e, "delivery callback refused");
        refused(e, lang)
    })?;
    let provider_name = checker.provider();
    let applied = run_blocking(lang, move || {
        tracker
            .apply(provider_name, &reports)
            .map_err(|e| ApiError::caused_by(ErrorKind::Unavailable, lang, e))
    })
    .await?;
    Ok(HttpResponse::Ok().json(CallbackAck {
        success: true,
        applied,
    }))
}

/// A request's headers as a provider callback check reads them: lower-case names, values that
/// are not visible ASCII left out.
pub(crate) fn raw_headers(req: &HttpRequest) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// A refused callback or webhook: 401 `invalid_signature` (nothing was read) or 400
/// `invalid_callback` (signed, but not understood).
pub(crate) fn refused(e: CallbackError, lang: Language) -> ApiError {
    match e {
        CallbackError::BadSignature => ApiError::caused_by(ErrorKind::InvalidSignature, lang, e),
        CallbackError::Malformed(_) => ApiError::caused_by(ErrorKind::InvalidCallback, lang, e),
    }
}

/// The URL the provider called, as it knows it: `PUBLIC_BASE_URL` + path + query; without a
/// configured base, the scheme and host this request came in on.
fn public_url(req: &HttpRequest, base: Option<&str>) -> String {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    match base {
        Some(base) => format!("{}{path_and_query}", base.trim_end_matches('/')),
        None => {
            let info = req.connection_info();
            format!("{}://{}{path_and_query}", info.scheme(), info.host())
        }
    }
}

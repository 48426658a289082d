//! Messenger login (issue 9): start and poll a WhatsApp or Telegram login, the providers'
//! webhooks, the Telegram Login Widget and the account's Telegram link.

use actix_web::{HttpRequest, HttpResponse, web};
use marque_domain::{CallbackRequest, Channel, MessengerService, PollStatus, WebhookError};
use marque_markets::{Language, Market, MessageKey, text};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::error::{ApiError, ErrorKind};
use crate::extract::{Authenticated, JsonBody, client_info, fallback_lang, header_market};
use crate::routes::run_blocking;

/// Name of the header carrying the poll secret.
pub const POLL_SECRET_HEADER: &str = "X-Poll-Secret";

/// `POST /api/v1/auth/messenger/start` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessengerStartRequest {
    /// `whatsapp` or `telegram`.
    #[schema(example = "telegram")]
    pub channel: String,
}

/// A started messenger login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessengerStartResponse {
    /// The login's id (128 random bits, base64url): poll `GET /api/v1/auth/messenger/{login_id}`.
    pub login_id: String,
    /// The secret to send as `X-Poll-Secret` when polling (256 random bits, base64url); keep it
    /// in memory only.
    pub poll_secret: String,
    /// Open it: `https://wa.me/<number>?text=<prefix>%20<nonce>` or
    /// `https://t.me/<bot>?start=<nonce>`.
    #[schema(example = "https://t.me/marque_bot?start=q2VvH1c3T0uQ2m9b1a8XkA")]
    pub deep_link: String,
    /// Seconds until the login expires (`MESSENGER_LOGIN_TTL_SECONDS`, default 300).
    #[schema(example = 300)]
    pub expires_in: i64,
}

/// A poll's answer: `status` is `pending`, `completed` (once, with the tokens as verify-code
/// gives them), `consumed`, `expired`, or `failed` (with `error`: `phone_locked`,
/// `account_disabled`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessengerPollResponse {
    /// `pending`, `completed`, `consumed`, `expired` or `failed`.
    #[schema(example = "pending")]
    pub status: String,
    /// Why the login failed (`failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// JWT access token (`completed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Always `bearer` (`completed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Seconds until the access token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// The user's id within the market.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The user's market (the number's).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub market: Option<Market>,
    /// Whether this login created the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_new_user: Option<bool>,
    /// Opaque refresh token (`mrt_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<i64>,
}

impl MessengerPollResponse {
    fn status(status: &str) -> Self {
        Self {
            status: status.to_owned(),
            error: None,
            access_token: None,
            token_type: None,
            expires_in: None,
            user_id: None,
            market: None,
            is_new_user: None,
            refresh_token: None,
            refresh_expires_in: None,
        }
    }
}

/// The WhatsApp subscription handshake's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HubQuery {
    /// Must be `subscribe`.
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    /// Must equal `WHATSAPP_VERIFY_TOKEN`.
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back as plain text.
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// The acknowledgement of a webhook.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookAck {
    /// Always `true`.
    pub success: bool,
    /// Events acted on (replays and ignored updates are not counted).
    pub handled: usize,
}

/// The caller's Telegram link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TelegramLinkResponse {
    /// Whether a Telegram account is linked.
    pub linked: bool,
    /// The linked Telegram user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_user_id: Option<i64>,
    /// When it was linked (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_at: Option<String>,
}

fn service(state: &ApiState, lang: Language) -> Result<std::sync::Arc<MessengerService>, ApiError> {
    state
        .messenger
        .clone()
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, lang))
}

/// Starts a sign-in by WhatsApp message or Telegram bot: open `deep_link`, then poll
/// `GET /api/v1/auth/messenger/{login_id}` with `X-Poll-Secret`. Counts against the per-IP send
/// limit. A channel whose settings are not set answers 422 `channel_not_available`.
#[utoipa::path(
    post, path = "/api/v1/auth/messenger/start", tag = "auth",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`: the market whose database keeps the pending login and whose language the link uses (default `DEFAULT_MARKET`)")),
    request_body = MessengerStartRequest,
    responses(
        (status = 200, description = "Started", body = MessengerStartResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`"),
        (status = 422, description = "`validation_error` (unknown channel), `channel_not_available`"),
        (status = 429, description = "`rate_limited`"),
        (status = 503, description = "`service_unavailable`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn messenger_start(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<MessengerStartRequest>,
) -> Result<HttpResponse, ApiError> {
    let market = header_market(&req)?;
    let lang = market.unwrap_or(state.default_market).language();
    let channel = match Channel::parse(&body.0.channel) {
        Some(c @ (Channel::WhatsApp | Channel::Telegram)) => c,
        _ => {
            return Err(ApiError::validation(
                "channel",
                "must be whatsapp or telegram",
                lang,
            ));
        }
    };
    let Some(messenger) = state.messenger.clone() else {
        return Err(ApiError::new(ErrorKind::ChannelNotAvailable, lang));
    };
    let client = client_info(&req);
    let started = run_blocking(lang, move || {
        messenger
            .start(channel, market, &client)
            .map_err(|e| ApiError::from_auth(e, lang))
    })
    .await?;
    Ok(HttpResponse::Ok().json(MessengerStartResponse {
        login_id: started.login_id,
        poll_secret: started.poll_secret,
        deep_link: started.deep_link,
        expires_in: started.expires_in,
    }))
}

/// The state of a messenger login. The tokens come exactly once: the first poll after the
/// messenger proved the number gets `completed` with them, later polls `consumed`. Without the
/// right `X-Poll-Secret` the login does not exist (404).
#[utoipa::path(
    get, path = "/api/v1/auth/messenger/{login_id}", tag = "auth",
    params(
        ("login_id" = String, Path, description = "The `login_id` of start"),
        ("X-Poll-Secret" = String, Header, description = "The `poll_secret` of start"),
    ),
    responses(
        (status = 200, description = "The login's state", body = MessengerPollResponse),
        (status = 404, description = "`not_found`: no such login, or the wrong secret"),
        (status = 503, description = "`service_unavailable`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn messenger_poll(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lang = fallback_lang(&req);
    let messenger = service(&state, lang)?;
    let secret = req
        .headers()
        .get(POLL_SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, lang))?;
    let id = path.into_inner();
    let status = run_blocking(lang, move || {
        messenger
            .poll(&id, &secret)
            .map_err(|e| ApiError::from_auth(e, lang))
    })
    .await?;
    let body = match status {
        PollStatus::Pending => MessengerPollResponse::status("pending"),
        PollStatus::Consumed => MessengerPollResponse::status("consumed"),
        PollStatus::Expired => MessengerPollResponse::status("expired"),
        PollStatus::Failed(e) => MessengerPollResponse {
            error: Some(e),
            ..MessengerPollResponse::status("failed")
        },
        PollStatus::Completed(t) => MessengerPollResponse {
            access_token: Some(t.access_token),
            token_type: Some("bearer".to_owned()),
            expires_in: Some(t.expires_in),
            user_id: Some(t.user_id.0),
            market: Some(t.market),
            is_new_user: Some(t.is_new_user),
            refresh_token: Some(t.refresh_token),
            refresh_expires_in: Some(t.refresh_expires_in),
            ..MessengerPollResponse::status("completed")
        },
    };
    Ok(HttpResponse::Ok().json(body))
}

/// The WhatsApp Cloud API subscription handshake: `hub.mode=subscribe` and `hub.verify_token`
/// equal to `WHATSAPP_VERIFY_TOKEN` → 200 with `hub.challenge` as plain text; otherwise 403
/// `webhook_verification_failed`. 404 when WhatsApp login is not configured.
#[utoipa::path(
    get, path = "/api/v1/whatsapp/webhook", tag = "delivery",
    params(HubQuery),
    responses(
        (status = 200, description = "`hub.challenge`", body = String, content_type = "text/plain"),
        (status = 403, description = "`webhook_verification_failed`"),
        (status = 404, description = "`not_found`: WhatsApp login is not configured"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn whatsapp_handshake(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let lang = Language::En;
    let messenger = service(&state, lang)?;
    let hook = messenger
        .webhook(Channel::WhatsApp)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, lang))?;
    let query = web::Query::<HubQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::new(ErrorKind::WebhookVerificationFailed, lang))?;
    let ok = query.mode.as_deref() == Some("subscribe")
        && query
            .verify_token
            .as_deref()
            .is_some_and(|t| hook.verify_token_matches(t));
    match (ok, query.challenge.as_deref()) {
        (true, Some(challenge)) if challenge.len() <= 256 => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(challenge.to_owned())),
        _ => Err(ApiError::new(ErrorKind::WebhookVerificationFailed, lang)),
    }
}

/// WhatsApp Cloud API webhook (messages and statuses). `X-Hub-Signature-256` (HMAC-SHA256 of
/// the raw body with `WHATSAPP_APP_SECRET`) is checked before anything is parsed: wrong or
/// missing → 401 `invalid_signature`, nothing happens. A text carrying a live nonce completes
/// that login for the sender's number; other updates are acknowledged and ignored; a replayed
/// message id does nothing.
#[utoipa::path(
    post, path = "/api/v1/whatsapp/webhook", tag = "delivery",
    params(("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the body>`")),
    request_body(content = String, content_type = "application/json", description = "A WhatsApp Business Account webhook (`object`, `entry[].changes[].value`)"),
    responses(
        (status = 200, description = "Acknowledged", body = WebhookAck),
        (status = 400, description = "`invalid_callback`"),
        (status = 401, description = "`invalid_signature`"),
        (status = 404, description = "`not_found`: WhatsApp login is not configured"),
        (status = 503, description = "`service_unavailable`: retried by Meta"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn whatsapp_webhook(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    webhook(Channel::WhatsApp, &req, &state, body).await
}

/// Telegram Bot API webhook (`setWebhook` with `secret_token`). `X-Telegram-Bot-Api-Secret-Token`
/// must equal `TELEGRAM_WEBHOOK_SECRET` (else 401 `invalid_signature`). `/start <nonce>` signs a
/// linked Telegram user in at once, else the bot asks for the contact; a contact of the sender
/// completes the login and links the Telegram account; someone else's contact is refused.
#[utoipa::path(
    post, path = "/api/v1/telegram/webhook", tag = "delivery",
    params(("X-Telegram-Bot-Api-Secret-Token" = String, Header, description = "The webhook's `secret_token`")),
    request_body(content = String, content_type = "application/json", description = "A Bot API `Update`"),
    responses(
        (status = 200, description = "Acknowledged", body = WebhookAck),
        (status = 400, description = "`invalid_callback`"),
        (status = 401, description = "`invalid_signature`"),
        (status = 404, description = "`not_found`: Telegram login is not configured"),
        (status = 503, description = "`service_unavailable`: retried by Telegram"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn telegram_webhook(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    webhook(Channel::Telegram, &req, &state, body).await
}

async fn webhook(
    channel: Channel,
    req: &HttpRequest,
    state: &ApiState,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let lang = Language::En;
    let messenger = service(state, lang)?;
    if messenger.webhook(channel).is_none() {
        return Err(ApiError::new(ErrorKind::NotFound, lang));
    }
    let headers = crate::delivery::raw_headers(req);
    let url = req.uri().to_string();
    let handled = run_blocking(lang, move || {
        let request = CallbackRequest {
            url: &url,
            headers: &headers,
            body: &body,
        };
        messenger.handle(channel, &request).map_err(|e| match e {
            WebhookError::NotConfigured => ApiError::new(ErrorKind::NotFound, lang),
            WebhookError::Refused(e) => {
                tracing::info!(%channel, error = %e, "messenger webhook refused");
                crate::delivery::refused(e, lang)
            }
            WebhookError::Failed(e) => ApiError::from_auth(e, lang),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(WebhookAck {
        success: true,
        handled,
    }))
}

/// Signs in with the Telegram Login Widget: send every field the widget gave (`id`,
/// `first_name`, `last_name`, `username`, `photo_url`, `auth_date`, `hash`). The hash is checked
/// with the bot token and `auth_date` must be at most a day old (else 401
/// `invalid_telegram_auth`); a Telegram user linked to an account gets tokens as verify-code
/// gives them, an unlinked one 404 `telegram_not_linked`.
#[utoipa::path(
    post, path = "/api/v1/auth/telegram/widget", tag = "auth",
    request_body(content = Object, description = "The Login Widget's fields, values as sent (numbers or strings)"),
    responses(
        (status = 200, description = "Signed in", body = crate::dto::VerifyCodeResponse),
        (status = 400, description = "`invalid_json`"),
        (status = 401, description = "`invalid_telegram_auth`"),
        (status = 403, description = "`account_disabled`"),
        (status = 404, description = "`telegram_not_linked`, or `not_found` when Telegram login is not configured"),
        (status = 429, description = "`phone_locked`"),
        (status = 503, description = "`service_unavailable`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn telegram_widget(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let lang = fallback_lang(&req);
    let messenger = service(&state, lang)?;
    if !messenger.widget_available() {
        return Err(ApiError::new(ErrorKind::NotFound, lang));
    }
    let fields: Vec<(String, String)> = body
        .0
        .into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k, v))
        })
        .collect();
    let client = client_info(&req);
    let login = run_blocking(lang, move || {
        messenger
            .widget_sign_in(&fields, &client)
            .map_err(|e| ApiError::from_auth(e, lang))
    })
    .await?;
    Ok(HttpResponse::Ok().json(crate::dto::VerifyCodeResponse::signed_in(login)))
}

/// The signed-in user's Telegram link (made when they shared their contact with the bot).
#[utoipa::path(
    get, path = "/api/v1/auth/telegram/link", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The link", body = TelegramLinkResponse),
        (status = 401, description = "`invalid_token`"),
        (status = 404, description = "`not_found`: Telegram login is not configured"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn telegram_link(
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let messenger = service(&state, lang)?;
    let link = run_blocking(lang, move || {
        messenger
            .telegram_link(&caller)
            .map_err(|e| ApiError::from_auth(e, lang))
    })
    .await?;
    Ok(HttpResponse::Ok().json(TelegramLinkResponse {
        linked: link.is_some(),
        telegram_user_id: link.map(|l| l.telegram_user_id),
        linked_at: link.map(|l| {
            l.linked_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }),
    }))
}

/// Removes the signed-in user's Telegram link: `/start` and the widget no longer sign them in
/// until they share their contact again. 404 `not_found` when there is none.
#[utoipa::path(
    delete, path = "/api/v1/auth/telegram/link", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed", body = crate::dto::SuccessResponse),
        (status = 401, description = "`invalid_token`"),
        (status = 404, description = "`not_found`: no link"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn telegram_unlink(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let messenger = service(&state, lang)?;
    let client = client_info(&req);
    run_blocking(lang, move || {
        messenger
            .unlink_telegram(&caller, &client)
            .map_err(|e| ApiError::from_auth(e, lang))
    })
    .await?;
    Ok(HttpResponse::Ok().json(crate::dto::SuccessResponse {
        success: true,
        message: text(MessageKey::TelegramUnlinked, lang).to_owned(),
    }))
}

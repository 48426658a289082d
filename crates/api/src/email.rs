//! Email-and-password accounts (issue 10): register, verify, sign in (JSON and the OAuth2
//! password grant), resend, forgot and reset (with its HTML form), change, link.
//!
//! Market: from the bearer token where there is one, else `X-Market`. Registration needs
//! `X-Market` (400 `market_required`). Sign-in without it looks the address up in every market
//! and needs `X-Market` only when it exists in more than one (400 `market_required`). Resend and
//! forgot without it act in every market that has the address (one answer whatever happens).
//!
//! Password hashing is slow on purpose (Argon2id, ~20–50 ms of CPU and 19 MiB each): a request
//! that hashes first takes one of [`EmailState::hash_permits`] (a Tokio semaphore sized by
//! `PASSWORD_HASH_CONCURRENCY`) *before* its work goes to actix's blocking pool, which also runs
//! every database call. A flood of sign-ins waits in async land for a permit; it cannot fill the
//! blocking pool and starve the database calls of other requests.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use marque_domain::{AuthError, EmailAddress, EmailAuthService, FullName};
use marque_markets::{Language, Market, MessageKey, text};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::ApiState;
use crate::dto::{SuccessResponse, VerifyCodeResponse};
use crate::error::{ApiError, ErrorKind, password_message};
use crate::extract::{Authenticated, JsonBody, client_info, fallback_lang, header_market};
use crate::pages;
use crate::routes::blocking;

/// The email service and the bound on concurrent password hashes.
#[derive(Debug, Clone)]
pub struct EmailState {
    /// The service.
    pub service: Arc<EmailAuthService>,
    /// Permits for requests that hash a password (`PASSWORD_HASH_CONCURRENCY`).
    pub hash_permits: Arc<Semaphore>,
}

impl EmailState {
    /// The service with `concurrency` concurrent password hashes (at least 1).
    pub fn new(service: Arc<EmailAuthService>, concurrency: usize) -> Self {
        Self {
            service,
            hash_permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }
}

/// `POST /api/v1/auth/email/register` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// The address (at most 254 characters).
    #[schema(example = "ann@example.org")]
    pub email: String,
    /// 12–128 characters after NFKC normalisation, not easy to guess (zxcvbn score ≥ 3), not
    /// containing the address's name. No composition rules.
    #[schema(example = "violet tractor nebula spoon")]
    pub password: String,
    /// Display name (1–100 characters).
    pub full_name: Option<String>,
}

/// `POST /api/v1/auth/email/login` and `/link` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailPasswordRequest {
    /// The address.
    #[schema(example = "ann@example.org")]
    pub email: String,
    /// The password.
    #[schema(example = "violet tractor nebula spoon")]
    pub password: String,
}

/// `POST /api/v1/auth/email/resend-verification` and `/forgot-password` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailRequest {
    /// The address.
    #[schema(example = "ann@example.org")]
    pub email: String,
}

/// `POST /api/v1/auth/email/change-password` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// The password in use.
    pub current_password: String,
    /// The new password (same policy as at registration).
    pub new_password: String,
}

/// `?token=` of the link pages.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    /// The link token from the email.
    pub token: Option<String>,
}

/// `POST /api/v1/auth/token` form (RFC 6749 §4.3.2, `application/x-www-form-urlencoded`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// Must be `password`.
    #[schema(example = "password")]
    pub grant_type: String,
    /// The email address.
    #[schema(example = "ann@example.org")]
    pub username: String,
    /// The password.
    pub password: String,
    /// Ignored (no scopes).
    pub scope: Option<String>,
}

/// `POST /api/v1/auth/email/reset-password` form, as the reset page posts it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetForm {
    /// The link token.
    pub token: String,
    /// The page's CSRF token.
    pub csrf_token: String,
    /// The new password.
    pub new_password: String,
}

/// RFC 6749 §5.2 error body of the token endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`, `server_error`,
    /// `temporarily_unavailable`.
    #[schema(example = "invalid_grant")]
    pub error: &'static str,
    /// Human text (English).
    #[schema(example = "Invalid email or password")]
    pub error_description: String,
}

/// The email state, or 404 when email accounts are off.
fn email_state(state: &ApiState, lang: Language) -> Result<EmailState, ApiError> {
    state
        .email
        .clone()
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, lang))
}

/// An address at the edge: 422 `invalid_email` (with `field: email`) when malformed.
fn parse_email(input: &str, lang: Language) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(input).map_err(|e| {
        tracing::debug!(reason = %e, "email refused");
        ApiError::new(ErrorKind::InvalidEmail, lang)
    })
}

/// Runs a call that hashes a password: takes a hash permit first (async), then the blocking
/// pool.
async fn hashing<T: Send + 'static>(
    email: &EmailState,
    lang: Language,
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = email
        .hash_permits
        .acquire()
        .await
        .map_err(|e| ApiError::caused_by(ErrorKind::Internal, lang, e))?;
    blocking(lang, f).await
}

/// The language of the pages of a link: its token's market (`kg_…`, `us_…`), else the
/// `X-Market` header's, else English.
fn link_lang(req: &HttpRequest, token: &str) -> Language {
    EmailAuthService::token_market(token).map_or_else(|| fallback_lang(req), Market::language)
}

/// The page of a link that is invalid, used or expired (400), or the error itself when it is
/// another (a market down: the JSON error of the API).
fn link_refused(e: ApiError, lang: Language) -> Result<HttpResponse, ApiError> {
    if e.kind == ErrorKind::InvalidEmailLink {
        Ok(pages::message(
            StatusCode::BAD_REQUEST,
            lang,
            MessageKey::EmailLinkInvalid,
        ))
    } else {
        Err(e)
    }
}

fn success(key: MessageKey, lang: Language) -> SuccessResponse {
    SuccessResponse {
        success: true,
        message: text(key, lang).to_owned(),
    }
}

/// Creates an email account in the `X-Market` market and sends a verification link (valid 24
/// hours). An address that already has an account gets a "you already have an account" email
/// instead, and the same answer: status and body do not tell whether the address was known.
#[utoipa::path(
    post, path = "/api/v1/auth/email/register", tag = "email",
    params(("X-Market" = String, Header, description = "`kg` or `us`: the market of the new account (required)")),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Accepted: check your email (the same for known and new addresses)", body = SuccessResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`, `market_required` (no X-Market header)"),
        (status = 422, description = "`invalid_email`, `validation_error` (full_name), `password_too_short`, `password_too_long`, `password_contains_email`, `password_too_weak`"),
        (status = 429, description = "`rate_limited`: mail requests per client IP"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let market = header_market(&req)?
        .ok_or_else(|| ApiError::new(ErrorKind::MarketRequired, Language::En))?;
    let lang = market.language();
    let email_state = email_state(&state, lang)?;
    let email = parse_email(&body.0.email, lang)?;
    let full_name = body
        .0
        .full_name
        .as_deref()
        .map(FullName::parse)
        .transpose()
        .map_err(|e| ApiError::validation(e.field, e.reason, lang))?;
    let client = client_info(&req);
    let service = email_state.service.clone();
    let password = body.0.password;
    hashing(&email_state, lang, move || {
        service.register(market, &email, &password, full_name, &client)
    })
    .await?;
    Ok(HttpResponse::Created().json(success(MessageKey::EmailRegistered, lang)))
}

/// The verification link of the email: an HTML page in the market's language saying the address
/// is verified (200), or that the link is invalid or expired (400). Links are single use.
#[utoipa::path(
    get, path = "/api/v1/auth/email/verify", tag = "email",
    params(TokenQuery),
    responses(
        (status = 200, description = "HTML: the address is verified", content_type = "text/html", body = String),
        (status = 400, description = "HTML: the link is invalid, used or expired", content_type = "text/html", body = String),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify_email(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = query.into_inner().token.unwrap_or_default();
    let lang = link_lang(&req, &token);
    let email_state = email_state(&state, lang)?;
    let client = client_info(&req);
    let service = email_state.service.clone();
    let confirmed = blocking(lang, move || service.confirm_email(&token, &client)).await;
    match confirmed {
        Ok(market) => Ok(pages::message(
            StatusCode::OK,
            market.language(),
            MessageKey::EmailVerified,
        )),
        Err(e) => link_refused(e, lang),
    }
}

/// Signs in with an email address and password: tokens in the same shape as verify-code.
///
/// An unknown address and a wrong password answer the same 401 `invalid_credentials`, in the same
/// time (a dummy hash is verified). Wrong passwords are limited per address (delays from the 6th
/// in a row, doubling up to 15 minutes; a 24-hour lock at 30) and all attempts per client IP:
/// 429 `rate_limited` with `Retry-After`. An address not verified yet answers 403
/// `email_not_verified` (only to the right password).
#[utoipa::path(
    post, path = "/api/v1/auth/email/login", tag = "email",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`; needed only when the address exists in several markets")),
    request_body = EmailPasswordRequest,
    responses(
        (status = 200, description = "Signed in", body = VerifyCodeResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`, `market_required` (the address exists in several markets: send the X-Market header)"),
        (status = 401, description = "`invalid_credentials`"),
        (status = 403, description = "`email_not_verified`, `account_disabled`"),
        (status = 422, description = "`invalid_email`, `validation_error`"),
        (status = 429, description = "`rate_limited`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<EmailPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let hint = header_market(&req)?;
    let lang = hint.map_or(Language::En, Market::language);
    let email_state = email_state(&state, lang)?;
    let email = parse_email(&body.0.email, lang)?;
    let login = sign_in(&req, &email_state, hint, email, body.0.password, lang).await?;
    Ok(
        HttpResponse::Ok().json(VerifyCodeResponse::signed_in_saying(
            login,
            MessageKey::EmailSignedIn,
        )),
    )
}

async fn sign_in(
    req: &HttpRequest,
    email_state: &EmailState,
    hint: Option<Market>,
    email: EmailAddress,
    password: String,
    lang: Language,
) -> Result<marque_domain::LoginSuccess, ApiError> {
    let client = client_info(req);
    let service = email_state.service.clone();
    hashing(email_state, lang, move || {
        service.login(hint, &email, &password, &client)
    })
    .await
}

/// Sends a new verification link when an account with this address is not verified yet. The
/// answer is the same whatever the address.
#[utoipa::path(
    post, path = "/api/v1/auth/email/resend-verification", tag = "email",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`; without it every market holding the address is asked")),
    request_body = EmailRequest,
    responses(
        (status = 200, description = "Done (the same for every address)", body = SuccessResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`"),
        (status = 422, description = "`invalid_email`, `validation_error`"),
        (status = 429, description = "`rate_limited`: mail requests per client IP"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn resend_verification(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    mail_request(&req, &state, &body.0.email, false).await
}

/// Sends a password-reset link (valid 1 hour) when an account has this address. Always the same
/// 200 answer.
#[utoipa::path(
    post, path = "/api/v1/auth/email/forgot-password", tag = "email",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`; without it every market holding the address is asked")),
    request_body = EmailRequest,
    responses(
        (status = 200, description = "Done (the same for every address)", body = SuccessResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`"),
        (status = 422, description = "`invalid_email`, `validation_error`"),
        (status = 429, description = "`rate_limited`: mail requests per client IP"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn forgot_password(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    mail_request(&req, &state, &body.0.email, true).await
}

async fn mail_request(
    req: &HttpRequest,
    state: &ApiState,
    email: &str,
    reset: bool,
) -> Result<HttpResponse, ApiError> {
    let hint = header_market(req)?;
    let lang = hint.map_or(Language::En, Market::language);
    let email_state = email_state(state, lang)?;
    let email = parse_email(email, lang)?;
    let client = client_info(req);
    let service = email_state.service.clone();
    blocking(lang, move || {
        if reset {
            service.forgot_password(hint, &email, &client)
        } else {
            service.resend_verification(hint, &email, &client)
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(success(MessageKey::EmailInstructionsSent, lang)))
}

/// The password-reset link of the email: an HTML form (market language) to choose a new
/// password, or a page saying the link is invalid or expired (400).
#[utoipa::path(
    get, path = "/api/v1/auth/email/reset-password", tag = "email",
    params(TokenQuery),
    responses(
        (status = 200, description = "HTML: the form (inputs `new_password`, button `submit`)", content_type = "text/html", body = String),
        (status = 400, description = "HTML: the link is invalid, used or expired", content_type = "text/html", body = String),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn reset_page(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = query.into_inner().token.unwrap_or_default();
    let lang = link_lang(&req, &token);
    let email_state = email_state(&state, lang)?;
    let service = email_state.service.clone();
    let t = token.clone();
    match blocking(lang, move || service.reset_form(&t)).await {
        Ok(form) => Ok(pages::reset_form(
            StatusCode::OK,
            form.market.language(),
            &token,
            &form.csrf_token,
            None,
        )),
        Err(e) => link_refused(e, lang),
    }
}

/// Whether the form post comes from this service's own page, as far as the browser says: by
/// Fetch Metadata when sent (`Sec-Fetch-Site` must be `same-origin`, or `none` for a post the
/// user made directly; OWASP CSRF Prevention Cheat Sheet), else by `Origin` when it names one
/// (this service's own scheme and host, or `PUBLIC_BASE_URL`). `Origin: null` tells nothing: a
/// browser sends it for a same-origin post from a page with `Referrer-Policy: no-referrer` (the
/// reset page), so only the CSRF token decides then.
fn same_origin(req: &HttpRequest, state: &ApiState) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == "null" {
        return true;
    }
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    if origin.eq_ignore_ascii_case(&own) {
        return true;
    }
    state
        .delivery
        .public_base_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| {
            u.origin()
                .ascii_serialization()
                .eq_ignore_ascii_case(origin)
        })
}

/// The fields of a form body (`application/x-www-form-urlencoded`); `None` for another type.
fn form_fields(req: &HttpRequest, body: &[u8]) -> Option<Vec<(String, String)>> {
    let is_form = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.essence_str() == "application/x-www-form-urlencoded");
    is_form.then(|| {
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The reset form's submission (`application/x-www-form-urlencoded`: `token`, `csrf_token`,
/// `new_password`). CSRF defence: `csrf_token` must be the HMAC of the reset token under its own
/// key (checked in constant time), and the browser must not say the post is cross-site
/// (`Sec-Fetch-Site`, else an `Origin` naming another site). On
/// success every session of the account ends and a "password changed" email is queued; a refused
/// password re-renders the form with the localised reason (422).
#[utoipa::path(
    post, path = "/api/v1/auth/email/reset-password", tag = "email",
    request_body(content = ResetForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "HTML: the password was changed", content_type = "text/html", body = String),
        (status = 400, description = "HTML: the link is invalid, used or expired, or the form is malformed", content_type = "text/html", body = String),
        (status = 403, description = "HTML: CSRF check failed (wrong `csrf_token`, or a cross-site `Sec-Fetch-Site` / `Origin`)", content_type = "text/html", body = String),
        (status = 422, description = "HTML: the form again, with the password rule broken in element `error`", content_type = "text/html", body = String),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn reset_submit(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(fields) = form_fields(&req, &body) else {
        return Ok(pages::message(
            StatusCode::BAD_REQUEST,
            fallback_lang(&req),
            MessageKey::BadRequest,
        ));
    };
    let token = field(&fields, "token").unwrap_or_default().to_owned();
    let csrf = field(&fields, "csrf_token").unwrap_or_default().to_owned();
    let new_password = field(&fields, "new_password")
        .unwrap_or_default()
        .to_owned();
    let lang = link_lang(&req, &token);
    let email_state = email_state(&state, lang)?;
    let service = email_state.service.clone();
    if !same_origin(&req, &state) || !service.csrf_matches(&token, &csrf) {
        tracing::info!("reset form refused: CSRF check failed");
        return Ok(pages::message(
            StatusCode::FORBIDDEN,
            lang,
            MessageKey::FormExpired,
        ));
    }
    let client = client_info(&req);
    let t = token.clone();
    match hashing(&email_state, lang, move || {
        service.reset_password(&t, &new_password, &client)
    })
    .await
    {
        Ok(market) => Ok(pages::message(
            StatusCode::OK,
            market.language(),
            MessageKey::PasswordResetDone,
        )),
        Err(e) => match e.kind {
            ErrorKind::WeakPassword(rule) => Ok(pages::reset_form(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                &token,
                &csrf,
                Some(password_message(rule)),
            )),
            _ => link_refused(e, lang),
        },
    }
}

/// Changes the signed-in account's password. Every session of the account ends (this one too:
/// sign in again with the new password) and a "password changed" email is sent.
#[utoipa::path(
    post, path = "/api/v1/auth/email/change-password", tag = "email",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; every session ended", body = SuccessResponse),
        (status = 401, description = "`invalid_token`, `invalid_credentials` (wrong current password)"),
        (status = 404, description = "`not_found`: the account has no email password"),
        (status = 422, description = "`validation_error`, `password_too_short`, `password_too_long`, `password_contains_email`, `password_too_weak`"),
        (status = 429, description = "`rate_limited`: too many wrong passwords"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: JsonBody<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let email_state = email_state(&state, lang)?;
    let client = client_info(&req);
    let service = email_state.service.clone();
    let ChangePasswordRequest {
        current_password,
        new_password,
    } = body.0;
    hashing(&email_state, lang, move || {
        service.change_password(&caller, &current_password, &new_password, &client)
    })
    .await?;
    Ok(HttpResponse::Ok().json(success(MessageKey::PasswordChanged, lang)))
}

/// Adds an email address and password to the signed-in account (a phone user's) and sends a
/// verification link; the address signs in once verified. An address that belongs to another
/// account gets a "you already have an account" email instead, and the caller the same answer.
/// The profile shows `email` and `email_verified`.
#[utoipa::path(
    post, path = "/api/v1/auth/email/link", tag = "email",
    security(("bearer" = [])),
    request_body = EmailPasswordRequest,
    responses(
        (status = 200, description = "Check your email", body = SuccessResponse),
        (status = 401, description = "`invalid_token`"),
        (status = 409, description = "`email_already_linked`: the account has a verified address"),
        (status = 422, description = "`invalid_email`, `validation_error`, `password_too_short`, `password_too_long`, `password_contains_email`, `password_too_weak`"),
        (status = 429, description = "`rate_limited`: mail requests per client IP"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn link_email(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: JsonBody<EmailPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let email_state = email_state(&state, lang)?;
    let email = parse_email(&body.0.email, lang)?;
    let client = client_info(&req);
    let service = email_state.service.clone();
    let password = body.0.password;
    hashing(&email_state, lang, move || {
        service.link_email(&caller, &email, &password, &client)
    })
    .await?;
    Ok(HttpResponse::Ok().json(success(MessageKey::EmailLinkStarted, lang)))
}

/// `DELETE /api/v1/auth/account` of an account without a phone number: its password proven
/// (with a hash permit), then the account deleted.
pub(crate) async fn delete_with_password(
    state: &ApiState,
    caller: Authenticated,
    password: String,
    client: marque_domain::ClientInfo,
    lang: Language,
) -> Result<(), ApiError> {
    let email_state = email_state(state, lang)?;
    let service = email_state.service.clone();
    hashing(&email_state, lang, move || {
        service.delete_account(&caller, &password, &client)
    })
    .await
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Pragma", "no-cache"))
        .json(OAuthErrorBody {
            error,
            error_description: description.to_owned(),
        })
}

/// OAuth2 resource-owner password grant (RFC 6749 §4.3), so Swagger UI's "Authorize" works:
/// form-encoded `grant_type=password`, `username` (the email address), `password`. Same rules as
/// `POST /api/v1/auth/email/login`; success is that answer (its `access_token`, `token_type`,
/// `expires_in` and `refresh_token` are RFC 6749 §5.1's), failures the RFC 6749 §5.2 body
/// `{"error", "error_description"}`: 400 `invalid_request` (not a form, a field missing),
/// `unsupported_grant_type`, `invalid_grant` (wrong credentials, unverified address, several
/// markets without `X-Market`); 429 `invalid_grant` with `Retry-After` when limited; 503
/// `temporarily_unavailable`; 500 `server_error`.
#[utoipa::path(
    post, path = "/api/v1/auth/token", tag = "email",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`; needed only when the address exists in several markets")),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Signed in", body = VerifyCodeResponse),
        (status = 400, description = "RFC 6749 §5.2 error", body = OAuthErrorBody),
        (status = 429, description = "RFC 6749 §5.2 error (`invalid_grant`), with `Retry-After`", body = OAuthErrorBody),
        (status = 500, description = "`server_error`", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn token(req: HttpRequest, state: web::Data<ApiState>, body: web::Bytes) -> HttpResponse {
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    let Some(fields) = form_fields(&req, &body) else {
        return bad("the body must be application/x-www-form-urlencoded");
    };
    let Some(grant) = field(&fields, "grant_type") else {
        return bad("grant_type is required");
    };
    if grant != "password" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=password is supported",
        );
    }
    let (Some(username), Some(password)) = (field(&fields, "username"), field(&fields, "password"))
    else {
        return bad("username and password are required");
    };
    let Ok(hint) = header_market(&req) else {
        return bad("unknown X-Market");
    };
    let lang = Language::En;
    let Some(email_state) = state.email.clone() else {
        return oauth_error(StatusCode::NOT_FOUND, "invalid_request", "not found");
    };
    let invalid_grant =
        |key| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", text(key, lang));
    let Ok(email) = EmailAddress::parse(username) else {
        return invalid_grant(MessageKey::InvalidCredentials);
    };
    match sign_in(&req, &email_state, hint, email, password.to_owned(), lang).await {
        Ok(login) => HttpResponse::Ok()
            .insert_header(("Pragma", "no-cache"))
            .json(VerifyCodeResponse::signed_in_saying(
                login,
                MessageKey::EmailSignedIn,
            )),
        Err(e) => match e.kind {
            ErrorKind::InvalidCredentials => invalid_grant(MessageKey::InvalidCredentials),
            ErrorKind::EmailNotVerified => invalid_grant(MessageKey::EmailNotVerified),
            ErrorKind::MarketRequired => invalid_grant(MessageKey::MarketRequired),
            ErrorKind::AccountDisabled => invalid_grant(MessageKey::AccountDisabled),
            ErrorKind::RateLimited(s) => {
                let mut res = oauth_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "invalid_grant",
                    text(MessageKey::RateLimited, lang),
                );
                if let Ok(v) = header::HeaderValue::from_str(&s.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
            ErrorKind::Unavailable => oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                text(MessageKey::ServiceUnavailable, lang),
            ),
            _ => oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                text(MessageKey::InternalError, lang),
            ),
        },
    }
}

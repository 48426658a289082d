//! Route handlers. Each parses its input into domain values, runs the domain call on the blocking
//! pool (diesel is synchronous) and shapes the response.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use marque_domain::{
    AuthError, Channel, FullName, ImageUrl, LogoutScope, ProfileUpdate, SessionId,
};
use marque_markets::{Language, Market, MessageKey, OtpCode, OtpPurpose, PhoneNumber, text};

use crate::ApiState;
use crate::dto::{
    DeleteAccountRequest, HealthResponse, JwksDocument, LiveResponse, LogoutQuery, LogoutResponse,
    MarketHealthDto, MarketInfo, MarketsResponse, ProfileResponse, RefreshRequest, RefreshResponse,
    SendCodeRequest, SendCodeResponse, SessionDto, SessionsResponse, SuccessResponse,
    UpdateProfileRequest, VerifyCodeRequest, VerifyCodeResponse, VerifyTokenResponse, timestamp,
    truncate_ip,
};
use crate::error::{ApiError, ErrorKind};
use crate::extract::{Authenticated, JsonBody, client_info, fallback_lang, header_market};

/// Runs synchronous work (diesel) on the blocking pool inside the request's tracing span.
pub(crate) async fn run_blocking<T: Send + 'static>(
    lang: Language,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    match web::block(move || span.in_scope(f)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(ApiError::new(ErrorKind::Internal, lang))
        }
    }
}

/// [`run_blocking`] for an [`AuthService`](marque_domain::AuthService) call.
pub(crate) async fn blocking<T: Send + 'static>(
    lang: Language,
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    run_blocking(lang, move || f().map_err(|e| ApiError::from_auth(e, lang))).await
}

/// Parses the phone number of a request, honouring `X-Market`; with its market and that market's
/// language (the language of the answer).
fn parse_phone(
    req: &HttpRequest,
    input: &str,
) -> Result<(PhoneNumber, Market, Language), ApiError> {
    let hint = header_market(req)?;
    let lang = hint.map_or(Language::En, Market::language);
    let phone = PhoneNumber::parse(input, hint).map_err(|e| {
        // A mismatch names a market; answer in the requested market's language.
        ApiError::new(ErrorKind::Phone(e), lang)
    })?;
    let market = phone.market();
    Ok((phone, market, market.language()))
}

/// The code and `challenge_id` of a request that proves a code (sign-in, account deletion).
fn code_and_challenge(
    state: &ApiState,
    code: &str,
    id: Option<String>,
    lang: Language,
) -> Result<(OtpCode, Option<String>), ApiError> {
    let code = OtpCode::parse(code)
        .map_err(|e| ApiError::validation("verification_code", e.to_string(), lang))?;
    let id = challenge_id(id, state.auth.config().require_challenge_id, lang)?;
    Ok((code, id))
}

/// A `challenge_id` as sent by the client: at most 64 characters (ours are 22); anything else
/// is not one of ours and is refused by the lookup like an unknown id.
fn challenge_id(
    id: Option<String>,
    required: bool,
    lang: Language,
) -> Result<Option<String>, ApiError> {
    match id {
        None if required => Err(ApiError::validation(
            "challenge_id",
            "required: send the challenge_id returned by send-code",
            lang,
        )),
        Some(id) if id.len() > 64 => Err(ApiError::validation(
            "challenge_id",
            "at most 64 characters",
            lang,
        )),
        id => Ok(id),
    }
}

/// Sends a one-time code to a phone number.
///
/// The market comes from the number (or `X-Market`); the code is queued for delivery in the same
/// transaction that stores it. Limits: 3 codes per number per 15 minutes, 60 s between two, and a
/// per-client-IP limit over all markets (429 `rate_limited` with `Retry-After`); daily SMS budgets
/// and an hourly limit per number range (429 `sms_budget_exceeded`, nothing sent); a number locked
/// after too many wrong codes gets 429 `phone_locked`. With a CAPTCHA provider configured,
/// `captcha_token` is required and checked first. The answer carries the `challenge_id` to send
/// back with the code. `purpose: delete_account` asks for the step-up code of account deletion: it
/// needs the account's bearer token and its own number.
#[utoipa::path(
    post, path = "/api/v1/auth/send-code", tag = "auth",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`: choose the market explicitly and allow its national number formats")),
    request_body = SendCodeRequest,
    responses(
        (status = 200, description = "Code sent", body = SendCodeResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`, `captcha_required`, `captcha_invalid`"),
        (status = 401, description = "`invalid_token`: a deletion code asked for without a valid bearer token"),
        (status = 422, description = "`validation_error` (e.g. an unknown purpose, or a deletion code for another number than the account's), `invalid_phone`, `unsupported_market`, `market_mismatch`, `phone_not_mobile`, `channel_not_available`"),
        (status = 429, description = "`rate_limited`, `sms_budget_exceeded`, `phone_locked`"),
        (status = 503, description = "`service_unavailable`: the market database is down or the CAPTCHA provider cannot be asked"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn send_code(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<SendCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (phone, market, lang) = parse_phone(&req, &body.0.phone_number)?;
    let requested = body.0.channel.as_deref().and_then(Channel::parse);
    let outcome = send_code_in(&req, &state, body, phone, market, lang).await;
    let channel = match (&outcome, requested) {
        (Ok((_, sent)), _) => sent.as_str(),
        (Err(_), Some(c)) => c.as_str(),
        (Err(_), None) => "default",
    };
    crate::metrics::code_sent(market, channel, &outcome);
    outcome.map(|(res, _)| res)
}

/// [`send_code`] once the number is parsed; with the channel used.
async fn send_code_in(
    req: &HttpRequest,
    state: &ApiState,
    body: JsonBody<SendCodeRequest>,
    phone: PhoneNumber,
    market: Market,
    lang: Language,
) -> Result<(HttpResponse, Channel), ApiError> {
    let purpose = match body.0.purpose.as_deref() {
        None => OtpPurpose::Login,
        Some(p) => OtpPurpose::parse(p).ok_or_else(|| {
            ApiError::validation("purpose", "must be login or delete_account", lang)
        })?,
    };
    if purpose == OtpPurpose::DeleteAccount {
        // Only the account itself asks for its deletion code: nobody else can make the service
        // text a number "code to delete your account".
        let caller = Authenticated::extract(req).await?;
        if caller.user.phone.as_ref() != Some(&phone) {
            return Err(ApiError::validation(
                "phone_number",
                "a deletion code goes to the signed-in account's own number",
                lang,
            ));
        }
    }
    let client = client_info(req);
    let auth = state.auth.clone();
    auth.check_captcha(body.0.captcha_token.as_deref(), &client)
        .await
        .map_err(|e| ApiError::from_auth(e, lang))?;
    let channel = match body.0.channel.as_deref() {
        None => None,
        Some(c) => Some(
            Channel::parse(c).ok_or_else(|| ApiError::new(ErrorKind::ChannelNotAvailable, lang))?,
        ),
    };
    let p = phone.clone();
    let sent = blocking(lang, move || {
        auth.send_code_via(&p, purpose, channel, &client)
    })
    .await?;
    let res = HttpResponse::Ok().json(SendCodeResponse {
        success: true,
        message: text(MessageKey::CodeSent, lang).to_owned(),
        phone_number: phone.display(),
        market,
        language: lang.code().to_owned(),
        expires_in_minutes: sent.expires_in_minutes,
        challenge_id: sent.challenge_id,
        purpose: sent.purpose.as_str().to_owned(),
        channel: sent.channel.as_str().to_owned(),
    });
    Ok((res, sent.channel))
}

/// Exchanges a code for an access token; the first success creates the user in the number's
/// market database.
///
/// Each code allows 3 wrong tries, then it is dead; codes are single use. Any refused code
/// (wrong, used, expired, dead, unknown `challenge_id`, none sent) answers the same
/// `invalid_code`. With `challenge_id`, only requests carrying it count against the code.
/// Consecutive wrong codes lock the number (`phone_locked`); tries are limited per client IP.
///
/// With the bearer token of an account that has no number yet (made with an email address, issue
/// 10) the proven number is added to that account instead of signing in the number's own: 409
/// `phone_in_use` when another account has it. The answer is then a new session of the bearer's
/// account. Any other bearer token (a phone account's, an expired one) is ignored.
#[utoipa::path(
    post, path = "/api/v1/auth/verify-code", tag = "auth",
    params(("X-Market" = Option<String>, Header, description = "`kg` or `us`")),
    security((), ("bearer" = [])),
    request_body = VerifyCodeRequest,
    responses(
        (status = 200, description = "Signed in", body = VerifyCodeResponse),
        (status = 400, description = "`invalid_json`, `unknown_market`, `invalid_code`"),
        (status = 409, description = "`phone_in_use`: with a bearer token, the number belongs to another account"),
        (status = 403, description = "`account_disabled`: the code was right but the account is disabled; no session is opened"),
        (status = 422, description = "`validation_error` (e.g. challenge_id missing while required), `invalid_phone`, `unsupported_market`, `market_mismatch`, `phone_not_mobile`"),
        (status = 429, description = "`rate_limited` (per client IP), `phone_locked`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify_code(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<VerifyCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (phone, market, lang) = parse_phone(&req, &body.0.phone_number)?;
    let (code, id) =
        code_and_challenge(&state, &body.0.verification_code, body.0.challenge_id, lang)?;
    let client = client_info(&req);
    // Only an account without a number (made with an email address) gets one attached: a
    // client that sends its phone account's token along with every request, or a stale one,
    // signs in as before.
    let attach_to = match req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
    {
        true => Authenticated::extract(&req)
            .await
            .ok()
            .map(|a| a.0)
            .filter(|who| who.user.phone.is_none()),
        false => None,
    };
    let auth = state.auth.clone();
    let login = blocking(lang, move || {
        auth.verify_code_attaching(&phone, &code, id.as_deref(), attach_to.as_ref(), &client)
    })
    .await;
    crate::metrics::verified(market, &login);
    Ok(HttpResponse::Ok().json(VerifyCodeResponse::signed_in(login?)))
}

/// The signed-in user's profile.
#[utoipa::path(
    get, path = "/api/v1/auth/profile", tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = ProfileResponse),
        (status = 401, description = "`invalid_token`: missing, invalid, expired or revoked"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_profile(caller: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(ProfileResponse::from(&caller.user))
}

/// Updates the signed-in user's name and/or image. Absent fields stay; `null` clears.
#[utoipa::path(
    put, path = "/api/v1/auth/profile", tag = "profile",
    security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "Updated profile", body = ProfileResponse),
        (status = 422, description = "`validation_error` (full_name: 1–100 characters without control characters; profile_image_url: https, at most 2048 characters)"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn update_profile(
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: JsonBody<UpdateProfileRequest>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let invalid =
        |e: marque_domain::ProfileValueError| ApiError::validation(e.field, e.reason, lang);
    let update = ProfileUpdate {
        full_name: match body.0.full_name {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) => Some(Some(FullName::parse(&s).map_err(invalid)?)),
        },
        profile_image_url: match body.0.profile_image_url {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) => Some(Some(ImageUrl::parse(&s).map_err(invalid)?)),
        },
    };
    let auth = state.auth.clone();
    let user = blocking(lang, move || auth.update_profile(&caller, &update)).await?;
    Ok(HttpResponse::Ok().json(ProfileResponse::from(&user)))
}

/// Checks a token: valid when its signature, expiry and session all hold.
#[utoipa::path(
    get, path = "/api/v1/auth/verify-token", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Valid", body = VerifyTokenResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify_token(caller: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(VerifyTokenResponse {
        valid: true,
        user_id: caller.user.id.0,
        market: caller.market,
        expires_at: timestamp(caller.token_expires_at),
    })
}

/// Ends sessions: the token's own (`scope=local`, default), all of the user's (`global`), or all
/// but this one (`others`). Tokens of ended sessions are refused at once on every instance.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    params(LogoutQuery),
    responses(
        (status = 200, description = "Signed out", body = LogoutResponse),
        (status = 422, description = "`validation_error`: unknown scope"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let query = web::Query::<LogoutQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::validation("scope", e.to_string(), lang))?;
    let scope = match query.scope.as_deref() {
        None | Some("local") => LogoutScope::Local,
        Some("global") => LogoutScope::Global,
        Some("others") => LogoutScope::Others,
        Some(_) => {
            return Err(ApiError::validation(
                "scope",
                "must be local, global or others",
                lang,
            ));
        }
    };
    let auth = state.auth.clone();
    let client = client_info(&req);
    let ended = blocking(lang, move || auth.logout(&caller, scope, &client)).await?;
    Ok(HttpResponse::Ok().json(LogoutResponse {
        success: true,
        message: text(MessageKey::SessionsEnded, lang).to_owned(),
        sessions_ended: ended,
    }))
}

/// Exchanges a refresh token for a new access token and a new refresh token (rotation).
///
/// The presented token stops working. Presenting it again revokes the whole session
/// (`refresh_token_reused`, RFC 6819 §5.2.2.3) — except within a short grace window (10 s by
/// default), where a client's concurrent retry receives the same new refresh token.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = RefreshResponse),
        (status = 401, description = "`invalid_refresh_token`, `refresh_token_reused` (the session was revoked)"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = body.0.refresh_token;
    let lang = marque_domain::refresh::market_of(&token)
        .map_or_else(|| fallback_lang(&req), Market::language);
    let auth = state.auth.clone();
    let client = client_info(&req);
    let r = blocking(lang, move || auth.refresh(&token, &client)).await?;
    Ok(HttpResponse::Ok().json(RefreshResponse {
        success: true,
        message: text(MessageKey::TokenRefreshed, lang).to_owned(),
        access_token: r.access_token,
        token_type: "bearer".to_owned(),
        expires_in: r.expires_in,
        refresh_token: r.refresh_token,
        refresh_expires_in: r.refresh_expires_in,
        user_id: r.user.0,
        market: r.market,
    }))
}

/// The signed-in user's active sessions, newest first.
#[utoipa::path(
    get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Sessions", body = SessionsResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn sessions(
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let current = caller.session.clone();
    let list = blocking(caller.language(), move || auth.sessions(&caller)).await?;
    Ok(HttpResponse::Ok().json(SessionsResponse {
        success: true,
        sessions: list
            .into_iter()
            .map(|s| SessionDto {
                current: s.id == current,
                id: s.id.0,
                created_at: timestamp(s.created_at),
                last_seen_at: timestamp(s.last_seen_at),
                expires_at: timestamp(s.expires_at),
                user_agent: s.user_agent,
                client_ip: s.client_ip.as_deref().and_then(truncate_ip),
            })
            .collect(),
    }))
}

/// Ends one of the signed-in user's sessions (another user's or an unknown id → 404).
#[utoipa::path(
    delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id from the session list")),
    responses(
        (status = 200, description = "Session ended", body = LogoutResponse),
        (status = 404, description = "`not_found`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn end_session(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let auth = state.auth.clone();
    let id = SessionId(id.into_inner());
    let client = client_info(&req);
    blocking(lang, move || auth.end_session(&caller, &id, &client)).await?;
    Ok(HttpResponse::Ok().json(LogoutResponse {
        success: true,
        message: text(MessageKey::SessionsEnded, lang).to_owned(),
        sessions_ended: 1,
    }))
}

/// Deletes the signed-in account and all its data, after a step-up check: request a code with
/// `send-code` (`purpose: delete_account`, the account's bearer token) for the account's own
/// number, then call this with it and its `challenge_id` (App Store Review Guideline 5.1.1(v)).
/// A sign-in code is refused. The number can sign up again afterwards, as a new user. An account
/// made with an email address that has no phone number sends its `password` instead (issue 10).
#[utoipa::path(
    delete, path = "/api/v1/auth/account", tag = "auth",
    security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 400, description = "`invalid_json`, `invalid_code`"),
        (status = 401, description = "`invalid_token`, `invalid_credentials` (wrong password of an email account)"),
        (status = 422, description = "`validation_error` (e.g. challenge_id missing while required)"),
        (status = 429, description = "`rate_limited` (per client IP), `phone_locked`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_account(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: JsonBody<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let client = client_info(&req);
    let DeleteAccountRequest {
        verification_code,
        challenge_id,
        password,
    } = body.0;
    if caller.user.phone.is_none() {
        // An account made with an email address and no phone: its password is the step-up.
        let password = password.ok_or_else(|| {
            ApiError::validation(
                "password",
                "missing field `password` (an account without a phone number proves its password)",
                lang,
            )
        })?;
        crate::email::delete_with_password(&state, caller, password, client, lang).await?;
    } else {
        let verification_code = verification_code.ok_or_else(|| {
            ApiError::validation(
                "verification_code",
                "missing field `verification_code`",
                lang,
            )
        })?;
        let (code, id) = code_and_challenge(&state, &verification_code, challenge_id, lang)?;
        let auth = state.auth.clone();
        blocking(lang, move || {
            auth.delete_account_with(&caller, &code, id.as_deref(), &client)
        })
        .await?;
    }
    Ok(HttpResponse::Ok().json(SuccessResponse {
        success: true,
        message: text(MessageKey::AccountDeleted, lang).to_owned(),
    }))
}

/// Public keys that verify access tokens (RFC 7517), for services using `marque-verify` or any
/// JWT library: the current signing key and the retired ones still accepted.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = JwksDocument))
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn jwks(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            "public, max-age=300",
        ))
        .json(state.auth.jwks())
}

/// The markets this service serves and how they present numbers, money and dates.
#[utoipa::path(
    get, path = "/api/v1/auth/markets", tag = "markets",
    responses((status = 200, description = "Markets", body = MarketsResponse))
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn markets(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(MarketsResponse {
        supported_markets: state.auth.markets().map(MarketInfo::from).collect(),
        default_market: state.default_market,
    })
}

/// Health of the service and of each market database (503 when one is down).
#[utoipa::path(
    method(get, head), path = "/health", tag = "health",
    responses(
        (status = 200, description = "Every market database answers", body = HealthResponse),
        (status = 503, description = "A market database is down", body = HealthResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn health(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let report = blocking(fallback_lang(&req), move || Ok(auth.health())).await?;
    for h in report.iter().filter(|h| h.error.is_some()) {
        tracing::warn!(market = %h.market, error = ?h.error, "health check failed");
    }
    Ok(health_response(
        report.into_iter().map(|h| (h.market, h.error.is_none())),
    ))
}

/// The health body for `(market, database answered)` pairs: 200 `healthy` when every market is
/// up, else 503 `unhealthy`.
fn health_response(markets: impl IntoIterator<Item = (Market, bool)>) -> HttpResponse {
    let markets: Vec<MarketHealthDto> = markets
        .into_iter()
        .map(|(market, up)| MarketHealthDto {
            market,
            status: if up { "up" } else { "down" }.to_owned(),
        })
        .collect();
    let healthy = markets.iter().all(|m| m.status == "up");
    let body = HealthResponse {
        status: if healthy { "healthy" } else { "unhealthy" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        markets,
    };
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Liveness: the process answers (no database is asked).
#[utoipa::path(
    method(get, head), path = "/health/live", tag = "health",
    responses((status = 200, description = "The process is up", body = LiveResponse))
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn health_live() -> HttpResponse {
    HttpResponse::Ok().json(LiveResponse {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// How long `/health/ready` waits for the market databases, pinged in parallel; a database that
/// has not answered by then counts as down.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// Readiness: each market database answers a ping within 800 ms (503 when one does not).
#[utoipa::path(
    method(get, head), path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Every market database answers", body = HealthResponse),
        (status = 503, description = "A market database is down or too slow", body = HealthResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn health_ready(state: web::Data<ApiState>) -> HttpResponse {
    let deadline = actix_web::rt::time::Instant::now() + READY_TIMEOUT;
    let span = tracing::Span::current();
    let pings: Vec<_> = state
        .auth
        .markets()
        .map(|market| {
            let auth = state.auth.clone();
            let span = span.clone();
            let task = web::block(move || span.in_scope(|| auth.health_of(market)));
            (market, task)
        })
        .collect();
    let mut markets = Vec::with_capacity(pings.len());
    for (market, task) in pings {
        let error = match actix_web::rt::time::timeout(
            deadline.saturating_duration_since(actix_web::rt::time::Instant::now()),
            task,
        )
        .await
        {
            Ok(Ok(Some(h))) => h.error,
            Ok(Ok(None)) => Some("market not served".to_owned()),
            Ok(Err(e)) => Some(format!("blocking task failed: {e}")),
            Err(_) => Some(format!("no answer within {READY_TIMEOUT:?}")),
        };
        if let Some(error) = &error {
            tracing::warn!(%market, error, "readiness check failed");
        }
        markets.push((market, error.is_none()));
    }
    health_response(markets)
}

/// Same as `/health`, under the auth prefix.
#[utoipa::path(
    get, path = "/api/v1/auth/health", tag = "health",
    responses(
        (status = 200, description = "Every market database answers", body = HealthResponse),
        (status = 503, description = "A market database is down", body = HealthResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn auth_health(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    health(req, state).await
}

/// 404 for unknown routes.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(
        ErrorKind::NotFound,
        fallback_lang(&req),
    ))
}

/// 405 for a known route with another method.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let e = ApiError::new(ErrorKind::MethodNotAllowed, fallback_lang(&req));
    actix_web::ResponseError::error_response(&e)
}

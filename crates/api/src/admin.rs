//! The admin API under `/api/v1/admin` (issue 11): operators find users, disable or enable
//! accounts, end sessions, and read a market's audit log and outbox.
//!
//! - **Off unless configured.** Without `ADMIN_API_KEY` every admin route answers 404
//!   `not_found`, the same body as an unknown path, whatever the request carries.
//! - **One key.** With it, every call needs `Authorization: Bearer <ADMIN_API_KEY>`; a missing or
//!   wrong key answers 401 `admin_unauthorized` (not `invalid_token`: that code tells shopper
//!   apps to refresh or sign in again, which is not what an operator's tool should do). The key
//!   is compared in constant time ([`marque_domain::AdminKey::verify`]). A client can tell an
//!   enabled admin API (401) from a disabled one (404) and learns nothing more; keep
//!   `/api/v1/admin/` off the public internet at the proxy anyway.
//! - **Audited.** Every authenticated call leaves an `admin_action` row in the audit log of the
//!   market it concerns, naming the key by its fingerprint, with the client IP and user agent.
//!   Refused keys are logged (target `audit`, without what was presented), not stored.
//! - Answers are in English (operators' tools), errors in the usual JSON shape.

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use marque_domain::admin::{DEFAULT_PAGE, MAX_PAGE};
use marque_domain::{
    AdminCaller, AdminError, AdminService, AuditQuery, OutboxQuery, OutboxStatus, StoredAudit,
    UserId, UserReport,
};
use marque_markets::{Language, Market, MessageKey, PhoneNumber, text};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::dto::timestamp;
use crate::error::{ApiError, ErrorKind};
use crate::extract::{bearer_token, client_info};
use crate::openapi::Endpoint;
use crate::routes::run_blocking;

/// Operators read English.
const LANG: Language = Language::En;

/// The admin routes, each with its documentation.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::of::<__path_admin_find_users>().to(admin_find_users),
        Endpoint::of::<__path_admin_disable_user>().to(admin_disable_user),
        Endpoint::of::<__path_admin_enable_user>().to(admin_enable_user),
        Endpoint::of::<__path_admin_end_sessions>().to(admin_end_sessions),
        Endpoint::of::<__path_admin_audit>().to(admin_audit),
        Endpoint::of::<__path_admin_outbox>().to(admin_outbox),
    ]
}

/// An operator proven by the admin key, and the service to act with.
///
/// Failures: 404 `not_found` when the admin API is off (`ADMIN_API_KEY` unset); 401
/// `admin_unauthorized` (with `WWW-Authenticate: Bearer realm="marque-admin"`) when the key is
/// missing or wrong.
#[derive(Debug)]
pub struct Admin {
    /// The caller, for the audit rows.
    pub caller: AdminCaller,
    /// The admin service.
    pub service: std::sync::Arc<AdminService>,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let service = req
            .app_data::<web::Data<ApiState>>()
            .and_then(|s| s.admin.clone());
        let token = bearer_token(req);
        let client = client_info(req);
        Box::pin(async move {
            let service = service.ok_or_else(|| ApiError::new(ErrorKind::NotFound, LANG))?;
            let caller = service
                .authenticate(token.as_deref(), client)
                .map_err(|e| ApiError::from_admin(e, LANG))?;
            Ok(Admin { caller, service })
        })
    }
}

/// Runs an admin call on the blocking pool (diesel is synchronous).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, ApiError> {
    run_blocking(LANG, move || f().map_err(|e| ApiError::from_admin(e, LANG))).await
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::validation(field, detail, LANG)
}

/// The query of `req` as `T`; a malformed query string is a validation error.
fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| invalid("query", "malformed query string"))
}

/// The `{market}` and `{id}` of a user path; anything that names no user is 404.
fn user_path(req: &HttpRequest) -> Result<(Market, UserId), ApiError> {
    let not_found = || ApiError::new(ErrorKind::NotFound, LANG);
    let market = req
        .match_info()
        .get("market")
        .and_then(|m| m.parse::<Market>().ok())
        .ok_or_else(not_found)?;
    let id = req
        .match_info()
        .get("id")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(not_found)?;
    Ok((market, UserId(id)))
}

/// A market named in a query: required; an unknown code is 400 `unknown_market`.
fn query_market(value: Option<&str>) -> Result<Market, ApiError> {
    let value = value.ok_or_else(|| invalid("market", "required: kg or us"))?;
    value
        .parse::<Market>()
        .map_err(|_| ApiError::new(ErrorKind::UnknownMarket, LANG))
}

/// A page size: 1–500, default 100.
fn page_limit(value: Option<&str>) -> Result<u32, ApiError> {
    match value {
        None => Ok(DEFAULT_PAGE),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| invalid("limit", "a whole number from 1 to 500")),
    }
}

/// `GET /api/v1/admin/users` query: exactly one of `phone` and `email`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindUsersQuery {
    /// E.164 number; the market comes from it. The `+` may be sent as `%2B` or left out (a bare
    /// `+` in a query string means a space).
    #[param(example = "+996505325311")]
    pub phone: Option<String>,
    /// Email address. Accounts have no email yet (email accounts come with issue 10), so this
    /// finds nobody today; the lookup is accepted and audited.
    #[param(example = "anna@example.com")]
    pub email: Option<String>,
}

/// A session as operators see it (full client IP, unlike the user's own list).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminSessionDto {
    /// Session id.
    pub id: String,
    /// Sign-in time, RFC 3339 UTC.
    pub created_at: String,
    /// Last sign-in or refresh, RFC 3339 UTC.
    pub last_seen_at: String,
    /// When it ends unless refreshed, RFC 3339 UTC.
    pub expires_at: String,
    /// `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// Client IP at sign-in.
    pub client_ip: Option<String>,
}

/// A user found by an admin lookup: market, profile, state and active sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUserDto {
    /// The market whose database holds the user.
    #[schema(value_type = crate::dto::MarketCode)]
    pub market: Market,
    /// User id within the market.
    pub id: i64,
    /// E.164.
    #[schema(example = "+996505325311")]
    pub phone_number: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Avatar URL.
    pub profile_image_url: Option<String>,
    /// Whether the number is verified.
    pub is_verified: bool,
    /// `false` when disabled: no sign-in, refresh or token use.
    pub is_active: bool,
    /// Last sign-in, RFC 3339 UTC.
    pub last_login: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Last change, RFC 3339 UTC.
    pub updated_at: String,
    /// Active sessions, newest first.
    pub sessions: Vec<AdminSessionDto>,
}

impl From<UserReport> for AdminUserDto {
    fn from(r: UserReport) -> Self {
        let u = r.user.user;
        Self {
            market: r.market,
            id: u.id.0,
            phone_number: u.phone.as_ref().map(|p| p.e164().to_owned()),
            full_name: u.full_name.map(|n| n.as_str().to_owned()),
            profile_image_url: u.profile_image_url.map(|i| i.as_str().to_owned()),
            is_verified: u.is_verified,
            is_active: r.user.is_active,
            last_login: u.last_login.map(timestamp),
            created_at: timestamp(u.created_at),
            updated_at: timestamp(u.updated_at),
            sessions: r
                .sessions
                .into_iter()
                .map(|s| AdminSessionDto {
                    id: s.id.0,
                    created_at: timestamp(s.created_at),
                    last_seen_at: timestamp(s.last_seen_at),
                    expires_at: timestamp(s.expires_at),
                    user_agent: s.user_agent,
                    client_ip: s.client_ip,
                })
                .collect(),
        }
    }
}

/// The users a lookup found: none or one for a phone number (numbers are unique per market and
/// a number belongs to one market); a list because one email may have an account in each market
/// once email accounts exist.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUsersResponse {
    /// Always `true`.
    pub success: bool,
    /// The users found.
    pub users: Vec<AdminUserDto>,
}

/// The state of a user after `disable` or `enable`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUserStateResponse {
    /// Always `true`.
    pub success: bool,
    /// `Done`.
    pub message: String,
    /// The user's market.
    #[schema(value_type = crate::dto::MarketCode)]
    pub market: Market,
    /// The user's id.
    pub user_id: i64,
    /// `is_active` now.
    pub is_active: bool,
    /// Sessions ended by this call (disable only).
    pub sessions_ended: u64,
}

/// Sessions ended by `DELETE …/sessions`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminSessionsEndedResponse {
    /// Always `true`.
    pub success: bool,
    /// `Done`.
    pub message: String,
    /// The user's market.
    #[schema(value_type = crate::dto::MarketCode)]
    pub market: Market,
    /// The user's id.
    pub user_id: i64,
    /// How many active sessions were ended.
    pub sessions_ended: u64,
}

/// `GET /api/v1/admin/audit` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// `kg` or `us` (required: each market keeps its own audit log).
    #[param(example = "kg")]
    pub market: Option<String>,
    /// Only rows about this user.
    #[param(value_type = Option<i64>, example = 42)]
    pub user_id: Option<String>,
    /// Only rows at or after this instant (RFC 3339, e.g. `2026-12-01T00:00:00Z`).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub since: Option<String>,
    /// Rows at most, 1–500 (default 100).
    #[param(value_type = Option<u32>, example = 100)]
    pub limit: Option<String>,
}

/// An audit row.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryDto {
    /// Row id (ascending in write order).
    pub id: i64,
    /// When it happened, RFC 3339 UTC.
    pub occurred_at: String,
    /// `sign_in`, `sign_out`, `refresh_reuse`, `account_deleted`, `phone_locked`,
    /// `sms_budget_tripped`, `test_number_used`, `admin_action`…
    #[schema(example = "sign_in")]
    pub event: String,
    /// The user concerned.
    pub user_id: Option<i64>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// `key=value` details (ids, counts, names; never a code or a token).
    pub detail: Option<String>,
}

impl From<StoredAudit> for AuditEntryDto {
    fn from(r: StoredAudit) -> Self {
        Self {
            id: r.id,
            occurred_at: timestamp(r.at),
            event: r.event,
            user_id: r.user.map(|u| u.0),
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            detail: r.detail,
        }
    }
}

/// A page of a market's audit log, newest first (the row of this read first).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminAuditResponse {
    /// Always `true`.
    pub success: bool,
    /// The market.
    #[schema(value_type = crate::dto::MarketCode)]
    pub market: Market,
    /// Rows, newest first.
    pub entries: Vec<AuditEntryDto>,
}

/// `GET /api/v1/admin/outbox` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// `kg` or `us` (required: each market has its own outbox).
    #[param(example = "kg")]
    pub market: Option<String>,
    /// `pending`, `sent`, `failed` or `expired` (default: all).
    #[param(example = "pending")]
    pub status: Option<String>,
    /// Rows at most, 1–500 (default 100).
    #[param(value_type = Option<u32>, example = 100)]
    pub limit: Option<String>,
}

/// An outbox message as operators see it: where it stands, never its payload or code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutboxMessageDto {
    /// Row id.
    pub id: i64,
    /// `sms`, `whatsapp` or `telegram`: the channel it is (or was last) tried on.
    pub channel: String,
    /// Recipient, E.164.
    pub recipient: String,
    /// `pending`, `sent`, `failed` or `expired`.
    pub status: String,
    /// Failed attempts on the current channel.
    pub attempts: u32,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Not retried before this instant, RFC 3339 UTC.
    pub next_attempt_at: String,
    /// Pointless after this instant, RFC 3339 UTC.
    pub expires_at: String,
    /// When a provider took it, RFC 3339 UTC.
    pub sent_at: Option<String>,
    /// The last provider error.
    pub last_error: Option<String>,
    /// The provider that took it.
    pub provider: Option<String>,
    /// `delivered` or `undelivered`, from the provider's report.
    pub delivery_status: Option<String>,
    /// The first channel tried, once it fell back.
    pub fallback_from: Option<String>,
}

/// A page of a market's outbox, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminOutboxResponse {
    /// Always `true`.
    pub success: bool,
    /// The market.
    #[schema(value_type = crate::dto::MarketCode)]
    pub market: Market,
    /// Messages, newest first.
    pub messages: Vec<OutboxMessageDto>,
}

/// Finds users by phone number (or email) in every market: the market, profile, enabled state
/// and active sessions. Exactly one of `phone` and `email`. An email finds nobody until email
/// accounts exist (issue 10). Audited.
#[utoipa::path(
    get, path = "/api/v1/admin/users", tag = "admin",
    security(("admin_key" = [])),
    params(FindUsersQuery),
    responses(
        (status = 200, description = "The users found (possibly none)", body = AdminUsersResponse),
        (status = 401, description = "`admin_unauthorized`: the admin key is missing or wrong"),
        (status = 404, description = "`not_found`: the admin API is off (ADMIN_API_KEY unset)"),
        (status = 422, description = "`validation_error`: neither or both of phone and email, or a value that is not one, `invalid_phone`, `unsupported_market`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn admin_find_users(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q: FindUsersQuery = query(&req)?;
    let Admin { caller, service } = admin;
    let found = match (q.phone.as_deref(), q.email.as_deref()) {
        (Some(phone), None) => {
            let phone = phone.trim();
            let e164 = if phone.starts_with('+') {
                phone.to_owned()
            } else {
                format!("+{phone}")
            };
            let phone = PhoneNumber::parse(&e164, None)
                .map_err(|e| ApiError::new(ErrorKind::Phone(e), LANG))?;
            blocking(move || service.find_by_phone(&caller, &phone)).await?
        }
        (None, Some(email)) => {
            let email = email.trim().to_owned();
            if email.len() > 254 || !email.contains('@') {
                return Err(invalid(
                    "email",
                    "an email address of at most 254 characters",
                ));
            }
            blocking(move || service.find_by_email(&caller, &email)).await?
        }
        _ => return Err(invalid("phone", "give exactly one of phone and email")),
    };
    Ok(HttpResponse::Ok().json(AdminUsersResponse {
        success: true,
        users: found.into_iter().map(AdminUserDto::from).collect(),
    }))
}

/// Disables an account and ends all its sessions: its access tokens are refused at once on
/// every instance, refreshes fail, and sign-in with a right code answers 403
/// `account_disabled`. Audited in the same transaction.
#[utoipa::path(
    post, path = "/api/v1/admin/users/{market}/{id}/disable", tag = "admin",
    security(("admin_key" = [])),
    params(
        ("market" = String, Path, description = "`kg` or `us`"),
        ("id" = i64, Path, description = "User id within the market"),
    ),
    responses(
        (status = 200, description = "Disabled", body = AdminUserStateResponse),
        (status = 401, description = "`admin_unauthorized`: the admin key is missing or wrong"),
        (status = 404, description = "`not_found`: no such user in the market, or the admin API is off"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn admin_disable_user(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    set_active(admin, &req, false).await
}

/// Enables a disabled account again: sign-in works; sessions ended when it was disabled stay
/// ended. Audited in the same transaction.
#[utoipa::path(
    post, path = "/api/v1/admin/users/{market}/{id}/enable", tag = "admin",
    security(("admin_key" = [])),
    params(
        ("market" = String, Path, description = "`kg` or `us`"),
        ("id" = i64, Path, description = "User id within the market"),
    ),
    responses(
        (status = 200, description = "Enabled", body = AdminUserStateResponse),
        (status = 401, description = "`admin_unauthorized`: the admin key is missing or wrong"),
        (status = 404, description = "`not_found`: no such user in the market, or the admin API is off"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn admin_enable_user(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    set_active(admin, &req, true).await
}

async fn set_active(
    admin: Admin,
    req: &HttpRequest,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let (market, user) = user_path(req)?;
    let Admin { caller, service } = admin;
    let change = blocking(move || {
        if active {
            service.enable(&caller, market, user)
        } else {
            service.disable(&caller, market, user)
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(AdminUserStateResponse {
        success: true,
        message: text(MessageKey::AdminActionDone, LANG).to_owned(),
        market,
        user_id: user.0,
        is_active: change.is_active,
        sessions_ended: change.sessions_ended,
    }))
}

/// Ends every active session of a user (the account stays enabled: the user can sign in
/// again). Their access tokens are refused at once on every instance. Audited in the same
/// transaction.
#[utoipa::path(
    delete, path = "/api/v1/admin/users/{market}/{id}/sessions", tag = "admin",
    security(("admin_key" = [])),
    params(
        ("market" = String, Path, description = "`kg` or `us`"),
        ("id" = i64, Path, description = "User id within the market"),
    ),
    responses(
        (status = 200, description = "Sessions ended", body = AdminSessionsEndedResponse),
        (status = 401, description = "`admin_unauthorized`: the admin key is missing or wrong"),
        (status = 404, description = "`not_found`: no such user in the market, or the admin API is off"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn admin_end_sessions(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (market, user) = user_path(&req)?;
    let Admin { caller, service } = admin;
    let ended = blocking(move || service.end_sessions(&caller, market, user)).await?;
    Ok(HttpResponse::Ok().json(AdminSessionsEndedResponse {
        success: true,
        message: text(MessageKey::AdminActionDone, LANG).to_owned(),
        market,
        user_id: user.0,
        sessions_ended: ended,
    }))
}

/// A page of a market's audit log, newest first, optionally about one user and since an
/// instant. The row recording this read comes first. Audited.
#[utoipa::path(
    get, path = "/api/v1/admin/audit", tag = "admin",
    security(("admin_key" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "Audit rows", body = AdminAuditResponse),
        (status = 400, description = "`unknown_market`"),
        (status = 401, description = "`admin_unauthorized`: the admin key is missing or wrong"),
        (status = 404, description = "`not_found`: the admin API is off"),
        (status = 422, description = "`validation_error`: market missing, or user_id, since or limit malformed"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn admin_audit(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q: AuditParams = query(&req)?;
    let market = query_market(q.market.as_deref())?;
    let user = match q.user_id.as_deref() {
        None => None,
        Some(v) => Some(UserId(
            v.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| invalid("user_id", "a positive whole number"))?,
        )),
    };
    let since = match q.since.as_deref() {
        None => None,
        Some(v) => Some(
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| invalid("since", "an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z"))?,
        ),
    };
    let limit = page_limit(q.limit.as_deref())?;
    let Admin { caller, service } = admin;
    let query = AuditQuery { user, since, limit };
    let rows = blocking(move || service.audit_log(&caller, market, query)).await?;
    Ok(HttpResponse::Ok().json(AdminAuditResponse {
        success: true,
        market,
        entries: rows.into_iter().map(AuditEntryDto::from).collect(),
    }))
}

/// A page of a market's outbox, newest first, optionally in one state: channel, recipient,
/// status, attempts, times, provider and last error — never the payload or a code. Audited.
#[utoipa::path(
    get, path = "/api/v1/admin/outbox", tag = "admin",
    security(("admin_key" = [])),
    params(OutboxParams),
    responses(
        (status = 200, description = "Outbox messages", body = AdminOutboxResponse),
        (status = 400, description = "`unknown_market`"),
        (status = 401, description = "`admin_unauthorized`: the admin key is missing or wrong"),
        (status = 404, description = "`not_found`: the admin API is off"),
        (status = 422, description = "`validation_error`: market missing, unknown status, or limit out of range"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn admin_outbox(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q: OutboxParams = query(&req)?;
    let market = query_market(q.market.as_deref())?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            OutboxStatus::parse(s.trim())
                .ok_or_else(|| invalid("status", "pending, sent, failed or expired"))?,
        ),
    };
    let limit = page_limit(q.limit.as_deref())?;
    let Admin { caller, service } = admin;
    let query = OutboxQuery { status, limit };
    let rows = blocking(move || service.outbox(&caller, market, query)).await?;
    Ok(HttpResponse::Ok().json(AdminOutboxResponse {
        success: true,
        market,
        messages: rows
            .into_iter()
            .map(|m| OutboxMessageDto {
                id: m.id,
                channel: m.channel.as_str().to_owned(),
                recipient: m.recipient,
                status: m.status,
                attempts: m.attempts,
                created_at: timestamp(m.created_at),
                next_attempt_at: timestamp(m.next_attempt_at),
                expires_at: timestamp(m.expires_at),
                sent_at: m.sent_at.map(timestamp),
                last_error: m.last_error,
                provider: m.provider,
                delivery_status: m.delivery_status,
                fallback_from: m.fallback_from,
            })
            .collect(),
    }))
}

/// `WWW-Authenticate` of a refused admin key (RFC 6750 §3: the realm tells the admin key from
/// the shoppers' access tokens).
pub(crate) const ADMIN_CHALLENGE: &str = "Bearer realm=\"marque-admin\"";

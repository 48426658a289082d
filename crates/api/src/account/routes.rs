//! Handlers of `/api/v1/profile/*`. Each receives the signed-in caller ([`Authenticated`]),
//! parses the body by the rules of the caller's market, and runs the account call for the caller
//! on the blocking pool.

use actix_web::{HttpRequest, HttpResponse, web};
use marque_domain::{
    AccountError, AccountService, AddressId, AddressRecord, AddressTitle, AddressUpdate,
    NewAddress, NewPaymentMethod, NotificationId, NotificationQuery, Owner, PageLimit,
    PaymentMethodId, PaymentMethodUpdate,
};
use marque_markets::{FieldError, Language, MarketAddress, MessageKey, text};

use super::dto::{
    AddressDto, AddressListResponse, AddressRequest, AddressResponse, NotificationDto,
    NotificationListResponse, NotificationResponse, PaymentMethodDto, PaymentMethodListResponse,
    PaymentMethodRequest, PaymentMethodResponse, ReadAllResponse, UpdatePaymentMethodRequest,
};
use crate::ApiState;
use crate::dto::SuccessResponse;
use crate::error::{ApiError, ErrorKind};
use crate::extract::{Authenticated, JsonBody};
use crate::routes::run_blocking;

/// Runs `f` on the blocking pool (inside the request's tracing span) for the caller's account
/// data; failures are answered in the caller's language.
async fn as_owner<T: Send + 'static>(
    state: &ApiState,
    caller: &Authenticated,
    f: impl FnOnce(&AccountService, Owner) -> Result<T, AccountError> + Send + 'static,
) -> Result<T, ApiError> {
    let (account, owner, lang) = (state.account.clone(), caller.owner(), caller.language());
    run_blocking(lang, move || {
        f(&account, owner).map_err(|e| ApiError::from_account(e, lang))
    })
    .await
}

/// A row id from the path: a positive integer, else 404 (no such row can exist).
fn row_id(path: &str, lang: Language) -> Result<i64, ApiError> {
    path.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, lang))
}

fn invalid(lang: Language) -> impl Fn(FieldError) -> ApiError {
    move |e| ApiError::validation(e.field, e.reason, lang)
}

/// The `title` of an address request: absent → `None`, `null` or blank → `Some(None)` (cleared).
fn title(
    field: &Option<Option<String>>,
    lang: Language,
) -> Result<Option<Option<AddressTitle>>, ApiError> {
    Ok(match field {
        None => None,
        Some(t) => Some(
            t.as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(AddressTitle::parse)
                .transpose()
                .map_err(invalid(lang))?,
        ),
    })
}

fn message(key: MessageKey, lang: Language) -> String {
    text(key, lang).to_owned()
}

/// Deletes the caller's row named by `path` (its id made by `id`) with `delete`; answers `done`.
async fn delete_row<I: Send + 'static>(
    id: fn(i64) -> I,
    delete: fn(&AccountService, Owner, I) -> Result<(), AccountError>,
    done: MessageKey,
    state: &ApiState,
    caller: &Authenticated,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let id = id(row_id(path, lang)?);
    as_owner(state, caller, move |account, owner| {
        delete(account, owner, id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(SuccessResponse {
        success: true,
        message: message(done, lang),
    }))
}

/// The signed-in user's delivery addresses, default first, then newest first.
#[utoipa::path(
    get, path = "/api/v1/profile/addresses", tag = "addresses",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Addresses", body = AddressListResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_addresses(
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let list = as_owner(&state, &caller, |account, owner| account.addresses(owner)).await?;
    Ok(HttpResponse::Ok().json(AddressListResponse {
        success: true,
        total: list.len(),
        addresses: list.iter().map(AddressDto::from).collect(),
    }))
}

/// Adds a delivery address in the shape of the user's market (KG: street, building, apartment,
/// city, region, postal code; US: street address, second line, city, state, ZIP). The first
/// address becomes the default; at most 20 per user.
#[utoipa::path(
    post, path = "/api/v1/profile/addresses", tag = "addresses",
    security(("bearer" = [])),
    request_body = AddressRequest,
    responses(
        (status = 201, description = "Created", body = AddressResponse),
        (status = 409, description = "`limit_reached`: the user has 20 addresses"),
        (status = 422, description = "`validation_error` naming the field (a field of the other market, an unknown region or state, a malformed postal or ZIP code, a line over its length)"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create_address(
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: JsonBody<AddressRequest>,
) -> Result<HttpResponse, ApiError> {
    let market = caller.market;
    let lang = market.language();
    let body = body.0;
    let title = title(&body.title, lang)?.flatten();
    let postal = MarketAddress::parse(market, &body.postal()).map_err(invalid(lang))?;
    let new = NewAddress {
        record: AddressRecord { title, postal },
        make_default: body.is_default.unwrap_or(false),
    };
    let address = as_owner(&state, &caller, move |account, owner| {
        account.add_address(owner, new)
    })
    .await?;
    Ok(HttpResponse::Created().json(AddressResponse {
        success: true,
        message: message(MessageKey::AddressCreated, lang),
        address: AddressDto::from(&address),
    }))
}

/// Changes an address of the user: absent fields stay, `null` clears optional ones; the merged
/// address is checked again. `is_default: true` makes it the default.
#[utoipa::path(
    put, path = "/api/v1/profile/addresses/{id}", tag = "addresses",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Address id")),
    request_body = AddressRequest,
    responses(
        (status = 200, description = "Updated", body = AddressResponse),
        (status = 404, description = "`not_found`: no such address of this user"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn update_address(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: JsonBody<AddressRequest>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let id = AddressId(row_id(&path, lang)?);
    let body = body.0;
    let update = AddressUpdate {
        title: title(&body.title, lang)?,
        postal: body.postal(),
        make_default: body.is_default.unwrap_or(false),
    };
    let address = as_owner(&state, &caller, move |account, owner| {
        account.update_address(owner, id, update)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AddressResponse {
        success: true,
        message: message(MessageKey::AddressUpdated, lang),
        address: AddressDto::from(&address),
    }))
}

/// Deletes an address of the user; if it was the default, the newest remaining one becomes the
/// default.
#[utoipa::path(
    delete, path = "/api/v1/profile/addresses/{id}", tag = "addresses",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Address id")),
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 404, description = "`not_found`: no such address of this user"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_address(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, delete, done) = (
        AddressId,
        AccountService::delete_address,
        MessageKey::AddressDeleted,
    );
    delete_row(id, delete, done, &state, &caller, &path).await
}

/// The user's saved payment methods, default first, then newest first. Cards show brand and last
/// four digits only.
#[utoipa::path(
    get, path = "/api/v1/profile/payment-methods", tag = "payment-methods",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Payment methods", body = PaymentMethodListResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_payment_methods(
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let list = as_owner(&state, &caller, |account, owner| {
        account.payment_methods(owner)
    })
    .await?;
    Ok(HttpResponse::Ok().json(PaymentMethodListResponse {
        success: true,
        total: list.len(),
        payment_methods: list.iter().map(PaymentMethodDto::from).collect(),
    }))
}

/// Saves a payment method of the user's market. A card number is checked (length, Luhn check
/// digit, brand from the IIN, brand offered in the market, not expired) and dropped: only brand,
/// last four digits, expiry and holder name are kept (PCI DSS 3.3/3.4). The first payment method
/// becomes the default; at most 20 per user.
#[utoipa::path(
    post, path = "/api/v1/profile/payment-methods", tag = "payment-methods",
    security(("bearer" = [])),
    request_body = PaymentMethodRequest,
    responses(
        (status = 201, description = "Created", body = PaymentMethodResponse),
        (status = 409, description = "`limit_reached`: the user has 20 payment methods"),
        (status = 422, description = "`validation_error` naming the field; `payment_method_not_available` (a type or card brand of another market); `card_expired`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create_payment_method(
    state: web::Data<ApiState>,
    caller: Authenticated,
    body: JsonBody<PaymentMethodRequest>,
) -> Result<HttpResponse, ApiError> {
    let market = caller.market;
    let lang = market.language();
    let new = NewPaymentMethod::parse(market, &body.0.input())
        .map_err(|e| ApiError::from_account(e, lang))?;
    drop(body);
    let method = as_owner(&state, &caller, move |account, owner| {
        account.add_payment_method(owner, new)
    })
    .await?;
    Ok(HttpResponse::Created().json(PaymentMethodResponse {
        success: true,
        message: message(MessageKey::PaymentMethodAdded, lang),
        payment_method: PaymentMethodDto::from(&method),
    }))
}

/// Changes the holder name or expiry (a renewed card) of a payment method, or makes it the
/// default. The number and kind never change: save a new payment method instead.
#[utoipa::path(
    put, path = "/api/v1/profile/payment-methods/{id}", tag = "payment-methods",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Payment method id")),
    request_body = UpdatePaymentMethodRequest,
    responses(
        (status = 200, description = "Updated", body = PaymentMethodResponse),
        (status = 404, description = "`not_found`: no such payment method of this user"),
        (status = 422, description = "`validation_error` naming the field; `card_expired`"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn update_payment_method(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
    body: JsonBody<UpdatePaymentMethodRequest>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let id = PaymentMethodId(row_id(&path, lang)?);
    let body = body.0;
    if body.card_number.is_some() {
        return Err(ApiError::validation(
            "card_number",
            "cannot be changed: save a new payment method",
            lang,
        ));
    }
    let update = PaymentMethodUpdate::parse(
        body.card_holder_name.as_ref().map(Option::as_deref),
        body.expiry_month.as_deref(),
        body.expiry_year.as_deref(),
        body.is_default.unwrap_or(false),
    )
    .map_err(|e| ApiError::from_account(e, lang))?;
    let method = as_owner(&state, &caller, move |account, owner| {
        account.update_payment_method(owner, id, update)
    })
    .await?;
    Ok(HttpResponse::Ok().json(PaymentMethodResponse {
        success: true,
        message: message(MessageKey::PaymentMethodUpdated, lang),
        payment_method: PaymentMethodDto::from(&method),
    }))
}

/// Deletes a payment method of the user; if it was the default, the newest remaining one becomes
/// the default.
#[utoipa::path(
    delete, path = "/api/v1/profile/payment-methods/{id}", tag = "payment-methods",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Payment method id")),
    responses(
        (status = 200, description = "Deleted", body = SuccessResponse),
        (status = 404, description = "`not_found`: no such payment method of this user"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_payment_method(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, delete, done) = (
        PaymentMethodId,
        AccountService::delete_payment_method,
        MessageKey::PaymentMethodDeleted,
    );
    delete_row(id, delete, done, &state, &caller, &path).await
}

/// Reads `unread_only` (`true`/`false`/`1`/`0`), `limit` (1–100, default 50) and `offset` (≥ 0)
/// from the query string; other parameters are ignored.
fn notification_query(req: &HttpRequest, lang: Language) -> Result<NotificationQuery, ApiError> {
    let mut query = NotificationQuery::default();
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match key.as_ref() {
            "unread_only" => {
                query.unread_only = match value.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::validation(
                            "unread_only",
                            "must be true or false",
                            lang,
                        ));
                    }
                }
            }
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .and_then(|n| PageLimit::new(n).ok())
                    .ok_or_else(|| ApiError::validation("limit", "must be from 1 to 100", lang))?;
            }
            "offset" => {
                query.offset = value.parse::<u32>().map_err(|_| {
                    ApiError::validation("offset", "must be a whole number, 0 or more", lang)
                })?;
            }
            _ => {}
        }
    }
    Ok(query)
}

/// The user's notifications, newest first: a page (`limit` 1–100, default 50; `offset`), the
/// number matching (`total`) and the number unread (`unread_count`).
#[utoipa::path(
    get, path = "/api/v1/profile/notifications", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("unread_only" = Option<bool>, Query, description = "Only unread notifications (default false)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1–100 (default 50)"),
        ("offset" = Option<u32>, Query, description = "Notifications to skip (default 0)"),
    ),
    responses(
        (status = 200, description = "Notifications", body = NotificationListResponse),
        (status = 422, description = "`validation_error`: unread_only, limit or offset out of range"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_notifications(
    req: HttpRequest,
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let query = notification_query(&req, lang)?;
    let page = as_owner(&state, &caller, move |account, owner| {
        account.notifications(owner, query)
    })
    .await?;
    Ok(HttpResponse::Ok().json(NotificationListResponse {
        success: true,
        notifications: page.items.iter().map(NotificationDto::from).collect(),
        total: page.total,
        unread_count: page.unread_count,
    }))
}

/// Marks a notification of the user read.
#[utoipa::path(
    put, path = "/api/v1/profile/notifications/{id}/read", tag = "notifications",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Notification id")),
    responses(
        (status = 200, description = "Read", body = NotificationResponse),
        (status = 404, description = "`not_found`: no such notification of this user"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mark_notification_read(
    state: web::Data<ApiState>,
    caller: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let id = NotificationId(row_id(&path, lang)?);
    let notification = as_owner(&state, &caller, move |account, owner| {
        account.mark_notification_read(owner, id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(NotificationResponse {
        success: true,
        message: message(MessageKey::NotificationRead, lang),
        notification: NotificationDto::from(&notification),
    }))
}

/// Marks every notification of the user read; `count` tells how many were unread.
#[utoipa::path(
    put, path = "/api/v1/profile/notifications/read-all", tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All read", body = ReadAllResponse),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mark_all_notifications_read(
    state: web::Data<ApiState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let lang = caller.language();
    let count = as_owner(&state, &caller, |account, owner| {
        account.mark_all_notifications_read(owner)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ReadAllResponse {
        success: true,
        message: message(MessageKey::NotificationsRead, lang),
        count,
    }))
}

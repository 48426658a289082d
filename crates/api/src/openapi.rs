//! The OpenAPI 3.1 document, served at `/api-docs/openapi.json` and by Swagger UI at `/docs`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::account::{dto as account_dto, routes as account};
use crate::{dto, error, routes};

/// The API description: every route, schema and error response.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Marque Auth",
        description = "Phone-number authentication for multi-market e-commerce (KG, US). \
            Errors have the body `{\"success\": false, \"error\": \"<code>\", \"message\": \"<text>\"}`.",
    ),
    paths(
        routes::send_code, routes::verify_code, routes::get_profile, routes::update_profile,
        routes::verify_token, routes::logout, routes::refresh, routes::sessions,
        routes::end_session, routes::delete_account, routes::jwks, routes::markets,
        routes::health, routes::auth_health,
        account::list_addresses, account::create_address, account::update_address,
        account::delete_address, account::list_payment_methods, account::create_payment_method,
        account::update_payment_method, account::delete_payment_method,
        account::list_notifications, account::mark_notification_read,
        account::mark_all_notifications_read,
    ),
    components(schemas(
        dto::SendCodeRequest, dto::SendCodeResponse, dto::VerifyCodeRequest,
        dto::VerifyCodeResponse, dto::ProfileResponse, dto::UpdateProfileRequest,
        dto::VerifyTokenResponse, dto::SuccessResponse, dto::MarketInfo, dto::MarketsResponse,
        dto::MarketHealthDto, dto::HealthResponse, dto::MarketCode, dto::RefreshRequest,
        dto::RefreshResponse, dto::LogoutResponse, dto::SessionDto, dto::SessionsResponse,
        dto::DeleteAccountRequest, dto::JwksDocument, error::ErrorBody,
        account_dto::AddressRequest, account_dto::AddressDto, account_dto::AddressFields,
        account_dto::KgAddressFields, account_dto::UsAddressFields,
        account_dto::AddressListResponse, account_dto::AddressResponse,
        account_dto::PaymentMethodRequest, account_dto::UpdatePaymentMethodRequest,
        account_dto::PaymentMethodDto, account_dto::PaymentMethodListResponse,
        account_dto::PaymentMethodResponse, account_dto::NotificationDto,
        account_dto::NotificationListResponse, account_dto::NotificationResponse,
        account_dto::ReadAllResponse,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Phone login and tokens"),
        (name = "profile", description = "The signed-in shopper's profile"),
        (name = "addresses", description = "The signed-in shopper's delivery addresses"),
        (name = "payment-methods", description = "The signed-in shopper's saved payment methods"),
        (name = "notifications", description = "The signed-in shopper's notifications"),
        (name = "markets", description = "Served markets"),
        (name = "health", description = "Liveness and database state"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme (JWT access tokens).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

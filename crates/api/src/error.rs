//! The one place where failures become HTTP responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use marque_domain::{AccountError, AuthError};
use marque_markets::{CARD_NUMBER_IN_TEXT, Language, MessageKey, PhoneError, text};
use serde::Serialize;
use utoipa::ToSchema;

/// Body of every error response: `{"success": false, "error": "<code>", "message": "<text>"}`,
/// plus `field` for validation errors and `retry_after` (seconds) for rate limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// Stable machine-readable code, e.g. `invalid_phone`, `rate_limited`.
    #[schema(example = "invalid_phone")]
    pub error: &'static str,
    /// Human-readable text in the market's language (ru for KG, en for US and unknown).
    pub message: String,
    /// The request field at fault (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (429 only; also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Wrong tries left on the current code (`invalid_code` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
}

/// What went wrong, each with a fixed status and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 `invalid_json`.
    InvalidJson,
    /// 422 `validation_error` naming the field.
    Validation {
        /// Field name.
        field: String,
        /// English detail.
        detail: String,
    },
    /// 400 `unknown_market` (bad `X-Market`).
    UnknownMarket,
    /// 422: `invalid_phone`, `unsupported_market`, `market_mismatch`, `phone_not_mobile`.
    Phone(PhoneError),
    /// 429 `rate_limited` with `Retry-After`.
    RateLimited(u64),
    /// 400 `invalid_code`.
    InvalidCode(u32),
    /// 400 `code_expired`.
    CodeExpired,
    /// 400 `code_not_found`.
    CodeNotFound,
    /// 400 `attempts_exceeded`.
    AttemptsExceeded,
    /// 401 `invalid_token`.
    InvalidToken,
    /// 401 `invalid_refresh_token`.
    InvalidRefreshToken,
    /// 401 `refresh_token_reused`: the session was revoked.
    RefreshTokenReused,
    /// 404 `not_found`.
    NotFound,
    /// 405 `method_not_allowed`.
    MethodNotAllowed,
    /// 413 `payload_too_large`.
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType,
    /// 503 `service_unavailable`.
    Unavailable,
    /// 409 `limit_reached`: the user has the most rows of this kind allowed.
    LimitReached,
    /// 422 `payment_method_not_available`: a payment method of another market.
    PaymentMethodNotAvailable,
    /// 422 `card_expired`.
    CardExpired,
    /// 422 `card_number_in_text` naming the field: a free-text field holds a card number.
    CardNumberInText {
        /// Field name.
        field: String,
    },
    /// 500 `internal_error` (the cause is logged, never returned).
    Internal,
}

/// An error response in a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Language of the message.
    pub lang: Language,
}

impl ApiError {
    /// `kind` in `lang`.
    pub fn new(kind: ErrorKind, lang: Language) -> Self {
        Self { kind, lang }
    }

    /// A validation error for `field`.
    /// A validation error for `field`; a card number in the field
    /// ([`marque_markets::CARD_NUMBER_IN_TEXT`]) is [`ErrorKind::CardNumberInText`].
    pub fn validation(field: impl Into<String>, detail: impl Into<String>, lang: Language) -> Self {
        let (field, detail) = (field.into(), detail.into());
        if detail == CARD_NUMBER_IN_TEXT {
            return Self::new(ErrorKind::CardNumberInText { field }, lang);
        }
        Self::new(ErrorKind::Validation { field, detail }, lang)
    }

    /// The domain error `e`, in `lang`. Internal causes are logged here.
    pub fn from_auth(e: AuthError, lang: Language) -> Self {
        let kind = match e {
            AuthError::RateLimited(s) => ErrorKind::RateLimited(s),
            AuthError::InvalidCode { attempts_left } => ErrorKind::InvalidCode(attempts_left),
            AuthError::CodeExpired => ErrorKind::CodeExpired,
            AuthError::CodeNotFound => ErrorKind::CodeNotFound,
            AuthError::AttemptsExceeded => ErrorKind::AttemptsExceeded,
            AuthError::InvalidToken => ErrorKind::InvalidToken,
            AuthError::InvalidRefreshToken => ErrorKind::InvalidRefreshToken,
            AuthError::RefreshTokenReused => ErrorKind::RefreshTokenReused,
            AuthError::NotFound => ErrorKind::NotFound,
            AuthError::Unavailable(m) => {
                tracing::warn!(market = %m, "market database unavailable");
                ErrorKind::Unavailable
            }
            AuthError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ErrorKind::Internal
            }
        };
        Self::new(kind, lang)
    }

    /// The account-data error `e`, in `lang`. Internal causes are logged here; validation
    /// errors never carry the offending value (card numbers must not reach logs or responses).
    pub fn from_account(e: AccountError, lang: Language) -> Self {
        let kind = match e {
            AccountError::NotFound => ErrorKind::NotFound,
            AccountError::LimitReached(_) => ErrorKind::LimitReached,
            AccountError::Invalid(f) if f.is_card_number_in_text() => ErrorKind::CardNumberInText {
                field: f.field.to_owned(),
            },
            AccountError::Invalid(f) => ErrorKind::Validation {
                field: f.field.to_owned(),
                detail: f.reason.to_owned(),
            },
            AccountError::PaymentMethodNotAvailable => ErrorKind::PaymentMethodNotAvailable,
            AccountError::CardExpired => ErrorKind::CardExpired,
            AccountError::Unavailable(m) => {
                tracing::warn!(market = %m, "market database unavailable");
                ErrorKind::Unavailable
            }
            AccountError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ErrorKind::Internal
            }
        };
        Self::new(kind, lang)
    }

    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::Validation { .. } => "validation_error",
            ErrorKind::UnknownMarket => "unknown_market",
            ErrorKind::Phone(e) => e.code(),
            ErrorKind::RateLimited(_) => "rate_limited",
            ErrorKind::InvalidCode(_) => "invalid_code",
            ErrorKind::CodeExpired => "code_expired",
            ErrorKind::CodeNotFound => "code_not_found",
            ErrorKind::AttemptsExceeded => "attempts_exceeded",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InvalidRefreshToken => "invalid_refresh_token",
            ErrorKind::RefreshTokenReused => "refresh_token_reused",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Unavailable => "service_unavailable",
            ErrorKind::Internal => "internal_error",
            ErrorKind::LimitReached => "limit_reached",
            ErrorKind::PaymentMethodNotAvailable => "payment_method_not_available",
            ErrorKind::CardExpired => "card_expired",
            ErrorKind::CardNumberInText { .. } => "card_number_in_text",
        }
    }

    fn key(&self) -> MessageKey {
        match &self.kind {
            ErrorKind::InvalidJson => MessageKey::InvalidJson,
            ErrorKind::Validation { .. } => MessageKey::ValidationError,
            ErrorKind::UnknownMarket => MessageKey::UnknownMarket,
            ErrorKind::Phone(e) => e.message_key(),
            ErrorKind::RateLimited(_) => MessageKey::RateLimited,
            ErrorKind::InvalidCode(_) => MessageKey::InvalidCode,
            ErrorKind::CodeExpired => MessageKey::CodeExpired,
            ErrorKind::CodeNotFound => MessageKey::CodeNotFound,
            ErrorKind::AttemptsExceeded => MessageKey::AttemptsExceeded,
            ErrorKind::InvalidToken => MessageKey::InvalidToken,
            ErrorKind::InvalidRefreshToken => MessageKey::InvalidRefreshToken,
            ErrorKind::RefreshTokenReused => MessageKey::RefreshTokenReused,
            ErrorKind::NotFound => MessageKey::NotFound,
            ErrorKind::MethodNotAllowed => MessageKey::MethodNotAllowed,
            ErrorKind::PayloadTooLarge => MessageKey::PayloadTooLarge,
            ErrorKind::UnsupportedMediaType => MessageKey::UnsupportedMediaType,
            ErrorKind::Unavailable => MessageKey::ServiceUnavailable,
            ErrorKind::Internal => MessageKey::InternalError,
            ErrorKind::LimitReached => MessageKey::LimitReached,
            ErrorKind::PaymentMethodNotAvailable => MessageKey::PaymentMethodNotAvailable,
            ErrorKind::CardExpired => MessageKey::CardExpired,
            ErrorKind::CardNumberInText { .. } => MessageKey::CardNumberInText,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let base = text(self.key(), self.lang);
        let (message, field) = match &self.kind {
            ErrorKind::Validation { field, detail } => {
                (format!("{base}: {field}: {detail}"), Some(field.clone()))
            }
            ErrorKind::CardNumberInText { field } => {
                (format!("{base}: {field}"), Some(field.clone()))
            }
            _ => (base.to_owned(), None),
        };
        ErrorBody {
            success: false,
            error: self.code(),
            message,
            field,
            retry_after: match self.kind {
                ErrorKind::RateLimited(s) => Some(s),
                _ => None,
            },
            attempts_left: match self.kind {
                ErrorKind::InvalidCode(n) => Some(n),
                _ => None,
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            ErrorKind::InvalidJson
            | ErrorKind::UnknownMarket
            | ErrorKind::InvalidCode(_)
            | ErrorKind::CodeExpired
            | ErrorKind::CodeNotFound
            | ErrorKind::AttemptsExceeded => StatusCode::BAD_REQUEST,
            ErrorKind::Validation { .. }
            | ErrorKind::Phone(_)
            | ErrorKind::PaymentMethodNotAvailable
            | ErrorKind::CardExpired
            | ErrorKind::CardNumberInText { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::LimitReached => StatusCode::CONFLICT,
            ErrorKind::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::InvalidToken
            | ErrorKind::InvalidRefreshToken
            | ErrorKind::RefreshTokenReused => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self.kind {
            ErrorKind::RateLimited(s) => {
                res.insert_header((header::RETRY_AFTER, s.to_string()));
            }
            ErrorKind::InvalidToken => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            _ => {}
        }
        res.json(self.body())
    }
}

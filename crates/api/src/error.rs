//! The one place where failures become HTTP responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use marque_domain::{AccountError, AdminError, AuthError};
use marque_markets::{CARD_NUMBER_IN_TEXT, Language, Market, MessageKey, PhoneError, text};
use serde::Serialize;
use utoipa::ToSchema;

/// Body of every error response: `{"success": false, "error": "<code>", "message": "<text>"}`,
/// plus `field` for validation errors and `retry_after` (seconds) for rate limits and locks, and
/// `request_id` (the response's `X-Request-Id`) in every error the application answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    #[schema(example = false)]
    pub success: bool,
    /// Stable machine-readable code, e.g. `invalid_phone`, `rate_limited`.
    #[schema(example = "invalid_phone")]
    pub error: &'static str,
    /// Human-readable text in the market's language (ru for KG, en for US and unknown).
    #[schema(example = "Invalid phone number")]
    pub message: String,
    /// The request field at fault (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "phone_number")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (429 `rate_limited` and `sms_budget_exceeded`; also in
    /// the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 60)]
    pub retry_after: Option<u64>,
    /// The request's id, as in the `X-Request-Id` response header: quote it when reporting a
    /// problem. Filled in by the server's request-id middleware.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "3f2c1d9e-8b7a-4c5d-9e0f-1a2b3c4d5e6f")]
    pub request_id: Option<String>,
}

/// The error table: every error the API answers with, one row each — its [`ErrorKind`] variant
/// (with the data its body carries), HTTP status, stable code and message key, and example values
/// for the OpenAPI document. Adding an error code is one row here plus its texts in the
/// `marque-markets` catalog ([`MessageKey`]); status, body, documentation and examples follow.
macro_rules! error_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $( ( $($bind:ident : $ty:ty),* ) )?
            $( { $($(#[$fdoc:meta])* $field:ident : $fty:ty),* } )?
            => $row:expr, examples [$($example:expr),+ $(,)?];
    )*) => {
        /// What went wrong. Status, code and message of each kind are in the error table.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant $( ( $($ty),* ) )? $( { $($(#[$fdoc])* $field: $fty),* } )?, )*
        }

        impl ErrorKind {
            /// `(status, stable code, message key)`: the row of this kind in the error table.
            fn row(&self) -> (StatusCode, &'static str, MessageKey) {
                use {MessageKey as K, StatusCode as S};
                match self {
                    $( Self::$variant $( ( $($bind),* ) )? $( { $($field: _),* } )? => $row, )*
                }
            }

            /// One value of each code, for the examples of the OpenAPI document.
            pub fn examples() -> Vec<ErrorKind> {
                vec![$($($example),+),*]
            }
        }
    };
}

error_table! {
    /// Malformed JSON body.
    InvalidJson => (S::BAD_REQUEST, "invalid_json", K::InvalidJson),
        examples [Self::InvalidJson];
    /// A field of the request breaks a rule; `field` names it.
    Validation {
        /// The request field at fault.
        field: String,
        /// What is wrong with it, in English; never the value.
        detail: String
    }
        => (S::UNPROCESSABLE_ENTITY, "validation_error", K::ValidationError),
        examples [Self::Validation {
            field: "phone_number".to_owned(),
            detail: "missing field `phone_number`".to_owned(),
        }];
    /// A free-text field holds a card number (PCI DSS 3.3/3.4); `field` names it, the value is
    /// never echoed.
    CardNumberInText {
        /// The request field at fault.
        field: String
    }
        => (S::UNPROCESSABLE_ENTITY, "card_number_in_text", K::CardNumberInText),
        examples [Self::CardNumberInText { field: "full_name".to_owned() }];
    /// Unknown `X-Market`.
    UnknownMarket => (S::BAD_REQUEST, "unknown_market", K::UnknownMarket),
        examples [Self::UnknownMarket];
    /// The phone number is refused; `marque-markets` names the code (`invalid_phone`,
    /// `unsupported_market`, `market_mismatch`, `phone_not_mobile`).
    Phone(e: PhoneError) => (S::UNPROCESSABLE_ENTITY, e.code(), e.message_key()),
        examples [
            Self::Phone(PhoneError::Invalid),
            Self::Phone(PhoneError::UnsupportedMarket),
            Self::Phone(PhoneError::MarketMismatch { number_market: Market::Us, requested: Market::Kg }),
            Self::Phone(PhoneError::NotMobile { market: Market::Kg }),
        ];
    /// Too many requests; retry after this many seconds (also in `Retry-After`).
    RateLimited(_secs: u64) => (S::TOO_MANY_REQUESTS, "rate_limited", K::RateLimited),
        examples [Self::RateLimited(60)];
    /// An SMS-pumping guard (daily SMS budget, hourly limit of the number's range) is used up;
    /// nothing was sent. Retry after this many seconds (also in `Retry-After`).
    SmsBudgetExceeded(_secs: u64)
        => (S::TOO_MANY_REQUESTS, "sms_budget_exceeded", K::SmsBudgetExceeded),
        examples [Self::SmsBudgetExceeded(3600)];
    /// A CAPTCHA is configured and send-code carries no `captcha_token`.
    CaptchaRequired => (S::BAD_REQUEST, "captcha_required", K::CaptchaRequired),
        examples [Self::CaptchaRequired];
    /// The CAPTCHA provider refused `captcha_token`.
    CaptchaInvalid => (S::BAD_REQUEST, "captcha_invalid", K::CaptchaInvalid),
        examples [Self::CaptchaInvalid];
    /// The asked-for `channel` is not in the market's list (`CHANNELS_{MARKET}`) or has no
    /// configured provider.
    ChannelNotAvailable
        => (S::UNPROCESSABLE_ENTITY, "channel_not_available", K::ChannelNotAvailable),
        examples [Self::ChannelNotAvailable];
    /// A provider callback's signature (`X-Twilio-Signature`, `X-Request-Signature`) is missing,
    /// stale or wrong; nothing changed.
    InvalidSignature => (S::UNAUTHORIZED, "invalid_signature", K::InvalidSignature),
        examples [Self::InvalidSignature];
    /// A correctly signed provider callback whose body is not understood.
    InvalidCallback => (S::BAD_REQUEST, "invalid_callback", K::InvalidCallback),
        examples [Self::InvalidCallback];
    /// Telegram Login Widget data whose hash is wrong or whose `auth_date` is over a day old.
    InvalidTelegramAuth => (S::UNAUTHORIZED, "invalid_telegram_auth", K::InvalidTelegramAuth),
        examples [Self::InvalidTelegramAuth];
    /// The Telegram user is not linked to an account: sign in with the phone number (or the bot)
    /// first.
    TelegramNotLinked => (S::NOT_FOUND, "telegram_not_linked", K::TelegramNotLinked),
        examples [Self::TelegramNotLinked];
    /// The WhatsApp webhook handshake's `hub.mode` or `hub.verify_token` is wrong.
    WebhookVerificationFailed
        => (S::FORBIDDEN, "webhook_verification_failed", K::WebhookVerificationFailed),
        examples [Self::WebhookVerificationFailed];
    /// The code was not accepted: wrong, used, expired, dead after too many tries, for another
    /// purpose or `challenge_id`, or none issued — one answer for all, so a probe learns nothing.
    InvalidCode => (S::BAD_REQUEST, "invalid_code", K::InvalidCode),
        examples [Self::InvalidCode];
    /// The number is locked after too many consecutive wrong codes; retry after this many
    /// seconds (also in `Retry-After`).
    PhoneLocked(_secs: u64) => (S::TOO_MANY_REQUESTS, "phone_locked", K::PhoneLocked),
        examples [Self::PhoneLocked(86_400)];
    /// The account is disabled (`users.is_active = false`); answered only after a right code.
    AccountDisabled => (S::FORBIDDEN, "account_disabled", K::AccountDisabled),
        examples [Self::AccountDisabled];
    /// Email sign-in: unknown address or wrong password (one answer for both; issue 10), or a
    /// wrong `current_password` on change-password.
    InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials", K::InvalidCredentials),
        examples [Self::InvalidCredentials];
    /// Email sign-in with the right password for an address not verified yet: follow the
    /// emailed link, or ask for a new one (`POST /api/v1/auth/email/resend-verification`).
    EmailNotVerified => (S::FORBIDDEN, "email_not_verified", K::EmailNotVerified),
        examples [Self::EmailNotVerified];
    /// A new password breaks the policy (NIST SP 800-63B §3.1.1.2); the code names the rule:
    /// `password_too_short` (< 12 characters after NFKC), `password_too_long` (> 128),
    /// `password_contains_email`, `password_too_weak` (zxcvbn score < 3).
    WeakPassword(rule: marque_domain::PasswordRule)
        => (S::UNPROCESSABLE_ENTITY, rule.code(), password_message(*rule)),
        examples [
            Self::WeakPassword(marque_domain::PasswordRule::TooShort),
            Self::WeakPassword(marque_domain::PasswordRule::TooLong),
            Self::WeakPassword(marque_domain::PasswordRule::ContainsEmail),
            Self::WeakPassword(marque_domain::PasswordRule::TooWeak),
        ];
    /// The email address is malformed.
    InvalidEmail => (S::UNPROCESSABLE_ENTITY, "invalid_email", K::InvalidEmail),
        examples [Self::InvalidEmail];
    /// An email link token that is unknown, used or expired.
    InvalidEmailLink => (S::BAD_REQUEST, "invalid_link", K::EmailLinkInvalid),
        examples [Self::InvalidEmailLink];
    /// Email sign-in without `X-Market` for an address that exists in more than one market:
    /// repeat with `X-Market`.
    MarketRequired => (S::BAD_REQUEST, "market_required", K::MarketRequired),
        examples [Self::MarketRequired];
    /// The account already has a verified email address.
    EmailAlreadyLinked => (S::CONFLICT, "email_already_linked", K::EmailAlreadyLinked),
        examples [Self::EmailAlreadyLinked];
    /// Verify-code with a bearer token for a number that belongs to another account.
    PhoneInUse => (S::CONFLICT, "phone_in_use", K::PhoneInUse),
        examples [Self::PhoneInUse];
    /// The admin API key (`Authorization: Bearer <ADMIN_API_KEY>`) is missing or wrong; with
    /// `WWW-Authenticate: Bearer realm="marque-admin"`.
    AdminUnauthorized => (S::UNAUTHORIZED, "admin_unauthorized", K::AdminUnauthorized),
        examples [Self::AdminUnauthorized];
    /// Access token missing, malformed, expired or of an ended session.
    InvalidToken => (S::UNAUTHORIZED, "invalid_token", K::InvalidToken),
        examples [Self::InvalidToken];
    /// Refresh token unknown, expired or of an ended session.
    InvalidRefreshToken => (S::UNAUTHORIZED, "invalid_refresh_token", K::InvalidRefreshToken),
        examples [Self::InvalidRefreshToken];
    /// A rotated refresh token came back: the session was revoked.
    RefreshTokenReused => (S::UNAUTHORIZED, "refresh_token_reused", K::RefreshTokenReused),
        examples [Self::RefreshTokenReused];
    /// No such route, row or session (of this user).
    NotFound => (S::NOT_FOUND, "not_found", K::NotFound),
        examples [Self::NotFound];
    /// A request the server refused before any route read it (e.g. a CORS preflight from an
    /// origin, method or header not allowed); the status and body of errors made outside the
    /// application, shaped by [`crate::shape`].
    BadRequest => (S::BAD_REQUEST, "bad_request", K::BadRequest),
        examples [Self::BadRequest];
    /// A known route with another method.
    MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed", K::MethodNotAllowed),
        examples [Self::MethodNotAllowed];
    /// The user has the most rows of this kind allowed.
    LimitReached => (S::CONFLICT, "limit_reached", K::LimitReached),
        examples [Self::LimitReached];
    /// Body over the limit (16 KiB).
    PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "payload_too_large", K::PayloadTooLarge),
        examples [Self::PayloadTooLarge];
    /// The body is not JSON.
    UnsupportedMediaType
        => (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", K::UnsupportedMediaType),
        examples [Self::UnsupportedMediaType];
    /// A payment method or card brand of another market.
    PaymentMethodNotAvailable => (
        S::UNPROCESSABLE_ENTITY,
        "payment_method_not_available",
        K::PaymentMethodNotAvailable,
    ), examples [Self::PaymentMethodNotAvailable];
    /// The card's expiry month is over.
    CardExpired => (S::UNPROCESSABLE_ENTITY, "card_expired", K::CardExpired),
        examples [Self::CardExpired];
    /// The market's database is down or not configured.
    Unavailable => (S::SERVICE_UNAVAILABLE, "service_unavailable", K::ServiceUnavailable),
        examples [Self::Unavailable];
    /// Anything unexpected (the cause is logged, never returned).
    Internal => (S::INTERNAL_SERVER_ERROR, "internal_error", K::InternalError),
        examples [Self::Internal];
    /// A request with `Transfer-Encoding` (request smuggling defence, GHSA-9w4r-xc43-v236);
    /// the connection is closed.
    UnsupportedTransferEncoding
        => (S::BAD_REQUEST, "unsupported_transfer_encoding", K::UnsupportedTransferEncoding),
        examples [Self::UnsupportedTransferEncoding];
    /// The body did not arrive within `BODY_READ_TIMEOUT_SECONDS`; the connection is closed.
    RequestTimeout => (S::REQUEST_TIMEOUT, "request_timeout", K::RequestTimeout),
        examples [Self::RequestTimeout];
    /// The client IP holds `MAX_CONNECTIONS_PER_IP` connections already; this one is closed.
    TooManyConnections => (S::TOO_MANY_REQUESTS, "too_many_connections", K::TooManyConnections),
        examples [Self::TooManyConnections];
}

/// The message of a password rule.
pub fn password_message(rule: marque_domain::PasswordRule) -> MessageKey {
    use marque_domain::PasswordRule as R;
    match rule {
        R::TooShort => MessageKey::PasswordTooShort,
        R::TooLong => MessageKey::PasswordTooLong,
        R::ContainsEmail => MessageKey::PasswordContainsEmail,
        R::TooWeak => MessageKey::PasswordTooWeak,
    }
}

/// Seconds a client should wait after a 503 `service_unavailable` (RFC 9110 §15.6.4,
/// `Retry-After`): the store's circuit breaker probes a down database again within 2 s.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 2;

/// An error response in a language. The domain error it came from, if any, is its
/// [`source`](std::error::Error::source), for logs; it never reaches the response.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.code())]
pub struct ApiError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Language of the message.
    pub lang: Language,
    /// The failure behind it.
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    /// `kind` in `lang`.
    pub fn new(kind: ErrorKind, lang: Language) -> Self {
        Self {
            kind,
            lang,
            source: None,
        }
    }

    /// `kind` in `lang`, caused by `source` (kept for logs).
    pub fn caused_by(
        kind: ErrorKind,
        lang: Language,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            lang,
            source: Some(Box::new(source)),
        }
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
        let kind = match &e {
            AuthError::RateLimited(s) => ErrorKind::RateLimited(*s),
            AuthError::SmsBudgetExceeded(s) => ErrorKind::SmsBudgetExceeded(*s),
            AuthError::ChannelNotAvailable(_) => ErrorKind::ChannelNotAvailable,
            AuthError::CaptchaRequired => ErrorKind::CaptchaRequired,
            AuthError::CaptchaInvalid => ErrorKind::CaptchaInvalid,
            // The provider could not be asked: fail closed, like a database outage.
            AuthError::CaptchaUnavailable(_) => ErrorKind::Unavailable,
            AuthError::InvalidCode(_) => ErrorKind::InvalidCode,
            AuthError::PhoneLocked(s) => ErrorKind::PhoneLocked(*s),
            AuthError::AccountDisabled => ErrorKind::AccountDisabled,
            AuthError::InvalidToken => ErrorKind::InvalidToken,
            AuthError::InvalidRefreshToken => ErrorKind::InvalidRefreshToken,
            AuthError::RefreshTokenReused => ErrorKind::RefreshTokenReused,
            AuthError::NotFound => ErrorKind::NotFound,
            AuthError::InvalidTelegramAuth => ErrorKind::InvalidTelegramAuth,
            AuthError::TelegramNotLinked => ErrorKind::TelegramNotLinked,
            AuthError::InvalidCredentials => ErrorKind::InvalidCredentials,
            AuthError::EmailNotVerified => ErrorKind::EmailNotVerified,
            AuthError::WeakPassword(rule) => ErrorKind::WeakPassword(*rule),
            AuthError::InvalidEmailLink => ErrorKind::InvalidEmailLink,
            AuthError::MarketRequired => ErrorKind::MarketRequired,
            AuthError::EmailAlreadyLinked => ErrorKind::EmailAlreadyLinked,
            AuthError::PhoneInUse => ErrorKind::PhoneInUse,
            AuthError::Unavailable(_) => ErrorKind::Unavailable,
            AuthError::Internal(_) => ErrorKind::Internal,
        };
        Self::caused_by(kind, lang, e).logged()
    }

    /// The account-data error `e`, in `lang`. Internal causes are logged here; validation
    /// errors never carry the offending value (card numbers must not reach logs or responses).
    pub fn from_account(e: AccountError, lang: Language) -> Self {
        let kind = match &e {
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
            AccountError::Unavailable(_) => ErrorKind::Unavailable,
            AccountError::Internal(_) => ErrorKind::Internal,
        };
        Self::caused_by(kind, lang, e).logged()
    }

    /// The admin-service error `e`, in `lang`. Internal causes are logged here.
    pub fn from_admin(e: AdminError, lang: Language) -> Self {
        let kind = match &e {
            AdminError::Unauthorized => ErrorKind::AdminUnauthorized,
            AdminError::NotFound => ErrorKind::NotFound,
            AdminError::Unavailable(_) => ErrorKind::Unavailable,
            AdminError::Internal(_) => ErrorKind::Internal,
        };
        Self::caused_by(kind, lang, e).logged()
    }

    /// Logs server-side failures (5xx) at ERROR with their cause chain; client errors are the
    /// client's (the access log notes them at DEBUG).
    fn logged(self) -> Self {
        if let Some(cause) = &self.source {
            match self.kind {
                ErrorKind::Unavailable => {
                    // During an outage every request of the market ends here (fast, with the
                    // breaker open): one line per cause (e.g. "market kg unavailable") per
                    // interval, with the number of answers it stands for.
                    let now = std::time::Instant::now();
                    if let Some(answers) = UNAVAILABLE_LOG.due(&cause.to_string(), now) {
                        tracing::error!(
                            error = %cause_chain(cause.as_ref()),
                            answers,
                            "market unavailable"
                        );
                    }
                }
                ErrorKind::Internal => {
                    tracing::error!(error = %cause_chain(cause.as_ref()), "internal error");
                }
                _ => {}
            }
        }
        self
    }

    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        self.kind.row().1
    }

    /// Seconds to wait before retrying (body `retry_after` and the `Retry-After` header, RFC 9110
    /// §10.2.3), for the refusals that carry it. A market that is down answers
    /// [`UNAVAILABLE_RETRY_AFTER`]: its circuit breaker probes the database again within that.
    fn retry_after(&self) -> Option<u64> {
        match self.kind {
            ErrorKind::RateLimited(s)
            | ErrorKind::SmsBudgetExceeded(s)
            | ErrorKind::PhoneLocked(s) => Some(s),
            ErrorKind::Unavailable => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let base = text(self.kind.row().2, self.lang);
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
            retry_after: self.retry_after(),
            request_id: None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.row().0
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(s) = self.retry_after() {
            res.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        if matches!(self.kind, ErrorKind::InvalidToken) {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            ));
        }
        if matches!(self.kind, ErrorKind::AdminUnauthorized) {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(crate::admin::ADMIN_CHALLENGE),
            ));
        }
        res.json(self.body())
    }
}

/// How often an outage's 503s are logged: once per cause per this interval.
pub const UNAVAILABLE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

static UNAVAILABLE_LOG: LogBudget = LogBudget::new(UNAVAILABLE_LOG_INTERVAL);

/// One log line per key per interval, counting the events in between.
#[derive(Debug)]
pub struct LogBudget {
    interval: std::time::Duration,
    seen: std::sync::Mutex<Vec<(String, std::time::Instant, u64)>>,
}

impl LogBudget {
    /// Most keys remembered; more (an unusual variety of causes) start over.
    const MAX_KEYS: usize = 64;

    /// A budget of one line per key per `interval`.
    pub const fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Counts an event of `key` at `now`; `Some(n)` when a line is due (the first event of a key,
    /// then once per interval), `n` being the events since the last line, this one included.
    pub fn due(&self, key: &str, now: std::time::Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.iter_mut().find(|(k, _, _)| k == key) {
            Some((_, at, count)) => {
                *count += 1;
                if now.saturating_duration_since(*at) < self.interval {
                    return None;
                }
                let n = *count;
                (*at, *count) = (now, 0);
                Some(n)
            }
            None => {
                if seen.len() >= Self::MAX_KEYS {
                    seen.clear();
                }
                seen.push((key.to_owned(), now, 0));
                Some(1)
            }
        }
    }
}

/// `error: its source: the source's source…`, the whole chain on one line.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("pool timed out")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn outage_lines_are_bounded_per_cause_with_a_count() {
        let budget = LogBudget::new(std::time::Duration::from_secs(10));
        let t0 = std::time::Instant::now();
        assert_eq!(budget.due("market kg unavailable", t0), Some(1));
        assert_eq!(budget.due("market us unavailable", t0), Some(1));
        for i in 1..=50 {
            let at = t0 + std::time::Duration::from_millis(i * 100);
            assert_eq!(budget.due("market kg unavailable", at), None);
        }
        let later = t0 + std::time::Duration::from_secs(10);
        assert_eq!(budget.due("market kg unavailable", later), Some(51));
        assert_eq!(budget.due("market us unavailable", later), Some(1));
    }

    #[test]
    fn the_cause_chain_names_every_source() {
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(cause_chain(&e), "pool timed out: connection refused");
    }
}

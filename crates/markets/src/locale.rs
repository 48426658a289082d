//! The catalog of user-facing texts, in Russian (Kyrgyzstan) and English (United States).

use crate::market::Language;
use crate::otp::OtpPurpose;

/// Identifies one user-facing message. Every key has a Russian and an English text; see
/// [`text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKey {
    /// A verification code was sent.
    CodeSent,
    /// The phone number was verified (login succeeded).
    PhoneVerified,
    /// The user profile was updated.
    ProfileUpdated,
    /// The session was ended.
    LoggedOut,
    /// The phone number is malformed or not a valid number.
    InvalidPhone,
    /// The phone number belongs to a country we do not serve.
    UnsupportedMarket,
    /// The phone number belongs to a different market than the one requested.
    MarketMismatch,
    /// The phone number cannot receive SMS (landline, toll-free…).
    PhoneNotMobile,
    /// The market code is not one we serve.
    UnknownMarket,
    /// The request body is not well-formed JSON.
    InvalidJson,
    /// The request is well-formed but fails validation.
    ValidationError,
    /// Too many requests; the client must wait.
    RateLimited,
    /// The verification code is wrong.
    InvalidCode,
    /// The verification code has expired.
    CodeExpired,
    /// There is no active verification code for this number.
    CodeNotFound,
    /// Too many wrong verification attempts.
    AttemptsExceeded,
    /// The access token is missing, invalid or expired.
    InvalidToken,
    /// The resource does not exist.
    NotFound,
    /// The HTTP method is not allowed on this resource.
    MethodNotAllowed,
    /// A request the server cannot read (e.g. a refused CORS preflight).
    BadRequest,
    /// The request body is too large.
    PayloadTooLarge,
    /// The request content type is not supported.
    UnsupportedMediaType,
    /// A dependency (database, SMS provider…) is temporarily unavailable.
    ServiceUnavailable,
    /// An unexpected server error.
    InternalError,
    /// A refresh token was exchanged for new tokens.
    TokenRefreshed,
    /// The refresh token is unknown, expired or of an ended session.
    InvalidRefreshToken,
    /// A refresh token was used twice; the session was ended for safety.
    RefreshTokenReused,
    /// Sessions were ended (logout, session removal).
    SessionsEnded,
    /// The account and its data were deleted.
    AccountDeleted,
    /// A delivery address was saved.
    AddressCreated,
    /// A delivery address was changed.
    AddressUpdated,
    /// A delivery address was deleted.
    AddressDeleted,
    /// A payment method was saved.
    PaymentMethodAdded,
    /// A payment method was changed.
    PaymentMethodUpdated,
    /// A payment method was deleted.
    PaymentMethodDeleted,
    /// One notification was marked read.
    NotificationRead,
    /// Every notification was marked read.
    NotificationsRead,
    /// The user already has the most rows of this kind allowed (20 addresses…).
    LimitReached,
    /// The payment method or card brand is not offered in the user's market.
    PaymentMethodNotAvailable,
    /// The card's expiry date has passed.
    CardExpired,
    /// The request used `Transfer-Encoding` (chunked bodies are not accepted).
    UnsupportedTransferEncoding,
    /// The request body did not arrive in time.
    RequestTimeout,
    /// The client holds too many open connections.
    TooManyConnections,
    /// A free-text field holds a card number (PCI DSS 3.3/3.4); the API names the field.
    CardNumberInText,
    /// The account is disabled.
    AccountDisabled,
    /// An SMS budget or a number range's hourly limit is used up (SMS-pumping guard).
    SmsBudgetExceeded,
    /// send-code needs a CAPTCHA token and none was given.
    CaptchaRequired,
    /// The CAPTCHA token was refused by the provider.
    CaptchaInvalid,
    /// Too many wrong codes for the number: it is locked for a while.
    PhoneLocked,
    /// The asked-for delivery channel is not offered in the market.
    ChannelNotAvailable,
    /// A provider callback's signature is missing or wrong.
    InvalidSignature,
    /// A signed provider callback whose body is not understood.
    InvalidCallback,
    /// The admin API key is missing or wrong (`Authorization: Bearer <ADMIN_API_KEY>`).
    AdminUnauthorized,
    /// An admin action was done (user disabled or enabled, sessions ended).
    AdminActionDone,
    /// The word before the nonce in a WhatsApp deep link (`Войти` / `Sign in`).
    MessengerLoginPrefix,
    /// The bot asks the Telegram user to share their number.
    MessengerShareContact,
    /// The label of the bot's share-contact button.
    MessengerShareContactButton,
    /// A messenger sign-in link is unknown, used or expired.
    MessengerLinkExpired,
    /// A Telegram user shared someone else's contact.
    MessengerNotYourContact,
    /// The messenger's number is outside our markets or not a mobile number.
    MessengerNumberNotServed,
    /// A messenger sign-in completed.
    MessengerSignedIn,
    /// A messenger sign-in was refused (locked number or disabled account).
    MessengerSignInRefused,
    /// Telegram Login Widget data with a wrong or stale hash.
    InvalidTelegramAuth,
    /// The Telegram user is not linked to an account.
    TelegramNotLinked,
    /// The WhatsApp webhook subscription handshake failed.
    WebhookVerificationFailed,
    /// The account's Telegram link was removed.
    TelegramUnlinked,
    /// Registration accepted: a confirmation email is on its way (issue 10).
    EmailRegistered,
    /// The address was verified (page).
    EmailVerified,
    /// A verification or reset link is unknown, used or expired.
    EmailLinkInvalid,
    /// Sign-in with an address not verified yet.
    EmailNotVerified,
    /// Unknown address or wrong password (one text for both).
    InvalidCredentials,
    /// Answer to resend-verification and forgot-password, whatever the address.
    EmailInstructionsSent,
    /// The password was changed.
    PasswordChanged,
    /// A new password is shorter than 12 characters.
    PasswordTooShort,
    /// A new password is longer than 128 characters.
    PasswordTooLong,
    /// A new password is too easy to guess (zxcvbn).
    PasswordTooWeak,
    /// A new password contains the email address's name.
    PasswordContainsEmail,
    /// The email address is malformed.
    InvalidEmail,
    /// X-Market is needed: email sign-up, or sign-in with an address that exists in several
    /// markets.
    MarketRequired,
    /// The account already has a verified address.
    EmailAlreadyLinked,
    /// The number belongs to another account.
    PhoneInUse,
    /// An address was added to the account: a confirmation email is on its way.
    EmailLinkStarted,
    /// Title of the password-reset page.
    ResetPageTitle,
    /// Hint of the password-reset form.
    ResetPageHint,
    /// Label of the new-password field.
    ResetPageLabel,
    /// Submit button of the password-reset form.
    ResetPageSubmit,
    /// The password was reset (page).
    PasswordResetDone,
    /// The reset form was not sent from our page (CSRF check failed).
    FormExpired,
    /// Signed in with an email address and password.
    EmailSignedIn,
}

impl MessageKey {
    /// Every key, in declaration order.
    pub const ALL: [MessageKey; 89] = [
        MessageKey::CodeSent,
        MessageKey::PhoneVerified,
        MessageKey::ProfileUpdated,
        MessageKey::LoggedOut,
        MessageKey::InvalidPhone,
        MessageKey::UnsupportedMarket,
        MessageKey::MarketMismatch,
        MessageKey::PhoneNotMobile,
        MessageKey::UnknownMarket,
        MessageKey::InvalidJson,
        MessageKey::ValidationError,
        MessageKey::RateLimited,
        MessageKey::InvalidCode,
        MessageKey::CodeExpired,
        MessageKey::CodeNotFound,
        MessageKey::AttemptsExceeded,
        MessageKey::InvalidToken,
        MessageKey::NotFound,
        MessageKey::MethodNotAllowed,
        MessageKey::BadRequest,
        MessageKey::PayloadTooLarge,
        MessageKey::UnsupportedMediaType,
        MessageKey::ServiceUnavailable,
        MessageKey::InternalError,
        MessageKey::TokenRefreshed,
        MessageKey::InvalidRefreshToken,
        MessageKey::RefreshTokenReused,
        MessageKey::SessionsEnded,
        MessageKey::AccountDeleted,
        MessageKey::AddressCreated,
        MessageKey::AddressUpdated,
        MessageKey::AddressDeleted,
        MessageKey::PaymentMethodAdded,
        MessageKey::PaymentMethodUpdated,
        MessageKey::PaymentMethodDeleted,
        MessageKey::NotificationRead,
        MessageKey::NotificationsRead,
        MessageKey::LimitReached,
        MessageKey::PaymentMethodNotAvailable,
        MessageKey::CardExpired,
        MessageKey::UnsupportedTransferEncoding,
        MessageKey::RequestTimeout,
        MessageKey::TooManyConnections,
        MessageKey::CardNumberInText,
        MessageKey::AccountDisabled,
        MessageKey::SmsBudgetExceeded,
        MessageKey::CaptchaRequired,
        MessageKey::CaptchaInvalid,
        MessageKey::PhoneLocked,
        MessageKey::ChannelNotAvailable,
        MessageKey::InvalidSignature,
        MessageKey::InvalidCallback,
        MessageKey::AdminUnauthorized,
        MessageKey::AdminActionDone,
        MessageKey::MessengerLoginPrefix,
        MessageKey::MessengerShareContact,
        MessageKey::MessengerShareContactButton,
        MessageKey::MessengerLinkExpired,
        MessageKey::MessengerNotYourContact,
        MessageKey::MessengerNumberNotServed,
        MessageKey::MessengerSignedIn,
        MessageKey::MessengerSignInRefused,
        MessageKey::InvalidTelegramAuth,
        MessageKey::TelegramNotLinked,
        MessageKey::WebhookVerificationFailed,
        MessageKey::TelegramUnlinked,
        MessageKey::EmailRegistered,
        MessageKey::EmailVerified,
        MessageKey::EmailLinkInvalid,
        MessageKey::EmailNotVerified,
        MessageKey::InvalidCredentials,
        MessageKey::EmailInstructionsSent,
        MessageKey::PasswordChanged,
        MessageKey::PasswordTooShort,
        MessageKey::PasswordTooLong,
        MessageKey::PasswordTooWeak,
        MessageKey::PasswordContainsEmail,
        MessageKey::InvalidEmail,
        MessageKey::MarketRequired,
        MessageKey::EmailAlreadyLinked,
        MessageKey::PhoneInUse,
        MessageKey::EmailLinkStarted,
        MessageKey::ResetPageTitle,
        MessageKey::ResetPageHint,
        MessageKey::ResetPageLabel,
        MessageKey::ResetPageSubmit,
        MessageKey::PasswordResetDone,
        MessageKey::FormExpired,
        MessageKey::EmailSignedIn,
    ];
}

/// Human text for `key` in `lang`.
///
/// Complete Russian and English for every key; e.g. [`MessageKey::CodeSent`] in English is
/// `"Verification code sent successfully"`, [`MessageKey::PhoneVerified`] is
/// `"Phone number verified successfully"`.
///
/// Texts are single sentences without a trailing period, safe to put in a JSON `message`.
pub fn text(key: MessageKey, lang: Language) -> &'static str {
    let (ru, en) = texts(key);
    match lang {
        Language::Ru => ru,
        Language::En => en,
    }
}

/// `(Russian, English)` texts of `key`.
fn texts(key: MessageKey) -> (&'static str, &'static str) {
    match key {
        MessageKey::CodeSent => (
            "Код подтверждения успешно отправлен",
            "Verification code sent successfully",
        ),
        MessageKey::PhoneVerified => (
            "Номер телефона успешно подтверждён",
            "Phone number verified successfully",
        ),
        MessageKey::ProfileUpdated => ("Профиль успешно обновлён", "Profile updated successfully"),
        MessageKey::LoggedOut => ("Вы успешно вышли из системы", "Logged out successfully"),
        MessageKey::InvalidPhone => ("Неверный номер телефона", "Invalid phone number"),
        MessageKey::UnsupportedMarket => (
            "Номера телефонов этой страны не поддерживаются",
            "Phone numbers from this country are not supported",
        ),
        MessageKey::MarketMismatch => (
            "Номер телефона не относится к выбранному рынку",
            "The phone number does not belong to the selected market",
        ),
        MessageKey::PhoneNotMobile => (
            "На этот номер нельзя отправить SMS, укажите номер мобильного телефона",
            "This phone number cannot receive SMS, please use a mobile number",
        ),
        MessageKey::UnknownMarket => ("Неизвестный рынок", "Unknown market"),
        MessageKey::InvalidJson => (
            "Некорректный JSON в теле запроса",
            "Malformed JSON in request body",
        ),
        MessageKey::ValidationError => (
            "Ошибка проверки данных запроса",
            "Request validation failed",
        ),
        MessageKey::RateLimited => (
            "Слишком много запросов, повторите попытку позже",
            "Too many requests, please try again later",
        ),
        MessageKey::InvalidCode => ("Неверный код подтверждения", "Invalid verification code"),
        MessageKey::PhoneLocked => (
            "Слишком много неверных кодов для этого номера, вход временно заблокирован",
            "Too many wrong codes for this number; it is locked for a while",
        ),
        MessageKey::CodeExpired => (
            "Срок действия кода подтверждения истёк, запросите новый код",
            "Verification code has expired, please request a new one",
        ),
        MessageKey::CodeNotFound => (
            "Активный код подтверждения не найден, запросите новый код",
            "No active verification code, please request a new one",
        ),
        MessageKey::AttemptsExceeded => (
            "Слишком много неверных попыток, запросите новый код",
            "Too many incorrect attempts, please request a new code",
        ),
        MessageKey::InvalidToken => (
            "Недействительный или просроченный токен доступа",
            "Invalid or expired access token",
        ),
        MessageKey::NotFound => ("Ресурс не найден", "Resource not found"),
        MessageKey::MethodNotAllowed => ("Метод не поддерживается", "Method not allowed"),
        MessageKey::BadRequest => ("Некорректный запрос", "Bad request"),
        MessageKey::PayloadTooLarge => {
            ("Слишком большое тело запроса", "Request body is too large")
        }
        MessageKey::UnsupportedMediaType => (
            "Неподдерживаемый тип содержимого, используйте application/json",
            "Unsupported media type, use application/json",
        ),
        MessageKey::ServiceUnavailable => (
            "Сервис временно недоступен, повторите попытку позже",
            "Service temporarily unavailable, please try again later",
        ),
        MessageKey::InternalError => ("Внутренняя ошибка сервера", "Internal server error"),
        MessageKey::TokenRefreshed => ("Токены обновлены", "Tokens refreshed"),
        MessageKey::InvalidRefreshToken => (
            "Токен обновления недействителен или истёк. Войдите снова",
            "The refresh token is invalid or has expired. Please sign in again",
        ),
        MessageKey::RefreshTokenReused => (
            "Токен обновления уже использовался; сеанс завершён в целях безопасности. Войдите снова",
            "The refresh token was already used; the session was ended for your safety. Please sign in again",
        ),
        MessageKey::SessionsEnded => ("Сеанс завершён", "Signed out"),
        MessageKey::AccountDeleted => (
            "Аккаунт и все его данные удалены",
            "The account and all its data were deleted",
        ),
        MessageKey::AddressCreated => ("Адрес успешно добавлен", "Address created successfully"),
        MessageKey::AddressUpdated => ("Адрес успешно обновлён", "Address updated successfully"),
        MessageKey::AddressDeleted => ("Адрес успешно удалён", "Address deleted successfully"),
        MessageKey::PaymentMethodAdded => (
            "Способ оплаты успешно добавлен",
            "Payment method added successfully",
        ),
        MessageKey::PaymentMethodUpdated => (
            "Способ оплаты успешно обновлён",
            "Payment method updated successfully",
        ),
        MessageKey::PaymentMethodDeleted => (
            "Способ оплаты успешно удалён",
            "Payment method deleted successfully",
        ),
        MessageKey::NotificationRead => (
            "Уведомление отмечено как прочитанное",
            "Notification marked as read",
        ),
        MessageKey::NotificationsRead => (
            "Все уведомления отмечены как прочитанные",
            "All notifications marked as read",
        ),
        MessageKey::LimitReached => (
            "Достигнуто максимальное количество записей",
            "The maximum number of entries has been reached",
        ),
        MessageKey::PaymentMethodNotAvailable => (
            "Этот способ оплаты недоступен в вашей стране",
            "This payment method is not available in your market",
        ),
        MessageKey::CardExpired => ("Срок действия карты истёк", "The card has expired"),
        MessageKey::UnsupportedTransferEncoding => (
            "Transfer-Encoding не поддерживается, передайте тело с Content-Length",
            "Transfer-Encoding is not supported, send the body with Content-Length",
        ),
        MessageKey::RequestTimeout => (
            "Тело запроса не получено вовремя",
            "The request body did not arrive in time",
        ),
        MessageKey::TooManyConnections => (
            "Слишком много соединений с вашего адреса, повторите попытку позже",
            "Too many connections from your address, please try again later",
        ),
        MessageKey::CardNumberInText => (
            "Номер банковской карты в этом поле не допускается",
            "Card numbers are not allowed in this field",
        ),
        MessageKey::AccountDisabled => (
            "Учётная запись отключена, обратитесь в поддержку",
            "This account is disabled, please contact support",
        ),
        MessageKey::SmsBudgetExceeded => (
            "Отправка SMS временно ограничена, повторите попытку позже",
            "Sending text messages is temporarily limited, please try again later",
        ),
        MessageKey::CaptchaRequired => (
            "Подтвердите, что вы не робот",
            "Please complete the CAPTCHA",
        ),
        MessageKey::CaptchaInvalid => (
            "Проверка CAPTCHA не пройдена, попробуйте ещё раз",
            "The CAPTCHA check failed, please try again",
        ),
        MessageKey::ChannelNotAvailable => (
            "Этот способ доставки кода недоступен, выберите другой",
            "This delivery channel is not available, please choose another",
        ),
        MessageKey::InvalidSignature => (
            "Подпись запроса неверна",
            "The request signature is missing or wrong",
        ),
        MessageKey::InvalidCallback => (
            "Содержимое уведомления не распознано",
            "The callback body is not understood",
        ),
        MessageKey::AdminUnauthorized => (
            "Неверный или отсутствующий ключ администратора",
            "Missing or wrong admin API key",
        ),
        MessageKey::AdminActionDone => ("Выполнено", "Done"),
        MessageKey::MessengerLoginPrefix => ("Войти", "Sign in"),
        MessageKey::MessengerShareContact => (
            "Нажмите кнопку ниже, чтобы поделиться номером телефона и войти",
            "Press the button below to share your phone number and sign in",
        ),
        MessageKey::MessengerShareContactButton => ("Поделиться номером", "Share my phone number"),
        MessageKey::MessengerLinkExpired => (
            "Эта ссылка для входа устарела, начните вход в приложении заново",
            "This sign-in link has expired, please start again in the app",
        ),
        MessageKey::MessengerNotYourContact => (
            "Поделитесь своим номером, а не чужим контактом",
            "Please share your own number, not someone else's contact",
        ),
        MessageKey::MessengerNumberNotServed => (
            "Вход с этого номера недоступен",
            "Sign-in is not available for this number",
        ),
        MessageKey::MessengerSignedIn => (
            "Готово, вернитесь в приложение",
            "Done, please return to the app",
        ),
        MessageKey::MessengerSignInRefused => (
            "Войти с этим номером сейчас нельзя, обратитесь в поддержку",
            "You cannot sign in with this number right now, please contact support",
        ),
        MessageKey::InvalidTelegramAuth => (
            "Данные входа через Telegram неверны или устарели",
            "The Telegram login data is wrong or too old",
        ),
        MessageKey::TelegramNotLinked => (
            "Этот аккаунт Telegram не привязан, войдите по номеру телефона",
            "This Telegram account is not linked, please sign in with your phone number",
        ),
        MessageKey::TelegramUnlinked => (
            "Аккаунт Telegram отвязан",
            "The Telegram account was unlinked",
        ),
        MessageKey::WebhookVerificationFailed => (
            "Проверка подписки вебхука не пройдена",
            "The webhook verification failed",
        ),
        MessageKey::EmailRegistered => (
            "Проверьте почту: мы отправили письмо для подтверждения адреса",
            "Check your email: we have sent a message to confirm your address",
        ),
        MessageKey::EmailVerified => (
            "Адрес электронной почты подтверждён",
            "Your email address is verified",
        ),
        MessageKey::EmailLinkInvalid => (
            "Ссылка недействительна или устарела",
            "This link is invalid or has expired",
        ),
        MessageKey::EmailNotVerified => (
            "Адрес электронной почты не подтверждён, проверьте почту",
            "Your email address is not verified yet, please check your email",
        ),
        MessageKey::InvalidCredentials => (
            "Неверный адрес электронной почты или пароль",
            "Invalid email or password",
        ),
        MessageKey::EmailInstructionsSent => (
            "Если такой адрес зарегистрирован, мы отправили на него письмо",
            "If that address is registered, we have sent it an email",
        ),
        MessageKey::PasswordChanged => (
            "Пароль изменён, войдите снова",
            "Your password was changed, please sign in again",
        ),
        MessageKey::PasswordTooShort => (
            "Пароль должен содержать не менее 12 символов",
            "The password must have at least 12 characters",
        ),
        MessageKey::PasswordTooLong => (
            "Пароль должен содержать не более 128 символов",
            "The password must have at most 128 characters",
        ),
        MessageKey::PasswordTooWeak => (
            "Пароль слишком простой: добавьте ещё несколько слов или символов",
            "The password is too easy to guess: add a few more words or characters",
        ),
        MessageKey::PasswordContainsEmail => (
            "Пароль не должен содержать ваш адрес электронной почты",
            "The password must not contain your email address",
        ),
        MessageKey::InvalidEmail => ("Неверный адрес электронной почты", "Invalid email address"),
        MessageKey::MarketRequired => (
            "Укажите рынок в заголовке X-Market (kg или us)",
            "Please name the market in the X-Market header (kg or us)",
        ),
        MessageKey::EmailAlreadyLinked => (
            "К аккаунту уже привязан подтверждённый адрес",
            "The account already has a verified email address",
        ),
        MessageKey::PhoneInUse => (
            "Этот номер уже привязан к другому аккаунту",
            "This phone number belongs to another account",
        ),
        MessageKey::EmailLinkStarted => (
            "Мы отправили письмо для подтверждения адреса",
            "We have sent an email to confirm the address",
        ),
        MessageKey::ResetPageTitle => ("Смена пароля", "Choose a new password"),
        MessageKey::ResetPageHint => (
            "Не менее 12 символов; лучше несколько слов, которые легко запомнить",
            "At least 12 characters; a few words that are easy to remember work well",
        ),
        MessageKey::ResetPageLabel => ("Новый пароль", "New password"),
        MessageKey::ResetPageSubmit => ("Сохранить пароль", "Save password"),
        MessageKey::PasswordResetDone => (
            "Пароль изменён. Войдите с новым паролем",
            "Your password was changed. Sign in with your new password",
        ),
        MessageKey::FormExpired => (
            "Форма устарела, откройте ссылку из письма заново",
            "This form has expired, please open the link from the email again",
        ),
        MessageKey::EmailSignedIn => ("Вход выполнен", "Signed in successfully"),
    }
}

/// Longest device description quoted in a [`new_sign_in_notice`], in characters.
const MAX_DEVICE_CHARS: usize = 100;

/// Title and text of the security notification sent when an account is signed in from a device
/// (`User-Agent`) it has not used before.
///
/// ru: `("Вход в аккаунт с нового устройства", "Выполнен вход в ваш аккаунт с нового устройства
/// (<device>). Если это были не вы, обратитесь в службу поддержки.")`; en: `("New sign-in to your
/// account", "Your account was signed in from a new device (<device>). If this wasn't you, contact
/// support.")`. `device` (the client's `User-Agent`, untrusted) is cut to its first 100
/// characters with control and format characters removed and card numbers replaced by `…`, so
/// that the notice always passes the rules of display text ([`crate::check_display_text`]) — a
/// hostile `User-Agent` cannot suppress it; `None`, blank or nothing visible reads
/// "неизвестное устройство" / "unknown device".
pub fn new_sign_in_notice(lang: Language, device: Option<&str>) -> (String, String) {
    let device: String = device
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && !crate::text::is_format_character(*c))
        .collect();
    let device: String = crate::text::redact_card_numbers(&device)
        .chars()
        .take(MAX_DEVICE_CHARS)
        .collect();
    let device = if device.chars().any(crate::text::is_visible) {
        device.trim()
    } else {
        ""
    };
    match lang {
        Language::Ru => {
            let device = if device.is_empty() {
                "неизвестное устройство"
            } else {
                device
            };
            (
                "Вход в аккаунт с нового устройства".to_owned(),
                format!(
                    "Выполнен вход в ваш аккаунт с нового устройства ({device}). Если это были \
                     не вы, обратитесь в службу поддержки."
                ),
            )
        }
        Language::En => {
            let device = if device.is_empty() {
                "unknown device"
            } else {
                device
            };
            (
                "New sign-in to your account".to_owned(),
                format!(
                    "Your account was signed in from a new device ({device}). If this wasn't \
                     you, contact support."
                ),
            )
        }
    }
}

/// The default template of a message carrying a code, with the placeholders `{app}` (the shop's
/// name), `{code}` and `{minutes}` (the code's lifetime); operators may override it per market
/// (`SMS_TEMPLATE_{MARKET}`, `SMS_DELETE_ACCOUNT_TEMPLATE_{MARKET}`).
///
/// ru login: `"{app}: ваш код {code}. Действует {minutes} мин. Никому не сообщайте."` — 62
/// characters with `Marque` and 10 minutes, so it fits one UCS-2 SMS segment (70 characters,
/// 3GPP TS 23.038); en login: `"{app}: your code is {code}. It expires in {minutes} min. Do not
/// share it."` fits one GSM-7 segment (160). The deletion templates say what the code does, so
/// nobody reads a deletion code out to a caller believing it signs them in.
pub fn otp_template(lang: Language, purpose: OtpPurpose) -> &'static str {
    match (purpose, lang) {
        (OtpPurpose::Login, Language::Ru) => {
            "{app}: ваш код {code}. Действует {minutes} мин. Никому не сообщайте."
        }
        (OtpPurpose::Login, Language::En) => {
            "{app}: your code is {code}. It expires in {minutes} min. Do not share it."
        }
        (OtpPurpose::DeleteAccount, Language::Ru) => {
            "{app}: код для удаления аккаунта {code}. Никому не сообщайте."
        }
        (OtpPurpose::DeleteAccount, Language::En) => {
            "{app}: code to delete your account: {code}. Do not share it with anyone."
        }
    }
}

/// Title and text of the security notification sent when a number is locked after too many
/// wrong codes (issue 12, item 8). ru: `("Вход заблокирован", "Слишком много неверных кодов
/// для вашего номера: вход заблокирован на <hours> ч. Если это были не вы, кто-то пытается
/// войти в ваш аккаунт; никому не сообщайте коды.")`; en likewise.
pub fn phone_locked_notice(lang: Language, hours: i64) -> (String, String) {
    match lang {
        Language::Ru => (
            "Вход заблокирован".to_owned(),
            format!(
                "Слишком много неверных кодов для вашего номера: вход заблокирован на {hours} ч. \
                 Если это были не вы, кто-то пытается войти в ваш аккаунт; никому не сообщайте коды."
            ),
        ),
        Language::En => (
            "Sign-in locked".to_owned(),
            format!(
                "Too many wrong codes were entered for your number: sign-in is locked for {hours} \
                 h. If this wasn't you, someone is trying to get into your account; never share \
                 your codes."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::market::Market;

    const LANGS: [Language; 2] = [Language::Ru, Language::En];

    #[test]
    fn every_key_has_distinct_non_empty_texts() {
        for lang in LANGS {
            let mut seen = HashSet::new();
            for key in MessageKey::ALL {
                let t = text(key, lang);
                assert!(!t.trim().is_empty(), "{key:?} {lang:?}");
                assert_eq!(t, t.trim(), "{key:?} {lang:?}");
                assert!(seen.insert(t), "duplicate {lang:?} text for {key:?}: {t}");
            }
        }
        let keys: HashSet<_> = MessageKey::ALL.into_iter().collect();
        assert_eq!(keys.len(), MessageKey::ALL.len());
        for key in MessageKey::ALL {
            let (ru, en) = (text(key, Language::Ru), text(key, Language::En));
            assert_ne!(ru, en, "{key:?}");
            assert!(
                ru.chars()
                    .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))),
                "{key:?}: {ru}"
            );
            assert!(en.is_ascii(), "{key:?}: {en}");
        }
    }

    #[test]
    fn known_texts() {
        assert_eq!(
            text(MessageKey::CodeSent, Language::En),
            "Verification code sent successfully"
        );
        assert_eq!(
            text(MessageKey::PhoneVerified, Language::En),
            "Phone number verified successfully"
        );
        assert_eq!(
            text(MessageKey::InvalidPhone, Market::Kg.language()),
            "Неверный номер телефона"
        );
    }

    #[test]
    fn sign_in_notices_are_localized_and_bounded() {
        let (title, text) = new_sign_in_notice(Language::Ru, Some("Firefox"));
        assert_eq!(title, "Вход в аккаунт с нового устройства");
        assert!(text.starts_with("Выполнен вход"), "{text}");
        assert!(text.contains("(Firefox)"), "{text}");
        let (title, text) = new_sign_in_notice(Language::En, None);
        assert_eq!(title, "New sign-in to your account");
        assert!(text.contains("(unknown device)"), "{text}");
        let (_, text) = new_sign_in_notice(Language::Ru, Some(" \n "));
        assert!(text.contains("(неизвестное устройство)"), "{text}");
        let long = format!("{}\u{7}", "x".repeat(500));
        let (_, text) = new_sign_in_notice(Language::En, Some(&long));
        assert!(text.contains(&format!("({})", "x".repeat(100))), "{text}");
        assert!(!text.contains(&"x".repeat(101)));
        assert!(!text.chars().any(char::is_control));
    }

    #[test]
    fn sign_in_notices_pass_the_display_text_rules_whatever_the_device() {
        for device in [
            "Evil\u{202E}gpj.exe",
            "\u{200B}\u{2066}",
            "\u{301}",
            "Card 4111 1111 1111 1111",
            "4111111111111111\u{200B}",
        ] {
            for lang in LANGS {
                let (title, text) = new_sign_in_notice(lang, Some(device));
                assert_eq!(crate::check_display_text("title", &title), Ok(()));
                assert_eq!(
                    crate::check_display_text("message", &text),
                    Ok(()),
                    "{device:?}: {text}"
                );
            }
        }
        let (_, text) = new_sign_in_notice(Language::En, Some("Evil\u{202E}gpj.exe"));
        assert!(text.contains("(Evilgpj.exe)"), "{text}");
        let (_, text) = new_sign_in_notice(Language::En, Some("\u{200B}\u{301}"));
        assert!(text.contains("(unknown device)"), "{text}");
        let (_, text) = new_sign_in_notice(Language::En, Some("Card 4111 1111 1111 1111"));
        assert!(text.contains("(Card …)"), "{text}");
    }

    #[test]
    fn code_templates_carry_every_placeholder_they_need() {
        for lang in [Language::Ru, Language::En] {
            for purpose in [OtpPurpose::Login, OtpPurpose::DeleteAccount] {
                let t = otp_template(lang, purpose);
                assert!(t.starts_with("{app}: ") && t.contains("{code}"), "{t}");
            }
            assert!(otp_template(lang, OtpPurpose::Login).contains("{minutes}"));
        }
        assert!(
            otp_template(Language::Ru, OtpPurpose::DeleteAccount).contains("удаления аккаунта")
        );
        assert!(
            otp_template(Language::En, OtpPurpose::DeleteAccount).contains("delete your account")
        );
        let (title, body) = phone_locked_notice(Language::Ru, 24);
        assert!(!title.is_empty() && body.contains("24"));
    }
}

//! Marque Auth domain layer.
//!
//! Entities ([`User`], sessions, OTP challenges, outbox messages), the ports the outer layers
//! implement ([`AuthRepository`], [`OutboxRepository`], [`MessageSender`]) and the services that hold
//! the business rules ([`AuthService`]; [`AccountService`] for addresses, payment methods and
//! notifications). Time ([`Clock`]) and randomness ([`RandomSource`]) are
//! injected so every rule can be tested deterministically. This crate knows nothing of HTTP or SQL.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod account;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod captcha;
pub mod challenge;
pub mod clock;
pub mod delivery;
pub mod email;
pub mod entities;
pub mod events;
pub mod ip_budget;
pub mod keys;
pub mod mail;
pub mod messenger;
pub mod otp;
pub mod ports;
pub mod random;
pub mod rate_limit;
pub mod refresh;
pub mod retention;
pub mod sealed;
pub mod secret;
pub mod sms_guard;
pub mod tokens;

pub use account::{
    AccountError, AccountLimits, AccountRepository, AccountService, Address, AddressId,
    AddressRecord, AddressTitle, AddressUpdate, CardDetails, Insert, NewAddress, NewNotification,
    NewPaymentMethod, Notification, NotificationBody, NotificationId, NotificationKind,
    NotificationPage, NotificationQuery, NotificationTitle, Owner, PageLimit, PaymentMethod,
    PaymentMethodId, PaymentMethodInput, PaymentMethodRecord, PaymentMethodUpdate,
};
pub use admin::{
    ActiveChange, AdminCaller, AdminError, AdminKey, AdminRepository, AdminService, AdminUser,
    AuditQuery, OutboxQuery, OutboxStatus, OutboxSummary, UserReport,
};
pub use audit::{AuditEvent, AuditRecord, AuditRepository, StoredAudit};
pub use auth::{
    AuthConfig, AuthDeps, AuthError, AuthService, ClientInfo, CodeRefusal, CodeSent, LoginSuccess,
    LogoutScope, MarketHealth, Refreshed, SignedIn, SmsGuardMetrics,
};
pub use captcha::{CaptchaUnavailable, CaptchaVerifier};
pub use challenge::{ChallengeState, ChallengeStatus, FailurePolicy, FailureState, Judgement};
pub use clock::{Clock, SystemClock};
pub use delivery::{
    Accepted, CallbackError, CallbackRequest, ChallengeDelivery, Channel, DeliveryCallback,
    DeliveryError, DeliveryReport, DeliveryState, DeliveryTracker, MessageSender, OtpPayload,
    OutgoingMessage, ReportedStatus, RetryPolicy,
};
pub use email::{
    Argon2Cost, EmailAddress, EmailAddressError, EmailAuthConfig, EmailAuthDeps, EmailAuthService,
    EmailRepository, EmailTokenKeys, Password, PasswordHashing, PasswordRule,
};
pub use entities::{
    FullName, ImageUrl, NewSession, ProfileUpdate, ProfileValueError, SessionId, User, UserId,
};
pub use events::{PhoneLockedEvent, SignInEvent, SignInObserver};
pub use keys::KeyRing;
pub use mail::{EmailKind, EmailPayload, EmailSender, OutgoingEmail};
pub use marque_markets::OtpPurpose;
pub use messenger::{
    Inbound, LoginSuccessTokens, MessengerConfig, MessengerDeps, MessengerHasher,
    MessengerRepository, MessengerService, MessengerStart, MessengerWebhook, NewMessengerLogin,
    NonceLookup, OutgoingReply, PendingLogin, PollStatus, ReplyKeyboard, ReplyPayload, ReplySender,
    StoredPoll, TelegramLink, WebhookError, WidgetError, WidgetVerifier,
};
pub use otp::OtpHasher;
pub use ports::{
    AttemptGuard, AuthRepository, CodeCheck, DeleteAccount, IssueChallenge, IssueOutcome,
    MarketUnavailable, NewOutboxMessage, NewRefreshToken, OutboxMessage, OutboxRepository,
    RateLimitCheck, RepoError, RevokeScope, RotateOutcome, RotateRefresh, SentReceipt, SessionInfo,
    SignInProven, VerifyChallenge, VerifyOutcome,
};
pub use random::{RandomSource, ThreadCsprng};
pub use rate_limit::{BucketState, Elsewhere, RateLimitPolicy, RetryAfter};
pub use refresh::RefreshKeys;
pub use retention::{Purged, RetentionPolicy, RetentionRepository, RetentionService};
pub use sealed::PayloadSealer;
pub use secret::{ExposeSecret, SecretBox, SecretString};
pub use sms_guard::{BudgetGuard, BudgetTrip, PrefixAlarm, SmsGuards};
pub use tokens::{
    AccessClaims, ClaimsExt, Ed25519PublicKey, Ed25519SigningKey, TokenError, TokenService,
};

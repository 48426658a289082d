//! Marque Auth message delivery.
//!
//! Providers implement the domain's [`MessageSender`](marque_domain::MessageSender) port:
//! [`ConsoleSender`] (development: one line per message on stdout), [`Twilio`], [`Sns`],
//! [`SmsWebhook`] (any regional gateway, Standard Webhooks), [`WhatsApp`] and
//! [`TelegramGateway`]. Callbacks of providers that report delivery implement
//! [`DeliveryCallback`](marque_domain::DeliveryCallback). The [`OutboxWorker`] drains each
//! market's delivery outbox, rendering each message from [`MessageTemplates`] for its channel,
//! with retries, backoff, channel fallback and leases, so a crash between "code issued" and
//! "message sent" loses nothing and several instances never send one message twice while a lease
//! holds. Emails (issue 10) go through the same outbox: the worker renders them with
//! [`EmailTemplates`] and hands them to the market's [`marque_domain::EmailSender`]
//! ([`ConsoleSender`] or [`SmtpMailer`]). [`SiteVerify`] checks CAPTCHA tokens (Turnstile, hCaptcha) for the domain's
//! [`CaptchaVerifier`](marque_domain::CaptchaVerifier) port.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod captcha;
mod console;
mod email_templates;
mod http;
mod messenger;
mod smtp;
mod sns;
mod telegram;
mod templates;
mod twilio;
mod webhook;
mod whatsapp;
mod worker;

pub use captcha::{CaptchaProvider, HCAPTCHA_VERIFY_URL, SiteVerify, TURNSTILE_VERIFY_URL};
pub use console::ConsoleSender;
pub use email_templates::{EmailTemplates, RESET_PASSWORD_PATH, RenderedEmail, VERIFY_EMAIL_PATH};
pub use http::{PROVIDER_TIMEOUT, provider_client, status_error, transport_error};
pub use messenger::{
    TELEGRAM_BOT_API_BASE_URL, TelegramBot, TelegramWebhook, TelegramWidget, WhatsAppReplies,
    WhatsAppWebhook,
};
pub use smtp::{SmtpConfig, SmtpConfigError, SmtpMailer};
pub use sns::{Sns, SnsConfig};
pub use telegram::{
    TELEGRAM_GATEWAY_BASE_URL, TelegramGateway, TelegramGatewayConfig, TelegramReportCallback,
};
pub use templates::{MessageTemplates, RenderedSms, sms_segments};
pub use twilio::{TWILIO_BASE_URL, Twilio, TwilioConfig, TwilioFrom, TwilioStatusCallback};
pub use webhook::{SmsWebhook, WebhookConfig, WebhookConfigError};
pub use whatsapp::{WHATSAPP_API_BASE_URL, WhatsApp, WhatsAppConfig};
pub use worker::{EmailSenders, Fate, OutboxWorker, Senders, WorkerConfig, WorkerDeps};

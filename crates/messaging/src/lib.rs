//! Marque Auth message delivery.
//!
//! Providers implement the domain's [`MessageSender`](marque_domain::MessageSender) port; today
//! [`ConsoleSender`] (development: one line per message on stdout). The [`OutboxWorker`] drains
//! each market's delivery outbox through a provider, with retries, backoff and leases, so a crash
//! between "code issued" and "message sent" loses nothing and several instances never send one
//! message twice while a lease holds. [`SiteVerify`] checks CAPTCHA tokens (Turnstile, hCaptcha)
//! for the domain's [`CaptchaVerifier`](marque_domain::CaptchaVerifier) port.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod captcha;
mod console;
mod worker;

pub use captcha::{CaptchaProvider, HCAPTCHA_VERIFY_URL, SiteVerify, TURNSTILE_VERIFY_URL};
pub use console::ConsoleSender;
pub use worker::{OutboxWorker, WorkerConfig};

//! Markets served by Marque Auth — Kyrgyzstan (KG, +996, сом/KGS, Russian) and the United
//! States (US, +1, $/USD, English): market profiles, phone-number parsing and validation
//! (ITU-T E.164), one-time verification codes, and the localized message catalog.
//!
//! The crate is pure: no I/O, no network, no database. Phone validation uses the
//! libphonenumber metadata compiled into the `phonenumber` crate; call [`warm_up`] once at
//! start-up to load it outside request handling.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod locale;
mod market;
mod otp;
mod phone;

pub use locale::{MessageKey, otp_message, text};
pub use market::{Currency, Language, Market, MarketProfile, UnknownMarket};
pub use otp::{OtpCode, OtpCodeError};
pub use phone::{MAX_INPUT_LEN, PhoneError, PhoneNumber, warm_up};

//! Markets served by Marque Auth — Kyrgyzstan (KG, +996, сом/KGS, Russian) and the United
//! States (US, +1, $/USD, English): market profiles, phone-number parsing and validation
//! (ITU-T E.164), one-time verification codes, the localized message catalog, money (integer
//! minor units, ISO 4217) with tax and price formatting, delivery-address rules, and the payment
//! methods each market accepts with card checks (ISO/IEC 7812), and the rules for free text
//! (no card numbers anywhere, no invisible formatting characters in text people see).
//!
//! The crate is pure: no I/O, no network, no database. Phone validation uses the
//! libphonenumber metadata compiled into the `phonenumber` crate; call [`warm_up`] once at
//! start-up to load it outside request handling.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod address;
mod field;
mod locale;
mod market;
mod money;
mod otp;
mod payment;
mod phone;
mod text;

pub use address::{
    AddressInput, InputField, KgAddress, KgPostalCode, KgRegion, MAX_CITY_CHARS, MAX_LINE_CHARS,
    MAX_UNIT_CHARS, MarketAddress, UsAddress, UsState, UsZipCode, address_fields,
};
pub use field::FieldError;
pub use locale::{MessageKey, new_sign_in_notice, otp_template, phone_locked_notice, text};
pub use market::{
    Currency, Language, Market, MarketProfile, PriceFormat, SymbolPosition, UnknownMarket,
};
pub use money::{Money, MoneyError, TaxBreakdown};
pub use otp::{OtpCode, OtpCodeError, OtpPurpose};
pub use payment::{
    CardBrand, CardExpiry, CardLast4, CardNumber, CardNumberError, HolderName,
    PROVIDER_TOKEN_FORMATS, PaymentMethodKind, PaymentType, ProviderToken, TokenFormat, luhn_valid,
};
pub use phone::{MAX_INPUT_LEN, PhoneError, PhoneNumber, warm_up};
pub use text::{
    CARD_NUMBER_IN_TEXT, FORMAT_CHARACTER_IN_TEXT, MAX_CARD_DIGITS, MIN_CARD_DIGITS,
    NOTHING_VISIBLE_IN_TEXT, check_display_text, check_free_text, clean_display_text,
    contains_card_number, find_card_number, is_format_character, is_visible, redact_card_numbers,
};

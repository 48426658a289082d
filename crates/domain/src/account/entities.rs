//! Shopper account data: delivery addresses, saved payment methods, notifications.

use std::fmt;

use chrono::{DateTime, Utc};
use marque_markets::{
    AddressInput, CardBrand, CardExpiry, CardLast4, FieldError, HolderName, MarketAddress,
    PaymentMethodKind, ProviderToken,
};

/// Id of a delivery address, unique within one market's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressId(pub i64);

/// Id of a saved payment method, unique within one market's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentMethodId(pub i64);

/// Id of a notification, unique within one market's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(pub i64);

impl fmt::Display for AddressId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for PaymentMethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A short free text (trimmed, 1–`max` characters, no control characters) that people see: no
/// card number, no Unicode format characters, something visible
/// ([`marque_markets::check_display_text`]).
fn short_text(field: &'static str, input: &str, max: usize) -> Result<String, FieldError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(FieldError::new(
            field,
            match max {
                AddressTitle::MAX_CHARS => "must be at most 50 characters",
                NotificationTitle::MAX_CHARS => "must be at most 200 characters",
                _ => "must be at most 2000 characters",
            },
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    // No card number, no bidi or zero-width characters, something visible (issue 12).
    marque_markets::check_display_text(field, s)?;
    Ok(s.to_owned())
}

/// The shopper's name for an address (`Дом`, `Work`): 1–50 characters, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressTitle(String);

impl AddressTitle {
    /// Longest title, in characters.
    pub const MAX_CHARS: usize = 50;

    /// Parses untrusted input (trimmed).
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `title`: empty, too long, or a control character (newlines included).
    pub fn parse(input: &str) -> Result<AddressTitle, FieldError> {
        let s = short_text("title", input, Self::MAX_CHARS)?;
        if s.contains('\n') {
            return Err(FieldError::new(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(AddressTitle(s))
    }

    /// A title as stored, possibly before the display-text rules (issue 12): cleaned by
    /// [`marque_markets::clean_display_text`]; nothing visible left is no title.
    ///
    /// # Errors
    ///
    /// [`FieldError`] when the stored text breaks another rule (a data error).
    pub fn from_stored(stored: &str) -> Result<Option<AddressTitle>, FieldError> {
        match AddressTitle::parse(&marque_markets::clean_display_text(stored)) {
            Ok(title) => Ok(Some(title)),
            Err(e)
                if e.reason == marque_markets::NOTHING_VISIBLE_IN_TEXT
                    || e.reason == "must not be empty" =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A delivery address of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Id within the market's database.
    pub id: AddressId,
    /// The shopper's name for it.
    pub title: Option<AddressTitle>,
    /// The postal fields, in the shape of the user's market.
    pub postal: MarketAddress,
    /// Whether this is the user's default address (exactly one is, when the user has any).
    pub is_default: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What an address row holds besides its id, default flag and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    /// The shopper's name for it.
    pub title: Option<AddressTitle>,
    /// The postal fields.
    pub postal: MarketAddress,
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    /// Title and postal fields.
    pub record: AddressRecord,
    /// Whether the client asked for it to become the default. The first address becomes the
    /// default whatever this says.
    pub make_default: bool,
}

/// A change to an address: absent fields stay, `null` clears optional ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressUpdate {
    /// New title: `None` keeps it, `Some(None)` clears it.
    pub title: Option<Option<AddressTitle>>,
    /// Postal fields to replace (checked against the market's rules after merging).
    pub postal: AddressInput,
    /// `true` makes this the default address (the previous default stops being one); `false`
    /// changes nothing — the default moves only when another address is made the default, or
    /// when it is deleted.
    pub make_default: bool,
}

/// Card details kept for a saved card: brand, last four digits, expiry, holder name. Never the
/// full number (PCI DSS 3.3/3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    /// Brand, detected from the number or named by the client with a processor token.
    pub brand: CardBrand,
    /// Last four digits.
    pub last4: CardLast4,
    /// Expiry, when known.
    pub expiry: Option<CardExpiry>,
    /// Name on the card, when given.
    pub holder_name: Option<HolderName>,
}

/// What a payment-method row holds besides its id, default flag and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodRecord {
    /// Kind, one of the market's catalog ([`marque_markets::MarketProfile::payment_methods`]).
    pub kind: PaymentMethodKind,
    /// Card details (cards only).
    pub card: Option<CardDetails>,
    /// The processor's token for the instrument, when one was given.
    pub provider_token: Option<ProviderToken>,
}

/// A saved payment method of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    /// Id within the market's database.
    pub id: PaymentMethodId,
    /// Kind, card details, token.
    pub record: PaymentMethodRecord,
    /// Whether this is the user's default payment method (exactly one is, when there are any).
    pub is_default: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A payment method to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentMethod {
    /// Kind, card details, token.
    pub record: PaymentMethodRecord,
    /// Whether it should become the default (the first one always does).
    pub make_default: bool,
}

/// A change to a saved payment method. The card number and kind never change: a new card is a
/// new payment method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentMethodUpdate {
    /// New holder name: `None` keeps it, `Some(None)` clears it. Cards only.
    pub holder_name: Option<Option<HolderName>>,
    /// New expiry (a renewed card). Cards only.
    pub expiry: Option<CardExpiry>,
    /// As [`AddressUpdate::make_default`].
    pub make_default: bool,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// An order changed (confirmed, shipped, delivered…).
    Order,
    /// A sale or offer.
    Promotion,
    /// Account security (new sign-in…).
    Security,
    /// Service announcements.
    System,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 4] = [
        NotificationKind::Order,
        NotificationKind::Promotion,
        NotificationKind::Security,
        NotificationKind::System,
    ];

    /// API and storage text: `order`, `promotion`, `security`, `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Order => "order",
            NotificationKind::Promotion => "promotion",
            NotificationKind::Security => "security",
            NotificationKind::System => "system",
        }
    }

    /// Parses [`NotificationKind::as_str`] text.
    pub fn parse(s: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A notification's title: 1–200 characters, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationTitle(String);

impl NotificationTitle {
    /// Longest title, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a title (trimmed).
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `title`.
    pub fn parse(input: &str) -> Result<NotificationTitle, FieldError> {
        let s = short_text("title", input, Self::MAX_CHARS)?;
        if s.contains('\n') {
            return Err(FieldError::new(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(NotificationTitle(s))
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A notification's text: 1–2000 characters; newlines allowed, other control characters not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationBody(String);

impl NotificationBody {
    /// Longest text, in characters.
    pub const MAX_CHARS: usize = 2000;

    /// Parses a text (trimmed).
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `message`.
    pub fn parse(input: &str) -> Result<NotificationBody, FieldError> {
        short_text("message", input, Self::MAX_CHARS).map(NotificationBody)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A notification to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// What it is about.
    pub kind: NotificationKind,
    /// Title, in the user's language.
    pub title: NotificationTitle,
    /// Text, in the user's language.
    pub message: NotificationBody,
    /// The order it concerns (kind `order`), an id of the order service.
    pub order_id: Option<i64>,
}

/// A notification of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Id within the market's database.
    pub id: NotificationId,
    /// What it is about.
    pub kind: NotificationKind,
    /// Title.
    pub title: NotificationTitle,
    /// Text.
    pub message: NotificationBody,
    /// The order it concerns.
    pub order_id: Option<i64>,
    /// Whether the user has read it.
    pub is_read: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it was marked read.
    pub read_at: Option<DateTime<Utc>>,
}

/// A page size of 1–100 (50 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    /// Largest page.
    pub const MAX: u32 = 100;

    /// `n` when 1 ≤ n ≤ 100.
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `limit`.
    pub fn new(n: u32) -> Result<PageLimit, FieldError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(PageLimit(n))
        } else {
            Err(FieldError::new("limit", "must be from 1 to 100"))
        }
    }

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        PageLimit(50)
    }
}

/// Which notifications to list: newest first, `offset` skipped, at most `limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationQuery {
    /// Only unread ones.
    pub unread_only: bool,
    /// Page size.
    pub limit: PageLimit,
    /// Notifications to skip.
    pub offset: u32,
}

/// One page of notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationPage {
    /// The page, newest first.
    pub items: Vec<Notification>,
    /// How many match the query (all pages).
    pub total: u64,
    /// How many of the user's notifications are unread (whatever the query).
    pub unread_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_have_limits() {
        assert_eq!(AddressTitle::parse(" Дом ").unwrap().as_str(), "Дом");
        assert!(AddressTitle::parse(&"д".repeat(50)).is_ok());
        assert_eq!(
            AddressTitle::parse(&"д".repeat(51)).unwrap_err().field,
            "title"
        );
        assert!(AddressTitle::parse("").is_err());
        assert!(AddressTitle::parse("a\nb").is_err());
        assert!(NotificationTitle::parse(&"t".repeat(201)).is_err());
        assert!(NotificationTitle::parse("a\nb").is_err());
        assert!(NotificationBody::parse("line 1\nline 2").is_ok());
        assert!(NotificationBody::parse("bell\u{7}").is_err());
        assert_eq!(
            NotificationBody::parse(&"m".repeat(2001))
                .unwrap_err()
                .field,
            "message"
        );
        for k in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(NotificationKind::parse("spam"), None);
    }

    #[test]
    fn texts_hold_no_card_number_and_show_what_they_say() {
        let card = marque_markets::CARD_NUMBER_IN_TEXT;
        let format = marque_markets::FORMAT_CHARACTER_IN_TEXT;
        let e = AddressTitle::parse("Карта 5555 5555 5555 4444").unwrap_err();
        assert_eq!((e.field, e.reason), ("title", card));
        assert!(e.is_card_number_in_text());
        let e = AddressTitle::parse("Дом\u{202E}").unwrap_err();
        assert_eq!((e.field, e.reason), ("title", format));
        let e = AddressTitle::parse("\u{301}").unwrap_err();
        assert_eq!(e.reason, marque_markets::NOTHING_VISIBLE_IN_TEXT);
        let e = NotificationTitle::parse("Paid with 4111 1111 1111 1111").unwrap_err();
        assert_eq!((e.field, e.reason), ("title", card));
        let e = NotificationBody::parse("Your card\n4111-1111-1111-1111").unwrap_err();
        assert_eq!((e.field, e.reason), ("message", card));
        let e = NotificationBody::parse("a\u{2067}b").unwrap_err();
        assert_eq!((e.field, e.reason), ("message", format));
        assert!(AddressTitle::parse("Офис, 3 этаж, +996 555 123 456").is_ok());
        assert!(NotificationBody::parse("Заказ №1042 от 01.02.2026 передан курьеру").is_ok());
        assert_eq!(
            AddressTitle::from_stored("Дом\u{202E} 5555 5555 5555 4444").map(|t| t.map(|t| t.0)),
            Ok(Some("Дом …".to_owned()))
        );
        assert_eq!(AddressTitle::from_stored("\u{200B}"), Ok(None));
        assert!(AddressTitle::from_stored("a\nb").is_err());
    }

    #[test]
    fn page_limits() {
        assert_eq!(PageLimit::default().get(), 50);
        assert_eq!(PageLimit::new(1).map(PageLimit::get), Ok(1));
        assert_eq!(PageLimit::new(100).map(PageLimit::get), Ok(100));
        assert_eq!(PageLimit::new(0).unwrap_err().field, "limit");
        assert!(PageLimit::new(101).is_err());
    }
}

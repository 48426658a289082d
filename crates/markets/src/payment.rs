//! Payment methods: the kinds each market accepts, and the card rules — primary account number
//! (PAN) length and Luhn check digit (ISO/IEC 7812-1), brand detection from the issuer
//! identification number (IIN), expiry, cardholder name, processor tokens.
//!
//! A [`CardNumber`] lives only long enough to yield its brand and last four digits: it has no
//! `Display`, its `Debug` shows neither, and nothing here stores it (PCI DSS v4.0 requirements
//! 3.3 and 3.4: keep the full PAN unreadable, show at most the last four digits).

use std::fmt;

use crate::field::FieldError;
use crate::market::Market;

/// Card schemes the service recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardBrand {
    /// Visa: IIN `4`, 13, 16 or 19 digits.
    Visa,
    /// Mastercard: IIN `51`–`55` and `2221`–`2720`, 16 digits.
    Mastercard,
    /// American Express: IIN `34`, `37`, 15 digits.
    Amex,
    /// Discover: IIN `6011`, `644`–`649`, `65`, 16–19 digits.
    Discover,
    /// Элкарт, the national payment system of the Kyrgyz Republic: IIN `9417`, 16 digits.
    Elcart,
}

impl CardBrand {
    /// Every brand, in declaration order.
    pub const ALL: [CardBrand; 5] = [
        CardBrand::Visa,
        CardBrand::Mastercard,
        CardBrand::Amex,
        CardBrand::Discover,
        CardBrand::Elcart,
    ];

    /// API and storage text: `visa`, `mastercard`, `amex`, `discover`, `elcart`.
    pub fn as_str(self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Discover => "discover",
            CardBrand::Elcart => "elcart",
        }
    }

    /// Parses [`CardBrand::as_str`] text, ASCII case-insensitive, trimmed; `None` otherwise.
    pub fn parse(input: &str) -> Option<CardBrand> {
        let s = input.trim();
        CardBrand::ALL
            .into_iter()
            .find(|b| s.eq_ignore_ascii_case(b.as_str()))
    }

    /// Whether a PAN of `len` digits is a valid length for the brand.
    fn accepts_length(self, len: usize) -> bool {
        match self {
            CardBrand::Visa => matches!(len, 13 | 16 | 19),
            CardBrand::Mastercard | CardBrand::Elcart => len == 16,
            CardBrand::Amex => len == 15,
            CardBrand::Discover => (16..=19).contains(&len),
        }
    }

    /// The brand of a PAN from its leading digits (IIN ranges as published by the schemes);
    /// `None` for ranges we do not accept. `digits` must be ASCII digits, at least 6 of them.
    fn detect(digits: &str) -> Option<CardBrand> {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        let (p1, p2, p3, p4) = (prefix(1)?, prefix(2)?, prefix(3)?, prefix(4)?);
        if p1 == 4 {
            Some(CardBrand::Visa)
        } else if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
            Some(CardBrand::Mastercard)
        } else if p2 == 34 || p2 == 37 {
            Some(CardBrand::Amex)
        } else if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 {
            Some(CardBrand::Discover)
        } else if p4 == 9417 {
            Some(CardBrand::Elcart)
        } else {
            None
        }
    }
}

/// How a shopper pays, as the product's API names it (`payment_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentType {
    /// A payment card (the brand says which).
    Card,
    /// Cash paid to the courier (KG).
    CashOnDelivery,
    /// Bank transfer (KG).
    BankTransfer,
    /// PayPal (US).
    Paypal,
    /// Apple Pay (US).
    ApplePay,
    /// Google Pay (US).
    GooglePay,
}

impl PaymentType {
    /// Every type, in declaration order.
    pub const ALL: [PaymentType; 6] = [
        PaymentType::Card,
        PaymentType::CashOnDelivery,
        PaymentType::BankTransfer,
        PaymentType::Paypal,
        PaymentType::ApplePay,
        PaymentType::GooglePay,
    ];

    /// API and storage text: `card`, `cash_on_delivery`, `bank_transfer`, `paypal`,
    /// `apple_pay`, `google_pay`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentType::Card => "card",
            PaymentType::CashOnDelivery => "cash_on_delivery",
            PaymentType::BankTransfer => "bank_transfer",
            PaymentType::Paypal => "paypal",
            PaymentType::ApplePay => "apple_pay",
            PaymentType::GooglePay => "google_pay",
        }
    }

    /// Parses [`PaymentType::as_str`] text, ASCII case-insensitive, trimmed; `None` otherwise.
    pub fn parse(input: &str) -> Option<PaymentType> {
        let s = input.trim();
        PaymentType::ALL
            .into_iter()
            .find(|t| s.eq_ignore_ascii_case(t.as_str()))
    }
}

/// One entry of a market's payment catalog ([`crate::MarketProfile::payment_methods`]): a card
/// brand or a non-card payment type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethodKind {
    /// A card of this brand.
    Card(CardBrand),
    /// Cash on delivery.
    CashOnDelivery,
    /// Bank transfer.
    BankTransfer,
    /// PayPal.
    Paypal,
    /// Apple Pay.
    ApplePay,
    /// Google Pay.
    GooglePay,
}

impl PaymentMethodKind {
    /// The kind of a payment type, with `brand` for cards; `None` for a card without a brand or
    /// a brand on a non-card type.
    pub fn from_parts(payment_type: PaymentType, brand: Option<CardBrand>) -> Option<Self> {
        Some(match (payment_type, brand) {
            (PaymentType::Card, Some(b)) => PaymentMethodKind::Card(b),
            (PaymentType::CashOnDelivery, None) => PaymentMethodKind::CashOnDelivery,
            (PaymentType::BankTransfer, None) => PaymentMethodKind::BankTransfer,
            (PaymentType::Paypal, None) => PaymentMethodKind::Paypal,
            (PaymentType::ApplePay, None) => PaymentMethodKind::ApplePay,
            (PaymentType::GooglePay, None) => PaymentMethodKind::GooglePay,
            _ => return None,
        })
    }

    /// The payment type (`card` for every brand).
    pub fn payment_type(self) -> PaymentType {
        match self {
            PaymentMethodKind::Card(_) => PaymentType::Card,
            PaymentMethodKind::CashOnDelivery => PaymentType::CashOnDelivery,
            PaymentMethodKind::BankTransfer => PaymentType::BankTransfer,
            PaymentMethodKind::Paypal => PaymentType::Paypal,
            PaymentMethodKind::ApplePay => PaymentType::ApplePay,
            PaymentMethodKind::GooglePay => PaymentType::GooglePay,
        }
    }

    /// The card brand, for cards.
    pub fn card_brand(self) -> Option<CardBrand> {
        match self {
            PaymentMethodKind::Card(b) => Some(b),
            _ => None,
        }
    }

    /// The catalog name: the brand for cards (`visa`, `elcart`…), else the payment type
    /// (`cash_on_delivery`, `paypal`…).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethodKind::Card(b) => b.as_str(),
            other => other.payment_type().as_str(),
        }
    }
}

impl Market {
    /// Whether shoppers of this market may use `kind` ([`crate::MarketProfile::payment_methods`]).
    pub fn accepts_payment(self, kind: PaymentMethodKind) -> bool {
        self.profile().payment_methods.contains(&kind)
    }
}

/// Why a card number was refused. Messages never contain the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardNumberError {
    /// Nothing but whitespace.
    Empty,
    /// A character other than ASCII digits, spaces and hyphens.
    InvalidCharacters,
    /// Fewer than 12 or more than 19 digits (ISO/IEC 7812-1), or a length the brand does not
    /// issue.
    Length,
    /// The Luhn check digit (ISO/IEC 7812-1 Annex B) is wrong: a typo.
    CheckDigit,
    /// The issuer range belongs to no brand we accept.
    UnknownBrand,
}

impl CardNumberError {
    /// What is wrong, in English, for a validation message about `card_number`.
    pub fn reason(self) -> &'static str {
        match self {
            CardNumberError::Empty => "must not be empty",
            CardNumberError::InvalidCharacters => "must contain only digits, spaces and hyphens",
            CardNumberError::Length => "has the wrong number of digits",
            CardNumberError::CheckDigit => "is not a valid card number (check digit)",
            CardNumberError::UnknownBrand => "is of an unsupported card brand",
        }
    }
}

impl fmt::Display for CardNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "card number {}", self.reason())
    }
}

impl std::error::Error for CardNumberError {}

impl From<CardNumberError> for FieldError {
    /// The error on field `card_number`.
    fn from(e: CardNumberError) -> Self {
        FieldError::new("card_number", e.reason())
    }
}

/// A primary account number that passed the checks of [`CardNumber::parse`].
///
/// Deliberately opaque: no `Display`, a `Debug` that shows only brand and last four digits, no
/// accessor for the full number. Keep it only as long as it takes to read [`CardNumber::brand`]
/// and [`CardNumber::last4`].
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber {
    digits: String,
    brand: CardBrand,
}

impl CardNumber {
    /// Longest input accepted, in bytes (19 digits with separators).
    pub const MAX_INPUT_LEN: usize = 32;

    /// Parses a card number as typed: digits, optionally separated by spaces or hyphens
    /// (`4111 1111 1111 1111`). Rules, in order: not empty; only digits, spaces and hyphens; at
    /// most [`CardNumber::MAX_INPUT_LEN`] bytes and 12–19 digits; Luhn check digit; an IIN of a
    /// known brand ([`CardBrand`]); a length that brand issues.
    ///
    /// # Errors
    ///
    /// The [`CardNumberError`] of the first rule broken.
    pub fn parse(input: &str) -> Result<CardNumber, CardNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(CardNumberError::Empty);
        }
        if !trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
        {
            return Err(CardNumberError::InvalidCharacters);
        }
        if trimmed.len() > Self::MAX_INPUT_LEN {
            return Err(CardNumberError::Length);
        }
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        if !(12..=19).contains(&digits.len()) {
            return Err(CardNumberError::Length);
        }
        if !luhn_valid(&digits) {
            return Err(CardNumberError::CheckDigit);
        }
        let brand = CardBrand::detect(&digits).ok_or(CardNumberError::UnknownBrand)?;
        if !brand.accepts_length(digits.len()) {
            return Err(CardNumberError::Length);
        }
        Ok(CardNumber { digits, brand })
    }

    /// The brand detected from the IIN.
    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    /// The last four digits, the most PCI DSS 3.4.1 allows to display.
    pub fn last4(&self) -> CardLast4 {
        let start = self.digits.len().saturating_sub(4);
        CardLast4(self.digits[start..].to_owned())
    }
}

impl fmt::Debug for CardNumber {
    /// `CardNumber(visa …1111)`: never the full number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CardNumber({} …{})",
            self.brand.as_str(),
            self.last4().as_str()
        )
    }
}

/// Whether `digits` (ASCII digits) pass the Luhn mod-10 check (ISO/IEC 7812-1 Annex B).
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// The last four digits of a card (the `card_number_masked` of the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardLast4(String);

impl CardLast4 {
    /// Exactly four ASCII digits, trimmed.
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `card_last4` otherwise.
    pub fn parse(input: &str) -> Result<CardLast4, FieldError> {
        let s = input.trim();
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(CardLast4(s.to_owned()))
        } else {
            Err(FieldError::new("card_last4", "must be exactly 4 digits"))
        }
    }

    /// The four digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A card's expiry: month 1–12 of a year 2000–2099. The card is valid through the last day of
/// that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CardExpiry {
    year: u16,
    month: u8,
}

impl CardExpiry {
    /// Parses the month (`"4"`, `"04"`) and the year (`"2028"` or two digits, `"28"` = 2028) as
    /// sent by a client.
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `expiry_month` (not 1–12) or `expiry_year` (not 2000–2099 or 00–99).
    pub fn parse(month: &str, year: &str) -> Result<CardExpiry, FieldError> {
        let number = |s: &str| {
            let s = s.trim();
            (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
                .map(|n| (n, s.len()))
        };
        let month = match number(month) {
            Some((m @ 1..=12, 1..=2)) => m,
            _ => {
                return Err(FieldError::new(
                    "expiry_month",
                    "must be a month from 1 to 12",
                ));
            }
        };
        let year = match number(year) {
            Some((y, 2)) => 2000 + y,
            Some((y @ 2000..=2099, 4)) => y,
            _ => {
                return Err(FieldError::new(
                    "expiry_year",
                    "must be a year such as 2028 or 28",
                ));
            }
        };
        Self::new(month, year)
    }

    /// The expiry for a numeric month and four-digit year.
    ///
    /// # Errors
    ///
    /// [`FieldError`] as in [`CardExpiry::parse`].
    pub fn new(month: u16, year: u16) -> Result<CardExpiry, FieldError> {
        let month = u8::try_from(month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or(FieldError::new(
                "expiry_month",
                "must be a month from 1 to 12",
            ))?;
        if !(2000..=2099).contains(&year) {
            return Err(FieldError::new(
                "expiry_year",
                "must be a year such as 2028 or 28",
            ));
        }
        Ok(CardExpiry { year, month })
    }

    /// Month, 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// Four-digit year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Whether the card has expired in the month `year`/`month` (it is valid through the whole
    /// expiry month, so it expires when that month is over).
    pub fn is_expired_at(&self, year: i32, month: u32) -> bool {
        (i32::from(self.year), u32::from(self.month)) < (year, month)
    }

    /// Whether the expiry lies more than `years` years after `year`/`month` — no issuer makes
    /// cards that long-lived, so it is a typo.
    pub fn is_beyond(&self, year: i32, month: u32, years: i32) -> bool {
        (i32::from(self.year), u32::from(self.month)) > (year + years, month)
    }
}

/// A cardholder name as embossed: 1–100 characters after trimming, letters (any script), spaces
/// and `. ' -` only. Digits are refused, so a card number typed into the wrong field is never
/// stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderName(String);

impl HolderName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses untrusted input.
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `card_holder_name`.
    pub fn parse(input: &str) -> Result<HolderName, FieldError> {
        let err = |reason| FieldError::new("card_holder_name", reason);
        let s = input.trim();
        if s.is_empty() {
            return Err(err("must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(err("must be at most 100 characters"));
        }
        if !s
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '.' | '\'' | '-'))
        {
            return Err(err("must contain only letters, spaces and . ' -"));
        }
        Ok(HolderName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One payment processor token format accepted in `provider_token`.
#[derive(Debug, Clone, Copy)]
pub struct TokenFormat {
    /// Who issues such tokens, and for which payment methods.
    pub issuer: &'static str,
    /// What the token looks like.
    pub shape: &'static str,
    /// A well-formed example.
    pub example: &'static str,
    matches: fn(&str) -> bool,
}

impl TokenFormat {
    /// Whether `token` (trimmed) has this format.
    pub fn matches(&self, token: &str) -> bool {
        (self.matches)(token)
    }
}

fn is_stripe_id(s: &str) -> bool {
    ["pm_", "tok_", "card_", "src_"].iter().any(|prefix| {
        s.strip_prefix(prefix)
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
    })
}

fn is_paypal_billing_agreement(s: &str) -> bool {
    s.strip_prefix("B-").is_some_and(|id| {
        id.len() == 17
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The processor token formats `provider_token` accepts — the one place they are defined (and
/// listed in `docs/api.md`). A token must have one of them and must not hold a card number
/// ([`crate::find_card_number`]; a processor never puts the PAN in its token, so one that does is
/// a PAN in disguise).
///
/// - Stripe object ids, `pm_` (PaymentMethod), `tok_` (Token), `card_` (Card), `src_` (Source),
///   then ASCII letters and digits: cards of both markets, and Apple Pay and Google Pay, which reach
///   us through the card processor.
/// - PayPal billing agreement ids (reference transactions): `B-` and 17 capital letters or digits.
/// - A UUID in the RFC 9562 text form (`8-4-4-4-12` hex digits), for gateways that key a stored
///   card by UUID (card-on-file at a regional acquirer, Элкарт included).
///
/// Adding a processor means adding its format here.
pub const PROVIDER_TOKEN_FORMATS: [TokenFormat; 3] = [
    TokenFormat {
        issuer: "Stripe (cards, Apple Pay, Google Pay)",
        shape: "pm_, tok_, card_ or src_ followed by letters and digits",
        example: "pm_1Q0PsIJvEtkwdCNYMd8A0Pjx",
        matches: is_stripe_id,
    },
    TokenFormat {
        issuer: "PayPal (billing agreements)",
        shape: "B- followed by 17 capital letters or digits",
        example: "B-5YM93434ES9012345",
        matches: is_paypal_billing_agreement,
    },
    TokenFormat {
        issuer: "card-on-file gateways keyed by UUID",
        shape: "a UUID, 8-4-4-4-12 hexadecimal digits",
        example: "3f2b8c1e-9a4d-4e7f-8b6a-1c2d3e4f5a6b",
        matches: is_uuid,
    },
];

/// A payment processor's reference to a payment instrument it stores (a Stripe `pm_…`, a PayPal
/// billing agreement `B-…`): at most 255 characters in one of the [`PROVIDER_TOKEN_FORMATS`],
/// never holding a card number. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderToken(String);

impl ProviderToken {
    /// Longest token, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Parses untrusted input (trimmed). Rules, in order: 1–255 bytes; no card number
    /// ([`FieldError::card_number_in_text`]); one of the [`PROVIDER_TOKEN_FORMATS`].
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `provider_token`.
    pub fn parse(input: &str) -> Result<ProviderToken, FieldError> {
        let err = |reason| FieldError::new("provider_token", reason);
        let s = input.trim();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(err("must be 1 to 255 characters"));
        }
        crate::text::check_free_text("provider_token", s)?;
        if !PROVIDER_TOKEN_FORMATS.iter().any(|f| f.matches(s)) {
            return Err(err(
                "must be a payment processor token (pm_…, tok_…, card_…, src_…, B-…, or a UUID)",
            ));
        }
        Ok(ProviderToken(s.to_owned()))
    }

    /// A token as stored, possibly before the format rules (issue 12): a token in another format
    /// that the earlier rules accepted (1–255 printable ASCII characters) is kept, so the
    /// processor can still be charged with it; one holding a card number is dropped (`None`) and
    /// never shown or used.
    pub fn from_stored(stored: &str) -> Option<ProviderToken> {
        let s = stored.trim();
        let legacy =
            !s.is_empty() && s.len() <= Self::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        (legacy && !crate::text::contains_card_number(s)).then(|| ProviderToken(s.to_owned()))
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProviderToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn catalog_per_market() {
        use PaymentMethodKind as K;
        for (market, catalog) in [
            (
                Market::Kg,
                "visa mastercard elcart cash_on_delivery bank_transfer",
            ),
            (
                Market::Us,
                "visa mastercard amex discover paypal apple_pay google_pay",
            ),
        ] {
            let kinds: Vec<&str> = market
                .profile()
                .payment_methods
                .iter()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(kinds.join(" "), catalog, "{market}");
        }
        assert!(Market::Kg.accepts_payment(K::Card(CardBrand::Elcart)));
        assert!(!Market::Us.accepts_payment(K::Card(CardBrand::Elcart)));
        assert!(!Market::Kg.accepts_payment(K::Card(CardBrand::Amex)));
        assert!(!Market::Kg.accepts_payment(K::Paypal));
        assert!(!Market::Us.accepts_payment(K::CashOnDelivery));
        assert!(Market::Us.accepts_payment(K::GooglePay));
    }

    #[test]
    fn kinds_parse_and_compose() {
        for t in PaymentType::ALL {
            assert_eq!(PaymentType::parse(t.as_str()), Some(t));
        }
        for b in CardBrand::ALL {
            assert_eq!(CardBrand::parse(&b.as_str().to_uppercase()), Some(b));
            let k = PaymentMethodKind::from_parts(PaymentType::Card, Some(b)).unwrap();
            assert_eq!(
                (k.payment_type(), k.card_brand()),
                (PaymentType::Card, Some(b))
            );
        }
        assert_eq!(PaymentType::parse("bitcoin"), None);
        assert_eq!(CardBrand::parse("mir"), None);
        assert_eq!(PaymentMethodKind::from_parts(PaymentType::Card, None), None);
        assert_eq!(
            PaymentMethodKind::from_parts(PaymentType::Paypal, Some(CardBrand::Visa)),
            None
        );
        assert_eq!(
            PaymentMethodKind::from_parts(PaymentType::ApplePay, None).map(|k| k.as_str()),
            Some("apple_pay")
        );
    }

    #[test]
    fn brands_from_iin_ranges() {
        let cases = [
            ("4111111111111111", CardBrand::Visa),
            ("4222222222222", CardBrand::Visa),
            ("4111111111111111110", CardBrand::Visa),
            ("5555555555554444", CardBrand::Mastercard),
            ("2223003122003222", CardBrand::Mastercard),
            ("2720999999999996", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("371449635398431", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("6440000000000005", CardBrand::Discover),
            ("6500000000000002", CardBrand::Discover),
            ("9417000000000008", CardBrand::Elcart),
            ("9417 1234 5678 9013", CardBrand::Elcart),
        ];
        for (number, brand) in cases {
            let card = CardNumber::parse(number).unwrap_or_else(|e| panic!("{number}: {e}"));
            assert_eq!(card.brand(), brand, "{number}");
            assert_eq!(card.last4().as_str(), &number[number.len() - 4..]);
        }
        // 2210 is just below the Mastercard 2-series; 3000 (Diners) is not accepted.
        assert_eq!(
            CardNumber::parse("2210000000000002"),
            Err(CardNumberError::UnknownBrand)
        );
        assert_eq!(
            CardNumber::parse("3000000000000004"),
            Err(CardNumberError::UnknownBrand)
        );
    }

    #[test]
    fn card_number_rules() {
        use CardNumberError as E;
        assert_eq!(CardNumber::parse("  "), Err(E::Empty));
        assert_eq!(
            CardNumber::parse("4111-1111-1111-111a"),
            Err(E::InvalidCharacters)
        );
        assert_eq!(
            CardNumber::parse("４１１１１１１１１１１１１１１１"),
            Err(E::InvalidCharacters)
        );
        assert_eq!(CardNumber::parse("4111111111111112"), Err(E::CheckDigit));
        assert_eq!(CardNumber::parse("41111111111"), Err(E::Length));
        assert_eq!(CardNumber::parse("41111111111111111111"), Err(E::Length));
        assert_eq!(CardNumber::parse(&"4".repeat(200)), Err(E::Length));
        // Valid Luhn but a length the brand does not issue: 15-digit Visa, 16-digit Amex.
        assert_eq!(CardNumber::parse("411111111111116"), Err(E::Length));
        assert_eq!(CardNumber::parse("3782822463100003"), Err(E::Length));
        assert_eq!(
            CardNumber::parse("4111-1111 1111-1111").map(|c| c.brand()),
            Ok(CardBrand::Visa)
        );
    }

    #[test]
    fn card_numbers_never_print() {
        let card = CardNumber::parse("4111 1111 1111 1111").unwrap();
        let shown = format!("{card:?} {:?}", Some(&card));
        assert_eq!(format!("{card:?}"), "CardNumber(visa …1111)");
        assert!(!shown.contains("411111"), "{shown}");
        for e in [
            CardNumber::parse("4111111111111112").unwrap_err(),
            CardNumber::parse("3000000000000004").unwrap_err(),
        ] {
            assert!(!e.to_string().chars().any(|c| c.is_ascii_digit()), "{e}");
        }
        let token = ProviderToken::parse("pm_1N2b3C").unwrap();
        assert_eq!(format!("{token:?}"), "ProviderToken([REDACTED])");
    }

    #[test]
    fn provider_tokens_have_a_processor_format_and_no_card_number() {
        for f in PROVIDER_TOKEN_FORMATS {
            assert!(f.matches(f.example), "{f:?}");
            assert_eq!(
                ProviderToken::parse(f.example).map(|t| t.as_str().to_owned()),
                Ok(f.example.to_owned())
            );
        }
        for ok in [
            "pm_1N2b3C",
            "tok_1",
            "card_1MvoL2LkdIwHu7ix0sdwEzF4",
            "src_1N3c",
            "B-50V812176H0783741",
            "3F2B8C1E-9A4D-4E7F-8B6A-1C2D3E4F5A6B",
        ] {
            assert!(ProviderToken::parse(ok).is_ok(), "{ok}");
        }
        // The example, and PANs hidden in each format.
        for pan in [
            "tok_4012888888881881_0431",
            "pm_4012888888881881",
            "card_x4012888888881881x",
            "B-4012888888881881X",
            "41111111-1111-1111-1111-111111111111",
            "5555 5555 5555 4444",
            "4012-8888-8888-1881",
        ] {
            let e = ProviderToken::parse(pan).unwrap_err();
            assert!(e.is_card_number_in_text(), "{pan}: {e}");
            assert_eq!(e.field, "provider_token");
        }
        assert_eq!(
            ProviderToken::from_stored("gp_tok_123").map(|t| t.as_str().to_owned()),
            Some("gp_tok_123".to_owned())
        );
        assert_eq!(
            ProviderToken::from_stored("tok_4012888888881881_0431"),
            None
        );
        assert_eq!(ProviderToken::from_stored("pm 1"), None);
        for other in [
            "gp_tok_123",
            "hello",
            "pm_",
            "pm_abc-def",
            "PM_abc",
            "B-5YM93434ES901234",
            "B-5ym93434es9012345",
            "3f2b8c1e9a4d4e7f8b6a1c2d3e4f5a6b",
            "javascript:alert(1)",
            "<script>",
        ] {
            let e = ProviderToken::parse(other).unwrap_err();
            assert!(!e.is_card_number_in_text(), "{other}");
            assert_eq!(e.field, "provider_token", "{other}");
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("7992739871a"));
        assert!(luhn_valid("0"));
    }

    #[test]
    fn expiry_rules() {
        let e = CardExpiry::parse("04", "2028").unwrap();
        assert_eq!((e.month(), e.year()), (4, 2028));
        assert_eq!(CardExpiry::parse("4", "28"), Ok(e));
        assert_eq!(
            CardExpiry::parse(" 12 ", " 2099 ").map(|e| e.month()),
            Ok(12)
        );
        for (m, y, field) in [
            ("0", "2028", "expiry_month"),
            ("13", "2028", "expiry_month"),
            ("004", "2028", "expiry_month"),
            ("", "2028", "expiry_month"),
            ("-1", "2028", "expiry_month"),
            ("4", "2100", "expiry_year"),
            ("4", "1999", "expiry_year"),
            ("4", "202", "expiry_year"),
            ("4", "2O28", "expiry_year"),
            ("4", "", "expiry_year"),
        ] {
            assert_eq!(CardExpiry::parse(m, y).unwrap_err().field, field, "{m}/{y}");
        }
        // Valid through the end of the month.
        assert!(!e.is_expired_at(2028, 4));
        assert!(e.is_expired_at(2028, 5));
        assert!(e.is_expired_at(2029, 1));
        assert!(!e.is_expired_at(2027, 12));
        assert!(!e.is_beyond(2026, 3, 20));
        assert!(CardExpiry::new(4, 2047).unwrap().is_beyond(2026, 3, 20));
        assert!(CardExpiry::new(0, 2030).is_err());
    }

    #[test]
    fn holder_names_and_tokens() {
        assert_eq!(
            HolderName::parse("  Anna Akhmatova ").unwrap().as_str(),
            "Anna Akhmatova"
        );
        assert!(HolderName::parse("Анна-Мария О'Нил Jr.").is_ok());
        for bad in ["", "   ", "4111111111111111", "Anna 2", "Anna\nA", "<b>"] {
            assert_eq!(
                HolderName::parse(bad).unwrap_err().field,
                "card_holder_name",
                "{bad:?}"
            );
        }
        assert!(HolderName::parse(&"a".repeat(100)).is_ok());
        assert!(HolderName::parse(&"a".repeat(101)).is_err());
        assert_eq!(
            ProviderToken::parse(" pm_1N2b3C4d5E ").unwrap().as_str(),
            "pm_1N2b3C4d5E"
        );
        for bad in [
            "",
            "pm 1",
            "tok\u{e9}",
            "4111111111111111",
            "tok_4111-1111-1111-1111",
        ] {
            assert_eq!(
                ProviderToken::parse(bad).unwrap_err().field,
                "provider_token",
                "{bad:?}"
            );
        }
        assert!(ProviderToken::parse(&"t".repeat(256)).is_err());
        assert!(ProviderToken::parse(&format!("pm_{}", "a".repeat(252))).is_ok());
        assert!(ProviderToken::parse(&format!("pm_{}", "a".repeat(253))).is_err());
        assert_eq!(CardLast4::parse("1111").unwrap().as_str(), "1111");
        assert!(CardLast4::parse("111").is_err());
        assert!(CardLast4::parse("11a1").is_err());
    }

    proptest! {
        #[test]
        fn any_valid_number_reveals_only_its_last_four(body in "[0-9]{11,18}") {
            // Complete `body` with its Luhn digit and see what parse makes of it.
            let number = (0..10)
                .map(|d| format!("{body}{d}"))
                .find(|n| luhn_valid(n))
                .unwrap();
            if let Ok(card) = CardNumber::parse(&number) {
                let last4 = card.last4();
                prop_assert_eq!(last4.as_str(), &number[number.len() - 4..]);
                let shown = format!("{card:?}");
                prop_assert!(!shown.contains(&number[..6]));
            }
            let mut typo = number.into_bytes();
            let last = typo.len() - 1;
            typo[last] = b'0' + (typo[last] - b'0' + 1) % 10;
            let typo = String::from_utf8(typo).unwrap();
            prop_assert_eq!(CardNumber::parse(&typo).err(), Some(CardNumberError::CheckDigit));
        }

        #[test]
        fn card_parse_never_panics(input in any::<String>()) {
            let _ = CardNumber::parse(&input);
            let _ = ProviderToken::parse(&input);
            let _ = HolderName::parse(&input);
            let _ = CardExpiry::parse(&input, &input);
        }
    }
}

//! The markets served by Marque Auth and their static profiles.

use std::fmt;
use std::str::FromStr;

use crate::payment::{CardBrand, PaymentMethodKind};

/// A market (country) served by Marque Auth.
///
/// Serialized (serde) as the lowercase code: `"kg"` / `"us"`. Ordering is
/// declaration order (`Kg < Us`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Market {
    /// Kyrgyzstan: ISO 3166-1 alpha-2 `KG`, ITU-T E.164 country calling code +996, som (KGS),
    /// Russian.
    Kg,
    /// United States: ISO 3166-1 alpha-2 `US` (plus the NANP territories PR, GU, VI, AS and MP
    /// for phone numbers), ITU-T E.164 country calling code +1, dollar (USD), English.
    Us,
}

impl Market {
    /// Every market, in declaration order.
    pub const ALL: [Market; 2] = [Market::Kg, Market::Us];

    /// The lowercase market code used in URLs, JSON and configuration: `"kg"` or `"us"`
    /// (the lowercased ISO 3166-1 alpha-2 country code).
    pub fn code(self) -> &'static str {
        match self {
            Market::Kg => "kg",
            Market::Us => "us",
        }
    }

    /// The static profile (country, currency, phone format, tax, time zone…) of this market.
    pub fn profile(self) -> &'static MarketProfile {
        match self {
            Market::Kg => &KG_PROFILE,
            Market::Us => &US_PROFILE,
        }
    }

    /// The language user-facing texts are written in for this market: [`Language::Ru`] for
    /// Kyrgyzstan, [`Language::En`] for the United States.
    pub fn language(self) -> Language {
        self.profile().language
    }
}

/// Longest prefix (in characters) of rejected input kept inside [`UnknownMarket`].
const UNKNOWN_MARKET_ECHO_CHARS: usize = 32;

impl FromStr for Market {
    type Err = UnknownMarket;

    /// Parses a market code: surrounding whitespace is trimmed and the comparison is
    /// ASCII case-insensitive, so `"kg"`, `" KG "`, `"Us"` are accepted.
    ///
    /// # Errors
    ///
    /// [`UnknownMarket`] carrying the trimmed input (cut to its first 32 characters) for
    /// anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Market::ALL
            .into_iter()
            .find(|m| trimmed.eq_ignore_ascii_case(m.code()))
            .ok_or_else(|| UnknownMarket(trimmed.chars().take(UNKNOWN_MARKET_ECHO_CHARS).collect()))
    }
}

impl fmt::Display for Market {
    /// Writes [`Market::code`] (`kg` / `us`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Error of [`Market::from_str`]: the input is not a market code we serve.
///
/// Holds the trimmed input, cut to its first 32 characters so that hostile input cannot
/// grow error messages without bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown market `{0}`")]
pub struct UnknownMarket(pub String);

/// A language user-facing texts are available in.
///
/// Serialized (serde) as the lowercase ISO 639-1 code: `"ru"` / `"en"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Russian (ISO 639-1 `ru`), used in Kyrgyzstan.
    Ru,
    /// English (ISO 639-1 `en`), used in the United States.
    En,
}

impl Language {
    /// The ISO 639-1 two-letter code: `"ru"` or `"en"`.
    pub fn code(self) -> &'static str {
        match self {
            Language::Ru => "ru",
            Language::En => "en",
        }
    }
}

/// A currency as described by ISO 4217.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// ISO 4217 alphabetic code: `"KGS"` (Kyrgyzstani som) or `"USD"` (US dollar).
    pub code: &'static str,
    /// Symbol shown to users: `"сом"` or `"$"`.
    pub symbol: &'static str,
    /// ISO 4217 minor-unit exponent: number of decimal digits of the minor unit
    /// (2 for both KGS — 100 tyiyn — and USD — 100 cents). Amounts are stored as integers
    /// of minor units.
    pub minor_units: u8,
}

/// How a market writes prices: where the currency symbol goes and which separators it uses.
/// Used by [`crate::Money::format_for`] and [`crate::Money::parse_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceFormat {
    /// Whether the symbol precedes (`$29.99`) or follows (`2999 сом`) the number.
    pub symbol_position: SymbolPosition,
    /// Text between the number and the symbol: `""` for `$29.99`, `" "` for `2999 сом`.
    pub symbol_separator: &'static str,
    /// Separator of thousands groups: `','` (`$1,299.00`) or `' '` (`12 999 сом`).
    pub grouping_separator: char,
    /// Separator of the minor-unit digits: `'.'` (`$29.99`) or `','` (`2999,50 сом`).
    pub decimal_separator: char,
    /// Fewest integer digits at which groups are separated: 4 for US English (`$1,299.00`),
    /// 5 for Russian, whose typographic rule leaves four-digit numbers whole (`2999 сом`,
    /// `12 999 сом`; A. Мильчин, «Справочник издателя и автора»).
    pub min_grouping_digits: u8,
    /// Whether the minor-unit digits are always shown (`$29.00`) or only when not zero
    /// (`2999 сом`, `2999,50 сом`).
    pub always_show_minor: bool,
}

/// Side of the number the currency symbol is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolPosition {
    /// `$29.99`.
    Before,
    /// `2999 сом`.
    After,
}

/// Static facts about one market. Obtain it with [`Market::profile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketProfile {
    /// The market this profile describes.
    pub market: Market,
    /// English country name: `"Kyrgyzstan"` / `"United States"`.
    pub country: &'static str,
    /// ISO 3166-1 alpha-2 country code: `"KG"` / `"US"`.
    pub country_code: &'static str,
    /// The market's currency (ISO 4217).
    pub currency: Currency,
    /// Language of user-facing texts.
    pub language: Language,
    /// ITU-T E.164 country calling code with a leading `+`: `"+996"` / `"+1"`.
    pub phone_prefix: &'static str,
    /// Display pattern of a phone number, `X` standing for a digit of the national
    /// significant number: `"+996 XXX XXX XXX"` / `"+1 (XXX) XXX-XXXX"`
    /// (see [`crate::PhoneNumber::display`]).
    pub phone_format: &'static str,
    /// Tax rate in basis points (1 bp = 0.01 %): 1200 (12 % VAT, Tax Code of the Kyrgyz
    /// Republic) / 800 (8 % sales tax: the US has no federal VAT; this is the flat
    /// state-plus-local rate the service applies).
    pub tax_rate_basis_points: u32,
    /// IANA time-zone database name: `"Asia/Bishkek"` / `"America/New_York"`.
    pub timezone: &'static str,
    /// Date display pattern: `"DD.MM.YYYY"` / `"MM/DD/YYYY"`.
    pub date_format: &'static str,
    /// Default lifetime of a one-time verification code, in minutes: 10 / 10.
    pub default_otp_expiry_minutes: u32,
    /// How prices are written (`2999 сом` / `$29.99`).
    pub price_format: PriceFormat,
    /// Payment methods shoppers of this market may save, in display order: KG — Visa,
    /// Mastercard, Элкарт, cash on delivery, bank transfer; US — Visa, Mastercard, American
    /// Express, Discover, PayPal, Apple Pay, Google Pay.
    pub payment_methods: &'static [PaymentMethodKind],
}

static KG_PROFILE: MarketProfile = MarketProfile {
    market: Market::Kg,
    country: "Kyrgyzstan",
    country_code: "KG",
    currency: Currency {
        code: "KGS",
        symbol: "сом",
        minor_units: 2,
    },
    language: Language::Ru,
    phone_prefix: "+996",
    phone_format: "+996 XXX XXX XXX",
    tax_rate_basis_points: 1200,
    timezone: "Asia/Bishkek",
    date_format: "DD.MM.YYYY",
    default_otp_expiry_minutes: 10,
    price_format: PriceFormat {
        symbol_position: SymbolPosition::After,
        symbol_separator: " ",
        grouping_separator: ' ',
        decimal_separator: ',',
        min_grouping_digits: 5,
        always_show_minor: false,
    },
    payment_methods: &[
        PaymentMethodKind::Card(CardBrand::Visa),
        PaymentMethodKind::Card(CardBrand::Mastercard),
        PaymentMethodKind::Card(CardBrand::Elcart),
        PaymentMethodKind::CashOnDelivery,
        PaymentMethodKind::BankTransfer,
    ],
};

static US_PROFILE: MarketProfile = MarketProfile {
    market: Market::Us,
    country: "United States",
    country_code: "US",
    currency: Currency {
        code: "USD",
        symbol: "$",
        minor_units: 2,
    },
    language: Language::En,
    phone_prefix: "+1",
    phone_format: "+1 (XXX) XXX-XXXX",
    tax_rate_basis_points: 800,
    timezone: "America/New_York",
    date_format: "MM/DD/YYYY",
    default_otp_expiry_minutes: 10,
    price_format: PriceFormat {
        symbol_position: SymbolPosition::Before,
        symbol_separator: "",
        grouping_separator: ',',
        decimal_separator: '.',
        min_grouping_digits: 4,
        always_show_minor: true,
    },
    payment_methods: &[
        PaymentMethodKind::Card(CardBrand::Visa),
        PaymentMethodKind::Card(CardBrand::Mastercard),
        PaymentMethodKind::Card(CardBrand::Amex),
        PaymentMethodKind::Card(CardBrand::Discover),
        PaymentMethodKind::Paypal,
        PaymentMethodKind::ApplePay,
        PaymentMethodKind::GooglePay,
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_display() {
        assert_eq!(Market::Kg.code(), "kg");
        assert_eq!(Market::Us.code(), "us");
        assert_eq!(Market::Kg.to_string(), "kg");
        assert_eq!(Market::Us.to_string(), "us");
        assert_eq!(Language::Ru.code(), "ru");
        assert_eq!(Language::En.code(), "en");
        assert_eq!(Market::Kg.language(), Language::Ru);
        assert_eq!(Market::Us.language(), Language::En);
        assert_eq!(Market::ALL, [Market::Kg, Market::Us]);
        assert!(Market::Kg < Market::Us);
    }

    #[test]
    fn from_str_accepts_codes_trimmed_case_insensitive() {
        let ok = [
            ("kg", Market::Kg),
            ("KG", Market::Kg),
            ("Kg", Market::Kg),
            ("  kg\n", Market::Kg),
            ("us", Market::Us),
            ("US", Market::Us),
            ("\tuS ", Market::Us),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<Market>(), Ok(want), "{input:?}");
        }
        for m in Market::ALL {
            assert_eq!(m.to_string().parse::<Market>(), Ok(m));
        }
    }

    #[test]
    fn from_str_rejects_others() {
        for input in [
            "", " ", "k g", "kgz", "usa", "ru", "ca", "KG.", "996", "kg\0",
        ] {
            let err = input.parse::<Market>().unwrap_err();
            assert_eq!(err, UnknownMarket(input.trim().to_owned()), "{input:?}");
        }
        let err = " ca ".parse::<Market>().unwrap_err();
        assert_eq!(err.to_string(), "unknown market `ca`");
        let long = "x".repeat(1000);
        let err = long.parse::<Market>().unwrap_err();
        assert_eq!(err.0.chars().count(), UNKNOWN_MARKET_ECHO_CHARS);
    }

    #[test]
    fn serde_is_lowercase() {
        // serde_json is not a dependency; check via the serde data model names instead.
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        fn de<'a, T: serde::Deserialize<'a>>(input: &'a str) -> Result<T, Error> {
            let de: StrDeserializer<'a, Error> = input.into_deserializer();
            T::deserialize(de)
        }
        assert_eq!(de::<Market>("kg"), Ok(Market::Kg));
        assert_eq!(de::<Market>("us"), Ok(Market::Us));
        assert!(de::<Market>("US").is_err());
        assert_eq!(de::<Language>("ru"), Ok(Language::Ru));
        assert_eq!(de::<Language>("en"), Ok(Language::En));
    }

    #[test]
    fn profiles() {
        // market, country, code, currency, language, phone prefix and format, tax (bp), zone,
        // date format
        for (market, country, country_code, currency, language, phone, tax, timezone, date) in [
            (
                Market::Kg,
                "Kyrgyzstan",
                "KG",
                ("KGS", "сом"),
                Language::Ru,
                ("+996", "+996 XXX XXX XXX"),
                1200,
                "Asia/Bishkek",
                "DD.MM.YYYY",
            ),
            (
                Market::Us,
                "United States",
                "US",
                ("USD", "$"),
                Language::En,
                ("+1", "+1 (XXX) XXX-XXXX"),
                800,
                "America/New_York",
                "MM/DD/YYYY",
            ),
        ] {
            let p = market.profile();
            assert_eq!(p.market, market);
            assert_eq!(p.country, country);
            assert_eq!(p.country_code, country_code);
            let (code, symbol) = currency;
            let minor_units = 2;
            assert_eq!(
                p.currency,
                Currency {
                    code,
                    symbol,
                    minor_units
                }
            );
            assert_eq!(p.language, language);
            assert_eq!((p.phone_prefix, p.phone_format), phone);
            assert_eq!(p.tax_rate_basis_points, tax);
            assert_eq!(p.timezone, timezone);
            assert_eq!(p.date_format, date);
            assert_eq!(p.default_otp_expiry_minutes, 10);
        }

        for m in Market::ALL {
            assert_eq!(m.profile().market, m);
            assert_eq!(m.profile().country_code.to_ascii_lowercase(), m.code());
            assert_eq!(m.profile().language, m.language());
        }
    }
}

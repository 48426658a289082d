//! Money: amounts as integers of a currency's minor unit (ISO 4217), checked arithmetic, tax, and
//! the markets' price display (`2999 сом`, `$1,299.00`).

use std::fmt;

use crate::market::{Currency, Market, MarketProfile, SymbolPosition};

/// An amount of money: a signed number of minor units (tyiyn for KGS, cents for USD — see
/// [`Currency::minor_units`]) with its currency.
///
/// Integer minor units, never floating point, so sums are exact. Arithmetic is checked: overflow
/// of the `i64` range and mixing currencies are [`MoneyError`]s, never panics or silent
/// wrap-arounds. Negative amounts are allowed (refunds, discounts). Equality compares amount and
/// currency.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// Why a money operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The result does not fit in an `i64` of minor units (about ±9.2 × 10^16 major units).
    #[error("amount out of range")]
    Overflow,
    /// Two amounts (or an amount and a market) of different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// ISO 4217 code of the left operand (or of the amount).
        left: &'static str,
        /// ISO 4217 code of the right operand (or of the market).
        right: &'static str,
    },
    /// Tax was asked for a negative amount; compute the tax of a refund on its absolute value.
    #[error("tax is computed on amounts of zero or more")]
    NegativeAmount,
    /// The text is not a price in the market's display format.
    #[error("not a price in the market's format")]
    InvalidFormat,
}

/// A subtotal with its tax: `subtotal + tax == total` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxBreakdown {
    /// The amount before tax.
    pub subtotal: Money,
    /// The tax on it, rounded half up to the minor unit.
    pub tax: Money,
    /// `subtotal + tax`.
    pub total: Money,
}

/// Basis points in one whole (100 %).
const BASIS_POINTS: i128 = 10_000;

impl Money {
    /// `minor` minor units of `currency` (e.g. `Money::new(299_900, kgs)` is 2999 сом).
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// `minor` minor units of `market`'s currency.
    pub fn in_market(minor: i64, market: Market) -> Money {
        Money::new(minor, market.profile().currency)
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// The amount in minor units (tyiyn, cents).
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// `op` on the amounts of `self` and `other`, which must be in one currency.
    fn combine(self, other: Money, op: fn(i64, i64) -> Option<i64>) -> Result<Money, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let minor = op(self.minor, other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// `self + other`.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] for different currencies, [`MoneyError::Overflow`].
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.combine(other, i64::checked_add)
    }

    /// `self - other`.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] for different currencies, [`MoneyError::Overflow`].
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.combine(other, i64::checked_sub)
    }

    /// `self × quantity` (a line total).
    ///
    /// # Errors
    ///
    /// [`MoneyError::Overflow`].
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// The tax on this amount at `rate_basis_points` (1 bp = 0.01 %; 1200 = 12 %), rounded half
    /// up to the minor unit: 12 % of 0.04 сом (4 tyiyn) is 0.48 → 0; of 0.05 сом is 0.6 → 1
    /// tyiyn. Never negative.
    ///
    /// # Errors
    ///
    /// [`MoneyError::NegativeAmount`] when `self` is below zero, [`MoneyError::Overflow`] when the
    /// tax does not fit (only possible for rates above 100 %).
    pub fn tax(self, rate_basis_points: u32) -> Result<Money, MoneyError> {
        if self.minor < 0 {
            return Err(MoneyError::NegativeAmount);
        }
        // i64 × u32 fits in i128 with room to spare, so this cannot overflow.
        let scaled = i128::from(self.minor) * i128::from(rate_basis_points);
        let tax = (scaled + BASIS_POINTS / 2) / BASIS_POINTS;
        let minor = i64::try_from(tax).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// This amount as a subtotal plus its tax at `rate_basis_points` (see [`Money::tax`]).
    ///
    /// # Errors
    ///
    /// Those of [`Money::tax`], and [`MoneyError::Overflow`] when the total does not fit.
    pub fn with_tax(self, rate_basis_points: u32) -> Result<TaxBreakdown, MoneyError> {
        let tax = self.tax(rate_basis_points)?;
        Ok(TaxBreakdown {
            subtotal: self,
            tax,
            total: self.checked_add(tax)?,
        })
    }

    /// The price as `market` displays it: `2999 сом`, `12 999 сом`, `2999,50 сом`, `-150 сом`
    /// (KG); `$29.99`, `$1,299.00`, `-$5.00` (US). See [`MarketProfile::price_format`].
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] when the amount is not in the market's currency.
    pub fn format_for(&self, market: Market) -> Result<String, MoneyError> {
        let profile = market.profile();
        same_currency(self.currency, profile.currency)?;
        let f = profile.price_format;
        let scale = 10u64.pow(u32::from(self.currency.minor_units));
        let magnitude = self.minor.unsigned_abs();
        let (major, minor) = (magnitude / scale, magnitude % scale);
        let mut number = group(major, f.grouping_separator, f.min_grouping_digits);
        if self.currency.minor_units > 0 && (f.always_show_minor || minor != 0) {
            number.push(f.decimal_separator);
            number.push_str(&format!(
                "{minor:0width$}",
                width = usize::from(self.currency.minor_units)
            ));
        }
        let sign = if self.minor < 0 { "-" } else { "" };
        let (symbol, sep) = (self.currency.symbol, f.symbol_separator);
        Ok(match f.symbol_position {
            SymbolPosition::Before => format!("{sign}{symbol}{sep}{number}"),
            SymbolPosition::After => format!("{sign}{number}{sep}{symbol}"),
        })
    }

    /// Reads a price written in `market`'s display format back; the inverse of
    /// [`Money::format_for`]. Also accepts thousands groups where the formatter omits them
    /// (`2 999 сом`), no groups at all (`$1299.00`), and a missing minor part (`$29`).
    ///
    /// # Errors
    ///
    /// [`MoneyError::InvalidFormat`] for anything else (wrong symbol or separators, misplaced
    /// groups, a minor part with the wrong number of digits, non-ASCII digits),
    /// [`MoneyError::Overflow`] when the amount does not fit.
    pub fn parse_for(input: &str, market: Market) -> Result<Money, MoneyError> {
        let profile = market.profile();
        let f = profile.price_format;
        let currency = profile.currency;
        let s = input.trim();
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let number = match f.symbol_position {
            SymbolPosition::Before => s
                .strip_prefix(currency.symbol)
                .and_then(|r| r.strip_prefix(f.symbol_separator)),
            SymbolPosition::After => s
                .strip_suffix(currency.symbol)
                .and_then(|r| r.strip_suffix(f.symbol_separator)),
        }
        .ok_or(MoneyError::InvalidFormat)?;
        let (int_part, minor_part) = match number.split_once(f.decimal_separator) {
            Some((i, m)) => (i, Some(m)),
            None => (number, None),
        };
        let major = parse_grouped(int_part, f.grouping_separator)?;
        let digits = usize::from(currency.minor_units);
        let minor = match minor_part {
            None => 0,
            Some(m) if digits > 0 && m.len() == digits && m.bytes().all(|b| b.is_ascii_digit()) => {
                m.parse::<u128>().map_err(|_| MoneyError::InvalidFormat)?
            }
            Some(_) => return Err(MoneyError::InvalidFormat),
        };
        let scale = 10u128.pow(u32::from(currency.minor_units));
        let magnitude = major
            .checked_mul(scale)
            .and_then(|v| v.checked_add(minor))
            .ok_or(MoneyError::Overflow)?;
        let magnitude = i128::try_from(magnitude).map_err(|_| MoneyError::Overflow)?;
        let signed = if negative { -magnitude } else { magnitude };
        let minor = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(minor, currency))
    }
}

impl fmt::Debug for Money {
    /// `Money(299900 KGS)`: minor units and ISO 4217 code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.minor, self.currency.code)
    }
}

impl MarketProfile {
    /// `subtotal` plus the market's tax ([`MarketProfile::tax_rate_basis_points`]), rounded half
    /// up to the minor unit: 2999 сом → 359,88 сом tax, 3358,88 сом total.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] when `subtotal` is not in the market's currency, and
    /// those of [`Money::with_tax`].
    pub fn apply_tax(&self, subtotal: Money) -> Result<TaxBreakdown, MoneyError> {
        same_currency(subtotal.currency, self.currency)?;
        subtotal.with_tax(self.tax_rate_basis_points)
    }
}

/// `n` in decimal with `sep` between groups of three digits when it has at least `min_digits`
/// digits.
fn group(n: u64, sep: char, min_digits: u8) -> String {
    let digits = n.to_string();
    if digits.len() < usize::from(min_digits) {
        return digits;
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// Parses ASCII digits, optionally grouped by `sep` in threes (`12 999`, `1,299`): the first
/// group has 1–3 digits, every other exactly 3. No leading zeros except `0` itself.
fn parse_grouped(s: &str, sep: char) -> Result<u128, MoneyError> {
    let groups: Vec<&str> = s.split(sep).collect();
    let well_formed = groups.iter().enumerate().all(|(i, g)| {
        let len_ok = if i == 0 {
            (1..=3).contains(&g.len()) || groups.len() == 1
        } else {
            g.len() == 3
        };
        len_ok && !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit())
    });
    let digits: String = groups.concat();
    if !well_formed || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(MoneyError::InvalidFormat);
    }
    // More than 39 digits cannot fit in u128; anything past i64 is refused by the caller.
    if digits.len() > 38 {
        return Err(MoneyError::Overflow);
    }
    digits
        .parse::<u128>()
        .map_err(|_| MoneyError::InvalidFormat)
}

/// Refuses amounts of two different currencies.
fn same_currency(left: Currency, right: Currency) -> Result<(), MoneyError> {
    if left.code == right.code {
        Ok(())
    } else {
        Err(MoneyError::CurrencyMismatch {
            left: left.code,
            right: right.code,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn kgs(minor: i64) -> Money {
        Money::in_market(minor, Market::Kg)
    }

    fn usd(minor: i64) -> Money {
        Money::in_market(minor, Market::Us)
    }

    #[test]
    fn formats_like_each_market() {
        use Market::{Kg, Us};
        for (market, minor, shown) in [
            (Kg, 299_900, "2999 сом"),
            (Kg, 1_299_900, "12 999 сом"),
            (Kg, 12_345_678_900, "123 456 789 сом"),
            (Kg, 299_950, "2999,50 сом"),
            (Kg, 5, "0,05 сом"),
            (Kg, 0, "0 сом"),
            (Kg, -15_000, "-150 сом"),
            (Us, 2999, "$29.99"),
            (Us, 129_900, "$1,299.00"),
            (Us, 123_456_789, "$1,234,567.89"),
            (Us, 5, "$0.05"),
            (Us, 0, "$0.00"),
            (Us, -500, "-$5.00"),
            (Us, i64::MIN, "-$92,233,720,368,547,758.08"),
        ] {
            let money = Money::in_market(minor, market);
            assert_eq!(money.format_for(market).unwrap(), shown, "{minor}");
        }
    }

    #[test]
    fn formatting_in_another_market_is_a_currency_mismatch() {
        assert_eq!(
            usd(100).format_for(Market::Kg),
            Err(MoneyError::CurrencyMismatch {
                left: "USD",
                right: "KGS"
            })
        );
        assert!(kgs(100).format_for(Market::Us).is_err());
    }

    #[test]
    fn parses_display_text() {
        assert_eq!(Money::parse_for("2999 сом", Market::Kg), Ok(kgs(299_900)));
        assert_eq!(Money::parse_for("2 999 сом", Market::Kg), Ok(kgs(299_900)));
        assert_eq!(
            Money::parse_for(" 12 999 сом ", Market::Kg),
            Ok(kgs(1_299_900))
        );
        assert_eq!(
            Money::parse_for("2999,50 сом", Market::Kg),
            Ok(kgs(299_950))
        );
        assert_eq!(Money::parse_for("-150 сом", Market::Kg), Ok(kgs(-15_000)));
        assert_eq!(Money::parse_for("$29.99", Market::Us), Ok(usd(2999)));
        assert_eq!(Money::parse_for("$1,299.00", Market::Us), Ok(usd(129_900)));
        assert_eq!(Money::parse_for("$1299.00", Market::Us), Ok(usd(129_900)));
        assert_eq!(Money::parse_for("$29", Market::Us), Ok(usd(2900)));
        assert_eq!(Money::parse_for("-$5.00", Market::Us), Ok(usd(-500)));
        let kg: &[&str] = &[
            "",
            "сом",
            "2999",
            "2999сом",
            "$29.99",
            "29,9 сом",
            "29,999 сом",
            "12 99 сом",
            "1  999 сом",
            "０ сом",
            "02 сом",
            "2999.50 сом",
            "--1 сом",
        ];
        let us: &[&str] = &[
            "29.99",
            "$29.9",
            "$1,29.00",
            "$,299.00",
            "2999 сом",
            "$ 29.99",
            "$1.299,00",
        ];
        for (market, bads) in [(Market::Kg, kg), (Market::Us, us)] {
            for bad in bads {
                assert_eq!(
                    Money::parse_for(bad, market),
                    Err(MoneyError::InvalidFormat),
                    "{bad:?}"
                );
            }
        }
        assert_eq!(
            Money::parse_for("$92,233,720,368,547,758.08", Market::Us),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::parse_for(&format!("${}.00", "9".repeat(60)), Market::Us),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(kgs(100).checked_add(kgs(50)), Ok(kgs(150)));
        assert_eq!(kgs(100).checked_sub(kgs(150)), Ok(kgs(-50)));
        assert_eq!(usd(2999).checked_mul(3), Ok(usd(8997)));
        assert_eq!(kgs(i64::MAX).checked_add(kgs(1)), Err(MoneyError::Overflow));
        assert_eq!(kgs(i64::MIN).checked_sub(kgs(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MAX).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(
            kgs(1).checked_add(usd(1)),
            Err(MoneyError::CurrencyMismatch {
                left: "KGS",
                right: "USD"
            })
        );
        assert!(usd(1).checked_sub(kgs(1)).is_err());
        assert_eq!(Money::zero(kgs(0).currency()), kgs(0));
        assert_eq!(format!("{:?}", kgs(299_900)), "Money(299900 KGS)");
    }

    #[test]
    fn tax_rounds_half_up() {
        // 12 % of 4 tyiyn = 0.48 → 0; of 5 tyiyn = 0.6 → 1; of 25 cents at 8 % = 2.0 → 2.
        assert_eq!(kgs(4).tax(1200), Ok(kgs(0)));
        assert_eq!(kgs(5).tax(1200), Ok(kgs(1)));
        // 8 % of 6.25 dollars = 50 cents exactly; of 6.31 = 50.48 → 50; of 6.32 = 50.56 → 51.
        assert_eq!(usd(625).tax(800), Ok(usd(50)));
        assert_eq!(usd(631).tax(800), Ok(usd(50)));
        assert_eq!(usd(632).tax(800), Ok(usd(51)));
        // Exactly half a cent rounds up: 0.08 % of 625 cents = 0.5 → 1.
        assert_eq!(usd(625).tax(8), Ok(usd(1)));
        assert_eq!(kgs(-1).tax(1200), Err(MoneyError::NegativeAmount));
        assert_eq!(kgs(i64::MAX).tax(20_000), Err(MoneyError::Overflow));
        assert_eq!(kgs(i64::MAX).tax(10_000), Ok(kgs(i64::MAX)));
        let kg = Market::Kg.profile().apply_tax(kgs(299_900)).unwrap();
        assert_eq!(kg.tax, kgs(35_988));
        assert_eq!(kg.total, kgs(335_888));
        assert_eq!(kg.total.format_for(Market::Kg).unwrap(), "3358,88 сом");
        let us = Market::Us.profile().apply_tax(usd(2999)).unwrap();
        assert_eq!((us.tax, us.total), (usd(240), usd(3239)));
        assert!(Market::Us.profile().apply_tax(kgs(100)).is_err());
        assert_eq!(
            Market::Kg.profile().apply_tax(kgs(i64::MAX)),
            Err(MoneyError::Overflow)
        );
    }

    fn market() -> impl Strategy<Value = Market> {
        prop_oneof![Just(Market::Kg), Just(Market::Us)]
    }

    proptest! {
        #[test]
        fn formatting_round_trips(minor in any::<i64>(), m in market()) {
            let money = Money::in_market(minor, m);
            let text = money.format_for(m).unwrap();
            prop_assert_eq!(Money::parse_for(&text, m), Ok(money), "{}", text);
        }

        #[test]
        fn tax_is_never_negative_and_adds_up(
            minor in 0..=i64::MAX,
            rate in 0u32..=10_000,
            m in market(),
        ) {
            let subtotal = Money::in_market(minor, m);
            let tax = subtotal.tax(rate).unwrap();
            prop_assert!(tax.minor() >= 0);
            prop_assert!(tax.minor() <= minor);
            if let Ok(b) = subtotal.with_tax(rate) {
                prop_assert_eq!(b.subtotal.checked_add(b.tax), Ok(b.total));
                prop_assert_eq!(b.tax, tax);
            }
        }

        #[test]
        fn market_tax_adds_up(minor in 0i64..=1_000_000_000_000_000, m in market()) {
            let b = m.profile().apply_tax(Money::in_market(minor, m)).unwrap();
            prop_assert!(b.tax.minor() >= 0);
            prop_assert_eq!(b.subtotal.minor() + b.tax.minor(), b.total.minor());
            // Half up: the exact tax is within half a minor unit of the rounded one.
            let exact = i128::from(minor) * i128::from(m.profile().tax_rate_basis_points);
            let diff = i128::from(b.tax.minor()) * BASIS_POINTS - exact;
            prop_assert!(-BASIS_POINTS / 2 < diff && diff <= BASIS_POINTS / 2);
        }

        #[test]
        fn parse_never_panics(input in any::<String>(), m in market()) {
            let _ = Money::parse_for(&input, m);
        }
    }
}

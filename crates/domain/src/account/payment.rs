//! Turning a client's payment-method fields into a [`NewPaymentMethod`] of the user's market.

use std::fmt;

use marque_markets::{
    CardBrand, CardExpiry, CardLast4, CardNumber, FieldError, HolderName, Market,
    PaymentMethodKind, PaymentType, ProviderToken,
};

use super::AccountError;
use super::entities::{CardDetails, NewPaymentMethod, PaymentMethodRecord, PaymentMethodUpdate};

/// Payment-method fields as a client sent them (the product's `POST
/// /api/v1/profile/payment-methods` body). `Debug` hides `card_number` and `provider_token`.
#[derive(Clone, Default)]
pub struct PaymentMethodInput {
    /// `card` (default), `cash_on_delivery`, `bank_transfer`, `paypal`, `apple_pay`,
    /// `google_pay`.
    pub payment_type: Option<String>,
    /// Card brand: `visa`, `mastercard`, `amex`, `discover`, `elcart`. Detected from the number
    /// when one is sent (and then must agree); required with a `provider_token`.
    pub card_type: Option<String>,
    /// The full card number. Used to check the card and read brand and last four digits, then
    /// dropped.
    pub card_number: Option<String>,
    /// Last four digits, with a `provider_token` (the processor's SDK reports them).
    pub card_last4: Option<String>,
    /// Name on the card.
    pub card_holder_name: Option<String>,
    /// Expiry month, `1`–`12`.
    pub expiry_month: Option<String>,
    /// Expiry year, `2028` or `28`.
    pub expiry_year: Option<String>,
    /// The processor's token for the instrument (instead of a card number).
    pub provider_token: Option<String>,
    /// Whether it should become the default.
    pub is_default: bool,
}

impl fmt::Debug for PaymentMethodInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("PaymentMethodInput")
            .field("payment_type", &self.payment_type)
            .field("card_type", &self.card_type)
            .field("card_number", &redacted(&self.card_number))
            .field("card_last4", &self.card_last4)
            .field("card_holder_name", &self.card_holder_name)
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .field("provider_token", &redacted(&self.provider_token))
            .field("is_default", &self.is_default)
            .finish()
    }
}

/// A field's value unless absent or blank.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// Both expiry fields or neither.
fn expiry(month: Option<&str>, year: Option<&str>) -> Result<Option<CardExpiry>, FieldError> {
    match (month, year) {
        (Some(m), Some(y)) => CardExpiry::parse(m, y).map(Some),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(FieldError::new(
            "expiry_month",
            "is required with expiry_year",
        )),
        (Some(_), None) => Err(FieldError::new(
            "expiry_year",
            "is required with expiry_month",
        )),
    }
}

impl NewPaymentMethod {
    /// Applies `market`'s payment rules to `input`.
    ///
    /// - `payment_type` defaults to `card`; an unknown one is a validation error.
    /// - Cards need either `card_number` (then `expiry_month` and `expiry_year` are required; the
    ///   brand is detected from the number — see [`CardNumber::parse`] — and `card_type`, if
    ///   sent, must agree) or `provider_token` (then `card_type` and `card_last4` are required,
    ///   the expiry optional), never both. Only brand, last four digits, expiry and holder name
    ///   are kept.
    /// - Other types take no card fields; `provider_token` is accepted for PayPal, Apple Pay and
    ///   Google Pay.
    /// - The kind (card brand or type) must be in `market`'s catalog.
    ///
    /// Whether the card has expired depends on today's date: [`super::AccountService`] checks it.
    ///
    /// # Errors
    ///
    /// [`AccountError::Invalid`] naming the field, [`AccountError::PaymentMethodNotAvailable`] for
    /// a kind of another market (an Amex card or PayPal in Kyrgyzstan, Элкарт in the US).
    pub fn parse(market: Market, input: &PaymentMethodInput) -> Result<Self, AccountError> {
        let invalid = |field, reason| AccountError::Invalid(FieldError::new(field, reason));
        let payment_type = match given(&input.payment_type) {
            None => PaymentType::Card,
            Some(t) => PaymentType::parse(t)
                .ok_or_else(|| invalid("payment_type", "is not a known payment type"))?,
        };
        let holder_name = given(&input.card_holder_name)
            .map(HolderName::parse)
            .transpose()?;
        let expiry = expiry(given(&input.expiry_month), given(&input.expiry_year))?;
        let token = given(&input.provider_token)
            .map(ProviderToken::parse)
            .transpose()?;
        let named_brand = given(&input.card_type)
            .map(|b| {
                CardBrand::parse(b).ok_or_else(|| invalid("card_type", "is not a known card brand"))
            })
            .transpose()?;
        let record = if payment_type == PaymentType::Card {
            let (brand, last4) = match (given(&input.card_number), &token) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "card_number",
                        "send either card_number or provider_token, not both",
                    ));
                }
                (Some(number), None) => {
                    let card = CardNumber::parse(number).map_err(FieldError::from)?;
                    if named_brand.is_some_and(|b| b != card.brand()) {
                        return Err(invalid("card_type", "does not match the card number"));
                    }
                    if expiry.is_none() {
                        return Err(invalid("expiry_month", "is required with card_number"));
                    }
                    (card.brand(), card.last4())
                }
                (None, Some(_)) => {
                    let brand = named_brand
                        .ok_or_else(|| invalid("card_type", "is required with provider_token"))?;
                    let last4 = given(&input.card_last4)
                        .ok_or_else(|| invalid("card_last4", "is required with provider_token"))
                        .and_then(|s| CardLast4::parse(s).map_err(AccountError::Invalid))?;
                    (brand, last4)
                }
                (None, None) => return Err(invalid("card_number", "is required for cards")),
            };
            if !market.accepts_payment(PaymentMethodKind::Card(brand)) {
                return Err(AccountError::PaymentMethodNotAvailable);
            }
            PaymentMethodRecord {
                kind: PaymentMethodKind::Card(brand),
                card: Some(CardDetails {
                    brand,
                    last4,
                    expiry,
                    holder_name,
                }),
                provider_token: token,
            }
        } else {
            let stray = [
                ("card_type", given(&input.card_type)),
                ("card_number", given(&input.card_number)),
                ("card_last4", given(&input.card_last4)),
                ("card_holder_name", given(&input.card_holder_name)),
                ("expiry_month", given(&input.expiry_month)),
                ("expiry_year", given(&input.expiry_year)),
            ];
            if let Some((field, _)) = stray.iter().find(|(_, v)| v.is_some()) {
                return Err(invalid(field, "is only for cards"));
            }
            let takes_token = matches!(
                payment_type,
                PaymentType::Paypal | PaymentType::ApplePay | PaymentType::GooglePay
            );
            let kind = PaymentMethodKind::from_parts(payment_type, None)
                .ok_or_else(|| invalid("payment_type", "is not a known payment type"))?;
            if !market.accepts_payment(kind) {
                return Err(AccountError::PaymentMethodNotAvailable);
            }
            if token.is_some() && !takes_token {
                return Err(invalid(
                    "provider_token",
                    "is not used for this payment type",
                ));
            }
            PaymentMethodRecord {
                kind,
                card: None,
                provider_token: token,
            }
        };
        Ok(NewPaymentMethod {
            record,
            make_default: input.is_default,
        })
    }
}

impl PaymentMethodUpdate {
    /// Reads a change: `card_holder_name` (`None` keep, `Some(None)` clear), `expiry_month` and
    /// `expiry_year` (both or neither), `is_default`.
    ///
    /// # Errors
    ///
    /// [`AccountError::Invalid`] naming the field.
    pub fn parse(
        card_holder_name: Option<Option<&str>>,
        expiry_month: Option<&str>,
        expiry_year: Option<&str>,
        is_default: bool,
    ) -> Result<Self, AccountError> {
        let holder_name = match card_holder_name {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) if s.trim().is_empty() => Some(None),
            Some(Some(s)) => Some(Some(HolderName::parse(s)?)),
        };
        Ok(PaymentMethodUpdate {
            holder_name,
            expiry: expiry(expiry_month, expiry_year)?,
            make_default: is_default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str) -> PaymentMethodInput {
        PaymentMethodInput {
            card_number: Some(number.to_owned()),
            expiry_month: Some("12".into()),
            expiry_year: Some("2030".into()),
            ..PaymentMethodInput::default()
        }
    }

    /// The field named by the validation error parsing `input` for `market` gives.
    fn refused_field(market: Market, input: &PaymentMethodInput) -> &'static str {
        match NewPaymentMethod::parse(market, input) {
            Err(AccountError::Invalid(e)) => e.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn cards_keep_brand_last4_expiry_and_name_only() {
        let mut input = card("9417 0000 0000 0008");
        input.card_holder_name = Some("Aibek Asanov".into());
        input.is_default = true;
        let new = NewPaymentMethod::parse(Market::Kg, &input).unwrap();
        assert!(new.make_default);
        assert_eq!(new.record.kind, PaymentMethodKind::Card(CardBrand::Elcart));
        let c = new.record.card.unwrap();
        assert_eq!(c.last4.as_str(), "0008");
        assert_eq!(c.expiry.map(|e| (e.month(), e.year())), Some((12, 2030)));
        assert_eq!(c.holder_name.unwrap().as_str(), "Aibek Asanov");
        let shown = format!("{input:?}");
        assert!(!shown.contains("9417"), "{shown}");
    }

    #[test]
    fn kinds_of_other_markets_are_not_available() {
        for (market, input) in [
            (Market::Kg, card("378282246310005")),
            (Market::Kg, card("6011111111111117")),
            (Market::Us, card("9417000000000008")),
            (
                Market::Kg,
                PaymentMethodInput {
                    payment_type: Some("paypal".into()),
                    ..PaymentMethodInput::default()
                },
            ),
            (
                Market::Us,
                PaymentMethodInput {
                    payment_type: Some("cash_on_delivery".into()),
                    ..PaymentMethodInput::default()
                },
            ),
        ] {
            assert!(
                matches!(
                    NewPaymentMethod::parse(market, &input),
                    Err(AccountError::PaymentMethodNotAvailable)
                ),
                "{market} {input:?}"
            );
        }
        let us = NewPaymentMethod::parse(Market::Us, &card("378282246310005")).unwrap();
        assert_eq!(us.record.kind, PaymentMethodKind::Card(CardBrand::Amex));
        let wallet = NewPaymentMethod::parse(
            Market::Us,
            &PaymentMethodInput {
                payment_type: Some("apple_pay".into()),
                ..PaymentMethodInput::default()
            },
        )
        .unwrap();
        assert_eq!(wallet.record.kind, PaymentMethodKind::ApplePay);
        assert!(wallet.record.card.is_none());
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(
            refused_field(Market::Kg, &card("4111111111111112")),
            "card_number"
        );
        let mut i = card("4111111111111111");
        i.card_type = Some("mastercard".into());
        assert_eq!(refused_field(Market::Kg, &i), "card_type");
        i.card_type = Some("mir".into());
        assert_eq!(refused_field(Market::Kg, &i), "card_type");
        let mut i = card("4111111111111111");
        i.expiry_year = None;
        assert_eq!(refused_field(Market::Kg, &i), "expiry_year");
        i.expiry_month = None;
        assert_eq!(refused_field(Market::Kg, &i), "expiry_month");
        let mut i = card("4111111111111111");
        i.expiry_month = Some("13".into());
        assert_eq!(refused_field(Market::Kg, &i), "expiry_month");
        let mut i = card("4111111111111111");
        i.provider_token = Some("pm_123".into());
        assert_eq!(refused_field(Market::Kg, &i), "card_number");
        let none = PaymentMethodInput::default();
        assert_eq!(refused_field(Market::Kg, &none), "card_number");
        let mut i = card("4111111111111111");
        i.card_holder_name = Some("4111111111111111".into());
        assert_eq!(refused_field(Market::Kg, &i), "card_holder_name");
        let cod = |extra: fn(&mut PaymentMethodInput)| {
            let mut i = PaymentMethodInput {
                payment_type: Some("cash_on_delivery".into()),
                ..PaymentMethodInput::default()
            };
            extra(&mut i);
            i
        };
        assert!(NewPaymentMethod::parse(Market::Kg, &cod(|_| {})).is_ok());
        assert_eq!(
            refused_field(
                Market::Kg,
                &cod(|i| i.card_number = Some("4111111111111111".into()))
            ),
            "card_number"
        );
        assert_eq!(
            refused_field(
                Market::Kg,
                &cod(|i| i.provider_token = Some("tok_1".into()))
            ),
            "provider_token"
        );
        assert_eq!(
            refused_field(
                Market::Kg,
                &PaymentMethodInput {
                    payment_type: Some("bitcoin".into()),
                    ..PaymentMethodInput::default()
                }
            ),
            "payment_type"
        );
    }

    #[test]
    fn processor_tokens_stand_in_for_numbers() {
        let input = PaymentMethodInput {
            card_type: Some("visa".into()),
            card_last4: Some("4242".into()),
            provider_token: Some("pm_1N2b3C".into()),
            ..PaymentMethodInput::default()
        };
        let new = NewPaymentMethod::parse(Market::Us, &input).unwrap();
        assert_eq!(new.record.provider_token.unwrap().as_str(), "pm_1N2b3C");
        assert_eq!(new.record.card.unwrap().last4.as_str(), "4242");
        let mut no_brand = input.clone();
        no_brand.card_type = None;
        assert_eq!(refused_field(Market::Us, &no_brand), "card_type");
        let mut no_last4 = input.clone();
        no_last4.card_last4 = None;
        assert_eq!(refused_field(Market::Us, &no_last4), "card_last4");
        let mut pan_token = input;
        pan_token.provider_token = Some("4242424242424242".into());
        assert_eq!(refused_field(Market::Us, &pan_token), "provider_token");
    }

    #[test]
    fn updates() {
        let u = PaymentMethodUpdate::parse(Some(Some("Ann Lee")), Some("1"), Some("2031"), true)
            .unwrap();
        assert_eq!(u.holder_name.unwrap().unwrap().as_str(), "Ann Lee");
        assert_eq!(u.expiry.map(|e| e.year()), Some(2031));
        assert!(u.make_default);
        assert_eq!(
            PaymentMethodUpdate::parse(Some(None), None, None, false)
                .unwrap()
                .holder_name,
            Some(None)
        );
        assert!(matches!(
            PaymentMethodUpdate::parse(None, Some("1"), None, false),
            Err(AccountError::Invalid(FieldError {
                field: "expiry_year",
                ..
            }))
        ));
    }
}

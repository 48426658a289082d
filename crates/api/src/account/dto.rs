//! Request and response bodies of the account routes, in the shapes of the product's profile API
//! (`{"success": true, "addresses": [...], "total": 2}`…).
//!
//! String fields of requests are read by [`text`]-style deserializers that never quote the value
//! they refuse: a card number sent as a JSON number, or typed into the wrong field, must not come
//! back in an error message or reach the logs (PCI DSS 3.3/3.4).

use std::fmt;

use marque_domain::{Address, Notification, PaymentMethod, PaymentMethodInput};
use marque_markets::{AddressInput, Market, MarketAddress};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{Object, OneOf, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::dto::{MarketCode, timestamp};

/// Reads a JSON string or `null`; with `numbers`, also a non-negative integer (as its decimal
/// text). Anything else is refused with a message that never quotes the value.
fn string_or_null<'de, D: Deserializer<'de>>(
    d: D,
    numbers: bool,
) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if numbers => n
            .as_u64()
            .map(|n| Some(n.to_string()))
            .ok_or_else(|| de::Error::custom("must be a string")),
        _ => Err(de::Error::custom("must be a string")),
    }
}

/// A string or `null`, never quoting a refused value.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string_or_null(d, false)
}

/// A string, a non-negative integer (as text) or `null` — for expiry month and year, which
/// clients send either way.
fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string_or_null(d, true)
}

/// Distinguishes an absent field (`None`, by `#[serde(default)]`) from `null` (`Some(None)`).
fn present_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    text(d).map(Some)
}

/// `true`, `false` or `null`, never quoting a refused value.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(de::Error::custom("must be true or false")),
    }
}

/// `POST /api/v1/profile/addresses` and `PUT /api/v1/profile/addresses/{id}` body.
///
/// Send the fields of your market: KG — `street`, `building`, `apartment`, `city`, `region`,
/// `postal_code`; US — `street_address`, `address_line2`, `city`, `state`, `zip_code`. A value in
/// a field of the other market is refused (422 `validation_error` naming it). On `PUT`, absent
/// fields stay as they are and `null` clears an optional field.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AddressRequest {
    /// The shopper's name for the address, 1–50 characters (`Дом`, `Work`).
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "Дом")]
    pub title: Option<Option<String>>,
    /// `true` makes this the default address (the previous default stops being one). The first
    /// address is always the default; `false` never unsets it.
    #[serde(default, deserialize_with = "flag")]
    #[schema(value_type = Option<bool>)]
    pub is_default: Option<bool>,
    /// KG, required: street, at most 200 characters.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "ул. Юнусалиева")]
    pub street: Option<Option<String>>,
    /// KG, required: building, at most 20 characters.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "34")]
    pub building: Option<Option<String>>,
    /// KG: apartment, at most 20 characters (a leading `кв.` is dropped).
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "12")]
    pub apartment: Option<Option<String>>,
    /// KG and US, required: city, at most 100 characters.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "Бишкек")]
    pub city: Option<Option<String>>,
    /// KG, required: oblast or city of republican significance — Russian, Kyrgyz or Latin
    /// spelling, or the ISO 3166-2:KG code (`Чуйская область`, `Chuy`, `C`, `г. Бишкек`, `GB`).
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "Чуйская область")]
    pub region: Option<Option<String>>,
    /// KG: 6-digit postal code starting with 7.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "720000")]
    pub postal_code: Option<Option<String>>,
    /// US, required: street line, at most 200 characters.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "123 Main St")]
    pub street_address: Option<Option<String>>,
    /// US: second line, at most 200 characters.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "Apt 4B")]
    pub address_line2: Option<Option<String>>,
    /// US, required: USPS state code (states, DC, AS, GU, MP, PR, VI) or name.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "NY")]
    pub state: Option<Option<String>>,
    /// US, required: ZIP (`10001`) or ZIP+4 (`10001-1234`).
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "10001")]
    pub zip_code: Option<Option<String>>,
}

impl AddressRequest {
    /// The postal fields as the markets crate reads them.
    pub fn postal(&self) -> AddressInput {
        AddressInput {
            street: self.street.clone(),
            building: self.building.clone(),
            apartment: self.apartment.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            street_address: self.street_address.clone(),
            address_line2: self.address_line2.clone(),
            state: self.state.clone(),
            zip_code: self.zip_code.clone(),
        }
    }
}

/// Postal fields of a Kyrgyz address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KgAddressFields {
    /// Street.
    #[schema(example = "ул. Юнусалиева")]
    pub street: String,
    /// Building.
    #[schema(example = "34")]
    pub building: String,
    /// Apartment.
    #[schema(example = "12")]
    pub apartment: Option<String>,
    /// City.
    #[schema(example = "Бишкек")]
    pub city: String,
    /// ISO 3166-2:KG subdivision code: `GB`, `GO`, `B`, `C`, `J`, `N`, `O`, `T`, `Y`.
    #[schema(example = "C")]
    pub region: String,
    /// Russian name of the region.
    #[schema(example = "Чуйская область")]
    pub region_name: String,
    /// Postal code.
    #[schema(example = "720000")]
    pub postal_code: Option<String>,
}

/// Postal fields of a US address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsAddressFields {
    /// First line.
    #[schema(example = "123 Main St")]
    pub street_address: String,
    /// Second line.
    #[schema(example = "Apt 4B")]
    pub address_line2: Option<String>,
    /// City.
    #[schema(example = "New York")]
    pub city: String,
    /// USPS state code.
    #[schema(example = "NY")]
    pub state: String,
    /// State name.
    #[schema(example = "New York")]
    pub state_name: String,
    /// ZIP or ZIP+4.
    #[schema(example = "10001")]
    pub zip_code: String,
}

/// The postal fields of the address's market.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AddressFields {
    /// Kyrgyzstan.
    Kg(KgAddressFields),
    /// United States.
    Us(UsAddressFields),
}

impl From<&MarketAddress> for AddressFields {
    fn from(a: &MarketAddress) -> Self {
        match a {
            MarketAddress::Kg(a) => AddressFields::Kg(KgAddressFields {
                street: a.street().to_owned(),
                building: a.building().to_owned(),
                apartment: a.apartment().map(str::to_owned),
                city: a.city().to_owned(),
                region: a.region().code().to_owned(),
                region_name: a.region().name_ru().to_owned(),
                postal_code: a.postal_code().map(|p| p.as_str().to_owned()),
            }),
            MarketAddress::Us(a) => AddressFields::Us(UsAddressFields {
                street_address: a.street_address().to_owned(),
                address_line2: a.address_line2().map(str::to_owned),
                city: a.city().to_owned(),
                state: a.state().code().to_owned(),
                state_name: a.state().name().to_owned(),
                zip_code: a.zip_code().as_str().to_owned(),
            }),
        }
    }
}

/// What every delivery address has, whatever its market.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressInfo {
    /// Id within the market.
    pub id: i64,
    /// The shopper's name for it.
    #[schema(example = "Дом")]
    pub title: Option<String>,
    /// The address on one line as the market writes it.
    #[schema(example = "ул. Юнусалиева, 34, кв. 12, Бишкек, Чуйская область")]
    pub full_address: String,
    /// Country name.
    #[schema(example = "Kyrgyzstan")]
    pub country: String,
    /// Market code.
    #[schema(value_type = MarketCode)]
    pub market: Market,
    /// Whether this is the default address (exactly one is).
    pub is_default: bool,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Last change, RFC 3339 UTC.
    pub updated_at: String,
}

/// A delivery address: [`AddressInfo`] and the postal fields of its market. In the OpenAPI
/// document it is a `oneOf` of two complete objects, `KgAddress` and `UsAddress`: SDK
/// generators (openapi-python-client) refuse an `allOf` over a `oneOf`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddressDto {
    /// Id, title, one-line form, market…
    #[serde(flatten)]
    pub info: AddressInfo,
    /// The market's postal fields.
    #[serde(flatten)]
    pub fields: AddressFields,
}

impl From<&Address> for AddressDto {
    fn from(a: &Address) -> Self {
        let market = a.postal.market();
        Self {
            info: AddressInfo {
                id: a.id.0,
                title: a.title.as_ref().map(|t| t.as_str().to_owned()),
                full_address: a.postal.full_address(),
                country: market.profile().country.to_owned(),
                market,
                is_default: a.is_default,
                created_at: timestamp(a.created_at),
                updated_at: timestamp(a.updated_at),
            },
            fields: AddressFields::from(&a.postal),
        }
    }
}

/// One object schema with the properties of `parts`, all of them objects.
fn merged(description: &str, parts: [RefOr<Schema>; 2]) -> RefOr<Schema> {
    let mut all = Object::with_type(Type::Object);
    all.description = Some(description.to_owned());
    for part in parts {
        if let RefOr::T(Schema::Object(o)) = part {
            all.properties.extend(o.properties);
            all.required.extend(o.required);
        }
    }
    RefOr::T(Schema::Object(all))
}

impl utoipa::PartialSchema for AddressDto {
    fn schema() -> RefOr<Schema> {
        OneOf::builder()
            .item(Ref::from_schema_name("KgAddress"))
            .item(Ref::from_schema_name("UsAddress"))
            .description(Some("A delivery address in the shape of its market."))
            .into()
    }
}

impl ToSchema for AddressDto {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            "KgAddress".to_owned(),
            merged(
                "A delivery address in Kyrgyzstan.",
                [AddressInfo::schema(), KgAddressFields::schema()],
            ),
        ));
        schemas.push((
            "UsAddress".to_owned(),
            merged(
                "A delivery address in the United States.",
                [AddressInfo::schema(), UsAddressFields::schema()],
            ),
        ));
        <AddressInfo as ToSchema>::schemas(schemas);
    }
}

/// `GET /api/v1/profile/addresses`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressListResponse {
    /// Always `true`.
    pub success: bool,
    /// The addresses, default first, then newest first.
    pub addresses: Vec<AddressDto>,
    /// How many.
    pub total: usize,
}

/// One address after a change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text in the market's language.
    pub message: String,
    /// The address as stored.
    pub address: AddressDto,
}

/// `POST /api/v1/profile/payment-methods` body.
///
/// A card: `card_number` with `expiry_month` and `expiry_year` (brand detected, only the last
/// four digits kept), or a processor's `provider_token` with `card_type` and `card_last4`. Other
/// types (`cash_on_delivery`, `bank_transfer`, `paypal`, `apple_pay`, `google_pay`): just
/// `payment_type` (a `provider_token` for the wallets). Never send a CVV: it is not read.
#[derive(Default, Deserialize, ToSchema)]
pub struct PaymentMethodRequest {
    /// `card` (default), `cash_on_delivery`, `bank_transfer` (KG); `paypal`, `apple_pay`,
    /// `google_pay` (US).
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>, example = "card")]
    pub payment_type: Option<String>,
    /// `visa`, `mastercard`, `elcart` (KG), `amex`, `discover` (US). Detected from the number.
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>, example = "visa")]
    pub card_type: Option<String>,
    /// The full card number (12–19 digits, spaces or hyphens allowed). Checked (Luhn, brand,
    /// market), never stored, logged or returned.
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>, example = "4111 1111 1111 1111")]
    pub card_number: Option<String>,
    /// Last four digits, with `provider_token`.
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>, example = "4242")]
    pub card_last4: Option<String>,
    /// Name on the card: letters, spaces and `. ' -`, at most 100 characters.
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>, example = "AIBEK ASANOV")]
    pub card_holder_name: Option<String>,
    /// Expiry month, `1`–`12` (string or number).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, example = "04")]
    pub expiry_month: Option<String>,
    /// Expiry year, `2028` or `28` (string or number).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, example = "2028")]
    pub expiry_year: Option<String>,
    /// A payment processor's token for the instrument, instead of `card_number`.
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>, example = "pm_1N2b3C4d5E")]
    pub provider_token: Option<String>,
    /// `true` makes it the default payment method (the first one always is).
    #[serde(default, deserialize_with = "flag")]
    #[schema(value_type = Option<bool>)]
    pub is_default: Option<bool>,
}

impl fmt::Debug for PaymentMethodRequest {
    /// Redacted: the fields as the domain input prints them (no card number, no token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.input(), f)
    }
}

impl PaymentMethodRequest {
    /// The fields as the domain reads them.
    pub fn input(&self) -> PaymentMethodInput {
        PaymentMethodInput {
            payment_type: self.payment_type.clone(),
            card_type: self.card_type.clone(),
            card_number: self.card_number.clone(),
            card_last4: self.card_last4.clone(),
            card_holder_name: self.card_holder_name.clone(),
            expiry_month: self.expiry_month.clone(),
            expiry_year: self.expiry_year.clone(),
            provider_token: self.provider_token.clone(),
            is_default: self.is_default.unwrap_or(false),
        }
    }
}

/// `PUT /api/v1/profile/payment-methods/{id}` body. A card's number and the kind never change:
/// save a new payment method instead (`card_number` here is refused).
#[derive(Default, Deserialize, ToSchema)]
pub struct UpdatePaymentMethodRequest {
    /// New name on the card; `null` clears it. Cards only.
    #[serde(default, deserialize_with = "present_text")]
    #[schema(value_type = Option<String>, example = "AIBEK ASANOV")]
    pub card_holder_name: Option<Option<String>>,
    /// New expiry month (with `expiry_year`), for a renewed card.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, example = "04")]
    pub expiry_month: Option<String>,
    /// New expiry year (with `expiry_month`).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, example = "2031")]
    pub expiry_year: Option<String>,
    /// `true` makes it the default; `false` never unsets it.
    #[serde(default, deserialize_with = "flag")]
    #[schema(value_type = Option<bool>)]
    pub is_default: Option<bool>,
    /// Refused when present: a new card is a new payment method.
    #[serde(default, deserialize_with = "text")]
    #[schema(value_type = Option<String>)]
    pub card_number: Option<String>,
}

impl fmt::Debug for UpdatePaymentMethodRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdatePaymentMethodRequest")
            .field("card_holder_name", &self.card_holder_name)
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .field("is_default", &self.is_default)
            .field(
                "card_number",
                &self.card_number.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// A saved payment method.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentMethodDto {
    /// Id within the market.
    pub id: i64,
    /// `card`, `cash_on_delivery`, `bank_transfer`, `paypal`, `apple_pay`, `google_pay`.
    #[schema(example = "card")]
    pub payment_type: String,
    /// Card brand: `visa`, `mastercard`, `amex`, `discover`, `elcart`.
    #[schema(example = "visa")]
    pub card_type: Option<String>,
    /// The last four digits of the card — all that is kept.
    #[schema(example = "1111")]
    pub card_number_masked: Option<String>,
    /// Name on the card.
    pub card_holder_name: Option<String>,
    /// Expiry month, two digits.
    #[schema(example = "04")]
    pub expiry_month: Option<String>,
    /// Expiry year, four digits.
    #[schema(example = "2028")]
    pub expiry_year: Option<String>,
    /// Whether a payment processor's token is on file.
    pub has_provider_token: bool,
    /// Whether this is the default payment method (exactly one is).
    pub is_default: bool,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Last change, RFC 3339 UTC.
    pub updated_at: String,
}

impl From<&PaymentMethod> for PaymentMethodDto {
    fn from(p: &PaymentMethod) -> Self {
        let card = p.record.card.as_ref();
        let expiry = card.and_then(|c| c.expiry);
        Self {
            id: p.id.0,
            payment_type: p.record.kind.payment_type().as_str().to_owned(),
            card_type: card.map(|c| c.brand.as_str().to_owned()),
            card_number_masked: card.map(|c| c.last4.as_str().to_owned()),
            card_holder_name: card
                .and_then(|c| c.holder_name.as_ref())
                .map(|n| n.as_str().to_owned()),
            expiry_month: expiry.map(|e| format!("{:02}", e.month())),
            expiry_year: expiry.map(|e| e.year().to_string()),
            has_provider_token: p.record.provider_token.is_some(),
            is_default: p.is_default,
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        }
    }
}

/// `GET /api/v1/profile/payment-methods`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentMethodListResponse {
    /// Always `true`.
    pub success: bool,
    /// The payment methods, default first, then newest first.
    pub payment_methods: Vec<PaymentMethodDto>,
    /// How many.
    pub total: usize,
}

/// One payment method after a change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentMethodResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text in the market's language.
    pub message: String,
    /// The payment method as stored.
    pub payment_method: PaymentMethodDto,
}

/// A notification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationDto {
    /// Id within the market.
    pub id: i64,
    /// `order`, `promotion`, `security`, `system`.
    #[serde(rename = "type")]
    #[schema(example = "security")]
    pub kind: String,
    /// Title, in the market's language.
    pub title: String,
    /// Text, in the market's language.
    pub message: String,
    /// Whether it was read.
    pub is_read: bool,
    /// The order it is about (`order` notifications).
    pub order_id: Option<i64>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// When it was first marked read, RFC 3339 UTC.
    pub read_at: Option<String>,
}

impl From<&Notification> for NotificationDto {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id.0,
            kind: n.kind.as_str().to_owned(),
            title: n.title.as_str().to_owned(),
            message: n.message.as_str().to_owned(),
            is_read: n.is_read,
            order_id: n.order_id,
            created_at: timestamp(n.created_at),
            read_at: n.read_at.map(timestamp),
        }
    }
}

/// `GET /api/v1/profile/notifications`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationListResponse {
    /// Always `true`.
    pub success: bool,
    /// The page, newest first.
    pub notifications: Vec<NotificationDto>,
    /// How many match the query (all pages).
    pub total: u64,
    /// How many of the user's notifications are unread.
    pub unread_count: u64,
}

/// `PUT /api/v1/profile/notifications/{id}/read`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text in the market's language.
    pub message: String,
    /// The notification, now read.
    pub notification: NotificationDto,
}

/// `PUT /api/v1/profile/notifications/read-all`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadAllResponse {
    /// Always `true`.
    pub success: bool,
    /// Human text in the market's language.
    pub message: String,
    /// How many notifications were unread.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::extract::parse_json;

    const PAN: &str = "4111111111111111";

    #[test]
    fn refused_values_are_never_quoted() {
        for body in [
            format!(r#"{{"card_number": {PAN}}}"#),
            format!(r#"{{"card_number": {PAN}.0}}"#),
            format!(r#"{{"card_number": [{PAN}]}}"#),
            format!(r#"{{"card_holder_name": {PAN}}}"#),
            format!(r#"{{"expiry_month": "{PAN}", "is_default": "{PAN}"}}"#),
            format!(r#"{{"expiry_year": -{PAN}}}"#),
            format!(r#"{{"provider_token": {{"n": {PAN}}}}}"#),
        ] {
            match parse_json::<PaymentMethodRequest>(body.as_bytes()) {
                Err(ErrorKind::Validation { field, detail }) => {
                    assert!(!detail.contains("111111"), "{body}: {detail}");
                    assert!(!field.contains("111111"), "{body}: {field}");
                }
                other => panic!("{body}: expected a validation error, got {other:?}"),
            }
        }
        let ok: PaymentMethodRequest =
            parse_json(br#"{"expiry_month": 4, "expiry_year": "2028", "is_default": null}"#)
                .unwrap();
        assert_eq!(ok.expiry_month.as_deref(), Some("4"));
        assert_eq!(ok.is_default, None);
    }

    #[test]
    fn debug_hides_card_numbers_and_tokens() {
        let req: PaymentMethodRequest = parse_json(
            format!(r#"{{"card_number": "{PAN}", "provider_token": "pm_secret"}}"#).as_bytes(),
        )
        .unwrap();
        let shown = format!("{req:?}");
        assert!(
            !shown.contains(PAN) && !shown.contains("pm_secret"),
            "{shown}"
        );
        let upd: UpdatePaymentMethodRequest =
            parse_json(format!(r#"{{"card_number": "{PAN}"}}"#).as_bytes()).unwrap();
        assert!(!format!("{upd:?}").contains(PAN));
    }

    #[test]
    fn address_fields_are_tri_state() {
        let req: AddressRequest =
            parse_json(br#"{"street": "ul. 1", "apartment": null, "is_default": true}"#).unwrap();
        assert_eq!(req.street, Some(Some("ul. 1".to_owned())));
        assert_eq!(req.apartment, Some(None));
        assert_eq!(req.city, None);
        assert_eq!(req.is_default, Some(true));
        let postal = req.postal();
        assert_eq!(postal.apartment, Some(None));
        assert!(matches!(
            parse_json::<AddressRequest>(br#"{"zip_code": 10001}"#),
            Err(ErrorKind::Validation { field, .. }) if field == "zip_code"
        ));
    }
}

//! Rows of the account tables and their conversion to and from domain values.
//!
//! The address table is the one place where the markets' schemas differ: [`AddressRow`], the
//! `*AddressColumns` structs and the `*_address*` functions below are the only code that knows
//! which postal columns each market has. Everything else goes through [`crate::schema::user_addresses`], the columns all
//! markets share.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use marque_domain::{
    Address, AddressId, AddressRecord, AddressTitle, CardDetails, Notification, NotificationBody,
    NotificationId, NotificationKind, NotificationTitle, PaymentMethod, PaymentMethodId,
    PaymentMethodRecord,
};
use marque_markets::{
    AddressInput, CardBrand, CardExpiry, CardLast4, HolderName, KgAddress, Market, MarketAddress,
    PaymentMethodKind, PaymentType, ProviderToken, UsAddress, clean_display_text,
};

use crate::DbError;
use crate::connection::DbConnection;
use crate::models::from_db;
use crate::schema::{kg, us, user_notifications, user_payment_methods};

/// A stored value the domain no longer accepts.
fn corrupt(market: Market, table: &'static str, id: i64, what: &'static str) -> DbError {
    DbError::corrupt(market, table, id, what)
}

fn title(market: Market, id: i64, t: Option<String>) -> Result<Option<AddressTitle>, DbError> {
    // Cleaned, not refused: titles stored before the display-text rules (issue 12).
    t.map(|t| AddressTitle::from_stored(&t))
        .transpose()
        .map(Option::flatten)
        .map_err(|_| corrupt(market, "user_addresses", id, "title"))
}

/// A stored address field, cleaned of what the display-text rules (issue 12) refuse since it
/// was written: unchanged for anything written after them.
fn field(v: Option<String>) -> Option<Option<String>> {
    Some(v.map(|s| clean_display_text(&s)))
}

/// A row of `kg::user_addresses`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = kg::user_addresses)]
pub(crate) struct KgAddressRow {
    id: i64,
    title: Option<String>,
    street: String,
    building: String,
    apartment: Option<String>,
    city: String,
    region_code: String,
    postal_code: Option<String>,
    is_default: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// A row of `us::user_addresses`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = us::user_addresses)]
pub(crate) struct UsAddressRow {
    id: i64,
    title: Option<String>,
    street_address: String,
    address_line2: Option<String>,
    city: String,
    state: String,
    zip_code: String,
    is_default: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// An address row of either market.
pub(crate) enum AddressRow {
    Kg(KgAddressRow),
    Us(UsAddressRow),
}

impl AddressRow {
    /// The domain address; the stored postal fields are checked again by the market's rules.
    pub(crate) fn into_address(self, market: Market) -> Result<Address, DbError> {
        let (id, t, input, is_default, created_at, updated_at) = match self {
            AddressRow::Kg(r) => (
                r.id,
                r.title,
                AddressInput {
                    street: field(Some(r.street)),
                    building: field(Some(r.building)),
                    apartment: field(r.apartment),
                    city: field(Some(r.city)),
                    region: field(Some(r.region_code)),
                    postal_code: field(r.postal_code),
                    ..AddressInput::default()
                },
                r.is_default,
                r.created_at,
                r.updated_at,
            ),
            AddressRow::Us(r) => (
                r.id,
                r.title,
                AddressInput {
                    street_address: field(Some(r.street_address)),
                    address_line2: field(r.address_line2),
                    city: field(Some(r.city)),
                    state: field(Some(r.state)),
                    zip_code: field(Some(r.zip_code)),
                    ..AddressInput::default()
                },
                r.is_default,
                r.created_at,
                r.updated_at,
            ),
        };
        let postal = MarketAddress::parse(market, &input)
            .map_err(|e| corrupt(market, "user_addresses", id, e.field))?;
        Ok(Address {
            id: AddressId(id),
            title: title(market, id, t)?,
            postal,
            is_default,
            created_at: from_db(created_at),
            updated_at: from_db(updated_at),
        })
    }
}

/// The user's address rows of `market`'s table (only `only` when given), default first, then
/// newest first.
pub(crate) fn load_addresses(
    conn: &mut DbConnection,
    market: Market,
    user: i64,
    only: Option<i64>,
) -> QueryResult<Vec<AddressRow>> {
    // A macro, not a function: each market's table is its own type.
    macro_rules! load {
        ($t:ident, $row:ident, $variant:ident) => {{
            let mine = $t::user_addresses::table
                .filter($t::user_addresses::user_id.eq(user))
                .order((
                    $t::user_addresses::is_default.desc(),
                    $t::user_addresses::created_at.desc(),
                    $t::user_addresses::id.desc(),
                ));
            // On the backend's own connection (`on_backend!`): every address book read. The
            // selection is typed per backend, so it is made in each arm.
            let rows: Vec<$row> = match only {
                Some(id) => on_backend!(&mut *conn, |c| mine
                    .filter($t::user_addresses::id.eq(id))
                    .select($row::as_select())
                    .load(c))?,
                None => on_backend!(&mut *conn, |c| mine.select($row::as_select()).load(c))?,
            };
            rows.into_iter().map(AddressRow::$variant).collect()
        }};
    }
    Ok(match market {
        Market::Kg => load!(kg, KgAddressRow, Kg),
        Market::Us => load!(us, UsAddressRow, Us),
    })
}

/// The title and postal columns of a `kg::user_addresses` row.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = kg::user_addresses, treat_none_as_null = true)]
struct KgAddressColumns<'a> {
    title: Option<&'a str>,
    street: &'a str,
    building: &'a str,
    apartment: Option<&'a str>,
    city: &'a str,
    region_code: &'a str,
    postal_code: Option<&'a str>,
}

impl<'a> KgAddressColumns<'a> {
    fn of(title: Option<&'a str>, a: &'a KgAddress) -> Self {
        Self {
            title,
            street: a.street(),
            building: a.building(),
            apartment: a.apartment(),
            city: a.city(),
            region_code: a.region().code(),
            postal_code: a.postal_code().map(|p| p.as_str()),
        }
    }
}

/// The title and postal columns of a `us::user_addresses` row.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = us::user_addresses, treat_none_as_null = true)]
struct UsAddressColumns<'a> {
    title: Option<&'a str>,
    street_address: &'a str,
    address_line2: Option<&'a str>,
    city: &'a str,
    state: &'a str,
    zip_code: &'a str,
}

impl<'a> UsAddressColumns<'a> {
    fn of(title: Option<&'a str>, a: &'a UsAddress) -> Self {
        Self {
            title,
            street_address: a.street_address(),
            address_line2: a.address_line2(),
            city: a.city(),
            state: a.state().code(),
            zip_code: a.zip_code().as_str(),
        }
    }
}

/// Evaluates `$body` with `$t` the address table of `$record`'s market and `$columns` the
/// record's title and postal columns for it. A macro, not a function: each market's table is
/// its own type.
macro_rules! with_address_columns {
    ($record:expr, |$t:ident, $columns:ident| $body:expr) => {{
        let record: &AddressRecord = $record;
        let title = record.title.as_ref().map(AddressTitle::as_str);
        match &record.postal {
            MarketAddress::Kg(a) => {
                use kg::user_addresses as $t;
                let $columns = KgAddressColumns::of(title, a);
                $body
            }
            MarketAddress::Us(a) => {
                use us::user_addresses as $t;
                let $columns = UsAddressColumns::of(title, a);
                $body
            }
        }
    }};
}

/// Inserts an address row in the table of the address's market; returns its id.
pub(crate) fn insert_address(
    conn: &mut DbConnection,
    user: i64,
    record: &AddressRecord,
    is_default: bool,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    with_address_columns!(record, |t, columns| {
        diesel::insert_into(t::table)
            .values((
                columns,
                t::user_id.eq(user),
                t::is_default.eq(is_default),
                t::created_at.eq(now),
                t::updated_at.eq(now),
            ))
            .returning(t::id)
            .get_result(conn)
    })
}

/// Writes title and postal fields of an address row of the user.
pub(crate) fn write_address(
    conn: &mut DbConnection,
    user: i64,
    id: i64,
    record: &AddressRecord,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    with_address_columns!(record, |t, columns| {
        diesel::update(t::table.find(id).filter(t::user_id.eq(user)))
            .set((columns, t::updated_at.eq(now)))
            .execute(conn)
    })
}

/// A `user_payment_methods` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_payment_methods)]
pub(crate) struct PaymentMethodRow {
    id: i64,
    payment_type: String,
    card_type: Option<String>,
    card_last4: Option<String>,
    expiry_month: Option<i32>,
    expiry_year: Option<i32>,
    card_holder_name: Option<String>,
    provider_token: Option<String>,
    is_default: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// The columns of a payment method that [`PaymentMethodRecord`] determines.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = user_payment_methods, treat_none_as_null = true)]
pub(crate) struct PaymentMethodColumns<'a> {
    payment_type: &'a str,
    card_type: Option<&'a str>,
    card_last4: Option<&'a str>,
    expiry_month: Option<i32>,
    expiry_year: Option<i32>,
    card_holder_name: Option<&'a str>,
    provider_token: Option<&'a str>,
}

impl<'a> PaymentMethodColumns<'a> {
    pub(crate) fn of(record: &'a PaymentMethodRecord) -> Self {
        let card = record.card.as_ref();
        let expiry = card.and_then(|c| c.expiry);
        Self {
            payment_type: record.kind.payment_type().as_str(),
            card_type: card.map(|c| c.brand.as_str()),
            card_last4: card.map(|c| c.last4.as_str()),
            expiry_month: expiry.map(|e| i32::from(e.month())),
            expiry_year: expiry.map(|e| i32::from(e.year())),
            card_holder_name: card
                .and_then(|c| c.holder_name.as_ref())
                .map(HolderName::as_str),
            provider_token: record.provider_token.as_ref().map(ProviderToken::as_str),
        }
    }
}

impl PaymentMethodRow {
    /// The domain payment method; stored values are checked again.
    pub(crate) fn into_payment_method(self, market: Market) -> Result<PaymentMethod, DbError> {
        let id = self.id;
        let bad = |what| corrupt(market, "user_payment_methods", id, what);
        let payment_type =
            PaymentType::parse(&self.payment_type).ok_or_else(|| bad("payment_type"))?;
        let brand = self
            .card_type
            .as_deref()
            .map(|b| CardBrand::parse(b).ok_or_else(|| bad("card_type")))
            .transpose()?;
        let kind =
            PaymentMethodKind::from_parts(payment_type, brand).ok_or_else(|| bad("card_type"))?;
        let expiry = match (self.expiry_month, self.expiry_year) {
            (Some(m), Some(y)) => Some(
                u16::try_from(m)
                    .ok()
                    .zip(u16::try_from(y).ok())
                    .and_then(|(m, y)| CardExpiry::new(m, y).ok())
                    .ok_or_else(|| bad("expiry"))?,
            ),
            (None, None) => None,
            _ => return Err(bad("expiry")),
        };
        let card = match brand {
            Some(brand) => Some(CardDetails {
                brand,
                last4: self
                    .card_last4
                    .as_deref()
                    .and_then(|l| CardLast4::parse(l).ok())
                    .ok_or_else(|| bad("card_last4"))?,
                expiry,
                holder_name: self
                    .card_holder_name
                    .as_deref()
                    .map(HolderName::parse)
                    .transpose()
                    .map_err(|_| bad("card_holder_name"))?,
            }),
            None => None,
        };
        // Tokens stored before the format rules stay usable; one holding a PAN is dropped.
        let provider_token = self
            .provider_token
            .as_deref()
            .and_then(ProviderToken::from_stored);
        Ok(PaymentMethod {
            id: PaymentMethodId(id),
            record: PaymentMethodRecord {
                kind,
                card,
                provider_token,
            },
            is_default: self.is_default,
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
        })
    }
}

/// A `user_notifications` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_notifications)]
pub(crate) struct NotificationRow {
    id: i64,
    notification_type: String,
    title: String,
    message: String,
    order_id: Option<i64>,
    is_read: bool,
    created_at: NaiveDateTime,
    read_at: Option<NaiveDateTime>,
}

impl NotificationRow {
    /// The domain notification; stored values are checked again.
    pub(crate) fn into_notification(self, market: Market) -> Result<Notification, DbError> {
        let id = self.id;
        let bad = |what| corrupt(market, "user_notifications", id, what);
        Ok(Notification {
            id: NotificationId(id),
            kind: NotificationKind::parse(&self.notification_type)
                .ok_or_else(|| bad("notification_type"))?,
            // Cleaned, not refused: texts stored before the display-text rules (issue 12).
            title: NotificationTitle::parse(&clean_display_text(&self.title))
                .map_err(|_| bad("title"))?,
            message: NotificationBody::parse(&clean_display_text(&self.message))
                .map_err(|_| bad("message"))?,
            order_id: self.order_id,
            is_read: self.is_read,
            created_at: from_db(self.created_at),
            read_at: self.read_at.map(from_db),
        })
    }
}

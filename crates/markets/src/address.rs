//! Delivery addresses per market: which fields a market's addresses have, the rules for each,
//! and how the market writes an address on one line.
//!
//! - Kyrgyzstan: `street`, `building`, `apartment?`, `city`, `region`, `postal_code?`. The region
//!   is one of the seven oblasts or the two cities of republican significance (Bishkek, Osh),
//!   stored as its ISO 3166-2:KG subdivision code; Russian, Kyrgyz and Latin spellings are read.
//!   Postal codes are 6 digits starting with 7 (Kyrgyz Post, `720000` Bishkek). One line:
//!   `ул. Юнусалиева, 34, кв. 12, Бишкек, Чуйская область`.
//! - United States: `street_address`, `address_line2?`, `city`, `state`, `zip_code`. States are
//!   USPS two-letter codes (USPS Publication 28, Appendix B): the 50 states, DC and the
//!   territories AS, GU, MP, PR, VI. ZIP codes are `12345` or ZIP+4 `12345-6789`. One line:
//!   `123 Main St, Apt 4B, New York, NY 10001`.

use std::fmt;

use crate::field::FieldError;
use crate::market::Market;

/// One field of an [`AddressInput`]: `None` when the field is absent from the request,
/// `Some(None)` when it is JSON `null`, `Some(Some(text))` otherwise.
pub type InputField = Option<Option<String>>;

/// Address fields as a client sent them, before any rule is applied: the union of every
/// market's field names. [`MarketAddress::parse`] reads the fields of the address's market and
/// refuses values in the others (a `zip_code` in a Kyrgyz address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressInput {
    /// KG: street with its type, e.g. `ул. Юнусалиева`.
    pub street: InputField,
    /// KG: building number, e.g. `34`, `12/1`.
    pub building: InputField,
    /// KG: apartment, e.g. `12` (a leading `кв.` is dropped).
    pub apartment: InputField,
    /// KG and US: city or settlement.
    pub city: InputField,
    /// KG: oblast or city of republican significance, in any supported spelling or its code.
    pub region: InputField,
    /// KG: 6-digit postal code.
    pub postal_code: InputField,
    /// US: street line, e.g. `123 Main St`.
    pub street_address: InputField,
    /// US: second line, e.g. `Apt 4B`.
    pub address_line2: InputField,
    /// US: USPS state code or name.
    pub state: InputField,
    /// US: ZIP or ZIP+4 code.
    pub zip_code: InputField,
}

impl AddressInput {
    /// Field names of both markets (each once), in the order they are listed and checked.
    fn names() -> impl Iterator<Item = &'static str> {
        let us_only = US_FIELDS.into_iter().filter(|f| !KG_FIELDS.contains(f));
        KG_FIELDS.into_iter().chain(us_only)
    }

    fn field(&self, name: &str) -> &InputField {
        match name {
            "street" => &self.street,
            "building" => &self.building,
            "apartment" => &self.apartment,
            "city" => &self.city,
            "region" => &self.region,
            "postal_code" => &self.postal_code,
            "street_address" => &self.street_address,
            "address_line2" => &self.address_line2,
            "state" => &self.state,
            _ => &self.zip_code,
        }
    }

    fn field_mut(&mut self, name: &str) -> &mut InputField {
        match name {
            "street" => &mut self.street,
            "building" => &mut self.building,
            "apartment" => &mut self.apartment,
            "city" => &mut self.city,
            "region" => &mut self.region,
            "postal_code" => &mut self.postal_code,
            "street_address" => &mut self.street_address,
            "address_line2" => &mut self.address_line2,
            "state" => &mut self.state,
            _ => &mut self.zip_code,
        }
    }

    /// The value of `name` when it is present and not `null`.
    fn value(&self, name: &str) -> Option<&str> {
        self.field(name).as_ref().and_then(|v| v.as_deref())
    }
}

/// Longest street line (`street`, `street_address`, `address_line2`), in characters.
pub const MAX_LINE_CHARS: usize = 200;
/// Longest `city`, in characters.
pub const MAX_CITY_CHARS: usize = 100;
/// Longest `building` / `apartment`, in characters.
pub const MAX_UNIT_CHARS: usize = 20;

fn too_long(max: usize) -> &'static str {
    match max {
        MAX_LINE_CHARS => "must be at most 200 characters",
        MAX_CITY_CHARS => "must be at most 100 characters",
        _ => "must be at most 20 characters",
    }
}

/// A free-text field: trimmed, not empty, at most `max` characters, no control characters, and
/// the rules of text people see ([`crate::check_display_text`]: no card number, no format
/// characters, something visible).
fn text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
    let s = value.trim();
    if s.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(FieldError::new(field, too_long(max)));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    crate::text::check_display_text(field, s)?;
    Ok(s.to_owned())
}

fn required<'a>(input: &'a AddressInput, field: &'static str) -> Result<&'a str, FieldError> {
    input
        .value(field)
        .ok_or(FieldError::new(field, "is required"))
}

/// An optional field: absent, `null` and blank all mean "none".
fn optional<'a>(input: &'a AddressInput, field: &'static str) -> Option<&'a str> {
    input.value(field).filter(|s| !s.trim().is_empty())
}

/// A Kyrgyz region: one of the seven oblasts or a city of republican significance, identified by
/// its ISO 3166-2:KG code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KgRegion {
    /// г. Бишкек, KG-GB.
    Bishkek,
    /// г. Ош, KG-GO.
    OshCity,
    /// Баткенская область, KG-B.
    Batken,
    /// Чуйская область, KG-C.
    Chuy,
    /// Джалал-Абадская область, KG-J.
    JalalAbad,
    /// Нарынская область, KG-N.
    Naryn,
    /// Ошская область, KG-O.
    Osh,
    /// Таласская область, KG-T.
    Talas,
    /// Иссык-Кульская область, KG-Y.
    IssykKul,
}

/// Words that only say "region" or "city" in the spellings we read (Russian, Kyrgyz, Latin).
const REGION_WORDS: [&str; 8] = [
    "область",
    "обл",
    "облусу",
    "oblast",
    "oblasty",
    "oblusu",
    "region",
    "province",
];
const CITY_WORDS: [&str; 6] = ["г", "город", "гор", "шаары", "shaary", "city"];

impl KgRegion {
    /// Every region, in ISO 3166-2:KG code order (cities first).
    pub const ALL: [KgRegion; 9] = [
        KgRegion::Bishkek,
        KgRegion::OshCity,
        KgRegion::Batken,
        KgRegion::Chuy,
        KgRegion::JalalAbad,
        KgRegion::Naryn,
        KgRegion::Osh,
        KgRegion::Talas,
        KgRegion::IssykKul,
    ];

    /// The subdivision part of the ISO 3166-2:KG code, as stored and returned by the API:
    /// `GB`, `GO`, `B`, `C`, `J`, `N`, `O`, `T`, `Y`.
    pub fn code(self) -> &'static str {
        match self {
            KgRegion::Bishkek => "GB",
            KgRegion::OshCity => "GO",
            KgRegion::Batken => "B",
            KgRegion::Chuy => "C",
            KgRegion::JalalAbad => "J",
            KgRegion::Naryn => "N",
            KgRegion::Osh => "O",
            KgRegion::Talas => "T",
            KgRegion::IssykKul => "Y",
        }
    }

    /// The full ISO 3166-2 code, e.g. `KG-GB`.
    pub fn iso_3166_2(self) -> String {
        format!("KG-{}", self.code())
    }

    /// Russian name as written in addresses: `г. Бишкек`, `Чуйская область`.
    pub fn name_ru(self) -> &'static str {
        match self {
            KgRegion::Bishkek => "г. Бишкек",
            KgRegion::OshCity => "г. Ош",
            KgRegion::Batken => "Баткенская область",
            KgRegion::Chuy => "Чуйская область",
            KgRegion::JalalAbad => "Джалал-Абадская область",
            KgRegion::Naryn => "Нарынская область",
            KgRegion::Osh => "Ошская область",
            KgRegion::Talas => "Таласская область",
            KgRegion::IssykKul => "Иссык-Кульская область",
        }
    }

    /// English name: `Bishkek`, `Chüy Region`.
    pub fn name_en(self) -> &'static str {
        match self {
            KgRegion::Bishkek => "Bishkek",
            KgRegion::OshCity => "Osh",
            KgRegion::Batken => "Batken Region",
            KgRegion::Chuy => "Chüy Region",
            KgRegion::JalalAbad => "Jalal-Abad Region",
            KgRegion::Naryn => "Naryn Region",
            KgRegion::Osh => "Osh Region",
            KgRegion::Talas => "Talas Region",
            KgRegion::IssykKul => "Issyk-Kul Region",
        }
    }

    /// Whether this is a city of republican significance (Bishkek, Osh) rather than an oblast.
    pub fn is_city(self) -> bool {
        matches!(self, KgRegion::Bishkek | KgRegion::OshCity)
    }

    /// Reads a region as shoppers type it: the code (`GB`, `KG-C`, any case), or a Russian,
    /// Kyrgyz or Latin name with or without the word for region/city — `Чуйская область`,
    /// `Чүй облусу`, `Chuy`, `Chui oblast`, `г. Бишкек`, `Бишкек шаары`, `Bishkek`,
    /// `Иссык-Кульская`, `Ысык-Көл`, `Issyk-Kul Region`, `Джалал-Абад`, `Jalal-Abad`… Case,
    /// punctuation, `ё`/`е` and the Kyrgyz letters `ү ө ң` (read as `у о н`) do not matter. `Ош`
    /// alone is the city; `Ошская область`, `Ош облусу`, `Osh Region` are the oblast.
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `region` for anything else (including over 100 characters).
    pub fn parse(input: &str) -> Result<KgRegion, FieldError> {
        let unknown = FieldError::new(
            "region",
            "must be an oblast of Kyrgyzstan or Bishkek/Osh (e.g. Чуйская область, Bishkek, GB)",
        );
        let trimmed = input.trim();
        if trimmed.chars().count() > MAX_CITY_CHARS {
            return Err(unknown);
        }
        let code = trimmed.to_ascii_uppercase();
        let code = code.strip_prefix("KG-").unwrap_or(&code);
        if let Some(r) = KgRegion::ALL.into_iter().find(|r| r.code() == code) {
            return Ok(r);
        }
        let folded: String = trimmed
            .chars()
            .flat_map(char::to_lowercase)
            .map(|c| match c {
                'ё' => 'е',
                'ү' => 'у',
                'ө' => 'о',
                'ң' => 'н',
                'ü' => 'u',
                'ö' => 'o',
                c if c.is_alphanumeric() => c,
                _ => ' ',
            })
            .collect();
        let words: Vec<&str> = folded.split_whitespace().collect();
        let says_region = words.iter().any(|w| REGION_WORDS.contains(w));
        let name: String = words
            .into_iter()
            .filter(|w| !REGION_WORDS.contains(w) && !CITY_WORDS.contains(w))
            .collect();
        Ok(match name.as_str() {
            "бишкек" | "bishkek" => KgRegion::Bishkek,
            "ош" | "osh" if says_region => KgRegion::Osh,
            "ош" | "osh" => KgRegion::OshCity,
            "ошская" | "oshskaya" => KgRegion::Osh,
            "баткенская" | "баткен" | "batken" | "batkenskaya" => KgRegion::Batken,
            "чуйская" | "чуй" | "chuy" | "chui" | "chuj" | "chuiskaya" | "chuyskaya" => {
                KgRegion::Chuy
            }
            "джалалабадская"
            | "джалалабад"
            | "жалалабад"
            | "jalalabad"
            | "djalalabad"
            | "dzhalalabad"
            | "zhalalabad"
            | "jalalabadskaya"
            | "dzhalalabadskaya" => KgRegion::JalalAbad,
            "нарынская" | "нарын" | "naryn" | "narynskaya" => KgRegion::Naryn,
            "таласская" | "талас" | "talas" | "talasskaya" => KgRegion::Talas,
            "иссыккульская"
            | "иссыккуль"
            | "ысыккол"
            | "ысыккуль"
            | "issykkul"
            | "issykkol"
            | "ysykkol"
            | "yssykkol"
            | "ysykkul"
            | "issykkulskaya" => KgRegion::IssykKul,
            _ => return Err(unknown),
        })
    }
}

/// A Kyrgyz postal code: 6 ASCII digits starting with 7 (`720000` Bishkek, `723500` Osh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KgPostalCode(String);

impl KgPostalCode {
    /// Parses untrusted input (trimmed).
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `postal_code`.
    pub fn parse(input: &str) -> Result<KgPostalCode, FieldError> {
        let s = input.trim();
        let ok = s.len() == 6 && s.starts_with('7') && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| KgPostalCode(s.to_owned())).ok_or_else(|| {
            FieldError::new(
                "postal_code",
                "must be 6 digits starting with 7, e.g. 720000",
            )
        })
    }

    /// The six digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A US state, the District of Columbia or a territory, by USPS code (USPS Publication 28,
/// Appendix B). The freely associated states (FM, MH, PW) and military codes (AA, AE, AP) are not
/// served.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsState {
    code: &'static str,
    name: &'static str,
}

/// `(USPS code, name)` of every state, DC and the inhabited territories.
const US_STATES: [(&str, &str); 56] = [
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("DC", "District of Columbia"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
    ("AS", "American Samoa"),
    ("GU", "Guam"),
    ("MP", "Northern Mariana Islands"),
    ("PR", "Puerto Rico"),
    ("VI", "U.S. Virgin Islands"),
];

impl UsState {
    /// Every USPS code served, in the order of USPS Publication 28 (states and DC, then
    /// territories).
    pub fn all_codes() -> impl Iterator<Item = &'static str> {
        US_STATES.iter().map(|(code, _)| *code)
    }

    /// Reads a USPS code (`NY`, `ny`) or a name (`New York`, `district of columbia`; case and
    /// surrounding spaces ignored; `Virgin Islands` also names VI).
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `state` for anything else.
    pub fn parse(input: &str) -> Result<UsState, FieldError> {
        let s = input.trim();
        let s = if s.eq_ignore_ascii_case("Virgin Islands") {
            "VI"
        } else {
            s
        };
        US_STATES
            .iter()
            .find(|(code, name)| s.eq_ignore_ascii_case(code) || s.eq_ignore_ascii_case(name))
            .map(|&(code, name)| UsState { code, name })
            .ok_or(FieldError::new(
                "state",
                "must be a USPS state code such as NY, DC or PR",
            ))
    }

    /// The USPS two-letter code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The name: `New York`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Debug for UsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UsState({})", self.code)
    }
}

/// A US ZIP code: five digits (`10001`) or ZIP+4 (`10001-1234`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsZipCode(String);

impl UsZipCode {
    /// Parses untrusted input (trimmed).
    ///
    /// # Errors
    ///
    /// [`FieldError`] on `zip_code`.
    pub fn parse(input: &str) -> Result<UsZipCode, FieldError> {
        let s = input.trim();
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        let ok = match s.split_once('-') {
            None => digits(s, 5),
            Some((zip, plus4)) => digits(zip, 5) && digits(plus4, 4),
        };
        ok.then(|| UsZipCode(s.to_owned())).ok_or_else(|| {
            FieldError::new(
                "zip_code",
                "must be 5 digits or ZIP+4, e.g. 10001 or 10001-1234",
            )
        })
    }

    /// The code as given (`10001` or `10001-1234`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Kyrgyz delivery address that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KgAddress {
    street: String,
    building: String,
    apartment: Option<String>,
    city: String,
    region: KgRegion,
    postal_code: Option<KgPostalCode>,
}

impl KgAddress {
    /// Street, e.g. `ул. Юнусалиева`.
    pub fn street(&self) -> &str {
        &self.street
    }
    /// Building, e.g. `34`.
    pub fn building(&self) -> &str {
        &self.building
    }
    /// Apartment, e.g. `12`.
    pub fn apartment(&self) -> Option<&str> {
        self.apartment.as_deref()
    }
    /// City, e.g. `Бишкек`.
    pub fn city(&self) -> &str {
        &self.city
    }
    /// Region.
    pub fn region(&self) -> KgRegion {
        self.region
    }
    /// Postal code.
    pub fn postal_code(&self) -> Option<&KgPostalCode> {
        self.postal_code.as_ref()
    }
}

/// A US delivery address that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsAddress {
    street_address: String,
    address_line2: Option<String>,
    city: String,
    state: UsState,
    zip_code: UsZipCode,
}

impl UsAddress {
    /// First line, e.g. `123 Main St`.
    pub fn street_address(&self) -> &str {
        &self.street_address
    }
    /// Second line, e.g. `Apt 4B`.
    pub fn address_line2(&self) -> Option<&str> {
        self.address_line2.as_deref()
    }
    /// City.
    pub fn city(&self) -> &str {
        &self.city
    }
    /// State.
    pub fn state(&self) -> UsState {
        self.state
    }
    /// ZIP code.
    pub fn zip_code(&self) -> &UsZipCode {
        &self.zip_code
    }
}

/// A delivery address in the shape of its market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketAddress {
    /// Kyrgyzstan.
    Kg(KgAddress),
    /// United States.
    Us(UsAddress),
}

/// The field names of KG addresses, in the order they are checked.
const KG_FIELDS: [&str; 6] = [
    "street",
    "building",
    "apartment",
    "city",
    "region",
    "postal_code",
];

/// The field names of US addresses, in the order they are checked.
const US_FIELDS: [&str; 5] = [
    "street_address",
    "address_line2",
    "city",
    "state",
    "zip_code",
];

/// The field names of `market`'s addresses, in the order they are checked.
pub fn address_fields(market: Market) -> &'static [&'static str] {
    match market {
        Market::Kg => &KG_FIELDS,
        Market::Us => &US_FIELDS,
    }
}

impl MarketAddress {
    /// Applies `market`'s rules to `input`.
    ///
    /// First, a value in a field that `market`'s addresses do not have is refused (`zip_code` in
    /// a Kyrgyz address: "is not an address field in this market"); `null` there is ignored.
    /// Then each of the market's fields, in [`address_fields`] order: required fields must be
    /// present and not blank; text fields are trimmed, without control characters, card numbers
    /// or format characters and with a visible character ([`crate::check_display_text`]), at most
    /// [`MAX_LINE_CHARS`] (street lines), [`MAX_CITY_CHARS`] (city) or [`MAX_UNIT_CHARS`]
    /// (building, apartment) characters; optional fields that are blank count as absent;
    /// `region`, `postal_code`, `state`, `zip_code` by [`KgRegion::parse`],
    /// [`KgPostalCode::parse`], [`UsState::parse`], [`UsZipCode::parse`]. A leading `кв.` is
    /// dropped from a Kyrgyz apartment (it is written back by [`MarketAddress::full_address`]).
    ///
    /// # Errors
    ///
    /// The [`FieldError`] of the first field that breaks a rule.
    pub fn parse(market: Market, input: &AddressInput) -> Result<MarketAddress, FieldError> {
        let own = address_fields(market);
        if let Some(foreign) =
            AddressInput::names().find(|f| !own.contains(f) && input.value(f).is_some())
        {
            return Err(FieldError::new(
                foreign,
                "is not an address field in this market",
            ));
        }
        Ok(match market {
            Market::Kg => MarketAddress::Kg(KgAddress {
                street: text("street", required(input, "street")?, MAX_LINE_CHARS)?,
                building: text("building", required(input, "building")?, MAX_UNIT_CHARS)?,
                apartment: optional(input, "apartment")
                    .map(|a| text("apartment", strip_apartment_word(a), MAX_UNIT_CHARS))
                    .transpose()?,
                city: text("city", required(input, "city")?, MAX_CITY_CHARS)?,
                region: KgRegion::parse(required(input, "region")?)?,
                postal_code: optional(input, "postal_code")
                    .map(KgPostalCode::parse)
                    .transpose()?,
            }),
            Market::Us => MarketAddress::Us(UsAddress {
                street_address: text(
                    "street_address",
                    required(input, "street_address")?,
                    MAX_LINE_CHARS,
                )?,
                address_line2: optional(input, "address_line2")
                    .map(|l| text("address_line2", l, MAX_LINE_CHARS))
                    .transpose()?,
                city: text("city", required(input, "city")?, MAX_CITY_CHARS)?,
                state: UsState::parse(required(input, "state")?)?,
                zip_code: UsZipCode::parse(required(input, "zip_code")?)?,
            }),
        })
    }

    /// The market whose shape this is.
    pub fn market(&self) -> Market {
        match self {
            MarketAddress::Kg(_) => Market::Kg,
            MarketAddress::Us(_) => Market::Us,
        }
    }

    /// The address back as input: every field of its market present (optional ones possibly
    /// `null`), codes for region and state. `parse(market, &a.to_input()) == Ok(a)`.
    pub fn to_input(&self) -> AddressInput {
        let v = |s: &str| Some(Some(s.to_owned()));
        let o = |s: Option<&str>| Some(s.map(str::to_owned));
        match self {
            MarketAddress::Kg(a) => AddressInput {
                street: v(&a.street),
                building: v(&a.building),
                apartment: o(a.apartment()),
                city: v(&a.city),
                region: v(a.region.code()),
                postal_code: o(a.postal_code.as_ref().map(KgPostalCode::as_str)),
                ..AddressInput::default()
            },
            MarketAddress::Us(a) => AddressInput {
                street_address: v(&a.street_address),
                address_line2: o(a.address_line2()),
                city: v(&a.city),
                state: v(a.state.code()),
                zip_code: v(a.zip_code.as_str()),
                ..AddressInput::default()
            },
        }
    }

    /// This address with the fields present in `patch` replaced (absent fields are kept, `null`
    /// clears an optional field), checked again as a whole by [`MarketAddress::parse`].
    ///
    /// # Errors
    ///
    /// As [`MarketAddress::parse`]: e.g. `null` for a required field is "is required", a field of
    /// another market "is not an address field in this market".
    pub fn patched(&self, patch: &AddressInput) -> Result<MarketAddress, FieldError> {
        let mut merged = self.to_input();
        for name in AddressInput::names() {
            if let Some(v) = patch.field(name) {
                *merged.field_mut(name) = Some(v.clone());
            }
        }
        MarketAddress::parse(self.market(), &merged)
    }

    /// The address on one line as the market writes it.
    ///
    /// KG (Russian convention, street first): street, building, `кв. ` apartment, city, region
    /// (left out when it is the city itself — `Бишкек` in `г. Бишкек`), postal code:
    /// `ул. Юнусалиева, 34, кв. 12, Бишкек, Чуйская область`.
    /// US (USPS Publication 28 order): `123 Main St, Apt 4B, New York, NY 10001`.
    pub fn full_address(&self) -> String {
        match self {
            MarketAddress::Kg(a) => {
                let mut parts = vec![a.street.clone(), a.building.clone()];
                if let Some(apt) = &a.apartment {
                    parts.push(format!("кв. {apt}"));
                }
                parts.push(a.city.clone());
                let city_is_region =
                    a.region.is_city() && KgRegion::parse(&a.city).ok() == Some(a.region);
                if !city_is_region {
                    parts.push(a.region.name_ru().to_owned());
                }
                if let Some(p) = &a.postal_code {
                    parts.push(p.as_str().to_owned());
                }
                parts.join(", ")
            }
            MarketAddress::Us(a) => {
                let mut parts = vec![a.street_address.clone()];
                if let Some(l2) = &a.address_line2 {
                    parts.push(l2.clone());
                }
                parts.push(a.city.clone());
                parts.push(format!("{} {}", a.state.code(), a.zip_code.as_str()));
                parts.join(", ")
            }
        }
    }
}

/// `кв. 12` → `12`: the word is written by [`MarketAddress::full_address`].
fn strip_apartment_word(apartment: &str) -> &str {
    let s = apartment.trim();
    for word in ["квартира", "кв.", "кв "] {
        if let Some(head) = s.get(..word.len())
            && head.to_lowercase() == word
        {
            return &s[word.len()..];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v(s: &str) -> InputField {
        Some(Some(s.to_owned()))
    }

    fn kg_input() -> AddressInput {
        AddressInput {
            street: v("ул. Юнусалиева"),
            building: v("34"),
            apartment: v("12"),
            city: v("Бишкек"),
            region: v("Чуйская область"),
            ..AddressInput::default()
        }
    }

    fn us_input() -> AddressInput {
        AddressInput {
            street_address: v("123 Main St"),
            city: v("New York"),
            state: v("NY"),
            zip_code: v("10001"),
            ..AddressInput::default()
        }
    }

    fn field_of(market: Market, input: &AddressInput) -> &'static str {
        MarketAddress::parse(market, input).unwrap_err().field
    }

    #[test]
    fn full_addresses_follow_each_market() {
        let kg = MarketAddress::parse(Market::Kg, &kg_input()).unwrap();
        assert_eq!(
            kg.full_address(),
            "ул. Юнусалиева, 34, кв. 12, Бишкек, Чуйская область"
        );
        let us = MarketAddress::parse(Market::Us, &us_input()).unwrap();
        assert_eq!(us.full_address(), "123 Main St, New York, NY 10001");
        let us2 = MarketAddress::parse(
            Market::Us,
            &AddressInput {
                address_line2: v("Apt 4B"),
                zip_code: v("10001-1234"),
                ..us_input()
            },
        )
        .unwrap();
        assert_eq!(
            us2.full_address(),
            "123 Main St, Apt 4B, New York, NY 10001-1234"
        );
        // The city of Bishkek as region: not repeated. Postal code last; "кв." not doubled.
        let bishkek = MarketAddress::parse(
            Market::Kg,
            &AddressInput {
                region: v("г. Бишкек"),
                apartment: v("кв. 7"),
                postal_code: v("720040"),
                ..kg_input()
            },
        )
        .unwrap();
        assert_eq!(
            bishkek.full_address(),
            "ул. Юнусалиева, 34, кв. 7, Бишкек, 720040"
        );
        let kant = MarketAddress::parse(
            Market::Kg,
            &AddressInput {
                city: v("Кант"),
                apartment: None,
                region: v("C"),
                ..kg_input()
            },
        )
        .unwrap();
        assert_eq!(
            kant.full_address(),
            "ул. Юнусалиева, 34, Кант, Чуйская область"
        );
    }

    #[test]
    fn region_spellings_map_to_iso_codes() {
        let cases = [
            ("Чуйская область", "C"),
            ("чуйская обл.", "C"),
            ("Чүй облусу", "C"),
            ("Chuy", "C"),
            ("Chui oblast", "C"),
            ("Chüy Region", "C"),
            ("KG-C", "C"),
            ("c", "C"),
            ("г. Бишкек", "GB"),
            ("Бишкек", "GB"),
            ("Бишкек шаары", "GB"),
            ("Bishkek City", "GB"),
            ("gb", "GB"),
            ("Ош", "GO"),
            ("г. Ош", "GO"),
            ("Osh", "GO"),
            ("Ош шаары", "GO"),
            ("Ошская область", "O"),
            ("Ош облусу", "O"),
            ("Osh Region", "O"),
            ("Иссык-Кульская область", "Y"),
            ("Ысык-Көл облусу", "Y"),
            ("Issyk-Kul", "Y"),
            ("Нарынская область", "N"),
            ("Нарын облусу", "N"),
            ("Naryn", "N"),
            ("Таласская область", "T"),
            ("Талас облусу", "T"),
            ("Talas", "T"),
            ("Джалал-Абадская область", "J"),
            ("Жалал-Абад облусу", "J"),
            ("Jalal-Abad", "J"),
            ("Баткенская область", "B"),
            ("Баткен облусу", "B"),
            ("Batken", "B"),
        ];
        for (input, code) in cases {
            assert_eq!(
                KgRegion::parse(input).map(|r| r.code()),
                Ok(code),
                "{input}"
            );
        }
        for bad in [
            "",
            "Москва",
            "Алматы",
            "область",
            "XX",
            "KG-",
            "Chuy Bishkek",
            "NY",
        ] {
            assert_eq!(KgRegion::parse(bad).unwrap_err().field, "region", "{bad:?}");
        }
        assert!(KgRegion::parse(&"Чуйская ".repeat(20)).is_err());
        for r in KgRegion::ALL {
            assert_eq!(KgRegion::parse(r.code()), Ok(r));
            assert_eq!(KgRegion::parse(&r.iso_3166_2()), Ok(r));
            assert_eq!(KgRegion::parse(r.name_ru()), Ok(r), "{}", r.name_ru());
            assert_eq!(KgRegion::parse(r.name_en()), Ok(r), "{}", r.name_en());
        }
    }

    #[test]
    fn us_states_zip_codes_and_kg_postal_codes() {
        assert_eq!(UsState::all_codes().count(), 56);
        for code in UsState::all_codes() {
            assert_eq!(UsState::parse(&code.to_lowercase()).unwrap().code(), code);
        }
        assert_eq!(UsState::parse(" new york ").unwrap().code(), "NY");
        assert_eq!(UsState::parse("District of Columbia").unwrap().code(), "DC");
        assert_eq!(UsState::parse("Puerto Rico").unwrap().name(), "Puerto Rico");
        assert_eq!(UsState::parse("Virgin Islands").unwrap().code(), "VI");
        for bad in ["", "XX", "N.Y.", "AA", "FM", "UM", "Ontario", "NYC"] {
            assert_eq!(UsState::parse(bad).unwrap_err().field, "state", "{bad:?}");
        }
        for ok in ["10001", "00501", "10001-1234", " 99950 "] {
            assert!(UsZipCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1000",
            "100011",
            "10001-123",
            "10001 1234",
            "1000a",
            "720000",
            "10001-",
        ] {
            assert_eq!(
                UsZipCode::parse(bad).unwrap_err().field,
                "zip_code",
                "{bad}"
            );
        }
        for ok in ["720000", "723500", " 722100 "] {
            assert!(KgPostalCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["10001", "620000", "72000", "7200000", "72000a", "١٢٣٤٥٦"] {
            assert_eq!(
                KgPostalCode::parse(bad).unwrap_err().field,
                "postal_code",
                "{bad}"
            );
        }
    }

    #[test]
    fn field_rules_name_the_field() {
        let kg = |f: fn(&mut AddressInput)| {
            let mut i = kg_input();
            f(&mut i);
            field_of(Market::Kg, &i)
        };
        assert_eq!(kg(|i| i.street = None), "street");
        assert_eq!(kg(|i| i.street = Some(None)), "street");
        assert_eq!(kg(|i| i.street = v("   ")), "street");
        assert_eq!(kg(|i| i.street = v(&"у".repeat(201))), "street");
        assert_eq!(kg(|i| i.street = v("ул.\u{0}")), "street");
        assert_eq!(kg(|i| i.building = None), "building");
        assert_eq!(kg(|i| i.building = v(&"1".repeat(21))), "building");
        assert_eq!(kg(|i| i.city = v(&"б".repeat(101))), "city");
        assert_eq!(kg(|i| i.region = v("New York")), "region");
        assert_eq!(kg(|i| i.region = None), "region");
        // A US ZIP code in a Kyrgyz address, under either name.
        assert_eq!(kg(|i| i.postal_code = v("10001")), "postal_code");
        assert_eq!(kg(|i| i.zip_code = v("10001")), "zip_code");
        assert_eq!(kg(|i| i.state = v("NY")), "state");
        // `null` in a foreign field and blank optional fields are no value at all.
        let mut ok = kg_input();
        ok.zip_code = Some(None);
        ok.apartment = v("  ");
        ok.postal_code = v("");
        let a = MarketAddress::parse(Market::Kg, &ok).unwrap();
        assert!(
            matches!(&a, MarketAddress::Kg(k) if k.apartment().is_none() && k.postal_code().is_none())
        );
        assert!(
            MarketAddress::parse(
                Market::Kg,
                &AddressInput {
                    street: v(&"у".repeat(200)),
                    ..kg_input()
                }
            )
            .is_ok()
        );

        let us = |f: fn(&mut AddressInput)| {
            let mut i = us_input();
            f(&mut i);
            field_of(Market::Us, &i)
        };
        assert_eq!(us(|i| i.street_address = None), "street_address");
        assert_eq!(
            us(|i| i.street_address = v(&"a".repeat(201))),
            "street_address"
        );
        assert_eq!(
            us(|i| i.address_line2 = v(&"a".repeat(201))),
            "address_line2"
        );
        assert_eq!(us(|i| i.state = v("XX")), "state");
        assert_eq!(us(|i| i.zip_code = v("1234")), "zip_code");
        assert_eq!(us(|i| i.zip_code = None), "zip_code");
        assert_eq!(us(|i| i.region = v("Чуйская область")), "region");
        // A Kyrgyz-shaped body for a US address: the first foreign field is named.
        assert_eq!(field_of(Market::Us, &kg_input()), "street");
        assert_eq!(field_of(Market::Kg, &us_input()), "street_address");
    }

    #[test]
    fn every_text_field_refuses_card_numbers_and_format_characters() {
        use crate::text::{CARD_NUMBER_IN_TEXT, FORMAT_CHARACTER_IN_TEXT, NOTHING_VISIBLE_IN_TEXT};
        let cases = [
            ("5555 5555 5555 4444", CARD_NUMBER_IN_TEXT),
            ("4111-1111-1111-1111", CARD_NUMBER_IN_TEXT),
            ("12\u{202E}", FORMAT_CHARACTER_IN_TEXT),
            ("1\u{200B}2", FORMAT_CHARACTER_IN_TEXT),
            ("\u{301}", NOTHING_VISIBLE_IN_TEXT),
        ];
        for (market, input) in [(Market::Kg, kg_input()), (Market::Us, us_input())] {
            for field in address_fields(market) {
                if matches!(*field, "region" | "postal_code" | "state" | "zip_code") {
                    continue;
                }
                for (value, reason) in cases {
                    let mut i = input.clone();
                    *i.field_mut(field) = v(value);
                    let e = MarketAddress::parse(market, &i).unwrap_err();
                    assert_eq!((e.field, e.reason), (*field, reason), "{field} {value:?}");
                }
            }
        }
        let ok = AddressInput {
            address_line2: v("Call (212) 555-0100 after 2026-02-01"),
            ..us_input()
        };
        assert!(MarketAddress::parse(Market::Us, &ok).is_ok());
    }

    #[test]
    fn patches_merge_then_check_again() {
        let a = MarketAddress::parse(Market::Kg, &kg_input()).unwrap();
        let moved = a
            .patched(&AddressInput {
                apartment: Some(None),
                region: v("Bishkek"),
                ..AddressInput::default()
            })
            .unwrap();
        assert_eq!(moved.full_address(), "ул. Юнусалиева, 34, Бишкек");
        assert_eq!(a.patched(&AddressInput::default()), Ok(a.clone()));
        let err = a
            .patched(&AddressInput {
                street: Some(None),
                ..AddressInput::default()
            })
            .unwrap_err();
        assert_eq!((err.field, err.reason), ("street", "is required"));
        assert_eq!(
            a.patched(&AddressInput {
                zip_code: v("10001"),
                ..AddressInput::default()
            })
            .unwrap_err()
            .field,
            "zip_code"
        );
        let us = MarketAddress::parse(Market::Us, &us_input()).unwrap();
        assert_eq!(us.market(), Market::Us);
        assert_eq!(MarketAddress::parse(Market::Us, &us.to_input()), Ok(us));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(
            street in any::<String>(),
            region in any::<String>(),
            zip in any::<String>(),
        ) {
            for market in Market::ALL {
                let input = AddressInput {
                    street: v(&street),
                    building: v("1"),
                    city: v(&street),
                    region: v(&region),
                    street_address: v(&street),
                    state: v(&region),
                    zip_code: v(&zip),
                    postal_code: v(&zip),
                    ..AddressInput::default()
                };
                let mut own = AddressInput::default();
                for f in address_fields(market) {
                    *own.field_mut(f) = input.field(f).clone();
                }
                if let Ok(a) = MarketAddress::parse(market, &own) {
                    prop_assert_eq!(MarketAddress::parse(market, &a.to_input()), Ok(a.clone()));
                    prop_assert!(!a.full_address().is_empty());
                }
            }
        }
    }
}

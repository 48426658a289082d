//! Entities and the value types that guard their fields.

use std::fmt;

use chrono::{DateTime, Utc};
use marque_markets::{Market, PhoneNumber};

/// A user's id, unique within one market's database (the pair market + id is global).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A session's id: a random UUID v4 as text (the `sid` claim of access tokens).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub String);

/// A shopper's account in one market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id within the market's database.
    pub id: UserId,
    /// The market whose database holds the account.
    pub market: Market,
    /// The verified phone number (in the user's market); `None` for an account made with an
    /// email address that has not added a phone (issue 10).
    pub phone: Option<PhoneNumber>,
    /// The account's email address, when it has one (issue 10).
    pub email: Option<String>,
    /// Whether that address is verified.
    pub email_verified: bool,
    /// Display name, if set.
    pub full_name: Option<FullName>,
    /// Avatar URL (https), if set.
    pub profile_image_url: Option<ImageUrl>,
    /// Whether the phone number has been verified (always true for users created by login).
    pub is_verified: bool,
    /// Last successful verification.
    pub last_login: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change time.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The user's market.
    pub fn market(&self) -> Market {
        self.market
    }
}

/// A session to create on successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Fresh random id.
    pub id: SessionId,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the session ends on its own.
    pub expires_at: DateTime<Utc>,
    /// `User-Agent` of the client, truncated to 512 characters.
    pub user_agent: Option<String>,
    /// Client IP address as text.
    pub client_ip: Option<String>,
}

/// Why a profile value was refused; `field` names the JSON field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ProfileValueError {
    /// The offending field (`full_name`, `profile_image_url`).
    pub field: &'static str,
    /// What is wrong, in English (for logs and the validation message).
    pub reason: &'static str,
}

impl ProfileValueError {
    /// Makes the errors on `field` from their reasons.
    fn on(field: &'static str) -> impl Fn(&'static str) -> Self {
        move |reason| Self { field, reason }
    }
}

/// A display name: 1–100 characters after trimming, no control characters, and the rules of
/// text people see ([`marque_markets::check_display_text`]: no card number, no Unicode format
/// characters such as bidi overrides or zero-width characters, at least one visible character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// Maximum length in characters (Unicode scalar values).
    pub const MAX_CHARS: usize = 100;

    /// Parses untrusted input; surrounding whitespace is trimmed.
    pub fn parse(input: &str) -> Result<Self, ProfileValueError> {
        let err = ProfileValueError::on("full_name");
        let s = input.trim();
        if s.is_empty() {
            return Err(err("must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(err("must be at most 100 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(err("must not contain control characters"));
        }
        // No card number, no bidi or zero-width characters, something visible (issue 12).
        marque_markets::check_display_text("full_name", s).map_err(|e| err(e.reason))?;
        Ok(Self(s.to_owned()))
    }

    /// A name as stored, possibly before the display-text rules (issue 12): format characters
    /// are dropped and card numbers replaced by `…` ([`marque_markets::clean_display_text`]), so
    /// an old row neither fails to load nor shows them; nothing visible left is no name.
    ///
    /// # Errors
    ///
    /// [`ProfileValueError`] when the stored text breaks another rule (a data error).
    pub fn from_stored(stored: &str) -> Result<Option<Self>, ProfileValueError> {
        match Self::parse(&marque_markets::clean_display_text(stored)) {
            Ok(name) => Ok(Some(name)),
            Err(e) if e.reason == marque_markets::NOTHING_VISIBLE_IN_TEXT => Ok(None),
            Err(e) if e.reason == "must not be empty" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A profile image URL: absolute `https` with a host, at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUrl(String);

impl ImageUrl {
    /// Maximum length in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Parses untrusted input with the WHATWG URL parser (`url` crate).
    pub fn parse(input: &str) -> Result<Self, ProfileValueError> {
        let err = ProfileValueError::on("profile_image_url");
        if input.len() > Self::MAX_LEN {
            return Err(err("must be at most 2048 characters"));
        }
        let url = url::Url::parse(input.trim()).map_err(|_| err("must be a valid URL"))?;
        if url.scheme() != "https" {
            return Err(err("must use https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("must have a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not contain credentials"));
        }
        let s = String::from(url);
        if s.len() > Self::MAX_LEN {
            return Err(err("must be at most 2048 characters"));
        }
        Ok(Self(s))
    }

    /// The normalised URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A change to a profile. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// New display name.
    pub full_name: Option<Option<FullName>>,
    /// New image URL.
    pub profile_image_url: Option<Option<ImageUrl>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_rules() {
        assert_eq!(
            FullName::parse("  Анна Ахматова ").unwrap().as_str(),
            "Анна Ахматова"
        );
        assert!(FullName::parse("   ").is_err());
        assert!(FullName::parse(&"я".repeat(100)).is_ok());
        assert!(FullName::parse(&"я".repeat(101)).is_err());
        assert!(FullName::parse("Ann\u{0}a").is_err());
        assert!(FullName::parse("Ann\na").is_err());
    }

    #[test]
    fn full_names_hold_no_card_number_and_show_what_they_say() {
        for (bad, reason) in [
            (
                "Анна 5555 5555 5555 4444",
                marque_markets::CARD_NUMBER_IN_TEXT,
            ),
            (
                "Anna\u{202E}gpj.exe",
                marque_markets::FORMAT_CHARACTER_IN_TEXT,
            ),
            (
                "\u{2066}Anna\u{2069}",
                marque_markets::FORMAT_CHARACTER_IN_TEXT,
            ),
            ("An\u{200B}na", marque_markets::FORMAT_CHARACTER_IN_TEXT),
            ("\u{FEFF}Anna", marque_markets::FORMAT_CHARACTER_IN_TEXT),
            ("\u{200D}", marque_markets::FORMAT_CHARACTER_IN_TEXT),
            ("\u{301}\u{308}", marque_markets::NOTHING_VISIBLE_IN_TEXT),
            ("\u{3164}", marque_markets::NOTHING_VISIBLE_IN_TEXT),
        ] {
            let e = FullName::parse(bad).unwrap_err();
            assert_eq!((e.field, e.reason), ("full_name", reason), "{bad:?}");
        }
        for ok in ["Zoë O'Neil", "Jose\u{301}", "李小龍", "Ann Lee 2nd"] {
            assert_eq!(FullName::parse(ok).unwrap().as_str(), ok);
            assert_eq!(FullName::from_stored(ok).unwrap().unwrap().as_str(), ok);
        }
        // Rows written before the rules: cleaned on reading, never a failure for them.
        let old = FullName::from_stored("Anna\u{202E}gpj 5555 5555 5555 4444").unwrap();
        assert_eq!(old.unwrap().as_str(), "Annagpj …");
        assert_eq!(FullName::from_stored("\u{200B}\u{200D}"), Ok(None));
        assert_eq!(FullName::from_stored("\u{301}"), Ok(None));
        assert!(FullName::from_stored(&"x".repeat(101)).is_err());
    }

    #[test]
    fn image_url_rules() {
        assert!(ImageUrl::parse("https://example.com/p.jpg").is_ok());
        assert!(ImageUrl::parse("http://example.com/p.jpg").is_err());
        assert!(ImageUrl::parse("javascript:alert(1)").is_err());
        assert!(ImageUrl::parse("https://user:pw@example.com/").is_err());
        assert!(ImageUrl::parse("not a url").is_err());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(
            ImageUrl::parse(&long).unwrap_err().field,
            "profile_image_url"
        );
    }
}

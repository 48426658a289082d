//! Email addresses as accounts know them, parsed once at the edge.
//!
//! Rules (RFC 5321 §4.5.3.1 limits; the identity rule is ours): surrounding whitespace is
//! trimmed; at most 254 characters in all (RFC 5321's 256-octet path minus the angle brackets);
//! exactly one `@`; a local part of 1–64 characters without whitespace, control characters,
//! quotes, angle brackets, brackets, commas, semicolons, colons or backslashes (no quoted local
//! parts, comments or IP literals: addresses we could not mail reliably); a domain of at least
//! two dot-separated labels, each 1–63 characters of letters, digits and hyphens (no hyphen at
//! either end; non-ASCII letters allowed for internationalised domains), lower-cased.
//!
//! We parse by hand rather than with a crate such as `email_address`: that crate accepts the full
//! RFC 5322 grammar (quoted strings, comments, domain literals), which is wider than what we want
//! to send links to, and the rules above are few and tested here.
//!
//! Identity: the whole address lower-cased ([`EmailAddress::key`]). The local part is
//! case-sensitive in theory (RFC 5321 §2.4) but not at any provider people use, and treating
//! `Ann@x.org` and `ann@x.org` as two accounts would let one person hold two and would split
//! per-address limits; so uniqueness and limits use the key, mail goes to the address as typed
//! (domain lower-cased).

use std::fmt;

/// Why an address was refused (`field` of the validation error is `email`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    /// Nothing left after trimming.
    #[error("must not be empty")]
    Empty,
    /// Over 254 characters.
    #[error("must be at most 254 characters")]
    TooLong,
    /// Not exactly one `@`, or an empty side.
    #[error("must have the form name@domain")]
    Shape,
    /// The local part breaks a rule.
    #[error("the part before @ is not valid")]
    LocalPart,
    /// The domain breaks a rule.
    #[error("the domain is not valid")]
    Domain,
}

/// A syntactically valid email address: trimmed, domain lower-cased.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    address: String,
    at: usize,
}

impl fmt::Debug for EmailAddress {
    /// Addresses are personal data: `Debug` shows the domain only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(…@{})", self.domain())
    }
}

impl EmailAddress {
    /// Longest accepted address, in characters.
    pub const MAX_CHARS: usize = 254;
    /// Longest local part, in characters (RFC 5321 §4.5.3.1.1).
    pub const MAX_LOCAL_CHARS: usize = 64;

    /// Parses untrusted input.
    ///
    /// # Errors
    ///
    /// [`EmailAddressError`] naming the broken rule.
    pub fn parse(input: &str) -> Result<Self, EmailAddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EmailAddressError::Empty);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(EmailAddressError::TooLong);
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailAddressError::Shape);
        };
        if local.is_empty() || domain.is_empty() {
            return Err(EmailAddressError::Shape);
        }
        if local.chars().count() > Self::MAX_LOCAL_CHARS
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(
                        c,
                        '"' | '(' | ')' | '<' | '>' | '[' | ']' | ',' | ';' | ':' | '\\'
                    )
            })
        {
            return Err(EmailAddressError::LocalPart);
        }
        let domain = domain.to_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailAddressError::Domain);
        }
        Ok(Self {
            address: format!("{local}@{domain}"),
            at: local.len(),
        })
    }

    /// An address as stored by this service (written after [`EmailAddress::parse`]); parsed
    /// again, so a changed rule cannot let a bad row through.
    ///
    /// # Errors
    ///
    /// As [`EmailAddress::parse`] (a data error for a stored row).
    pub fn from_stored(stored: &str) -> Result<Self, EmailAddressError> {
        Self::parse(stored)
    }

    /// The address to send mail to: as typed, trimmed, domain lower-cased.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The identity key: the whole address lower-cased. Unique per market database; the
    /// per-account limits and the failure lock are keyed by it.
    pub fn key(&self) -> String {
        self.address.to_lowercase()
    }

    /// The part before `@`, as typed.
    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// The domain, lower-cased.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_lowercases_the_domain_and_keys_case_insensitively() {
        let a = EmailAddress::parse("  Ann.Lee+shop@Example.ORG \n").unwrap();
        assert_eq!(a.as_str(), "Ann.Lee+shop@example.org");
        assert_eq!(a.local_part(), "Ann.Lee+shop");
        assert_eq!(a.domain(), "example.org");
        assert_eq!(a.key(), "ann.lee+shop@example.org");
        assert_eq!(
            EmailAddress::parse("ANN.LEE+SHOP@example.org")
                .unwrap()
                .key(),
            a.key()
        );
        assert!(!format!("{a:?}").contains("Ann"));
        assert_eq!(
            EmailAddress::parse("айгуль@почта.кг").unwrap().domain(),
            "почта.кг"
        );
    }

    #[test]
    fn refuses_what_we_cannot_mail() {
        use EmailAddressError::*;
        for (input, err) in [
            ("", Empty),
            ("   ", Empty),
            ("ann", Shape),
            ("ann@", Shape),
            ("@example.org", Shape),
            ("a@b@example.org", Shape),
            ("ann lee@example.org", LocalPart),
            ("\"ann\"@example.org", LocalPart),
            (".ann@example.org", LocalPart),
            ("an..n@example.org", LocalPart),
            ("ann@localhost", Domain),
            ("ann@-x.org", Domain),
            ("ann@x..org", Domain),
            ("ann@[127.0.0.1]", Domain),
            ("ann@exa_mple.org", Domain),
        ] {
            assert_eq!(EmailAddress::parse(input), Err(err), "{input:?}");
        }
        let local = "a".repeat(65);
        assert_eq!(
            EmailAddress::parse(&format!("{local}@example.org")),
            Err(LocalPart)
        );
        let long = format!("{}@{}.org", "a".repeat(64), "b".repeat(63));
        assert!(EmailAddress::parse(&long).is_ok());
        let too_long = format!(
            "{}@{}.{}.{}.org",
            "a".repeat(60),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert_eq!(EmailAddress::parse(&too_long), Err(TooLong));
    }
}

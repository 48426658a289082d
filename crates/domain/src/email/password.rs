//! Passwords: the policy of NIST SP 800-63B §3.1.1.2 and their storage with Argon2id (OWASP
//! Password Storage Cheat Sheet).
//!
//! Policy, checked in this order on the NFKC-normalised text (§3.1.1.2 asks for normalisation so
//! the same password typed on two keyboards is the same password):
//! 1. at least [`Password::MIN_CHARS`] (12) characters — `password_too_short`;
//! 2. at most [`Password::MAX_CHARS`] (128) — `password_too_long`;
//! 3. it must not contain the local part of the account's address, case-insensitively
//!    (a "context-specific word", §3.1.1.2), when that part has at least 3 characters (a shorter
//!    one would refuse most passwords for no gain) — `password_contains_email`;
//! 4. zxcvbn must score it at least 3 of 4 ("safely unguessable", ~10^8 guesses and up), with the
//!    address's parts as user inputs — `password_too_weak`.
//!
//! No composition rules and no periodic change (§3.1.1.2 says not to impose them). Every
//! character, spaces and emoji included, is allowed.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;

use super::EmailAddress;
use crate::RandomSource;

/// Which rule a refused password broke; its [`PasswordRule::code`] is the API's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    /// Fewer than 12 characters after normalisation.
    #[error("at least 12 characters")]
    TooShort,
    /// More than 128 characters after normalisation.
    #[error("at most 128 characters")]
    TooLong,
    /// Contains the local part of the email address.
    #[error("must not contain the email address")]
    ContainsEmail,
    /// zxcvbn scores it below 3.
    #[error("too easy to guess")]
    TooWeak,
}

impl PasswordRule {
    /// Stable error code: `password_too_short`, `password_too_long`,
    /// `password_contains_email`, `password_too_weak`.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "password_too_short",
            Self::TooLong => "password_too_long",
            Self::ContainsEmail => "password_contains_email",
            Self::TooWeak => "password_too_weak",
        }
    }
}

/// A password that passed the policy, NFKC-normalised. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// The zxcvbn score a password needs (0–4).
pub const MIN_ZXCVBN_SCORE: u8 = 3;

impl Password {
    /// Fewest characters (Unicode scalar values after NFKC).
    pub const MIN_CHARS: usize = 12;
    /// Most characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks a new password for the account of `email` against the policy (module docs).
    ///
    /// # Errors
    ///
    /// The first [`PasswordRule`] broken.
    pub fn new(input: &str, email: &EmailAddress) -> Result<Self, PasswordRule> {
        let normalised: String = input.nfkc().collect();
        let chars = normalised.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordRule::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordRule::TooLong);
        }
        let local = email.local_part().to_lowercase();
        if local.chars().count() >= 3 && normalised.to_lowercase().contains(&local) {
            return Err(PasswordRule::ContainsEmail);
        }
        let score: u8 = zxcvbn::zxcvbn(&normalised, &[email.local_part(), email.domain()])
            .score()
            .into();
        if score < MIN_ZXCVBN_SCORE {
            return Err(PasswordRule::TooWeak);
        }
        Ok(Self(normalised))
    }

    /// A password presented at sign-in: normalised the same way, no policy (a policy change must
    /// not lock out existing accounts).
    pub fn presented(input: &str) -> Self {
        Self(input.nfkc().collect())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Argon2id cost parameters (RFC 9106; OWASP's first choice: m = 19 MiB, t = 2, p = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB (`ARGON2_MEMORY_KIB`, default 19456).
    pub memory_kib: u32,
    /// Passes (`ARGON2_ITERATIONS`, default 2).
    pub iterations: u32,
    /// Lanes (`ARGON2_PARALLELISM`, default 1).
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Cost parameters Argon2 refuses (e.g. memory below 8 × parallelism KiB).
#[derive(Debug, thiserror::Error)]
#[error("invalid Argon2 parameters: {0}")]
pub struct Argon2CostError(String);

/// Hashes and verifies passwords with Argon2id; stores PHC strings
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so a hash made under older parameters keeps
/// verifying after the cost is raised.
#[derive(Clone)]
pub struct PasswordHashing {
    argon: Argon2<'static>,
    /// A hash of a random password under the current cost: verified when the account does not
    /// exist, so an unknown address takes as long as a wrong password (OWASP Authentication
    /// Cheat Sheet, "Authentication Responses").
    dummy: String,
}

impl fmt::Debug for PasswordHashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHashing")
            .field("params", self.argon.params())
            .finish_non_exhaustive()
    }
}

impl PasswordHashing {
    /// Argon2id with `cost`; the dummy hash is made here (one hash at start-up).
    ///
    /// # Errors
    ///
    /// [`Argon2CostError`] when Argon2 refuses the parameters.
    pub fn new(cost: Argon2Cost, rng: &dyn RandomSource) -> Result<Self, Argon2CostError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| Argon2CostError(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut this = Self {
            argon,
            dummy: String::new(),
        };
        let mut random = [0u8; 24];
        rng.fill_bytes(&mut random);
        let dummy_password = Password(URL_SAFE_NO_PAD.encode(random));
        this.dummy = this.hash(&dummy_password, rng);
        Ok(this)
    }

    /// The PHC string to store for `password`, with a fresh 128-bit salt from `rng`.
    pub fn hash(&self, password: &Password, rng: &dyn RandomSource) -> String {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt)
            .unwrap_or_else(|e| unreachable!("16 bytes is a valid salt: {e}"));
        self.argon
            .hash_password(password.bytes(), &salt)
            .unwrap_or_else(|e| unreachable!("hashing with checked parameters: {e}"))
            .to_string()
    }

    /// Whether `password` matches `stored` (compared in constant time by the argon2 crate).
    /// `None` — no such account — verifies the dummy hash and answers `false`, taking the same
    /// time as a wrong password. A stored value that is not a PHC string answers `false`.
    pub fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            tracing::error!("stored password hash is not a PHC string");
            return false;
        };
        let ok = self
            .argon
            .verify_password(password.bytes(), &parsed)
            .is_ok();
        ok && real
    }
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThreadCsprng;

    fn ann() -> EmailAddress {
        EmailAddress::parse("Ann.Lee@example.org").unwrap()
    }

    #[test]
    fn length_is_counted_after_nfkc() {
        let email = ann();
        // 11 and 12 characters of a strong shape.
        assert_eq!(
            Password::new("Vq7#kLm2@pZx"[..11].as_ref(), &email).unwrap_err(),
            PasswordRule::TooShort
        );
        assert!(Password::new("Vq7#kLm2@pZx", &email).is_ok());
        // "ﬁ" (U+FB01) is one character that NFKC makes two: 11 typed, 12 stored.
        let ligature = "ﬁVq7#kLm2@p";
        assert_eq!(ligature.chars().count(), 11);
        assert!(Password::new(ligature, &email).is_ok());
        // Full-width letters normalise to ASCII: the same password either way.
        let wide = Password::new("Ｖｑ７#kLm2@pZx", &email).unwrap();
        assert_eq!(wide.0, "Vq7#kLm2@pZx");
        // 128 and 129 characters.
        let long: String = "correct horse battery staple ".repeat(5);
        let p128: String = long.chars().take(128).collect();
        assert!(Password::new(&p128, &email).is_ok());
        let p129: String = format!("{p128}x");
        assert_eq!(
            Password::new(&p129, &email).unwrap_err(),
            PasswordRule::TooLong
        );
    }

    #[test]
    fn guessable_and_context_passwords_are_refused() {
        let email = ann();
        for weak in [
            "password1234",
            "aaaaaaaaaaaa",
            "123456789012",
            "qwertyuiopas",
        ] {
            assert_eq!(
                Password::new(weak, &email).unwrap_err(),
                PasswordRule::TooWeak,
                "{weak}"
            );
        }
        assert_eq!(
            Password::new("xx-ANN.LEE-Vq7#kLm2", &email).unwrap_err(),
            PasswordRule::ContainsEmail
        );
        // No composition rules: a long passphrase of lower-case words passes.
        assert!(Password::new("violet tractor nebula spoon", &email).is_ok());
        assert_eq!(PasswordRule::TooWeak.code(), "password_too_weak");
        assert!(!format!("{:?}", Password::presented("secret")).contains("secret"));
    }

    #[test]
    fn hashes_verify_and_unknown_accounts_never_match() {
        let cost = Argon2Cost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let h = PasswordHashing::new(cost, &ThreadCsprng).unwrap();
        let pw = Password::new("violet tractor nebula spoon", &ann()).unwrap();
        let stored = h.hash(&pw, &ThreadCsprng);
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_ne!(stored, h.hash(&pw, &ThreadCsprng), "fresh salt each time");
        assert!(h.verify(
            &Password::presented("violet tractor nebula spoon"),
            Some(&stored)
        ));
        assert!(!h.verify(
            &Password::presented("violet tractor nebula spooN"),
            Some(&stored)
        ));
        assert!(!h.verify(&pw, None));
        assert!(!h.verify(&pw, Some("not a hash")));
        // A hash under other parameters still verifies (PHC carries them).
        let other = PasswordHashing::new(Argon2Cost::default(), &ThreadCsprng).unwrap();
        assert!(other.verify(&pw, Some(&stored)));
        assert!(
            PasswordHashing::new(
                Argon2Cost {
                    memory_kib: 1,
                    iterations: 1,
                    parallelism: 1
                },
                &ThreadCsprng
            )
            .is_err()
        );
    }
}

//! One-time verification codes (the digits sent by SMS/WhatsApp/Telegram).

use std::fmt;

/// A one-time verification code: exactly [`OtpCode::LENGTH`] (6) ASCII digits, leading
/// zeros significant (`"000042"`).
///
/// Its [`Debug`](fmt::Debug) output is redacted (`OtpCode(******)`) so the code cannot leak
/// into logs; use [`OtpCode::as_str`] where the digits are really needed. The derived
/// `PartialEq` is not constant-time: compare stored codes through a keyed hash or a
/// constant-time comparison instead.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

/// Error of [`OtpCode::parse`]: the input is not exactly 6 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verification code must be exactly 6 digits")]
pub struct OtpCodeError;

/// 10^[`OtpCode::LENGTH`]: the number of distinct codes.
const CODE_SPACE: u32 = 1_000_000;

impl OtpCode {
    /// Number of digits in a code.
    pub const LENGTH: usize = 6;

    /// Parses a code typed by a user.
    ///
    /// Surrounding whitespace is trimmed; what remains must be exactly 6 ASCII digits
    /// `0`–`9` (no inner spaces, signs, or non-ASCII digits such as `١٢٣٤٥٦` or `１２３４５６`).
    ///
    /// # Errors
    ///
    /// [`OtpCodeError`] for anything else.
    pub fn parse(input: &str) -> Result<OtpCode, OtpCodeError> {
        let trimmed = input.trim();
        if trimmed.len() == Self::LENGTH && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Ok(OtpCode(trimmed.to_owned()))
        } else {
            Err(OtpCodeError)
        }
    }

    /// The code for `n % 1_000_000`, zero-padded to 6 digits (`42` → `"000042"`).
    ///
    /// Intended for values drawn uniformly from `0..1_000_000` by a CSPRNG (e.g.
    /// `rng.random_range(0..1_000_000)`); reducing a full-range `u32` modulo 10^6 instead
    /// would be slightly biased.
    pub fn from_index(n: u32) -> OtpCode {
        OtpCode(format!("{:06}", n % CODE_SPACE))
    }

    /// The 6 ASCII digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    /// Redacted: always writes `OtpCode(******)`, never the digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

/// What a code is for. Bound into the code's MAC and its message text, so a code sent for one
/// purpose is refused for any other (a sign-in code cannot delete an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum OtpPurpose {
    /// Sign in (or sign up) with the number.
    #[default]
    Login,
    /// Step-up check before deleting the account of the number.
    DeleteAccount,
}

impl OtpPurpose {
    /// Every purpose.
    pub const ALL: [OtpPurpose; 2] = [OtpPurpose::Login, OtpPurpose::DeleteAccount];

    /// Storage and API text: `login`, `delete_account`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::DeleteAccount => "delete_account",
        }
    }

    /// Parses the storage and API text; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_accepts_six_ascii_digits() {
        for (input, want) in [
            ("123456", "123456"),
            ("000000", "000000"),
            ("999999", "999999"),
            ("  042042\n", "042042"),
            ("\t654321 ", "654321"),
        ] {
            assert_eq!(
                OtpCode::parse(input).map(|c| c.as_str().to_owned()),
                Ok(want.to_owned())
            );
        }
    }

    #[test]
    fn parse_rejects_everything_else() {
        for input in [
            "",
            " ",
            "12345",
            "1234567",
            "12a456",
            "12 456",
            "123 456",
            "+12345",
            "-12345",
            "12345.",
            "١٢٣٤٥٦",
            "１２３４５６",
            "۱۲۳۴۵۶",
            "12345６",
            "12345\u{0}",
            "0x1234",
        ] {
            assert_eq!(OtpCode::parse(input), Err(OtpCodeError), "{input:?}");
        }
        assert_eq!(
            OtpCodeError.to_string(),
            "verification code must be exactly 6 digits"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let code = OtpCode::parse("123456").unwrap();
        let shown = format!("{code:?}");
        assert_eq!(shown, "OtpCode(******)");
        assert_eq!(format!("{code:#?}"), "OtpCode(******)");
        assert_eq!(format!("{:?}", Some(&code)), "Some(OtpCode(******))");
    }

    #[test]
    fn from_index_zero_pads() {
        assert_eq!(OtpCode::from_index(0).as_str(), "000000");
        assert_eq!(OtpCode::from_index(7).as_str(), "000007");
        assert_eq!(OtpCode::from_index(42).as_str(), "000042");
        assert_eq!(OtpCode::from_index(123_456).as_str(), "123456");
        assert_eq!(OtpCode::from_index(999_999).as_str(), "999999");
        assert_eq!(OtpCode::from_index(1_000_000).as_str(), "000000");
        assert_eq!(OtpCode::from_index(1_000_042).as_str(), "000042");
        assert_eq!(OtpCode::from_index(u32::MAX).as_str(), "967295");
    }

    #[test]
    fn purposes_round_trip() {
        for p in OtpPurpose::ALL {
            assert_eq!(OtpPurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(OtpPurpose::parse("Login"), None);
        assert_eq!(OtpPurpose::default(), OtpPurpose::Login);
    }

    proptest! {
        #[test]
        fn from_index_round_trips(n in any::<u32>()) {
            let code = OtpCode::from_index(n);
            prop_assert_eq!(code.as_str().len(), OtpCode::LENGTH);
            prop_assert_eq!(code.as_str().parse::<u32>().ok(), Some(n % 1_000_000));
            prop_assert_eq!(OtpCode::parse(code.as_str()), Ok(code.clone()));
            let shown = format!("{:?}", code);
            prop_assert!(!shown.contains(code.as_str()));
        }

        #[test]
        fn parse_never_panics(input in any::<String>()) {
            if let Ok(code) = OtpCode::parse(&input) {
                prop_assert_eq!(code.as_str(), input.trim());
            }
        }
    }
}

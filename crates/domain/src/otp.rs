//! Keyed hashing of one-time codes.
//!
//! Codes are never stored: only `HMAC-SHA256(key, e164 || 0x00 || purpose || 0x00 || code)`. A 6-digit code has
//! only 10^6 values, so an unkeyed hash would be reversed by brute force in milliseconds from a
//! database dump; the server-side key (derived from `SECRET_KEY`) prevents that. Binding the
//! phone number into the MAC keeps a hash from being replayed for another number; binding the
//! purpose (`login`, `delete_account`) keeps a code sent for one purpose from serving another
//! (issue 12, item 10), even if a row's purpose column were altered.

use hmac::{Hmac, Mac};
use marque_markets::{OtpCode, OtpPurpose, PhoneNumber};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Computes and checks OTP hashes with a server secret.
#[derive(Clone)]
pub struct OtpHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for OtpHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpHasher([REDACTED])")
    }
}

impl OtpHasher {
    /// A hasher whose key is derived from `secret` with HKDF (RFC 5869) under the label
    /// `marque/otp-mac/v1` ([`crate::keys::KeyRing`]), so the same `SECRET_KEY` can also sign
    /// tokens without the two uses sharing a key.
    pub fn from_secret(secret: &[u8]) -> Self {
        crate::keys::KeyRing::derive(secret).otp_hasher()
    }

    /// A hasher with `key`, an HMAC-SHA256 key from [`crate::keys::KeyRing`].
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, phone: &PhoneNumber, purpose: OtpPurpose, code: &OtpCode) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any size"));
        mac.update(phone.e164().as_bytes());
        mac.update(&[0]);
        mac.update(purpose.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(code.as_str().as_bytes());
        mac
    }

    /// The 32-byte MAC stored in place of `code`.
    pub fn hash(&self, phone: &PhoneNumber, purpose: OtpPurpose, code: &OtpCode) -> Vec<u8> {
        self.mac(phone, purpose, code)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `code` matches the stored MAC, compared in constant time.
    pub fn verify(
        &self,
        phone: &PhoneNumber,
        purpose: OtpPurpose,
        code: &OtpCode,
        stored: &[u8],
    ) -> bool {
        self.mac(phone, purpose, code).verify_slice(stored).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, None).unwrap()
    }

    #[test]
    fn verify_accepts_only_the_same_code_number_and_key() {
        let h = OtpHasher::from_secret(b"k1");
        let p = phone("+996505325311");
        let code = OtpCode::parse("123456").unwrap();
        let login = OtpPurpose::Login;
        let stored = h.hash(&p, login, &code);
        assert_eq!(stored.len(), 32);
        assert!(h.verify(&p, login, &code, &stored));
        assert!(!h.verify(&p, login, &OtpCode::parse("123457").unwrap(), &stored));
        assert!(!h.verify(&phone("+12125550100"), login, &code, &stored));
        assert!(!OtpHasher::from_secret(b"k2").verify(&p, login, &code, &stored));
        assert!(!h.verify(&p, login, &code, &stored[..31]));
        // Bound to its purpose (issue 12, item 10): a sign-in code does not delete, nor back.
        assert!(!h.verify(&p, OtpPurpose::DeleteAccount, &code, &stored));
        let deletion = h.hash(&p, OtpPurpose::DeleteAccount, &code);
        assert!(h.verify(&p, OtpPurpose::DeleteAccount, &code, &deletion));
        assert!(!h.verify(&p, login, &code, &deletion));
    }

    #[test]
    fn stored_hash_does_not_contain_the_code() {
        let h = OtpHasher::from_secret(b"k1");
        let code = OtpCode::parse("123456").unwrap();
        let stored = h.hash(&phone("+996505325311"), OtpPurpose::Login, &code);
        assert!(!stored.windows(6).any(|w| w == b"123456"));
    }
}

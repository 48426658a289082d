//! One secret, many keys: every key Marque uses is derived from `SECRET_KEY` with HKDF-SHA256
//! (RFC 5869) under its own label, here and nowhere else.
//!
//! | label (HKDF `info`) | key | used by |
//! |---|---|---|
//! | `marque/jwt-ed25519/v1` | Ed25519 seed (RFC 8032) | access-token signing when no `JWT_SIGNING_KEY_FILE` is set |
//! | `marque/otp-mac/v1` | HMAC-SHA256 key | [`OtpHasher`]: the MAC stored in place of a code |
//! | `marque/outbox-seal/v1` | ChaCha20-Poly1305 key | [`PayloadSealer`]: outbox payloads at rest |
//! | `marque/refresh-mac/v1` | HMAC-SHA256 key | [`RefreshKeys`]: successor of a rotated refresh token, client binding |
//! | `marque/messenger-mac/v1` | HMAC-SHA256 key | [`MessengerHasher`]: messenger-login nonces, poll secrets, Telegram user ids |
//! | `marque/email-token-mac/v1` | HMAC-SHA256 key | [`EmailTokenKeys`]: email verification and password-reset link tokens |
//! | `marque/email-csrf/v1` | HMAC-SHA256 key | [`EmailTokenKeys`]: the CSRF token of the password-reset form |
//!
//! Separate labels make the keys independent (RFC 5869 §3.2): knowing one — e.g. the public
//! half of the signing key, or a key leaked from one component — tells nothing of the others, and
//! none of them is the secret itself. The secret is the HKDF input keying material as given (its
//! text's bytes); HKDF-Extract turns any high-entropy input into a uniform key, whatever its
//! encoding. A `/v1` suffix lets one key be replaced without touching the others.

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::refresh::RefreshKeys;
use crate::{Ed25519SigningKey, EmailTokenKeys, MessengerHasher, OtpHasher, PayloadSealer};

/// HKDF-Extract salt (RFC 5869 §3.1: a fixed, application-specific salt is fine when none is
/// random).
const SALT: &[u8] = b"marque-auth/hkdf-sha256/v1";

/// HKDF `info` of the access-token signing key (Ed25519 seed).
pub const LABEL_JWT_ED25519: &str = "marque/jwt-ed25519/v1";
/// HKDF `info` of the OTP MAC key.
pub const LABEL_OTP_MAC: &str = "marque/otp-mac/v1";
/// HKDF `info` of the outbox sealing key.
pub const LABEL_OUTBOX_SEAL: &str = "marque/outbox-seal/v1";
/// HKDF `info` of the refresh-token MAC key.
pub const LABEL_REFRESH_MAC: &str = "marque/refresh-mac/v1";
/// HKDF `info` of the messenger-login MAC key (issue 9).
pub const LABEL_MESSENGER_MAC: &str = "marque/messenger-mac/v1";
/// HKDF `info` of the email link-token MAC key (issue 10).
pub const LABEL_EMAIL_TOKEN_MAC: &str = "marque/email-token-mac/v1";
/// HKDF `info` of the password-reset form's CSRF MAC key (issue 10).
pub const LABEL_EMAIL_CSRF: &str = "marque/email-csrf/v1";

/// Every key derived from one secret. `Debug` prints nothing of them.
#[derive(Clone)]
pub struct KeyRing {
    jwt_seed: [u8; 32],
    otp_mac: [u8; 32],
    outbox_seal: [u8; 32],
    refresh_mac: [u8; 32],
    messenger_mac: [u8; 32],
    email_token_mac: [u8; 32],
    email_csrf: [u8; 32],
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing([REDACTED])")
    }
}

impl KeyRing {
    /// Derives every key from `secret` (`SECRET_KEY`) with HKDF-SHA256 (RFC 5869), one label
    /// per key.
    pub fn derive(secret: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(SALT), secret);
        let expand = |label: &str| {
            let mut okm = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's limit of 255 × 32.
            hk.expand(label.as_bytes(), &mut okm)
                .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
            okm
        };
        Self {
            jwt_seed: expand(LABEL_JWT_ED25519),
            otp_mac: expand(LABEL_OTP_MAC),
            outbox_seal: expand(LABEL_OUTBOX_SEAL),
            refresh_mac: expand(LABEL_REFRESH_MAC),
            messenger_mac: expand(LABEL_MESSENGER_MAC),
            email_token_mac: expand(LABEL_EMAIL_TOKEN_MAC),
            email_csrf: expand(LABEL_EMAIL_CSRF),
        }
    }

    /// The hasher of one-time codes.
    pub fn otp_hasher(&self) -> OtpHasher {
        OtpHasher::from_key(self.otp_mac)
    }

    /// The sealer of outbox payloads.
    pub fn outbox_sealer(&self) -> PayloadSealer {
        PayloadSealer::from_key(&self.outbox_seal)
    }

    /// The refresh-token MAC.
    pub fn refresh_keys(&self) -> RefreshKeys {
        RefreshKeys::from_key(self.refresh_mac)
    }

    /// The MAC of messenger-login secrets (issue 9).
    pub fn messenger_hasher(&self) -> MessengerHasher {
        MessengerHasher::from_key(self.messenger_mac)
    }

    /// The MACs of email link tokens and of the reset form's CSRF token (issue 10).
    pub fn email_token_keys(&self) -> EmailTokenKeys {
        EmailTokenKeys::from_keys(self.email_token_mac, self.email_csrf)
    }

    /// The Ed25519 access-token signing key derived from the secret, with its `kid`: the JWK
    /// thumbprint of its public key (RFC 7638), so the id changes exactly when the key does.
    pub fn jwt_signing_key(&self) -> Ed25519SigningKey {
        let sk = ed25519_dalek::SigningKey::from_bytes(&self.jwt_seed);
        let private_pem = sk
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap_or_else(|e| unreachable!("PKCS#8 encoding of an Ed25519 key: {e}"))
            .to_string();
        Ed25519SigningKey {
            kid: jwk_thumbprint(&sk.verifying_key().to_bytes()),
            private_pem,
        }
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key (RFC 8037 §2: members `crv`, `kty`, `x` in
/// lexicographic order), base64url without padding.
pub fn jwk_thumbprint(public: &[u8; 32]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64.encode(public)
    );
    b64.encode(Sha256::digest(json.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_deterministic_and_not_the_secret() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let a = KeyRing::derive(secret);
        let b = KeyRing::derive(secret);
        let keys = [
            a.jwt_seed,
            a.otp_mac,
            a.outbox_seal,
            a.refresh_mac,
            a.messenger_mac,
            a.email_token_mac,
            a.email_csrf,
        ];
        for (i, k) in keys.iter().enumerate() {
            assert_ne!(&k[..], &secret[..]);
            for other in &keys[i + 1..] {
                assert_ne!(k, other);
            }
        }
        assert_eq!(a.otp_mac, b.otp_mac);
        assert_eq!(a.jwt_signing_key().kid, b.jwt_signing_key().kid);
        assert_ne!(
            KeyRing::derive(b"another secret").jwt_signing_key().kid,
            a.jwt_signing_key().kid
        );
        assert!(!format!("{a:?}").contains('0'));
    }

    /// RFC 5869 Appendix A.1 (test case 1) through the same crate, so the construction is HKDF
    /// as specified.
    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    /// RFC 7638 §3.1 computes thumbprints over the required members in lexicographic order; for
    /// an OKP key (RFC 8037 Appendix A.3) the thumbprint of the RFC's example key is given.
    #[test]
    fn thumbprint_matches_rfc8037_a3() {
        use base64::Engine;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let x: [u8; 32] = x.try_into().unwrap();
        assert_eq!(
            jwk_thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}

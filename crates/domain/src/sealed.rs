//! Encryption of outbox payloads at rest.
//!
//! An outbox message carries a one-time code in clear text until it is delivered; storing it that
//! way would defeat hashing the code. Payloads are sealed with ChaCha20-Poly1305 (RFC 8439) under a
//! key derived from `SECRET_KEY` with HKDF ([`crate::keys`]), and the store scrubs them once delivered or expired.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::RandomSource;

const NONCE_LEN: usize = 12;

/// Seals and opens outbox payloads. Sealed form: 12-byte random nonce followed by the ciphertext
/// and its 16-byte tag.
#[derive(Clone)]
pub struct PayloadSealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for PayloadSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadSealer([REDACTED])")
    }
}

/// A payload that does not open: wrong key, or altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealed payload could not be opened")]
pub struct OpenError;

impl PayloadSealer {
    /// A sealer for outbox payloads, keyed from `secret` with HKDF (RFC 5869) under the label
    /// `marque/outbox-seal/v1` ([`crate::keys::KeyRing`]).
    pub fn from_secret(secret: &[u8]) -> Self {
        crate::keys::KeyRing::derive(secret).outbox_sealer()
    }

    /// A sealer with `key`, a ChaCha20-Poly1305 key from [`crate::keys::KeyRing`].
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// Encrypts `plaintext` under a fresh nonce from `rng`.
    pub fn seal(&self, plaintext: &[u8], rng: &dyn RandomSource) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 encryption of a small buffer"));
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a payload made by [`PayloadSealer::seal`] with the same key.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThreadCsprng;

    #[test]
    fn round_trip_and_tamper() {
        let s = PayloadSealer::from_secret(b"secret");
        let sealed = s.seal(b"Marque: your code is 123456", &ThreadCsprng);
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(s.open(&sealed).unwrap(), b"Marque: your code is 123456");
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert_eq!(s.open(&bad), Err(OpenError));
        assert_eq!(
            PayloadSealer::from_secret(b"other").open(&sealed),
            Err(OpenError)
        );
        assert_eq!(s.open(&[1, 2]), Err(OpenError));
    }
}

//! Injected randomness.

use marque_markets::OtpCode;
use rand::RngCore;

/// A source of cryptographically secure random bytes. Production uses [`ThreadCsprng`]; tests may
/// inject a deterministic source.
pub trait RandomSource: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill_bytes(&self, buf: &mut [u8]);
}

/// The thread-local CSPRNG of the `rand` crate (ChaCha12, seeded and periodically reseeded from
/// the operating system).
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadCsprng;

impl RandomSource for ThreadCsprng {
    fn fill_bytes(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}

/// A uniformly distributed 6-digit code. Uses rejection sampling so that no code is more likely
/// than another (a plain `u32 % 1_000_000` would bias the low codes).
pub fn generate_otp(rng: &dyn RandomSource) -> OtpCode {
    // Largest multiple of 1_000_000 that fits in u32; values at or above it are redrawn.
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let mut b = [0u8; 4];
        rng.fill_bytes(&mut b);
        let n = u32::from_le_bytes(b);
        if n < LIMIT {
            return OtpCode::from_index(n % 1_000_000);
        }
    }
}

/// A random UUID (version 4) as lowercase hyphenated text, for session ids and token ids.
pub fn new_uuid(rng: &dyn RandomSource) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Scripted(Mutex<Vec<u32>>);
    impl RandomSource for Scripted {
        fn fill_bytes(&self, buf: &mut [u8]) {
            let v = self.0.lock().unwrap().remove(0);
            buf.copy_from_slice(&v.to_le_bytes());
        }
    }

    #[test]
    fn otp_rejects_biased_values_and_pads() {
        let rng = Scripted(Mutex::new(vec![u32::MAX, 42]));
        assert_eq!(generate_otp(&rng).as_str(), "000042");
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = new_uuid(&ThreadCsprng);
        let b = new_uuid(&ThreadCsprng);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}

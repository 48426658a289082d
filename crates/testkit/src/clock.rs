//! Time and randomness that tests control.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use marque_domain::{Clock, RandomSource};
use rand::{RngCore, SeedableRng, rngs::StdRng};

/// A clock that only moves when told to; for tests of time-dependent rules.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by` (negative durations move it back).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A seeded generator: the same seed gives the same codes, session ids and tokens.
#[derive(Debug)]
pub struct FixedRandom(Mutex<StdRng>);

impl FixedRandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl RandomSource for FixedRandom {
    fn fill_bytes(&self, buf: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(buf);
    }
}

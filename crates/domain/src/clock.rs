//! Injected time source.

use chrono::{DateTime, Utc};

/// Where the domain reads the current time from. Production uses [`SystemClock`]; tests use a
/// manual clock (`marque-testkit`) so expiry, cooldowns and windows are checked without sleeping.
pub trait Clock: Send + Sync {
    /// The current instant, UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

//! Fixed-window rate limits with a cooldown, evaluated on state the store keeps in the market
//! database (so every instance enforces one limit).

use chrono::{DateTime, Duration, Utc};

/// A limit: at most `max_hits` in a window of `window` that opens at the first hit, and at least
/// `cooldown` between two hits (zero for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Hits admitted per window.
    pub max_hits: u32,
    /// Length of a window.
    pub window: Duration,
    /// Minimum gap between two admitted hits.
    pub cooldown: Duration,
}

/// What the store keeps for one bucket (e.g. one phone number, one client IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    /// When the current window opened.
    pub window_started_at: DateTime<Utc>,
    /// Hits admitted in the current window.
    pub hits: u32,
    /// When the last hit was admitted.
    pub last_hit_at: DateTime<Utc>,
}

/// A refusal: the caller may try again after this many whole seconds (at least 1); sent as the
/// HTTP `Retry-After` header (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl RetryAfter {
    /// The wait from `now` until `at`, in whole seconds rounded up (at least 1).
    pub fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Self {
        let ms = (at - now).num_milliseconds().max(0);
        // Round up so a client that waits exactly this long is admitted.
        RetryAfter(((ms + 999) / 1000).max(1) as u64)
    }
}

impl RateLimitPolicy {
    /// Decides one hit at `now` against the stored `state` (`None` for a bucket never hit).
    /// Returns the state to store when admitted, or how long to wait.
    pub fn admit(
        &self,
        state: Option<&BucketState>,
        now: DateTime<Utc>,
    ) -> Result<BucketState, RetryAfter> {
        let fresh = BucketState {
            window_started_at: now,
            hits: 1,
            last_hit_at: now,
        };
        let Some(s) = state else { return Ok(fresh) };
        let cooldown_ends = s.last_hit_at + self.cooldown;
        if now < cooldown_ends {
            return Err(RetryAfter::until(now, cooldown_ends));
        }
        let window_ends = s.window_started_at + self.window;
        if now >= window_ends {
            return Ok(fresh);
        }
        if s.hits >= self.max_hits {
            return Err(RetryAfter::until(now, window_ends));
        }
        Ok(BucketState {
            window_started_at: s.window_started_at,
            hits: s.hits + 1,
            last_hit_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    const POLICY: RateLimitPolicy = RateLimitPolicy {
        max_hits: 3,
        window: Duration::minutes(15),
        cooldown: Duration::seconds(60),
    };

    #[test]
    fn cooldown_then_window_then_reset() {
        let mut now = t0();
        let s1 = POLICY.admit(None, now).unwrap();
        assert_eq!(
            POLICY.admit(Some(&s1), now + Duration::seconds(59)),
            Err(RetryAfter(1))
        );
        assert_eq!(
            POLICY.admit(Some(&s1), now + Duration::seconds(30)),
            Err(RetryAfter(30))
        );
        now += Duration::seconds(60);
        let s2 = POLICY.admit(Some(&s1), now).unwrap();
        now += Duration::seconds(60);
        let s3 = POLICY.admit(Some(&s2), now).unwrap();
        assert_eq!(s3.hits, 3);
        now += Duration::seconds(60);
        // Fourth code inside 15 minutes: wait until the window (opened at t0) ends.
        assert_eq!(POLICY.admit(Some(&s3), now), Err(RetryAfter(12 * 60)));
        let later = t0() + Duration::minutes(15);
        let s4 = POLICY.admit(Some(&s3), later).unwrap();
        assert_eq!((s4.hits, s4.window_started_at), (1, later));
    }

    #[test]
    fn zero_cooldown_admits_back_to_back() {
        let p = RateLimitPolicy {
            cooldown: Duration::zero(),
            ..POLICY
        };
        let s = p.admit(None, t0()).unwrap();
        assert!(p.admit(Some(&s), t0()).is_ok());
    }
}

//! Fixed-window rate limits with a cooldown, evaluated on state the store keeps in the market
//! database (so every instance enforces one limit).

use chrono::{DateTime, Duration, Utc};

/// The key of a number's send-code bucket (`send:phone:<E.164>`): the one place it is spelled, so
/// the service that hits it and the store that deletes it with the account agree.
pub fn phone_send_bucket(phone: &marque_markets::PhoneNumber) -> String {
    format!("send:phone:{}", phone.e164())
}

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

/// Hits counted for the same client in the buckets of the *other* markets' databases (read, not
/// written: no personal data crosses markets), so one budget covers every market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Elsewhere {
    /// Hits in the other markets' current windows.
    pub hits: u32,
    /// When the earliest of those windows ends (`None` when `hits` is 0).
    pub window_ends: Option<DateTime<Utc>>,
}

impl Elsewhere {
    /// Adds the stored `state` of one other market's bucket under `policy` at `now`: only hits
    /// of a window still open count.
    #[must_use]
    pub fn plus(
        self,
        policy: &RateLimitPolicy,
        state: Option<&BucketState>,
        now: DateTime<Utc>,
    ) -> Self {
        let Some(s) = state else { return self };
        let ends = s.window_started_at + policy.window;
        if s.hits == 0 || now >= ends {
            return self;
        }
        Self {
            hits: self.hits.saturating_add(s.hits),
            window_ends: Some(self.window_ends.map_or(ends, |e| e.min(ends))),
        }
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
        self.admit_shared(state, now, Elsewhere::default())
    }

    /// [`RateLimitPolicy::admit`] with `elsewhere` hits of the same client counted in other
    /// markets: admitted only while this bucket's hits plus those stay under `max_hits`.
    ///
    /// Monotonic: the decision is taken at `max(now, last hit)`. `now` is read before the
    /// caller waits for the bucket's row lock, so a request that waited sees hits of later
    /// readers "in its future" (and instances' clocks differ by milliseconds); judged at its own
    /// `now` it would be refused for a cooldown that has not even begun (issue 12, item 12:
    /// spurious 429 `Retry-After: 1` under concurrency). A hit is never dated before the last.
    pub fn admit_shared(
        &self,
        state: Option<&BucketState>,
        now: DateTime<Utc>,
        elsewhere: Elsewhere,
    ) -> Result<BucketState, RetryAfter> {
        let now = state.map_or(now, |s| now.max(s.last_hit_at));
        let elsewhere_full = |own_window_ends: Option<DateTime<Utc>>| {
            let ends = [own_window_ends, elsewhere.window_ends]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now);
            Err(RetryAfter::until(now, ends))
        };
        let fresh = BucketState {
            window_started_at: now,
            hits: 1,
            last_hit_at: now,
        };
        let Some(s) = state else {
            if elsewhere.hits >= self.max_hits {
                return elsewhere_full(None);
            }
            return Ok(fresh);
        };
        let cooldown_ends = s.last_hit_at + self.cooldown;
        if now < cooldown_ends {
            return Err(RetryAfter::until(now, cooldown_ends));
        }
        let window_ends = s.window_started_at + self.window;
        if now >= window_ends {
            if elsewhere.hits >= self.max_hits {
                return elsewhere_full(None);
            }
            return Ok(fresh);
        }
        if s.hits >= self.max_hits {
            return Err(RetryAfter::until(now, window_ends));
        }
        if s.hits.saturating_add(elsewhere.hits) >= self.max_hits {
            return elsewhere_full(Some(window_ends));
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

    /// Issue 12, item 12: a request that read the clock, then waited for the bucket lock while a
    /// later reader hit the bucket, is judged at the last hit, not refused with `Retry-After: 1`.
    #[test]
    fn a_hit_in_the_future_does_not_refuse_an_earlier_reader() {
        let p = RateLimitPolicy {
            cooldown: Duration::zero(),
            ..POLICY
        };
        let later = p.admit(None, t0() + Duration::milliseconds(7)).unwrap();
        let s = p.admit(Some(&later), t0()).unwrap();
        assert_eq!(s.hits, 2);
        assert_eq!(s.last_hit_at, later.last_hit_at);
        // A real cooldown still holds, counted from the last hit.
        let s1 = POLICY.admit(None, t0() + Duration::seconds(2)).unwrap();
        assert_eq!(POLICY.admit(Some(&s1), t0()), Err(RetryAfter(60)));
    }

    #[test]
    fn hits_elsewhere_share_one_budget() {
        let p = RateLimitPolicy {
            cooldown: Duration::zero(),
            ..POLICY
        };
        let other = p.admit(None, t0()).unwrap();
        let other = p.admit(Some(&other), t0()).unwrap();
        let now = t0() + Duration::minutes(5);
        let elsewhere = Elsewhere::default().plus(&p, Some(&other), now);
        assert_eq!(elsewhere.hits, 2);
        // 2 elsewhere + 1 here = 3 = max.
        let mine = p.admit_shared(None, now, elsewhere).unwrap();
        assert_eq!(
            p.admit_shared(Some(&mine), now, elsewhere),
            Err(RetryAfter(10 * 60)),
            "wait until the earliest window ends"
        );
        // Once the other market's window is over, its hits no longer count.
        let later = t0() + Duration::minutes(15);
        let gone = Elsewhere::default().plus(&p, Some(&other), later);
        assert_eq!(gone, Elsewhere::default());
        assert!(p.admit_shared(Some(&mine), later, gone).is_ok());
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

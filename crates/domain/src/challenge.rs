//! The rules that decide a verification attempt (NIST SP 800-63B §5.1.3: out-of-band codes are
//! single use, short lived, and attempts are limited).

use chrono::{DateTime, Duration, Utc};

use crate::RetryAfter;

/// Lifecycle of a stored OTP challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Issued and usable.
    Active,
    /// Used for a successful verification.
    Consumed,
    /// Replaced by a newer code for the same number.
    Superseded,
    /// Killed after too many wrong tries.
    Dead,
    /// Found past its expiry.
    Expired,
}

impl ChallengeStatus {
    /// Storage text of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Consumed => "consumed",
            Self::Superseded => "superseded",
            Self::Dead => "dead",
            Self::Expired => "expired",
        }
    }

    /// Parses the storage text; `None` for unknown text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "consumed" => Self::Consumed,
            "superseded" => Self::Superseded,
            "dead" => Self::Dead,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// The stored facts about the newest challenge of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeState {
    /// Wrong tries so far.
    pub attempts: u32,
    /// When the code stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// Lifecycle state.
    pub status: ChallengeStatus,
}

/// The verdict on one attempt, and what the store must write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Right code: mark the challenge consumed and sign the user in.
    Accept,
    /// Wrong code: store `attempts` and `status` (which is `Dead` when no tries remain).
    Reject {
        /// New count of wrong tries.
        attempts: u32,
        /// New status.
        status: ChallengeStatus,
        /// Tries left on this code.
        attempts_left: u32,
    },
    /// The code has expired: store `Expired`.
    Expired,
    /// Too many wrong tries already: nothing changes.
    AttemptsExceeded,
    /// No usable code (consumed, superseded, or none issued).
    NoActiveCode,
}

impl Judgement {
    /// The answer to give for a verdict other than [`Judgement::Accept`] (which has none: the
    /// caller signs in or deletes).
    pub fn refusal(self) -> crate::VerifyOutcome {
        use crate::VerifyOutcome;
        match self {
            Judgement::Reject { attempts_left, .. } => VerifyOutcome::WrongCode { attempts_left },
            Judgement::Expired => VerifyOutcome::Expired,
            Judgement::AttemptsExceeded => VerifyOutcome::AttemptsExceeded,
            Judgement::Accept | Judgement::NoActiveCode => VerifyOutcome::NoActiveCode,
        }
    }
}

/// Judges an attempt at `now` on `state` (`None` when the number has no challenge).
/// `matches` is whether the presented code equals the stored one (checked in constant time by
/// the caller, always, so timing does not reveal which branch was taken).
pub fn judge(
    state: Option<&ChallengeState>,
    now: DateTime<Utc>,
    max_attempts: u32,
    matches: bool,
) -> Judgement {
    let Some(s) = state else {
        return Judgement::NoActiveCode;
    };
    match s.status {
        ChallengeStatus::Dead => return Judgement::AttemptsExceeded,
        ChallengeStatus::Active => {}
        ChallengeStatus::Expired => return Judgement::Expired,
        ChallengeStatus::Consumed | ChallengeStatus::Superseded => return Judgement::NoActiveCode,
    }
    if s.attempts >= max_attempts {
        return Judgement::AttemptsExceeded;
    }
    if now >= s.expires_at {
        return Judgement::Expired;
    }
    if matches {
        return Judgement::Accept;
    }
    let attempts = s.attempts + 1;
    let attempts_left = max_attempts.saturating_sub(attempts);
    let status = if attempts_left == 0 {
        ChallengeStatus::Dead
    } else {
        ChallengeStatus::Active
    };
    Judgement::Reject {
        attempts,
        status,
        attempts_left,
    }
}

/// Consecutive wrong codes a number may collect across its challenges before it is locked
/// (issue 12, item 8; NIST SP 800-63B §5.2.2 allows at most 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Wrong codes in a row that lock the number (default 30, at most 100).
    pub max_consecutive: u32,
    /// How long the lock lasts (default 24 hours).
    pub lock: Duration,
}

/// What the store keeps per number about wrong codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureState {
    /// Wrong codes since the last success (or the last lock).
    pub consecutive: u32,
    /// End of the current lock, if any.
    pub locked_until: Option<DateTime<Utc>>,
}

impl FailureState {
    /// The wait left when the number is locked at `now`.
    pub fn locked(&self, now: DateTime<Utc>) -> Option<RetryAfter> {
        self.locked_until
            .filter(|until| now < *until)
            .map(|until| RetryAfter::until(now, until))
    }
}

impl FailurePolicy {
    /// The state after one more wrong code at `now`, and whether it locks the number. A lock
    /// starts the count again, so after it ends the number has the full allowance.
    pub fn record_failure(&self, state: FailureState, now: DateTime<Utc>) -> (FailureState, bool) {
        let consecutive = state.consecutive.saturating_add(1);
        if consecutive >= self.max_consecutive {
            let locked = FailureState {
                consecutive: 0,
                locked_until: Some(now + self.lock),
            };
            (locked, true)
        } else {
            let state = FailureState {
                consecutive,
                locked_until: state.locked_until,
            };
            (state, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn state(attempts: u32, status: ChallengeStatus) -> ChallengeState {
        ChallengeState {
            attempts,
            expires_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 10, 0).unwrap(),
            status,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn three_wrong_tries_kill_the_code() {
        let mut s = state(0, ChallengeStatus::Active);
        for left in [2, 1, 0] {
            match judge(Some(&s), now(), 3, false) {
                Judgement::Reject {
                    attempts,
                    status,
                    attempts_left,
                } => {
                    assert_eq!(attempts_left, left);
                    s.attempts = attempts;
                    s.status = status;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(s.status, ChallengeStatus::Dead);
        // The fourth try is refused even with the right code.
        assert_eq!(judge(Some(&s), now(), 3, true), Judgement::AttemptsExceeded);
    }

    #[test]
    fn failures_lock_the_number_then_start_again() {
        let policy = FailurePolicy {
            max_consecutive: 3,
            lock: Duration::minutes(1440),
        };
        let mut s = FailureState::default();
        for _ in 0..2 {
            let (next, locked) = policy.record_failure(s, now());
            assert!(!locked);
            s = next;
        }
        assert_eq!(s.locked(now()), None);
        let (s, locked) = policy.record_failure(s, now());
        assert!(locked);
        assert_eq!(s.consecutive, 0);
        assert_eq!(s.locked(now()), Some(RetryAfter(86_400)));
        assert_eq!(s.locked(now() + Duration::minutes(1440)), None);
    }

    #[test]
    fn expiry_is_exclusive() {
        let s = state(0, ChallengeStatus::Active);
        let at = s.expires_at;
        assert_eq!(
            judge(Some(&s), at - Duration::seconds(1), 3, true),
            Judgement::Accept
        );
        assert_eq!(judge(Some(&s), at, 3, true), Judgement::Expired);
    }

    #[test]
    fn used_or_missing_codes_are_not_accepted() {
        assert_eq!(judge(None, now(), 3, true), Judgement::NoActiveCode);
        for st in [ChallengeStatus::Consumed, ChallengeStatus::Superseded] {
            assert_eq!(
                judge(Some(&state(0, st)), now(), 3, true),
                Judgement::NoActiveCode
            );
        }
        for st in [
            ChallengeStatus::Active,
            ChallengeStatus::Consumed,
            ChallengeStatus::Dead,
        ] {
            assert_eq!(ChallengeStatus::parse(st.as_str()), Some(st));
        }
    }
}

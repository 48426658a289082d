//! SMS-pumping guards (issue 12, item 14): toll fraud sends codes to number ranges whose
//! operator pays the attacker per message. Twilio's SMS Pumping Protection (Fraud Guard) and
//! Firebase's SMS region policy are the models: daily send budgets, a velocity limit per number
//! prefix, an alarm when a prefix runs far above its usual rate.
//!
//! Pure rules; the store applies them to rows it holds locked.

use chrono::{DateTime, Duration, DurationRound, Utc};
use marque_markets::PhoneNumber;

use crate::rate_limit::RetryAfter;
use crate::{RateLimitCheck, RateLimitPolicy};

/// Bucket key of a market's daily SMS budget in `rate_limits` (same key in every market
/// database, so the total is the sum over markets).
pub const DAILY_BUCKET: &str = "sms:day";

/// Weight of the last hour in the prefix baseline (an exponentially weighted average whose
/// memory is about a day: 1/24).
const BASELINE_WEIGHT: f64 = 1.0 / 24.0;

/// An alarm needs at least this many messages to a prefix in the hour, whatever its baseline,
/// so a prefix that is usually silent does not alarm on its second message.
pub const ALARM_FLOOR: u32 = 20;

/// The number prefix messages are counted by: country calling code and the first three national
/// digits (`+996505`, `+1212`), i.e. an operator range or an area code.
pub fn sms_prefix(phone: &PhoneNumber) -> String {
    let e164 = phone.e164();
    let cc = phone.market().profile().phone_prefix;
    let national = e164.strip_prefix(cc).unwrap_or(&e164[1..]);
    let head: String = national.chars().take(3).collect();
    format!("{cc}{head}")
}

/// The guards' limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmsGuardConfig {
    /// Messages per number prefix per hour (`SMS_PREFIX_HOURLY_LIMIT`).
    pub prefix_hourly_limit: u32,
    /// Alarm when a prefix's hour exceeds this multiple of its baseline (`SMS_PREFIX_ALARM_MULTIPLE`).
    pub prefix_alarm_multiple: u32,
    /// Messages per day over all markets (`SMS_DAILY_LIMIT`).
    pub total_daily_limit: u32,
}

impl Default for SmsGuardConfig {
    fn default() -> Self {
        Self {
            prefix_hourly_limit: 300,
            prefix_alarm_multiple: 5,
            total_daily_limit: 20_000,
        }
    }
}

/// The daily budget policy of one market: `limit` messages in a day-long window opening at the
/// first message.
pub fn daily_policy(limit: u32) -> RateLimitPolicy {
    RateLimitPolicy {
        max_hits: limit,
        window: Duration::days(1),
        cooldown: Duration::zero(),
    }
}

/// What the store keeps per prefix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixState {
    /// Start of the hour being counted (UTC, whole hour).
    pub hour_start: DateTime<Utc>,
    /// Messages in that hour.
    pub sent: u32,
    /// Usual messages per hour before it (exponentially weighted average over about a day).
    pub baseline: f64,
}

/// The prefix guard of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixCheck {
    /// The prefix ([`sms_prefix`]).
    pub prefix: String,
    /// Messages per prefix per hour.
    pub hourly_limit: u32,
    /// Alarm multiple.
    pub alarm_multiple: u32,
}

/// A prefix crossed `multiple × baseline` this hour: logged (WARN) and counted, not refused.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixAlarm {
    /// The prefix.
    pub prefix: String,
    /// Messages to it this hour, this one included.
    pub sent: u32,
    /// Its usual hourly rate.
    pub baseline: f64,
}

/// Which guard refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetGuard {
    /// The market's daily budget.
    MarketDaily,
    /// The daily budget over all markets.
    TotalDaily,
    /// The hourly limit of the number's prefix.
    PrefixHourly,
}

impl BudgetGuard {
    /// Name for logs and the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MarketDaily => "market_daily",
            Self::TotalDaily => "total_daily",
            Self::PrefixHourly => "prefix_hourly",
        }
    }
}

/// A tripped guard: nothing was written or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetTrip {
    /// Which guard.
    pub guard: BudgetGuard,
    /// The prefix, for [`BudgetGuard::PrefixHourly`].
    pub prefix: Option<String>,
    /// When to try again.
    pub retry_after: RetryAfter,
}

/// Everything `issue_challenge` checks before a message is queued (absent for test numbers,
/// which send nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct SmsGuards {
    /// The market's daily budget ([`DAILY_BUCKET`]), with the other markets' messages of the day
    /// as `elsewhere` against the total.
    pub daily: RateLimitCheck,
    /// The total daily limit, checked against this market's count plus `daily.elsewhere`.
    pub total_daily_limit: u32,
    /// The prefix guard.
    pub prefix: PrefixCheck,
}

impl PrefixCheck {
    /// Judges one message at `now` against the stored `state`: the state to store and an alarm
    /// when this message crosses the alarm line, or the wait when the hour's limit is reached.
    pub fn admit(
        &self,
        state: Option<&PrefixState>,
        now: DateTime<Utc>,
    ) -> Result<(PrefixState, Option<PrefixAlarm>), RetryAfter> {
        let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        // Monotonic like `RateLimitPolicy::admit_shared`: never count into an hour before the
        // stored one (a request that read the clock, then waited for the lock).
        let mut current = match state {
            None => PrefixState {
                hour_start: hour,
                sent: 0,
                baseline: 0.0,
            },
            Some(s) if hour <= s.hour_start => *s,
            Some(s) => {
                // Fold the finished hour, then each empty hour since, into the baseline.
                let gap = (hour - s.hour_start).num_hours().max(1);
                let mut baseline =
                    s.baseline * (1.0 - BASELINE_WEIGHT) + f64::from(s.sent) * BASELINE_WEIGHT;
                let empty = i32::try_from(gap - 1).unwrap_or(i32::MAX).min(24 * 30);
                baseline *= (1.0 - BASELINE_WEIGHT).powi(empty);
                PrefixState {
                    hour_start: hour,
                    sent: 0,
                    baseline,
                }
            }
        };
        if current.sent >= self.hourly_limit {
            let now = now.max(current.hour_start);
            return Err(RetryAfter::until(
                now,
                current.hour_start + Duration::hours(1),
            ));
        }
        let line = (f64::from(self.alarm_multiple) * current.baseline).max(f64::from(ALARM_FLOOR));
        let before = current.sent;
        current.sent += 1;
        // Once per hour: the message that crosses the line.
        let alarm =
            (f64::from(before) <= line && f64::from(current.sent) > line).then(|| PrefixAlarm {
                prefix: self.prefix.clone(),
                sent: current.sent,
                baseline: current.baseline,
            });
        Ok((current, alarm))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn check(limit: u32) -> PrefixCheck {
        PrefixCheck {
            prefix: "+996505".into(),
            hourly_limit: limit,
            alarm_multiple: 5,
        }
    }

    #[test]
    fn prefixes() {
        let kg = PhoneNumber::parse("+996505325311", None).unwrap();
        assert_eq!(sms_prefix(&kg), "+996505");
        let us = PhoneNumber::parse("+12125550100", None).unwrap();
        assert_eq!(sms_prefix(&us), "+1212");
    }

    #[test]
    fn hourly_limit_then_next_hour() {
        let c = check(3);
        let mut s = None;
        for _ in 0..3 {
            s = Some(c.admit(s.as_ref(), t0() + Duration::minutes(10)).unwrap().0);
        }
        assert_eq!(
            c.admit(s.as_ref(), t0() + Duration::minutes(10)),
            Err(RetryAfter(50 * 60))
        );
        let (next, _) = c.admit(s.as_ref(), t0() + Duration::minutes(60)).unwrap();
        assert_eq!(next.sent, 1);
        assert!((next.baseline - 3.0 / 24.0).abs() < 1e-9);
        // An earlier reader after the rollover still counts into the stored hour.
        let (same, _) = c.admit(Some(&next), t0() + Duration::minutes(59)).unwrap();
        assert_eq!((same.hour_start, same.sent), (next.hour_start, 2));
    }

    #[test]
    fn alarm_once_when_a_prefix_runs_at_a_multiple_of_its_baseline() {
        let c = check(10_000);
        // A day of 10 messages an hour.
        let mut s: Option<PrefixState> = None;
        for h in 0..48 {
            for _ in 0..10 {
                let (next, alarm) = c.admit(s.as_ref(), t0() + Duration::hours(h)).unwrap();
                assert_eq!(alarm, None, "usual traffic never alarms");
                s = Some(next);
            }
        }
        let baseline = s.unwrap().baseline;
        assert!(baseline > 6.0 && baseline < 10.0, "{baseline}");
        // Then a burst: the alarm fires once, at the message above 5 × baseline.
        let burst = t0() + Duration::hours(48);
        let mut alarms = Vec::new();
        for _ in 0..200 {
            let (next, alarm) = c.admit(s.as_ref(), burst).unwrap();
            alarms.extend(alarm);
            s = Some(next);
        }
        assert_eq!(alarms.len(), 1);
        let line = 5.0 * alarms[0].baseline;
        assert_eq!(f64::from(alarms[0].sent), line.floor() + 1.0);
    }

    #[test]
    fn a_quiet_prefix_needs_the_floor_to_alarm() {
        let c = check(10_000);
        let mut s = None;
        let mut fired = None;
        for i in 1..=ALARM_FLOOR + 1 {
            let (next, alarm) = c.admit(s.as_ref(), t0()).unwrap();
            if alarm.is_some() {
                fired = Some(i);
            }
            s = Some(next);
        }
        assert_eq!(fired, Some(ALARM_FLOOR + 1));
    }
}

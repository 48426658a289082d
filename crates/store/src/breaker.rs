//! The circuit breaker of a market's pool (issue 11, "Failure isolation").
//!
//! Without it, every request of a market whose database is down waits the pool's whole
//! connection timeout (5 s by default) for its 503, holding a blocking thread all that time —
//! threads the other market's requests then queue behind. The breaker watches every connection
//! attempt of the pool ([`crate::connection::Manager`] reports each one): the first failure opens
//! it, and while it is open checkouts are refused at once, without touching the pool. After a
//! cool-down one request is let through as a probe; its checkout (or any background connection
//! of the pool) succeeding closes the breaker, failing opens it again for twice as long, up to
//! [`MAX_COOLDOWN`]. The pool itself keeps retrying its connections in the background, so the
//! breaker usually closes on its own within [`MAX_COOLDOWN`] of the database's return.
//!
//! Every method takes the current instant as an argument: the state machine is tested with
//! made-up instants, no sleeps.
//!
//! Connection failures are also counted here and logged at a bounded rate: one WARN line per
//! market per [`LOG_INTERVAL`], with the number of failures since the previous line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first cool-down after the breaker opens: how long checkouts are refused before a probe.
pub(crate) const MIN_COOLDOWN: Duration = Duration::from_millis(250);

/// The longest cool-down (the probe failed repeatedly): the breaker notices a returned database
/// within this time even when the pool's own retries are slower.
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(2);

/// At most one connection-error line per market per this interval.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What a checkout may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The breaker is closed: check out normally.
    Pass,
    /// The cool-down is over: this checkout is the probe that tells whether the database is back.
    Probe,
    /// The breaker is open: refuse at once (503).
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Closed,
    Open {
        until: Instant,
    },
    /// A probe is under way since `since`; other checkouts are refused meanwhile.
    Probing {
        since: Instant,
    },
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// The cool-down the next failed probe doubles.
    cooldown: Duration,
    /// Connection failures since the last log line.
    unlogged: u64,
    /// When the last connection-error line was written.
    logged_at: Option<Instant>,
}

/// A connection-error line due now: the failures it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// Failed connection attempts since the previous line (this one included).
    pub(crate) failures: u64,
}

/// One market pool's breaker. Shared by the pool's manager (which reports connection attempts)
/// and the store (which asks before each checkout).
#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
    /// How long a probe may take before another request may probe (the pool's checkout timeout
    /// plus a margin: a probe that never reports back must not keep the breaker open forever).
    probe_timeout: Duration,
}

impl Breaker {
    /// A closed breaker whose probes take at most `checkout_timeout`.
    pub(crate) fn new(checkout_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                mode: Mode::Closed,
                cooldown: MIN_COOLDOWN,
                unlogged: 0,
                logged_at: None,
            }),
            probe_timeout: checkout_timeout + Duration::from_secs(1),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // one assignment), so a poisoned lock is used as it is.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Whether a checkout at `now` may go to the pool.
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let probe_timeout = self.probe_timeout;
        self.with(|s| match s.mode {
            Mode::Closed => Admission::Pass,
            Mode::Open { until } if now < until => Admission::Refuse,
            Mode::Probing { since } if now.saturating_duration_since(since) < probe_timeout => {
                Admission::Refuse
            }
            Mode::Open { .. } | Mode::Probing { .. } => {
                s.mode = Mode::Probing { since: now };
                Admission::Probe
            }
        })
    }

    /// Whether checkouts are being refused: open, or a probe under way. A waiting checkout
    /// gives up when this turns true (a connection attempt failed meanwhile).
    pub(crate) fn is_open(&self, now: Instant) -> bool {
        self.with(|s| match s.mode {
            Mode::Closed => false,
            Mode::Open { until } => now < until,
            Mode::Probing { .. } => true,
        })
    }

    /// Whether the last connection attempt failed and no probe has started since (a waiting
    /// probe gives up when this turns true).
    pub(crate) fn is_tripped(&self) -> bool {
        self.with(|s| matches!(s.mode, Mode::Open { .. }))
    }

    /// A connection was opened or checked out: the database answers.
    pub(crate) fn record_success(&self) {
        self.with(|s| {
            s.mode = Mode::Closed;
            s.cooldown = MIN_COOLDOWN;
        });
    }

    /// A checkout or connection attempt failed at `now`: open the breaker (for twice the last
    /// cool-down when a probe failed). Failures while already open change nothing.
    pub(crate) fn record_failure(&self, now: Instant) {
        self.with(|s| match s.mode {
            Mode::Closed => {
                s.cooldown = MIN_COOLDOWN;
                s.mode = Mode::Open {
                    until: now + s.cooldown,
                };
            }
            Mode::Probing { .. } => {
                s.cooldown = (s.cooldown * 2).min(MAX_COOLDOWN);
                s.mode = Mode::Open {
                    until: now + s.cooldown,
                };
            }
            Mode::Open { .. } => {}
        });
    }

    /// Counts a failed connection attempt at `now`; `Some` when a log line is due (the first
    /// failure, then at most one per [`LOG_INTERVAL`]), with the failures it covers.
    pub(crate) fn count_connect_error(&self, now: Instant) -> Option<LogLine> {
        self.with(|s| {
            s.unlogged += 1;
            let due = s
                .logged_at
                .is_none_or(|at| now.saturating_duration_since(at) >= LOG_INTERVAL);
            if !due {
                return None;
            }
            let line = LogLine {
                failures: s.unlogged,
            };
            s.unlogged = 0;
            s.logged_at = Some(now);
            Some(line)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_failure_opens_the_breaker_until_the_cooldown_ends_then_one_probe_passes() {
        let b = Breaker::new(TIMEOUT);
        let t0 = Instant::now();
        assert_eq!(b.admit(t0), Admission::Pass);
        b.record_failure(t0);
        assert!(b.is_open(t0));
        assert_eq!(b.admit(t0 + ms(1)), Admission::Refuse);
        assert_eq!(b.admit(t0 + MIN_COOLDOWN - ms(1)), Admission::Refuse);
        // Cool-down over: exactly one probe, the others are still refused.
        assert_eq!(b.admit(t0 + MIN_COOLDOWN), Admission::Probe);
        assert_eq!(b.admit(t0 + MIN_COOLDOWN + ms(1)), Admission::Refuse);
        assert!(b.is_open(t0 + MIN_COOLDOWN + ms(1)));
        // The probe succeeds: closed.
        b.record_success();
        assert!(!b.is_open(t0 + MIN_COOLDOWN + ms(2)));
        assert_eq!(b.admit(t0 + MIN_COOLDOWN + ms(2)), Admission::Pass);
    }

    #[test]
    fn failed_probes_double_the_cooldown_up_to_the_maximum() {
        let b = Breaker::new(TIMEOUT);
        let mut now = Instant::now();
        b.record_failure(now);
        let mut expected = MIN_COOLDOWN;
        for _ in 0..6 {
            now += expected;
            assert_eq!(b.admit(now), Admission::Probe);
            b.record_failure(now);
            expected = (expected * 2).min(MAX_COOLDOWN);
            assert_eq!(b.admit(now + expected - ms(1)), Admission::Refuse);
        }
        assert_eq!(expected, MAX_COOLDOWN);
        // A success resets the cool-down to the minimum.
        b.record_success();
        b.record_failure(now);
        assert_eq!(b.admit(now + MIN_COOLDOWN), Admission::Probe);
    }

    #[test]
    fn failures_while_open_do_not_extend_it_and_a_background_success_closes_it() {
        let b = Breaker::new(TIMEOUT);
        let t0 = Instant::now();
        b.record_failure(t0);
        b.record_failure(t0 + ms(200));
        assert_eq!(b.admit(t0 + MIN_COOLDOWN), Admission::Probe);
        let b = Breaker::new(TIMEOUT);
        b.record_failure(t0);
        b.record_success();
        assert_eq!(b.admit(t0 + ms(1)), Admission::Pass);
    }

    #[test]
    fn a_probe_that_never_reports_back_is_replaced() {
        let b = Breaker::new(TIMEOUT);
        let t0 = Instant::now();
        b.record_failure(t0);
        let probe_at = t0 + MIN_COOLDOWN;
        assert_eq!(b.admit(probe_at), Admission::Probe);
        assert_eq!(b.admit(probe_at + TIMEOUT), Admission::Refuse);
        assert_eq!(
            b.admit(probe_at + TIMEOUT + Duration::from_secs(1)),
            Admission::Probe
        );
    }

    #[test]
    fn connection_errors_are_logged_once_per_interval_with_a_count() {
        let b = Breaker::new(TIMEOUT);
        let t0 = Instant::now();
        assert_eq!(
            b.count_connect_error(t0),
            Some(LogLine { failures: 1 }),
            "the first failure is logged at once"
        );
        for i in 1..=12 {
            assert_eq!(b.count_connect_error(t0 + ms(i * 100)), None);
        }
        assert_eq!(
            b.count_connect_error(t0 + LOG_INTERVAL),
            Some(LogLine { failures: 13 })
        );
        assert_eq!(b.count_connect_error(t0 + LOG_INTERVAL + ms(1)), None);
    }
}

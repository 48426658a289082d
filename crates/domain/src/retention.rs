//! Retention (issue 12, item 19): what is deleted, and after how long. Without it an abuser
//! grows the database without bound (every send-code leaves a challenge, a rate-limit row and
//! an outbox row).
//!
//! The periods are counted from the moment a row stopped mattering: a challenge's expiry, a
//! rate-limit bucket's last hit, an outbox message's creation once it is delivered, given up or
//! expired, a session's end (expiry or revocation), a refresh token's expiry, an audit row's
//! time. The store deletes in batches of [`RetentionPolicy::batch_size`] rows, each batch its
//! own short statement, so no table is locked for long.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use marque_markets::Market;

use crate::{Clock, RepoError};

/// How long ended rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Challenges (`phone_verifications`) after their expiry (default 24 h); also messenger
    /// logins after their expiry and handled webhook events after their arrival (issue 9).
    pub challenges: Duration,
    /// Rate-limit buckets after their last hit, and consecutive-failure counts of numbers after
    /// their last change (unless still locked) (default 48 h; must exceed the longest limit
    /// window or lock, else a limit would restart early).
    pub rate_limits: Duration,
    /// Outbox messages after their creation, once delivered, given up or expired (default 7 days).
    pub outbox: Duration,
    /// Sessions after their end (expiry or revocation), with their refresh tokens; refresh
    /// tokens of live sessions after their own expiry (default 30 days).
    pub sessions: Duration,
    /// Audit rows after their time (default 365 days).
    pub audit: Duration,
    /// Rows deleted per statement (default 1000).
    pub batch_size: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            challenges: Duration::hours(24),
            rate_limits: Duration::hours(48),
            outbox: Duration::days(7),
            sessions: Duration::days(30),
            audit: Duration::days(365),
            batch_size: 1000,
        }
    }
}

/// Rows deleted by one purge, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// `phone_verifications`.
    pub challenges: u64,
    /// `rate_limits`.
    pub rate_limits: u64,
    /// `phone_failures`.
    pub phone_failures: u64,
    /// `outbox`.
    pub outbox: u64,
    /// `sessions` (their refresh tokens go with them).
    pub sessions: u64,
    /// `refresh_tokens` deleted on their own (expired tokens of sessions still kept).
    pub refresh_tokens: u64,
    /// `audit_log`.
    pub audit: u64,
    /// `messenger_logins` and `messenger_seen` (issue 9).
    pub messenger: u64,
    /// `email_tokens` used or expired longer ago than challenges are kept (issue 10).
    pub email_tokens: u64,
}

impl Purged {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.challenges
            + self.rate_limits
            + self.phone_failures
            + self.outbox
            + self.sessions
            + self.refresh_tokens
            + self.audit
            + self.messenger
            + self.email_tokens
    }
}

/// Deletion of ended rows in one market database.
pub trait RetentionRepository: Send + Sync {
    /// The market whose database this is.
    fn market(&self) -> Market;

    /// Deletes every row past its period at `now`, in batches.
    fn purge(&self, now: DateTime<Utc>, policy: &RetentionPolicy) -> Result<Purged, RepoError>;
}

/// Runs the purge over every market database with the injected clock.
pub struct RetentionService {
    repos: Vec<Arc<dyn RetentionRepository>>,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
}

impl std::fmt::Debug for RetentionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RetentionService {
    /// A purge over `repos` (one per market).
    pub fn new(
        repos: Vec<Arc<dyn RetentionRepository>>,
        clock: Arc<dyn Clock>,
        policy: RetentionPolicy,
    ) -> Self {
        Self {
            repos,
            clock,
            policy,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetentionPolicy {
        &self.policy
    }

    /// Purges every market once (blocking). A market whose database fails is logged and
    /// skipped; the others are still purged.
    pub fn run_once(&self) -> Vec<(Market, Result<Purged, RepoError>)> {
        self.repos
            .iter()
            .map(|repo| {
                let market = repo.market();
                let result = repo.purge(self.clock.now(), &self.policy);
                match &result {
                    Ok(p) if p.total() > 0 => {
                        tracing::info!(%market, ?p, "retention: ended rows deleted");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(%market, error = %e, "retention purge failed"),
                }
                (market, result)
            })
            .collect()
    }
}

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use marque_domain::{
    Clock, DeliveryError, MessageSender, OutboxMessage, OutboxRepository, OutgoingMessage,
    PayloadSealer, RepoError,
};
use tokio_util::sync::CancellationToken;

/// Tunables of the [`OutboxWorker`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Pause between polls when the outbox is empty (default 200 ms).
    pub poll_interval: StdDuration,
    /// Messages claimed per poll and market (default 32).
    pub batch_size: u32,
    /// How long a claimed message is reserved for this worker (default 30 s); after that another
    /// instance may take it.
    pub lease: Duration,
    /// Delivery attempts before a message is given up (default 5).
    pub max_attempts: u32,
    /// Backoff before the first retry (default 2 s), doubled per attempt.
    pub backoff_base: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll_interval: StdDuration::from_millis(200),
            batch_size: 32,
            lease: Duration::seconds(30),
            max_attempts: 5,
            backoff_base: Duration::seconds(2),
        }
    }
}

/// Delivers outbox messages of every market through one provider.
pub struct OutboxWorker {
    repos: Vec<Arc<dyn OutboxRepository>>,
    sender: Arc<dyn MessageSender>,
    sealer: PayloadSealer,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("provider", &self.sender.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What became of one claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Sent,
    Retry,
    GivenUp,
    Expired,
}

impl OutboxWorker {
    /// A worker over `repos` (one per market) delivering through `sender`. `sealer` must be keyed
    /// like the one that sealed the payloads.
    pub fn new(
        repos: Vec<Arc<dyn OutboxRepository>>,
        sender: Arc<dyn MessageSender>,
        sealer: PayloadSealer,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            repos,
            sender,
            sealer,
            clock,
            config,
        }
    }

    /// Polls until `shutdown` is cancelled. A batch in flight is finished before returning, so
    /// no claimed message is left half-done.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(provider = self.sender.name(), "outbox worker started");
        loop {
            let done = self.run_once().await;
            if shutdown.is_cancelled() {
                break;
            }
            if done == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Claims and processes one batch per market; returns how many messages were handled.
    pub async fn run_once(&self) -> usize {
        let mut handled = 0;
        for repo in &self.repos {
            let now = self.clock.now();
            let lease_until = now + self.config.lease;
            let limit = self.config.batch_size;
            let r = Arc::clone(repo);
            let claimed = blocking(move || r.claim_due(now, lease_until, limit)).await;
            let messages = match claimed {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(market = %repo.market(), error = %e, "outbox claim failed");
                    continue;
                }
            };
            for m in messages {
                let id = m.id;
                let fate = self.deliver(repo, m).await;
                tracing::debug!(market = %repo.market(), id, ?fate, "outbox message processed");
                handled += 1;
            }
        }
        handled
    }

    async fn deliver(&self, repo: &Arc<dyn OutboxRepository>, m: OutboxMessage) -> Fate {
        let market = repo.market();
        let now = self.clock.now();
        let id = m.id;
        let r = Arc::clone(repo);
        if now >= m.expires_at {
            log_repo(blocking(move || r.mark_expired(id, now)).await);
            return Fate::Expired;
        }
        let body = match self.sealer.open(&m.sealed_body).map(String::from_utf8) {
            Ok(Ok(body)) => body,
            _ => {
                tracing::error!(%market, id, "outbox payload does not open (SECRET_KEY changed?)");
                log_repo(
                    blocking(move || r.mark_failed(id, now, None, "payload does not open")).await,
                );
                return Fate::GivenUp;
            }
        };
        let msg = OutgoingMessage {
            channel: m.channel,
            market,
            recipient: m.recipient,
            body,
        };
        let result = self.sender.send(&msg).await;
        let now = self.clock.now();
        match result {
            Ok(()) => {
                log_repo(blocking(move || r.mark_sent(id, now)).await);
                Fate::Sent
            }
            Err(e) => {
                let attempts = m.attempts + 1;
                let retry_at = match e {
                    DeliveryError::Transient(_) if attempts < self.config.max_attempts => {
                        let factor = 1i32 << attempts.saturating_sub(1).min(16);
                        Some(now + self.config.backoff_base * factor)
                    }
                    _ => None,
                };
                tracing::warn!(%market, id, attempts, provider = self.sender.name(), error = %e,
                    retry = retry_at.is_some(), "delivery failed");
                let err = e.to_string();
                let fate = if retry_at.is_some() {
                    Fate::Retry
                } else {
                    Fate::GivenUp
                };
                log_repo(blocking(move || r.mark_failed(id, now, retry_at, &err)).await);
                fate
            }
        }
    }
}

fn log_repo(r: Result<(), RepoError>) {
    if let Err(e) = r {
        tracing::warn!(error = %e, "outbox status update failed");
    }
}

/// Runs a synchronous repository call on Tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> Result<T, RepoError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(RepoError::Other(Box::new(e))))
}

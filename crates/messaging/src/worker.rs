use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures_util::stream::{self, StreamExt};
use marque_domain::{
    Accepted, Channel, Clock, DeliveryError, EmailPayload, EmailSender, MessageSender, OtpPayload,
    OutboxMessage, OutboxRepository, OutgoingEmail, OutgoingMessage, OutgoingReply, PayloadSealer,
    RandomSource, ReplyPayload, ReplySender, RepoError, RetryPolicy, SentReceipt,
};
use marque_markets::Market;
use tokio_util::sync::CancellationToken;

use crate::{EmailTemplates, MessageTemplates};

/// Recipients whose messages one worker delivers at the same time, per market: enough to keep
/// providers and the database busy (each delivery waits on a provider call and on the commit of
/// its status), few enough to leave the connection pool and the blocking threads to requests.
pub const CONCURRENT_DELIVERIES: usize = 8;

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
    /// Retries of transient failures on one channel: exponential backoff with jitter, then the
    /// next channel or a dead letter.
    pub retry: RetryPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll_interval: StdDuration::from_millis(200),
            batch_size: 32,
            lease: Duration::seconds(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// The provider of each market and channel. A channel is available in a market when it has a
/// provider here.
#[derive(Clone, Default)]
pub struct Senders {
    by: BTreeMap<(Market, Channel), Arc<dyn MessageSender>>,
}

impl std::fmt::Debug for Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.by
                    .iter()
                    .map(|((m, c), s)| (format!("{}/{}", m.code(), c.as_str()), s.name())),
            )
            .finish()
    }
}

impl Senders {
    /// `sender` delivers `channel` in `market`.
    #[must_use]
    pub fn with(
        mut self,
        market: Market,
        channel: Channel,
        sender: Arc<dyn MessageSender>,
    ) -> Self {
        self.by.insert((market, channel), sender);
        self
    }

    /// `sender` delivers every channel in every market (development console, tests).
    pub fn everywhere(sender: Arc<dyn MessageSender>) -> Self {
        let mut s = Self::default();
        for m in Market::ALL {
            for c in Channel::ALL {
                s = s.with(m, c, Arc::clone(&sender));
            }
        }
        s
    }

    /// The provider of `channel` in `market`.
    pub fn get(&self, market: Market, channel: Channel) -> Option<&Arc<dyn MessageSender>> {
        self.by.get(&(market, channel))
    }

    /// Whether `channel` has a provider in `market`.
    pub fn has(&self, market: Market, channel: Channel) -> bool {
        self.by.contains_key(&(market, channel))
    }
}

/// The mail transport of each market (issue 10): rows on [`Channel::Email`] go through these,
/// never through a [`Senders`] provider.
#[derive(Clone, Default)]
pub struct EmailSenders {
    by: BTreeMap<Market, Arc<dyn EmailSender>>,
}

impl std::fmt::Debug for EmailSenders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.by.iter().map(|(m, s)| (m.code(), s.name())))
            .finish()
    }
}

impl EmailSenders {
    /// `sender` delivers the emails of `market`.
    #[must_use]
    pub fn with(mut self, market: Market, sender: Arc<dyn EmailSender>) -> Self {
        self.by.insert(market, sender);
        self
    }

    /// `sender` delivers the emails of every market.
    pub fn everywhere(sender: Arc<dyn EmailSender>) -> Self {
        Market::ALL
            .into_iter()
            .fold(Self::default(), |s, m| s.with(m, Arc::clone(&sender)))
    }

    /// The transport of `market`.
    pub fn get(&self, market: Market) -> Option<&Arc<dyn EmailSender>> {
        self.by.get(&market)
    }
}

/// Delivers outbox messages of every market through the providers of their channels.
pub struct OutboxWorker {
    repos: Vec<Arc<dyn OutboxRepository>>,
    senders: Senders,
    replies: BTreeMap<Channel, Arc<dyn ReplySender>>,
    email: EmailSenders,
    email_templates: EmailTemplates,
    templates: MessageTemplates,
    sealer: PayloadSealer,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    config: WorkerConfig,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("senders", &self.senders)
            .field("email", &self.email)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What became of one claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Handed to its provider.
    Sent,
    /// Failed transiently; due again later on the same channel.
    Retry,
    /// Failed on its channel; due now on the next one.
    FellBack(Channel),
    /// Dead letter: no channel left, or its payload does not open.
    GivenUp,
    /// Its code expired before delivery.
    Expired,
}

/// What the worker needs besides its repositories and providers.
pub struct WorkerDeps {
    /// Message text per market.
    pub templates: MessageTemplates,
    /// Keyed like the sealer of the payloads.
    pub sealer: PayloadSealer,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Jitter of the backoff.
    pub rng: Arc<dyn RandomSource>,
}

impl OutboxWorker {
    /// A worker over `repos` (one per market) delivering through `senders`.
    pub fn new(
        repos: Vec<Arc<dyn OutboxRepository>>,
        senders: Senders,
        deps: WorkerDeps,
        config: WorkerConfig,
    ) -> Self {
        Self {
            repos,
            senders,
            replies: BTreeMap::new(),
            email: EmailSenders::default(),
            email_templates: EmailTemplates::default(),
            templates: deps.templates,
            sealer: deps.sealer,
            clock: deps.clock,
            rng: deps.rng,
            config,
        }
    }

    /// Sends the messenger replies of `channel` (issue 9: [`ReplyPayload`] rows) through
    /// `sender`. A reply on a channel without one is given up.
    #[must_use]
    pub fn with_replies(mut self, channel: Channel, sender: Arc<dyn ReplySender>) -> Self {
        self.replies.insert(channel, sender);
        self
    }

    /// Sends the emails of the outbox (issue 10: [`Channel::Email`] rows, sealed
    /// [`EmailPayload`]s) rendered by `templates` through each market's transport in `senders`.
    /// Without a transport for its market an email is a dead letter.
    #[must_use]
    pub fn with_email(mut self, templates: EmailTemplates, senders: EmailSenders) -> Self {
        self.email_templates = templates;
        self.email = senders;
        self
    }

    /// Polls until `shutdown` is cancelled. A batch in flight is finished before returning, so
    /// no claimed message is left half-done.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(senders = ?self.senders, "outbox worker started");
        loop {
            let done = self.run_once().await;
            if shutdown.is_cancelled() {
                break;
            }
            if done.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Claims and processes one batch per market; returns each handled message's market, row id
    /// and fate.
    pub async fn run_once(&self) -> Vec<(Market, i64, Fate)> {
        let mut handled = Vec::new();
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
            // Messages to different recipients go out concurrently (issue 13: one after the other,
            // each provider call and each synchronous commit of its status waited for the
            // previous one, ≈ 300 messages a second at most on the reference machine, whatever
            // the provider's speed); a recipient's own messages stay in order, one at a time.
            let mut by_recipient: BTreeMap<String, Vec<OutboxMessage>> = BTreeMap::new();
            for m in messages {
                by_recipient.entry(m.recipient.clone()).or_default().push(m);
            }
            let log = SentLog::default();
            let log = &log;
            let mut done: Vec<(i64, Fate)> = stream::iter(by_recipient.into_values())
                .map(|queue| async move {
                    let mut fates = Vec::with_capacity(queue.len());
                    for m in queue {
                        let id = m.id;
                        let fate = self.deliver(repo, m, log).await;
                        tracing::debug!(market = %repo.market(), id, ?fate, "outbox message processed");
                        fates.push((id, fate));
                    }
                    fates
                })
                .buffer_unordered(CONCURRENT_DELIVERIES)
                .flat_map(stream::iter)
                .collect()
                .await;
            // The messages the providers took, marked sent together (one statement and one
            // commit per batch, not per message: issue 13). Until then they stay leased, so a
            // crash in between sends them again when the lease ends (at least once).
            let sent = log.take();
            if !sent.is_empty() {
                let (now, r) = (self.clock.now(), Arc::clone(repo));
                log_repo(
                    blocking(move || {
                        let receipts: Vec<(i64, SentReceipt<'_>)> = sent
                            .iter()
                            .map(|s| {
                                let receipt = SentReceipt {
                                    provider: s.provider,
                                    provider_message_id: s.provider_message_id.as_deref(),
                                    segments: s.segments,
                                };
                                (s.id, receipt)
                            })
                            .collect();
                        r.mark_sent(now, &receipts)
                    })
                    .await,
                );
            }
            done.sort_by_key(|(id, _)| *id);
            handled.extend(done.into_iter().map(|(id, fate)| (repo.market(), id, fate)));
        }
        handled
    }

    async fn deliver(
        &self,
        repo: &Arc<dyn OutboxRepository>,
        m: OutboxMessage,
        log: &SentLog,
    ) -> Fate {
        let market = repo.market();
        let now = self.clock.now();
        let id = m.id;
        let r = Arc::clone(repo);
        if now >= m.expires_at {
            log_repo(blocking(move || r.mark_expired(id, now)).await);
            return Fate::Expired;
        }
        let opened = self.sealer.open(&m.sealed_body).ok();
        // The row's channel decides the path: an email row never reaches an SMS or messenger
        // provider, and a code or reply row never reaches a mail transport.
        if m.channel == Channel::Email {
            if let Some(email) = opened.as_deref().and_then(EmailPayload::decode) {
                return self.deliver_email(repo, &m, email, log).await;
            }
            let why = if opened.is_some() {
                "not an email payload on the email channel"
            } else {
                "payload does not open"
            };
            tracing::error!(%market, id, why, "outbox email given up");
            log_repo(blocking(move || r.mark_failed(id, now, None, why)).await);
            return Fate::GivenUp;
        }
        let payload = opened.as_deref().and_then(OtpPayload::decode);
        if payload.is_none()
            && let Some(reply) = opened.as_deref().and_then(ReplyPayload::decode)
        {
            return self.deliver_reply(repo, &m, reply, log).await;
        }
        let Some(payload) = payload else {
            tracing::error!(%market, id, "outbox payload does not open (SECRET_KEY changed?)");
            log_repo(blocking(move || r.mark_failed(id, now, None, "payload does not open")).await);
            return Fate::GivenUp;
        };
        let Some(sender) = self.senders.get(market, m.channel) else {
            let err = DeliveryError::Permanent(format!("no provider for {}", m.channel));
            return self.failed(repo, &m, "none", err).await;
        };
        let (text, segments) = if m.channel == Channel::Sms {
            let sms = self.templates.render_sms(
                market,
                payload.purpose,
                &payload.code,
                payload.ttl_minutes,
            );
            (sms.text, Some(sms.segments))
        } else {
            let text =
                self.templates
                    .render(market, payload.purpose, &payload.code, payload.ttl_minutes);
            (text, None)
        };
        let msg = OutgoingMessage {
            id: format!("{}-{id}", market.code()),
            channel: m.channel,
            market,
            language: market.language(),
            recipient: m.recipient.clone(),
            code: payload.code,
            purpose: payload.purpose,
            text,
            expires_at: m.expires_at,
        };
        let provider = sender.name();
        // Wall time of the provider call (a monotonic measure, not the injected clock: this is
        // latency, not a business time). Recorded through the `metrics` facade (a no-op without
        // a recorder): `marque_delivery_duration_seconds{provider, channel, result}`.
        let started = std::time::Instant::now();
        let sent = sender.send(&msg).await;
        metrics::histogram!(
            "marque_delivery_duration_seconds",
            "provider" => provider,
            "channel" => m.channel.as_str(),
            "result" => if sent.is_ok() { "accepted" } else { "failed" },
        )
        .record(started.elapsed().as_secs_f64());
        match sent {
            Ok(accepted) => log.sent(id, provider, accepted, segments),
            Err(e) => self.failed(repo, &m, provider, e).await,
        }
    }

    /// Renders an email in the market's language and hands it to the market's transport; a
    /// failure is retried like any message, and is a dead letter once permanent (no fallback
    /// channel for emails).
    async fn deliver_email(
        &self,
        repo: &Arc<dyn OutboxRepository>,
        m: &OutboxMessage,
        payload: EmailPayload,
        log: &SentLog,
    ) -> Fate {
        let market = repo.market();
        let Some(sender) = self.email.get(market) else {
            let err = DeliveryError::Permanent("no email transport".into());
            return self.failed(repo, m, "none", err).await;
        };
        let language = market.language();
        let rendered = match self.email_templates.render(language, &payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(%market, id = m.id, kind = payload.kind.as_str(), error = %e,
                    "email template failed");
                let err = DeliveryError::Permanent("email template failed".into());
                return self.failed(repo, m, "none", err).await;
            }
        };
        let email = OutgoingEmail {
            id: format!("{}-{}", market.code(), m.id),
            market,
            language,
            kind: payload.kind,
            to: m.recipient.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        };
        let provider = sender.name();
        let started = std::time::Instant::now();
        let sent = sender.send(&email).await;
        metrics::histogram!(
            "marque_delivery_duration_seconds",
            "provider" => provider,
            "channel" => Channel::Email.as_str(),
            "result" => if sent.is_ok() { "accepted" } else { "failed" },
        )
        .record(started.elapsed().as_secs_f64());
        match sent {
            Ok(accepted) => log.sent(m.id, provider, accepted, None),
            Err(e) => self.failed(repo, m, provider, e).await,
        }
    }

    /// Sends a messenger reply (no fallback: a reply only makes sense where it was asked).
    async fn deliver_reply(
        &self,
        repo: &Arc<dyn OutboxRepository>,
        m: &OutboxMessage,
        payload: ReplyPayload,
        log: &SentLog,
    ) -> Fate {
        let market = repo.market();
        let Some(sender) = self.replies.get(&m.channel) else {
            let err = DeliveryError::Permanent(format!("no reply sender for {}", m.channel));
            return self.failed(repo, m, "none", err).await;
        };
        let reply = OutgoingReply {
            id: format!("{}-{}", market.code(), m.id),
            channel: m.channel,
            recipient: m.recipient.clone(),
            payload,
        };
        let provider = sender.name();
        match sender.reply(&reply).await {
            Ok(accepted) => log.sent(m.id, provider, accepted, None),
            Err(e) => self.failed(repo, m, provider, e).await,
        }
    }

    /// A failed attempt: a transient failure is retried with backoff while attempts remain; a
    /// permanent one, or the last attempt, moves the message to the next channel with a provider
    /// (each channel once); with none left it is a dead letter.
    async fn failed(
        &self,
        repo: &Arc<dyn OutboxRepository>,
        m: &OutboxMessage,
        provider: &'static str,
        e: DeliveryError,
    ) -> Fate {
        let market = repo.market();
        let now = self.clock.now();
        let id = m.id;
        let attempts = m.attempts + 1;
        let retry_at = match e {
            DeliveryError::Transient(_) => {
                let mut jitter = [0u8; 4];
                self.rng.fill_bytes(&mut jitter);
                self.config
                    .retry
                    .retry_at(now, attempts, u32::from_le_bytes(jitter))
            }
            DeliveryError::Permanent(_) => None,
        };
        let err = e.to_string();
        let r = Arc::clone(repo);
        if let Some(at) = retry_at {
            tracing::info!(%market, id, attempts, provider, error = %e, "delivery failed; will retry");
            log_repo(blocking(move || r.mark_failed(id, now, Some(at), &err)).await);
            return Fate::Retry;
        }
        // Emails have no other channel to fall back to.
        let fallback: &[Channel] = if m.channel == Channel::Email {
            &[]
        } else {
            &m.fallback
        };
        let mut rest = fallback
            .iter()
            .copied()
            .skip_while(|c| *c == Channel::Email || !self.senders.has(market, *c));
        if let Some(next) = rest.next() {
            let remaining: Vec<Channel> = rest.collect();
            tracing::info!(%market, id, provider, error = %e, from = %m.channel, to = %next,
                "delivery failed; falling back to the next channel");
            log_repo(blocking(move || r.fall_back(id, now, next, &remaining, &err)).await);
            return Fate::FellBack(next);
        }
        tracing::warn!(%market, id, attempts, provider, error = %e, "delivery given up");
        log_repo(blocking(move || r.mark_failed(id, now, None, &err)).await);
        Fate::GivenUp
    }
}

/// A message its provider took, to be marked sent with the rest of its batch.
#[derive(Debug)]
struct SentMessage {
    id: i64,
    provider: &'static str,
    provider_message_id: Option<String>,
    segments: Option<u32>,
}

/// The messages of one batch that their providers took (deliveries of a batch run concurrently
/// on one task; the lock is never held across an await).
#[derive(Debug, Default)]
struct SentLog(std::sync::Mutex<Vec<SentMessage>>);

impl SentLog {
    /// Records a message its provider took.
    fn sent(
        &self,
        id: i64,
        provider: &'static str,
        accepted: Accepted,
        segments: Option<u32>,
    ) -> Fate {
        let message = SentMessage {
            id,
            provider,
            provider_message_id: accepted.provider_message_id,
            segments,
        };
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message);
        Fate::Sent
    }

    /// The recorded messages, leaving none.
    fn take(&self) -> Vec<SentMessage> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
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

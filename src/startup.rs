//! Wiring: configuration → stores → domain services → HTTP server and delivery worker.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use marque_api::{ApiState, HttpSettings};
use marque_domain::{
    AccountLimits, AccountRepository, AccountService, AdminKey, AdminRepository, AdminService,
    AuthDeps, AuthRepository, AuthService, Clock, DeliveryTracker, EmailAuthConfig, EmailAuthDeps,
    EmailAuthService, EmailRepository, ExposeSecret, KeyRing, MessageSender, MessengerDeps,
    MessengerRepository, MessengerService, OutboxRepository, PasswordHashing, RetentionRepository,
    RetentionService, SystemClock, ThreadCsprng, TokenService,
};
use marque_markets::Market;
use marque_messaging::{OutboxWorker, Senders, SiteVerify, WorkerConfig, WorkerDeps};
use marque_store::MarketStore;
use tokio_util::sync::CancellationToken;

use crate::settings::{Config, Environment, JwtKeys};

/// Replacements for the production collaborators, for tests.
#[derive(Default)]
pub struct Overrides {
    /// Clock (default: system clock).
    pub clock: Option<Arc<dyn Clock>>,
    /// One provider for every market and channel (default: from the delivery settings).
    pub sender: Option<Arc<dyn MessageSender>>,
    /// One mail transport for every market (default: from `EMAIL_PROVIDER`).
    pub email: Option<Arc<dyn marque_domain::EmailSender>>,
}

/// Opens every market database (PostgreSQL or SQLite by URL) and runs its migrations.
pub async fn open_stores(config: &Config) -> anyhow::Result<Vec<MarketStore>> {
    let mut stores = Vec::new();
    let size = config.settings.database.database_pool_size.as_u32();
    let timeout = config.connect_timeout();
    for market in Market::ALL {
        let url = config.database_url(market);
        let store = tokio::task::spawn_blocking(move || -> anyhow::Result<MarketStore> {
            let store = MarketStore::connect(market, url.secret().expose_secret(), size, timeout)
                .with_context(|| format!("connecting to the {market} database"))?;
            store
                .migrate()
                .with_context(|| format!("migrating the {market} database"))?;
            Ok(store)
        })
        .await
        .context("database start-up task failed")??;
        tracing::info!(%market, backend = ?store.backend(), "market database ready");
        stores.push(store);
    }
    Ok(stores)
}

/// A running service: HTTP server, outbox worker and retention job.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    worker: tokio::task::JoinHandle<()>,
    retention: tokio::task::JoinHandle<()>,
    metrics: tokio::task::JoinHandle<()>,
    metrics_port: Option<u16>,
    shutdown: CancellationToken,
}

/// Runs the `METRICS_ADDR` server, if any, and drains the histograms' sample buffers every few
/// seconds (the exporter buffers samples until a scrape or upkeep), until `shutdown`.
async fn run_metrics(
    server: Option<actix_web::dev::Server>,
    exporter: marque_api::metrics::Exporter,
    shutdown: CancellationToken,
) {
    let handle = server.as_ref().map(actix_web::dev::Server::handle);
    if let Some(server) = server {
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(5)) => exporter.run_upkeep(),
        }
    }
    if let Some(handle) = handle {
        handle.stop(true).await;
    }
}

/// Purges every market at start and then every `interval`, until `shutdown` is cancelled. The
/// purge runs on the blocking pool (diesel is synchronous).
async fn run_retention(
    service: Arc<RetentionService>,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(policy = ?service.policy(), "retention job started");
    loop {
        let s = service.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || s.run_once()).await {
            tracing::error!(error = %e, "retention purge task failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("retention job stopped");
}

impl Application {
    /// Builds everything from `config` and binds the listener (port 0 picks a free one).
    pub async fn build(config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        marque_markets::warm_up();
        if config.secret_generated {
            tracing::warn!(
                "SECRET_KEY is not set: using a random key for this run. Tokens will not survive a \
                 restart and instances will not accept each other's tokens. Set SECRET_KEY."
            );
        }
        let settings = &config.settings;
        if settings.service.marque_env == Environment::Production
            && !config.auth.test_numbers.is_empty()
        {
            tracing::warn!(
                count = config.auth.test_numbers.len(),
                "TEST_PHONE_NUMBERS is set in production: these numbers sign in with fixed codes"
            );
        }
        let stores = open_stores(&config).await?;
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let clock_for_metrics = clock.clone();
        // Every key comes from SECRET_KEY through HKDF, one label each (RFC 5869; issue 12).
        let keys = KeyRing::derive(config.secret_key.expose_secret().as_bytes());
        let sealer = keys.outbox_sealer();
        let auth_repos: Vec<Arc<dyn AuthRepository>> = stores
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn AuthRepository>)
            .collect();
        let retention_repos: Vec<Arc<dyn RetentionRepository>> = stores
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn RetentionRepository>)
            .collect();
        let retention = Arc::new(RetentionService::new(
            retention_repos,
            clock.clone(),
            config.retention_policy(),
        ));
        let outbox_repos: Vec<Arc<dyn OutboxRepository>> = stores
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn OutboxRepository>)
            .collect();
        let issuer = settings.tokens.jwt_issuer.as_str().to_owned();
        let ttl = config.access_token_ttl();
        let tokens = match &config.jwt_keys {
            JwtKeys::Derived { retired } => {
                TokenService::ed25519(&keys.jwt_signing_key(), retired, issuer, ttl)
                    .context("loading the JWT verification keys")?
            }
            JwtKeys::File { signing, retired } => {
                TokenService::ed25519(signing, retired, issuer, ttl)
                    .context("loading the JWT signing keys")?
            }
        }
        .with_audience(
            settings
                .tokens
                .jwt_audience
                .as_ref()
                .map(|a| a.as_str().to_owned()),
        );
        let account_repos: Vec<Arc<dyn AccountRepository>> = stores
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn AccountRepository>)
            .collect();
        let account = Arc::new(AccountService::new(
            account_repos,
            clock.clone(),
            AccountLimits::default(),
        ));
        let auth = AuthService::new(
            AuthDeps {
                repos: auth_repos,
                clock: clock.clone(),
                rng: Arc::new(ThreadCsprng),
                hasher: keys.otp_hasher(),
                outbox_sealer: sealer.clone(),
                refresh_keys: keys.refresh_keys(),
                tokens,
            },
            config.auth.clone(),
        )
        .with_sign_in_observer(account.clone());
        let auth = match config.captcha() {
            Some((provider, url, secret)) => {
                // Bounded so a slow provider cannot hold send-code requests for long.
                let verifier =
                    SiteVerify::new(provider, url.as_deref(), secret, Duration::from_secs(5))
                        .context("building the CAPTCHA client")?;
                tracing::info!(
                    provider = provider.name(),
                    "send-code requires a CAPTCHA token"
                );
                auth.with_captcha(Arc::new(verifier))
            }
            None => auth,
        };
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let senders = match overrides.sender {
            Some(sender) => Senders::everywhere(sender),
            None => crate::delivery::senders(&config, &crate::delivery::http_client()?, &clock)?,
        };
        let auth = Arc::new(auth);
        // Messenger login (issue 9): its replies are not codes, so the `sender` override of
        // tests does not replace them.
        let wiring = crate::delivery::messenger(&config, &crate::delivery::http_client()?);
        let tracker = Arc::new(DeliveryTracker::new(outbox_repos.clone(), clock.clone()));
        let messenger = wiring.any().then(|| {
            let repos: Vec<Arc<dyn MessengerRepository>> = stores
                .iter()
                .map(|s| Arc::new(s.clone()) as Arc<dyn MessengerRepository>)
                .collect();
            let mut service = MessengerService::new(
                MessengerDeps {
                    auth: auth.clone(),
                    repos,
                    clock: clock.clone(),
                    rng: Arc::new(ThreadCsprng),
                    hasher: keys.messenger_hasher(),
                    sealer: sealer.clone(),
                },
                wiring.config.clone(),
            );
            for hook in &wiring.webhooks {
                service = service.with_webhook(hook.clone());
            }
            if let Some(widget) = &wiring.widget {
                service = service.with_widget(widget.clone());
            }
            // WhatsApp's status updates are the delivery reports of the codes it carried.
            Arc::new(service.with_delivery_tracker(tracker.clone()))
        });
        // Email-and-password accounts (issue 10): Argon2id with the configured cost (its dummy
        // hash is made here, once), sessions and limits through the phone-login service.
        let passwords = &settings.passwords;
        let hashing = PasswordHashing::new(passwords.cost(), &ThreadCsprng)
            .context("ARGON2_* settings refused by Argon2")?;
        let email_repos: Vec<Arc<dyn EmailRepository>> = stores
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn EmailRepository>)
            .collect();
        let email = EmailAuthService::new(
            EmailAuthDeps {
                auth: auth.clone(),
                repos: email_repos,
                clock: clock.clone(),
                rng: Arc::new(ThreadCsprng),
                hashing,
                keys: keys.email_token_keys(),
                sealer: sealer.clone(),
            },
            EmailAuthConfig {
                default_market: settings.server.default_market,
                ..EmailAuthConfig::default()
            },
        );
        let email = marque_api::email::EmailState::new(
            Arc::new(email),
            passwords.password_hash_concurrency.as_usize(),
        );
        let callback_clock = clock.clone();
        let mut worker_config = WorkerConfig {
            poll_interval: config.outbox_poll_interval(),
            ..WorkerConfig::default()
        };
        worker_config.retry.max_attempts = settings.delivery.outbox_max_attempts.as_u32();
        let worker = OutboxWorker::new(
            outbox_repos,
            senders,
            WorkerDeps {
                templates: crate::delivery::templates(&config),
                sealer,
                clock: clock.clone(),
                rng: Arc::new(ThreadCsprng),
            },
            worker_config,
        );
        // The admin API exists only with ADMIN_API_KEY (issue 11); the key is never logged, only
        // its fingerprint, which audit rows carry too.
        let admin = settings.admin.admin_api_key.as_ref().map(|key| {
            let key = AdminKey::new(key.secret());
            tracing::info!(key = key.fingerprint(), "admin API on");
            let repos: Vec<Arc<dyn AdminRepository>> = stores
                .iter()
                .map(|s| Arc::new(s.clone()) as Arc<dyn AdminRepository>)
                .collect();
            Arc::new(AdminService::new(repos, clock.clone(), key))
        });
        let worker = wiring.replies.iter().fold(worker, |w, (channel, sender)| {
            w.with_replies(*channel, sender.clone())
        });
        let email_senders = match overrides.email {
            Some(sender) => marque_messaging::EmailSenders::everywhere(sender),
            None => crate::delivery::email_senders(&config)?,
        };
        let host = settings.server.host.as_str();
        let listener = TcpListener::bind((host, config.listen_port))
            .with_context(|| format!("binding {host}:{}", config.listen_port))?;
        let port = listener.local_addr()?.port();
        // Email links need the bound port when PUBLIC_BASE_URL is unset (development).
        let worker = worker.with_email(
            crate::delivery::email_templates(&config, port),
            email_senders,
        );
        let state = ApiState {
            auth,
            account,
            default_market: settings.server.default_market,
            trusted_proxies: config.trusted_proxies(),
            delivery: marque_api::delivery::DeliveryState {
                tracker: Some(tracker),
                callbacks: crate::delivery::callbacks(&config, &callback_clock),
                public_base_url: settings
                    .delivery
                    .public_base_url
                    .as_ref()
                    .map(|u| u.as_str().to_owned()),
            },
            admin,
            messenger,
            email: Some(email),
        };
        let exporter = marque_api::metrics::Exporter::new(
            marque_api::metrics::install().context("installing the metrics recorder")?,
            crate::metrics::collector(
                stores.clone(),
                state.auth.sms_guard_metrics(),
                clock_for_metrics,
            ),
        );
        // `METRICS_ADDR`: the metrics on their own listener, else on the API's port.
        let (metrics_server, metrics_port) = match &settings.server.metrics_addr {
            Some(addr) => {
                let addr = addr.as_str();
                let listener = TcpListener::bind(addr)
                    .with_context(|| format!("binding METRICS_ADDR {addr}"))?;
                let bound = listener.local_addr()?;
                tracing::info!(address = %bound, "metrics listening");
                (
                    Some(marque_api::metrics_server(listener, exporter.clone())?),
                    Some(bound.port()),
                )
            }
            None => (None, None),
        };
        let http = HttpSettings {
            allowed_origins: config.allowed_origins(),
            workers: Some(config.workers()),
            shutdown_timeout_secs: None,
            max_blocking_threads: Some(config.blocking_threads()),
            edge: config.edge(),
            metrics: metrics_server.is_none().then(|| exporter.clone()),
        };
        let server = marque_api::server(listener, state, http)?;
        let shutdown = CancellationToken::new();
        let metrics = tokio::spawn(run_metrics(metrics_server, exporter, shutdown.clone()));
        let worker = tokio::spawn(worker.run(shutdown.clone()));
        let retention = tokio::spawn(run_retention(
            retention,
            config.retention_interval(),
            shutdown.clone(),
        ));
        tracing::info!(address = %format!("{host}:{port}"), "marque listening");
        Ok(Self {
            port,
            server,
            worker,
            retention,
            metrics,
            metrics_port,
            shutdown,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `METRICS_ADDR` listener, when set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// A handle that stops the server gracefully (as SIGTERM does).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGTERM/SIGINT or [`Application::handle`]), then lets
    /// in-flight requests finish and stops the delivery worker after its current batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        if let Err(e) = self.worker.await {
            tracing::error!(error = %e, "outbox worker ended abnormally");
        }
        if let Err(e) = self.retention.await {
            tracing::error!(error = %e, "retention job ended abnormally");
        }
        if let Err(e) = self.metrics.await {
            tracing::error!(error = %e, "metrics task ended abnormally");
        }
        tracing::info!("marque stopped");
        result.context("HTTP server failed")
    }
}

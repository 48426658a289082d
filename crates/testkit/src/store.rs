//! A migrated store on a throwaway database, and a switch that takes it down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer, Nullable, Text};
use marque_domain::{
    AccountRepository, Address, AddressId, AddressRecord, AuditRecord, AuditRepository,
    AuthRepository, BucketState, ChallengeDelivery, Channel, DeleteAccount, DeliveryReport, Insert,
    IssueChallenge, IssueOutcome, NewAddress, NewNotification, NewPaymentMethod, Notification,
    NotificationId, NotificationPage, NotificationQuery, OutboxMessage, OutboxRepository,
    PaymentMethod, PaymentMethodId, PaymentMethodRecord, ProfileUpdate, Purged, RepoError,
    RetentionPolicy, RetentionRepository, RevokeScope, RotateOutcome, RotateRefresh, SentReceipt,
    SessionId, SessionInfo, StoredAudit, User, UserId, VerifyChallenge, VerifyOutcome,
};
use marque_markets::Market;
use marque_store::{Backend, MarketStore};

use crate::TestDatabase;

/// Runs `$body` with `$c` bound to a fresh connection of either backend to the test database,
/// panicking with the SQL on failure.
macro_rules! on_connection {
    ($self:expr, $sql:expr, |$c:ident| $body:expr) => {{
        let url = $self.db.url();
        let result = match $self.backend {
            Backend::Postgres => {
                let $c = &mut PgConnection::establish(url).expect("connect to the test database");
                $body
            }
            Backend::Sqlite => {
                let path = url.strip_prefix("sqlite://").expect("a sqlite:// URL");
                let $c = &mut crate::sqlite_connection(path);
                diesel::sql_query("PRAGMA foreign_keys = ON")
                    .execute($c)
                    .expect("enable foreign keys");
                $body
            }
        };
        result.unwrap_or_else(|e| panic!("{}: {e}", $sql))
    }};
}

/// A migrated [`MarketStore`] of one market on its own throwaway database. Fields drop in
/// order: the pools close before the database is deleted.
pub struct TestStore {
    /// The store itself.
    pub store: MarketStore,
    /// The same store behind an outage switch, for wiring services.
    switch: Arc<Switch>,
    /// Its backend.
    pub backend: Backend,
    db: TestDatabase,
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("store", &self.store)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl TestStore {
    /// A migrated store of `market` on a fresh database of `backend`; `None` for PostgreSQL when
    /// [`crate::POSTGRES_URL_VAR`] is not set (see [`crate::postgres_admin_url`]).
    pub fn new(backend: Backend, market: Market) -> Option<Self> {
        let db = match backend {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => {
                let admin = crate::postgres_admin_url()?;
                TestDatabase::postgres(&admin).expect("create a PostgreSQL test database")
            }
        };
        let store = MarketStore::connect(market, db.url(), 8, StdDuration::from_secs(10))
            .expect("connect to the test database");
        store.migrate().expect("migrate the test database");
        assert_eq!(store.market(), market);
        assert_eq!(store.backend(), backend);
        Some(Self {
            switch: Arc::new(Switch::new(store.clone())),
            store,
            backend,
            db,
        })
    }

    /// A migrated store of `market` on a fresh SQLite file.
    pub fn sqlite(market: Market) -> Self {
        Self::new(Backend::Sqlite, market).expect("SQLite is always available")
    }

    /// The database URL (`sqlite://…` or `postgres://…`).
    pub fn db_url(&self) -> &str {
        self.db.url()
    }

    /// The store behind its outage switch, as the services take it.
    pub fn repo(&self) -> Arc<Switch> {
        self.switch.clone()
    }

    /// Takes the store down (`true`: every call through [`TestStore::repo`] fails with
    /// [`RepoError::Unavailable`]) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.switch.set_down(down);
    }

    /// Makes every call through [`TestStore::repo`] wait `stall` first, like a database that
    /// hangs (zero: no wait).
    pub fn set_stall(&self, stall: std::time::Duration) {
        self.switch.set_stall(stall);
    }

    /// Runs `sql` on a connection of its own; returns the `BIGINT` column `v` of the first row,
    /// or the number of rows changed when `sql` is not a query.
    pub fn sql(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        let is_query = sql.trim_start().to_ascii_uppercase().starts_with("SELECT");
        on_connection!(self, sql, |c| if is_query {
            diesel::sql_query(sql).get_result::<Value>(c).map(|r| r.v)
        } else {
            diesel::sql_query(sql)
                .execute(c)
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        })
    }

    /// Number of users stored.
    pub fn user_count(&self) -> i64 {
        self.sql("SELECT COUNT(*) AS v FROM users")
    }

    /// Every outbox message, oldest first.
    pub fn outbox(&self) -> Vec<OutboxRow> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            status: String,
            #[diesel(sql_type = Integer)]
            attempts: i32,
            #[diesel(sql_type = Text)]
            recipient: String,
            #[diesel(sql_type = Binary)]
            payload: Vec<u8>,
            #[diesel(sql_type = Text)]
            channel: String,
            #[diesel(sql_type = Nullable<Text>)]
            fallback_from: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            provider: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            provider_message_id: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            delivery_status: Option<String>,
            #[diesel(sql_type = Nullable<Integer>)]
            segments: Option<i32>,
            #[diesel(sql_type = Nullable<Text>)]
            last_error: Option<String>,
        }
        let sql = "SELECT status, attempts, recipient, payload, channel, fallback_from, provider, \
                   provider_message_id, delivery_status, segments, last_error FROM outbox ORDER BY id";
        let rows: Vec<Row> = on_connection!(self, sql, |c| diesel::sql_query(sql).load(c));
        rows.into_iter()
            .map(|r| OutboxRow {
                status: r.status,
                attempts: r.attempts,
                recipient: r.recipient,
                payload: r.payload,
                channel: r.channel,
                fallback_from: r.fallback_from,
                provider: r.provider,
                provider_message_id: r.provider_message_id,
                delivery_status: r.delivery_status,
                segments: r.segments,
                last_error: r.last_error,
            })
            .collect()
    }

    /// Writes `message` to the outbox as pending and due at `now` (as the domain's own
    /// transactions do), e.g. an email row (issue 10) for worker tests.
    pub fn queue_outbox(&self, message: &marque_domain::NewOutboxMessage, now: DateTime<Utc>) {
        marque_domain::MessengerRepository::queue_reply(&self.store, message, now).unwrap();
    }

    /// Sealed bodies of the pending messages for `recipient`, oldest first.
    pub fn pending_bodies(&self, recipient: &str) -> Vec<Vec<u8>> {
        self.outbox()
            .into_iter()
            .filter(|r| r.status == "pending" && r.recipient == recipient)
            .map(|r| r.payload)
            .collect()
    }
}

/// A row of the outbox table as tests inspect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// `pending`, `sent`, `failed` or `expired`.
    pub status: String,
    /// Failed delivery attempts.
    pub attempts: i32,
    /// E.164 recipient.
    pub recipient: String,
    /// Sealed body; empty once scrubbed.
    pub payload: Vec<u8>,
    /// Current channel.
    pub channel: String,
    /// First channel tried, once fallen back.
    pub fallback_from: Option<String>,
    /// Provider that took it.
    pub provider: Option<String>,
    /// The provider's message id.
    pub provider_message_id: Option<String>,
    /// `delivered` / `undelivered` from a report.
    pub delivery_status: Option<String>,
    /// SMS segments.
    pub segments: Option<i32>,
    /// Last provider error.
    pub last_error: Option<String>,
}

impl OutboxRow {
    /// Whether the body has been scrubbed.
    pub fn scrubbed(&self) -> bool {
        self.payload.is_empty()
    }
}

/// The real store, unless switched off: then every call fails as an unreachable database
/// would, with [`RepoError::Unavailable`]. Not a second implementation: every call is the store's.
#[derive(Debug)]
pub struct Switch {
    inner: MarketStore,
    down: AtomicBool,
    /// Milliseconds every call waits first, as a database that hangs would make it.
    stall_ms: AtomicU64,
}

impl Switch {
    /// `inner`, up.
    pub fn new(inner: MarketStore) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            stall_ms: AtomicU64::new(0),
        }
    }

    /// Makes every call wait `stall` first (zero: no wait), like a database that does not answer.
    pub fn set_stall(&self, stall: std::time::Duration) {
        let ms = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX);
        self.stall_ms.store(ms, Ordering::SeqCst);
    }

    /// Switches the store off (`true`) or on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn gate(&self) -> Result<(), RepoError> {
        let stall = self.stall_ms.load(Ordering::SeqCst);
        if stall > 0 {
            std::thread::sleep(std::time::Duration::from_millis(stall));
        }
        if self.down.load(Ordering::SeqCst) {
            Err(RepoError::Unavailable("test store switched off".into()))
        } else {
            Ok(())
        }
    }
}

/// Forwards each listed method of `$trait` to the inner store once the gate is open.
macro_rules! gated {
    ($trait:path { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )* }) => {
        impl $trait for Switch {
            fn market(&self) -> Market {
                self.inner.market()
            }
            $(
                fn $name(&self $(, $arg: $ty)*) -> Result<$ret, RepoError> {
                    self.gate()?;
                    <MarketStore as $trait>::$name(&self.inner $(, $arg)*)
                }
            )*
        }
    };
}

impl AuditRepository for Switch {
    fn record_audit(&self, record: &AuditRecord) -> Result<(), RepoError> {
        self.gate()?;
        self.inner.record_audit(record)
    }

    fn recent_audit(&self, limit: u32) -> Result<Vec<StoredAudit>, RepoError> {
        self.gate()?;
        self.inner.recent_audit(limit)
    }
}

impl marque_domain::AdminRepository for Switch {
    fn user_by_phone(
        &self,
        phone: &marque_markets::PhoneNumber,
    ) -> Result<Option<marque_domain::AdminUser>, RepoError> {
        self.gate()?;
        self.inner.user_by_phone(phone)
    }

    fn set_user_active(
        &self,
        user: UserId,
        active: bool,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<Option<marque_domain::ActiveChange>, RepoError> {
        self.gate()?;
        self.inner.set_user_active(user, active, now, audit)
    }

    fn end_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<Option<u64>, RepoError> {
        self.gate()?;
        self.inner.end_user_sessions(user, now, audit)
    }

    fn audit_rows(&self, query: &marque_domain::AuditQuery) -> Result<Vec<StoredAudit>, RepoError> {
        self.gate()?;
        self.inner.audit_rows(query)
    }

    fn outbox_rows(
        &self,
        query: &marque_domain::OutboxQuery,
    ) -> Result<Vec<marque_domain::OutboxSummary>, RepoError> {
        self.gate()?;
        self.inner.outbox_rows(query)
    }
}

gated!(RetentionRepository {
    fn purge(&self, now: DateTime<Utc>, policy: &RetentionPolicy) -> Purged;
});

gated!(AuthRepository {
    fn ping(&self) -> ();
    fn issue_challenge(&self, cmd: IssueChallenge) -> IssueOutcome;
    fn bucket_states(&self, buckets: &[&str]) -> Vec<Option<BucketState>>;
    fn verify_challenge(&self, cmd: VerifyChallenge<'_>) -> VerifyOutcome;
    fn active_session(&self, session: &SessionId, user: UserId, now: DateTime<Utc>) -> Option<DateTime<Utc>>;
    fn session_user(&self, session: &SessionId, user: UserId, now: DateTime<Utc>) -> Option<User>;
    fn update_profile(&self, user: UserId, update: &ProfileUpdate, now: DateTime<Utc>) -> Option<User>;
    fn revoke_session(&self, session: &SessionId, now: DateTime<Utc>) -> bool;
    fn revoke_sessions(&self, user: UserId, scope: &RevokeScope, now: DateTime<Utc>) -> u64;
    fn list_sessions(&self, user: UserId, now: DateTime<Utc>) -> Vec<SessionInfo>;
    fn rotate_refresh(&self, cmd: RotateRefresh<'_>) -> RotateOutcome;
    fn delete_account(&self, cmd: DeleteAccount<'_>) -> VerifyOutcome;
    fn sign_in_proven(&self, cmd: marque_domain::SignInProven<'_>) -> VerifyOutcome;
    fn telegram_user_phone(&self, telegram_user: i64) -> Option<String>;
    fn telegram_link(&self, user: UserId) -> Option<marque_domain::TelegramLink>;
    fn unlink_telegram(&self, user: UserId) -> bool;
});

gated!(AccountRepository {
    fn addresses(&self, user: UserId) -> Vec<Address>;
    fn address(&self, user: UserId, id: AddressId) -> Option<Address>;
    fn insert_address(&self, user: UserId, new: &NewAddress, max: u32, now: DateTime<Utc>) -> Insert<Address>;
    fn update_address(&self, user: UserId, id: AddressId, record: &AddressRecord, make_default: bool, now: DateTime<Utc>) -> Option<Address>;
    fn delete_address(&self, user: UserId, id: AddressId) -> bool;
    fn payment_methods(&self, user: UserId) -> Vec<PaymentMethod>;
    fn payment_method(&self, user: UserId, id: PaymentMethodId) -> Option<PaymentMethod>;
    fn insert_payment_method(&self, user: UserId, new: &NewPaymentMethod, max: u32, now: DateTime<Utc>) -> Insert<PaymentMethod>;
    fn update_payment_method(&self, user: UserId, id: PaymentMethodId, record: &PaymentMethodRecord, make_default: bool, now: DateTime<Utc>) -> Option<PaymentMethod>;
    fn delete_payment_method(&self, user: UserId, id: PaymentMethodId) -> bool;
    fn notifications(&self, user: UserId, query: &NotificationQuery) -> NotificationPage;
    fn insert_notification(&self, user: UserId, new: &NewNotification, now: DateTime<Utc>) -> Option<Notification>;
    fn mark_notification_read(&self, user: UserId, id: NotificationId, now: DateTime<Utc>) -> Option<Notification>;
    fn mark_all_notifications_read(&self, user: UserId, now: DateTime<Utc>) -> u64;
    fn notify_unknown_device(&self, user: UserId, session: &SessionId, user_agent: Option<&str>, notice: &NewNotification, now: DateTime<Utc>) -> bool;
});

gated!(OutboxRepository {
    fn claim_due(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> Vec<OutboxMessage>;
    fn mark_sent(&self, now: DateTime<Utc>, sent: &[(i64, SentReceipt<'_>)]) -> ();
    fn fall_back(&self, id: i64, now: DateTime<Utc>, next: Channel, remaining: &[Channel], error: &str) -> ();
    fn record_report(&self, provider: &str, report: &DeliveryReport, now: DateTime<Utc>) -> bool;
    fn challenge_delivery(&self, challenge_id: &str) -> Option<ChallengeDelivery>;
    fn mark_failed(&self, id: i64, now: DateTime<Utc>, retry_at: Option<DateTime<Utc>>, error: &str) -> ();
    fn mark_expired(&self, id: i64, now: DateTime<Utc>) -> ();
});

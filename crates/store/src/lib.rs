//! Marque Auth storage: one [`MarketStore`] per market database, on PostgreSQL (production) or
//! SQLite (embedded default), chosen by the URL scheme.
//!
//! - diesel with `#[derive(MultiConnection)]`: queries are written once for both backends; the
//!   few places where they must differ (write transactions, row locks) live in one module.
//! - r2d2 pool per market; connection failures and pool timeouts are
//!   [`marque_domain::RepoError::Unavailable`], other database errors `Other`, each with a
//!   [`DbError`] as its source. No message ever contains a password from a URL.
//! - Embedded migrations per backend: the tables alike in every market once
//!   (`migrations-common/{postgres,sqlite}`), the ones that differ per market
//!   (`migrations-kg/…`, `migrations-us/…`), run in that order by [`MarketStore::migrate`].
//! - Implements the domain's [`marque_domain::AuthRepository`] and
//!   [`marque_domain::OutboxRepository`]: every read-then-decide write is one transaction that
//!   serializes with concurrent requests on any number of instances (`BEGIN IMMEDIATE` on
//!   SQLite, row locks on PostgreSQL), and the decisions themselves are the domain's
//!   (`RateLimitPolicy::admit`, `challenge::judge`). Concurrent send-codes of a market are
//!   decided together, one transaction per batch (group commit for the shared counters), and
//!   concurrent reads of the counters batched into one query (`batching`).
//! - Implements [`marque_domain::AccountRepository`] (addresses, payment methods, notifications):
//!   the KG and US address tables differ, and only `account_rows` knows their columns; the
//!   one-default and limit rules are decided under a lock on the user's row.
//!
//! Throwaway test databases and migrated test stores live in the dev-only `marque-testkit`.
//!
//! Timestamps are stored as UTC `TIMESTAMP` values with microsecond precision.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// Runs `$body` with `$c` bound to the backend's own connection (`PgConnection` or
/// `SqliteConnection`), for hot queries.
///
/// A query run on [`connection::DbConnection`] goes through diesel's `MultiConnection` wrapper,
/// which renders the query's whole SQL text on every execution (to hand it to the inner
/// connection), even when the statement is already prepared; on the backend's connection a
/// query with a static query id finds its prepared statement without rendering anything (issue
/// 13: `push_identifier`, `str::replace` and their allocations in `perf` on every profile read).
/// `$body` is compiled once per backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            crate::connection::DbConnection::Pg($c) => $body,
            crate::connection::DbConnection::Sqlite($c) => $body,
        }
    };
}

mod account;
mod account_rows;
mod admin;
mod audit;
mod auth;
mod batching;
mod breaker;
mod connection;
mod db_url;
mod email;
mod error;
mod messenger;
mod migrations;
mod models;
mod outbox;
mod pg_batch;
mod retention;
mod schema;
mod store;

pub use error::{DbError, MigrationError, StoreError};
pub use outbox::OutboxStatusCount;
pub use store::{Backend, MarketStore, PoolStats};

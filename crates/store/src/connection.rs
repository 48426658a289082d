//! Connections: the PostgreSQL/SQLite enum, the r2d2 manager that opens the right variant, and
//! the few places where SQL must differ by backend (transactions and row locks) — all in this
//! file, so the repositories are one code path.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{HandleError, ManageConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use marque_markets::Market;

use crate::breaker::Breaker;
use crate::db_url::Target;
use crate::models::{BucketRow, ChallengeRow, FailureRow, RefreshRow};
use crate::schema::{
    phone_failures, phone_verifications, rate_limits, refresh_tokens, sms_prefix_stats, users,
};
use chrono::DurationRound;

/// A connection to either backend; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub(crate) enum DbConnection {
    /// PostgreSQL (production).
    Pg(PgConnection),
    /// SQLite (embedded default).
    Sqlite(SqliteConnection),
}

/// SQLite settings applied to every new connection. `busy_timeout` first, so switching the
/// journal mode waits for a concurrent opener instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                              PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// A pooled connection plus whether it has seen the server go away (then the pool drops it
/// instead of handing it out again; connections are not pinged on checkout, to keep the hot
/// path at one round trip).
pub(crate) struct PooledDb {
    pub(crate) conn: DbConnection,
    pub(crate) broken: bool,
}

/// A connection failure, already scrubbed of credentials.
#[derive(Debug)]
pub(crate) struct ConnectError(pub(crate) String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// Opens connections of the backend the URL names, and tells the market's [`Breaker`] how each
/// attempt went.
pub(crate) struct Manager {
    pub(crate) market: Market,
    pub(crate) target: Target,
    pub(crate) breaker: Arc<Breaker>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("market", &self.market)
            .field("target", &self.target.display())
            .finish()
    }
}

impl Manager {
    /// Opens one connection; the error is scrubbed of the password. Only `create` opens may
    /// create a missing SQLite file: the pool's own connections (some opened in the background,
    /// possibly after the file was deleted) must not silently start an empty database.
    pub(crate) fn open(&self, create: bool) -> Result<DbConnection, ConnectError> {
        match &self.target {
            Target::Postgres { url, .. } => PgConnection::establish(url)
                .map(DbConnection::Pg)
                .map_err(|e| ConnectError(self.target.redact(e.to_string().trim()))),
            Target::Sqlite { path } => {
                let path = path
                    .to_str()
                    .ok_or_else(|| ConnectError("the SQLite path is not valid UTF-8".to_owned()))?;
                let mode = if create { "rwc" } else { "rw" };
                let uri = format!("file:{}?mode={mode}", sqlite_uri_path(path));
                let mut conn = SqliteConnection::establish(&uri)
                    .map_err(|e| ConnectError(format!("{path}: {e}")))?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(|e| ConnectError(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// `path` escaped for the path part of an SQLite `file:` URI.
fn sqlite_uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

impl ManageConnection for Manager {
    type Connection = PooledDb;
    type Error = ConnectError;

    fn connect(&self) -> Result<PooledDb, ConnectError> {
        match self.open(false) {
            Ok(conn) => {
                self.breaker.record_success();
                Ok(PooledDb {
                    conn,
                    broken: false,
                })
            }
            Err(e) => {
                let now = Instant::now();
                self.breaker.record_failure(now);
                // r2d2 retries failed connections in the background every 0.2–2.5 s per missing
                // connection: log them at a bounded rate, with a count (issue 11).
                if let Some(line) = self.breaker.count_connect_error(now) {
                    tracing::warn!(
                        market = self.market.code(),
                        error = %e,
                        failures = line.failures,
                        "database connection failed"
                    );
                }
                Err(e)
            }
        }
    }

    fn is_valid(&self, conn: &mut PooledDb) -> Result<(), ConnectError> {
        conn.conn
            .ping()
            .map_err(|e| ConnectError(self.target.redact(&e.to_string())))
    }

    fn has_broken(&self, conn: &mut PooledDb) -> bool {
        std::thread::panicking()
            || conn.broken
            || <DbConnection as TransactionManager<DbConnection>>::is_broken_transaction_manager(
                &mut conn.conn,
            )
    }
}

/// r2d2's error handler: nothing to do, [`Manager::connect`] already counted and (at a bounded
/// rate) logged the failure; r2d2's default handler would log every one of them.
#[derive(Debug)]
pub(crate) struct QuietErrors;

impl HandleError<ConnectError> for QuietErrors {
    fn handle_error(&self, _error: ConnectError) {}
}

/// Whether `e` means the connection is gone (the pool must not hand it out again).
pub(crate) fn is_connection_loss(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ) | DieselError::BrokenTransactionManager
    )
}

/// Whether `e` is SQLite's `SQLITE_BUSY` after `busy_timeout`: another writer held the file too
/// long. The connection itself is fine.
pub(crate) fn is_busy(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(_, info) if info.message().contains("database is locked"))
}

/// Runs `f` in a write transaction that serializes with every other writer of the rows it
/// reads: `BEGIN IMMEDIATE` on SQLite (takes the database write lock up front, so no two
/// read-then-write transactions interleave), a plain `BEGIN` on PostgreSQL, where the
/// repositories lock the rows they decide on with [`lock_rows`] / [`newest_challenge`].
///
/// `f` returning `Err` rolls back.
pub(crate) fn write_tx<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        DbConnection::Pg(_) => conn.transaction(f),
        DbConnection::Sqlite(_) => run_tx(conn, "BEGIN IMMEDIATE", f),
    }
}

/// [`write_tx`] whose commit on PostgreSQL does not wait for its WAL record to reach the disk
/// (`SET LOCAL synchronous_commit = off`, sent with the `BEGIN`, so no extra round trip).
///
/// For transactions that hold a row every request of their kind must lock — the per-IP,
/// SMS-day and prefix counters of send-code (issue 13): a synchronous commit keeps those locks
/// for the whole WAL flush (≈ 3 ms on the reference machine's disk), so every send-code of a
/// market queued behind the previous one's flush (≈ 300 a second at most, whatever the CPU).
/// Asynchronous commit releases the locks as soon as the commit is in memory; the WAL writer
/// flushes it within `3 × wal_writer_delay` (600 ms by default). What it gives up, only for such
/// transactions and only on a crash of the database server (not of this service): the last
/// fraction of a second of them may be lost as a whole — never in part, never with corruption,
/// and never after anything that depends on them is durable (PostgreSQL docs, "Asynchronous
/// Commit": a later synchronous commit flushes every earlier record). For send-code that is: a
/// code and its outbox message both vanish (the client asks for a new code), or neither; a
/// message is sent only after the worker's synchronous claim has made them durable; and a few
/// hits of the rate-limit buckets are forgotten.
///
/// Its statements all reach rows by key, so it also sets `enable_seqscan = off` (same
/// round trip). Why (issue 13): statements are prepared once per connection, and after five
/// executions PostgreSQL keeps a *generic* plan costed on the tables' size at that moment. On a
/// new database — a new market, a fresh deployment — they are nearly empty then, so the plan of
/// `UPDATE rate_limits … FROM unnest(…) WHERE bucket = …` is a hash join over a sequential
/// scan, and it stays one as the table grows, until autovacuum's next `ANALYZE` invalidates it
/// (a minute or more; never within a burst). Measured with `bench/run.sh` on a fresh database:
/// that statement averaged 911 µs instead of 137 µs, and send-code went from 603 to 851
/// requests a second (PostgreSQL CPU 2,453 → 1,649 µs per request). With sequential scans off,
/// the planner takes the primary-key or unique index whatever the table's size; nothing is
/// forbidden (a statement with no usable index still scans), so the setting is only for
/// transactions that never need a scan. (Tried on verify-code's transaction as well: no gain
/// measured there, so it is not used there.)
///
/// And `plan_cache_mode = force_generic_plan`: the send-code batch's statements bind arrays
/// (`unnest`), and because a custom plan costs the arrays' real length below the generic plan's
/// guess, PostgreSQL re-planned them on almost every call (`pg_stat_statements` with
/// `track_planning`: `StoreCounters` 2,236 plans for 2,678 calls at ≈ 170 µs each; planning was
/// a fifth of PostgreSQL's CPU during send-code). Every plan they can have is key lookups (the
/// setting above), so the generic plan, made once per connection, is as good.
pub(crate) fn write_tx_async_commit<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    run_tx(
        conn,
        "BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL enable_seqscan = off; \
         SET LOCAL plan_cache_mode = force_generic_plan",
        f,
    )
}

/// Runs `f` in a transaction opened with `begin` (PostgreSQL) or `BEGIN IMMEDIATE` (SQLite);
/// commits on `Ok`, rolls back on `Err`. Not nestable (diesel refuses a second `BEGIN`).
fn run_tx<T, E>(
    conn: &mut DbConnection,
    begin: &str,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        DbConnection::Pg(inner) => AnsiTransactionManager::begin_transaction_sql(inner, begin)?,
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
    }
    match f(&mut *conn) {
        Ok(value) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(user_error) => {
            match <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn) {
                Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(user_error),
                Err(rollback_error) => Err(rollback_error.into()),
            }
        }
    }
}

/// The committed states of the rows [`lock_rows`] locked, by key: failure records of numbers
/// (`None`: none on record), rate-limit buckets (`None`: a bucket with no hits) and SMS prefix
/// counters (`None`: a prefix with no history).
#[derive(Debug, Default)]
pub(crate) struct LockedRows<'a> {
    /// Failure records, by E.164 number.
    pub(crate) failures: std::collections::BTreeMap<&'a str, Option<FailureRow>>,
    /// Bucket states, by key.
    pub(crate) buckets: std::collections::BTreeMap<&'a str, Option<marque_domain::BucketState>>,
    /// Prefix counters, by prefix.
    pub(crate) prefixes:
        std::collections::BTreeMap<&'a str, Option<marque_domain::sms_guard::PrefixState>>,
}

/// The rows a decision on limits reads, inside [`write_tx`], each locked until the transaction
/// ends: the failure records of the numbers `failures`, the rate-limit buckets `keys` and the SMS
/// counters of the number prefixes `prefixes`, in that order. Callers pass each list distinct,
/// numbers and prefixes sorted, bucket keys sorted then the SMS day bucket last. Every
/// transaction locks in this order, so none waits on another crosswise.
///
/// PostgreSQL cannot lock a row that does not exist yet, so a placeholder row is inserted for a
/// new key (a failure record with no failures; a bucket with `hits = 0`, reported as `None`; a
/// prefix hour with nothing sent and no history, a valid state); concurrent inserters of the same
/// key wait on it. The insert's no-op `ON CONFLICT DO UPDATE` locks an existing row instead,
/// waiting for any other holder, and `RETURNING` gives the newest committed state — one statement
/// for all the rows ([`crate::pg_batch::LockRows`], issue 13). On SQLite the immediate
/// transaction already excludes other writers: plain reads.
pub(crate) fn lock_rows<'a>(
    conn: &mut DbConnection,
    failures: &[&'a str],
    keys: &[&'a str],
    prefixes: &[&'a str],
    now: chrono::NaiveDateTime,
) -> QueryResult<LockedRows<'a>> {
    use crate::pg_batch::{LOCKED_BUCKET, LOCKED_FAILURE, LOCKED_PREFIX};
    let mut found_failures: Vec<(String, FailureRow)> = Vec::new();
    let mut found_buckets: Vec<(String, BucketRow)> = Vec::new();
    let mut found_prefixes: Vec<(String, (chrono::NaiveDateTime, i32, i64))> = Vec::new();
    match conn {
        _ if failures.is_empty() && keys.is_empty() && prefixes.is_empty() => {}
        DbConnection::Pg(pg) => {
            let statement = crate::pg_batch::LockRows {
                failures,
                keys,
                now,
                prefixes,
                hour: now
                    .duration_trunc(chrono::Duration::hours(1))
                    .unwrap_or(now),
            };
            for (kind, key, at, count, nullable_at, baseline_milli) in
                statement.load::<crate::pg_batch::LockedRow>(pg)?
            {
                match kind {
                    LOCKED_FAILURE => found_failures.push((
                        key,
                        FailureRow {
                            consecutive: count,
                            locked_until: nullable_at,
                        },
                    )),
                    LOCKED_BUCKET => found_buckets.push((
                        key,
                        BucketRow {
                            window_started_at: at,
                            hits: count,
                            last_hit_at: nullable_at.unwrap_or(at),
                        },
                    )),
                    LOCKED_PREFIX => found_prefixes.push((key, (at, count, baseline_milli))),
                    _ => return Err(DieselError::NotFound),
                }
            }
        }
        DbConnection::Sqlite(lite) => {
            if !failures.is_empty() {
                found_failures = phone_failures::table
                    .filter(phone_failures::phone_number.eq_any(failures))
                    .select((phone_failures::phone_number, FailureRow::as_select()))
                    .load(lite)?;
            }
            if !keys.is_empty() {
                found_buckets = rate_limits::table
                    .filter(rate_limits::bucket.eq_any(keys))
                    .select((rate_limits::bucket, BucketRow::as_select()))
                    .load(lite)?;
            }
            if !prefixes.is_empty() {
                found_prefixes = sms_prefix_stats::table
                    .filter(sms_prefix_stats::prefix.eq_any(prefixes))
                    .select((
                        sms_prefix_stats::prefix,
                        (
                            sms_prefix_stats::hour_start,
                            sms_prefix_stats::sent,
                            sms_prefix_stats::baseline_milli,
                        ),
                    ))
                    .load(lite)?;
            }
        }
    }
    fn take<T>(found: &mut Vec<(String, T)>, key: &str) -> Option<T> {
        let at = found.iter().position(|(k, _)| k == key)?;
        Some(found.swap_remove(at).1)
    }
    Ok(LockedRows {
        failures: failures
            .iter()
            .map(|&k| (k, take(&mut found_failures, k)))
            .collect(),
        buckets: keys
            .iter()
            .map(|&k| {
                let row = take(&mut found_buckets, k).filter(|r| r.hits > 0);
                (k, row.map(|r| r.state()))
            })
            .collect(),
        prefixes: prefixes
            .iter()
            .map(|&k| {
                let state =
                    take(&mut found_prefixes, k).map(|(hour_start, sent, baseline_milli)| {
                        marque_domain::sms_guard::PrefixState {
                            hour_start: crate::models::from_db(hour_start),
                            sent: u32::try_from(sent).unwrap_or(0),
                            baseline: baseline_milli as f64 / 1000.0,
                        }
                    });
                (k, state)
            })
            .collect(),
    })
}

/// The challenge an attempt is judged on, inside [`write_tx`], locked until the transaction ends
/// (`FOR UPDATE` on PostgreSQL: a concurrent verifier waits, then reads what this one wrote): the
/// newest challenge of `phone` for `purpose`, or, when `challenge_id` is given, the challenge of
/// `phone` and `purpose` with that id (`None` for an unknown id, whose attempt touches nothing).
pub(crate) fn newest_challenge(
    conn: &mut DbConnection,
    phone: &str,
    purpose: &str,
    challenge_id: Option<&str>,
) -> QueryResult<Option<ChallengeRow>> {
    // A macro, not a closure: the query is typed per backend.
    macro_rules! newest {
        () => {
            phone_verifications::table
                .filter(phone_verifications::phone_number.eq(phone))
                .filter(phone_verifications::purpose.eq(purpose))
                .order(phone_verifications::id.desc())
                .select(crate::models::CHALLENGE_COLUMNS)
        };
    }
    macro_rules! with_id {
        ($id:expr) => {
            newest!().filter(phone_verifications::challenge_id.eq($id))
        };
    }
    match (conn, challenge_id) {
        (DbConnection::Pg(pg), None) => newest!().for_update().first(pg).optional(),
        (DbConnection::Sqlite(lite), None) => newest!().first(lite).optional(),
        (DbConnection::Pg(pg), Some(id)) => with_id!(id).for_update().first(pg).optional(),
        (DbConnection::Sqlite(lite), Some(id)) => with_id!(id).first(lite).optional(),
    }
}

/// The wrong-code record of `phone` inside [`write_tx`], locked until the transaction ends: the
/// failure-record part of [`lock_rows`] (one prepared statement on PostgreSQL, which first gets a
/// placeholder row with no failures to lock when the number has none). `None` when the number
/// has no record.
pub(crate) fn lock_failures(
    conn: &mut DbConnection,
    phone: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<Option<FailureRow>> {
    Ok(lock_rows(conn, &[phone], &[], &[], now)?
        .failures
        .remove(phone)
        .flatten())
}

/// The refresh token with hash `hash` inside [`write_tx`], locked until the transaction ends
/// (`FOR UPDATE` on PostgreSQL: a concurrent refresh of the same token waits, then sees it
/// rotated).
pub(crate) fn lock_refresh(
    conn: &mut DbConnection,
    hash: &[u8],
) -> QueryResult<Option<RefreshRow>> {
    macro_rules! by_hash {
        () => {
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(hash))
                .select(RefreshRow::as_select())
        };
    }
    match conn {
        DbConnection::Pg(pg) => by_hash!().for_update().first(pg).optional(),
        DbConnection::Sqlite(lite) => by_hash!().first(lite).optional(),
    }
}

/// Locks a user's row inside [`write_tx`], so that the account writes of one user (addresses,
/// payment methods, notifications) serialize and the one-default and limit rules they check
/// hold: `SELECT … FOR NO KEY UPDATE` on PostgreSQL (which does not block other transactions
/// merely referencing the user, e.g. inserting a session); SQLite's immediate transaction already
/// excludes other writers. Returns whether the user exists.
pub(crate) fn lock_user(conn: &mut DbConnection, user: i64) -> QueryResult<bool> {
    let found = match conn {
        DbConnection::Pg(pg) => users::table
            .find(user)
            .select(users::id)
            .for_no_key_update()
            .first::<i64>(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => users::table
            .find(user)
            .select(users::id)
            .first::<i64>(lite)
            .optional()?,
    };
    Ok(found.is_some())
}

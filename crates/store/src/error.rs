//! The store's errors: [`StoreError`] for setting a store up, [`DbError`] for a repository call
//! (it becomes the source of a [`RepoError`] at the trait boundary). Messages name the market and
//! the host or file, never a password.

use diesel::r2d2::PoolError;
use marque_domain::RepoError;

use crate::connection::{is_busy, is_connection_loss};

/// A failure to open, configure or migrate a market database.
///
/// The `Display` text is safe to log: passwords in URLs are never included.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is malformed or names an unsupported backend.
    #[error("market {market}: invalid database URL: {reason}")]
    InvalidUrl {
        /// Market whose URL it is.
        market: &'static str,
        /// What is wrong (the URL itself is not quoted).
        reason: String,
    },
    /// A pool setting is out of range.
    #[error("market {market}: invalid pool configuration: {reason}")]
    InvalidConfig {
        /// Market being configured.
        market: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The directory of an SQLite file could not be created.
    #[error("market {market}: cannot create directory {path}: {source}")]
    CreateDir {
        /// Market whose database it is.
        market: &'static str,
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No connection to the database could be opened.
    #[error("market {market}: cannot connect to the database at {target}: {reason}")]
    Connect {
        /// Market whose database it is.
        market: &'static str,
        /// Host and database name, or SQLite file path (no credentials).
        target: String,
        /// The driver's message, with credentials scrubbed.
        reason: String,
    },
    /// Running the migrations failed.
    #[error("market {market}: migration failed")]
    Migration {
        /// Market whose database it is.
        market: &'static str,
        /// What failed.
        #[source]
        source: MigrationError,
    },
    /// A database operation failed (pool exhausted, database down, bad SQL…).
    #[error("market {market}: {source}")]
    Repo {
        /// Market whose database it is.
        market: &'static str,
        /// The underlying failure.
        source: RepoError,
    },
}

/// Why running the embedded migrations failed (the source of [`StoreError::Migration`]).
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// Taking or releasing the migration lock, or the transaction around the run, failed.
    #[error("migration lock or transaction failed")]
    Lock(#[from] diesel::result::Error),
    /// diesel_migrations could not apply a migration (the SQL failed, or the bookkeeping table
    /// could not be read or written).
    #[error("applying a migration failed")]
    Run(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection changed backend under the run (a bug).
    #[error("the connection is not of the backend being migrated")]
    WrongBackend,
}

/// Why a repository call failed. At the trait boundary it becomes the `source()` of a
/// [`RepoError`] (`From<DbError>`): [`RepoError::Unavailable`] when the database cannot be
/// reached or is locked too long ([`DbError::is_unavailable`]), [`RepoError::Other`] otherwise.
/// Callers can `downcast_ref::<DbError>()` the source to tell the cases apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No pooled connection within the connection timeout: the database is down or every
    /// connection is busy.
    #[error("market {market}: no database connection to {target}")]
    NoConnection {
        /// Market whose database it is.
        market: &'static str,
        /// Host and database name, or SQLite file path (no credentials).
        target: String,
        /// The pool's error.
        #[source]
        source: PoolError,
    },
    /// The market pool's circuit breaker is open: a connection attempt failed moments ago, so
    /// the checkout was refused at once instead of waiting out the connection timeout.
    #[error("market {market}: database unreachable (circuit open after a failed connection)")]
    CircuitOpen {
        /// Market whose database it is.
        market: &'static str,
    },
    /// A statement or transaction failed.
    #[error("market {market}: database statement failed")]
    Query {
        /// Market whose database it is.
        market: &'static str,
        /// diesel's error (its messages carry no URL).
        #[source]
        source: diesel::result::Error,
    },
    /// A stored value the domain no longer accepts (a corrupt or hand-edited row).
    #[error("market {market}: {table} row {id} has an invalid stored {column}")]
    CorruptRow {
        /// Market whose database it is.
        market: &'static str,
        /// Table of the row.
        table: &'static str,
        /// The row's id.
        id: i64,
        /// The column (or rule) that failed.
        column: &'static str,
    },
    /// An address of another market was handed to this market's store (a bug in the caller).
    #[error("market {market}: an address of market {other} cannot be stored here")]
    WrongMarket {
        /// Market whose database it is.
        market: &'static str,
        /// Market of the address.
        other: &'static str,
    },
    /// A row just written could not be read back in the same transaction (a bug or a corrupt
    /// database).
    #[error("market {market}: {what} {id} vanished inside its transaction")]
    Vanished {
        /// Market whose database it is.
        market: &'static str,
        /// Kind of row.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A rate-limit refusal escaped the transaction meant to turn it into an outcome (a bug).
    #[error("market {market}: rate-limit refusal escaped its transaction")]
    EscapedRefusal {
        /// Market whose database it is.
        market: &'static str,
    },
}

impl DbError {
    /// [`DbError::CorruptRow`] of `market`'s `table`.
    pub(crate) fn corrupt(
        market: marque_markets::Market,
        table: &'static str,
        id: i64,
        column: &'static str,
    ) -> Self {
        Self::CorruptRow {
            market: market.code(),
            table,
            id,
            column,
        }
    }

    /// Whether the failure means the database is unreachable or busy (answer 503 and retry
    /// later) rather than a fault (answer 500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::NoConnection { .. } | Self::CircuitOpen { .. } => true,
            Self::Query { source, .. } => is_connection_loss(source) || is_busy(source),
            Self::CorruptRow { .. }
            | Self::WrongMarket { .. }
            | Self::Vanished { .. }
            | Self::EscapedRefusal { .. } => false,
        }
    }
}

impl From<DbError> for RepoError {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() {
            RepoError::Unavailable(Box::new(e))
        } else {
            RepoError::Other(Box::new(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    use marque_markets::Market;

    use super::*;

    fn query(source: DieselError) -> DbError {
        DbError::Query {
            market: "kg",
            source,
        }
    }

    #[test]
    fn the_cause_chain_survives_the_trait_boundary() {
        let e = RepoError::from(query(DieselError::NotFound));
        assert!(matches!(e, RepoError::Other(_)));
        let store = e.source().expect("the store's error");
        assert_eq!(store.to_string(), "market kg: database statement failed");
        assert!(store.downcast_ref::<DbError>().is_some());
        let driver = store.source().expect("diesel's error");
        assert_eq!(driver.to_string(), DieselError::NotFound.to_string());
    }

    #[test]
    fn lost_connections_and_locked_files_are_unavailable() {
        let closed = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection".to_owned()),
        );
        let locked = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("database is locked".to_owned()),
        );
        let unique = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_owned()),
        );
        assert!(matches!(query(closed).into(), RepoError::Unavailable(_)));
        assert!(matches!(query(locked).into(), RepoError::Unavailable(_)));
        assert!(matches!(query(unique).into(), RepoError::Other(_)));
        let corrupt = DbError::corrupt(Market::Us, "users", 7, "phone_number");
        assert_eq!(
            corrupt.to_string(),
            "market us: users row 7 has an invalid stored phone_number"
        );
        assert!(matches!(corrupt.into(), RepoError::Other(_)));
    }
}

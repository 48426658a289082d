//! Errors of setting a store up. Messages name the market and the host or file, never a password.

use marque_domain::RepoError;

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
    #[error("market {market}: migration failed: {reason}")]
    Migration {
        /// Market whose database it is.
        market: &'static str,
        /// What failed.
        reason: String,
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

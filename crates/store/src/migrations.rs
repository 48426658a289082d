//! The migration trees, embedded at build time (one per market and backend).

use diesel::RunQueryDsl;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use marque_markets::Market;

use crate::connection::{DbConnection, write_tx};

const KG_POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations-kg/postgres");
const KG_SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations-kg/sqlite");
const US_POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations-us/postgres");
const US_SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations-us/sqlite");

/// Key of the session-level advisory lock that serializes instances migrating one PostgreSQL
/// database at the same time (ASCII "marqmigr").
const PG_MIGRATION_LOCK: i64 = 0x6d61_7271_6d69_6772;

enum MigrationError {
    Db(diesel::result::Error),
    Run(String),
}

impl From<diesel::result::Error> for MigrationError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

/// Runs the pending migrations of `market` on `conn`; returns how many ran.
pub(crate) fn run(conn: &mut DbConnection, market: Market) -> Result<usize, String> {
    let (pg, lite) = match market {
        Market::Kg => (KG_POSTGRES, KG_SQLITE),
        Market::Us => (US_POSTGRES, US_SQLITE),
    };
    match conn {
        DbConnection::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .execute(c)
                .map_err(|e| e.to_string())?;
            let result = c
                .run_pending_migrations(pg)
                .map(|v| v.len())
                .map_err(|e| e.to_string());
            let unlocked =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(c)
                    .map_err(|e| e.to_string());
            let ran = result?;
            unlocked?;
            Ok(ran)
        }
        DbConnection::Sqlite(_) => {
            // One immediate transaction: a second process migrating the same file waits, then
            // finds nothing pending. Each migration's own transaction becomes a savepoint.
            let result = write_tx(conn, |conn| match conn {
                DbConnection::Sqlite(c) => c
                    .run_pending_migrations(lite)
                    .map(|v| v.len())
                    .map_err(|e| MigrationError::Run(e.to_string())),
                DbConnection::Pg(_) => Err(MigrationError::Run("unreachable backend".to_owned())),
            });
            result.map_err(|e| match e {
                MigrationError::Db(e) => e.to_string(),
                MigrationError::Run(s) => s,
            })
        }
    }
}

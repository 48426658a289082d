//! The migration trees, embedded at build time: per backend, one tree of the tables alike in
//! every market (`migrations-common/`) and one per market for the tables that differ
//! (`migrations-kg/`, `migrations-us/`: addresses and payment methods). See
//! `migrations-common/README.md` for the rules (append-only, versions unique across trees).
//!
//! A market database runs the common tree, then its market's tree; both record their versions in
//! diesel's one `__diesel_schema_migrations` table, which is why versions must not repeat across
//! trees (checked by the unit tests below).

use diesel::RunQueryDsl;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use marque_markets::Market;

use crate::connection::{DbConnection, write_tx};
use crate::error::MigrationError;

const COMMON_POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations-common/postgres");
const COMMON_SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations-common/sqlite");
const KG_POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations-kg/postgres");
const KG_SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations-kg/sqlite");
const US_POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations-us/postgres");
const US_SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations-us/sqlite");

/// The trees `market` runs on PostgreSQL, in order.
fn postgres_trees(market: Market) -> [EmbeddedMigrations; 2] {
    match market {
        Market::Kg => [COMMON_POSTGRES, KG_POSTGRES],
        Market::Us => [COMMON_POSTGRES, US_POSTGRES],
    }
}

/// The trees `market` runs on SQLite, in order.
fn sqlite_trees(market: Market) -> [EmbeddedMigrations; 2] {
    match market {
        Market::Kg => [COMMON_SQLITE, KG_SQLITE],
        Market::Us => [COMMON_SQLITE, US_SQLITE],
    }
}

/// Key of the session-level advisory lock that serializes instances migrating one PostgreSQL
/// database at the same time (ASCII "marqmigr").
const PG_MIGRATION_LOCK: i64 = 0x6d61_7271_6d69_6772;

/// Runs the pending migrations of `market` on `conn` (common tree first, then the market's);
/// returns how many ran.
///
/// PostgreSQL: under a session advisory lock, so instances starting together migrate one after
/// the other. SQLite: in one `BEGIN IMMEDIATE` transaction, for the same reason.
pub(crate) fn run(conn: &mut DbConnection, market: Market) -> Result<usize, MigrationError> {
    match conn {
        DbConnection::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .execute(c)?;
            let result = run_trees(c, postgres_trees(market));
            let unlocked =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(c);
            let ran = result?;
            unlocked?;
            Ok(ran)
        }
        DbConnection::Sqlite(_) => {
            // Foreign keys off while migrating (a no-op inside a transaction, so before it):
            // SQLite changes a column only by rebuilding its table, and dropping the old
            // `users` table with foreign keys on would cascade to every row referencing it
            // (SQLite's ALTER TABLE documentation, section 7). On again afterwards, whatever
            // the outcome; the connection customizer sets it on every pooled connection too.
            diesel::sql_query("PRAGMA foreign_keys = OFF").execute(conn)?;
            // One immediate transaction: a second process migrating the same file waits, then
            // finds nothing pending. Each migration's own transaction becomes a savepoint.
            let ran = write_tx(conn, |conn| match conn {
                DbConnection::Sqlite(c) => {
                    let ran = run_trees(c, sqlite_trees(market))?;
                    // The rebuilt tables must still satisfy every reference.
                    let broken: i64 =
                        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                            "(SELECT COUNT(*) FROM pragma_foreign_key_check)",
                        ))
                        .get_result(c)?;
                    if broken > 0 {
                        return Err(MigrationError::Run(
                            format!("{broken} rows break a foreign key after migrating").into(),
                        ));
                    }
                    Ok(ran)
                }
                DbConnection::Pg(_) => Err(MigrationError::WrongBackend),
            });
            diesel::sql_query("PRAGMA foreign_keys = ON").execute(conn)?;
            ran
        }
    }
}

/// Runs the pending migrations of each tree in turn.
fn run_trees<C>(conn: &mut C, trees: [EmbeddedMigrations; 2]) -> Result<usize, MigrationError>
where
    C: MigrationHarness<C::Backend> + diesel::Connection,
{
    let mut ran = 0;
    for tree in trees {
        ran += conn
            .run_pending_migrations(tree)
            .map_err(MigrationError::Run)?
            .len();
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use diesel::backend::Backend;
    use diesel::migration::MigrationSource;
    use diesel::pg::Pg;
    use diesel::sqlite::Sqlite;

    use super::*;

    /// The versions of `tree`.
    fn versions<B: Backend>(tree: &EmbeddedMigrations) -> Vec<String> {
        MigrationSource::<B>::migrations(tree)
            .unwrap()
            .iter()
            .map(|m| m.name().version().to_string())
            .collect()
    }

    /// The (common, market) versions `market` runs, on PostgreSQL and on SQLite.
    fn tree_versions(market: Market) -> [(Vec<String>, Vec<String>); 2] {
        let [pg_common, pg_own] = postgres_trees(market);
        let [lite_common, lite_own] = sqlite_trees(market);
        [
            (versions::<Pg>(&pg_common), versions::<Pg>(&pg_own)),
            (
                versions::<Sqlite>(&lite_common),
                versions::<Sqlite>(&lite_own),
            ),
        ]
    }

    /// A market migration with the version of a common one (or vice versa) would be taken as
    /// already applied and silently skipped.
    #[test]
    fn versions_are_unique_across_trees() {
        for market in Market::ALL {
            for (common, own) in tree_versions(market) {
                for v in &own {
                    assert!(
                        !common.contains(v),
                        "{v} is in the common and the {market:?} tree"
                    );
                }
            }
        }
    }

    /// Issue 10 rebuilds SQLite's `users` table to make `phone_number` nullable: on a database
    /// with data, rows, their references (cascades still work) and the id sequence (ids of
    /// deleted accounts are not handed out again) survive, and foreign keys are on afterwards.
    #[test]
    fn the_sqlite_users_rebuild_keeps_rows_references_and_ids() {
        use diesel::Connection;
        use diesel::sqlite::SqliteConnection;

        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let path = std::env::temp_dir().join(format!("marque-rebuild-{}.db", uuid::Uuid::new_v4()));
        let mut lite = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let n = |c: &mut SqliteConnection, sql: &str| {
            diesel::sql_query(sql).get_result::<N>(c).unwrap().n
        };
        diesel::sql_query("PRAGMA foreign_keys = ON")
            .execute(&mut lite)
            .unwrap();
        diesel::migration::MigrationConnection::setup(&mut lite).unwrap();
        let [common, kg] = sqlite_trees(Market::Kg);
        for tree in [common, kg] {
            for m in MigrationSource::<Sqlite>::migrations(&tree).unwrap() {
                if !m.name().to_string().contains("email_accounts") {
                    lite.run_migration(&*m).unwrap();
                }
            }
        }
        for sql in [
            "INSERT INTO users (id, phone_number, is_verified, is_active, created_at, updated_at) \
             VALUES (5, '+996505325311', 1, 1, '2026-12-01 00:00:00', '2026-12-01 00:00:00')",
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at) \
             VALUES ('s1', 5, '2026-12-01 00:00:00', '2026-12-31 00:00:00', '2026-12-01 00:00:00')",
            "UPDATE sqlite_sequence SET seq = 7 WHERE name = 'users'",
        ] {
            diesel::sql_query(sql).execute(&mut lite).unwrap();
        }
        let mut conn = DbConnection::Sqlite(lite);
        assert_eq!(run(&mut conn, Market::Kg).unwrap(), 1);
        let DbConnection::Sqlite(mut lite) = conn else {
            unreachable!()
        };
        assert_eq!(
            n(
                &mut lite,
                "SELECT COUNT(*) AS n FROM users WHERE id = 5 AND phone_number = '+996505325311'"
            ),
            1
        );
        assert_eq!(
            n(
                &mut lite,
                "SELECT COUNT(*) AS n FROM sessions WHERE user_id = 5"
            ),
            1
        );
        assert_eq!(
            n(
                &mut lite,
                "SELECT foreign_keys AS n FROM pragma_foreign_keys"
            ),
            1
        );
        diesel::sql_query(
            "INSERT INTO users (phone_number, is_verified, is_active, created_at, updated_at) \
             VALUES (NULL, 0, 1, '2026-12-05 00:00:00', '2026-12-05 00:00:00')",
        )
        .execute(&mut lite)
        .unwrap();
        assert_eq!(n(&mut lite, "SELECT MAX(id) AS n FROM users"), 8);
        diesel::sql_query("DELETE FROM users WHERE id = 5")
            .execute(&mut lite)
            .unwrap();
        assert_eq!(
            n(&mut lite, "SELECT COUNT(*) AS n FROM sessions"),
            0,
            "cascade"
        );
        drop(lite);
        let _ = std::fs::remove_file(&path);
    }

    /// Every migration exists for both backends, under the same version.
    #[test]
    fn backends_have_the_same_versions() {
        for market in Market::ALL {
            let [pg, lite] = tree_versions(market);
            assert_eq!(pg, lite, "{market:?}");
        }
    }
}

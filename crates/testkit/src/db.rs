//! Throwaway databases: each test gets its own, deleted when the value is dropped.

use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

/// A direct connection to a test's SQLite file at `path` (a `sqlite://` URL without its scheme),
/// for reading or changing rows behind the service's back. It waits up to 5 s for the write lock
/// (`busy_timeout`), as the service's own connections do, so a statement that meets the
/// service's outbox worker mid-write waits instead of failing with `SQLITE_BUSY`.
///
/// Panics when the file cannot be opened (tests only).
#[allow(clippy::expect_used)]
pub fn sqlite_connection(path: &str) -> diesel::sqlite::SqliteConnection {
    let mut c = diesel::sqlite::SqliteConnection::establish(path).expect("open the test database");
    c.batch_execute("PRAGMA busy_timeout = 5000")
        .expect("set busy_timeout");
    c
}

/// A database that exists for the lifetime of the value.
///
/// `TestDatabase::postgres(admin_url)` creates `marque_test_<uuid>` through an admin URL (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`) and drops it (`WITH (FORCE)`, so open pools do
/// not block it) on drop; `TestDatabase::sqlite()` names a fresh file under the system temporary
/// directory and deletes it, with its `-wal` and `-shm` files, on drop. Drop stores using it
/// first where you can (declare the `TestDatabase` before the store).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Postgres { admin_url: String, name: String },
    Sqlite { path: PathBuf },
}

fn unique_name() -> String {
    format!("marque_test_{}", uuid::Uuid::new_v4().simple())
}

impl TestDatabase {
    /// Creates a PostgreSQL database through `admin_url` (a URL of a role allowed to
    /// `CREATE DATABASE`).
    ///
    /// Errors name what failed; the message never contains the admin URL (it may hold a password).
    pub fn postgres(admin_url: &str) -> Result<Self, String> {
        let name = unique_name();
        let url = with_database(admin_url, &name)
            .ok_or_else(|| format!("{}: not a postgres:// URL", crate::POSTGRES_URL_VAR))?;
        let mut admin = PgConnection::establish(admin_url).map_err(|e| {
            format!(
                "cannot connect to the server named by {}: {}",
                crate::POSTGRES_URL_VAR,
                e.to_string().trim()
            )
        })?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        Ok(Self {
            url,
            kind: Kind::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// Names a fresh SQLite file under [`std::env::temp_dir`] (created by the first connection).
    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name()));
        let url = format!("sqlite://{}", path.display());
        Self {
            url,
            kind: Kind::Sqlite { path },
        }
    }

    /// The URL to hand to [`marque_store::MarketStore::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.kind {
            Kind::Postgres { admin_url, name } => {
                let dropped = PgConnection::establish(admin_url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut admin| {
                        diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                        .map_err(|e| e.to_string())
                    });
                if let Err(e) = dropped {
                    tracing::warn!(database = %name, error = %e, "could not drop test database");
                }
            }
            Kind::Sqlite { path } => {
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                let mut shm = path.clone().into_os_string();
                shm.push("-shm");
                for file in [path.clone(), PathBuf::from(wal), PathBuf::from(shm)] {
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}

/// `url` with its database name replaced by `name` (query kept).
fn with_database(url: &str, name: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "postgres" && scheme != "postgresql" {
        return None;
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.split_once('?').map(|(_, q)| q);
    Some(match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/t")
        );
        assert_eq!(
            with_database("postgresql://u:p@h?sslmode=disable", "t").as_deref(),
            Some("postgresql://u:p@h/t?sslmode=disable")
        );
        assert_eq!(with_database("sqlite://x.db", "t"), None);
    }
}

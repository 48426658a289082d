//! The harness shared by the store's test binaries: a migrated store on a throwaway database of
//! each backend, and a macro that runs every scenario on both.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration as StdDuration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use marque_markets::Market;
use marque_store::testdb::TestDatabase;
use marque_store::{Backend, MarketStore};

pub const PG_ENV: &str = "MARQUE_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A migrated store on its own database (the store is dropped before the database).
pub struct Ctx {
    pub store: MarketStore,
    pub db: TestDatabase,
    pub kind: Kind,
}

impl Ctx {
    pub fn new(kind: Kind, market: Market) -> Option<Ctx> {
        let db = match kind {
            Kind::Sqlite => TestDatabase::sqlite(),
            Kind::Postgres => {
                let Ok(admin) = std::env::var(PG_ENV) else {
                    eprintln!("skipped: set {PG_ENV} to run the PostgreSQL variant");
                    return None;
                };
                TestDatabase::postgres(&admin).expect("create test database")
            }
        };
        let store =
            MarketStore::connect(market, db.url(), 8, StdDuration::from_secs(10)).expect("connect");
        store.migrate().expect("migrate");
        assert_eq!(store.market(), market);
        let backend = match kind {
            Kind::Sqlite => Backend::Sqlite,
            Kind::Postgres => Backend::Postgres,
        };
        assert_eq!(store.backend(), backend);
        Some(Ctx { store, db, kind })
    }

    /// Runs `sql` on a connection of its own; returns the `BIGINT` column `v` of the first row,
    /// or the number of rows changed when `sql` is not a query.
    pub fn sql(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        let url = self.db.url();
        macro_rules! run {
            ($c:expr) => {
                if sql.starts_with("SELECT") {
                    diesel::sql_query(sql).get_result::<Value>($c).map(|r| r.v)
                } else {
                    diesel::sql_query(sql).execute($c).map(|n| n as i64)
                }
            };
        }
        match self.kind {
            Kind::Postgres => run!(&mut PgConnection::establish(url).unwrap()),
            Kind::Sqlite => {
                let mut c =
                    SqliteConnection::establish(url.strip_prefix("sqlite://").unwrap()).unwrap();
                diesel::sql_query("PRAGMA foreign_keys = ON")
                    .execute(&mut c)
                    .unwrap();
                run!(&mut c)
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

pub fn run(kind: Kind, scenario: fn(&Ctx)) {
    if let Some(ctx) = Ctx::new(kind, Market::Kg) {
        scenario(&ctx);
    }
}

/// Declares each named scenario `fn(&Ctx)` as a SQLite test and a PostgreSQL test.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { $crate::common::run($crate::common::Kind::Sqlite, super::$name) } )*
        }
        mod postgres {
            $( #[test] fn $name() { $crate::common::run($crate::common::Kind::Postgres, super::$name) } )*
        }
    };
}

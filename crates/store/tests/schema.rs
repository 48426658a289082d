//! Schema snapshots: migrates a fresh database of each market on each backend, dumps the
//! resulting schema as sorted text and compares it with `tests/snapshots/schema__*.snap`.
//!
//! A change to the migrations shows up here as a diff to review (`cargo insta review`, or
//! `INSTA_UPDATE=always`); with `CI=true` a mismatch fails instead of writing a new snapshot.
//! The PostgreSQL half runs when `MARQUE_TEST_POSTGRES_URL` names an admin URL and says so
//! loudly when it is skipped.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use marque_markets::Market;
use marque_store::MarketStore;
use marque_testkit::{TestDatabase, postgres_admin_url};

/// diesel's bookkeeping table: its shape is diesel's, and its rows are migration versions.
const DIESEL_TABLE: &str = "__diesel_schema_migrations";

/// A fresh database of `market`, migrated by the store the way production does it.
fn migrated(market: Market, db: &TestDatabase) {
    let store = MarketStore::connect(market, db.url(), 2, Duration::from_secs(10)).unwrap();
    store.migrate().unwrap();
    // Migrating twice is a no-op (both trees are recorded in one bookkeeping table).
    store.migrate().unwrap();
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = Nullable<Text>)]
    c: Option<String>,
}

/// SQLite: every table, index and trigger of `sqlite_master` (not SQLite's own objects, whose
/// `sql` is NULL or derived) with its SQL normalised by [`normalise_sql`], sorted by type and name.
fn dump_sqlite(url: &str) -> String {
    let mut conn = SqliteConnection::establish(url.strip_prefix("sqlite://").unwrap()).unwrap();
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT type AS a, name AS b, sql AS c FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '{DIESEL_TABLE}' ORDER BY type, name"
    ))
    .load(&mut conn)
    .unwrap();
    let mut out = String::new();
    for row in rows {
        let sql = normalise_sql(row.c.as_deref().unwrap_or(""));
        out.push_str(&format!("-- {} {}\n{sql}\n\n", row.a, row.b));
    }
    out
}

/// PostgreSQL: columns (type, nullability, default), constraints and indexes of every table in
/// `public`, from the catalogs, sorted. NOT NULL is read from the columns, not from
/// `pg_constraint` (which lists it only from PostgreSQL 18 on), so the dump does not depend on
/// the server version.
fn dump_postgres(url: &str) -> String {
    let mut conn = PgConnection::establish(url).unwrap();
    let columns: Vec<Row> = diesel::sql_query(format!(
        "SELECT table_name::text AS a, \
                format('%s %s%s%s', column_name, data_type, \
                       CASE WHEN is_nullable = 'NO' THEN ' NOT NULL' ELSE '' END, \
                       coalesce(' DEFAULT ' || column_default, '')) AS b, \
                NULL AS c \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '{DIESEL_TABLE}' \
         ORDER BY table_name, ordinal_position"
    ))
    .load(&mut conn)
    .unwrap();
    let constraints: Vec<Row> = diesel::sql_query(format!(
        "SELECT c.conrelid::regclass::text AS a, \
                c.conname || ': ' || pg_get_constraintdef(c.oid) AS b, NULL AS c \
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = 'public' AND c.contype IN ('c', 'f', 'p', 'u', 'x') \
           AND c.conrelid::regclass::text <> '{DIESEL_TABLE}' \
         ORDER BY 1, 2"
    ))
    .load(&mut conn)
    .unwrap();
    let indexes: Vec<Row> = diesel::sql_query(format!(
        "SELECT tablename::text AS a, indexdef::text AS b, NULL AS c FROM pg_indexes \
         WHERE schemaname = 'public' AND tablename <> '{DIESEL_TABLE}' ORDER BY 1, indexname"
    ))
    .load(&mut conn)
    .unwrap();
    let sequences: Vec<Row> = diesel::sql_query(
        "SELECT sequencename::text AS a, \
                format('%s start %s increment %s', data_type, start_value, increment_by) AS b, \
                NULL AS c \
         FROM pg_sequences WHERE schemaname = 'public' \
           AND sequencename NOT LIKE '__diesel%' ORDER BY 1",
    )
    .load(&mut conn)
    .unwrap();

    let mut tables: Vec<&str> = columns.iter().map(|r| r.a.as_str()).collect();
    tables.dedup();
    let mut out = String::new();
    for table in tables {
        out.push_str(&format!("table {table}\n"));
        for (title, rows) in [
            ("column", &columns),
            ("constraint", &constraints),
            ("index", &indexes),
        ] {
            for row in rows.iter().filter(|r| r.a == table) {
                out.push_str(&format!("  {title} {}\n", row.b));
            }
        }
        out.push('\n');
    }
    for row in sequences {
        out.push_str(&format!("sequence {} {}\n", row.a, row.b));
    }
    out
}

/// `sql` without comments and with whitespace collapsed, so that layout and comments in the
/// migration files do not matter; the body of a `CREATE TABLE` is split at its top-level commas,
/// one column or table constraint per line, so that a diff names the line that changed.
fn normalise_sql(sql: &str) -> String {
    let without_comments: String = sql
        .lines()
        .map(|line| match line.find("--") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut flat = without_comments
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (from, to) in [("( ", "("), (" )", ")"), (" ,", ",")] {
        flat = flat.replace(from, to);
    }
    if !flat.starts_with("CREATE TABLE") {
        return flat;
    }
    let mut out = String::new();
    let mut depth = 0usize;
    for ch in flat.chars() {
        match ch {
            '(' => {
                depth += 1;
                out.push(ch);
                if depth == 1 {
                    out.push_str("\n  ");
                }
            }
            ')' => {
                if depth == 1 {
                    out.push('\n');
                }
                depth = depth.saturating_sub(1);
                out.push(ch);
            }
            ',' if depth == 1 => out.push_str(",\n "),
            _ => out.push(ch),
        }
    }
    out
}

fn snapshot(market: Market, backend: &str, dump: &str) {
    insta::with_settings!({ prepend_module_to_snapshot => true, omit_expression => true }, {
        insta::assert_snapshot!(format!("{}_{backend}", market.code()), dump);
    });
}

#[test]
fn sqlite_schema_matches_snapshot() {
    for market in [Market::Kg, Market::Us] {
        let db = TestDatabase::sqlite();
        migrated(market, &db);
        snapshot(market, "sqlite", &dump_sqlite(db.url()));
    }
}

#[test]
fn postgres_schema_matches_snapshot() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    for market in [Market::Kg, Market::Us] {
        let db = TestDatabase::postgres(&admin).unwrap();
        migrated(market, &db);
        snapshot(market, "postgres", &dump_postgres(db.url()));
    }
}

#[test]
fn normalised_sql_ignores_layout_and_comments() {
    let sql = "CREATE TABLE t (\n    id INTEGER PRIMARY KEY, -- key\n    v TEXT   NOT NULL\n \
               CHECK (v IN ('a', 'b'))\n)";
    assert_eq!(
        normalise_sql(sql),
        "CREATE TABLE t (\n  id INTEGER PRIMARY KEY,\n  v TEXT NOT NULL CHECK (v IN ('a', 'b'))\n)"
    );
}

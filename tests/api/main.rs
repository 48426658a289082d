//! End-to-end tests: the wired service over HTTP, on SQLite always and on PostgreSQL when
//! `MARQUE_TEST_POSTGRES_URL` is set (each test creates and drops its own databases).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod abuse;
mod account;
mod admin;
mod calls;
mod cli;
mod codes;
mod data;
mod delivery;
mod docs;
mod edge;
mod email;
mod helpers;
mod input;
mod instances;
mod limits;
mod login;
mod messenger;
mod metrics;
mod operations;
mod request_id;
mod sessions;
mod tokens;

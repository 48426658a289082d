//! The `marque` service: configuration, wiring and start-up. `main.rs` only parses the command
//! line and calls into this library, which the end-to-end tests use too.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::{Application, Overrides, open_stores};

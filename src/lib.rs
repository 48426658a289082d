//! The `marque` service: settings, wiring and start-up. `main.rs` only parses the command
//! line and calls into this library, which the end-to-end tests use too.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod delivery;
pub mod healthcheck;
pub mod metrics;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use settings::{Config, Settings, SettingsError};
pub use startup::{Application, Overrides, open_stores};

//! Shared set-up of the api crate's HTTP tests: the services on the real store (a SQLite file
//! per market), through `marque-testkit`.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use actix_web::web;
use chrono::{DateTime, Utc};
use marque_api::ApiState;
use marque_domain::AuthConfig;
use marque_markets::{Market, OtpCode};
use marque_testkit::Services;

/// Handler state at `start`, where `test_number` signs in with the fixed code `123456`, and the
/// services behind it (keep them alive as long as the state: they own the databases).
pub fn state(start: DateTime<Utc>, test_number: &str) -> (Services, web::Data<ApiState>) {
    let mut config = AuthConfig::default();
    config
        .test_numbers
        .insert(test_number.into(), OtpCode::parse("123456").unwrap());
    let services = Services::sqlite(config, start);
    let state = web::Data::new(ApiState {
        auth: services.auth.clone(),
        account: services.account.clone(),
        default_market: Market::Kg,
        trusted_proxies: vec![],
    });
    (services, state)
}

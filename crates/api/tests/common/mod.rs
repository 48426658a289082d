//! Shared set-up of the api crate's HTTP tests: the services over in-memory repositories.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use actix_web::web;
use chrono::{DateTime, Duration, Utc};
use marque_api::ApiState;
use marque_domain::memory::InMemoryStore;
use marque_domain::{
    AccountLimits, AccountService, AuthConfig, AuthDeps, AuthService, ManualClock, OsRandom,
    OtpHasher, PayloadSealer, TokenService,
};
use marque_markets::{Market, OtpCode};

pub const SECRET: &[u8] = b"api-test-secret-api-test-secret-xx";

/// Handler state over `kg` and a fresh US store, at `start`, where `test_number` signs in with
/// the fixed code `123456`.
pub fn state(
    kg: Arc<InMemoryStore>,
    start: DateTime<Utc>,
    test_number: &str,
) -> web::Data<ApiState> {
    let mut config = AuthConfig::default();
    config
        .test_numbers
        .insert(test_number.into(), OtpCode::parse("123456").unwrap());
    let us = Arc::new(InMemoryStore::new(Market::Us));
    let clock = Arc::new(ManualClock::new(start));
    let account = Arc::new(AccountService::new(
        vec![kg.clone(), us.clone()],
        clock.clone(),
        AccountLimits::default(),
    ));
    let auth = AuthService::new(
        AuthDeps {
            repos: vec![kg, us],
            clock,
            rng: Arc::new(OsRandom),
            hasher: OtpHasher::from_secret(SECRET),
            outbox_sealer: PayloadSealer::from_secret(SECRET),
            refresh_sealer: PayloadSealer::with_label(SECRET, b"refresh"),
            tokens: TokenService::hs256(SECRET, "marque", Duration::minutes(30)),
        },
        config,
    );
    web::Data::new(ApiState {
        auth: Arc::new(auth),
        account,
        default_market: Market::Kg,
        trusted_proxies: vec![],
    })
}

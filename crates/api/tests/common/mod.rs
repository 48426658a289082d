//! Shared set-up of the api crate's HTTP tests: the services on the real store (a SQLite file
//! per market), through `marque-testkit`.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web};
use chrono::{DateTime, Utc};
use marque_api::ApiState;
use marque_domain::AuthConfig;
use marque_markets::{Market, OtpCode};
use marque_testkit::Services;
use serde_json::Value;

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
        delivery: Default::default(),
        admin: Some(services.admin.clone()),
        messenger: None,
        email: None,
    });
    (services, state)
}

/// Everything logged by this test binary, as [`capture_logs`] collects it.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs, once per test binary, a global subscriber that logs up to `max_level` (span closes
/// included, no colours) into the returned [`Logs`]. The first call's level wins.
pub fn capture_logs(max_level: tracing::Level) -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(max_level)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
    .clone()
}

/// Calls `req`, asserts the status, and returns the JSON body.
pub async fn answer<R, B: MessageBody>(
    app: &impl Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    req: R,
    status: u16,
) -> Value {
    let res = test::call_service(app, req).await;
    assert_eq!(res.status().as_u16(), status);
    test::read_body_json(res).await
}

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Utc;
use diesel::prelude::*;
use marque::{Application, Config, Overrides};
use marque_domain::OutgoingMessage;
use marque_markets::Market;
use marque_testkit::{Capture, ManualClock, TestDatabase, postgres_admin_url};
use serde_json::{Value, json};

/// `SECRET_KEY` of every test app.
pub const SECRET_KEY: &str = "e2e-secret-e2e-secret-e2e-secret-e2e";

/// Storage backend of a test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one scenario as two tests, one per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestApp {
    pub base: String,
    /// `http://127.0.0.1:PORT` of the `METRICS_ADDR` listener, when set.
    pub metrics_base: Option<String>,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub sent: Arc<Capture>,
    urls: HashMap<Market, String>,
    handle: actix_web::dev::ServerHandle,
    _dbs: Vec<TestDatabase>,
}

impl TestApp {
    /// Starts the service on fresh databases; `None` when the backend is not available.
    pub async fn spawn(backend: Backend, vars: &[(&str, &str)]) -> Option<TestApp> {
        Self::spawn_with(backend, vars, false, true).await
    }

    /// [`TestApp::spawn`] with the delivery providers the settings in `vars` configure (pointed
    /// at local fakes), instead of capturing messages.
    pub async fn spawn_with_providers(backend: Backend, vars: &[(&str, &str)]) -> Option<TestApp> {
        Self::spawn_with(backend, vars, false, false).await
    }

    /// [`TestApp::spawn`] on the system clock instead of the manual one (`clock` is then not
    /// the service's), for tests of what happens between concurrent requests in real time.
    pub async fn spawn_with_system_clock(
        backend: Backend,
        vars: &[(&str, &str)],
    ) -> Option<TestApp> {
        Self::spawn_with(backend, vars, true, true).await
    }

    async fn spawn_with(
        backend: Backend,
        vars: &[(&str, &str)],
        system_clock: bool,
        capture: bool,
    ) -> Option<TestApp> {
        let dbs = match backend {
            Backend::Sqlite => vec![TestDatabase::sqlite(), TestDatabase::sqlite()],
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let a = admin.clone();
                tokio::task::spawn_blocking(move || {
                    vec![
                        TestDatabase::postgres(&a).unwrap(),
                        TestDatabase::postgres(&a).unwrap(),
                    ]
                })
                .await
                .unwrap()
            }
        };
        let urls: HashMap<Market, String> = [
            (Market::Kg, dbs[0].url().to_owned()),
            (Market::Us, dbs[1].url().to_owned()),
        ]
        .into();
        let mut env: HashMap<String, String> = [
            ("SECRET_KEY", SECRET_KEY),
            ("OUTBOX_POLL_INTERVAL_MS", "5"),
            ("DATABASE_POOL_SIZE", "4"),
            ("WORKERS", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.insert("DATABASE_URL_MARQUE_KG".into(), urls[&Market::Kg].clone());
        env.insert("DATABASE_URL_MARQUE_US".into(), urls[&Market::Us].clone());
        for (k, v) in vars {
            env.insert(k.to_string(), v.to_string());
        }
        let mut config = Config::from_vars(env).unwrap();
        config.listen_port = 0; // any free port: only code may ask for it, settings refuse 0

        let clock = Arc::new(ManualClock::new(Utc::now()));
        let sent = Arc::new(Capture::default());
        let app = Application::build(
            config,
            Overrides {
                clock: (!system_clock).then(|| clock.clone() as Arc<dyn marque_domain::Clock>),
                sender: capture.then(|| sent.clone() as Arc<dyn marque_domain::MessageSender>),
                email: capture.then(|| sent.clone() as Arc<dyn marque_domain::EmailSender>),
            },
        )
        .await
        .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let metrics_base = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Some(TestApp {
            base,
            metrics_base,
            http: reqwest::Client::builder()
                .user_agent("marque-e2e/1.0")
                .build()
                .unwrap(),
            clock,
            sent,
            urls,
            handle,
            _dbs: dbs,
        })
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn send_code(&self, phone: &str) -> reqwest::Response {
        self.post("/api/v1/auth/send-code", json!({ "phone_number": phone }))
            .await
    }

    pub async fn verify(&self, phone: &str, code: &str) -> reqwest::Response {
        self.post(
            "/api/v1/auth/verify-code",
            json!({ "phone_number": phone, "verification_code": code }),
        )
        .await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// [`get_auth`](Self::get_auth), its body read as JSON.
    pub async fn get_auth_json(&self, path: &str, token: &str) -> Value {
        self.get_auth(path, token).await.json().await.unwrap()
    }

    /// Waits for the delivery worker to hand the newest message for `e164` to the provider and
    /// returns the code in it.
    pub async fn code_for(&self, e164: &str, nth: usize) -> String {
        for _ in 0..4000 {
            let mine = self.sent.to(e164);
            if mine.len() > nth {
                return mine[nth].code.as_str().to_owned();
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        panic!("no message number {nth} delivered to {e164}");
    }

    /// Sends a code to `e164` (whatever the answer) and returns message number `nth` to it.
    pub async fn send_and_read_code(&self, e164: &str, nth: usize) -> String {
        self.send_code(e164).await;
        self.code_for(e164, nth).await
    }

    pub fn messages_to(&self, e164: &str) -> Vec<OutgoingMessage> {
        self.sent.to(e164)
    }

    /// Sends a code, reads it from the provider and verifies it; returns the verify response.
    pub async fn login(&self, phone: &str, e164: &str) -> Value {
        let before = self.messages_to(e164).len();
        assert_eq!(self.send_code(phone).await.status(), 200);
        let code = self.code_for(e164, before).await;
        let res = self.verify(phone, &code).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// The URL of `market`'s database (`sqlite://…` or `postgres://…`).
    pub fn db_url(&self, market: Market) -> &str {
        &self.urls[&market]
    }

    /// Rows in `table` of `market`'s database, read directly.
    pub async fn count(&self, market: Market, table: &'static str) -> i64 {
        let url = self.urls[&market].clone();
        tokio::task::spawn_blocking(move || count_rows(&url, table))
            .await
            .unwrap()
    }

    /// `POST` of the JSON `body` with a bearer token.
    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.send_auth(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// `POST` with a bearer token and optional JSON body.
    pub async fn send_auth(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// The newest email sent to `to` from `market` ([`TestApp::emails`]).
    pub async fn latest_email(&self, market: Market, to: &str) -> marque_domain::EmailPayload {
        self.emails(market, to)
            .await
            .pop()
            .unwrap_or_else(|| panic!("no email to {to} from {market:?}"))
    }

    /// The emails sent to `to` from `market`, oldest first, once the delivery worker has handed
    /// every email row queued to `to` (in any market) to the capturing transport: their kind and
    /// the link token of their plain-text body (`ttl_minutes` is not carried by a sent email: 0).
    pub async fn emails(&self, market: Market, to: &str) -> Vec<marque_domain::EmailPayload> {
        let mut queued = 0;
        for m in [Market::Kg, Market::Us] {
            let url = self.urls[&m].clone();
            let q = format!(
                "SELECT COUNT(*) AS n FROM outbox WHERE channel = 'email' AND recipient = '{}'",
                to.replace('\'', "''")
            );
            queued += tokio::task::spawn_blocking(move || count_query(&url, &q))
                .await
                .unwrap();
        }
        for _ in 0..4000 {
            let sent = self.sent.emails_to(to);
            if sent.len() as i64 >= queued {
                return sent
                    .into_iter()
                    .filter(|e| e.market == market)
                    .map(|e| marque_domain::EmailPayload {
                        kind: e.kind,
                        token: e
                            .text
                            .split_whitespace()
                            .find_map(|w| w.split_once("token=").map(|(_, t)| t.to_owned()))
                            .unwrap_or_default(),
                        ttl_minutes: 0,
                    })
                    .collect();
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        panic!("{queued} emails queued to {to}, not all delivered");
    }

    /// Email outbox rows to `to` in `market`'s database (whatever their state).
    pub async fn email_rows(&self, market: Market, to: &str) -> i64 {
        let url = self.urls[&market].clone();
        let q = format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE channel = 'email' AND recipient = '{}'",
            to.replace('\'', "''")
        );
        tokio::task::spawn_blocking(move || count_query(&url, &q))
            .await
            .unwrap()
    }

    /// `POST` of the JSON `body` with extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// `POST` of a form (`application/x-www-form-urlencoded`) with extra headers.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Runs a statement on `market`'s database directly; returns the rows changed.
    pub async fn execute(&self, market: Market, sql: String) -> usize {
        let url = self.urls[&market].clone();
        tokio::task::spawn_blocking(move || {
            if let Some(path) = url.strip_prefix("sqlite://") {
                let mut c = marque_testkit::sqlite_connection(path);
                diesel::sql_query(sql).execute(&mut c).unwrap()
            } else {
                let mut c = PgConnection::establish(&url).unwrap();
                diesel::sql_query(sql).execute(&mut c).unwrap()
            }
        })
        .await
        .unwrap()
    }

    /// The byte strings returned by `sql` (one Binary column named `b`), read directly.
    pub async fn blobs(&self, market: Market, sql: &'static str) -> Vec<Vec<u8>> {
        let url = self.urls[&market].clone();
        tokio::task::spawn_blocking(move || load_blobs(&url, sql))
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server before the databases are dropped.
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count_rows(url: &str, table: &str) -> i64 {
    count_query(url, &format!("SELECT COUNT(*) AS n FROM {table}"))
}

/// The `n` of the one row `q` returns.
fn count_query(url: &str, q: &str) -> i64 {
    let q = q.to_owned();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = marque_testkit::sqlite_connection(path);
        diesel::sql_query(q).get_result::<Count>(&mut c).unwrap().n
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(q).get_result::<Count>(&mut c).unwrap().n
    }
}

#[derive(QueryableByName)]
struct Blob {
    #[diesel(sql_type = diesel::sql_types::Binary)]
    b: Vec<u8>,
}

fn load_blobs(url: &str, sql: &str) -> Vec<Vec<u8>> {
    let rows: Vec<Blob> = if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = marque_testkit::sqlite_connection(path);
        diesel::sql_query(sql).load(&mut c).unwrap()
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(sql).load(&mut c).unwrap()
    };
    rows.into_iter().map(|r| r.b).collect()
}

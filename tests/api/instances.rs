//! Several `marque` instances on one database, and EdDSA keys with key rotation.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use marque_markets::Market;
use marque_testkit::{TestDatabase, postgres_admin_url};
use marque_verify::Verifier;
use serde_json::{Value, json};

use crate::calls::{app_get, app_get_json};
use crate::helpers::{Backend, TestApp};

/// A `marque` process, killed on drop.
struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(kg: &str, us: &str, extra: &[(&str, &str)]) -> Instance {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_marque"));
    cmd.env_clear()
        .env("PORT", port.to_string())
        .env("SECRET_KEY", "two-instances-two-instances-secret!!")
        .env("DATABASE_URL_MARQUE_KG", kg)
        .env("DATABASE_URL_MARQUE_US", us)
        .env("DATABASE_POOL_SIZE", "4")
        .env("WORKERS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let instance = Instance {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..600 {
        let health = http.get(format!("{}/health", instance.base)).send().await;
        if health.is_ok_and(|r| r.status() == 200) {
            return instance;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("marque did not become healthy on port {port}");
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn login(http: &reqwest::Client, base: &str) -> Value {
    let phone = "+996555000001";
    let r = post(
        http,
        format!("{base}/api/v1/auth/send-code"),
        None,
        json!({"phone_number": phone}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(
        http,
        format!("{base}/api/v1/auth/verify-code"),
        None,
        json!({"phone_number": phone, "verification_code": "123456"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `POST /api/v1/auth/refresh` of the instance at `base` with `refresh_token`.
async fn refresh(http: &reqwest::Client, base: &str, refresh_token: &str) -> reqwest::Response {
    let body = json!({ "refresh_token": refresh_token });
    post(http, format!("{base}/api/v1/auth/refresh"), None, body).await
}

async fn status(http: &reqwest::Client, url: String, token: &str) -> u16 {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Fresh KG and US databases on the PostgreSQL of `MARQUE_TEST_POSTGRES_URL`; `None` without it.
async fn postgres_databases() -> Option<[TestDatabase; 2]> {
    let admin = postgres_admin_url()?;
    let dbs = tokio::task::spawn_blocking(move || {
        [
            TestDatabase::postgres(&admin).unwrap(),
            TestDatabase::postgres(&admin).unwrap(),
        ]
    })
    .await
    .unwrap();
    Some(dbs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_agree_on_logout_and_refresh_reuse() {
    let Some(dbs) = postgres_databases().await else {
        return;
    };
    two_processes_agree(dbs[0].url(), dbs[1].url()).await;
}

/// Variable naming a PgBouncer in front of the PostgreSQL of `MARQUE_TEST_POSTGRES_URL`, e.g.
/// `postgres://postgres@127.0.0.1:6433/postgres` (its database name is replaced by each test
/// database's); `.ci/pgbouncer-check.sh` starts one in session pooling mode and sets it.
const PGBOUNCER_URL_VAR: &str = "MARQUE_TEST_PGBOUNCER_URL";

/// `url` (a test database on PostgreSQL) reached through the PgBouncer at `bouncer` instead.
fn through(bouncer: &str, url: &str) -> String {
    let database = url.rsplit('/').next().unwrap();
    let base = bouncer.rsplit_once('/').unwrap().0;
    format!("{base}/{database}")
}

/// Issue 11: two instances whose market databases are reached through PgBouncer (session
/// pooling: diesel's named prepared statements and the migration's session advisory lock need
/// one server connection per client connection) agree on sessions like two instances connected
/// directly. Skipped unless `MARQUE_TEST_PGBOUNCER_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_through_pgbouncer_agree_on_logout_refresh_reuse_and_disabling() {
    let Some(bouncer) = std::env::var(PGBOUNCER_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        return;
    };
    let dbs = postgres_databases()
        .await
        .expect("MARQUE_TEST_PGBOUNCER_URL needs MARQUE_TEST_POSTGRES_URL too");
    let (kg, us) = (
        through(&bouncer, dbs[0].url()),
        through(&bouncer, dbs[1].url()),
    );
    two_processes_agree(&kg, &us).await;

    // An operator disabling the account on A ends its sessions on B at once.
    let key = "pgbouncer-admin-key-pgbouncer-admin-key!";
    let env = [
        ("TEST_PHONE_NUMBERS", "+996555000001=123456"),
        ("ADMIN_API_KEY", key),
    ];
    let a = start(&kg, &us, &env).await;
    let b = start(&kg, &us, &env).await;
    let http = reqwest::Client::new();
    let signed_in = login(&http, &b.base).await;
    let token = signed_in["access_token"].as_str().unwrap();
    let user = signed_in["user_id"].as_i64().unwrap();
    let verify = format!("{}/api/v1/auth/verify-token", b.base);
    assert_eq!(status(&http, verify.clone(), token).await, 200);
    let r = post(
        &http,
        format!("{}/api/v1/admin/users/kg/{user}/disable", a.base),
        Some(key),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(status(&http, verify, token).await, 401);
    drop((a, b));
}

/// Two instances on the market databases `kg` and `us`: a logout on one is seen by the other at
/// once, and a refresh token rotated on one is reuse on the other.
async fn two_processes_agree(kg: &str, us: &str) {
    let env = [
        ("TEST_PHONE_NUMBERS", "+996555000001=123456"),
        ("REFRESH_REUSE_GRACE_SECONDS", "0"),
    ];
    let a = start(kg, us, &env).await;
    let b = start(kg, us, &env).await;
    let http = reqwest::Client::new();

    // Logout on A is seen by B at once.
    let first = login(&http, &a.base).await;
    let t1 = first["access_token"].as_str().unwrap();
    assert_eq!(
        status(&http, format!("{}/api/v1/auth/verify-token", b.base), t1).await,
        200
    );
    let r = post(
        &http,
        format!("{}/api/v1/auth/logout", a.base),
        Some(t1),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        status(&http, format!("{}/api/v1/auth/verify-token", b.base), t1).await,
        401
    );
    assert_eq!(
        status(&http, format!("{}/api/v1/auth/profile", a.base), t1).await,
        401
    );

    // A refresh rotated on A is reuse on B, which revokes the session for both.
    let second = login(&http, &a.base).await;
    let r2 = second["refresh_token"].as_str().unwrap();
    let rotated: Value = refresh(&http, &a.base, r2).await.json().await.unwrap();
    let r3 = rotated["refresh_token"].as_str().unwrap();
    let reuse = refresh(&http, &b.base, r2).await;
    assert_eq!(reuse.status(), 401);
    let err: Value = reuse.json().await.unwrap();
    assert_eq!(err["error"], "refresh_token_reused");
    let after = refresh(&http, &a.base, r3).await;
    assert_eq!(after.status(), 401);
    let t3 = rotated["access_token"].as_str().unwrap();
    assert_eq!(
        status(&http, format!("{}/api/v1/auth/verify-token", a.base), t3).await,
        401
    );
    drop((a, b));
}

fn write_key(dir: &std::path::Path, seed: u8) -> (String, String) {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let private = dir.join(format!("key-{seed}.pem"));
    let public = dir.join(format!("key-{seed}.pub.pem"));
    std::fs::write(
        &private,
        sk.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        &public,
        sk.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    (private.display().to_string(), public.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_tokens_verify_with_the_published_jwks_across_key_rotation() {
    let dir = std::env::temp_dir().join(format!("marque-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (k1, k1_pub) = write_key(&dir, 1);
    let (k2, _) = write_key(&dir, 2);

    let old = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_SIGNING_KEY_FILE", &k1),
            ("JWT_SIGNING_KEY_ID", "2026-01"),
        ],
    )
    .await
    .unwrap();
    let login = old.login("+12125550100", "+12125550100").await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let jwks = app_get(&old, "/.well-known/jwks.json").await;
    assert_eq!(jwks.status(), 200);
    let jwks = jwks.text().await.unwrap();
    assert!(jwks.contains("\"kid\":\"2026-01\""), "{jwks}");
    assert!(!jwks.contains("PRIVATE"));
    // Another service verifies the token with marque-verify and the JWKS alone.
    let verified = Verifier::from_jwks_json(&jwks, "marque")
        .unwrap()
        .verify(&token)
        .unwrap();
    assert_eq!(verified.market, "us");
    assert_eq!(verified.user_id, login["user_id"].as_i64().unwrap());

    // Rotate: a new instance signs with key 2 and still accepts key 1's tokens (same databases).
    let retired = format!("2026-01={k1_pub}");
    let new = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_SIGNING_KEY_FILE", &k2),
            ("JWT_SIGNING_KEY_ID", "2026-02"),
            ("JWT_VERIFICATION_KEYS", &retired),
            ("DATABASE_URL_MARQUE_KG", old.db_url(Market::Kg)),
            ("DATABASE_URL_MARQUE_US", old.db_url(Market::Us)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        new.get_auth("/api/v1/auth/verify-token", &token)
            .await
            .status(),
        200
    );
    let jwks: Value = app_get_json(&new, "/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["2026-02", "2026-01"]);
    // An instance without a key file signs with the key derived from its SECRET_KEY, publishes
    // only that one, and refuses the file keys' tokens.
    let derived = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let own: Value = app_get_json(&derived, "/.well-known/jwks.json").await;
    let own = own["keys"].as_array().unwrap();
    assert_eq!(own.len(), 1);
    assert!(!["2026-01", "2026-02"].contains(&own[0]["kid"].as_str().unwrap()));
    assert_eq!(
        derived
            .get_auth("/api/v1/auth/verify-token", &token)
            .await
            .status(),
        401
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Keys and tokens (issue 12 items 3, 5, 6): access tokens always verify by public key with
//! `marque-verify`, carry RFC 9068 claims, are refused when longer-lived or not yet valid, and a
//! refresh replay is honoured only for the client that rotated the token.

use base64::Engine;
use chrono::Duration;
use marque_domain::{Clock, KeyRing, SessionId, TokenService, UserId};
use marque_markets::Market;
use marque_verify::{Verifier, VerifyError};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

/// `SECRET_KEY` of [`TestApp`].
const SECRET: &[u8] = b"e2e-secret-e2e-secret-e2e-secret-e2e";

async fn jwks(app: &TestApp) -> String {
    let res = app
        .http
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

fn header(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Items 3 and 5: with default settings (no key file) the service signs with the Ed25519 key
/// derived from `SECRET_KEY`, publishes its public half, and another service verifies the token
/// with `marque-verify` and the JWKS alone. `sub` is unique for the issuer; `typ` is `at+jwt`;
/// `/verify-token` keeps its shape (`user_id` a number).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tokens_verify_by_public_key_with_rfc9068_claims() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let kg = app.login("+996700123456", "+996700123456").await;
    let us = app.login("+12125550100", "+12125550100").await;
    let set = jwks(&app).await;
    assert!(!set.contains("PRIVATE") && !set.contains("\"d\""), "{set}");
    let verifier = Verifier::from_jwks_json(&set, "marque").unwrap();
    let kg_token = kg["access_token"].as_str().unwrap();
    let v = verifier.verify(kg_token).unwrap();
    assert_eq!(v.market, "kg");
    assert_eq!(v.user_id, kg["user_id"].as_i64().unwrap());
    assert_eq!(v.claims.sub, format!("kg:{}", v.user_id));
    assert_eq!(v.claims.nbf, v.claims.iat);
    assert_eq!(v.claims.aud, None);
    let u = verifier
        .verify(us["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(u.claims.sub, format!("us:{}", u.user_id));
    assert_ne!(
        u.claims.sub, v.claims.sub,
        "KG and US users have distinct subjects"
    );

    let h = header(kg_token);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "EdDSA");
    assert_eq!(
        h["kid"].as_str(),
        Some(KeyRing::derive(SECRET).jwt_signing_key().kid.as_str())
    );

    let res = app.get_auth("/api/v1/auth/verify-token", kg_token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"].as_i64(), Some(v.user_id));
}

/// A token for the signed-in user of `login`, signed with the service's own (derived) key, with
/// the given lifetime, issued at the service's now + `shift`.
fn forge(app: &TestApp, login: &Value, sid: &str, ttl: Duration, shift: Duration) -> String {
    let user = UserId(login["user_id"].as_i64().unwrap());
    TokenService::derived(&KeyRing::derive(SECRET), "marque", ttl)
        .issue(
            user,
            Market::Kg,
            &SessionId(sid.to_owned()),
            "forged".into(),
            app.clock.now() + shift,
        )
        .0
}

/// Item 5: with `JWT_AUDIENCE`, tokens carry `aud` and tokens without it are refused, by the
/// service and by `marque-verify` naming the audience.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audience_is_stamped_and_checked() {
    let app = TestApp::spawn(Backend::Sqlite, &[("JWT_AUDIENCE", "shop")])
        .await
        .unwrap();
    let login = app.login("+996700123456", "+996700123456").await;
    let token = login["access_token"].as_str().unwrap();
    let set = jwks(&app).await;
    let shop = Verifier::from_jwks_json(&set, "marque")
        .unwrap()
        .with_audience("shop");
    let claims = shop.verify(token).unwrap().claims;
    assert_eq!(claims.aud.as_deref(), Some("shop"));
    let bank = Verifier::from_jwks_json(&set, "marque")
        .unwrap()
        .with_audience("bank");
    assert_eq!(bank.verify(token), Err(VerifyError::Invalid));

    assert_eq!(
        app.get_auth("/api/v1/auth/profile", token).await.status(),
        200
    );
    // Same key, same live session, no `aud`: refused.
    let no_aud = forge(
        &app,
        &login,
        &claims.sid,
        Duration::minutes(30),
        Duration::zero(),
    );
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", &no_aud).await.status(),
        401
    );
}

/// Item 5: a token whose `exp - iat` exceeds `ACCESS_TOKEN_EXPIRE_MINUTES`, or whose `nbf` lies
/// ahead, is refused even though our key signed it and its session is live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_or_not_yet_valid_tokens_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await.unwrap();
    let login = app.login("+996700123456", "+996700123456").await;
    let token = login["access_token"].as_str().unwrap();
    let sid = Verifier::from_jwks_json(&jwks(&app).await, "marque")
        .unwrap()
        .verify(token)
        .unwrap()
        .session_id;
    let status = |t: String| {
        let app = &app;
        async move { app.get_auth("/api/v1/auth/profile", &t).await.status() }
    };
    // Control: a token forged like the service's own is accepted.
    let same = forge(&app, &login, &sid, Duration::minutes(30), Duration::zero());
    assert_eq!(status(same).await, 200);
    let long = forge(&app, &login, &sid, Duration::hours(24), Duration::zero());
    assert_eq!(status(long).await, 401);
    let later = forge(
        &app,
        &login,
        &sid,
        Duration::minutes(30),
        Duration::minutes(10),
    );
    assert_eq!(status(later).await, 401);
}

async fn refresh_as(app: &TestApp, user_agent: &str, token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .user_agent(user_agent.to_owned())
        .build()
        .unwrap()
        .post(format!("{}/api/v1/auth/refresh", app.base))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

/// Item 6: inside the grace window a retry by the same client (same user agent, same IP prefix)
/// gets the same successor again — recomputed, nothing reversible is stored — while the same
/// replay from another client is reuse and revokes the session.
async fn refresh_replay_is_honoured_only_for_the_same_client(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    let login = app.login("+996700123456", "+996700123456").await;
    let first = login["refresh_token"].as_str().unwrap();
    let rotated = refresh_as(&app, "shop-app/2.1", first).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    let retry = refresh_as(&app, "shop-app/2.1", first).await;
    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["refresh_token"].as_str(), Some(second));
    // Nothing on the rotated row holds the successor, sealed or not.
    let blobs = app
        .blobs(
            Market::Kg,
            "SELECT rotated_client AS b FROM refresh_tokens WHERE rotated_client IS NOT NULL",
        )
        .await;
    assert_eq!(blobs.len(), 1, "the rotated row records its client");
    for blob in blobs {
        assert_eq!(blob.len(), 32);
        assert!(
            !blob
                .windows(8)
                .any(|w| second.as_bytes().windows(8).any(|s| s == w))
        );
    }

    let stolen = refresh_as(&app, "curl/8.5", first).await;
    assert_eq!(stolen.status(), 401);
    let err: Value = stolen.json().await.unwrap();
    assert_eq!(err["error"], "refresh_token_reused");
    assert_eq!(refresh_as(&app, "shop-app/2.1", second).await.status(), 401);
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", access).await.status(),
        401
    );
}

both_backends!(refresh_replay_is_honoured_only_for_the_same_client);

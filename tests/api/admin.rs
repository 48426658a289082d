//! The admin API (issue 11) end to end: off without `ADMIN_API_KEY`, 401 for a wrong key, and
//! an operator finding, disabling, enabling a user, ending sessions and reading the audit log
//! and the outbox — every call audited.

use marque_markets::Market;
use serde_json::{Value, json};

use crate::both_backends;
use crate::calls::{FIXED_CODE, app_get_json, call, sign_in_fixed};
use crate::helpers::{Backend, TestApp};

const KEY: &str = "e2e-admin-key-e2e-admin-key-e2e-admin-key!";
const KG: &str = "+996555000001";

both_backends!(
    the_admin_api_is_off_without_a_key,
    a_missing_or_wrong_key_is_refused_and_not_audited,
    operators_find_disable_enable_and_end_sessions,
    operators_read_the_audit_log_and_the_outbox_without_codes,
    admin_queries_are_validated
);

async fn spawn(backend: Backend, with_key: bool) -> Option<TestApp> {
    let numbers = format!("{KG}={FIXED_CODE}");
    let mut vars = vec![("TEST_PHONE_NUMBERS", numbers.as_str())];
    if with_key {
        vars.push(("ADMIN_API_KEY", KEY));
    }
    TestApp::spawn(backend, &vars).await
}

async fn admin(app: &TestApp, method: &str, path: &str) -> (u16, Value) {
    call(app, method, path, KEY, None).await
}

/// The `admin_action` rows in `market`'s audit log.
async fn admin_rows(app: &TestApp, market: Market) -> i64 {
    app.count(market, "audit_log WHERE event = 'admin_action'")
        .await
}

async fn the_admin_api_is_off_without_a_key(backend: Backend) {
    let Some(app) = spawn(backend, false).await else {
        return;
    };
    let unknown = app_get_json(&app, "/api/v1/nope").await;
    for (method, path) in [
        ("GET", format!("/api/v1/admin/users?phone=%2B{}", &KG[1..])),
        ("POST", "/api/v1/admin/users/kg/1/disable".to_owned()),
        ("POST", "/api/v1/admin/users/kg/1/enable".to_owned()),
        ("DELETE", "/api/v1/admin/users/kg/1/sessions".to_owned()),
        ("GET", "/api/v1/admin/audit?market=kg".to_owned()),
        ("GET", "/api/v1/admin/outbox?market=kg".to_owned()),
    ] {
        // With any key, or none: the same answer as a path that does not exist.
        for key in [KEY, "anything"] {
            let (status, body) = call(&app, method, &path, key, None).await;
            assert_eq!(status, 404, "{method} {path}");
            assert_eq!(body["error"], unknown["error"]);
            assert_eq!(body["message"], unknown["message"]);
        }
        let res = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    assert_eq!(app.count(Market::Kg, "audit_log").await, 0);
}

async fn a_missing_or_wrong_key_is_refused_and_not_audited(backend: Backend) {
    let Some(app) = spawn(backend, true).await else {
        return;
    };
    let token = sign_in_fixed(&app, KG, None).await;
    let path = "/api/v1/admin/audit?market=kg";
    let wrong_keys = [
        &KEY[..KEY.len() - 1],
        &format!("{KEY}x"),
        "e2e-admin-key",
        token.as_str(),
    ];
    for key in wrong_keys {
        let res = app.send_auth(reqwest::Method::GET, path, key, None).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"marque-admin\""
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "admin_unauthorized");
        assert!(body["request_id"].is_string());
    }
    let res = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(format!("{}{path}", app.base))
        .header("Authorization", format!("Basic {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Refusals write no audit row (no database writes for unauthenticated callers).
    assert_eq!(admin_rows(&app, Market::Kg).await, 0);
    // The admin key is not a shopper's token either.
    let (status, body) = call(&app, "GET", "/api/v1/auth/profile", KEY, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

async fn operators_find_disable_enable_and_end_sessions(backend: Backend) {
    let Some(app) = spawn(backend, true).await else {
        return;
    };
    let first = sign_in_fixed(&app, KG, Some("phone-a")).await;
    app.clock.advance(chrono::Duration::seconds(1));
    let second = sign_in_fixed(&app, KG, Some("phone-b")).await;

    let (status, found) = admin(&app, "GET", "/api/v1/admin/users?phone=%2B996555000001").await;
    assert_eq!(status, 200, "{found}");
    let users = found["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    let user = &users[0];
    assert_eq!(user["market"], "kg");
    assert_eq!(user["phone_number"], KG);
    assert_eq!(user["is_active"], true);
    let agents: Vec<&str> = user["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["phone-b", "phone-a"]);
    let id = user["id"].as_i64().unwrap();
    // The `+` may be left out (a bare `+` in a query string is a space).
    let (_, again) = admin(&app, "GET", "/api/v1/admin/users?phone=996555000001").await;
    assert_eq!(again["users"][0]["id"], id);
    let (_, again) = admin(&app, "GET", "/api/v1/admin/users?phone=+996555000001").await;
    assert_eq!(again["users"][0]["id"], id);
    // A number without an account, an email (no email accounts yet): nobody.
    let (status, none) = admin(&app, "GET", "/api/v1/admin/users?phone=%2B12125550100").await;
    assert_eq!((status, none["users"].as_array().unwrap().len()), (200, 0));
    let (status, none) = admin(&app, "GET", "/api/v1/admin/users?email=anna%40example.com").await;
    assert_eq!((status, none["users"].as_array().unwrap().len()), (200, 0));

    // Disable: both sessions end at once, and a right code no longer signs in.
    let (status, body) = admin(
        &app,
        "POST",
        &format!("/api/v1/admin/users/kg/{id}/disable"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["is_active"].as_bool(), body["sessions_ended"].as_u64()),
        (Some(false), Some(2))
    );
    for token in [&first, &second] {
        let res = app.get_auth("/api/v1/auth/profile", token).await;
        assert_eq!(res.status(), 401);
    }
    assert_eq!(app.send_code(KG).await.status(), 200);
    let res = app.verify(KG, FIXED_CODE).await;
    assert_eq!(res.status(), 403);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "account_disabled");
    let (_, found) = admin(&app, "GET", "/api/v1/admin/users?phone=%2B996555000001").await;
    assert_eq!(found["users"][0]["is_active"], false);
    assert!(found["users"][0]["sessions"].as_array().unwrap().is_empty());

    // Enable: sign-in works again; then end that session alone.
    let (status, body) = admin(&app, "POST", &format!("/api/v1/admin/users/kg/{id}/enable")).await;
    assert_eq!((status, body["is_active"].as_bool()), (200, Some(true)));
    let third = sign_in_fixed(&app, KG, None).await;
    let (status, body) = admin(
        &app,
        "DELETE",
        &format!("/api/v1/admin/users/kg/{id}/sessions"),
    )
    .await;
    assert_eq!((status, body["sessions_ended"].as_u64()), (200, Some(1)));
    assert_eq!(
        app.get_auth("/api/v1/auth/profile", &third).await.status(),
        401
    );
    sign_in_fixed(&app, KG, None).await;

    // Unknown users, markets and ids are 404; the same user id in the other market is another
    // user (who does not exist).
    for path in [
        format!("/api/v1/admin/users/us/{id}/disable"),
        "/api/v1/admin/users/kg/999999/disable".to_owned(),
        "/api/v1/admin/users/xx/1/disable".to_owned(),
        "/api/v1/admin/users/kg/abc/enable".to_owned(),
    ] {
        let (status, body) = admin(&app, "POST", &path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }

    // Every authenticated call is in the audit log of its market, by key fingerprint.
    let kg_admin = admin_rows(&app, Market::Kg).await;
    // KG: four lookups of the KG number and the email one (every market), disable, enable,
    // end sessions, and the unknown KG user. Paths naming no market or no id reach no database.
    assert_eq!(kg_admin, 4 + 1 + 3 + 1);
    assert_eq!(admin_rows(&app, Market::Us).await, 1 + 1 + 1);
}

async fn operators_read_the_audit_log_and_the_outbox_without_codes(backend: Backend) {
    let Some(app) = spawn(backend, true).await else {
        return;
    };
    sign_in_fixed(&app, KG, Some("phone-a")).await;
    let us = "+12125550100";
    let login = app.login(us, us).await;
    let code = app.messages_to(us)[0]
        .text
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect::<String>();
    assert_eq!(code.len(), 6);
    let user = login["user_id"].as_i64().unwrap();

    let (status, page) = admin(&app, "GET", "/api/v1/admin/audit?market=kg").await;
    assert_eq!(status, 200, "{page}");
    let events: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "admin_action",
            "test_number_used",
            "sign_in",
            "test_number_used"
        ]
    );
    let read = &page["entries"][0];
    let detail = read["detail"].as_str().unwrap();
    assert!(detail.starts_with("admin=") && detail.ends_with("action=read_audit target=audit"));
    assert!(!page.to_string().contains(KEY));
    assert_eq!(read["client_ip"], "127.0.0.1");
    assert_eq!(read["user_agent"], "marque-e2e/1.0");
    let fingerprint = detail
        .strip_prefix("admin=")
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(fingerprint.len(), 12);

    // One user's rows, a limit, and a time filter.
    let (_, page) = admin(
        &app,
        "GET",
        &format!("/api/v1/admin/audit?market=us&user_id={user}&limit=2"),
    )
    .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["user_id"] == user));
    assert_eq!(entries[1]["event"], "sign_in");
    let (_, page) = admin(
        &app,
        "GET",
        "/api/v1/admin/audit?market=us&since=2999-01-01T00:00:00Z",
    )
    .await;
    assert!(page["entries"].as_array().unwrap().is_empty());

    // The outbox: where the message stands, never its payload or code.
    let (status, page) = admin(&app, "GET", "/api/v1/admin/outbox?market=us").await;
    assert_eq!(status, 200, "{page}");
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["recipient"], us);
    assert_eq!(messages[0]["status"], "sent");
    assert_eq!(messages[0]["channel"], "sms");
    assert!(messages[0].get("payload").is_none());
    assert!(!page.to_string().contains(&code), "{page}");
    let (_, page) = admin(&app, "GET", "/api/v1/admin/outbox?market=us&status=pending").await;
    assert!(page["messages"].as_array().unwrap().is_empty());
    let (_, page) = admin(&app, "GET", "/api/v1/admin/outbox?market=kg").await;
    assert!(page["messages"].as_array().unwrap().is_empty());
}

async fn admin_queries_are_validated(backend: Backend) {
    let Some(app) = spawn(backend, true).await else {
        return;
    };
    for (path, status, code, field) in [
        (
            "/api/v1/admin/users",
            422,
            "validation_error",
            Some("phone"),
        ),
        (
            "/api/v1/admin/users?phone=%2B996555000001&email=a%40b.c",
            422,
            "validation_error",
            Some("phone"),
        ),
        (
            "/api/v1/admin/users?email=nobody",
            422,
            "validation_error",
            Some("email"),
        ),
        ("/api/v1/admin/users?phone=12", 422, "invalid_phone", None),
        (
            "/api/v1/admin/audit",
            422,
            "validation_error",
            Some("market"),
        ),
        ("/api/v1/admin/audit?market=xx", 400, "unknown_market", None),
        (
            "/api/v1/admin/audit?market=kg&limit=0",
            422,
            "validation_error",
            Some("limit"),
        ),
        (
            "/api/v1/admin/audit?market=kg&limit=501",
            422,
            "validation_error",
            Some("limit"),
        ),
        (
            "/api/v1/admin/audit?market=kg&since=yesterday",
            422,
            "validation_error",
            Some("since"),
        ),
        (
            "/api/v1/admin/audit?market=kg&user_id=-1",
            422,
            "validation_error",
            Some("user_id"),
        ),
        (
            "/api/v1/admin/outbox?market=kg&status=lost",
            422,
            "validation_error",
            Some("status"),
        ),
        (
            "/api/v1/admin/outbox",
            422,
            "validation_error",
            Some("market"),
        ),
    ] {
        let (s, body) = admin(&app, "GET", path).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert_eq!(body["field"].as_str(), field, "{path}");
    }
    // Refused queries touch no database: no audit row.
    assert_eq!(admin_rows(&app, Market::Kg).await, 0);
    let (status, _) = call(&app, "PUT", "/api/v1/admin/users", KEY, Some(json!({}))).await;
    assert_eq!(status, 405);
}

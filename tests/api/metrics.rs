//! `GET /metrics` (issue 11): Prometheus text with the request, code, verification, outbox,
//! pool, delivery and SMS-guard metrics, never a phone number; on its own listener with
//! `METRICS_ADDR`.
//!
//! The recorder is process-wide, so other tests of this binary add to the same counters: the
//! assertions look for series and lower bounds, never exact totals.

use marque_markets::Market;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(metrics_cover_requests_codes_outbox_pools_and_delivery);

const KG: &str = "+996505325311";

/// The value of the series `name` whose labels include every `labels` pair.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn metrics_cover_requests_codes_outbox_pools_and_delivery(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[]).await else {
        return;
    };
    app.login(KG, KG).await;
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let text = res.text().await.unwrap();

    let send = [
        ("method", "POST"),
        ("route", "/api/v1/auth/send-code"),
        ("status", "200"),
    ];
    assert!(value(&text, "marque_http_requests_total", &send).unwrap() >= 1.0);
    assert!(value(&text, "marque_http_request_duration_seconds_count", &send).unwrap() >= 1.0);
    assert!(text.contains("# TYPE marque_http_request_duration_seconds histogram"));
    let sent = [("market", "kg"), ("channel", "sms"), ("result", "sent")];
    assert!(value(&text, "marque_codes_sent_total", &sent).unwrap() >= 1.0);
    let ok = [("market", "kg"), ("result", "success")];
    assert!(value(&text, "marque_verifications_total", &ok).unwrap() >= 1.0);
    // This app's own outbox: its message was delivered.
    let kg_sent = [("market", "kg"), ("status", "sent")];
    assert_eq!(value(&text, "marque_outbox_messages", &kg_sent), Some(1.0));
    let us_pending = [("market", "us"), ("status", "pending")];
    assert_eq!(
        value(&text, "marque_outbox_messages", &us_pending),
        Some(0.0)
    );
    assert!(value(&text, "marque_outbox_oldest_age_seconds", &kg_sent).is_some());
    for market in Market::ALL {
        let m = market.code();
        assert!(
            value(
                &text,
                "marque_db_pool_connections",
                &[("market", m), ("state", "idle")]
            )
            .is_some()
        );
        assert!(
            value(
                &text,
                "marque_db_pool_connections",
                &[("market", m), ("state", "in_use")]
            )
            .is_some()
        );
        assert_eq!(
            value(&text, "marque_db_circuit_open", &[("market", m)]),
            Some(0.0)
        );
        assert!(
            value(&text, "marque_db_pool_wait_seconds_count", &[("market", m)]).unwrap() >= 1.0
        );
    }
    // The send-code was decided in a batch of its market (every batch holds at least one code;
    // the recorder is the process's, shared with other tests).
    let kg = [("market", "kg")];
    let batches = value(&text, "marque_send_code_batch_size_count", &kg).unwrap();
    assert!(batches >= 1.0);
    assert!(value(&text, "marque_send_code_batch_size_sum", &kg).unwrap() >= batches);
    assert!(
        value(
            &text,
            "marque_delivery_duration_seconds_count",
            &[("result", "accepted")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        value(
            &text,
            "marque_sms_guard_trips_total",
            &[("guard", "daily_budget")]
        )
        .is_some()
    );

    // A refusal by a limit: a second code inside the resend cool-down.
    assert_eq!(app.send_code(KG).await.status(), 429);
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        value(
            &text,
            "marque_rate_limit_refusals_total",
            &[("kind", "send")]
        )
        .unwrap()
            >= 1.0
    );
    let limited = [("market", "kg"), ("result", "rate_limited")];
    assert!(value(&text, "marque_codes_sent_total", &limited).unwrap() >= 1.0);
    // Unknown paths share one series; numbers never appear.
    assert!(
        !text.contains("996505325311"),
        "a phone number in the metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_addr_moves_metrics_to_their_own_listener() {
    let app = TestApp::spawn(Backend::Sqlite, &[("METRICS_ADDR", "127.0.0.1:0")])
        .await
        .unwrap();
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "not on the public port");
    let metrics = app.metrics_base.clone().expect("a metrics listener");
    let res = app
        .http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("marque_db_pool_connections")
    );
    let res = app
        .http
        .get(format!("{metrics}/api/v1/auth/markets"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

//! The figures read at scrape time for `GET /metrics` (issue 11): each market pool's
//! connections and breaker, each market outbox's messages per status and the age of the oldest,
//! and the SMS-pumping guards' counters. The request, code, verification and delivery metrics
//! are recorded where they happen (`marque-api`, the outbox worker, the store's checkouts).

use std::sync::Arc;

use marque_domain::{Clock, SmsGuardMetrics};
use marque_store::MarketStore;
use metrics::{counter, gauge};

/// Outbox statuses that always get a series (0 when none), so dashboards see them.
const OUTBOX_STATUSES: [&str; 4] = ["pending", "sent", "failed", "expired"];

/// The collector handed to [`marque_api::metrics::Exporter::new`]. Blocking: it counts each
/// market's outbox with one grouped query (refused at once by a market whose breaker is open;
/// that market's outbox gauges then keep their last values and `marque_db_circuit_open` is 1).
pub fn collector(
    stores: Vec<MarketStore>,
    guards: Arc<SmsGuardMetrics>,
    clock: Arc<dyn Clock>,
) -> Arc<dyn Fn() + Send + Sync> {
    Arc::new(move || {
        for store in &stores {
            pool(store);
            outbox(store, clock.as_ref());
        }
        sms_guards(&guards);
    })
}

fn pool(store: &MarketStore) {
    let market = store.market().code();
    let p = store.pool_stats();
    gauge!("marque_db_pool_connections", "market" => market, "state" => "in_use")
        .set(f64::from(p.in_use()));
    gauge!("marque_db_pool_connections", "market" => market, "state" => "idle")
        .set(f64::from(p.idle));
    gauge!("marque_db_pool_max_connections", "market" => market).set(f64::from(p.max_size));
    gauge!("marque_db_circuit_open", "market" => market).set(if p.breaker_open {
        1.0
    } else {
        0.0
    });
    counter!("marque_db_pool_refused_total", "market" => market).absolute(p.refused);
}

fn outbox(store: &MarketStore, clock: &dyn Clock) {
    let market = store.market().code();
    let rows = match store.outbox_counts() {
        Ok(rows) => rows,
        Err(e) => {
            tracing::debug!(market, error = %e, "outbox not counted for metrics");
            return;
        }
    };
    let now = clock.now();
    for status in OUTBOX_STATUSES {
        let row = rows.iter().find(|r| r.status == status);
        let count = row.map_or(0, |r| r.count);
        let age = row.and_then(|r| r.oldest).map_or(0.0, |at| {
            (now - at).num_milliseconds().max(0) as f64 / 1000.0
        });
        gauge!("marque_outbox_messages", "market" => market, "status" => status).set(count as f64);
        gauge!("marque_outbox_oldest_age_seconds", "market" => market, "status" => status).set(age);
    }
}

fn sms_guards(guards: &SmsGuardMetrics) {
    use std::sync::atomic::Ordering::Relaxed;
    counter!("marque_sms_guard_trips_total", "guard" => "daily_budget")
        .absolute(guards.daily_budget_trips.load(Relaxed));
    counter!("marque_sms_guard_trips_total", "guard" => "prefix_hourly")
        .absolute(guards.prefix_limit_trips.load(Relaxed));
    counter!("marque_sms_prefix_alarms_total").absolute(guards.prefix_alarms.load(Relaxed));
}

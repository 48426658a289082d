//! Marque Auth HTTP API on actix-web.
//!
//! Routes, request/response types (with OpenAPI schemas), the mapping of every failure to a JSON
//! error with a stable code, and the HTTP server with its middleware (request tracing, CORS,
//! security headers). The API receives a wired [`AuthService`] and [`AccountService`]: it knows
//! nothing of storage or delivery.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access_log;
pub mod account;
pub mod admin;
pub mod client_ip;
pub mod delivery;
pub mod dto;
pub mod edge;
pub mod email;
pub mod error;
pub mod extract;
pub mod messenger;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod request_id;
pub mod routes;
pub mod shape;

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use ipnet::IpNet;
use marque_domain::{AccountService, AdminService, AuthService};
use marque_markets::Market;
use openapi::Endpoint;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// Largest accepted request body, in bytes (16 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct ApiState {
    /// The login service.
    pub auth: Arc<AuthService>,
    /// Addresses, payment methods and notifications.
    pub account: Arc<AccountService>,
    /// Market reported as the default to clients (`DEFAULT_MARKET`).
    pub default_market: Market,
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpNet>,
    /// Delivery status and provider callbacks.
    pub delivery: delivery::DeliveryState,
    /// The admin API's service; `None` (`ADMIN_API_KEY` unset) turns the admin API off: its
    /// routes answer 404.
    pub admin: Option<Arc<AdminService>>,
    /// Messenger login (issue 9); `None` when no messenger login is configured (its routes
    /// answer 404, start 422 `channel_not_available`).
    pub messenger: Option<Arc<marque_domain::MessengerService>>,
    /// Email-and-password accounts (issue 10); `None` turns their routes off (404).
    pub email: Option<email::EmailState>,
}

/// HTTP-level settings.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// Origins allowed by CORS (`ALLOWED_ORIGINS`); `*` allows any origin (without credentials).
    pub allowed_origins: Vec<String>,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT (default 30).
    pub shutdown_timeout_secs: Option<u64>,
    /// Threads per worker for blocking (database) work. Matching it to the connection pool keeps
    /// waiting requests in one FIFO queue instead of dozens of threads contending for a pooled
    /// connection, which is what stretches tail latency (default: actix's 512 / workers).
    pub max_blocking_threads: Option<usize>,
    /// Body deadline and connections per client IP (`edge`).
    pub edge: edge::EdgeSettings,
    /// Serves `GET /metrics` on this server when set (the binary leaves it unset when
    /// `METRICS_ADDR` puts the metrics on their own listener, see [`metrics_server`]).
    pub metrics: Option<metrics::Exporter>,
}

/// Every route of the API, each with its `#[utoipa::path]` documentation. The server registers
/// these and only these (see [`configure`]); the OpenAPI document lists these.
pub fn endpoints() -> Vec<Endpoint> {
    use routes as r;
    let mut list = vec![
        Endpoint::of::<r::__path_health>().to(r::health),
        Endpoint::of::<r::__path_health_live>().to(r::health_live),
        Endpoint::of::<r::__path_health_ready>().to(r::health_ready),
        Endpoint::of::<r::__path_jwks>().to(r::jwks),
        Endpoint::of::<r::__path_send_code>().to(r::send_code),
        Endpoint::of::<r::__path_verify_code>().to(r::verify_code),
        Endpoint::of::<r::__path_get_profile>().to(r::get_profile),
        Endpoint::of::<r::__path_update_profile>().to(r::update_profile),
        Endpoint::of::<r::__path_verify_token>().to(r::verify_token),
        Endpoint::of::<r::__path_logout>().to(r::logout),
        Endpoint::of::<r::__path_refresh>().to(r::refresh),
        Endpoint::of::<r::__path_sessions>().to(r::sessions),
        Endpoint::of::<r::__path_end_session>().to(r::end_session),
        Endpoint::of::<r::__path_delete_account>().to(r::delete_account),
        Endpoint::of::<r::__path_markets>().to(r::markets),
        Endpoint::of::<r::__path_auth_health>().to(r::auth_health),
        Endpoint::of::<delivery::__path_challenge_status>().to(delivery::challenge_status),
        Endpoint::of::<delivery::__path_twilio_status>().to(delivery::twilio_status),
        Endpoint::of::<delivery::__path_telegram_report>().to(delivery::telegram_report),
        Endpoint::of::<messenger::__path_messenger_start>().to(messenger::messenger_start),
        Endpoint::of::<messenger::__path_messenger_poll>().to(messenger::messenger_poll),
        Endpoint::of::<messenger::__path_whatsapp_handshake>().to(messenger::whatsapp_handshake),
        Endpoint::of::<messenger::__path_whatsapp_webhook>().to(messenger::whatsapp_webhook),
        Endpoint::of::<messenger::__path_telegram_webhook>().to(messenger::telegram_webhook),
        Endpoint::of::<messenger::__path_telegram_widget>().to(messenger::telegram_widget),
        Endpoint::of::<messenger::__path_telegram_link>().to(messenger::telegram_link),
        Endpoint::of::<messenger::__path_telegram_unlink>().to(messenger::telegram_unlink),
    ];
    list.extend([
        Endpoint::of::<email::__path_register>().to(email::register),
        Endpoint::of::<email::__path_verify_email>().to(email::verify_email),
        Endpoint::of::<email::__path_login>().to(email::login),
        Endpoint::of::<email::__path_resend_verification>().to(email::resend_verification),
        Endpoint::of::<email::__path_forgot_password>().to(email::forgot_password),
        Endpoint::of::<email::__path_reset_page>().to(email::reset_page),
        Endpoint::of::<email::__path_reset_submit>().to(email::reset_submit),
        Endpoint::of::<email::__path_change_password>().to(email::change_password),
        Endpoint::of::<email::__path_link_email>().to(email::link_email),
        Endpoint::of::<email::__path_token>().to(email::token),
    ]);
    list.extend(account::endpoints());
    list.extend(admin::endpoints());
    list
}

/// One resource per documented path, holding a route per documented method; other methods answer
/// 405. `prefix` is cut from the paths (the scope they are registered in).
fn resources(endpoints: &[Endpoint], prefix: &str) -> Vec<actix_web::Resource> {
    let mut paths: Vec<&str> = Vec::new();
    for e in endpoints {
        if !paths.contains(&e.path()) {
            paths.push(e.path());
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(prefix).unwrap_or(path);
            endpoints
                .iter()
                .filter(|e| e.path() == path)
                .flat_map(Endpoint::routes)
                .fold(
                    web::resource(relative).default_service(web::to(routes::method_not_allowed)),
                    actix_web::Resource::route,
                )
        })
        .collect()
}

/// Registers every route on `cfg`: the [`endpoints`], the OpenAPI document and Swagger UI.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let (api, other): (Vec<Endpoint>, Vec<Endpoint>) = endpoints()
        .into_iter()
        .partition(|e| e.path().starts_with("/api/"));
    cfg.service(resources(&other, ""))
        .service(
            web::scope("/api")
                .wrap(DefaultHeaders::new().add((
                    "Content-Security-Policy",
                    "default-src 'none'; frame-ancestors 'none'",
                )))
                .service(resources(&api, "/api")),
        )
        .service(web::resource("/docs").route(web::get().to(|| async {
            actix_web::HttpResponse::PermanentRedirect()
                .insert_header((actix_web::http::header::LOCATION, "/docs/"))
                .finish()
        })))
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .url("/api-docs/openapi.json", openapi::ApiDoc::openapi()),
        );
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        .allowed_headers(["authorization", "content-type", "x-market", "x-poll-secret"])
        .expose_headers(["retry-after", "x-request-id"])
        .max_age(3600);
    for o in origins {
        cors = if o == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(o)
        };
    }
    cors
}

/// Security headers on every response (OWASP Secure Headers Project).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
        .add((
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        ))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}

/// Builds the HTTP server on an already bound `listener` (port 0 works for tests). The server
/// stops gracefully on SIGTERM/SIGINT or when its handle is told to; await it to run it.
pub fn server(
    listener: TcpListener,
    state: ApiState,
    settings: HttpSettings,
) -> std::io::Result<actix_web::dev::Server> {
    let state = web::Data::new(state);
    let origins = settings.allowed_origins.clone();
    let limiter = edge::ConnectionLimiter::new(
        settings.edge.max_connections_per_ip,
        state.trusted_proxies.clone(),
    );
    let body_timeout = settings.edge.body_read_timeout;
    let exporter = settings.metrics.clone().map(web::Data::new);
    let mut server = HttpServer::new(move || {
        let exporter = exporter.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .configure(configure)
            .configure(move |cfg| {
                if let Some(e) = exporter {
                    cfg.app_data(e).service(metrics_resource());
                }
            })
            .default_service(web::to(routes::not_found))
            // The edge guard sits outside CORS, which answers preflights itself: an OPTIONS
            // request must not carry a chunked body past it (issue 12, item 1).
            .wrap(cors(&origins))
            .wrap(from_fn(move |req, next| {
                edge::guard(req, next, body_timeout)
            }))
            .wrap(from_fn(shape::middleware))
            .wrap(security_headers())
            .wrap(from_fn(request_id::middleware))
            .wrap(from_fn(metrics::middleware))
            .wrap(TracingLogger::<access_log::AccessLog>::new())
    })
    .shutdown_timeout(settings.shutdown_timeout_secs.unwrap_or(30))
    .on_connect(edge::on_connect(limiter))
    .listen(listener)?;
    if let Some(w) = settings.workers {
        server = server.workers(w);
    }
    if let Some(n) = settings.max_blocking_threads {
        server = server.worker_max_blocking_threads(n.max(1));
    }
    Ok(server.run())
}

/// `/metrics`: `GET` (and `HEAD`) render the exposition; other methods 405.
fn metrics_resource() -> actix_web::Resource {
    web::resource("/metrics")
        .route(web::get().to(metrics::endpoint))
        .default_service(web::to(routes::method_not_allowed))
}

/// A server on its own `listener` (`METRICS_ADDR`) that answers only `GET /metrics`, with the
/// security headers and JSON errors of the API; it stops on SIGTERM/SIGINT like the API server.
pub fn metrics_server(
    listener: TcpListener,
    exporter: metrics::Exporter,
) -> std::io::Result<actix_web::dev::Server> {
    let exporter = web::Data::new(exporter);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(exporter.clone())
            .service(metrics_resource())
            .default_service(web::to(routes::not_found))
            .wrap(from_fn(shape::middleware))
            .wrap(security_headers())
            .wrap(from_fn(request_id::middleware))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test};

    use super::*;

    const CSP: &str = "content-security-policy";

    /// Each documented path is one resource: other methods answer 405, and API paths carry the
    /// CSP header; the docs do not (Swagger UI runs scripts).
    #[actix_web::test]
    async fn resources_answer_405_and_api_paths_carry_csp() {
        let app = test::init_service(App::new().configure(configure)).await;
        for (uri, csp) in [
            ("/api/v1/auth/send-code", true),
            ("/api/v1/profile/addresses/1", true),
            ("/api/v1/profile/notifications/read-all", true),
            ("/health", false),
        ] {
            let req = test::TestRequest::patch().uri(uri).to_request();
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status(), 405, "{uri}");
            assert_eq!(res.headers().contains_key(CSP), csp, "{uri}");
        }
        let req = test::TestRequest::get().uri("/api/v1/nope").to_request();
        assert_eq!(test::call_service(&app, req).await.status(), 404);
        let req = test::TestRequest::get()
            .uri("/api-docs/openapi.json")
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 200);
        assert!(!res.headers().contains_key(CSP));
    }
}

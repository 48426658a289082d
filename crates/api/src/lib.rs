//! Marque Auth HTTP API on actix-web.
//!
//! Routes, request/response types (with OpenAPI schemas), the mapping of every failure to a JSON
//! error with a stable code, and the HTTP server with its middleware (request tracing, CORS,
//! security headers). The API receives a wired [`AuthService`] and [`AccountService`]: it knows
//! nothing of storage or delivery.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access_log;
pub mod account;
pub mod client_ip;
pub mod dto;
pub mod edge;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use ipnet::IpNet;
use marque_domain::{AccountService, AuthService};
use marque_markets::Market;
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
}

/// Registers every route on `cfg`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource =
        |path: &str| web::resource(path).default_service(web::to(routes::method_not_allowed));
    cfg.service(resource("/health").route(web::get().to(routes::health)))
        .service(resource("/.well-known/jwks.json").route(web::get().to(routes::jwks)))
        .service(
            web::scope("/api/v1/auth")
                .wrap(DefaultHeaders::new().add((
                    "Content-Security-Policy",
                    "default-src 'none'; frame-ancestors 'none'",
                )))
                .service(resource("/send-code").route(web::post().to(routes::send_code)))
                .service(resource("/verify-code").route(web::post().to(routes::verify_code)))
                .service(
                    resource("/profile")
                        .route(web::get().to(routes::get_profile))
                        .route(web::put().to(routes::update_profile)),
                )
                .service(resource("/verify-token").route(web::get().to(routes::verify_token)))
                .service(resource("/logout").route(web::post().to(routes::logout)))
                .service(resource("/refresh").route(web::post().to(routes::refresh)))
                .service(resource("/sessions").route(web::get().to(routes::sessions)))
                .service(resource("/sessions/{id}").route(web::delete().to(routes::end_session)))
                .service(resource("/account").route(web::delete().to(routes::delete_account)))
                .service(resource("/markets").route(web::get().to(routes::markets)))
                .service(resource("/health").route(web::get().to(routes::auth_health))),
        )
        .configure(account::configure)
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
        .allowed_headers(["authorization", "content-type", "x-market"])
        .expose_headers(["retry-after"])
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
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .configure(configure)
            .default_service(web::to(routes::not_found))
            // The edge guard sits outside CORS, which answers preflights itself: an OPTIONS
            // request must not carry a chunked body past it (issue 12, item 1).
            .wrap(cors(&origins))
            .wrap(from_fn(move |req, next| {
                edge::guard(req, next, body_timeout)
            }))
            .wrap(security_headers())
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

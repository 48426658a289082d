//! The signed-in shopper's account data under `/api/v1/profile`: delivery addresses, saved
//! payment methods, notifications.
//!
//! Every route takes the user and market from the bearer token: rows of other users answer 404,
//! and a user's rows live only in their market's database.

pub mod dto;
pub mod routes;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;

/// Registers the `/api/v1/profile` routes on `cfg`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| {
        web::resource(path).default_service(web::to(crate::routes::method_not_allowed))
    };
    cfg.service(
        web::scope("/api/v1/profile")
            .wrap(DefaultHeaders::new().add((
                "Content-Security-Policy",
                "default-src 'none'; frame-ancestors 'none'",
            )))
            .service(
                resource("/addresses")
                    .route(web::get().to(routes::list_addresses))
                    .route(web::post().to(routes::create_address)),
            )
            .service(
                resource("/addresses/{id}")
                    .route(web::put().to(routes::update_address))
                    .route(web::delete().to(routes::delete_address)),
            )
            .service(
                resource("/payment-methods")
                    .route(web::get().to(routes::list_payment_methods))
                    .route(web::post().to(routes::create_payment_method)),
            )
            .service(
                resource("/payment-methods/{id}")
                    .route(web::put().to(routes::update_payment_method))
                    .route(web::delete().to(routes::delete_payment_method)),
            )
            .service(resource("/notifications").route(web::get().to(routes::list_notifications)))
            .service(
                resource("/notifications/read-all")
                    .route(web::put().to(routes::mark_all_notifications_read)),
            )
            .service(
                resource("/notifications/{id}/read")
                    .route(web::put().to(routes::mark_notification_read)),
            ),
    );
}

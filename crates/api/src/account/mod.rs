//! The signed-in shopper's account data under `/api/v1/profile`: delivery addresses, saved
//! payment methods, notifications.
//!
//! Every route takes the user and market from the bearer token: rows of other users answer 404,
//! and a user's rows live only in their market's database.

pub mod dto;
pub mod routes;

use crate::openapi::Endpoint;

/// The `/api/v1/profile` routes, each with its documentation.
pub fn endpoints() -> Vec<Endpoint> {
    use routes as r;
    vec![
        Endpoint::of::<r::__path_list_addresses>().to(r::list_addresses),
        Endpoint::of::<r::__path_create_address>().to(r::create_address),
        Endpoint::of::<r::__path_update_address>().to(r::update_address),
        Endpoint::of::<r::__path_delete_address>().to(r::delete_address),
        Endpoint::of::<r::__path_list_payment_methods>().to(r::list_payment_methods),
        Endpoint::of::<r::__path_create_payment_method>().to(r::create_payment_method),
        Endpoint::of::<r::__path_update_payment_method>().to(r::update_payment_method),
        Endpoint::of::<r::__path_delete_payment_method>().to(r::delete_payment_method),
        Endpoint::of::<r::__path_list_notifications>().to(r::list_notifications),
        Endpoint::of::<r::__path_mark_all_notifications_read>().to(r::mark_all_notifications_read),
        Endpoint::of::<r::__path_mark_notification_read>().to(r::mark_notification_read),
    ]
}

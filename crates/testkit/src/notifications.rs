//! Notifications to create in tests.

use marque_domain::{NewNotification, NotificationBody, NotificationKind, NotificationTitle};

/// A notification of `kind` with `title` and `message` (both must be valid); order notifications
/// refer to order 42.
pub fn notification(kind: NotificationKind, title: &str, message: &str) -> NewNotification {
    NewNotification {
        kind,
        title: NotificationTitle::parse(title).unwrap(),
        message: NotificationBody::parse(message).unwrap(),
        order_id: (kind == NotificationKind::Order).then_some(42),
    }
}

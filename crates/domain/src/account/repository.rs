//! The port account data is stored through: one implementation per market database
//! (`marque-store`'s `MarketStore`).

use chrono::{DateTime, Utc};
use marque_markets::Market;

use super::entities::{
    Address, AddressId, AddressRecord, NewAddress, NewNotification, NewPaymentMethod, Notification,
    NotificationId, NotificationPage, NotificationQuery, PaymentMethod, PaymentMethodId,
    PaymentMethodRecord,
};
use crate::{RepoError, SessionId, UserId};

/// Result of adding a row to a user's collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert<T> {
    /// Stored.
    Created(T),
    /// The user already has `max` rows of this kind; nothing was written.
    LimitReached,
    /// The user does not exist (deleted meanwhile); nothing was written.
    NoSuchUser,
}

/// Storage of one market's account data: addresses, payment methods, notifications.
///
/// Every method is scoped to one user: a row of another user is reported exactly like a row that
/// does not exist. Addresses and payment methods each keep **exactly one default** per user who
/// has any, and at most `max` rows; implementations decide and write inside one transaction that
/// serializes with the user's other writers, so concurrent requests cannot break either rule:
///
/// - insert: the new row is the default when asked (`make_default`) or when the user has no
///   default yet; making it the default clears the previous one;
/// - update with `make_default`: the row becomes the default and the previous one stops being it;
///   without, the default flag is left as it is;
/// - delete of the default: the user's newest remaining row (highest `created_at`, then id)
///   becomes the default.
///
/// Lists are ordered default first, then newest first.
pub trait AccountRepository: Send + Sync {
    /// The market whose database this is.
    fn market(&self) -> Market;

    /// The user's addresses.
    fn addresses(&self, user: UserId) -> Result<Vec<Address>, RepoError>;

    /// One address of the user.
    fn address(&self, user: UserId, id: AddressId) -> Result<Option<Address>, RepoError>;

    /// Adds an address unless the user has `max` already.
    fn insert_address(
        &self,
        user: UserId,
        new: &NewAddress,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<Insert<Address>, RepoError>;

    /// Replaces the title and postal fields of an address of the user (and makes it the default
    /// when asked); `None` when the user has no such address.
    fn update_address(
        &self,
        user: UserId,
        id: AddressId,
        record: &AddressRecord,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Address>, RepoError>;

    /// Deletes an address of the user, promoting another to default if it was the default;
    /// `false` when the user has no such address.
    fn delete_address(&self, user: UserId, id: AddressId) -> Result<bool, RepoError>;

    /// The user's payment methods.
    fn payment_methods(&self, user: UserId) -> Result<Vec<PaymentMethod>, RepoError>;

    /// One payment method of the user.
    fn payment_method(
        &self,
        user: UserId,
        id: PaymentMethodId,
    ) -> Result<Option<PaymentMethod>, RepoError>;

    /// Adds a payment method unless the user has `max` already.
    fn insert_payment_method(
        &self,
        user: UserId,
        new: &NewPaymentMethod,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<Insert<PaymentMethod>, RepoError>;

    /// Replaces the stored details of a payment method of the user (and makes it the default when
    /// asked); `None` when the user has no such payment method.
    fn update_payment_method(
        &self,
        user: UserId,
        id: PaymentMethodId,
        record: &PaymentMethodRecord,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<PaymentMethod>, RepoError>;

    /// Deletes a payment method of the user, promoting another to default if needed; `false` when
    /// the user has no such payment method.
    fn delete_payment_method(&self, user: UserId, id: PaymentMethodId) -> Result<bool, RepoError>;

    /// A page of the user's notifications, newest first, with the counts.
    fn notifications(
        &self,
        user: UserId,
        query: &NotificationQuery,
    ) -> Result<NotificationPage, RepoError>;

    /// Stores a notification for the user; `None` when the user does not exist.
    fn insert_notification(
        &self,
        user: UserId,
        new: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepoError>;

    /// Marks a notification of the user read (once: `read_at` keeps the first time); `None` when
    /// the user has no such notification.
    fn mark_notification_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepoError>;

    /// Marks every unread notification of the user read; returns how many changed.
    fn mark_all_notifications_read(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// Stores `notice` for the user unless a session of the user created before `session` (by
    /// creation time, then id) had the same `User-Agent` (`None` matching `None`). Decided and
    /// written in one transaction serialized per user, so two simultaneous first sign-ins from
    /// one new device notify once. Returns whether the notice was stored.
    fn notify_unknown_device(
        &self,
        user: UserId,
        session: &SessionId,
        user_agent: Option<&str>,
        notice: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

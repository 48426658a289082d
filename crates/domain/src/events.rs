//! Events the authentication service reports to other parts of the domain.

use chrono::{DateTime, Utc};
use marque_markets::Market;

use crate::{SessionId, UserId};

/// A successful phone verification: the session it opened is already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInEvent {
    /// The user's market.
    pub market: Market,
    /// The user.
    pub user: UserId,
    /// The new session.
    pub session: SessionId,
    /// The `User-Agent` stored with the session (cut to 512 characters), if any.
    pub user_agent: Option<String>,
    /// Whether this sign-in created the user.
    pub is_new_user: bool,
    /// Whether an earlier session of the user had the same `User-Agent` (so the device is known
    /// and no new-device notice is due).
    pub known_device: bool,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A number was locked after too many consecutive wrong codes (issue 12, item 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneLockedEvent {
    /// The number's market.
    pub market: Market,
    /// The number's user, when signed up (they get a security notification).
    pub user: Option<UserId>,
    /// When the lock was set.
    pub at: DateTime<Utc>,
    /// When it ends.
    pub until: DateTime<Utc>,
}

/// Reacts to sign-ins (e.g. [`crate::AccountService`] notifies a user of a new device). Called
/// synchronously after the sign-in is stored; it cannot fail the sign-in, so an observer logs its
/// own failures.
pub trait SignInObserver: Send + Sync {
    /// `event` happened.
    fn signed_in(&self, event: &SignInEvent);

    /// A number was locked after too many wrong codes (default: nothing to do).
    fn phone_locked(&self, event: &PhoneLockedEvent) {
        let _ = event;
    }
}

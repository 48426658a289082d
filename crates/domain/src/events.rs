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

/// Reacts to sign-ins (e.g. [`crate::AccountService`] notifies a user of a new device). Called
/// synchronously after the sign-in is stored; it cannot fail the sign-in, so an observer logs its
/// own failures.
pub trait SignInObserver: Send + Sync {
    /// `event` happened.
    fn signed_in(&self, event: &SignInEvent);
}

//! The shopper's account data — delivery addresses, saved payment methods, notifications — and
//! the rules on them, per market: [`AccountService`].
//!
//! Every call names its [`Owner`] (market + user id, from [`crate::SignedIn::owner`] or from a
//! trusted service) and works only on that user's rows in that market's database.

mod entities;
mod payment;
mod repository;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Datelike;
use marque_markets::{FieldError, Market, new_sign_in_notice};

pub use entities::{
    Address, AddressId, AddressRecord, AddressTitle, AddressUpdate, CardDetails, NewAddress,
    NewNotification, NewPaymentMethod, Notification, NotificationBody, NotificationId,
    NotificationKind, NotificationPage, NotificationQuery, NotificationTitle, PageLimit,
    PaymentMethod, PaymentMethodId, PaymentMethodRecord, PaymentMethodUpdate,
};
pub use payment::PaymentMethodInput;
pub use repository::{AccountRepository, Insert};

use crate::{
    Clock, MarketUnavailable, PhoneLockedEvent, RepoError, SignInEvent, SignInObserver, UserId,
};

/// Whose account data a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The user's market (its database holds the rows).
    pub market: Market,
    /// The user, within that market.
    pub user: UserId,
}

/// Limits per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Most delivery addresses a user may keep (default 20).
    pub max_addresses: u32,
    /// Most payment methods a user may keep (default 20).
    pub max_payment_methods: u32,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            max_addresses: 20,
            max_payment_methods: 20,
        }
    }
}

/// Latest card expiry accepted, in years from now: issuers do not issue cards valid this long,
/// so a later date is a typo.
const MAX_CARD_YEARS: i32 = 20;

/// Failures of [`AccountService`] calls, each a distinct client-facing answer.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The row does not exist or belongs to another user (answered the same, so ids of other
    /// users' rows cannot be probed).
    #[error("not found")]
    NotFound,
    /// The user already has the most rows of this kind allowed.
    #[error("limit of {0} reached")]
    LimitReached(u32),
    /// A field breaks a rule.
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
    /// The payment method or card brand is not offered in the user's market.
    #[error("payment method not available in this market")]
    PaymentMethodNotAvailable,
    /// The card's expiry month is over.
    #[error("card expired")]
    CardExpired,
    /// The market's database is not configured or not reachable.
    #[error(transparent)]
    Unavailable(#[from] MarketUnavailable),
    /// An unexpected storage failure (logged with its cause, answered as 500).
    #[error("internal error")]
    Internal(#[source] RepoError),
}

/// Addresses, payment methods and notifications of shoppers, over the markets' repositories.
pub struct AccountService {
    repos: BTreeMap<Market, Arc<dyn AccountRepository>>,
    clock: Arc<dyn Clock>,
    limits: AccountLimits,
}

impl std::fmt::Debug for AccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountService")
            .field("markets", &self.repos.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl AccountService {
    /// Wires the service. `repos` holds one repository per served market.
    pub fn new(
        repos: Vec<Arc<dyn AccountRepository>>,
        clock: Arc<dyn Clock>,
        limits: AccountLimits,
    ) -> Self {
        let repos = repos.into_iter().map(|r| (r.market(), r)).collect();
        Self {
            repos,
            clock,
            limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> AccountLimits {
        self.limits
    }

    /// Runs `op` on `market`'s repository; a storage failure becomes [`AccountError::Unavailable`]
    /// (the database is not reachable) or [`AccountError::Internal`], keeping it as the cause.
    fn in_market<T>(
        &self,
        market: Market,
        op: impl FnOnce(&dyn AccountRepository) -> Result<T, RepoError>,
    ) -> Result<T, AccountError> {
        let repo = self
            .repos
            .get(&market)
            .ok_or_else(|| MarketUnavailable::not_served(market))?;
        op(repo.as_ref()).map_err(|e| match MarketUnavailable::sort(market, e) {
            Ok(down) => AccountError::Unavailable(down),
            Err(other) => AccountError::Internal(other),
        })
    }

    /// Runs `op` on the owner's repository, with `max` and the time; a row that does not exist
    /// ([`Insert::NoSuchUser`]) is [`AccountError::NotFound`], a full list
    /// [`AccountError::LimitReached`].
    fn insert_bounded<T>(
        &self,
        owner: Owner,
        max: u32,
        op: impl FnOnce(
            &dyn AccountRepository,
            u32,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<Insert<T>, RepoError>,
    ) -> Result<T, AccountError> {
        let now = self.clock.now();
        match self.in_market(owner.market, |repo| op(repo, max, now))? {
            Insert::Created(row) => Ok(row),
            Insert::LimitReached => Err(AccountError::LimitReached(max)),
            Insert::NoSuchUser => Err(AccountError::NotFound),
        }
    }

    fn same_market(owner: Owner, market: Market) -> Result<(), AccountError> {
        if owner.market == market {
            Ok(())
        } else {
            Err(AccountError::Invalid(FieldError::new(
                "address",
                "is not in the shape of the user's market",
            )))
        }
    }

    /// The owner's addresses, default first, then newest first.
    pub fn addresses(&self, owner: Owner) -> Result<Vec<Address>, AccountError> {
        self.in_market(owner.market, |repo| repo.addresses(owner.user))
    }

    /// Adds an address (in the owner's market's shape). The first address becomes the default.
    ///
    /// Errors: [`AccountError::LimitReached`] at [`AccountLimits::max_addresses`],
    /// [`AccountError::Invalid`] for an address of another market's shape, storage errors.
    pub fn add_address(&self, owner: Owner, new: NewAddress) -> Result<Address, AccountError> {
        Self::same_market(owner, new.record.postal.market())?;
        self.insert_bounded(owner, self.limits.max_addresses, |repo, max, now| {
            repo.insert_address(owner.user, &new, max, now)
        })
    }

    /// Changes an address of the owner: the postal fields of `update` are merged into the stored
    /// ones and the result checked again by the market's rules.
    ///
    /// Errors: [`AccountError::NotFound`], [`AccountError::Invalid`], storage errors.
    pub fn update_address(
        &self,
        owner: Owner,
        id: AddressId,
        update: AddressUpdate,
    ) -> Result<Address, AccountError> {
        let current = self
            .in_market(owner.market, |repo| repo.address(owner.user, id))?
            .ok_or(AccountError::NotFound)?;
        let record = AddressRecord {
            title: update.title.unwrap_or(current.title),
            postal: current.postal.patched(&update.postal)?,
        };
        let now = self.clock.now();
        self.in_market(owner.market, |repo| {
            repo.update_address(owner.user, id, &record, update.make_default, now)
        })?
        .ok_or(AccountError::NotFound)
    }

    /// Deletes an address of the owner; if it was the default, the newest remaining one becomes
    /// the default.
    ///
    /// Errors: [`AccountError::NotFound`], storage errors.
    pub fn delete_address(&self, owner: Owner, id: AddressId) -> Result<(), AccountError> {
        let deleted = self.in_market(owner.market, |repo| repo.delete_address(owner.user, id))?;
        deleted.then_some(()).ok_or(AccountError::NotFound)
    }

    /// The owner's payment methods, default first, then newest first.
    pub fn payment_methods(&self, owner: Owner) -> Result<Vec<PaymentMethod>, AccountError> {
        self.in_market(owner.market, |repo| repo.payment_methods(owner.user))
    }

    /// Refuses an expiry whose month is over ([`AccountError::CardExpired`]) or that lies more
    /// than 20 years ahead (a typo). Judged on the UTC calendar.
    fn check_expiry(&self, record: &PaymentMethodRecord) -> Result<(), AccountError> {
        let Some(expiry) = record.card.as_ref().and_then(|c| c.expiry) else {
            return Ok(());
        };
        let today = self.clock.now().date_naive();
        if expiry.is_expired_at(today.year(), today.month()) {
            return Err(AccountError::CardExpired);
        }
        if expiry.is_beyond(today.year(), today.month(), MAX_CARD_YEARS) {
            return Err(AccountError::Invalid(FieldError::new(
                "expiry_year",
                "is too far in the future",
            )));
        }
        Ok(())
    }

    /// Saves a payment method (parsed for the owner's market with [`NewPaymentMethod::parse`]).
    /// The first one becomes the default.
    ///
    /// Errors: [`AccountError::CardExpired`], [`AccountError::PaymentMethodNotAvailable`] (a kind
    /// outside the owner's market's catalog), [`AccountError::LimitReached`] at
    /// [`AccountLimits::max_payment_methods`], storage errors.
    pub fn add_payment_method(
        &self,
        owner: Owner,
        new: NewPaymentMethod,
    ) -> Result<PaymentMethod, AccountError> {
        if !owner.market.accepts_payment(new.record.kind) {
            return Err(AccountError::PaymentMethodNotAvailable);
        }
        self.check_expiry(&new.record)?;
        self.insert_bounded(owner, self.limits.max_payment_methods, |repo, max, now| {
            repo.insert_payment_method(owner.user, &new, max, now)
        })
    }

    /// Changes the holder name or expiry (cards only) or the default flag of a payment method.
    ///
    /// Errors: [`AccountError::NotFound`], [`AccountError::Invalid`] (card fields on a non-card
    /// method), [`AccountError::CardExpired`], storage errors.
    pub fn update_payment_method(
        &self,
        owner: Owner,
        id: PaymentMethodId,
        update: PaymentMethodUpdate,
    ) -> Result<PaymentMethod, AccountError> {
        let mut record = self
            .in_market(owner.market, |repo| repo.payment_method(owner.user, id))?
            .ok_or(AccountError::NotFound)?
            .record;
        match record.card.as_mut() {
            Some(card) => {
                if let Some(name) = update.holder_name {
                    card.holder_name = name;
                }
                if let Some(expiry) = update.expiry {
                    card.expiry = Some(expiry);
                }
            }
            None if update.holder_name.is_some() => {
                return Err(FieldError::new("card_holder_name", "is only for cards").into());
            }
            None if update.expiry.is_some() => {
                return Err(FieldError::new("expiry_month", "is only for cards").into());
            }
            None => {}
        }
        if update.expiry.is_some() {
            self.check_expiry(&record)?;
        }
        let now = self.clock.now();
        self.in_market(owner.market, |repo| {
            repo.update_payment_method(owner.user, id, &record, update.make_default, now)
        })?
        .ok_or(AccountError::NotFound)
    }

    /// Deletes a payment method of the owner; if it was the default, the newest remaining one
    /// becomes the default.
    ///
    /// Errors: [`AccountError::NotFound`], storage errors.
    pub fn delete_payment_method(
        &self,
        owner: Owner,
        id: PaymentMethodId,
    ) -> Result<(), AccountError> {
        let deleted = self.in_market(owner.market, |repo| {
            repo.delete_payment_method(owner.user, id)
        })?;
        deleted.then_some(()).ok_or(AccountError::NotFound)
    }

    /// A page of the owner's notifications with the total and unread counts.
    pub fn notifications(
        &self,
        owner: Owner,
        query: NotificationQuery,
    ) -> Result<NotificationPage, AccountError> {
        self.in_market(owner.market, |repo| repo.notifications(owner.user, &query))
    }

    /// Marks a notification of the owner read.
    ///
    /// Errors: [`AccountError::NotFound`], storage errors.
    pub fn mark_notification_read(
        &self,
        owner: Owner,
        id: NotificationId,
    ) -> Result<Notification, AccountError> {
        let now = self.clock.now();
        self.in_market(owner.market, |repo| {
            repo.mark_notification_read(owner.user, id, now)
        })?
        .ok_or(AccountError::NotFound)
    }

    /// Marks every notification of the owner read; returns how many were unread.
    pub fn mark_all_notifications_read(&self, owner: Owner) -> Result<u64, AccountError> {
        let now = self.clock.now();
        self.in_market(owner.market, |repo| {
            repo.mark_all_notifications_read(owner.user, now)
        })
    }

    /// Creates a notification for a user — the entry point for other services (orders,
    /// marketing, operations). Write `title` and `message` in the market's language
    /// ([`Market::language`]).
    ///
    /// Errors: [`AccountError::NotFound`] when the user does not exist, storage errors.
    pub fn notify(
        &self,
        owner: Owner,
        notification: NewNotification,
    ) -> Result<Notification, AccountError> {
        let now = self.clock.now();
        self.in_market(owner.market, |repo| {
            repo.insert_notification(owner.user, &notification, now)
        })?
        .ok_or(AccountError::NotFound)
    }
}

/// A `security` notification with `title` and `text` (the `what` notice, for the log); `None`,
/// logged, when they do not fit a notification.
fn security_notice(what: &str, title: &str, text: &str) -> Option<NewNotification> {
    match (
        NotificationTitle::parse(title),
        NotificationBody::parse(text),
    ) {
        (Ok(title), Ok(message)) => Some(NewNotification {
            kind: NotificationKind::Security,
            title,
            message,
            order_id: None,
        }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "{what} notice does not fit a notification");
            None
        }
    }
}

impl SignInObserver for AccountService {
    /// A signed-up user whose number was locked after too many wrong codes gets a `security`
    /// notification in the market's language ("Вход заблокирован" / "Sign-in locked"), so they
    /// learn that someone is guessing their codes. Failures are logged, never raised.
    fn phone_locked(&self, event: &PhoneLockedEvent) {
        let Some(user) = event.user else { return };
        let minutes = (event.until - event.at).num_minutes().max(1);
        let hours = (minutes + 59) / 60;
        let (title, text) = marque_markets::phone_locked_notice(event.market.language(), hours);
        let Some(notice) = security_notice("lock", &title, &text) else {
            return;
        };
        let owner = Owner {
            market: event.market,
            user,
        };
        if let Err(e) = self.notify(owner, notice) {
            tracing::warn!(market = %event.market, user = %user, error = %e, "lock notification failed");
        }
    }

    /// A returning user signing in from a `User-Agent` none of their earlier sessions had gets a
    /// `security` notification in the market's language ("Вход в аккаунт с нового
    /// устройства" / "New sign-in to your account"). Failures are logged, never raised.
    fn signed_in(&self, event: &SignInEvent) {
        // Known devices need no notice; for the rest, `notify_unknown_device` re-checks under a
        // lock so that simultaneous first sign-ins from one device produce one notice.
        if event.is_new_user || event.known_device {
            return;
        }
        let (title, text) =
            new_sign_in_notice(event.market.language(), event.user_agent.as_deref());
        let Some(notice) = security_notice("sign-in", &title, &text) else {
            return;
        };
        let result = self.in_market(event.market, |repo| {
            repo.notify_unknown_device(
                event.user,
                &event.session,
                event.user_agent.as_deref(),
                &notice,
                event.at,
            )
        });
        if let Err(e) = result {
            tracing::warn!(market = %event.market, user = %event.user, error = %e, "new-device notification failed");
        }
    }
}

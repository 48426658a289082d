//! [`AccountRepository`] for [`InMemoryStore`]: the same rules as `marque-store` (one default per
//! user, limits, owner scoping), with the store's mutex as the transaction.

use chrono::{DateTime, Utc};
use marque_markets::Market;

use super::{InMemoryStore, State};
use crate::{
    AccountRepository, Address, AddressId, AddressRecord, Insert, NewAddress, NewNotification,
    NewPaymentMethod, Notification, NotificationId, NotificationPage, NotificationQuery,
    PaymentMethod, PaymentMethodId, PaymentMethodRecord, RepoError, SessionId, UserId,
};

/// Account rows of one market.
#[derive(Debug, Default)]
pub(super) struct AccountState {
    addresses: Table<Address>,
    payment_methods: Table<PaymentMethod>,
    notifications: Vec<(UserId, Notification)>,
}

impl AccountState {
    /// Drops every row of `user`, as `ON DELETE CASCADE` does in the databases.
    pub(super) fn delete_user(&mut self, user: UserId) {
        self.addresses.rows.retain(|(owner, _)| *owner != user);
        self.payment_methods
            .rows
            .retain(|(owner, _)| *owner != user);
        self.notifications.retain(|(owner, _)| *owner != user);
    }
}

/// A row kind with an id, a creation time and a default flag.
trait Row: Clone {
    fn id(&self) -> i64;
    fn created_at(&self) -> DateTime<Utc>;
    fn is_default(&self) -> bool;
    fn set_default(&mut self, value: bool);
}

impl Row for Address {
    fn id(&self) -> i64 {
        self.id.0
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn is_default(&self) -> bool {
        self.is_default
    }
    fn set_default(&mut self, value: bool) {
        self.is_default = value;
    }
}

impl Row for PaymentMethod {
    fn id(&self) -> i64 {
        self.id.0
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn is_default(&self) -> bool {
        self.is_default
    }
    fn set_default(&mut self, value: bool) {
        self.is_default = value;
    }
}

/// Rows of several users with one default per user.
#[derive(Debug)]
struct Table<T> {
    last_id: i64,
    rows: Vec<(UserId, T)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            last_id: 0,
            rows: Vec::new(),
        }
    }
}

impl<T: Row> Table<T> {
    fn list(&self, user: UserId) -> Vec<T> {
        let mut rows: Vec<T> = self
            .rows
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, r)| r.clone())
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.is_default(), r.created_at(), r.id())));
        rows
    }

    fn get_mut(&mut self, user: UserId, id: i64) -> Option<&mut T> {
        self.rows
            .iter_mut()
            .find(|(u, r)| *u == user && r.id() == id)
            .map(|(_, r)| r)
    }

    fn clear_default(&mut self, user: UserId) {
        for (_, r) in self.rows.iter_mut().filter(|(u, _)| *u == user) {
            r.set_default(false);
        }
    }

    fn insert(
        &mut self,
        user: UserId,
        make_default: bool,
        max: u32,
        build: impl FnOnce(i64, bool) -> T,
    ) -> Insert<T> {
        let mine = self.list(user);
        if mine.len() >= max as usize {
            return Insert::LimitReached;
        }
        let is_default = make_default || !mine.iter().any(Row::is_default);
        if is_default {
            self.clear_default(user);
        }
        self.last_id += 1;
        let row = build(self.last_id, is_default);
        self.rows.push((user, row.clone()));
        Insert::Created(row)
    }

    fn update(
        &mut self,
        user: UserId,
        id: i64,
        make_default: bool,
        apply: impl FnOnce(&mut T),
    ) -> Option<T> {
        self.get_mut(user, id)?;
        if make_default {
            self.clear_default(user);
        }
        let row = self.get_mut(user, id)?;
        apply(row);
        if make_default {
            row.set_default(true);
        }
        Some(row.clone())
    }

    fn delete(&mut self, user: UserId, id: i64) -> bool {
        let Some(pos) = self
            .rows
            .iter()
            .position(|(u, r)| *u == user && r.id() == id)
        else {
            return false;
        };
        let (_, removed) = self.rows.remove(pos);
        if removed.is_default()
            && let Some(newest) = self
                .rows
                .iter_mut()
                .filter(|(u, _)| *u == user)
                .max_by_key(|(_, r)| (r.created_at(), r.id()))
        {
            newest.1.set_default(true);
        }
        true
    }
}

fn user_exists(s: &State, user: UserId) -> bool {
    s.users.iter().any(|u| u.id == user)
}

impl AccountRepository for InMemoryStore {
    fn market(&self) -> Market {
        self.market
    }

    fn addresses(&self, user: UserId) -> Result<Vec<Address>, RepoError> {
        Ok(self.lock()?.account.addresses.list(user))
    }

    fn address(&self, user: UserId, id: AddressId) -> Result<Option<Address>, RepoError> {
        let mut s = self.lock()?;
        Ok(s.account.addresses.get_mut(user, id.0).map(|a| a.clone()))
    }

    fn insert_address(
        &self,
        user: UserId,
        new: &NewAddress,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<Insert<Address>, RepoError> {
        let mut s = self.lock()?;
        if !user_exists(&s, user) {
            return Ok(Insert::NoSuchUser);
        }
        Ok(s.account
            .addresses
            .insert(user, new.make_default, max, |id, is_default| Address {
                id: AddressId(id),
                title: new.record.title.clone(),
                postal: new.record.postal.clone(),
                is_default,
                created_at: now,
                updated_at: now,
            }))
    }

    fn update_address(
        &self,
        user: UserId,
        id: AddressId,
        record: &AddressRecord,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Address>, RepoError> {
        let mut s = self.lock()?;
        Ok(s.account.addresses.update(user, id.0, make_default, |a| {
            a.title = record.title.clone();
            a.postal = record.postal.clone();
            a.updated_at = now;
        }))
    }

    fn delete_address(&self, user: UserId, id: AddressId) -> Result<bool, RepoError> {
        Ok(self.lock()?.account.addresses.delete(user, id.0))
    }

    fn payment_methods(&self, user: UserId) -> Result<Vec<PaymentMethod>, RepoError> {
        Ok(self.lock()?.account.payment_methods.list(user))
    }

    fn payment_method(
        &self,
        user: UserId,
        id: PaymentMethodId,
    ) -> Result<Option<PaymentMethod>, RepoError> {
        let mut s = self.lock()?;
        Ok(s.account
            .payment_methods
            .get_mut(user, id.0)
            .map(|p| p.clone()))
    }

    fn insert_payment_method(
        &self,
        user: UserId,
        new: &NewPaymentMethod,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<Insert<PaymentMethod>, RepoError> {
        let mut s = self.lock()?;
        if !user_exists(&s, user) {
            return Ok(Insert::NoSuchUser);
        }
        Ok(s.account
            .payment_methods
            .insert(user, new.make_default, max, |id, is_default| {
                PaymentMethod {
                    id: PaymentMethodId(id),
                    record: new.record.clone(),
                    is_default,
                    created_at: now,
                    updated_at: now,
                }
            }))
    }

    fn update_payment_method(
        &self,
        user: UserId,
        id: PaymentMethodId,
        record: &PaymentMethodRecord,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<PaymentMethod>, RepoError> {
        let mut s = self.lock()?;
        Ok(s.account
            .payment_methods
            .update(user, id.0, make_default, |p| {
                p.record = record.clone();
                p.updated_at = now;
            }))
    }

    fn delete_payment_method(&self, user: UserId, id: PaymentMethodId) -> Result<bool, RepoError> {
        Ok(self.lock()?.account.payment_methods.delete(user, id.0))
    }

    fn notifications(
        &self,
        user: UserId,
        query: &NotificationQuery,
    ) -> Result<NotificationPage, RepoError> {
        let s = self.lock()?;
        let mut mine: Vec<&Notification> = s
            .account
            .notifications
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, n)| n)
            .collect();
        mine.sort_by_key(|n| std::cmp::Reverse((n.created_at, n.id)));
        let unread_count = mine.iter().filter(|n| !n.is_read).count() as u64;
        let matching: Vec<&Notification> = mine
            .into_iter()
            .filter(|n| !query.unread_only || !n.is_read)
            .collect();
        Ok(NotificationPage {
            total: matching.len() as u64,
            unread_count,
            items: matching
                .into_iter()
                .skip(query.offset as usize)
                .take(query.limit.get() as usize)
                .cloned()
                .collect(),
        })
    }

    fn insert_notification(
        &self,
        user: UserId,
        new: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepoError> {
        let mut s = self.lock()?;
        Ok(insert_notification(&mut s, user, new, now))
    }

    fn mark_notification_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepoError> {
        let mut s = self.lock()?;
        Ok(s.account
            .notifications
            .iter_mut()
            .find(|(u, n)| *u == user && n.id == id)
            .map(|(_, n)| {
                if !n.is_read {
                    n.is_read = true;
                    n.read_at = Some(now);
                }
                n.clone()
            }))
    }

    fn mark_all_notifications_read(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let mut s = self.lock()?;
        let mut changed = 0;
        for (_, n) in s
            .account
            .notifications
            .iter_mut()
            .filter(|(u, n)| *u == user && !n.is_read)
        {
            n.is_read = true;
            n.read_at = Some(now);
            changed += 1;
        }
        Ok(changed)
    }

    fn notify_unknown_device(
        &self,
        user: UserId,
        session: &SessionId,
        user_agent: Option<&str>,
        notice: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut s = self.lock()?;
        let current = s
            .sessions
            .get(session)
            .map(|r| (r.created_at, session.0.clone()));
        let known = s.sessions.iter().any(|(id, r)| {
            r.user == user
                && r.user_agent.as_deref() == user_agent
                && current
                    .as_ref()
                    .is_none_or(|c| (r.created_at, id.0.clone()) < *c)
        });
        Ok(!known && insert_notification(&mut s, user, notice, now).is_some())
    }
}

fn insert_notification(
    s: &mut State,
    user: UserId,
    new: &NewNotification,
    now: DateTime<Utc>,
) -> Option<Notification> {
    if !user_exists(s, user) {
        return None;
    }
    let id = NotificationId(s.account.notifications.len() as i64 + 1);
    let n = Notification {
        id,
        kind: new.kind,
        title: new.title.clone(),
        message: new.message.clone(),
        order_id: new.order_id,
        is_read: false,
        created_at: now,
        read_at: None,
    };
    s.account.notifications.push((user, n.clone()));
    Some(n)
}

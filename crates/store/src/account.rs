//! [`AccountRepository`] on a market database.
//!
//! Every write that decides on the user's other rows (limits, the default flag) runs in one
//! [`write_tx`](crate::connection::write_tx) after [`lock_user`], so the writes of one user serialize on both backends.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use marque_domain::{
    AccountRepository, Address, AddressId, AddressRecord, Insert, NewAddress, NewNotification,
    NewPaymentMethod, Notification, NotificationId, NotificationPage, NotificationQuery,
    PaymentMethod, PaymentMethodId, PaymentMethodRecord, RepoError, SessionId, UserId,
};
use marque_markets::Market;
use tracing::instrument;

use crate::account_rows::{
    NotificationRow, PaymentMethodColumns, PaymentMethodRow, insert_address, load_addresses,
    write_address,
};
use crate::connection::{DbConnection, lock_user};
use crate::models::to_db;
use crate::schema::{sessions, user_addresses, user_notifications, user_payment_methods};
use crate::store::TxError;
use crate::{DbError, MarketStore};

/// A user's rows of one table with at most one default among them: the queries the
/// one-default and limit rules need, over the columns every market's table has.
trait OwnedRows {
    /// The domain value of a row.
    type Item;
    /// What a row is, for errors (`address`, `payment method`).
    const WHAT: &'static str;
    /// Row `id` of the user as a domain value; `None` when the user has no such row.
    fn load(
        conn: &mut DbConnection,
        market: Market,
        user: i64,
        id: i64,
    ) -> Result<Option<Self::Item>, TxError>;
    /// How many rows the user has.
    fn count(conn: &mut DbConnection, user: i64) -> QueryResult<i64>;
    /// The user's default row.
    fn default_row(conn: &mut DbConnection, user: i64) -> QueryResult<Option<i64>>;
    /// Whether row `id` of the user is the default; `None` when the user has no such row.
    fn is_default(conn: &mut DbConnection, user: i64, id: i64) -> QueryResult<Option<bool>>;
    /// Sets the default flag of row `id`.
    fn set_default(conn: &mut DbConnection, id: i64, value: bool) -> QueryResult<usize>;
    /// Deletes row `id` of the user.
    fn delete(conn: &mut DbConnection, user: i64, id: i64) -> QueryResult<usize>;
    /// The user's newest row (by creation time, then id).
    fn newest(conn: &mut DbConnection, user: i64) -> QueryResult<Option<i64>>;
}

/// Implements [`OwnedRows`] for a table with `id`, `user_id`, `is_default`, `created_at`, whose
/// rows `$load` reads as `$item`.
macro_rules! owned_rows {
    ($name:ident, $t:ident, $item:ty, $what:literal, $load:path) => {
        struct $name;

        impl OwnedRows for $name {
            type Item = $item;
            const WHAT: &'static str = $what;

            fn load(
                conn: &mut DbConnection,
                market: Market,
                user: i64,
                id: i64,
            ) -> Result<Option<$item>, TxError> {
                $load(conn, market, user, id)
            }

            fn count(conn: &mut DbConnection, user: i64) -> QueryResult<i64> {
                $t::table
                    .filter($t::user_id.eq(user))
                    .count()
                    .get_result(conn)
            }

            fn default_row(conn: &mut DbConnection, user: i64) -> QueryResult<Option<i64>> {
                $t::table
                    .filter($t::user_id.eq(user))
                    .filter($t::is_default.eq(true))
                    .select($t::id)
                    .first(conn)
                    .optional()
            }

            fn is_default(
                conn: &mut DbConnection,
                user: i64,
                id: i64,
            ) -> QueryResult<Option<bool>> {
                $t::table
                    .find(id)
                    .filter($t::user_id.eq(user))
                    .select($t::is_default)
                    .first(conn)
                    .optional()
            }

            fn set_default(conn: &mut DbConnection, id: i64, value: bool) -> QueryResult<usize> {
                diesel::update($t::table.find(id))
                    .set($t::is_default.eq(value))
                    .execute(conn)
            }

            fn delete(conn: &mut DbConnection, user: i64, id: i64) -> QueryResult<usize> {
                diesel::delete($t::table.find(id).filter($t::user_id.eq(user))).execute(conn)
            }

            fn newest(conn: &mut DbConnection, user: i64) -> QueryResult<Option<i64>> {
                $t::table
                    .filter($t::user_id.eq(user))
                    .order(($t::created_at.desc(), $t::id.desc()))
                    .select($t::id)
                    .first(conn)
                    .optional()
            }
        }
    };
}

owned_rows!(
    Addresses,
    user_addresses,
    Address,
    "address",
    MarketStore::load_address
);
owned_rows!(
    PaymentMethods,
    user_payment_methods,
    PaymentMethod,
    "payment method",
    MarketStore::load_payment_method
);

/// Inside a transaction: adds a row through `insert` (given whether it is the default) unless
/// the user is missing or has `max` rows; a new default clears the old one first (the partial
/// unique index allows one).
fn insert_owned<R: OwnedRows>(
    conn: &mut DbConnection,
    user: i64,
    make_default: bool,
    max: u32,
    insert: impl FnOnce(&mut DbConnection, bool) -> QueryResult<i64>,
) -> QueryResult<Insert<i64>> {
    if !lock_user(conn, user)? {
        return Ok(Insert::NoSuchUser);
    }
    if R::count(conn, user)? >= i64::from(max) {
        return Ok(Insert::LimitReached);
    }
    let current = R::default_row(conn, user)?;
    let is_default = make_default || current.is_none();
    if let (true, Some(old)) = (is_default, current) {
        R::set_default(conn, old, false)?;
    }
    insert(conn, is_default).map(Insert::Created)
}

/// Inside a transaction: runs `write` on row `id` of the user, first making it the default when
/// asked. `false` when the user has no such row.
fn update_owned<R: OwnedRows>(
    conn: &mut DbConnection,
    user: i64,
    id: i64,
    make_default: bool,
    write: impl FnOnce(&mut DbConnection) -> QueryResult<usize>,
) -> QueryResult<bool> {
    lock_user(conn, user)?;
    let Some(was_default) = R::is_default(conn, user, id)? else {
        return Ok(false);
    };
    if make_default && !was_default {
        if let Some(old) = R::default_row(conn, user)? {
            R::set_default(conn, old, false)?;
        }
        R::set_default(conn, id, true)?;
    }
    write(conn)?;
    Ok(true)
}

/// Inside a transaction: deletes row `id` of the user; when it was the default, the newest
/// remaining row becomes the default. `false` when the user has no such row.
fn delete_owned<R: OwnedRows>(conn: &mut DbConnection, user: i64, id: i64) -> QueryResult<bool> {
    lock_user(conn, user)?;
    let Some(was_default) = R::is_default(conn, user, id)? else {
        return Ok(false);
    };
    R::delete(conn, user, id)?;
    if was_default && let Some(newest) = R::newest(conn, user)? {
        R::set_default(conn, newest, true)?;
    }
    Ok(true)
}

/// Defines `fn $name(conn, market, user, id) -> Result<Option<$item>, TxError>`: row `id` of
/// `user` in table `$t` (`None` when the user has no such row), read as `$row` and converted
/// with `$row::$into(market)`.
macro_rules! load_owned {
    ($name:ident, $t:ident, $row:ty, $item:ty, $into:ident) => {
        fn $name(
            conn: &mut DbConnection,
            market: Market,
            user: i64,
            id: i64,
        ) -> Result<Option<$item>, TxError> {
            Ok($t::table
                .find(id)
                .filter($t::user_id.eq(user))
                .select(<$row>::as_select())
                .first::<$row>(conn)
                .optional()?
                .map(|r| r.$into(market))
                .transpose()?)
        }
    };
}

impl MarketStore {
    /// Row `id` of the user (`None` when the user has no such row).
    fn read_row<R: OwnedRows>(&self, user: UserId, id: i64) -> Result<Option<R::Item>, RepoError> {
        let market = MarketStore::market(self);
        self.read(|conn| R::load(conn, market, user.0, id))
    }

    /// [`insert_owned`] in a write transaction; the new row is read back.
    fn insert_row<R: OwnedRows>(
        &self,
        user: UserId,
        make_default: bool,
        max: u32,
        now: DateTime<Utc>,
        insert: impl FnOnce(&mut DbConnection, bool, NaiveDateTime) -> QueryResult<i64>,
    ) -> Result<Insert<R::Item>, RepoError> {
        let market = MarketStore::market(self);
        let now = to_db(now);
        let insert = |conn: &mut DbConnection, is_default| insert(conn, is_default, now);
        self.write(|conn| {
            Ok(
                match insert_owned::<R>(conn, user.0, make_default, max, insert)? {
                    Insert::Created(id) => Insert::Created(
                        R::load(conn, market, user.0, id)?
                            .ok_or_else(|| vanished(market, R::WHAT, id))?,
                    ),
                    Insert::LimitReached => Insert::LimitReached,
                    Insert::NoSuchUser => Insert::NoSuchUser,
                },
            )
        })
    }

    /// [`update_owned`] in a write transaction; the row is read back (`None`: no such row).
    fn update_row<R: OwnedRows>(
        &self,
        user: UserId,
        id: i64,
        make_default: bool,
        now: DateTime<Utc>,
        write: impl FnOnce(&mut DbConnection, NaiveDateTime) -> QueryResult<usize>,
    ) -> Result<Option<R::Item>, RepoError> {
        let market = MarketStore::market(self);
        let now = to_db(now);
        let write = |conn: &mut DbConnection| write(conn, now);
        self.write(|conn| {
            if !update_owned::<R>(conn, user.0, id, make_default, write)? {
                return Ok(None);
            }
            R::load(conn, market, user.0, id)
        })
    }

    /// [`delete_owned`] in a write transaction.
    fn delete_row<R: OwnedRows>(&self, user: UserId, id: i64) -> Result<bool, RepoError> {
        self.write(|conn| Ok(delete_owned::<R>(conn, user.0, id)?))
    }

    /// The address in the shape of this store's market, or a data error.
    fn check_shape(&self, record: &AddressRecord) -> Result<(), DbError> {
        let market = MarketStore::market(self);
        if record.postal.market() == market {
            Ok(())
        } else {
            Err(DbError::WrongMarket {
                market: market.code(),
                other: record.postal.market().code(),
            })
        }
    }

    fn load_address(
        conn: &mut DbConnection,
        market: Market,
        user: i64,
        id: i64,
    ) -> Result<Option<Address>, TxError> {
        Ok(load_addresses(conn, market, user, Some(id))?
            .into_iter()
            .next()
            .map(|r| r.into_address(market))
            .transpose()?)
    }

    load_owned!(
        load_payment_method,
        user_payment_methods,
        PaymentMethodRow,
        PaymentMethod,
        into_payment_method
    );
    load_owned!(
        load_notification,
        user_notifications,
        NotificationRow,
        Notification,
        into_notification
    );
}

fn add_notification(
    conn: &mut DbConnection,
    market: Market,
    user: i64,
    new: &NewNotification,
    now: NaiveDateTime,
) -> Result<Notification, TxError> {
    let id: i64 = diesel::insert_into(user_notifications::table)
        .values((
            user_notifications::user_id.eq(user),
            user_notifications::notification_type.eq(new.kind.as_str()),
            user_notifications::title.eq(new.title.as_str()),
            user_notifications::message.eq(new.message.as_str()),
            user_notifications::order_id.eq(new.order_id),
            user_notifications::is_read.eq(false),
            user_notifications::created_at.eq(now),
        ))
        .returning(user_notifications::id)
        .get_result(conn)?;
    MarketStore::load_notification(conn, market, user, id)?
        .ok_or_else(|| vanished(market, "notification", id))
}

/// A row just written that cannot be read back in the same transaction: a bug or a corrupt
/// database, never a client error.
fn vanished(market: Market, what: &'static str, id: i64) -> TxError {
    TxError::Store(DbError::Vanished {
        market: market.code(),
        what,
        id,
    })
}

impl AccountRepository for MarketStore {
    fn market(&self) -> Market {
        MarketStore::market(self)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn addresses(&self, user: UserId) -> Result<Vec<Address>, RepoError> {
        let market = MarketStore::market(self);
        let rows = self.read(|conn| Ok(load_addresses(conn, market, user.0, None)?))?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_address(market))
            .collect::<Result<_, DbError>>()?)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn address(&self, user: UserId, id: AddressId) -> Result<Option<Address>, RepoError> {
        self.read_row::<Addresses>(user, id.0)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn insert_address(
        &self,
        user: UserId,
        new: &NewAddress,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<Insert<Address>, RepoError> {
        self.check_shape(&new.record)?;
        self.insert_row::<Addresses>(user, new.make_default, max, now, |conn, is_default, now| {
            insert_address(conn, user.0, &new.record, is_default, now)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn update_address(
        &self,
        user: UserId,
        id: AddressId,
        record: &AddressRecord,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Address>, RepoError> {
        self.check_shape(record)?;
        self.update_row::<Addresses>(user, id.0, make_default, now, |conn, now| {
            write_address(conn, user.0, id.0, record, now)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn delete_address(&self, user: UserId, id: AddressId) -> Result<bool, RepoError> {
        self.delete_row::<Addresses>(user, id.0)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn payment_methods(&self, user: UserId) -> Result<Vec<PaymentMethod>, RepoError> {
        let market = MarketStore::market(self);
        let rows = self.read(|conn| {
            // On the backend's own connection (`on_backend!`).
            Ok(on_backend!(conn, |c| user_payment_methods::table
                .filter(user_payment_methods::user_id.eq(user.0))
                .order((
                    user_payment_methods::is_default.desc(),
                    user_payment_methods::created_at.desc(),
                    user_payment_methods::id.desc(),
                ))
                .select(PaymentMethodRow::as_select())
                .load::<PaymentMethodRow>(c))?)
        })?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_payment_method(market))
            .collect::<Result<_, DbError>>()?)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn payment_method(
        &self,
        user: UserId,
        id: PaymentMethodId,
    ) -> Result<Option<PaymentMethod>, RepoError> {
        self.read_row::<PaymentMethods>(user, id.0)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn insert_payment_method(
        &self,
        user: UserId,
        new: &NewPaymentMethod,
        max: u32,
        now: DateTime<Utc>,
    ) -> Result<Insert<PaymentMethod>, RepoError> {
        self.insert_row::<PaymentMethods>(
            user,
            new.make_default,
            max,
            now,
            |conn, is_default, now| {
                diesel::insert_into(user_payment_methods::table)
                    .values((
                        PaymentMethodColumns::of(&new.record),
                        user_payment_methods::user_id.eq(user.0),
                        user_payment_methods::is_default.eq(is_default),
                        user_payment_methods::created_at.eq(now),
                        user_payment_methods::updated_at.eq(now),
                    ))
                    .returning(user_payment_methods::id)
                    .get_result(conn)
            },
        )
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn update_payment_method(
        &self,
        user: UserId,
        id: PaymentMethodId,
        record: &PaymentMethodRecord,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<PaymentMethod>, RepoError> {
        self.update_row::<PaymentMethods>(user, id.0, make_default, now, |conn, now| {
            diesel::update(
                user_payment_methods::table
                    .find(id.0)
                    .filter(user_payment_methods::user_id.eq(user.0)),
            )
            .set((
                PaymentMethodColumns::of(record),
                user_payment_methods::updated_at.eq(now),
            ))
            .execute(conn)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn delete_payment_method(&self, user: UserId, id: PaymentMethodId) -> Result<bool, RepoError> {
        self.delete_row::<PaymentMethods>(user, id.0)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn notifications(
        &self,
        user: UserId,
        query: &NotificationQuery,
    ) -> Result<NotificationPage, RepoError> {
        let market = MarketStore::market(self);
        let (rows, total, unread_count) = self.read(|conn| {
            let mine = user_notifications::table.filter(user_notifications::user_id.eq(user.0));
            let unread = mine.filter(user_notifications::is_read.eq(false));
            // Every query of a notification page on the backend's own connection
            // (`on_backend!`).
            let unread_count: i64 = on_backend!(&mut *conn, |c| unread.count().get_result(c))?;
            let total: i64 = if query.unread_only {
                unread_count
            } else {
                on_backend!(&mut *conn, |c| mine.count().get_result(c))?
            };
            let newest_first = (
                user_notifications::created_at.desc(),
                user_notifications::id.desc(),
            );
            let (limit, offset) = (i64::from(query.limit.get()), i64::from(query.offset));
            let rows: Vec<NotificationRow> = if query.unread_only {
                on_backend!(&mut *conn, |c| unread
                    .order(newest_first)
                    .limit(limit)
                    .offset(offset)
                    .select(NotificationRow::as_select())
                    .load(c))?
            } else {
                on_backend!(&mut *conn, |c| mine
                    .order(newest_first)
                    .limit(limit)
                    .offset(offset)
                    .select(NotificationRow::as_select())
                    .load(c))?
            };
            Ok((rows, total, unread_count))
        })?;
        Ok(NotificationPage {
            items: rows
                .into_iter()
                .map(|r| r.into_notification(market))
                .collect::<Result<_, _>>()?,
            total: u64::try_from(total).unwrap_or(0),
            unread_count: u64::try_from(unread_count).unwrap_or(0),
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn insert_notification(
        &self,
        user: UserId,
        new: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepoError> {
        let market = MarketStore::market(self);
        let now = to_db(now);
        self.write(|conn| {
            if !lock_user(conn, user.0)? {
                return Ok(None);
            }
            add_notification(conn, market, user.0, new, now).map(Some)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0, id = id.0))]
    fn mark_notification_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepoError> {
        let market = MarketStore::market(self);
        let now = to_db(now);
        self.write(|conn| {
            diesel::update(
                user_notifications::table
                    .find(id.0)
                    .filter(user_notifications::user_id.eq(user.0))
                    .filter(user_notifications::is_read.eq(false)),
            )
            .set((
                user_notifications::is_read.eq(true),
                user_notifications::read_at.eq(now),
            ))
            .execute(conn)?;
            Self::load_notification(conn, market, user.0, id.0)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn mark_all_notifications_read(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let now = to_db(now);
        let changed = self.with_conn(|conn| {
            Ok(diesel::update(
                user_notifications::table
                    .filter(user_notifications::user_id.eq(user.0))
                    .filter(user_notifications::is_read.eq(false)),
            )
            .set((
                user_notifications::is_read.eq(true),
                user_notifications::read_at.eq(now),
            ))
            .execute(conn)?)
        })?;
        Ok(changed as u64)
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(market = self.code(), user = user.0, session = session.0.as_str())
    )]
    fn notify_unknown_device(
        &self,
        user: UserId,
        session: &SessionId,
        user_agent: Option<&str>,
        notice: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let market = MarketStore::market(self);
        let now = to_db(now);
        self.write(|conn| {
            if !lock_user(conn, user.0)? {
                return Ok(false);
            }
            let current: Option<NaiveDateTime> = sessions::table
                .find(session.0.as_str())
                .select(sessions::created_at)
                .first(conn)
                .optional()?;
            let mine = sessions::table
                .filter(sessions::user_id.eq(user.0))
                .select((sessions::created_at, sessions::id));
            let same_device: Vec<(NaiveDateTime, String)> = match user_agent {
                Some(ua) => mine.filter(sessions::user_agent.eq(ua)).load(conn)?,
                None => mine.filter(sessions::user_agent.is_null()).load(conn)?,
            };
            // Earlier = created before the current session; equal times are ordered by id so
            // that of two simultaneous first sign-ins exactly one finds no earlier session.
            let known = same_device.iter().any(|(created, id)| match current {
                Some(at) => (*created, id.as_str()) < (at, session.0.as_str()),
                None => true,
            });
            if known {
                return Ok(false);
            }
            add_notification(conn, market, user.0, notice, now)?;
            Ok(true)
        })
    }
}

//! Behaviour of `AccountService` (and its sign-in observer) over the real store (a SQLite file
//! per market), with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, TimeZone, Utc};
use marque_domain::{
    AccountError, Address, AddressId, AddressRecord, AddressTitle, AddressUpdate, AuthConfig,
    MarketUnavailable, NewAddress, NewNotification, NewPaymentMethod, NotificationKind,
    NotificationQuery, Owner, PageLimit, PaymentMethodId, PaymentMethodInput, PaymentMethodUpdate,
    UserId,
};
use marque_markets::{AddressInput, Market, MarketAddress, OtpCode};
use marque_testkit::Services;

type Fixture = Services;

const KG_A: &str = "+996555000001";
const KG_B: &str = "+996555000002";
const US_A: &str = "+12125550100";

fn fixture() -> Fixture {
    let mut config = AuthConfig::default();
    for n in [KG_A, KG_B, US_A] {
        config
            .test_numbers
            .insert(n.to_owned(), OtpCode::parse("123456").unwrap());
    }
    Services::sqlite(config, Utc.with_ymd_and_hms(2026, 3, 15, 9, 0, 0).unwrap())
}

trait Login {
    /// Signs `phone` in from `user_agent`; returns the owner.
    fn login(&self, phone: &str, user_agent: Option<&str>) -> Owner;
}

impl Login for Fixture {
    fn login(&self, phone: &str, user_agent: Option<&str>) -> Owner {
        let (_, who) = self.sign_in(phone, user_agent);
        self.clock.advance(Duration::seconds(1));
        who.owner()
    }
}

fn v(s: &str) -> Option<Option<String>> {
    Some(Some(s.to_owned()))
}

fn kg_address(street: &str, make_default: bool) -> NewAddress {
    let input = AddressInput {
        street: v(street),
        building: v("34"),
        city: v("Бишкек"),
        region: v("Чуйская область"),
        ..AddressInput::default()
    };
    NewAddress {
        record: AddressRecord {
            title: Some(AddressTitle::parse("Дом").unwrap()),
            postal: MarketAddress::parse(Market::Kg, &input).unwrap(),
        },
        make_default,
    }
}

/// Adds a KG address on `street` for `owner`, which must succeed.
fn add_kg_address(f: &Fixture, owner: Owner, street: &str, make_default: bool) -> Address {
    f.account
        .add_address(owner, kg_address(street, make_default))
        .unwrap()
}

fn defaults(f: &Fixture, owner: Owner) -> Vec<bool> {
    f.account
        .addresses(owner)
        .unwrap()
        .iter()
        .map(|a| a.is_default)
        .collect()
}

#[test]
fn exactly_one_default_address() {
    let f = fixture();
    let me = f.login(KG_A, None);
    let first = add_kg_address(&f, me, "ул. Первая", false);
    assert!(first.is_default, "the first address is the default");
    f.clock.advance(Duration::seconds(1));
    let second = add_kg_address(&f, me, "ул. Вторая", false);
    assert!(!second.is_default);
    f.clock.advance(Duration::seconds(1));
    let third = add_kg_address(&f, me, "ул. Третья", true);
    assert!(third.is_default);
    let list = f.account.addresses(me).unwrap();
    assert_eq!(
        list.iter().map(|a| a.id).collect::<Vec<_>>(),
        [third.id, second.id, first.id],
        "default first, then newest first"
    );
    assert_eq!(defaults(&f, me), [true, false, false]);

    // Making one the default moves the flag; `false` never unsets it.
    let update = AddressUpdate {
        make_default: true,
        ..AddressUpdate::default()
    };
    assert!(
        f.account
            .update_address(me, first.id, update)
            .unwrap()
            .is_default
    );
    let kept = f
        .account
        .update_address(me, first.id, AddressUpdate::default())
        .unwrap();
    assert!(kept.is_default);
    assert_eq!(defaults(&f, me).iter().filter(|d| **d).count(), 1);

    // Deleting the default promotes the newest remaining address.
    f.account.delete_address(me, first.id).unwrap();
    let list = f.account.addresses(me).unwrap();
    assert_eq!(list[0].id, third.id);
    assert!(list[0].is_default);
    f.account.delete_address(me, third.id).unwrap();
    f.account.delete_address(me, second.id).unwrap();
    assert!(f.account.addresses(me).unwrap().is_empty());
    assert!(matches!(
        f.account.delete_address(me, second.id),
        Err(AccountError::NotFound)
    ));
}

#[test]
fn at_most_twenty_addresses() {
    let f = fixture();
    let me = f.login(KG_A, None);
    for i in 0..20 {
        f.account
            .add_address(me, kg_address(&format!("ул. {i}"), false))
            .unwrap();
    }
    assert!(matches!(
        f.account.add_address(me, kg_address("ул. 21", true)),
        Err(AccountError::LimitReached(20))
    ));
    assert_eq!(f.account.addresses(me).unwrap().len(), 20);
    assert_eq!(defaults(&f, me).iter().filter(|d| **d).count(), 1);
}

#[test]
fn rows_of_other_users_are_not_found() {
    let f = fixture();
    let me = f.login(KG_A, None);
    let other = f.login(KG_B, None);
    let mine = add_kg_address(&f, me, "ул. Моя", false);
    assert!(f.account.addresses(other).unwrap().is_empty());
    assert!(matches!(
        f.account
            .update_address(other, mine.id, AddressUpdate::default()),
        Err(AccountError::NotFound)
    ));
    assert!(matches!(
        f.account.delete_address(other, mine.id),
        Err(AccountError::NotFound)
    ));
    // The same id in another market's database is another row (none here).
    let us = f.login(US_A, None);
    assert_eq!(us.user, me.user, "ids are per market");
    assert!(f.account.addresses(us).unwrap().is_empty());
    assert!(matches!(
        f.account.delete_address(us, mine.id),
        Err(AccountError::NotFound)
    ));
    assert_eq!(f.account.addresses(me).unwrap().len(), 1);
    // An address in the shape of another market is refused.
    assert!(matches!(
        f.account.add_address(us, kg_address("ул. Моя", false)),
        Err(AccountError::Invalid(_))
    ));
    assert!(matches!(
        f.account.add_address(
            Owner {
                market: Market::Kg,
                user: UserId(999)
            },
            kg_address("ул. Чужая", false)
        ),
        Err(AccountError::NotFound)
    ));
}

#[test]
fn address_updates_merge_and_are_checked_again() {
    let f = fixture();
    let me = f.login(KG_A, None);
    let a = add_kg_address(&f, me, "ул. Юнусалиева", false);
    let updated = f
        .account
        .update_address(
            me,
            a.id,
            AddressUpdate {
                title: Some(None),
                postal: AddressInput {
                    apartment: v("кв. 12"),
                    ..AddressInput::default()
                },
                make_default: false,
            },
        )
        .unwrap();
    assert_eq!(updated.title, None);
    assert_eq!(
        updated.postal.full_address(),
        "ул. Юнусалиева, 34, кв. 12, Бишкек, Чуйская область"
    );
    for (patch, field) in [
        (
            AddressInput {
                street: Some(None),
                ..AddressInput::default()
            },
            "street",
        ),
        (
            AddressInput {
                zip_code: v("10001"),
                ..AddressInput::default()
            },
            "zip_code",
        ),
    ] {
        let e = f
            .account
            .update_address(
                me,
                a.id,
                AddressUpdate {
                    postal: patch,
                    ..AddressUpdate::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(e, AccountError::Invalid(fe) if fe.field == field),
            "{field}"
        );
    }
    assert_eq!(
        f.account.addresses(me).unwrap()[0],
        updated,
        "nothing written"
    );
}

fn card(number: &str, month: &str, year: &str) -> NewPaymentMethod {
    NewPaymentMethod::parse(
        Market::Kg,
        &PaymentMethodInput {
            card_number: Some(number.to_owned()),
            expiry_month: Some(month.to_owned()),
            expiry_year: Some(year.to_owned()),
            ..PaymentMethodInput::default()
        },
    )
    .unwrap()
}

#[test]
fn payment_methods_check_expiry_and_keep_one_default() {
    let f = fixture();
    let me = f.login(KG_A, None);
    // Today is 15 March 2026: a card expiring 03/2026 is still good, 02/2026 is not.
    assert!(matches!(
        f.account
            .add_payment_method(me, card("4111111111111111", "2", "2026")),
        Err(AccountError::CardExpired)
    ));
    assert!(matches!(
        f.account.add_payment_method(me, card("4111111111111111", "4", "2047")),
        Err(AccountError::Invalid(e)) if e.field == "expiry_year"
    ));
    let visa = f
        .account
        .add_payment_method(me, card("4111111111111111", "3", "2026"))
        .unwrap();
    assert!(visa.is_default);
    let elcart = f
        .account
        .add_payment_method(me, card("9417000000000008", "12", "2030"))
        .unwrap();
    assert!(!elcart.is_default);
    f.clock.advance(Duration::seconds(1));
    let cash = f
        .account
        .add_payment_method(
            me,
            NewPaymentMethod::parse(
                Market::Kg,
                &PaymentMethodInput {
                    payment_type: Some("cash_on_delivery".into()),
                    is_default: true,
                    ..PaymentMethodInput::default()
                },
            )
            .unwrap(),
        )
        .unwrap();
    assert!(cash.is_default);

    // A renewed card: new expiry and holder; the expiry is checked again.
    let renewed = f
        .account
        .update_payment_method(
            me,
            visa.id,
            PaymentMethodUpdate::parse(Some(Some("Aibek Asanov")), Some("3"), Some("2031"), true)
                .unwrap(),
        )
        .unwrap();
    assert!(renewed.is_default);
    let c = renewed.record.card.clone().unwrap();
    assert_eq!(c.expiry.map(|e| e.year()), Some(2031));
    assert_eq!(c.holder_name.unwrap().as_str(), "Aibek Asanov");
    assert!(matches!(
        f.account.update_payment_method(
            me,
            visa.id,
            PaymentMethodUpdate::parse(None, Some("1"), Some("2026"), false).unwrap()
        ),
        Err(AccountError::CardExpired)
    ));
    assert!(matches!(
        f.account.update_payment_method(
            me,
            cash.id,
            PaymentMethodUpdate::parse(Some(Some("Ann")), None, None, false).unwrap()
        ),
        Err(AccountError::Invalid(e)) if e.field == "card_holder_name"
    ));
    let list = f.account.payment_methods(me).unwrap();
    assert_eq!(list.iter().filter(|p| p.is_default).count(), 1);
    assert_eq!(list[0].id, visa.id);

    f.account.delete_payment_method(me, visa.id).unwrap();
    let list = f.account.payment_methods(me).unwrap();
    assert_eq!(
        list[0].id, cash.id,
        "the newest remaining becomes the default"
    );
    assert!(list[0].is_default);
    let other = f.login(KG_B, None);
    assert!(matches!(
        f.account.delete_payment_method(other, cash.id),
        Err(AccountError::NotFound)
    ));
    assert!(matches!(
        f.account.delete_payment_method(me, PaymentMethodId(999)),
        Err(AccountError::NotFound)
    ));
}

fn notice(kind: NotificationKind, title: &str) -> NewNotification {
    marque_testkit::notification(kind, title, "Текст")
}

#[test]
fn notifications_from_other_services_are_listed_and_read() {
    let f = fixture();
    let me = f.login(KG_A, None);
    let other = f.login(KG_B, None);
    for (i, kind) in NotificationKind::ALL.into_iter().enumerate() {
        f.account
            .notify(me, notice(kind, &format!("n{i}")))
            .unwrap();
        f.clock.advance(Duration::seconds(1));
    }
    f.account
        .notify(other, notice(NotificationKind::System, "theirs"))
        .unwrap();
    assert!(matches!(
        f.account.notify(
            Owner {
                market: Market::Kg,
                user: UserId(999)
            },
            notice(NotificationKind::System, "nobody")
        ),
        Err(AccountError::NotFound)
    ));

    let page = f
        .account
        .notifications(me, NotificationQuery::default())
        .unwrap();
    assert_eq!((page.total, page.unread_count), (4, 4));
    let titles: Vec<&str> = page.items.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["n3", "n2", "n1", "n0"], "newest first");
    assert_eq!(page.items[3].order_id, Some(42));

    let read = f
        .account
        .mark_notification_read(me, page.items[0].id)
        .unwrap();
    assert!(read.is_read);
    let first_read_at = read.read_at;
    f.clock.advance(Duration::seconds(5));
    let again = f
        .account
        .mark_notification_read(me, page.items[0].id)
        .unwrap();
    assert_eq!(again.read_at, first_read_at, "read_at keeps the first time");
    let theirs = f
        .account
        .notifications(other, NotificationQuery::default())
        .unwrap();
    assert!(matches!(
        f.account.mark_notification_read(me, theirs.items[0].id),
        Err(AccountError::NotFound)
    ));

    let unread = NotificationQuery {
        unread_only: true,
        limit: PageLimit::new(2).unwrap(),
        offset: 1,
    };
    let page = f.account.notifications(me, unread).unwrap();
    assert_eq!((page.total, page.unread_count), (3, 3));
    assert_eq!(
        page.items
            .iter()
            .map(|n| n.title.as_str())
            .collect::<Vec<_>>(),
        ["n1", "n0"]
    );
    assert_eq!(f.account.mark_all_notifications_read(me).unwrap(), 3);
    assert_eq!(f.account.mark_all_notifications_read(me).unwrap(), 0);
    let page = f
        .account
        .notifications(me, NotificationQuery::default())
        .unwrap();
    assert_eq!((page.total, page.unread_count), (4, 0));
    let theirs = f
        .account
        .notifications(other, NotificationQuery::default())
        .unwrap();
    assert_eq!(
        theirs.unread_count, 1,
        "other users' notifications untouched"
    );
}

fn security_titles(f: &Fixture, owner: Owner) -> Vec<String> {
    f.account
        .notifications(owner, NotificationQuery::default())
        .unwrap()
        .items
        .into_iter()
        .filter(|n| n.kind == NotificationKind::Security)
        .map(|n| format!("{} | {}", n.title.as_str(), n.message.as_str()))
        .collect()
}

#[test]
fn a_new_device_sign_in_notifies_in_the_market_language() {
    let f = fixture();
    let me = f.login(KG_A, Some("Phone/1.0"));
    assert!(
        security_titles(&f, me).is_empty(),
        "a new account is not warned"
    );
    f.login(KG_A, Some("Phone/1.0"));
    assert!(
        security_titles(&f, me).is_empty(),
        "a known device is not warned about"
    );
    f.login(KG_A, Some("Laptop/2.0"));
    let notes = security_titles(&f, me);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("Вход в аккаунт с нового устройства | "),
        "{}",
        notes[0]
    );
    assert!(notes[0].contains("Laptop/2.0"));
    f.login(KG_A, Some("Laptop/2.0"));
    f.login(KG_A, None);
    f.login(KG_A, None);
    assert_eq!(
        security_titles(&f, me).len(),
        2,
        "no user agent is one more device"
    );

    let us = f.login(US_A, Some("Phone/1.0"));
    f.login(US_A, Some("Tablet/3.0"));
    let notes = security_titles(&f, us);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].starts_with("New sign-in to your account | "),
        "{}",
        notes[0]
    );
    // The observer writes only to the user's own market.
    assert_eq!(security_titles(&f, me).len(), 2);
}

#[test]
fn outages_are_unavailable() {
    let f = fixture();
    let me = f.login(KG_A, None);
    f.kg.set_down(true);
    assert!(matches!(
        f.account.addresses(me),
        Err(AccountError::Unavailable(MarketUnavailable {
            market: Market::Kg,
            source: Some(_)
        }))
    ));
    assert!(matches!(
        f.account
            .update_address(me, AddressId(1), AddressUpdate::default()),
        Err(AccountError::Unavailable(MarketUnavailable {
            market: Market::Kg,
            source: Some(_)
        }))
    ));
}

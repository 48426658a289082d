#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Account data (addresses, payment methods, notifications) on both backends.
//!
//! Every scenario runs on SQLite, and on PostgreSQL when `MARQUE_TEST_POSTGRES_URL` names an
//! admin URL. Each gets its own throwaway KG database (US scenarios open a US one). Time is fixed.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use marque_domain::{
    AccountRepository, AddressId, AddressRecord, AddressTitle, AuthRepository, Insert,
    IssueChallenge, IssueOutcome, NewAddress, NewNotification, NewPaymentMethod, NewSession,
    NotificationKind, NotificationQuery, PageLimit, PaymentMethodInput, RepoError, SessionId,
    UserId, VerifyChallenge, VerifyOutcome,
};
use marque_markets::{AddressInput, Market, MarketAddress, PhoneNumber};
use marque_store::MarketStore;

use marque_testkit::{TestStore as Ctx, code_check, on_both_backends};

on_both_backends!(
    addresses_keep_one_default_and_their_owner,
    us_addresses_have_their_own_columns,
    address_limit_holds_under_concurrency,
    default_moves_safely_under_concurrency,
    payment_methods_round_trip_without_card_numbers,
    notifications_page_count_and_read,
    new_device_notice_is_sent_once,
    account_rows_go_with_the_user,
    rows_written_before_the_text_rules_still_load,
);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 1, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

/// Signs `e164` in at `now` from `user_agent`; returns the user and the new session.
fn sign_in(
    store: &MarketStore,
    e164: &str,
    user_agent: Option<&str>,
    now: DateTime<Utc>,
) -> (UserId, SessionId) {
    let phone = PhoneNumber::parse(e164, None).unwrap();
    let issued = store
        .issue_challenge(IssueChallenge {
            phone: phone.clone(),
            code_hash: b"h".to_vec(),
            purpose: marque_domain::OtpPurpose::Login,
            challenge_id: uuid::Uuid::new_v4().to_string(),
            channel: marque_domain::Channel::Sms,
            check_lock: true,
            now,
            expires_at: now + Duration::minutes(10),
            client_ip: None,
            limits: Vec::new(),
            outbox: None,
            sms: None,
        })
        .unwrap();
    assert_eq!(issued, IssueOutcome::Issued);
    let session = NewSession {
        id: SessionId(uuid::Uuid::new_v4().to_string()),
        created_at: now,
        expires_at: now + Duration::days(1),
        user_agent: user_agent.map(str::to_owned),
        client_ip: None,
    };
    let sid = session.id.clone();
    let matches = |_: &[u8]| true;
    match store
        .verify_challenge(VerifyChallenge {
            check: code_check(&phone, now, 3, &matches),
            refresh: marque_domain::NewRefreshToken {
                token_hash: sid.0.as_bytes().to_vec(),
                expires_at: now + Duration::days(1),
            },
            session,
            attach_to: None,
        })
        .unwrap()
    {
        VerifyOutcome::Verified { user, .. } => (user.id, sid),
        other => panic!("expected Verified, got {other:?}"),
    }
}

fn v(s: &str) -> Option<Option<String>> {
    Some(Some(s.to_owned()))
}

fn kg_record(street: &str) -> AddressRecord {
    let input = AddressInput {
        street: v(street),
        building: v("34"),
        apartment: v("12"),
        city: v("Бишкек"),
        region: v("Чуйская область"),
        postal_code: v("720000"),
        ..AddressInput::default()
    };
    AddressRecord {
        title: Some(AddressTitle::parse("Дом").unwrap()),
        postal: MarketAddress::parse(Market::Kg, &input).unwrap(),
    }
}

fn new_kg(street: &str, make_default: bool) -> NewAddress {
    NewAddress {
        record: kg_record(street),
        make_default,
    }
}

fn created<T: std::fmt::Debug>(i: Insert<T>) -> T {
    match i {
        Insert::Created(t) => t,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// The row a repository call found (`Ok(Some(_))`).
fn found<T>(r: Result<Option<T>, RepoError>) -> T {
    r.unwrap().expect("the row exists")
}

fn default_count(ctx: &Ctx, table: &str) -> i64 {
    ctx.sql(&format!(
        "SELECT COUNT(*) AS v FROM {table} WHERE is_default"
    ))
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn addresses_keep_one_default_and_their_owner(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, _) = sign_in(s, "+996555000001", None, t0());
    let (other, _) = sign_in(s, "+996555000002", None, t0());
    let a = created(
        s.insert_address(me, &new_kg("ул. Первая", false), 20, at(1))
            .unwrap(),
    );
    assert!(a.is_default);
    assert_eq!(a.created_at, at(1));
    assert_eq!(
        a.postal.full_address(),
        "ул. Первая, 34, кв. 12, Бишкек, Чуйская область, 720000"
    );
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM user_addresses WHERE region_code = 'C'"),
        1
    );
    let b = created(
        s.insert_address(me, &new_kg("ул. Вторая", false), 20, at(2))
            .unwrap(),
    );
    let c = created(
        s.insert_address(me, &new_kg("ул. Третья", true), 20, at(3))
            .unwrap(),
    );
    assert!(!b.is_default && c.is_default);
    let ids: Vec<AddressId> = s.addresses(me).unwrap().iter().map(|x| x.id).collect();
    assert_eq!(ids, [c.id, b.id, a.id]);
    assert_eq!(default_count(ctx, "user_addresses"), 1);

    // Other users see nothing and can change nothing.
    assert!(s.addresses(other).unwrap().is_empty());
    assert_eq!(s.address(other, a.id).unwrap(), None);
    assert_eq!(
        s.update_address(other, a.id, &kg_record("ул. Чужая"), true, at(4))
            .unwrap(),
        None
    );
    assert!(!s.delete_address(other, a.id).unwrap());
    let untouched = s.address(me, a.id).unwrap().unwrap();
    assert_eq!((untouched.postal, untouched.title), (a.postal, a.title));

    // Update: fields replaced, default moved, updated_at bumped.
    let mut record = kg_record("ул. Новая");
    record.title = None;
    let updated = found(s.update_address(me, a.id, &record, true, at(5)));
    assert!(updated.is_default);
    assert_eq!(updated.title, None);
    assert_eq!(updated.updated_at, at(5));
    assert_eq!(updated.created_at, at(1));
    assert_eq!(
        s.address(me, c.id).unwrap().map(|x| x.is_default),
        Some(false)
    );
    assert_eq!(default_count(ctx, "user_addresses"), 1);

    // Deleting the default promotes the newest remaining (c, created at 3).
    assert!(s.delete_address(me, a.id).unwrap());
    assert!(!s.delete_address(me, a.id).unwrap());
    assert_eq!(
        s.address(me, c.id).unwrap().map(|x| x.is_default),
        Some(true)
    );
    assert!(s.delete_address(me, b.id).unwrap());
    assert!(s.delete_address(me, c.id).unwrap());
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM user_addresses"), 0);

    // Limits and unknown users.
    for i in 0..3 {
        created(
            s.insert_address(me, &new_kg(&format!("ул. {i}"), false), 3, at(6))
                .unwrap(),
        );
    }
    assert_eq!(
        s.insert_address(me, &new_kg("ул. 4", true), 3, at(7))
            .unwrap(),
        Insert::LimitReached
    );
    assert_eq!(
        s.insert_address(UserId(999), &new_kg("ул. 4", true), 3, at(7))
            .unwrap(),
        Insert::NoSuchUser
    );
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM user_addresses"), 3);
}

fn us_addresses_have_their_own_columns(ctx: &Ctx) {
    let us_ctx = Ctx::new(ctx.backend, Market::Us).unwrap();
    let us = &us_ctx.store;
    let (me, _) = sign_in(us, "+12125550100", None, t0());
    let input = AddressInput {
        street_address: v("123 Main St"),
        address_line2: v("Apt 4B"),
        city: v("New York"),
        state: v("ny"),
        zip_code: v("10001-1234"),
        ..AddressInput::default()
    };
    let record = AddressRecord {
        title: None,
        postal: MarketAddress::parse(Market::Us, &input).unwrap(),
    };
    let new = NewAddress {
        record: record.clone(),
        make_default: false,
    };
    let a = created(us.insert_address(me, &new, 20, at(1)).unwrap());
    assert_eq!(
        a.postal.full_address(),
        "123 Main St, Apt 4B, New York, NY 10001-1234"
    );
    assert_eq!(
        us_ctx.sql("SELECT COUNT(*) AS v FROM user_addresses WHERE state = 'NY' AND zip_code = '10001-1234'"),
        1
    );
    assert_eq!(us.addresses(me).unwrap(), vec![a]);

    // The same user id in the KG database is another user, with nothing stored.
    let (kg_me, _) = sign_in(&ctx.store, "+996555000001", None, t0());
    assert_eq!(kg_me, me);
    assert!(ctx.store.addresses(kg_me).unwrap().is_empty());
    // An address of one market's shape is refused by the other market's store.
    assert!(matches!(
        ctx.store.insert_address(kg_me, &new, 20, at(2)),
        Err(RepoError::Other(_))
    ));
    assert!(matches!(
        us.insert_address(me, &new_kg("ул. Первая", false), 20, at(2)),
        Err(RepoError::Other(_))
    ));
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM user_addresses"), 0);
    assert_eq!(us_ctx.sql("SELECT COUNT(*) AS v FROM user_addresses"), 1);
}

fn address_limit_holds_under_concurrency(ctx: &Ctx) {
    let (me, _) = sign_in(&ctx.store, "+996555000001", None, t0());
    let barrier = Arc::new(Barrier::new(8));
    let outcomes: Vec<Insert<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let barrier = barrier.clone();
                let store = ctx.store.clone();
                scope.spawn(move || {
                    barrier.wait();
                    (0..4)
                        .map(|i| {
                            let new = new_kg(&format!("ул. {t}-{i}"), i % 2 == 0);
                            match store.insert_address(me, &new, 20, at(1)).unwrap() {
                                Insert::Created(_) => Insert::Created(()),
                                Insert::LimitReached => Insert::LimitReached,
                                Insert::NoSuchUser => Insert::NoSuchUser,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let made = outcomes
        .iter()
        .filter(|o| **o == Insert::Created(()))
        .count();
    assert_eq!(made, 20, "{outcomes:?}");
    assert_eq!(outcomes.len() - made, 12);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM user_addresses"), 20);
    assert_eq!(default_count(ctx, "user_addresses"), 1);
}

fn default_moves_safely_under_concurrency(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, _) = sign_in(s, "+996555000001", None, t0());
    let ids: Vec<AddressId> = (0..8)
        .map(|i| {
            created(
                s.insert_address(me, &new_kg(&format!("ул. {i}"), false), 20, at(i))
                    .unwrap(),
            )
            .id
        })
        .collect();
    let barrier = Arc::new(Barrier::new(ids.len()));
    std::thread::scope(|scope| {
        for (i, id) in ids.iter().enumerate() {
            let barrier = barrier.clone();
            let store = s.clone();
            scope.spawn(move || {
                barrier.wait();
                // Half move the default, half delete the current default candidates.
                if i % 2 == 0 {
                    store
                        .update_address(me, *id, &kg_record("ул. Гонка"), true, at(20))
                        .unwrap()
                        .unwrap();
                } else {
                    assert!(store.delete_address(me, *id).unwrap());
                }
            });
        }
    });
    let left = s.addresses(me).unwrap();
    assert_eq!(left.len(), 4);
    assert_eq!(left.iter().filter(|a| a.is_default).count(), 1, "{left:?}");
    assert_eq!(default_count(ctx, "user_addresses"), 1);
}

fn payment(input: PaymentMethodInput) -> NewPaymentMethod {
    NewPaymentMethod::parse(Market::Kg, &input).unwrap()
}

fn payment_methods_round_trip_without_card_numbers(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, _) = sign_in(s, "+996555000001", None, t0());
    let (other, _) = sign_in(s, "+996555000002", None, t0());
    let card = payment(PaymentMethodInput {
        card_number: Some("9417 0000 0000 0008".into()),
        card_holder_name: Some("Aibek Asanov".into()),
        expiry_month: Some("7".into()),
        expiry_year: Some("2029".into()),
        ..PaymentMethodInput::default()
    });
    let stored = created(s.insert_payment_method(me, &card, 20, at(1)).unwrap());
    assert!(stored.is_default);
    assert_eq!(stored.record, card.record);
    assert_eq!(
        s.payment_method(me, stored.id).unwrap(),
        Some(stored.clone())
    );
    assert_eq!(s.payment_method(other, stored.id).unwrap(), None);
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM user_payment_methods WHERE card_last4 = '0008' AND card_type = 'elcart' AND expiry_year = 2029"),
        1
    );

    let tokenized = payment(PaymentMethodInput {
        card_type: Some("visa".into()),
        card_last4: Some("4242".into()),
        provider_token: Some("pm_1N2b3C".into()),
        ..PaymentMethodInput::default()
    });
    let t = created(s.insert_payment_method(me, &tokenized, 20, at(2)).unwrap());
    assert_eq!(t.record.provider_token, tokenized.record.provider_token);
    assert!(t.record.card.as_ref().unwrap().expiry.is_none());
    let mut cash = payment(PaymentMethodInput {
        payment_type: Some("cash_on_delivery".into()),
        ..PaymentMethodInput::default()
    });
    cash.make_default = true;
    let c = created(s.insert_payment_method(me, &cash, 20, at(3)).unwrap());
    assert!(c.is_default && c.record.card.is_none());
    assert_eq!(default_count(ctx, "user_payment_methods"), 1);

    // Update: holder cleared, default moved back.
    let mut record = stored.record.clone();
    record.card.as_mut().unwrap().holder_name = None;
    let updated = found(s.update_payment_method(me, stored.id, &record, true, at(4)));
    assert!(updated.is_default);
    assert_eq!(updated.record, record);
    assert_eq!(
        s.update_payment_method(other, stored.id, &record, true, at(4))
            .unwrap(),
        None
    );
    let list = s.payment_methods(me).unwrap();
    assert_eq!(
        list.iter().map(|p| p.id).collect::<Vec<_>>(),
        [stored.id, c.id, t.id]
    );

    assert!(!s.delete_payment_method(other, stored.id).unwrap());
    assert!(s.delete_payment_method(me, stored.id).unwrap());
    assert_eq!(
        s.payment_method(me, c.id).unwrap().map(|p| p.is_default),
        Some(true)
    );
    assert_eq!(default_count(ctx, "user_payment_methods"), 1);
    assert_eq!(
        s.insert_payment_method(me, &cash, 2, at(5)).unwrap(),
        Insert::LimitReached
    );
}

fn notice(kind: NotificationKind, title: &str) -> NewNotification {
    marque_testkit::notification(kind, title, "Заказ №42 отправлен\nОжидайте курьера")
}

fn notifications_page_count_and_read(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, _) = sign_in(s, "+996555000001", None, t0());
    let (other, _) = sign_in(s, "+996555000002", None, t0());
    let mut mine = Vec::new();
    for i in 0..5 {
        let kind = NotificationKind::ALL[i % 4];
        mine.push(
            s.insert_notification(me, &notice(kind, &format!("n{i}")), at(i as i64))
                .unwrap()
                .unwrap(),
        );
    }
    let theirs =
        found(s.insert_notification(other, &notice(NotificationKind::System, "theirs"), at(9)));
    assert_eq!(
        s.insert_notification(UserId(999), &notice(NotificationKind::System, "x"), at(9))
            .unwrap(),
        None
    );
    assert_eq!(mine[0].order_id, Some(42));
    assert_eq!(
        mine[0].message.as_str(),
        "Заказ №42 отправлен\nОжидайте курьера"
    );

    let all = s.notifications(me, &NotificationQuery::default()).unwrap();
    assert_eq!((all.total, all.unread_count), (5, 5));
    let titles: Vec<&str> = all.items.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["n4", "n3", "n2", "n1", "n0"]);

    let read = found(s.mark_notification_read(me, mine[4].id, at(20)));
    assert!(read.is_read);
    assert_eq!(read.read_at, Some(at(20)));
    let again = found(s.mark_notification_read(me, mine[4].id, at(30)));
    assert_eq!(again.read_at, Some(at(20)));
    assert_eq!(
        s.mark_notification_read(me, theirs.id, at(30)).unwrap(),
        None
    );
    assert_eq!(
        s.mark_notification_read(other, mine[0].id, at(30)).unwrap(),
        None
    );

    let page = s
        .notifications(
            me,
            &NotificationQuery {
                unread_only: true,
                limit: PageLimit::new(2).unwrap(),
                offset: 1,
            },
        )
        .unwrap();
    assert_eq!((page.total, page.unread_count), (4, 4));
    let titles: Vec<&str> = page.items.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["n2", "n1"]);
    let past_the_end = NotificationQuery {
        offset: 50,
        ..NotificationQuery::default()
    };
    assert!(s.notifications(me, &past_the_end).unwrap().items.is_empty());

    assert_eq!(s.mark_all_notifications_read(me, at(40)).unwrap(), 4);
    assert_eq!(s.mark_all_notifications_read(me, at(41)).unwrap(), 0);
    let all = s.notifications(me, &NotificationQuery::default()).unwrap();
    assert_eq!((all.total, all.unread_count), (5, 0));
    assert_eq!(
        s.notifications(other, &NotificationQuery::default())
            .unwrap()
            .unread_count,
        1
    );
}

fn new_device_notice_is_sent_once(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, first) = sign_in(s, "+996555000001", Some("Phone/1.0"), t0());
    let security = || {
        ctx.sql("SELECT COUNT(*) AS v FROM user_notifications WHERE notification_type = 'security'")
    };
    let n = notice(
        NotificationKind::Security,
        "Вход в аккаунт с нового устройства",
    );
    // The first session: no earlier one had its user agent.
    assert!(
        s.notify_unknown_device(me, &first, Some("Phone/1.0"), &n, at(1))
            .unwrap()
    );
    let (_, same) = sign_in(s, "+996555000001", Some("Phone/1.0"), at(10));
    assert!(
        !s.notify_unknown_device(me, &same, Some("Phone/1.0"), &n, at(11))
            .unwrap()
    );
    assert_eq!(security(), 1);

    // Two sign-ins from one new device at the same instant: exactly one notice.
    let (_, a) = sign_in(s, "+996555000001", Some("Laptop/2.0"), at(20));
    let (_, b) = sign_in(s, "+996555000001", Some("Laptop/2.0"), at(20));
    let barrier = Arc::new(Barrier::new(2));
    let sent: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = [a, b]
            .into_iter()
            .map(|sid| {
                let (store, barrier, n) = (s.clone(), barrier.clone(), n.clone());
                scope.spawn(move || {
                    barrier.wait();
                    store
                        .notify_unknown_device(me, &sid, Some("Laptop/2.0"), &n, at(21))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sent.iter().filter(|s| **s).count(), 1, "{sent:?}");
    assert_eq!(security(), 2);

    // No user agent is a device of its own; sessions of other users do not count.
    let (_, none) = sign_in(s, "+996555000001", None, at(30));
    assert!(
        s.notify_unknown_device(me, &none, None, &n, at(31))
            .unwrap()
    );
    let (other, theirs) = sign_in(s, "+996555000002", Some("Tablet/3.0"), at(40));
    let (_, mine) = sign_in(s, "+996555000001", Some("Tablet/3.0"), at(41));
    assert!(
        s.notify_unknown_device(me, &mine, Some("Tablet/3.0"), &n, at(42))
            .unwrap()
    );
    assert!(
        s.notify_unknown_device(other, &theirs, Some("Tablet/3.0"), &n, at(42))
            .unwrap()
    );
    assert!(
        !s.notify_unknown_device(UserId(999), &theirs, None, &n, at(42))
            .unwrap()
    );
    assert_eq!(security(), 5);
}

fn account_rows_go_with_the_user(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, _) = sign_in(s, "+996555000001", None, t0());
    let (other, _) = sign_in(s, "+996555000002", None, t0());
    for user in [me, other] {
        created(
            s.insert_address(user, &new_kg("ул. Первая", false), 20, at(1))
                .unwrap(),
        );
        let cash = payment(PaymentMethodInput {
            payment_type: Some("bank_transfer".into()),
            ..PaymentMethodInput::default()
        });
        created(s.insert_payment_method(user, &cash, 20, at(1)).unwrap());
        s.insert_notification(user, &notice(NotificationKind::Promotion, "Скидки"), at(1))
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        ctx.sql(&format!("DELETE FROM users WHERE id = {}", me.0)),
        1
    );
    for table in [
        "user_addresses",
        "user_payment_methods",
        "user_notifications",
    ] {
        assert_eq!(
            ctx.sql(&format!("SELECT COUNT(*) AS v FROM {table}")),
            1,
            "{table}"
        );
        assert_eq!(
            ctx.sql(&format!(
                "SELECT COUNT(*) AS v FROM {table} WHERE user_id = {}",
                other.0
            )),
            1,
            "{table}"
        );
    }
}

/// Issue 12: text stored before the card-number and display-text rules loads cleaned (format
/// characters dropped, card numbers replaced by `…`), never as an error that would lock the user
/// out; a provider token holding a card number is dropped, one in an old format kept.
fn rows_written_before_the_text_rules_still_load(ctx: &Ctx) {
    let s = &ctx.store;
    let (me, sid) = sign_in(s, "+996555000001", None, t0());
    created(
        s.insert_address(me, &new_kg("ул. Первая", true), 20, at(1))
            .unwrap(),
    );
    let card = |token: &str| {
        payment(PaymentMethodInput {
            card_type: Some("visa".into()),
            card_last4: Some("0431".into()),
            provider_token: Some(token.into()),
            ..PaymentMethodInput::default()
        })
    };
    let with_pan = created(
        s.insert_payment_method(me, &card("pm_1"), 20, at(1))
            .unwrap(),
    );
    let old_format = created(
        s.insert_payment_method(me, &card("pm_2"), 20, at(2))
            .unwrap(),
    );
    s.insert_notification(me, &notice(NotificationKind::Security, "Вход"), at(1))
        .unwrap()
        .unwrap();
    // What the rules before issue 12 let through.
    for sql in [
        "UPDATE users SET full_name = 'Anna\u{202E}gpj 5555 5555 5555 4444'".to_owned(),
        "UPDATE user_addresses SET title = '\u{200B}', street = 'ул.\u{200B} Первая 4111 1111 1111 1111'"
            .to_owned(),
        format!(
            "UPDATE user_payment_methods SET provider_token = 'tok_4012888888881881_0431' WHERE id = {}",
            with_pan.id.0
        ),
        format!(
            "UPDATE user_payment_methods SET provider_token = 'gp_tok_123' WHERE id = {}",
            old_format.id.0
        ),
        "UPDATE user_notifications SET title = 'Вход\u{2066}', message = 'Evil\u{202E}txt.exe'"
            .to_owned(),
    ] {
        assert_eq!(ctx.sql(&sql), 1, "{sql}");
    }
    let user = s.session_user(&sid, me, at(3)).unwrap().unwrap();
    assert_eq!(user.full_name.unwrap().as_str(), "Annagpj …");
    let addresses = s.addresses(me).unwrap();
    assert_eq!(addresses[0].title, None);
    match &addresses[0].postal {
        MarketAddress::Kg(a) => assert_eq!(a.street(), "ул. Первая …"),
        other => panic!("{other:?}"),
    }
    let methods = s.payment_methods(me).unwrap();
    let token_of = |id| {
        methods
            .iter()
            .find(|m| m.id == id)
            .unwrap()
            .record
            .provider_token
            .as_ref()
            .map(|t| t.as_str().to_owned())
    };
    assert_eq!(token_of(with_pan.id), None);
    assert_eq!(token_of(old_format.id).as_deref(), Some("gp_tok_123"));
    let page = s.notifications(me, &NotificationQuery::default()).unwrap();
    assert_eq!(page.items[0].title.as_str(), "Вход");
    assert_eq!(page.items[0].message.as_str(), "Eviltxt.exe");
}

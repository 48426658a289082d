//! The admin service (issue 11) through `AdminService` on the real stores of both backends:
//! lookups, disable/enable, ending sessions, audit and outbox pages, and the audit rows every
//! call leaves.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use marque_domain::{
    AdminCaller, AdminError, AuditQuery, AuditRepository, AuthConfig, AuthError, ClientInfo,
    OutboxQuery, OutboxStatus, UserId,
};
use marque_markets::Market;
use marque_testkit::{ADMIN_KEY, Backend, Services, client_info, phone};

const KG: &str = "+996505325311";
const US: &str = "+12025550123";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn client() -> ClientInfo {
    client_info("192.0.2.44", "ops-console/1.0")
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Backend::Postgres) } )*
        }
    };
}

both!(
    only_the_admin_key_authenticates,
    a_phone_lookup_finds_the_user_in_the_numbers_market_with_sessions,
    disabling_ends_sessions_and_refuses_sign_in_until_enabled,
    ending_sessions_keeps_the_account_enabled,
    unknown_users_are_not_found_and_still_audited,
    audit_pages_filter_by_user_and_time_newest_first,
    outbox_pages_have_no_payload_and_filter_by_status,
    an_email_lookup_finds_nobody_yet_and_is_audited_in_every_market,
    a_market_down_is_unavailable
);

fn services(backend: Backend) -> Option<Services> {
    Services::new(backend, AuthConfig::default(), start())
}

fn admin(f: &Services) -> AdminCaller {
    f.admin.authenticate(Some(ADMIN_KEY), client()).unwrap()
}

/// The newest audit row of `market`.
fn last_audit(f: &Services, market: Market) -> marque_domain::StoredAudit {
    f.store(market).repo().recent_audit(1).unwrap().remove(0)
}

fn only_the_admin_key_authenticates(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let who = admin(&f);
    assert_eq!(who.fingerprint().len(), 12);
    assert!(!who.fingerprint().contains("testkit"));
    for wrong in [
        None,
        Some(""),
        Some("testkit-admin-key"),
        Some(&ADMIN_KEY[1..]),
    ] {
        assert!(
            matches!(
                f.admin.authenticate(wrong, client()),
                Err(AdminError::Unauthorized)
            ),
            "{wrong:?}"
        );
    }
    // A user's access token is not an admin key.
    let (login, _) = f.sign_in(KG, None);
    assert!(matches!(
        f.admin.authenticate(Some(&login.access_token), client()),
        Err(AdminError::Unauthorized)
    ));
}

fn a_phone_lookup_finds_the_user_in_the_numbers_market_with_sessions(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let (_, kg_user) = f.sign_in(KG, Some("phone-a"));
    f.clock.advance(Duration::minutes(2));
    f.sign_in(KG, Some("phone-b"));
    let (_, us_user) = f.sign_in(US, None);
    let who = admin(&f);

    let found = f.admin.find_by_phone(&who, &phone(KG)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].market, Market::Kg);
    assert_eq!(found[0].user.user.id, kg_user.user.id);
    assert!(found[0].user.is_active);
    let agents: Vec<_> = found[0]
        .sessions
        .iter()
        .map(|s| s.user_agent.as_deref().unwrap())
        .collect();
    assert_eq!(agents.len(), 2);
    assert!(agents.contains(&"phone-a") && agents.contains(&"phone-b"));

    let found = f.admin.find_by_phone(&who, &phone(US)).unwrap();
    assert_eq!(found[0].market, Market::Us);
    assert_eq!(found[0].user.user.id, us_user.user.id);
    // A number without an account: nothing.
    assert!(
        f.admin
            .find_by_phone(&who, &phone("+996555123456"))
            .unwrap()
            .is_empty()
    );
    // Each lookup is in its market's audit log, with the key's fingerprint and the client.
    let row = last_audit(&f, Market::Kg);
    assert_eq!(row.event, "admin_action");
    assert_eq!(
        row.detail.as_deref(),
        Some(
            format!(
                "admin={} action=find_user target=phone:+996555123456",
                who.fingerprint()
            )
            .as_str()
        )
    );
    assert_eq!(row.client_ip.as_deref(), Some("192.0.2.44"));
    assert_eq!(row.user_agent.as_deref(), Some("ops-console/1.0"));
    assert!(!row.detail.unwrap().contains(ADMIN_KEY));
    assert!(
        last_audit(&f, Market::Us)
            .detail
            .unwrap()
            .contains("target=phone:+12025550123")
    );
}

fn disabling_ends_sessions_and_refuses_sign_in_until_enabled(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let (login, user) = f.sign_in(KG, None);
    f.clock.advance(Duration::minutes(2));
    f.sign_in(KG, Some("second device"));
    let who = admin(&f);
    let id = user.user.id;

    let change = f.admin.disable(&who, Market::Kg, id).unwrap();
    assert!(!change.is_active);
    assert_eq!(change.sessions_ended, 2);
    assert!(matches!(
        f.auth.authenticate(&login.access_token),
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        f.auth.refresh(&login.refresh_token, &client()),
        Err(AuthError::InvalidRefreshToken)
    ));
    let found = f.admin.find_by_phone(&who, &phone(KG)).unwrap();
    assert!(!found[0].user.is_active);
    assert!(found[0].sessions.is_empty());
    // A right code is refused while disabled.
    let p = phone(KG);
    f.clock.advance(Duration::minutes(2));
    f.auth.send_code(&p, &client()).unwrap();
    let code = f.delivered_code(&p);
    assert!(matches!(
        f.auth.verify_code(&p, &code, &client()),
        Err(AuthError::AccountDisabled)
    ));
    let row = f.kg.repo().recent_audit(10).unwrap();
    assert!(row.iter().any(|r| {
        r.event == "admin_action"
            && r.user == Some(id)
            && r.detail
                .as_deref()
                .unwrap()
                .contains("action=disable_user target=user:")
    }));

    let change = f.admin.enable(&who, Market::Kg, id).unwrap();
    assert!(change.is_active);
    assert_eq!(change.sessions_ended, 0);
    // Past the number's send window (3 codes per 15 minutes).
    f.clock.advance(Duration::minutes(16));
    f.auth.send_code(&p, &client()).unwrap();
    let code = f.delivered_code(&p);
    let again = f.auth.verify_code(&p, &code, &client()).unwrap();
    assert_eq!(again.user.id, id);
    assert!(!again.is_new_user);
    assert!(
        last_audit(&f, Market::Kg).event == "sign_in"
            && f.kg.repo().recent_audit(3).unwrap().iter().any(|r| r
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("enable_user"))
    );
}

fn ending_sessions_keeps_the_account_enabled(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let (login, user) = f.sign_in(US, None);
    let who = admin(&f);
    assert_eq!(
        f.admin
            .end_sessions(&who, Market::Us, user.user.id)
            .unwrap(),
        1
    );
    assert!(f.auth.authenticate(&login.access_token).is_err());
    // Nothing left to end; the account still signs in.
    assert_eq!(
        f.admin
            .end_sessions(&who, Market::Us, user.user.id)
            .unwrap(),
        0
    );
    f.clock.advance(Duration::minutes(2));
    let (_, again) = f.sign_in(US, None);
    assert_eq!(again.user.id, user.user.id);
    let rows = f.us.repo().recent_audit(10).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("action=end_sessions"))
            .count(),
        2
    );
}

fn unknown_users_are_not_found_and_still_audited(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let who = admin(&f);
    let ghost = UserId(4242);
    assert!(matches!(
        f.admin.disable(&who, Market::Kg, ghost),
        Err(AdminError::NotFound)
    ));
    assert!(matches!(
        f.admin.enable(&who, Market::Kg, ghost),
        Err(AdminError::NotFound)
    ));
    assert!(matches!(
        f.admin.end_sessions(&who, Market::Us, ghost),
        Err(AdminError::NotFound)
    ));
    let kg = f.kg.repo().recent_audit(10).unwrap();
    assert_eq!(kg.len(), 2);
    assert!(kg.iter().all(|r| r.user == Some(ghost)));
    assert_eq!(f.us.repo().recent_audit(10).unwrap().len(), 1);
    assert_eq!(f.kg.user_count(), 0);
}

fn audit_pages_filter_by_user_and_time_newest_first(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let (_, a) = f.sign_in(KG, None);
    f.clock.advance(Duration::hours(1));
    let (_, b) = f.sign_in("+996555123456", None);
    let who = admin(&f);
    let all = AuditQuery {
        user: None,
        since: None,
        limit: 100,
    };
    let rows = f.admin.audit_log(&who, Market::Kg, all).unwrap();
    // The read itself is the newest row, then b's and a's sign-ins.
    assert_eq!(
        rows.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
        ["admin_action", "sign_in", "sign_in"]
    );
    assert_eq!(rows[1].user, Some(b.user.id));
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id));

    let of_a = AuditQuery {
        user: Some(a.user.id),
        ..all
    };
    let rows = f.admin.audit_log(&who, Market::Kg, of_a).unwrap();
    // The read about a is recorded with a's id, so it is a row about a too.
    assert_eq!(
        rows.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
        ["admin_action", "sign_in"]
    );
    assert!(rows.iter().all(|r| r.user == Some(a.user.id)));

    let recent = AuditQuery {
        since: Some(start() + Duration::minutes(30)),
        ..all
    };
    let rows = f.admin.audit_log(&who, Market::Kg, recent).unwrap();
    assert!(rows.iter().all(|r| r.at >= start() + Duration::minutes(30)));
    assert!(
        !rows
            .iter()
            .any(|r| r.user == Some(a.user.id) && r.event == "sign_in")
    );

    let one = AuditQuery { limit: 1, ..all };
    assert_eq!(f.admin.audit_log(&who, Market::Kg, one).unwrap().len(), 1);
    // A limit of 0 is clamped to 1, not "everything".
    let zero = AuditQuery { limit: 0, ..all };
    assert_eq!(f.admin.audit_log(&who, Market::Kg, zero).unwrap().len(), 1);
    // The US log has only its own reads.
    let us = f.admin.audit_log(&who, Market::Us, all).unwrap();
    assert_eq!(us.len(), 1);
}

fn outbox_pages_have_no_payload_and_filter_by_status(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let p = phone(KG);
    f.auth.send_code(&p, &client()).unwrap();
    f.clock.advance(Duration::minutes(2));
    f.auth.send_code(&p, &client()).unwrap();
    f.kg.sql("UPDATE outbox SET status = 'sent' WHERE id = (SELECT MIN(id) FROM outbox)");
    let who = admin(&f);
    let all = OutboxQuery {
        status: None,
        limit: 100,
    };
    let rows = f.admin.outbox(&who, Market::Kg, all).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].id > rows[1].id);
    assert_eq!(rows[0].status, "pending");
    assert_eq!(rows[1].status, "sent");
    assert_eq!(rows[0].recipient, KG);
    // Nothing of the code: the summary has no payload, and its text fields hold no digits run.
    let code = f.delivered_code(&p);
    assert!(!format!("{rows:?}").contains(code.as_str()));
    let pending = OutboxQuery {
        status: Some(OutboxStatus::Pending),
        ..all
    };
    let rows = f.admin.outbox(&who, Market::Kg, pending).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "pending");
    let failed = OutboxQuery {
        status: Some(OutboxStatus::Failed),
        ..all
    };
    assert!(f.admin.outbox(&who, Market::Kg, failed).unwrap().is_empty());
    assert!(
        last_audit(&f, Market::Kg)
            .detail
            .unwrap()
            .ends_with("action=read_outbox target=outbox:failed")
    );
}

fn an_email_lookup_finds_nobody_yet_and_is_audited_in_every_market(backend: Backend) {
    let Some(f) = services(backend) else { return };
    f.sign_in(KG, None);
    let who = admin(&f);
    assert!(
        f.admin
            .find_by_email(&who, "anna@example.com")
            .unwrap()
            .is_empty()
    );
    for market in Market::ALL {
        assert!(
            last_audit(&f, market)
                .detail
                .unwrap()
                .ends_with("action=find_user target=email:anna@example.com")
        );
    }
}

fn a_market_down_is_unavailable(backend: Backend) {
    let Some(f) = services(backend) else { return };
    let who = admin(&f);
    f.kg.set_down(true);
    assert!(matches!(
        f.admin.find_by_phone(&who, &phone(KG)),
        Err(AdminError::Unavailable(_))
    ));
    assert!(matches!(
        f.admin.disable(&who, Market::Kg, UserId(1)),
        Err(AdminError::Unavailable(_))
    ));
    // The other market still answers.
    assert!(f.admin.find_by_phone(&who, &phone(US)).unwrap().is_empty());
}

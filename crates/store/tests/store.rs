#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Repository behaviour on both backends.
//!
//! Every scenario runs on SQLite, and on PostgreSQL when `MARQUE_TEST_POSTGRES_URL` names an
//! admin URL (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Each test gets its own
//! throwaway database. Time is fixed (no clock, no sleeps); code hashes are fake bytes compared by
//! a plain closure.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use marque_domain::{
    AuthRepository, Channel, FullName, ImageUrl, IssueChallenge, IssueOutcome, NewOutboxMessage,
    NewSession, OutboxRepository, ProfileUpdate, RateLimitCheck, RateLimitPolicy, RepoError,
    RetryAfter, SentReceipt, SessionId, User, UserId, VerifyChallenge, VerifyOutcome,
};
use marque_domain::{DeleteAccount, NewRefreshToken, RevokeScope, RotateOutcome, RotateRefresh};
use marque_markets::{Market, PhoneNumber};
use marque_store::{Backend, MarketStore};

use marque_testkit::{
    TestDatabase, TestStore as Ctx, code_check, on_both_backends, postgres_admin_url,
};

const KG_PHONE: &str = "+996505325311";
const KG_PHONE_2: &str = "+996555123456";
const US_PHONE: &str = "+12025550123";

on_both_backends!(
    login_creates_the_user_then_finds_it,
    codes_are_single_use,
    three_wrong_codes_kill_the_code,
    expired_codes_are_refused,
    new_code_supersedes_old_and_limit_writes_nothing,
    refusing_bucket_leaves_other_buckets_untouched,
    sessions_respect_revocation_expiry_and_owner,
    profile_fields_are_set_and_cleared,
    outbox_claim_lease_and_delivery,
    outbox_retry_give_up_and_expiry,
    concurrent_claims_share_the_outbox_without_overlap,
    markets_are_separate_databases,
    concurrent_issues_admit_exactly_the_limit,
    concurrent_issues_share_the_sms_guards,
    a_batch_decides_each_code_as_if_alone,
    a_batch_of_refusals_writes_nothing,
    sent_messages_are_marked_together,
    concurrent_counter_reads_each_get_their_own_keys,
    returning_sign_in_tells_known_devices_and_refuses_disabled_accounts,
    concurrent_verifications_accept_once_and_count_every_miss,
    migrations_are_idempotent,
    refresh_rotates_replays_in_grace_and_revokes_on_reuse,
    refresh_replay_from_another_client_is_reuse,
    refresh_extends_the_session_up_to_its_max_lifetime,
    refresh_of_an_ended_session_is_invalid,
    sessions_are_listed_and_revoked_by_scope,
    account_deletion_removes_every_row_and_keeps_an_audit_record,
    account_deletion_needs_the_right_code,
);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

fn phone(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164, None).unwrap()
}

const PHONE_POLICY: RateLimitPolicy = RateLimitPolicy {
    max_hits: 3,
    window: Duration::minutes(15),
    cooldown: Duration::seconds(60),
};

fn limit(bucket: &str, policy: RateLimitPolicy) -> RateLimitCheck {
    RateLimitCheck {
        bucket: bucket.to_owned(),
        policy,
        elsewhere: Default::default(),
    }
}

fn phone_limit(e164: &str) -> Vec<RateLimitCheck> {
    vec![limit(&format!("send:phone:{e164}"), PHONE_POLICY)]
}

fn issue_cmd(
    e164: &str,
    hash: &[u8],
    now: DateTime<Utc>,
    limits: Vec<RateLimitCheck>,
) -> IssueChallenge {
    IssueChallenge {
        phone: phone(e164),
        code_hash: hash.to_vec(),
        purpose: marque_domain::OtpPurpose::Login,
        challenge_id: uuid::Uuid::new_v4().to_string(),
        channel: Channel::Sms,
        check_lock: true,
        now,
        expires_at: now + Duration::minutes(10),
        client_ip: Some("203.0.113.7".to_owned()),
        limits,
        outbox: Some(NewOutboxMessage {
            channel: Channel::Sms,
            fallback: vec![],
            recipient: e164.to_owned(),
            sealed_body: format!("sealed:{}", String::from_utf8_lossy(hash)).into_bytes(),
            expires_at: now + Duration::minutes(10),
        }),
        sms: None,
    }
}

/// Issues a deletion code (purpose `delete_account`) with the phone's default limit.
fn issue_deletion(
    store: &MarketStore,
    e164: &str,
    hash: &[u8],
    now: DateTime<Utc>,
) -> IssueOutcome {
    let cmd = IssueChallenge {
        purpose: marque_domain::OtpPurpose::DeleteAccount,
        ..issue_cmd(e164, hash, now, phone_limit(e164))
    };
    store.issue_challenge(cmd).unwrap()
}

/// Issues a code with the phone's default limit.
/// [`issue`] for [`KG_PHONE`], `secs` after [`t0`].
fn issue_kg(store: &MarketStore, hash: &[u8], secs: i64) -> IssueOutcome {
    issue(store, KG_PHONE, hash, at(secs))
}

/// [`verify`] for [`KG_PHONE`], `secs` after [`t0`].
fn verify_kg(store: &MarketStore, presented: &[u8], secs: i64) -> VerifyOutcome {
    verify(store, KG_PHONE, presented, at(secs))
}

/// The number of verification rows in `status`.
fn codes_in(ctx: &Ctx, status: &str) -> i64 {
    ctx.sql(&format!(
        "SELECT COUNT(*) AS v FROM phone_verifications WHERE status = '{status}'"
    ))
}

fn issue(store: &MarketStore, e164: &str, hash: &[u8], now: DateTime<Utc>) -> IssueOutcome {
    store
        .issue_challenge(issue_cmd(e164, hash, now, phone_limit(e164)))
        .unwrap()
}

fn new_session(now: DateTime<Utc>) -> NewSession {
    NewSession {
        id: SessionId(uuid::Uuid::new_v4().to_string()),
        created_at: now,
        expires_at: now + Duration::days(30),
        user_agent: Some("tests/1.0".to_owned()),
        client_ip: Some("203.0.113.7".to_owned()),
    }
}

fn verify_with(
    store: &MarketStore,
    e164: &str,
    presented: &[u8],
    now: DateTime<Utc>,
    max_attempts: u32,
    session: NewSession,
) -> VerifyOutcome {
    let phone = phone(e164);
    let matches = |stored: &[u8]| stored == presented;
    store
        .verify_challenge(VerifyChallenge {
            check: code_check(&phone, now, max_attempts, &matches),
            refresh: refresh_for(&session.id, session.expires_at),
            attach_to: None,
            session,
        })
        .unwrap()
}

/// A refresh token whose hash is derived from the session id (unique per session).
fn refresh_for(sid: &SessionId, expires_at: DateTime<Utc>) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: format!("rt:{}", sid.0).into_bytes(),
        expires_at,
    }
}

fn verify(store: &MarketStore, e164: &str, presented: &[u8], now: DateTime<Utc>) -> VerifyOutcome {
    verify_with(store, e164, presented, now, 3, new_session(now))
}

/// Issues and verifies a code; returns the user and the session id.
fn login(store: &MarketStore, e164: &str, now: DateTime<Utc>) -> (User, bool, SessionId) {
    assert_eq!(issue(store, e164, b"right", now), IssueOutcome::Issued);
    let session = new_session(now + Duration::seconds(5));
    let sid = session.id.clone();
    match verify_with(
        store,
        e164,
        b"right",
        now + Duration::seconds(5),
        3,
        session,
    ) {
        VerifyOutcome::Verified {
            user, is_new_user, ..
        } => (user, is_new_user, sid),
        other => panic!("expected Verified, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn login_creates_the_user_then_finds_it(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, is_new, _) = login(store, KG_PHONE, t0());
    assert!(is_new);
    assert_eq!(user.phone.as_ref().unwrap().e164(), KG_PHONE);
    assert_eq!(user.market(), Market::Kg);
    assert!(user.is_verified);
    assert_eq!(user.full_name, None);
    assert_eq!(user.last_login, Some(at(5)));
    assert_eq!((user.created_at, user.updated_at), (at(5), at(5)));

    // A second login (after the cooldown) finds the same user.
    let (again, is_new, _) = login(store, KG_PHONE, at(120));
    assert!(!is_new);
    assert_eq!(again.id, user.id);
    assert_eq!(again.created_at, at(5));
    assert_eq!(again.last_login, Some(at(125)));
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM sessions"), 2);

    // Another number is another user.
    let (other, is_new, _) = login(store, KG_PHONE_2, at(300));
    assert!(is_new);
    assert_ne!(other.id, user.id);
}

fn codes_are_single_use(ctx: &Ctx) {
    let store = &ctx.store;
    login(store, KG_PHONE, t0());
    assert_eq!(verify_kg(store, b"right", 10), VerifyOutcome::NoActiveCode);
    assert_eq!(codes_in(ctx, "consumed"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM sessions"), 1);
    // A number that never got a code.
    assert_eq!(
        verify(store, KG_PHONE_2, b"right", at(10)),
        VerifyOutcome::NoActiveCode
    );
}

fn three_wrong_codes_kill_the_code(ctx: &Ctx) {
    let store = &ctx.store;
    assert_eq!(issue(store, KG_PHONE, b"right", t0()), IssueOutcome::Issued);
    for left in [2, 1, 0] {
        assert_eq!(
            verify_kg(store, b"wrong", 10),
            VerifyOutcome::WrongCode {
                attempts_left: left
            }
        );
    }
    assert_eq!(
        verify_kg(store, b"right", 11),
        VerifyOutcome::AttemptsExceeded
    );
    assert_eq!(
        verify_kg(store, b"wrong", 12),
        VerifyOutcome::AttemptsExceeded
    );
    assert_eq!(
        ctx.sql("SELECT CAST(attempts AS BIGINT) AS v FROM phone_verifications"),
        3
    );
    assert_eq!(codes_in(ctx, "dead"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 0);
}

fn expired_codes_are_refused(ctx: &Ctx) {
    let store = &ctx.store;
    assert_eq!(issue(store, KG_PHONE, b"right", t0()), IssueOutcome::Issued);
    // Expiry is exclusive: at exactly `expires_at` the code is dead.
    assert_eq!(verify_kg(store, b"right", 600), VerifyOutcome::Expired);
    assert_eq!(codes_in(ctx, "expired"), 1);
    assert_eq!(verify_kg(store, b"right", 601), VerifyOutcome::Expired);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 0);

    // One second before expiry it would have worked.
    assert_eq!(issue_kg(store, b"fresh", 700), IssueOutcome::Issued);
    assert!(matches!(
        verify_kg(store, b"fresh", 1299),
        VerifyOutcome::Verified { .. }
    ));
}

fn new_code_supersedes_old_and_limit_writes_nothing(ctx: &Ctx) {
    let store = &ctx.store;
    assert_eq!(issue(store, KG_PHONE, b"first", t0()), IssueOutcome::Issued);
    // Inside the 60 s cooldown.
    assert_eq!(
        issue_kg(store, b"early", 30),
        IssueOutcome::RateLimited(RetryAfter(30))
    );
    assert_eq!(issue_kg(store, b"second", 60), IssueOutcome::Issued);
    // The first code no longer works: the newest challenge is "second".
    assert_eq!(
        verify_kg(store, b"first", 61),
        VerifyOutcome::WrongCode { attempts_left: 2 }
    );
    assert_eq!(issue_kg(store, b"third", 120), IssueOutcome::Issued);
    assert_eq!(codes_in(ctx, "superseded"), 2);
    // Fourth code inside the 15-minute window that opened at t0: wait until t0 + 15 min.
    assert_eq!(
        issue_kg(store, b"fourth", 180),
        IssueOutcome::RateLimited(RetryAfter(12 * 60))
    );
    // Nothing was written by the refusals.
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM phone_verifications"), 3);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM outbox"), 3);
    assert_eq!(
        ctx.sql("SELECT CAST(hits AS BIGINT) AS v FROM rate_limits"),
        3
    );
    assert!(matches!(
        verify_kg(store, b"third", 181),
        VerifyOutcome::Verified {
            is_new_user: true,
            ..
        }
    ));
    // The window has passed: a new one opens.
    assert_eq!(issue_kg(store, b"fifth", 900), IssueOutcome::Issued);
    assert_eq!(
        ctx.sql("SELECT CAST(hits AS BIGINT) AS v FROM rate_limits"),
        1
    );
}

fn refusing_bucket_leaves_other_buckets_untouched(ctx: &Ctx) {
    let store = &ctx.store;
    let ip = RateLimitPolicy {
        max_hits: 2,
        window: Duration::minutes(15),
        cooldown: Duration::zero(),
    };
    let strict = RateLimitPolicy { max_hits: 1, ..ip };
    let both = || {
        vec![
            limit("send:ip:203.0.113.7", ip),
            limit("send:phone:strict", strict),
        ]
    };
    let hits = |bucket: &str| {
        ctx.sql(&format!(
            "SELECT CAST(hits AS BIGINT) AS v FROM rate_limits WHERE bucket = '{bucket}'"
        ))
    };

    let cmd = issue_cmd(KG_PHONE, b"a", t0(), both());
    assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
    let cmd = issue_cmd(KG_PHONE, b"b", at(1), both());
    assert_eq!(
        store.issue_challenge(cmd).unwrap(),
        IssueOutcome::RateLimited(RetryAfter(899))
    );
    assert_eq!(hits("send:ip:203.0.113.7"), 1);
    assert_eq!(hits("send:phone:strict"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM rate_limits"), 2);

    // The IP bucket still has its second hit.
    let only_ip = || vec![limit("send:ip:203.0.113.7", ip)];
    let cmd = issue_cmd(KG_PHONE_2, b"c", at(2), only_ip());
    assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
    let cmd = issue_cmd(KG_PHONE_2, b"d", at(3), only_ip());
    assert!(matches!(
        store.issue_challenge(cmd).unwrap(),
        IssueOutcome::RateLimited(_)
    ));

    // A refused first hit of a new bucket leaves no row behind.
    let fresh_then_full = vec![
        limit("send:ip:198.51.100.1", ip),
        limit("send:phone:strict", strict),
    ];
    let cmd = issue_cmd(KG_PHONE, b"e", at(4), fresh_then_full);
    assert!(matches!(
        store.issue_challenge(cmd).unwrap(),
        IssueOutcome::RateLimited(_)
    ));
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM rate_limits"), 2);

    // No limits at all (test numbers): always issued.
    for i in 0..5 {
        let cmd = issue_cmd(KG_PHONE_2, b"f", at(10 + i), vec![]);
        assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
    }
}

fn sessions_respect_revocation_expiry_and_owner(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, _, sid) = login(store, KG_PHONE, t0());
    let expires = at(5) + Duration::days(30);
    let now = at(3600);

    assert_eq!(
        store.active_session(&sid, user.id, now).unwrap(),
        Some(expires)
    );
    assert_eq!(
        store.session_user(&sid, user.id, now).unwrap(),
        Some(user.clone())
    );

    // Someone else's id, an unknown session, or past expiry (exclusive).
    let stranger = UserId(user.id.0 + 1000);
    assert_eq!(store.active_session(&sid, stranger, now).unwrap(), None);
    assert_eq!(store.session_user(&sid, stranger, now).unwrap(), None);
    let unknown = SessionId(uuid::Uuid::new_v4().to_string());
    assert_eq!(store.active_session(&unknown, user.id, now).unwrap(), None);
    assert_eq!(store.session_user(&unknown, user.id, now).unwrap(), None);
    assert_eq!(store.active_session(&sid, user.id, expires).unwrap(), None);
    assert_eq!(store.session_user(&sid, user.id, expires).unwrap(), None);
    let just_before = expires - Duration::seconds(1);
    assert_eq!(
        store.active_session(&sid, user.id, just_before).unwrap(),
        Some(expires)
    );

    // A second session of the same user is independent.
    let (_, _, sid2) = login(store, KG_PHONE, at(120));
    assert!(store.revoke_session(&sid, now).unwrap());
    assert!(!store.revoke_session(&sid, now).unwrap());
    assert!(!store.revoke_session(&unknown, now).unwrap());
    assert_eq!(store.active_session(&sid, user.id, now).unwrap(), None);
    assert_eq!(store.session_user(&sid, user.id, now).unwrap(), None);
    assert!(store.active_session(&sid2, user.id, now).unwrap().is_some());
    assert!(store.session_user(&sid2, user.id, now).unwrap().is_some());
}

fn profile_fields_are_set_and_cleared(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, _, sid) = login(store, KG_PHONE, t0());
    let name = FullName::parse("Анна Ахматова").unwrap();
    let image = ImageUrl::parse("https://cdn.example.com/u/1.jpg").unwrap();

    let set = ProfileUpdate {
        full_name: Some(Some(name.clone())),
        profile_image_url: Some(Some(image.clone())),
    };
    let updated = store
        .update_profile(user.id, &set, at(60))
        .unwrap()
        .unwrap();
    assert_eq!(updated.full_name, Some(name.clone()));
    assert_eq!(updated.profile_image_url, Some(image.clone()));
    assert_eq!(updated.updated_at, at(60));
    assert_eq!(updated.created_at, user.created_at);
    assert_eq!(updated.last_login, user.last_login);
    assert_eq!(
        store.session_user(&sid, user.id, at(61)).unwrap(),
        Some(updated.clone())
    );

    // Clear the name, leave the image alone.
    let clear = ProfileUpdate {
        full_name: Some(None),
        profile_image_url: None,
    };
    let cleared = store
        .update_profile(user.id, &clear, at(120))
        .unwrap()
        .unwrap();
    assert_eq!(cleared.full_name, None);
    assert_eq!(cleared.profile_image_url, Some(image));
    assert_eq!(cleared.updated_at, at(120));

    // Nothing to change still touches updated_at; unknown users are None.
    let nothing = ProfileUpdate::default();
    let touched = store
        .update_profile(user.id, &nothing, at(180))
        .unwrap()
        .unwrap();
    assert_eq!((touched.full_name, touched.updated_at), (None, at(180)));
    assert_eq!(
        store
            .update_profile(UserId(user.id.0 + 1000), &set, at(180))
            .unwrap(),
        None
    );
}

fn outbox_claim_lease_and_delivery(ctx: &Ctx) {
    let store = &ctx.store;
    assert_eq!(issue(store, KG_PHONE, b"right", t0()), IssueOutcome::Issued);

    let claimed = store.claim_due(t0(), at(30), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    let m = &claimed[0];
    assert_eq!(m.channel, Channel::Sms);
    assert_eq!(m.recipient, KG_PHONE);
    assert_eq!(m.sealed_body, b"sealed:right");
    assert_eq!(m.attempts, 0);
    assert_eq!(m.expires_at, at(600));

    // Leased: another worker gets nothing until the lease ends...
    assert!(store.claim_due(at(10), at(40), 10).unwrap().is_empty());
    assert!(store.claim_due(at(30), at(60), 10).unwrap().is_empty());
    // ...then it is picked up again (the first worker crashed).
    let again = store.claim_due(at(31), at(61), 10).unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m.id]);

    store.mark_sent(at(32), &[(m.id, RECEIPT)]).unwrap();
    let sql = |what: &str| format!("SELECT {what} AS v FROM outbox WHERE id = {}", m.id);
    let holds = |cond: &str| {
        ctx.sql(&format!(
            "SELECT COUNT(*) AS v FROM outbox WHERE id = {} AND {cond}",
            m.id
        )) == 1
    };
    assert_eq!(ctx.sql(&sql("CAST(length(payload) AS BIGINT)")), 0);
    assert!(holds("status = 'sent'"));
    assert!(holds("locked_until IS NULL"));
    assert!(holds("sent_at IS NOT NULL"));
    assert!(store.claim_due(at(1000), at(1030), 10).unwrap().is_empty());

    // Limits and order: oldest first, at most `limit`.
    for (i, p) in [KG_PHONE_2, "+996700123456", "+996770123456"]
        .iter()
        .enumerate()
    {
        let cmd = issue_cmd(p, b"x", at(100 + i as i64), vec![]);
        assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
    }
    assert!(store.claim_due(at(100), at(130), 0).unwrap().is_empty());
    let first_two = store.claim_due(at(200), at(230), 2).unwrap();
    assert_eq!(first_two.len(), 2);
    assert!(first_two[0].id < first_two[1].id);
    assert_eq!(first_two[0].recipient, KG_PHONE_2);
    let rest = store.claim_due(at(200), at(230), 10).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].recipient, "+996770123456");
}

fn outbox_retry_give_up_and_expiry(ctx: &Ctx) {
    let store = &ctx.store;
    for (i, p) in [KG_PHONE, KG_PHONE_2, "+996700123456"].iter().enumerate() {
        let cmd = issue_cmd(p, b"x", at(i as i64), vec![]);
        assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
    }
    let claimed = store.claim_due(at(10), at(40), 10).unwrap();
    let [retry, give_up, expire] = [claimed[0].id, claimed[1].id, claimed[2].id];
    let sql = |what: &str, id: i64| format!("SELECT {what} AS v FROM outbox WHERE id = {id}");
    let holds = |cond: &str, id: i64| {
        ctx.sql(&format!(
            "SELECT COUNT(*) AS v FROM outbox WHERE id = {id} AND {cond}"
        )) == 1
    };

    // Permanent failure: given up, body scrubbed.
    store
        .mark_failed(give_up, at(12), None, "invalid number")
        .unwrap();
    assert!(holds("status = 'failed'", give_up));
    assert_eq!(ctx.sql(&sql("CAST(length(payload) AS BIGINT)", give_up)), 0);
    assert!(holds("attempts = 1", give_up));

    // Expired before delivery.
    store.mark_expired(expire, at(13)).unwrap();
    assert!(holds("status = 'expired'", expire));
    assert_eq!(ctx.sql(&sql("CAST(length(payload) AS BIGINT)", expire)), 0);

    // Transient failure: due again at `retry_at`, one attempt more.
    store
        .mark_failed(retry, at(11), Some(at(70)), &"e".repeat(600))
        .unwrap();
    assert_eq!(
        ctx.sql(&sql("CAST(length(last_error) AS BIGINT)", retry)),
        500
    );
    assert!(store.claim_due(at(69), at(99), 10).unwrap().is_empty());
    let due = store.claim_due(at(70), at(100), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].attempts), (retry, 1));
    assert_eq!(due[0].sealed_body, b"sealed:x");

    store.mark_sent(at(71), &[(retry, RECEIPT)]).unwrap();
    assert!(holds("status = 'sent' AND attempts = 1", retry));
    assert!(store.claim_due(at(5000), at(5030), 10).unwrap().is_empty());
    // Unknown ids are not errors.
    store.mark_sent(at(14), &[(987_654, RECEIPT)]).unwrap();
}

fn markets_are_separate_databases(ctx: &Ctx) {
    let kg = &ctx.store;
    let us_ctx = Ctx::new(ctx.backend, Market::Us).unwrap();
    let us = &us_ctx.store;
    assert_eq!(AuthRepository::market(us), Market::Us);
    assert_eq!(OutboxRepository::market(kg), Market::Kg);

    let (kg_user, _, kg_sid) = login(kg, KG_PHONE, t0());
    assert_eq!(us_ctx.sql("SELECT COUNT(*) AS v FROM users"), 0);
    assert_eq!(us_ctx.sql("SELECT COUNT(*) AS v FROM outbox"), 0);
    assert_eq!(us.session_user(&kg_sid, kg_user.id, at(60)).unwrap(), None);
    assert_eq!(
        verify(us, KG_PHONE, b"right", at(60)),
        VerifyOutcome::NoActiveCode
    );

    let (us_user, is_new, us_sid) = login(us, US_PHONE, t0());
    assert!(is_new);
    assert_eq!(us_user.market(), Market::Us);
    assert_eq!(us_user.phone.as_ref().unwrap().e164(), US_PHONE);
    assert_eq!(kg.session_user(&us_sid, us_user.id, at(60)).unwrap(), None);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 1);
    assert_eq!(
        us.session_user(&us_sid, us_user.id, at(60)).unwrap(),
        Some(us_user)
    );
}

/// Four workers claim at once (one statement each; on PostgreSQL `FOR UPDATE SKIP LOCKED`):
/// every due message is claimed exactly once, none twice.
fn concurrent_claims_share_the_outbox_without_overlap(ctx: &Ctx) {
    for i in 0..40 {
        let phone = format!("+99670012{i:04}");
        let cmd = issue_cmd(&phone, b"x", t0(), vec![]);
        assert_eq!(
            ctx.store.issue_challenge(cmd).unwrap(),
            IssueOutcome::Issued
        );
    }
    let barrier = Arc::new(Barrier::new(4));
    let mut ids: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (barrier, store) = (barrier.clone(), ctx.store.clone());
                s.spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_due(at(1), at(31), 3).unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.iter().map(|m| m.id));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    ids.sort_unstable();
    let claimed = ids.len();
    ids.dedup();
    assert_eq!((claimed, ids.len()), (40, 40), "each message claimed once");
}

fn concurrent_issues_admit_exactly_the_limit(ctx: &Ctx) {
    let policy = RateLimitPolicy {
        max_hits: 3,
        window: Duration::minutes(15),
        cooldown: Duration::zero(),
    };
    let barrier = Arc::new(Barrier::new(8));
    let outcomes: Vec<IssueOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let barrier = barrier.clone();
                let store = ctx.store.clone();
                s.spawn(move || {
                    let limits = vec![
                        limit(
                            "send:ip:203.0.113.7",
                            RateLimitPolicy {
                                max_hits: 100,
                                ..policy
                            },
                        ),
                        limit(&format!("send:phone:{KG_PHONE}"), policy),
                    ];
                    let cmd = issue_cmd(KG_PHONE, &[b'c', i], t0(), limits);
                    barrier.wait();
                    store.issue_challenge(cmd).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let issued = outcomes
        .iter()
        .filter(|o| **o == IssueOutcome::Issued)
        .count();
    assert_eq!(issued, 3, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        IssueOutcome::Issued | IssueOutcome::RateLimited(RetryAfter(900))
    )));
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM phone_verifications"), 3);
    assert_eq!(codes_in(ctx, "active"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM outbox"), 3);
    assert_eq!(
        ctx.sql("SELECT CAST(hits AS BIGINT) AS v FROM rate_limits WHERE bucket LIKE 'send:ip:%'"),
        3
    );
}

/// Issue 13: the buckets, the SMS day and the prefix are locked in one statement and every write
/// goes in another on PostgreSQL. Twelve different numbers of one prefix, from one IP, at once,
/// against a daily budget of five: exactly five codes and messages, every counter counted once,
/// the rest refused by the budget — and no deadlock between the shared rows.
fn concurrent_issues_share_the_sms_guards(ctx: &Ctx) {
    use marque_domain::sms_guard::{DAILY_BUCKET, PrefixCheck, SmsGuards, daily_policy};
    let barrier = Arc::new(Barrier::new(12));
    let outcomes: Vec<IssueOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12u8)
            .map(|i| {
                let barrier = barrier.clone();
                let store = ctx.store.clone();
                s.spawn(move || {
                    let e164 = format!("+99655512340{}", i % 10);
                    let e164 = if i >= 10 {
                        format!("+9965551235{i}")
                    } else {
                        e164
                    };
                    let mut limits = phone_limit(&e164);
                    limits.push(limit(
                        "send:ip:203.0.113.7",
                        RateLimitPolicy {
                            max_hits: 100,
                            window: Duration::minutes(15),
                            cooldown: Duration::zero(),
                        },
                    ));
                    let mut cmd = issue_cmd(&e164, &[b's', i], t0(), limits);
                    cmd.sms = Some(SmsGuards {
                        daily: limit(DAILY_BUCKET, daily_policy(5)),
                        total_daily_limit: 1000,
                        prefix: PrefixCheck {
                            prefix: "+996555".to_owned(),
                            hourly_limit: 1000,
                            alarm_multiple: 1000,
                        },
                    });
                    barrier.wait();
                    store.issue_challenge(cmd).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let issued = outcomes
        .iter()
        .filter(|o| matches!(o, IssueOutcome::Issued | IssueOutcome::IssuedWithAlarm(_)))
        .count();
    assert_eq!(issued, 5, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            IssueOutcome::Issued
                | IssueOutcome::IssuedWithAlarm(_)
                | IssueOutcome::BudgetExceeded(marque_domain::BudgetTrip {
                    guard: marque_domain::sms_guard::BudgetGuard::MarketDaily,
                    ..
                })
        )),
        "{outcomes:?}"
    );
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM phone_verifications"), 5);
    assert_eq!(codes_in(ctx, "active"), 5);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM outbox"), 5);
    assert_eq!(
        ctx.sql("SELECT CAST(hits AS BIGINT) AS v FROM rate_limits WHERE bucket = 'sms:day'"),
        5
    );
    assert_eq!(
        ctx.sql("SELECT CAST(hits AS BIGINT) AS v FROM rate_limits WHERE bucket LIKE 'send:ip:%'"),
        5
    );
    assert_eq!(
        ctx.sql("SELECT CAST(sent AS BIGINT) AS v FROM sms_prefix_stats WHERE prefix = '+996555'"),
        5
    );
    // A refused issue leaves the per-number bucket of its number as it was (rolled back): five
    // numbers were hit once, the others never (PostgreSQL keeps their placeholder rows).
    assert_eq!(
        ctx.sql(
            "SELECT COUNT(*) AS v FROM rate_limits WHERE bucket LIKE 'send:phone:%' AND hits = 1"
        ),
        5
    );
}

/// Issue 13: codes issued in one transaction are decided one after the other on the counters
/// their predecessors left — a locked number, a full per-number bucket and the shared IP bucket
/// each refuse only their own code, a refusal counts nothing — and a second code for a number
/// already in the batch goes into the next one, where it supersedes the first.
fn a_batch_decides_each_code_as_if_alone(ctx: &Ctx) {
    let store = &ctx.store;
    let ip = |max_hits| {
        limit(
            "send:ip:203.0.113.7",
            RateLimitPolicy {
                max_hits,
                window: Duration::minutes(15),
                cooldown: Duration::zero(),
            },
        )
    };
    let full = "+996700123456";
    let locked = "+996770123456";
    let other = "+996550123456";
    let last = "+996220123456";
    // The full number used its budget of one; the locked one is locked for another 10 minutes.
    let one = RateLimitPolicy {
        max_hits: 1,
        cooldown: Duration::zero(),
        ..PHONE_POLICY
    };
    let cmd = issue_cmd(full, b"before", t0(), vec![limit("send:phone:full", one)]);
    assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
    ctx.sql(&format!(
        "INSERT INTO phone_failures (phone_number, consecutive, locked_until, updated_at) \
         VALUES ('{locked}', 5, '2026-01-01 12:10:10', '2026-01-01 12:00:00')"
    ));
    let with = |e164: &str, hash: &[u8], extra: Vec<RateLimitCheck>| {
        let mut limits = vec![ip(3)];
        limits.extend(extra);
        issue_cmd(e164, hash, at(10), limits)
    };
    let outcomes = store
        .issue_challenges(vec![
            with(KG_PHONE, b"a", phone_limit(KG_PHONE)),
            with(locked, b"b", vec![]),
            with(full, b"c", vec![limit("send:phone:full", one)]),
            with(KG_PHONE, b"d", vec![]),
            with(other, b"e", vec![]),
            with(last, b"f", vec![]),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            IssueOutcome::Issued,
            IssueOutcome::Locked(RetryAfter(600)),
            // Refused by its own bucket (window of 15 minutes from t0), after the IP admitted
            // it: that tentative IP hit is not counted.
            IssueOutcome::RateLimited(RetryAfter(890)),
            // The same number as "a": decided in the next batch, after "a", "e" and "f" took
            // the IP's three hits (its window opened with "a", at 10 s).
            IssueOutcome::RateLimited(RetryAfter(900)),
            IssueOutcome::Issued,
            IssueOutcome::Issued,
        ]
    );
    assert_eq!(
        ctx.sql("SELECT CAST(hits AS BIGINT) AS v FROM rate_limits WHERE bucket LIKE 'send:ip:%'"),
        3
    );
    assert_eq!(
        ctx.sql(
            "SELECT CAST(hits AS BIGINT) AS v FROM rate_limits WHERE bucket = 'send:phone:full'"
        ),
        1
    );
    // The code before the batch plus "a", "e" and "f", each with its message.
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM phone_verifications"), 4);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM outbox"), 4);
    assert_eq!(
        ctx.sql(&format!(
            "SELECT COUNT(*) AS v FROM phone_verifications WHERE phone_number = '{locked}'"
        )),
        0
    );

    // A second code for a number in the batch is decided after the batch commits, and
    // supersedes the first.
    let outcomes = store
        .issue_challenges(vec![
            issue_cmd(other, b"g", at(20), vec![]),
            issue_cmd(other, b"h", at(20), vec![]),
        ])
        .unwrap();
    assert_eq!(outcomes, vec![IssueOutcome::Issued, IssueOutcome::Issued]);
    assert_eq!(
        ctx.sql(&format!(
            "SELECT COUNT(*) AS v FROM phone_verifications WHERE phone_number = '{other}' \
             AND status = 'active'"
        )),
        1
    );
    assert_eq!(
        ctx.sql(&format!(
            "SELECT COUNT(*) AS v FROM phone_verifications WHERE phone_number = '{other}' \
             AND status = 'superseded'"
        )),
        2
    );
}

/// A batch whose every code is refused rolls back: not even the placeholder rows PostgreSQL
/// locks new counters with are left behind.
fn a_batch_of_refusals_writes_nothing(ctx: &Ctx) {
    let store = &ctx.store;
    let none = RateLimitPolicy {
        max_hits: 0,
        ..PHONE_POLICY
    };
    let outcomes = store
        .issue_challenges(vec![
            issue_cmd(
                KG_PHONE,
                b"a",
                t0(),
                vec![limit("send:ip:203.0.113.7", none)],
            ),
            issue_cmd(
                KG_PHONE_2,
                b"b",
                t0(),
                vec![limit("send:ip:203.0.113.7", none)],
            ),
        ])
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, IssueOutcome::RateLimited(_))),
        "{outcomes:?}"
    );
    for table in [
        "rate_limits",
        "phone_failures",
        "phone_verifications",
        "outbox",
    ] {
        assert_eq!(
            ctx.sql(&format!("SELECT COUNT(*) AS v FROM {table}")),
            0,
            "{table}"
        );
    }
}

/// Issue 13: counter reads that arrive together are served by one query; each caller still gets
/// the states of its own keys, in its own order (`None` for a bucket never hit or at 0 hits).
fn concurrent_counter_reads_each_get_their_own_keys(ctx: &Ctx) {
    for i in 1..=8 {
        ctx.sql(&format!(
            "INSERT INTO rate_limits (bucket, window_started_at, hits, last_hit_at) \
             VALUES ('send:ip:10.0.0.{i}', '2026-01-01 12:00:00', {i}, '2026-01-01 12:00:0{i}')"
        ));
    }
    ctx.sql(
        "INSERT INTO rate_limits (bucket, window_started_at, hits, last_hit_at) \
         VALUES ('sms:day', '2026-01-01 00:00:00', 0, '2026-01-01 00:00:00')",
    );
    let barrier = Arc::new(Barrier::new(8));
    let answers: Vec<(u8, Vec<Option<marque_domain::BucketState>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=8u8)
            .map(|i| {
                let barrier = barrier.clone();
                let store = ctx.store.clone();
                s.spawn(move || {
                    let own = format!("send:ip:10.0.0.{i}");
                    let keys = ["sms:day", own.as_str(), "send:ip:192.0.2.1"];
                    barrier.wait();
                    (i, store.bucket_states(&keys).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, states) in answers {
        let own = states[1].expect("the caller's own bucket");
        assert_eq!(own.hits, u32::from(i));
        assert_eq!(own.last_hit_at, at(i64::from(i)));
        assert_eq!((states[0], states[2], states.len()), (None, None, 3));
    }
}

/// Issue 13: the outbox worker marks a batch of sent messages with one statement; each keeps its
/// own receipt, and only a message with a fallback channel left keeps its sealed body.
fn sent_messages_are_marked_together(ctx: &Ctx) {
    let store = &ctx.store;
    let mut with_fallback = issue_cmd(KG_PHONE_2, b"y", t0(), vec![]);
    if let Some(m) = with_fallback.outbox.as_mut() {
        m.fallback = vec![Channel::WhatsApp];
    }
    let outcomes = store
        .issue_challenges(vec![issue_cmd(KG_PHONE, b"x", t0(), vec![]), with_fallback])
        .unwrap();
    assert_eq!(outcomes, vec![IssueOutcome::Issued, IssueOutcome::Issued]);
    let claimed = store.claim_due(t0(), at(30), 10).unwrap();
    let [a, b] = [claimed[0].id, claimed[1].id];
    let receipt = |id| SentReceipt {
        provider: "twilio",
        provider_message_id: Some(id),
        segments: Some(2),
    };
    store
        .mark_sent(at(5), &[(a, receipt("SM-a")), (b, receipt("SM-b"))])
        .unwrap();
    let holds = |id: i64, cond: &str| {
        ctx.sql(&format!(
            "SELECT COUNT(*) AS v FROM outbox WHERE id = {id} AND {cond}"
        )) == 1
    };
    for (id, provider_id) in [(a, "SM-a"), (b, "SM-b")] {
        assert!(holds(
            id,
            &format!(
                "status = 'sent' AND provider = 'twilio' AND provider_message_id = \
                 '{provider_id}' AND segments = 2 AND locked_until IS NULL \
                 AND sent_at IS NOT NULL"
            )
        ));
    }
    assert!(holds(a, "length(payload) = 0"));
    assert!(holds(b, "length(payload) > 0"));
    assert!(store.claim_due(at(100), at(130), 10).unwrap().is_empty());
}

/// Issue 13: a returning user's sign-in is one statement on PostgreSQL. It still records the
/// login, opens the session with its refresh token and audit row, tells whether the device
/// (`User-Agent`) signed in before, and leaves a disabled account alone.
fn returning_sign_in_tells_known_devices_and_refuses_disabled_accounts(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, is_new, _) = login(store, KG_PHONE, t0());
    assert!(is_new);
    let sign_in = |now: DateTime<Utc>, user_agent: Option<&str>| {
        assert_eq!(issue(store, KG_PHONE, b"right", now), IssueOutcome::Issued);
        let session = NewSession {
            user_agent: user_agent.map(str::to_owned),
            ..new_session(now)
        };
        verify_with(store, KG_PHONE, b"right", now, 3, session)
    };
    let known = |outcome: VerifyOutcome| match outcome {
        VerifyOutcome::Verified {
            user: u,
            is_new_user,
            known_device,
        } => {
            assert_eq!((u.id, is_new_user), (user.id, false));
            known_device
        }
        other => panic!("expected Verified, got {other:?}"),
    };
    assert!(
        known(sign_in(at(1000), Some("tests/1.0"))),
        "same agent as the first sign-in"
    );
    assert!(!known(sign_in(at(2000), Some("Other/2.0"))), "a new agent");
    assert!(known(sign_in(at(3000), Some("Other/2.0"))));
    assert!(
        !known(sign_in(at(4000), None)),
        "no agent is a device of its own"
    );
    assert!(known(sign_in(at(5000), None)));
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM sessions"), 6);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM refresh_tokens"), 6);
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM audit_log WHERE event = 'sign_in'"),
        6
    );
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM users WHERE last_login IS NOT NULL AND is_verified"),
        1
    );
    // A disabled account: the right code is consumed, nothing else is written.
    ctx.sql("UPDATE users SET is_active = FALSE");
    assert_eq!(
        issue(store, KG_PHONE, b"right", at(6000)),
        IssueOutcome::Issued
    );
    assert_eq!(
        verify(store, KG_PHONE, b"right", at(6005)),
        VerifyOutcome::Disabled
    );
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM sessions"), 6);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM refresh_tokens"), 6);
}

fn concurrent_verifications_accept_once_and_count_every_miss(ctx: &Ctx) {
    fn race(ctx: &Ctx, presented: &'static [u8], max_attempts: u32) -> Vec<VerifyOutcome> {
        let barrier = Arc::new(Barrier::new(8));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let barrier = barrier.clone();
                    let store = ctx.store.clone();
                    s.spawn(move || {
                        barrier.wait();
                        verify_with(
                            &store,
                            KG_PHONE,
                            presented,
                            at(10),
                            max_attempts,
                            new_session(at(10)),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    assert_eq!(
        issue(&ctx.store, KG_PHONE, b"right", t0()),
        IssueOutcome::Issued
    );
    let outcomes = race(ctx, b"right", 3);
    let verified = outcomes
        .iter()
        .filter(|o| matches!(o, VerifyOutcome::Verified { .. }))
        .count();
    assert_eq!(verified, 1, "{outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == VerifyOutcome::NoActiveCode)
            .count(),
        7,
        "{outcomes:?}"
    );
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM sessions"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 1);

    // Eight concurrent wrong codes on a fresh code: every one is counted exactly once.
    assert_eq!(
        issue(&ctx.store, KG_PHONE, b"right", at(60)),
        IssueOutcome::Issued
    );
    let outcomes = race(ctx, b"wrong", 10);
    let left: BTreeSet<u32> = outcomes
        .iter()
        .map(|o| match o {
            VerifyOutcome::WrongCode { attempts_left } => *attempts_left,
            other => panic!("expected WrongCode, got {other:?}"),
        })
        .collect();
    assert_eq!(left, (2..=9).collect());
    assert_eq!(
        ctx.sql(
            "SELECT CAST(attempts AS BIGINT) AS v FROM phone_verifications \
             ORDER BY id DESC LIMIT 1"
        ),
        8
    );
}

fn migrations_are_idempotent(ctx: &Ctx) {
    ctx.store.migrate().unwrap();
    ctx.store.migrate().unwrap();
    ctx.store.ping().unwrap();
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 0);
}

// ---------------------------------------------------------------------------------------------
// Connection handling
// ---------------------------------------------------------------------------------------------

/// What a provider answered, for tests that do not look at it.
const RECEIPT: SentReceipt<'static> = SentReceipt {
    provider: "test",
    provider_message_id: None,
    segments: Some(1),
};

#[test]
fn connect_errors_never_show_the_password() {
    let refused =
        |market, url| MarketStore::connect(market, url, 2, StdDuration::from_secs(2)).unwrap_err();
    let err = refused(Market::Kg, "postgres://postgres:topsecret@127.0.0.1:1/x");
    let text = err.to_string();
    assert!(!text.contains("topsecret"), "{text}");
    assert!(!format!("{err:?}").contains("topsecret"), "{err:?}");
    assert!(
        text.contains("kg") && text.contains("127.0.0.1:1/x"),
        "{text}"
    );

    // A URL libpq refuses to parse (it echoes URLs in such messages).
    let err = refused(Market::Us, "postgres://u:topsecret@[::1/x");
    assert!(!err.to_string().contains("topsecret"), "{err}");
    assert!(!format!("{err:?}").contains("topsecret"), "{err:?}");

    let err = refused(Market::Kg, "mysql://root:topsecret@db/x");
    assert!(!err.to_string().contains("topsecret"), "{err}");
}

#[test]
fn unsupported_urls_and_settings_are_refused() {
    let t = StdDuration::from_secs(1);
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://",
        "file:x.db",
        "",
    ] {
        assert!(
            MarketStore::connect(Market::Kg, url, 2, t).is_err(),
            "{url}"
        );
    }
    let db = TestDatabase::sqlite();
    assert!(MarketStore::connect(Market::Kg, db.url(), 0, t).is_err());
    assert!(MarketStore::connect(Market::Kg, db.url(), 2, StdDuration::ZERO).is_err());
}

/// Removes a directory when dropped (also when the test panics).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sqlite_parent_directories_are_created() {
    let name = format!("marque_test_dir_{}", uuid::Uuid::new_v4().simple());
    // Absolute (`sqlite:///tmp/…`) and relative to the working directory (`sqlite://name/…`).
    let absolute = RemoveDir(std::env::temp_dir().join(&name));
    let relative = RemoveDir(std::path::PathBuf::from(&name));
    for (dir, url) in [
        (
            &absolute.0,
            format!("sqlite://{}/nested/kg.db", absolute.0.display()),
        ),
        (&relative.0, format!("sqlite://{name}/nested/kg.db")),
    ] {
        {
            let store =
                MarketStore::connect(Market::Kg, &url, 2, StdDuration::from_secs(5)).unwrap();
            store.migrate().unwrap();
            store.ping().unwrap();
            assert_eq!(store.backend(), Backend::Sqlite);
        }
        assert!(dir.join("nested/kg.db").exists(), "{url}");
    }
}

#[test]
fn postgres_lost_connections_are_replaced() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let db = TestDatabase::postgres(&admin).unwrap();
    // One connection, so every call below uses the one that is killed.
    let store = MarketStore::connect(Market::Kg, db.url(), 1, StdDuration::from_secs(5)).unwrap();
    store.migrate().unwrap();
    let (user, _, sid) = login(&store, KG_PHONE, t0());
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    let kill_connections = || {
        let mut c = PgConnection::establish(&admin).unwrap();
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut c)
        .unwrap();
    };

    // Reads retry once on a fresh connection: a restart is invisible to them.
    kill_connections();
    store.ping().unwrap();
    kill_connections();
    assert_eq!(
        store.session_user(&sid, user.id, at(60)).unwrap(),
        Some(user.clone())
    );

    // Writes are not retried (their outcome would be unknown): the caller gets Unavailable,
    // and the next call runs on a new connection.
    kill_connections();
    match store.revoke_session(&sid, at(60)) {
        Err(RepoError::Unavailable(cause)) => {
            assert!(cause.to_string().contains("kg"), "{cause}");
            assert!(cause.downcast_ref::<marque_store::DbError>().is_some());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(store.revoke_session(&sid, at(61)).unwrap());
}

#[test]
fn pool_timeout_is_unavailable() {
    // A pool of one whose connection is held: the next checkout times out.
    let db = TestDatabase::sqlite();
    let store =
        MarketStore::connect(Market::Kg, db.url(), 1, StdDuration::from_millis(200)).unwrap();
    store.migrate().unwrap();
    let holder = store.clone();
    let barrier = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    std::thread::scope(|s| {
        let (b, r) = (barrier.clone(), release.clone());
        s.spawn(move || {
            // Holds the only connection inside a verification until released.
            let phone = phone(KG_PHONE);
            let matches = |_: &[u8]| {
                b.wait();
                r.wait();
                false
            };
            assert_eq!(
                issue(&holder, KG_PHONE, b"right", t0()),
                IssueOutcome::Issued
            );
            holder
                .verify_challenge(VerifyChallenge {
                    check: code_check(&phone, at(1), 3, &matches),
                    refresh: NewRefreshToken {
                        token_hash: b"never".to_vec(),
                        expires_at: at(100),
                    },
                    session: new_session(at(1)),
                    attach_to: None,
                })
                .unwrap();
        });
        barrier.wait();
        match store.ping() {
            Err(RepoError::Unavailable(cause)) => {
                assert!(cause.to_string().contains("kg"), "{cause}");
                assert!(cause.downcast_ref::<marque_store::DbError>().is_some());
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        release.wait();
    });
    store.ping().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens, session lists, account deletion
// ---------------------------------------------------------------------------------------------

fn rotate(
    store: &MarketStore,
    presented: &[u8],
    successor: &[u8],
    now: DateTime<Utc>,
) -> RotateOutcome {
    rotate_from(store, presented, successor, b"client-a", now)
}

fn rotate_from(
    store: &MarketStore,
    presented: &[u8],
    successor: &[u8],
    client: &[u8],
    now: DateTime<Utc>,
) -> RotateOutcome {
    store
        .rotate_refresh(RotateRefresh {
            token_hash: presented,
            now,
            grace: Duration::seconds(10),
            idle: Duration::days(30),
            max_lifetime: Duration::days(90),
            successor_hash: successor.to_vec(),
            client_binding: client.to_vec(),
            client: &test_client(),
        })
        .unwrap()
}

fn refreshed_session(store: &MarketStore) -> (User, SessionId, Vec<u8>) {
    let (user, _, sid) = login(store, KG_PHONE, t0());
    let first = format!("rt:{}", sid.0).into_bytes();
    (user, sid, first)
}

fn refresh_rotates_replays_in_grace_and_revokes_on_reuse(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, sid, first) = refreshed_session(store);
    match rotate(store, &first, b"second", at(100)) {
        RotateOutcome::Rotated {
            session,
            user: u,
            refresh_expires_at,
        } => {
            assert_eq!((session, u), (sid.clone(), user.id));
            assert_eq!(refresh_expires_at, at(100) + Duration::days(30));
        }
        other => panic!("unexpected {other:?}"),
    }
    // A concurrent retry of the same client inside the grace window is a replay (the caller
    // recomputes the successor; nothing of it is stored but its hash).
    match rotate(store, &first, b"second", at(105)) {
        RotateOutcome::Replayed {
            session,
            refresh_expires_at,
            ..
        } => {
            assert_eq!(session, sid);
            assert_eq!(refresh_expires_at, at(100) + Duration::days(30));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The successor works and is rotated in turn.
    assert!(matches!(
        rotate(store, b"second", b"third", at(106)),
        RotateOutcome::Rotated { .. }
    ));
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM refresh_tokens WHERE rotated_client IS NOT NULL"),
        2
    );
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM refresh_tokens"), 3);
    // The first token again, after its successor was used: reuse → the session is revoked.
    assert_eq!(
        rotate(store, &first, b"fourth", at(107)),
        RotateOutcome::Reused
    );
    assert_eq!(store.active_session(&sid, user.id, at(108)).unwrap(), None);
    assert_eq!(
        rotate(store, b"third", b"fifth", at(108)),
        RotateOutcome::Invalid
    );
    assert_eq!(
        rotate(store, b"unknown", b"x", at(108)),
        RotateOutcome::Invalid
    );
}

/// Issue 12 item 6: inside the grace window, a replay from another client (another user agent
/// or IP prefix, i.e. another binding) is reuse and revokes the session.
fn refresh_replay_from_another_client_is_reuse(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, sid, first) = refreshed_session(store);
    assert!(matches!(
        rotate_from(store, &first, b"second", b"client-a", at(100)),
        RotateOutcome::Rotated { .. }
    ));
    assert_eq!(
        rotate_from(store, &first, b"second", b"client-b", at(101)),
        RotateOutcome::Reused
    );
    assert_eq!(store.active_session(&sid, user.id, at(102)).unwrap(), None);
    assert_eq!(
        rotate_from(store, b"second", b"third", b"client-a", at(102)),
        RotateOutcome::Invalid
    );
}

fn refresh_extends_the_session_up_to_its_max_lifetime(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, sid, first) = refreshed_session(store);
    let late = t0() + Duration::days(80);
    // Idle for 29 days after a refresh on day 51: still alive on day 80.
    assert!(matches!(
        rotate(store, &first, b"b", t0() + Duration::days(29)),
        RotateOutcome::Rotated { .. }
    ));
    assert!(matches!(
        rotate(store, b"b", b"c", t0() + Duration::days(51)),
        RotateOutcome::Rotated { .. }
    ));
    match rotate(store, b"c", b"d", late) {
        RotateOutcome::Rotated {
            refresh_expires_at, ..
        } => {
            // Capped at 90 days after sign-in (t0 + 5 s).
            assert_eq!(refresh_expires_at, at(5) + Duration::days(90));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        store
            .active_session(
                &sid,
                user.id,
                at(5) + Duration::days(90) - Duration::seconds(1)
            )
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .active_session(&sid, user.id, at(5) + Duration::days(90))
            .unwrap(),
        None
    );
    assert_eq!(
        rotate(store, b"d", b"e", at(5) + Duration::days(90)),
        RotateOutcome::Invalid
    );
}

fn refresh_of_an_ended_session_is_invalid(ctx: &Ctx) {
    let store = &ctx.store;
    let (_, sid, first) = refreshed_session(store);
    assert!(store.revoke_session(&sid, at(50)).unwrap());
    assert_eq!(rotate(store, &first, b"b", at(60)), RotateOutcome::Invalid);
}

fn sessions_are_listed_and_revoked_by_scope(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, _, a) = login(store, KG_PHONE, t0());
    let (_, _, b) = login(store, KG_PHONE, at(120));
    let (_, _, c) = login(store, KG_PHONE, at(240));
    let (other, _, d) = login(store, KG_PHONE_2, at(360));
    let ids =
        |list: Vec<marque_domain::SessionInfo>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_sessions(user.id, at(400)).unwrap()),
        vec![c.clone(), b.clone(), a.clone()]
    );
    let listed = store.list_sessions(user.id, at(400)).unwrap();
    assert_eq!(listed[0].user_agent.as_deref(), Some("tests/1.0"));
    assert_eq!(listed[0].client_ip.as_deref(), Some("203.0.113.7"));
    // Another user's session is not in reach.
    assert_eq!(
        store
            .revoke_sessions(user.id, &RevokeScope::One(d.clone()), at(400))
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .revoke_sessions(user.id, &RevokeScope::AllExcept(c.clone()), at(400))
            .unwrap(),
        2
    );
    assert_eq!(
        ids(store.list_sessions(user.id, at(401)).unwrap()),
        vec![c.clone()]
    );
    assert_eq!(
        store
            .revoke_sessions(user.id, &RevokeScope::All, at(402))
            .unwrap(),
        1
    );
    assert!(store.list_sessions(user.id, at(403)).unwrap().is_empty());
    assert_eq!(
        ids(store.list_sessions(other.id, at(403)).unwrap()),
        vec![d]
    );
}

fn delete(
    store: &MarketStore,
    user: UserId,
    presented: &[u8],
    now: DateTime<Utc>,
) -> VerifyOutcome {
    let p = phone(KG_PHONE);
    let matches = |stored: &[u8]| stored == presented;
    store
        .delete_account(DeleteAccount {
            check: code_check(&p, now, 3, &matches),
            user,
            client: &test_client(),
        })
        .unwrap()
}

/// The client of the store scenarios' refreshes and deletions.
fn test_client() -> marque_domain::ClientInfo {
    marque_domain::ClientInfo {
        ip: Some("198.51.100.7".to_owned()),
        user_agent: Some("store-test/1.0".to_owned()),
    }
}

fn account_deletion_removes_every_row_and_keeps_an_audit_record(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, sid, first) = refreshed_session(store);
    let (other, _, _) = login(store, KG_PHONE_2, t0());
    assert!(matches!(
        rotate(store, &first, b"b", at(30)),
        RotateOutcome::Rotated { .. }
    ));
    assert_eq!(
        issue_deletion(store, KG_PHONE, b"step-up", at(100)),
        IssueOutcome::Issued
    );
    assert!(matches!(
        delete(store, user.id, b"step-up", at(110)),
        VerifyOutcome::Verified { .. }
    ));
    let count = |sql: &str| ctx.sql(sql);
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM users WHERE id = {}",
            user.id.0
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM sessions WHERE user_id = {}",
            user.id.0
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM refresh_tokens WHERE session_id = '{}'",
            sid.0
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM phone_verifications WHERE phone_number = '{KG_PHONE}'"
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM outbox WHERE recipient = '{KG_PHONE}'"
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM rate_limits WHERE bucket LIKE '%{KG_PHONE}%'"
        )),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM account_deletions WHERE user_id = {}",
            user.id.0
        )),
        1
    );
    // The other user is untouched; the number signs up again as a new user.
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS v FROM users WHERE id = {}",
            other.id.0
        )),
        1
    );
    let (again, is_new, _) = login(store, KG_PHONE, at(200));
    assert!(is_new);
    assert_ne!(again.id, user.id);
}

fn account_deletion_needs_the_right_code(ctx: &Ctx) {
    let store = &ctx.store;
    let (user, _, _) = login(store, KG_PHONE, t0());
    // The login code was consumed: no code → nothing deleted.
    assert_eq!(
        delete(store, user.id, b"right", at(10)),
        VerifyOutcome::NoActiveCode
    );
    // A live sign-in code is not a deletion code (issue 12, item 10).
    assert_eq!(
        store
            .issue_challenge(issue_cmd(KG_PHONE, b"login", at(30), Vec::new()))
            .unwrap(),
        IssueOutcome::Issued
    );
    assert_eq!(
        delete(store, user.id, b"login", at(35)),
        VerifyOutcome::NoActiveCode
    );
    assert_eq!(
        issue_deletion(store, KG_PHONE, b"step-up", at(100)),
        IssueOutcome::Issued
    );
    assert_eq!(
        delete(store, user.id, b"wrong", at(110)),
        VerifyOutcome::WrongCode { attempts_left: 2 }
    );
    // Someone else's id with this number's code deletes nothing.
    assert_eq!(
        delete(store, UserId(user.id.0 + 1000), b"step-up", at(111)),
        VerifyOutcome::NoActiveCode
    );
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM users"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM account_deletions"), 0);
}

/// Issue 11: a market database that refuses connections is answered `Unavailable` at once by
/// the pool's circuit breaker (not after the 5 s connection timeout), and the store recovers by
/// itself once the database is back. The database is "stopped" by closing a TCP proxy in front
/// of it (the shared server keeps running).
#[test]
fn a_database_that_refuses_connections_fails_fast_and_recovers() {
    use std::time::Instant;
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (_db, mut proxy, store) = store_behind_proxy(&admin);
    assert!(!store.pool_stats().breaker_open);

    proxy.stop();
    // Each call is timed; the median must be far below the 5 s connect timeout. The bound is
    // 100 ms (the issue's) on the median of 30 calls, so a few slow ones on a loaded 2-core CI
    // machine do not fail it, while waiting out the timeout (5 s) would.
    let mut took = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        match store.ping() {
            Err(RepoError::Unavailable(cause)) => assert!(cause.to_string().contains("kg")),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        took.push(start.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(median < StdDuration::from_millis(100), "{took:?}");
    assert!(
        took[took.len() - 1] < StdDuration::from_secs(2),
        "no call waits out the timeout: {took:?}"
    );
    let stats = store.pool_stats();
    assert!(stats.breaker_open || stats.refused > 0, "{stats:?}");

    // Back: the store answers again within a few seconds, without a restart.
    proxy.start().unwrap();
    let took = wait_for_recovery(&store);
    assert!(took < StdDuration::from_secs(5), "{took:?}");
    assert!(!store.pool_stats().breaker_open);
}

/// Issue 13: send-codes are decided in shared transactions. When the database cannot be reached,
/// every code waiting in the batch gets the outage (`Unavailable`, answered 503), none waits
/// forever, and the queue serves the next codes once the database is back.
#[test]
fn a_failed_batch_fails_each_of_its_codes_and_the_queue_recovers() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (_db, mut proxy, store) = store_behind_proxy(&admin);

    proxy.stop();
    let barrier = Arc::new(Barrier::new(8));
    let outcomes: Vec<Result<IssueOutcome, RepoError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let barrier = barrier.clone();
                let store = store.clone();
                s.spawn(move || {
                    let e164 = format!("+99655512345{i}");
                    let cmd = issue_cmd(&e164, &[b'd', i], t0(), phone_limit(&e164));
                    barrier.wait();
                    store.issue_challenge(cmd)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Err(RepoError::Unavailable(_))),
            "{outcome:?}"
        );
    }

    proxy.start().unwrap();
    wait_for_recovery(&store);
    let cmd = issue_cmd(KG_PHONE, b"after", t0(), phone_limit(KG_PHONE));
    assert_eq!(store.issue_challenge(cmd).unwrap(), IssueOutcome::Issued);
}

/// A migrated KG store on a throwaway PostgreSQL database reached through a TCP proxy (stop the
/// proxy to "stop" the database; the shared server keeps running). Keep the database alive as
/// long as the store.
fn store_behind_proxy(admin: &str) -> (TestDatabase, marque_testkit::TcpProxy, MarketStore) {
    let db = TestDatabase::postgres(admin).unwrap();
    let (proxy, url) = marque_testkit::TcpProxy::to_postgres(db.url()).unwrap();
    let store = MarketStore::connect(Market::Kg, &url, 4, StdDuration::from_secs(5)).unwrap();
    store.migrate().unwrap();
    store.ping().unwrap();
    (db, proxy, store)
}

/// Waits until `store` answers again (at most 10 s); how long that took.
fn wait_for_recovery(store: &MarketStore) -> StdDuration {
    let back = std::time::Instant::now();
    while store.ping().is_err() {
        assert!(
            back.elapsed() < StdDuration::from_secs(10),
            "the store did not recover"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
    back.elapsed()
}

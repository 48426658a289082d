#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Email-account storage (issue 10) on both backends: one account per address under concurrent
//! registrations, single-use link tokens under concurrency, growing sign-in delays, reset ending
//! every session, and what account deletion leaves behind.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use marque_domain::email::{
    AddressMail, EmailRepository, EmailSignIn, LoginState, LoginThrottle, MailIf, MailLimits,
    NewEmailToken, PreparedMail, RegisterEmail, ResetPassword, TokenPurpose, failure_key,
};
use marque_domain::{
    Channel, Elsewhere, EmailAddress, NewOutboxMessage, NewRefreshToken, NewSession,
    RateLimitCheck, RateLimitPolicy, SessionId, UserId, VerifyOutcome,
};
use marque_testkit::{TestStore as Ctx, on_both_backends};

on_both_backends!(
    concurrent_registrations_make_one_account,
    link_tokens_are_single_use_under_concurrency,
    wrong_passwords_delay_and_a_success_clears,
    a_reset_ends_every_session_and_proves_the_address,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap()
}

fn limits(key: &str) -> MailLimits {
    MailLimits {
        ip: Vec::new(),
        address: RateLimitCheck {
            bucket: format!("email:to:{key}"),
            policy: RateLimitPolicy {
                max_hits: 100,
                window: Duration::hours(1),
                cooldown: Duration::zero(),
            },
            elsewhere: Elsewhere::default(),
        },
    }
}

fn mail(to: &str, token: Option<(&[u8], TokenPurpose)>) -> PreparedMail {
    PreparedMail {
        token: token.map(|(hash, purpose)| NewEmailToken {
            hash: hash.to_vec(),
            purpose,
            expires_at: t0() + Duration::hours(1),
        }),
        outbox: NewOutboxMessage {
            channel: Channel::Email,
            fallback: Vec::new(),
            recipient: to.to_owned(),
            sealed_body: b"sealed".to_vec(),
            expires_at: t0() + Duration::hours(24),
        },
    }
}

fn register(ctx: &Ctx, email: &str, token: &[u8]) {
    let email = EmailAddress::parse(email).unwrap();
    let key = email.key();
    ctx.store
        .register(RegisterEmail {
            email: email.clone(),
            password_hash: "$argon2id$stored".to_owned(),
            full_name: None,
            now: t0(),
            limits: limits(&key),
            verify_mail: mail(email.as_str(), Some((token, TokenPurpose::Verify))),
            exists_mail: mail(email.as_str(), None),
        })
        .unwrap();
}

fn session(n: u8) -> (NewSession, NewRefreshToken) {
    (
        NewSession {
            id: SessionId(format!("00000000-0000-4000-8000-0000000000{n:02}")),
            created_at: t0(),
            expires_at: t0() + Duration::days(30),
            user_agent: Some("web/1.0".to_owned()),
            client_ip: None,
        },
        NewRefreshToken {
            token_hash: vec![n; 32],
            expires_at: t0() + Duration::days(30),
        },
    )
}

fn concurrent_registrations_make_one_account(ctx: &Ctx) {
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u8)
        .map(|i| {
            let (store, b) = (ctx.store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let email = EmailAddress::parse(if i % 2 == 0 { "Ann@X.org" } else { "ann@x.org" })
                    .unwrap();
                let key = email.key();
                b.wait();
                store
                    .register(RegisterEmail {
                        email: email.clone(),
                        password_hash: "$argon2id$stored".to_owned(),
                        full_name: None,
                        now: t0(),
                        limits: limits(&key),
                        verify_mail: mail(email.as_str(), Some((&[i; 32], TokenPurpose::Verify))),
                        exists_mail: mail(email.as_str(), None),
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ctx.user_count(), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM email_identities"), 1);
    assert_eq!(ctx.sql("SELECT COUNT(*) AS v FROM email_tokens"), 1);
    // One verification email; the other seven got "already registered" (no token).
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM outbox WHERE channel = 'email'"),
        8
    );
    assert!(ctx.store.email_exists("ann@x.org").unwrap());
    assert!(!ctx.store.email_exists("bob@x.org").unwrap());
}

fn link_tokens_are_single_use_under_concurrency(ctx: &Ctx) {
    register(ctx, "ann@x.org", b"verify-token-hash");
    let barrier = Arc::new(Barrier::new(8));
    let uses: Vec<Option<UserId>> = (0..8)
        .map(|_| {
            let (store, b) = (ctx.store.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                store.confirm_email(b"verify-token-hash", t0()).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(uses.iter().flatten().count(), 1);
    let identity = ctx
        .store
        .identity(uses.into_iter().flatten().next().unwrap());
    assert!(identity.unwrap().unwrap().verified);
    // An expired token does nothing; a verification token is no reset token.
    register(ctx, "bob@x.org", b"bob-token");
    assert_eq!(
        ctx.store
            .confirm_email(b"bob-token", t0() + Duration::hours(2))
            .unwrap(),
        None
    );
    assert_eq!(
        ctx.store
            .token_owner(TokenPurpose::Reset, b"bob-token", t0())
            .unwrap(),
        None
    );
    assert_eq!(
        ctx.store
            .token_owner(TokenPurpose::Verify, b"bob-token", t0())
            .unwrap()
            .unwrap()
            .email,
        "bob@x.org"
    );
}

fn wrong_passwords_delay_and_a_success_clears(ctx: &Ctx) {
    register(ctx, "ann@x.org", b"t");
    let key = "ann@x.org";
    let fkey = failure_key(key);
    let throttle = LoginThrottle::default();
    let LoginState::Ready(Some(stored)) = ctx.store.login_state(key, &[], t0()).unwrap() else {
        panic!("known address")
    };
    assert!(!stored.verified);
    assert_eq!(stored.password_hash, "$argon2id$stored");
    for _ in 0..5 {
        let (state, locked) = ctx.store.login_failed(&fkey, &throttle, t0()).unwrap();
        assert!(!locked && state.locked_until.is_none());
    }
    let (state, _) = ctx.store.login_failed(&fkey, &throttle, t0()).unwrap();
    assert_eq!(state.locked_until, Some(t0() + Duration::seconds(1)));
    assert!(matches!(
        ctx.store.login_state(key, &[], t0()).unwrap(),
        LoginState::Locked(_)
    ));
    let (s, r) = session(1);
    let sign_in = |at| EmailSignIn {
        user: stored.user,
        failure_key: fkey.clone(),
        now: at,
        session: s.clone(),
        refresh: r.clone(),
    };
    assert!(matches!(
        ctx.store.login_succeeded(sign_in(t0())).unwrap(),
        VerifyOutcome::Locked { .. }
    ));
    let later = t0() + Duration::seconds(2);
    let VerifyOutcome::Verified { user, .. } = ctx.store.login_succeeded(sign_in(later)).unwrap()
    else {
        panic!("signed in after the delay")
    };
    assert_eq!(user.email.as_deref(), Some("ann@x.org"));
    assert_eq!(user.phone, None);
    assert_eq!(
        ctx.sql(&format!(
            "SELECT CAST(consecutive AS BIGINT) AS v FROM phone_failures WHERE phone_number = '{fkey}'"
        )),
        0
    );
    // Unknown addresses collect delays too.
    assert_eq!(
        ctx.store.login_state("nobody@x.org", &[], t0()).unwrap(),
        LoginState::Ready(None)
    );
}

fn a_reset_ends_every_session_and_proves_the_address(ctx: &Ctx) {
    register(ctx, "ann@x.org", b"t");
    let LoginState::Ready(Some(stored)) = ctx.store.login_state("ann@x.org", &[], t0()).unwrap()
    else {
        panic!()
    };
    for n in 1..=2 {
        let (session, refresh) = session(n);
        let outcome = ctx
            .store
            .login_succeeded(EmailSignIn {
                user: stored.user,
                failure_key: failure_key("ann@x.org"),
                now: t0(),
                session,
                refresh,
            })
            .unwrap();
        assert!(matches!(outcome, VerifyOutcome::Verified { .. }));
    }
    // Forgot: only for an address on record.
    for key in ["ann@x.org", "nobody@x.org"] {
        ctx.store
            .mail_address(AddressMail {
                key: key.to_owned(),
                only_if: MailIf::Exists,
                now: t0(),
                limits: limits(key),
                mail: mail(key, Some((b"reset-hash", TokenPurpose::Reset))),
            })
            .unwrap();
    }
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM email_tokens WHERE purpose = 'reset'"),
        1
    );
    let reset = || ResetPassword {
        token_hash: b"reset-hash".to_vec(),
        password_hash: "$argon2id$new".to_owned(),
        now: t0(),
        mail: mail("ann@x.org", None),
    };
    assert_eq!(
        ctx.store.reset_password(reset()).unwrap(),
        Some(stored.user)
    );
    assert_eq!(
        ctx.store.reset_password(reset()).unwrap(),
        None,
        "single use"
    );
    assert_eq!(
        ctx.sql("SELECT COUNT(*) AS v FROM sessions WHERE revoked_at IS NULL"),
        0
    );
    let identity = ctx.store.identity(stored.user).unwrap().unwrap();
    assert!(identity.verified);
    assert_eq!(identity.password_hash, "$argon2id$new");
}

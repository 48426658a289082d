//! Channel fallback, dead letters, delivery reports and a provider outage, through the outbox
//! worker on the real store (SQLite files) with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use marque_domain::{
    Accepted, AuthRepository, ChallengeDelivery, Channel, DeliveryError, DeliveryReport,
    DeliveryState, IssueChallenge, MessageSender, NewOutboxMessage, OtpPayload, OutboxRepository,
    OutgoingMessage, PayloadSealer, ReportedStatus, RetryPolicy, SecretString, ThreadCsprng,
};
use marque_markets::{Market, OtpCode, OtpPurpose, PhoneNumber};
use marque_messaging::{
    Fate, MessageTemplates, OutboxWorker, Senders, Twilio, TwilioConfig, TwilioFrom, WorkerConfig,
    WorkerDeps,
};
use marque_testkit::{FixedRandom, ManualClock, TestStore};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

/// Answers with the scripted result, and keeps what it was handed.
struct Scripted {
    name: &'static str,
    result: Result<(), DeliveryError>,
    sent: Mutex<Vec<OutgoingMessage>>,
}

impl Scripted {
    fn new(name: &'static str, result: Result<(), DeliveryError>) -> Arc<Self> {
        Arc::new(Self {
            name,
            result,
            sent: Mutex::default(),
        })
    }

    fn sent(&self) -> Vec<OutgoingMessage> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl MessageSender for Scripted {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        self.sent.lock().unwrap().push(m.clone());
        self.result.clone().map(|()| Accepted {
            provider_message_id: Some(format!("{}-{}", self.name, m.id)),
        })
    }
}

struct Fixture {
    store: TestStore,
    clock: Arc<ManualClock>,
    sealer: PayloadSealer,
}

impl Fixture {
    fn new() -> Self {
        Self {
            store: TestStore::sqlite(Market::Kg),
            clock: Arc::new(ManualClock::new(Utc::now())),
            sealer: PayloadSealer::from_secret(b"fallback-test"),
        }
    }

    /// Issues a code for `e164` going out on `first`, then `fallback`; returns the challenge id.
    fn issue(&self, e164: &str, code: &str, first: Channel, fallback: &[Channel]) -> String {
        let now = marque_domain::Clock::now(self.clock.as_ref());
        let payload = OtpPayload {
            code: OtpCode::parse(code).unwrap(),
            purpose: OtpPurpose::Login,
            ttl_minutes: 10,
        };
        let challenge_id = format!("challenge-{e164}");
        self.store
            .store
            .issue_challenge(IssueChallenge {
                phone: PhoneNumber::parse(e164, None).unwrap(),
                code_hash: vec![1],
                purpose: OtpPurpose::Login,
                challenge_id: challenge_id.clone(),
                channel: first,
                check_lock: true,
                now,
                expires_at: now + Duration::minutes(10),
                client_ip: None,
                limits: vec![],
                outbox: Some(NewOutboxMessage {
                    channel: first,
                    fallback: fallback.to_vec(),
                    recipient: e164.into(),
                    sealed_body: self.sealer.seal(&payload.encode(), &ThreadCsprng),
                    expires_at: now + Duration::minutes(10),
                }),
                sms: None,
            })
            .unwrap();
        challenge_id
    }

    fn worker(&self, senders: Senders, retry: RetryPolicy) -> OutboxWorker {
        OutboxWorker::new(
            vec![self.store.repo() as Arc<dyn OutboxRepository>],
            senders,
            WorkerDeps {
                templates: MessageTemplates::default(),
                sealer: self.sealer.clone(),
                clock: self.clock.clone(),
                rng: Arc::new(FixedRandom::new(3)),
            },
            WorkerConfig {
                retry,
                ..WorkerConfig::default()
            },
        )
    }

    fn delivery(&self, challenge_id: &str) -> ChallengeDelivery {
        self.store
            .store
            .challenge_delivery(challenge_id)
            .unwrap()
            .expect("the challenge is known")
    }
}

const KG: &str = "+996505325311";

#[tokio::test]
async fn a_permanent_failure_sends_the_same_code_on_the_next_configured_channel() {
    let f = Fixture::new();
    let telegram = Scripted::new(
        "telegram",
        Err(DeliveryError::Permanent("not on Telegram".into())),
    );
    let sms = Scripted::new("twilio", Ok(()));
    // WhatsApp is in the list but has no provider: it is skipped.
    let senders = Senders::default()
        .with(Market::Kg, Channel::Telegram, telegram.clone())
        .with(Market::Kg, Channel::Sms, sms.clone());
    let id = f.issue(
        KG,
        "482913",
        Channel::Telegram,
        &[Channel::WhatsApp, Channel::Sms],
    );
    let w = f.worker(senders, RetryPolicy::default());
    assert_eq!(
        f.delivery(&id),
        ChallengeDelivery {
            channel: Channel::Telegram,
            status: DeliveryState::Queued,
            fallback_from: None
        }
    );

    assert_eq!(
        w.run_once().await,
        vec![(Market::Kg, 1, Fate::FellBack(Channel::Sms))]
    );
    assert_eq!(w.run_once().await, vec![(Market::Kg, 1, Fate::Sent)]);
    assert!(w.run_once().await.is_empty(), "sent once");

    let (tg, text) = (telegram.sent(), sms.sent());
    assert_eq!((tg.len(), text.len()), (1, 1));
    assert_eq!(tg[0].code.as_str(), "482913");
    assert_eq!(text[0].code.as_str(), "482913", "the same code");
    assert!(text[0].text.contains("482913"));
    assert_eq!(text[0].id, tg[0].id, "the same message");
    assert_eq!(
        text[0].expires_at, tg[0].expires_at,
        "the expiry does not change"
    );
    assert_eq!(
        f.delivery(&id),
        ChallengeDelivery {
            channel: Channel::Sms,
            status: DeliveryState::Sent,
            fallback_from: Some(Channel::Telegram)
        }
    );
    let row = &f.store.outbox()[0];
    assert_eq!(row.fallback_from.as_deref(), Some("telegram"));
    assert_eq!(row.provider.as_deref(), Some("twilio"));
    assert_eq!(row.segments, Some(1));
    assert!(
        row.scrubbed(),
        "no channel left: nothing kept after sending"
    );
}

#[tokio::test]
async fn when_every_channel_fails_the_message_is_a_dead_letter_with_the_last_error() {
    let f = Fixture::new();
    let telegram = Scripted::new(
        "telegram",
        Err(DeliveryError::Permanent("PHONE_NUMBER_INVALID".into())),
    );
    let sms = Scripted::new(
        "twilio",
        Err(DeliveryError::Permanent("21211 invalid To".into())),
    );
    let senders = Senders::default()
        .with(Market::Kg, Channel::Telegram, telegram.clone())
        .with(Market::Kg, Channel::Sms, sms.clone());
    let id = f.issue(KG, "111222", Channel::Telegram, &[Channel::Sms]);
    let w = f.worker(senders, RetryPolicy::default());
    assert_eq!(w.run_once().await[0].2, Fate::FellBack(Channel::Sms));
    assert_eq!(w.run_once().await[0].2, Fate::GivenUp);
    assert!(w.run_once().await.is_empty());
    let row = &f.store.outbox()[0];
    assert_eq!(row.status, "failed");
    assert!(row.scrubbed());
    assert!(
        row.last_error.as_deref().unwrap().contains("21211"),
        "{row:?}"
    );
    assert_eq!(f.delivery(&id).status, DeliveryState::Failed);
    assert_eq!(f.delivery(&id).fallback_from, Some(Channel::Telegram));
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_fall_back_after_the_last_attempt() {
    let f = Fixture::new();
    let whatsapp = Scripted::new("whatsapp", Err(DeliveryError::Transient("130429".into())));
    let sms = Scripted::new("twilio", Ok(()));
    let senders = Senders::default()
        .with(Market::Kg, Channel::WhatsApp, whatsapp.clone())
        .with(Market::Kg, Channel::Sms, sms.clone());
    f.issue(KG, "333444", Channel::WhatsApp, &[Channel::Sms]);
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let w = f.worker(senders, retry);
    assert_eq!(w.run_once().await[0].2, Fate::Retry);
    assert!(w.run_once().await.is_empty(), "not due before the backoff");
    f.clock.advance(Duration::seconds(2));
    assert_eq!(w.run_once().await[0].2, Fate::Retry);
    f.clock.advance(Duration::seconds(4));
    assert_eq!(w.run_once().await[0].2, Fate::FellBack(Channel::Sms));
    assert_eq!(w.run_once().await[0].2, Fate::Sent);
    assert_eq!(whatsapp.sent().len(), 3);
    assert_eq!(sms.sent().len(), 1);
    assert_eq!(
        f.store.outbox()[0].attempts,
        0,
        "attempts count per channel"
    );
}

#[tokio::test]
async fn an_undelivered_report_sends_the_code_on_the_next_channel_and_a_delivered_one_scrubs_it() {
    let f = Fixture::new();
    let whatsapp = Scripted::new("whatsapp", Ok(()));
    let sms = Scripted::new("twilio", Ok(()));
    let senders = Senders::default()
        .with(Market::Kg, Channel::WhatsApp, whatsapp.clone())
        .with(Market::Kg, Channel::Sms, sms.clone());
    let id = f.issue(KG, "555666", Channel::WhatsApp, &[Channel::Sms]);
    let w = f.worker(senders, RetryPolicy::default());
    assert_eq!(w.run_once().await[0].2, Fate::Sent);
    assert!(
        !f.store.outbox()[0].scrubbed(),
        "kept (sealed) while a fallback is possible"
    );
    let now = marque_domain::Clock::now(f.clock.as_ref());
    let repo = &f.store.store;
    // A report of another provider or message changes nothing.
    let report = |id: &str, status| DeliveryReport {
        provider_message_id: id.into(),
        status,
        error: Some("131026".into()),
    };
    assert!(
        !repo
            .record_report(
                "twilio",
                &report("whatsapp-kg-1", ReportedStatus::Failed),
                now
            )
            .unwrap()
    );
    assert!(
        repo.record_report(
            "whatsapp",
            &report("whatsapp-kg-1", ReportedStatus::InProgress),
            now
        )
        .unwrap()
    );
    assert_eq!(f.delivery(&id).status, DeliveryState::Sent);
    // Not a WhatsApp user, reported later: the same code goes out by SMS.
    assert!(
        repo.record_report(
            "whatsapp",
            &report("whatsapp-kg-1", ReportedStatus::Failed),
            now
        )
        .unwrap()
    );
    assert_eq!(
        f.delivery(&id),
        ChallengeDelivery {
            channel: Channel::Sms,
            status: DeliveryState::Queued,
            fallback_from: Some(Channel::WhatsApp)
        }
    );
    assert_eq!(w.run_once().await[0].2, Fate::Sent);
    assert_eq!(sms.sent()[0].code.as_str(), "555666");
    assert!(f.store.outbox()[0].scrubbed(), "no channel left");
    // The SMS is reported delivered; a late failure report does not undo it.
    assert!(
        repo.record_report(
            "twilio",
            &report("twilio-kg-1", ReportedStatus::Delivered),
            now
        )
        .unwrap()
    );
    assert_eq!(f.delivery(&id).status, DeliveryState::Delivered);
    assert!(
        repo.record_report(
            "twilio",
            &report("twilio-kg-1", ReportedStatus::Failed),
            now
        )
        .unwrap()
    );
    assert_eq!(f.delivery(&id).status, DeliveryState::Delivered);
    assert_eq!(sms.sent().len(), 1);
}

#[tokio::test]
async fn an_undelivered_report_after_the_code_expired_sends_nothing_more() {
    let f = Fixture::new();
    let telegram = Scripted::new("telegram", Ok(()));
    let sms = Scripted::new("twilio", Ok(()));
    let senders = Senders::default()
        .with(Market::Kg, Channel::Telegram, telegram.clone())
        .with(Market::Kg, Channel::Sms, sms.clone());
    let id = f.issue(KG, "777888", Channel::Telegram, &[Channel::Sms]);
    let w = f.worker(senders, RetryPolicy::default());
    assert_eq!(w.run_once().await[0].2, Fate::Sent);
    f.clock.advance(Duration::minutes(11));
    let now = marque_domain::Clock::now(f.clock.as_ref());
    let report = DeliveryReport {
        provider_message_id: "telegram-kg-1".into(),
        status: ReportedStatus::Failed,
        error: Some("expired".into()),
    };
    assert!(
        f.store
            .store
            .record_report("telegram", &report, now)
            .unwrap()
    );
    assert_eq!(f.delivery(&id).status, DeliveryState::Failed);
    assert!(f.store.outbox()[0].scrubbed());
    assert!(w.run_once().await.is_empty());
    assert!(sms.sent().is_empty());
}

/// Twilio's fake: 503 while `down`, else 201 with a fresh `sid`; counts accepted messages per
/// recipient.
#[derive(Clone, Default)]
struct Outage {
    down: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
}

impl Respond for Outage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(503).set_body_json(serde_json::json!({
                "code": 20503, "message": "Service unavailable", "status": 503
            }));
        }
        let to = url::form_urlencoded::parse(&request.body)
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let mut accepted = self.accepted.lock().unwrap();
        accepted.push(to.clone());
        ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "sid": format!("SM{:032}", accepted.len()), "to": to, "status": "queued"
        }))
    }
}

#[tokio::test]
async fn a_thirty_second_provider_outage_loses_nothing_and_sends_each_message_once() {
    let f = Fixture::new();
    let server = MockServer::start().await;
    let outage = Outage::default();
    outage.down.store(true, Ordering::SeqCst);
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(outage.clone())
        .mount(&server)
        .await;
    let twilio = Arc::new(Twilio::new(
        TwilioConfig {
            base_url: server.uri(),
            account_sid: "AC123".into(),
            auth_token: SecretString::from("token"),
            from: TwilioFrom::Number("+15005550006".into()),
            status_callback: None,
        },
        marque_messaging::provider_client().unwrap(),
    ));
    let numbers: Vec<String> = (0..6).map(|i| format!("+99650532531{i}")).collect();
    for n in &numbers {
        f.issue(n, "424242", Channel::Sms, &[]);
    }
    let w = f.worker(
        Senders::default().with(Market::Kg, Channel::Sms, twilio),
        RetryPolicy::default(),
    );
    // 30 s of 503s, a second at a time; messages accepted during the outage are retried.
    for _ in 0..30 {
        for (_, _, fate) in w.run_once().await {
            assert_eq!(fate, Fate::Retry);
        }
        f.clock.advance(Duration::seconds(1));
    }
    assert!(outage.refused.load(Ordering::SeqCst) >= numbers.len() * 3);
    assert!(outage.accepted.lock().unwrap().is_empty());
    outage.down.store(false, Ordering::SeqCst);
    // The backoff is at most 60 s: within two minutes every message goes out.
    for _ in 0..120 {
        w.run_once().await;
        f.clock.advance(Duration::seconds(1));
    }
    let mut accepted = outage.accepted.lock().unwrap().clone();
    accepted.sort();
    assert_eq!(accepted, numbers, "each message exactly once");
    let rows = f.store.outbox();
    assert!(
        rows.iter().all(|r| r.status == "sent" && r.scrubbed()),
        "{rows:?}"
    );
    let mut ids: Vec<_> = rows
        .iter()
        .map(|r| r.provider_message_id.clone().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), numbers.len());
}

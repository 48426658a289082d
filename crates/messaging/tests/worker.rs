//! The outbox worker over the real store (a SQLite file), with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use marque_domain::{
    Accepted, AuthRepository, Channel, DeliveryError, IssueChallenge, MessageSender,
    NewOutboxMessage, OtpPayload, OutboxRepository, OutgoingMessage, PayloadSealer, ThreadCsprng,
};
use marque_markets::{Market, OtpCode, OtpPurpose, PhoneNumber};
use marque_messaging::{Fate, MessageTemplates, OutboxWorker, Senders, WorkerConfig, WorkerDeps};
use marque_testkit::{FixedRandom, ManualClock, TestStore};

/// Fails with the scripted errors first, then succeeds.
struct Scripted {
    failures: Mutex<Vec<DeliveryError>>,
    sent: Mutex<Vec<OutgoingMessage>>,
}

#[async_trait::async_trait]
impl MessageSender for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        if let Some(e) = self.failures.lock().unwrap().pop() {
            return Err(e);
        }
        self.sent.lock().unwrap().push(m.clone());
        Ok(Accepted {
            provider_message_id: Some("SM1".into()),
        })
    }
}

impl Fixture {
    /// Runs the worker once: the message must end as `status` after `attempts` failed tries,
    /// scrubbed, and never reach the sender.
    async fn run_once_unsent(&self, status: &str, attempts: i32) {
        self.worker.run_once().await;
        assert_eq!(
            self.outbox_statuses(),
            vec![(status.to_owned(), attempts, true)]
        );
        assert!(self.sender.sent.lock().unwrap().is_empty());
    }

    /// Status, failed attempts and whether the body is scrubbed, of every message.
    fn outbox_statuses(&self) -> Vec<(String, i32, bool)> {
        self.store
            .outbox()
            .iter()
            .map(|r| (r.status.clone(), r.attempts, r.scrubbed()))
            .collect()
    }
}

struct Fixture {
    store: TestStore,
    clock: Arc<ManualClock>,
    sender: Arc<Scripted>,
    worker: OutboxWorker,
}

fn payload() -> Vec<u8> {
    OtpPayload {
        code: OtpCode::parse("123456").unwrap(),
        purpose: OtpPurpose::Login,
        ttl_minutes: 10,
    }
    .encode()
}

fn fixture(failures: Vec<DeliveryError>) -> Fixture {
    let sealer = PayloadSealer::from_secret(b"k");
    let store = TestStore::sqlite(Market::Kg);
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let sender = Arc::new(Scripted {
        failures: Mutex::new(failures),
        sent: Mutex::default(),
    });
    let now = marque_domain::Clock::now(clock.as_ref());
    store
        .store
        .issue_challenge(IssueChallenge {
            phone: PhoneNumber::parse("+996505325311", None).unwrap(),
            code_hash: vec![1],
            purpose: marque_domain::OtpPurpose::Login,
            challenge_id: "c1".to_owned(),
            channel: Channel::Sms,
            check_lock: true,
            now,
            expires_at: now + Duration::minutes(10),
            client_ip: None,
            limits: vec![],
            outbox: Some(NewOutboxMessage {
                channel: Channel::Sms,
                fallback: vec![],
                recipient: "+996505325311".into(),
                sealed_body: sealer.seal(&payload(), &ThreadCsprng),
                expires_at: now + Duration::minutes(10),
            }),
            sms: None,
        })
        .unwrap();
    let repos: Vec<Arc<dyn OutboxRepository>> = vec![store.repo()];
    let worker = OutboxWorker::new(
        repos,
        Senders::everywhere(sender.clone()),
        WorkerDeps {
            templates: MessageTemplates::default(),
            sealer,
            clock: clock.clone(),
            rng: Arc::new(FixedRandom::new(1)),
        },
        WorkerConfig::default(),
    );
    Fixture {
        store,
        clock,
        sender,
        worker,
    }
}

#[tokio::test]
async fn delivers_opens_and_scrubs() {
    let f = fixture(vec![]);
    assert_eq!(f.worker.run_once().await.len(), 1);
    let sent = f.sender.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].text,
        "Marque: ваш код 123456. Действует 10 мин. Никому не сообщайте."
    );
    assert_eq!(sent[0].code.as_str(), "123456");
    assert_eq!(sent[0].id, "kg-1");
    assert_eq!(sent[0].market, Market::Kg);
    assert_eq!(f.outbox_statuses(), vec![("sent".to_owned(), 0, true)]);
    let row = &f.store.outbox()[0];
    assert_eq!(row.provider.as_deref(), Some("scripted"));
    assert_eq!(row.provider_message_id.as_deref(), Some("SM1"));
    assert_eq!(row.segments, Some(1));
    assert!(
        f.worker.run_once().await.is_empty(),
        "a sent message is not sent again"
    );
}

#[tokio::test]
async fn transient_failures_back_off_then_succeed() {
    let f = fixture(vec![DeliveryError::Transient("503".into())]);
    f.worker.run_once().await;
    assert_eq!(f.outbox_statuses(), vec![("pending".to_owned(), 1, false)]);
    assert!(
        f.worker.run_once().await.is_empty(),
        "not due before the backoff"
    );
    f.clock.advance(Duration::seconds(2));
    assert_eq!(f.worker.run_once().await, vec![(Market::Kg, 1, Fate::Sent)]);
    assert_eq!(f.outbox_statuses(), vec![("sent".to_owned(), 1, true)]);
}

#[tokio::test]
async fn permanent_failure_gives_up_and_scrubs() {
    let f = fixture(vec![DeliveryError::Permanent("bad number".into())]);
    f.run_once_unsent("failed", 1).await;
}

#[tokio::test]
async fn expired_messages_are_dropped_unsent() {
    let f = fixture(vec![]);
    f.clock.advance(Duration::minutes(10));
    f.run_once_unsent("expired", 0).await;
}

#[tokio::test]
async fn run_stops_on_cancel() {
    let f = fixture(vec![]);
    let token = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(f.worker.run(token.clone()));
    token.cancel();
    handle.await.unwrap();
    assert_eq!(
        f.sender.sent.lock().unwrap().len(),
        1,
        "the first batch completes"
    );
}

//! Emails (issue 10) through a real SMTP server started by the test (testkit's `SmtpServer`),
//! read back as a mail client would (mail-parser): alone, and through the outbox worker over the
//! real store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use mail_parser::{MessageParser, MimeHeaders as _};
use marque_domain::{
    Accepted, Channel, DeliveryError, EmailKind, EmailPayload, EmailSender, MessageSender,
    NewOutboxMessage, OtpPayload, OutboxRepository, OutgoingEmail, OutgoingMessage, PayloadSealer,
    SecretString, ThreadCsprng,
};
use marque_markets::{Market, OtpCode, OtpPurpose};
use marque_messaging::{
    EmailSenders, EmailTemplates, Fate, MessageTemplates, OutboxWorker, Senders, SmtpConfig,
    SmtpMailer, WorkerConfig, WorkerDeps,
};
use marque_testkit::{FixedRandom, ManualClock, SmtpServer, TestStore};

const FROM: &str = "Marque Shop <no-reply@shop.example>";
const BASE: &str = "https://auth.shop.example";

fn mailer(url: &str) -> SmtpMailer {
    SmtpMailer::new(&SmtpConfig {
        url: SecretString::from(url.to_owned()),
        from: FROM.into(),
    })
    .unwrap()
}

fn payload(kind: EmailKind) -> EmailPayload {
    let (token, ttl_minutes) = match kind {
        EmailKind::VerifyAddress => ("vT0k-_verify", 1440),
        EmailKind::ResetPassword => ("rT0k-_reset", 60),
        _ => ("", 0),
    };
    EmailPayload {
        kind,
        token: token.into(),
        ttl_minutes,
    }
}

fn outgoing(market: Market, kind: EmailKind, id: &str) -> OutgoingEmail {
    let rendered = EmailTemplates::new("Marque Shop", BASE)
        .render(market.language(), &payload(kind))
        .unwrap();
    OutgoingEmail {
        id: id.into(),
        market,
        language: market.language(),
        kind,
        to: "ada@example.kg".into(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    }
}

/// CRLF line ends (as SMTP carries them) back to LF.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

#[tokio::test]
async fn every_kind_arrives_as_multipart_alternative_with_headers_bodies_and_link() {
    let server = SmtpServer::start();
    let smtp = mailer(&server.url());
    let mut n = 0;
    for market in Market::ALL {
        for kind in EmailKind::ALL {
            n += 1;
            let email = outgoing(market, kind, &format!("{}-{n}", market.code()));
            let accepted = smtp.send(&email).await.unwrap();
            assert_eq!(
                accepted.provider_message_id,
                Some(format!("marque.{}-{n}@shop.example", market.code()))
            );
            let captured = server.messages().pop().unwrap();
            assert_eq!(captured.from, "no-reply@shop.example");
            assert_eq!(captured.to, vec!["ada@example.kg".to_owned()]);
            let raw = String::from_utf8(captured.data.clone()).unwrap();
            assert!(
                raw.is_ascii(),
                "7-bit on the wire (RFC 2047 / transfer encodings)"
            );
            let msg = MessageParser::default().parse(&captured.data).unwrap();
            let from = msg.from().and_then(|a| a.first()).unwrap();
            assert_eq!(from.name(), Some("Marque Shop"));
            assert_eq!(from.address(), Some("no-reply@shop.example"));
            let to = msg.to().and_then(|a| a.first()).unwrap();
            assert_eq!(to.address(), Some("ada@example.kg"));
            assert_eq!(
                msg.subject(),
                Some(email.subject.as_str()),
                "decoded subject"
            );
            assert_eq!(
                msg.message_id(),
                Some(format!("marque.{}-{n}@shop.example", market.code()).as_str())
            );
            assert!(msg.date().is_some());
            let ct = msg.content_type().unwrap();
            assert_eq!(
                (ct.ctype(), ct.subtype()),
                ("multipart", Some("alternative"))
            );
            let text = msg.body_text(0).unwrap();
            let html = msg.body_html(0).unwrap();
            assert_eq!(lf(&text), lf(&email.text));
            assert_eq!(lf(&html), lf(&email.html));
            match kind {
                EmailKind::VerifyAddress | EmailKind::ResetPassword => {
                    let path = if kind == EmailKind::VerifyAddress {
                        "verify?token=vT0k-_verify"
                    } else {
                        "reset-password?token=rT0k-_reset"
                    };
                    let link = format!("{BASE}/api/v1/auth/email/{path}");
                    assert_eq!(text.matches(&link).count(), 1, "{text}");
                }
                _ => assert!(!text.contains("token="), "{text}"),
            }
            let cyrillic = msg
                .subject()
                .unwrap()
                .chars()
                .any(|c| ('а'..='я').contains(&c));
            assert_eq!(cyrillic, market == Market::Kg);
        }
    }
    assert_eq!(server.messages().len(), 8);
}

#[tokio::test]
async fn smtp_replies_map_to_transient_and_permanent_failures() {
    let server = SmtpServer::start();
    let smtp = mailer(&server.url());
    let email = outgoing(Market::Us, EmailKind::VerifyAddress, "us-1");
    server.reply_to_next_rcpt(451, "4.3.0 try again later");
    let e = smtp.send(&email).await.unwrap_err();
    assert_eq!(e, DeliveryError::Transient("SMTP 451 reply".into()));
    server.reply_to_next_rcpt(550, "5.1.1 no such user ada@example.kg");
    let e = smtp.send(&email).await.unwrap_err();
    assert_eq!(e, DeliveryError::Permanent("SMTP 550 reply".into()));
    assert!(server.messages().is_empty());
    smtp.send(&email).await.unwrap();
    assert_eq!(
        server.messages().len(),
        1,
        "the pooled connection still works"
    );

    // Nobody listening: a connection failure, worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = mailer(&format!("smtp://127.0.0.1:{port}"))
        .send(&email)
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Transient(_)), "{e:?}");
}

#[tokio::test]
async fn credentials_from_the_url_are_used_and_a_refusal_is_permanent() {
    let server = SmtpServer::with_credentials("mailer", "s3cret p@ss");
    let email = outgoing(Market::Us, EmailKind::PasswordChanged, "us-2");
    let good = format!("smtp://mailer:s3cret%20p%40ss@127.0.0.1:{}", server.port());
    mailer(&good).send(&email).await.unwrap();
    assert_eq!(server.messages().len(), 1);
    let bad = format!("smtp://mailer:wrong-hunter2@127.0.0.1:{}", server.port());
    let e = mailer(&bad).send(&email).await.unwrap_err();
    assert_eq!(e, DeliveryError::Permanent("SMTP 535 reply".into()));
    assert!(!format!("{e}").contains("hunter2"));
    assert_eq!(server.messages().len(), 1);
}

/// TLS modes come from `SMTP_URL` through lettre's parser: against a server without TLS,
/// `smtps://` fails the handshake and `?tls=required` refuses to go on without STARTTLS — and
/// neither sends anything in clear. (A successful handshake is not tested: no TLS server here.)
#[tokio::test]
async fn tls_modes_of_the_url_never_fall_back_to_plain_text() {
    let server = SmtpServer::start();
    let email = outgoing(Market::Kg, EmailKind::ResetPassword, "kg-3");
    let port = server.port();
    for url in [
        format!("smtps://u:p@127.0.0.1:{port}"),
        format!("smtp://u:p@127.0.0.1:{port}?tls=required"),
    ] {
        let e = mailer(&url).send(&email).await.unwrap_err();
        assert!(matches!(e, DeliveryError::Transient(_)), "{url}: {e:?}");
    }
    assert!(server.connections() >= 2, "both connected");
    assert!(server.messages().is_empty(), "nothing went out in clear");
    // Opportunistic STARTTLS goes on in clear when the server offers none.
    mailer(&format!("smtp://127.0.0.1:{port}?tls=opportunistic"))
        .send(&email)
        .await
        .unwrap();
    assert_eq!(server.messages().len(), 1);
}

/// With a certificate the client trusts, STARTTLS (`?tls=required`) and implicit TLS
/// (`smtps://`) complete their handshakes and the message goes over TLS; with the default trust
/// roots (what `SMTP_URL` alone gives) the self-signed certificate is refused and nothing is
/// sent.
#[tokio::test]
async fn starttls_and_implicit_tls_verify_the_certificate() {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let email = outgoing(Market::Us, EmailKind::VerifyAddress, "us-9");
    for (server, scheme, wrap) in [
        (SmtpServer::with_starttls(), "smtp", false),
        (SmtpServer::with_implicit_tls(), "smtps", true),
    ] {
        let port = server.port();
        let url = if wrap {
            format!("{scheme}://127.0.0.1:{port}")
        } else {
            format!("{scheme}://127.0.0.1:{port}?tls=required")
        };
        // Default roots: the self-signed certificate is refused before anything is sent.
        let e = mailer(&url).send(&email).await.unwrap_err();
        assert!(matches!(e, DeliveryError::Transient(_)), "{url}: {e:?}");
        assert!(server.messages().is_empty());

        let root = Certificate::from_der(server.certificate_der().unwrap()).unwrap();
        let params = TlsParameters::builder("127.0.0.1".into())
            .add_root_certificate(root)
            .build_rustls()
            .unwrap();
        let tls = if wrap {
            Tls::Wrapper(params)
        } else {
            Tls::Required(params)
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .unwrap()
            .tls(tls)
            .build();
        let trusting = SmtpMailer::with_transport(transport, FROM.parse().unwrap());
        trusting.send(&email).await.unwrap();
        let captured = server.messages();
        assert_eq!(captured.len(), 1, "{url}");
        assert!(captured[0].tls, "{url}: delivered over TLS");
        let msg = MessageParser::default().parse(&captured[0].data).unwrap();
        assert_eq!(msg.subject(), Some(email.subject.as_str()));
    }
}

/// Records what reaches it (an SMS provider that must never see an email).
#[derive(Default)]
struct SmsSpy {
    sent: Mutex<Vec<OutgoingMessage>>,
}

#[async_trait::async_trait]
impl MessageSender for SmsSpy {
    fn name(&self) -> &'static str {
        "spy"
    }
    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        self.sent.lock().unwrap().push(m.clone());
        Ok(Accepted::default())
    }
}

struct Fixture {
    store: TestStore,
    clock: Arc<ManualClock>,
    sealer: PayloadSealer,
    server: SmtpServer,
    sms: Arc<SmsSpy>,
    worker: OutboxWorker,
}

impl Fixture {
    fn new(email: bool) -> Self {
        Self::on(TestStore::sqlite(Market::Kg), email)
    }

    fn on(store: TestStore, email: bool) -> Self {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let server = SmtpServer::start();
        let sms = Arc::new(SmsSpy::default());
        let repos: Vec<Arc<dyn OutboxRepository>> = vec![store.repo()];
        let worker = OutboxWorker::new(
            repos,
            Senders::everywhere(sms.clone()),
            WorkerDeps {
                templates: MessageTemplates::default(),
                sealer: PayloadSealer::from_secret(b"k"),
                clock: clock.clone(),
                rng: Arc::new(FixedRandom::new(1)),
            },
            WorkerConfig::default(),
        );
        let senders = if email {
            EmailSenders::everywhere(Arc::new(mailer(&server.url())))
        } else {
            EmailSenders::default()
        };
        let worker = worker.with_email(EmailTemplates::new("Marque", BASE), senders);
        Self {
            store,
            clock,
            sealer: PayloadSealer::from_secret(b"k"),
            server,
            sms,
            worker,
        }
    }

    fn queue(&self, channel: Channel, body: &[u8]) {
        let now = marque_domain::Clock::now(self.clock.as_ref());
        self.store.queue_outbox(
            &NewOutboxMessage {
                channel,
                fallback: vec![],
                recipient: "ada@example.kg".into(),
                sealed_body: self.sealer.seal(body, &ThreadCsprng),
                expires_at: now + Duration::hours(24),
            },
            now,
        );
    }

    fn queue_email(&self, kind: EmailKind) {
        self.queue(Channel::Email, &payload(kind).encode());
    }

    /// Status, attempts, provider and last error of the only row.
    fn row(&self) -> (String, i32, Option<String>, Option<String>) {
        let rows = self.store.outbox();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.channel, "email");
        (
            r.status.clone(),
            r.attempts,
            r.provider.clone(),
            r.last_error.clone(),
        )
    }
}

#[tokio::test]
async fn the_worker_renders_in_the_market_language_and_sends_over_smtp() {
    sends_an_email_row(Fixture::new(true)).await;
}

#[tokio::test]
async fn the_worker_sends_email_rows_from_postgresql_too() {
    let Some(store) = TestStore::new(marque_testkit::Backend::Postgres, Market::Kg) else {
        return;
    };
    sends_an_email_row(Fixture::on(store, true)).await;
}

async fn sends_an_email_row(f: Fixture) {
    f.queue_email(EmailKind::VerifyAddress);
    assert_eq!(f.worker.run_once().await, vec![(Market::Kg, 1, Fate::Sent)]);
    let (status, attempts, provider, _) = f.row();
    assert_eq!((status.as_str(), attempts), ("sent", 0));
    assert_eq!(provider.as_deref(), Some("smtp"));
    let row = &f.store.outbox()[0];
    assert_eq!(row.segments, None);
    assert!(row.scrubbed(), "the sealed link is gone once sent");
    assert_eq!(
        row.provider_message_id.as_deref(),
        Some("marque.kg-1@shop.example")
    );
    let captured = f.server.messages();
    assert_eq!(captured.len(), 1);
    let msg = MessageParser::default().parse(&captured[0].data).unwrap();
    assert_eq!(
        msg.subject(),
        Some("Подтвердите адрес электронной почты для Marque")
    );
    let text = msg.body_text(0).unwrap();
    assert!(
        text.contains("https://auth.shop.example/api/v1/auth/email/verify?token=vT0k-_verify"),
        "{text}"
    );
    assert!(f.sms.sent.lock().unwrap().is_empty());
    assert!(f.worker.run_once().await.is_empty(), "not sent twice");
    // The admin view reads the email row back (the stored channel `email`).
    let query = marque_domain::OutboxQuery {
        status: None,
        limit: 10,
    };
    let rows = marque_domain::AdminRepository::outbox_rows(&f.store.store, &query).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].channel, Channel::Email);
    assert_eq!(rows[0].status, "sent");
}

#[tokio::test]
async fn a_451_is_retried_with_backoff_and_then_delivered() {
    let f = Fixture::new(true);
    f.queue_email(EmailKind::ResetPassword);
    f.server
        .reply_to_next_rcpt(451, "4.7.1 greylisted, try again");
    assert_eq!(
        f.worker.run_once().await,
        vec![(Market::Kg, 1, Fate::Retry)]
    );
    let (status, attempts, _, error) = f.row();
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert_eq!(
        error.as_deref(),
        Some("transient delivery failure: SMTP 451 reply")
    );
    assert!(
        f.worker.run_once().await.is_empty(),
        "not due before the backoff"
    );
    f.clock.advance(Duration::seconds(2));
    assert_eq!(f.worker.run_once().await, vec![(Market::Kg, 1, Fate::Sent)]);
    assert_eq!(f.row().0, "sent");
    assert_eq!(f.server.messages().len(), 1);
}

#[tokio::test]
async fn a_550_is_a_dead_letter_without_fallback() {
    let f = Fixture::new(true);
    f.queue_email(EmailKind::VerifyAddress);
    f.server
        .reply_to_next_rcpt(550, "5.1.1 mailbox unavailable");
    assert_eq!(
        f.worker.run_once().await,
        vec![(Market::Kg, 1, Fate::GivenUp)]
    );
    let (status, attempts, _, error) = f.row();
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert_eq!(
        error.as_deref(),
        Some("permanent delivery failure: SMTP 550 reply")
    );
    assert!(f.store.outbox()[0].scrubbed());
    assert!(f.server.messages().is_empty());
    assert!(f.sms.sent.lock().unwrap().is_empty(), "no SMS fallback");
}

#[tokio::test]
async fn without_a_transport_for_the_market_an_email_is_a_dead_letter() {
    let f = Fixture::new(false);
    f.queue_email(EmailKind::PasswordChanged);
    assert_eq!(
        f.worker.run_once().await,
        vec![(Market::Kg, 1, Fate::GivenUp)]
    );
    assert!(f.sms.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn channels_and_payloads_never_cross() {
    // A code on the email channel: not sent anywhere.
    let f = Fixture::new(true);
    let code = OtpPayload {
        code: OtpCode::parse("123456").unwrap(),
        purpose: OtpPurpose::Login,
        ttl_minutes: 10,
    };
    f.queue(Channel::Email, &code.encode());
    assert_eq!(
        f.worker.run_once().await,
        vec![(Market::Kg, 1, Fate::GivenUp)]
    );
    assert!(f.server.messages().is_empty());
    assert!(f.sms.sent.lock().unwrap().is_empty());

    // An email payload on the SMS channel: not sent anywhere either.
    let f = Fixture::new(true);
    f.queue(Channel::Sms, &payload(EmailKind::ResetPassword).encode());
    assert_eq!(
        f.worker.run_once().await,
        vec![(Market::Kg, 1, Fate::GivenUp)]
    );
    assert!(f.server.messages().is_empty());
    assert!(f.sms.sent.lock().unwrap().is_empty());
}

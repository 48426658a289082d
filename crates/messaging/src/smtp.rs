//! Email transport (issue 10): SMTP submission with lettre. The development console is
//! [`crate::ConsoleSender`].

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use marque_domain::{
    Accepted, DeliveryError, EmailSender, ExposeSecret, OutgoingEmail, SecretString,
};

use crate::PROVIDER_TIMEOUT;

/// Settings of the SMTP transport.
#[derive(Clone)]
pub struct SmtpConfig {
    /// `SMTP_URL` in lettre's URL form: `smtps://user:pass@host:465` (implicit TLS, RFC 8314),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS, RFC 3207), `smtp://host:25` (a local
    /// relay, no TLS). User and password percent-encoded. A secret: it holds the credentials.
    pub url: SecretString,
    /// `SMTP_FROM`: the sender mailbox, `Marque <no-reply@shop.example>` or a bare address.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &"[REDACTED]")
            .field("from", &self.from)
            .finish()
    }
}

/// Why the SMTP settings were refused. The texts never quote `SMTP_URL` (it holds credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpConfigError {
    /// `SMTP_URL` is not a URL lettre accepts; the reason, without the URL.
    Url(String),
    /// `SMTP_FROM` is not a mailbox (`Name <address>` or `address`).
    From,
}

impl std::fmt::Display for SmtpConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(why) => write!(
                f,
                "not an SMTP URL (smtps://user:pass@host:465, \
                 smtp://user:pass@host:587?tls=required or smtp://host:25): {why}"
            ),
            Self::From => {
                f.write_str("not a mailbox: expected `Name <address@domain>` or `address@domain`")
            }
        }
    }
}

impl std::error::Error for SmtpConfigError {}

impl SmtpConfig {
    /// Parses `url` with lettre's own parser ([`AsyncSmtpTransport::from_url`]), and the sender.
    fn parse(&self) -> Result<(AsyncSmtpTransportBuilder, Mailbox), SmtpConfigError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose_secret())
            // lettre's URL errors name the scheme or the parse failure, never the credentials.
            .map_err(|e| SmtpConfigError::Url(e.to_string()))?;
        let from = self
            .from
            .trim()
            .parse::<Mailbox>()
            .map_err(|_| SmtpConfigError::From)?;
        Ok((builder, from))
    }

    /// Checks `SMTP_URL` and `SMTP_FROM` without connecting (start-up).
    ///
    /// Errors: [`SmtpConfigError`].
    pub fn check(&self) -> Result<(), SmtpConfigError> {
        self.parse().map(|_| ())
    }
}

/// The SMTP transport (`EMAIL_PROVIDER=smtp`): lettre over rustls, pooled connections, a
/// [`PROVIDER_TIMEOUT`] per SMTP command.
///
/// Each email is `multipart/alternative` (plain text, then HTML; RFC 2046 §5.1.4), with
/// `From: SMTP_FROM`, `To`, `Subject` (RFC 2047-encoded when not ASCII), `Date` and
/// `Message-ID: <marque.{id}@{From's domain}>` — the same on every retry of one outbox row, so a
/// retried send is recognisable (RFC 5322 §3.6.4).
///
/// Sorting of failures: SMTP 5xx replies (550 no such mailbox, 535 rejected credentials, 554)
/// and a recipient the message builder refuses → [`DeliveryError::Permanent`]; 4xx replies (451,
/// 421, 452), connection failures, TLS failures and timeouts → [`DeliveryError::Transient`].
/// Error texts carry the reply code or the kind of failure, never credentials, addresses or
/// bodies.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// The transport of `config`. Call inside a Tokio runtime (the connection pool needs one).
    ///
    /// Errors: [`SmtpConfigError`] for a malformed `SMTP_URL` or `SMTP_FROM` (nothing connects
    /// yet: an unreachable server shows at the first send).
    pub fn new(config: &SmtpConfig) -> Result<Self, SmtpConfigError> {
        let (builder, from) = config.parse()?;
        Ok(Self::with_transport(
            builder.timeout(Some(PROVIDER_TIMEOUT)).build(),
            from,
        ))
    }

    /// A mailer on a transport built by the caller (tests: a custom trust root for TLS).
    pub fn with_transport(transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox) -> Self {
        let domain = from.email.domain().to_owned();
        Self {
            transport,
            from,
            domain,
        }
    }

    /// The `Message-ID` of `email`: `<marque.{id}@{domain}>`.
    pub fn message_id(&self, email: &OutgoingEmail) -> String {
        format!("<marque.{}@{}>", email.id, self.domain)
    }

    /// The message `email` becomes.
    ///
    /// Errors: [`DeliveryError::Permanent`] when the recipient is not an address.
    pub fn message(&self, email: &OutgoingEmail) -> Result<Message, DeliveryError> {
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|_| DeliveryError::Permanent("recipient is not an email address".into()))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(self.message_id(email)))
            .date_now()
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| DeliveryError::Permanent(format!("message not built: {e}")))
    }
}

/// The outbox's reading of an SMTP failure.
fn smtp_error(e: &lettre::transport::smtp::Error) -> DeliveryError {
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        DeliveryError::Permanent(format!("SMTP {} reply", code.as_deref().unwrap_or("5xx")))
    } else if e.is_transient() {
        DeliveryError::Transient(format!("SMTP {} reply", code.as_deref().unwrap_or("4xx")))
    } else if e.is_timeout() {
        DeliveryError::Transient("SMTP timeout".into())
    } else if e.is_tls() {
        DeliveryError::Transient("SMTP TLS handshake failed".into())
    } else {
        // Connection refused or reset, an unreadable reply, a closed pool: worth retrying. The
        // source is an I/O error at most (no credentials, no addresses).
        let cause = std::error::Error::source(e).map_or_else(String::new, |s| format!(": {s}"));
        DeliveryError::Transient(format!("SMTP connection failed{cause}"))
    }
}

#[async_trait::async_trait]
impl EmailSender for SmtpMailer {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, DeliveryError> {
        let message = self.message(email)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| smtp_error(&e))?;
        let id = self.message_id(email);
        Ok(Accepted {
            provider_message_id: Some(id.trim_matches(['<', '>']).to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, from: &str) -> SmtpConfig {
        SmtpConfig {
            url: SecretString::from(url.to_owned()),
            from: from.into(),
        }
    }

    #[test]
    fn urls_are_read_by_lettre_and_never_quoted() {
        let from = "Marque <no-reply@shop.example>";
        for url in [
            "smtps://user:p%40ss@mail.example:465",
            "smtps://mail.example",
            "smtp://user:pass@mail.example:587?tls=required",
            "smtp://mail.example?tls=opportunistic",
            "smtp://127.0.0.1:25",
        ] {
            assert_eq!(config(url, from).check(), Ok(()), "{url}");
        }
        for bad in [
            "http://user:hunter2@mail.example",
            "smtp://user:hunter2@mail.example?tls=maybe",
            "user:hunter2@mail.example",
            "",
        ] {
            let err = config(bad, from).check().unwrap_err();
            assert!(matches!(err, SmtpConfigError::Url(_)), "{bad}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        assert_eq!(
            config("smtp://127.0.0.1:25", "not a mailbox").check(),
            Err(SmtpConfigError::From)
        );
        assert_eq!(
            config("smtp://127.0.0.1:25", "no-reply@shop.example").check(),
            Ok(())
        );
        let shown = format!("{:?}", config("smtps://u:hunter2@h", from));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

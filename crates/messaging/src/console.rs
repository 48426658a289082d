use std::io::Write;
use std::sync::Mutex;

use marque_domain::{
    Accepted, DeliveryError, EmailSender, MessageSender, OutgoingEmail, OutgoingMessage,
};

/// Development provider of codes and emails (`SMS_PROVIDER=console`, `EMAIL_PROVIDER=console`,
/// the defaults), writing to stdout (or any writer, for tests).
///
/// A code is one line,
/// `[console sms] to=+996505325311 market=kg text=Marque: ваш код 123456…`; an email is its
/// recipient and subject, then its plain-text body indented (so the link is there to click):
///
/// ```text
/// [console email] to=ada@example.com market=us kind=verify subject=Confirm your email address for Marque
///     A Marque account was created with this email address. …
///     https://auth.example/api/v1/auth/email/verify?token=…
/// ```
///
/// Never use it in production: codes and links print in clear (production refuses it).
pub struct ConsoleSender {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for ConsoleSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleSender")
    }
}

impl Default for ConsoleSender {
    fn default() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }
}

impl ConsoleSender {
    /// A console sender writing to `out` instead of stdout.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// Writes `block` in one piece (messages of concurrent deliveries never interleave).
    fn write(&self, block: &str) -> Result<Accepted, DeliveryError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(block.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| DeliveryError::Transient(format!("stdout: {e}")))?;
        Ok(Accepted::default())
    }
}

#[async_trait::async_trait]
impl MessageSender for ConsoleSender {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        // Keep the message on one line whatever its text holds.
        let text = m.text.replace(['\n', '\r'], " ");
        self.write(&format!(
            "[console {}] to={} market={} text={}\n",
            m.channel.as_str(),
            m.recipient,
            m.market.code(),
            text
        ))
    }
}

#[async_trait::async_trait]
impl EmailSender for ConsoleSender {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, DeliveryError> {
        let mut block = format!(
            "[console email] to={} market={} kind={} subject={}\n",
            email.to,
            email.market.code(),
            email.kind.as_str(),
            email.subject.replace(['\n', '\r'], " ")
        );
        for line in email.text.lines() {
            block.push_str("    ");
            block.push_str(line);
            block.push('\n');
        }
        self.write(&block)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use marque_domain::{Channel, EmailKind};
    use marque_markets::{Market, OtpCode, OtpPurpose};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn one_line_with_recipient_and_text() {
        let buf = Shared::default();
        let s = ConsoleSender::to_writer(Box::new(buf.clone()));
        let m = OutgoingMessage {
            id: "kg-1".into(),
            channel: Channel::Sms,
            market: Market::Kg,
            language: Market::Kg.language(),
            recipient: "+996505325311".into(),
            code: OtpCode::parse("123456").unwrap(),
            purpose: OtpPurpose::Login,
            text: "Marque: ваш код 123456.\nНикому".into(),
            expires_at: chrono::DateTime::UNIX_EPOCH,
        };
        MessageSender::send(&s, &m).await.unwrap();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "[console sms] to=+996505325311 market=kg text=Marque: ваш код 123456. Никому\n"
        );
        assert!(!format!("{m:?}").contains("123456"));
    }

    #[tokio::test]
    async fn console_prints_recipient_subject_and_text_with_the_link() {
        let buf = Shared::default();
        let mailer = ConsoleSender::to_writer(Box::new(buf.clone()));
        let email = OutgoingEmail {
            id: "us-7".into(),
            market: Market::Us,
            language: Market::Us.language(),
            kind: EmailKind::VerifyAddress,
            to: "ada@example.com".into(),
            subject: "Confirm".into(),
            text: "Open:\nhttps://a.example/verify?token=abc\n".into(),
            html: "<p>x</p>".into(),
        };
        EmailSender::send(&mailer, &email).await.unwrap();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "[console email] to=ada@example.com market=us kind=verify subject=Confirm\n    \
             Open:\n    https://a.example/verify?token=abc\n"
        );
    }
}

use std::io::Write;
use std::sync::Mutex;

use marque_domain::{Accepted, DeliveryError, MessageSender, OutgoingMessage};

/// Development provider: writes each message as one line,
/// `[console sms] to=+996505325311 market=kg text=Marque: ваш код 123456…`, to stdout (or any
/// writer, for tests). Never use it in production: codes are printed in clear.
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
}

#[async_trait::async_trait]
impl MessageSender for ConsoleSender {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, m: &OutgoingMessage) -> Result<Accepted, DeliveryError> {
        // Keep the message on one line whatever its text holds.
        let text = m.text.replace(['\n', '\r'], " ");
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(
            out,
            "[console {}] to={} market={} text={}",
            m.channel.as_str(),
            m.recipient,
            m.market.code(),
            text
        )
        .and_then(|()| out.flush())
        .map_err(|e| DeliveryError::Transient(format!("stdout: {e}")))?;
        Ok(Accepted::default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use marque_domain::Channel;
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
        s.send(&m).await.unwrap();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "[console sms] to=+996505325311 market=kg text=Marque: ваш код 123456. Никому\n"
        );
        assert!(!format!("{m:?}").contains("123456"));
    }
}

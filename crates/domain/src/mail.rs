//! Email delivery (issue 10): what the outbox keeps for an email, what a mail transport is handed,
//! and the transport trait.
//!
//! Emails go through the same outbox as codes (written in the transaction that creates the
//! token they carry, retried with backoff, dead-lettered), on the outbox channel
//! [`crate::Channel::Email`]. The outbox stores a sealed [`EmailPayload`] — the kind and the raw
//! link token — never a rendered body, so no link is readable at rest; the worker renders the
//! subject, plain-text and HTML bodies in the market's language and hands an [`OutgoingEmail`] to
//! the market's [`EmailSender`] (console or SMTP).

use marque_markets::{Language, Market};

use crate::{Accepted, DeliveryError};

/// What an email says (picks its templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    /// "Confirm your address": carries a verification link (`GET /api/v1/auth/email/verify`).
    VerifyAddress,
    /// "You already have an account": sent instead of a verification email when someone
    /// registers an address that exists (no account enumeration); no token, links to the
    /// password reset request.
    AlreadyRegistered,
    /// "Reset your password": carries a reset link (`GET /api/v1/auth/email/reset-password`).
    ResetPassword,
    /// "Your password was changed": no token.
    PasswordChanged,
}

impl EmailKind {
    /// Every kind.
    pub const ALL: [EmailKind; 4] = [
        EmailKind::VerifyAddress,
        EmailKind::AlreadyRegistered,
        EmailKind::ResetPassword,
        EmailKind::PasswordChanged,
    ];

    /// Stored text: `verify`, `exists`, `reset`, `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyAddress => "verify",
            Self::AlreadyRegistered => "exists",
            Self::ResetPassword => "reset",
            Self::PasswordChanged => "changed",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether emails of this kind carry a link token.
    pub fn has_token(self) -> bool {
        matches!(self, Self::VerifyAddress | Self::ResetPassword)
    }
}

/// The third kind of outbox payload (after [`crate::OtpPayload`] and [`crate::ReplyPayload`]):
/// an email to render. Stored form: `e1:<kind>:<ttl minutes>:<token>` (the token empty for kinds
/// without one). `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailPayload {
    /// What the email says.
    pub kind: EmailKind,
    /// The raw link token (URL-safe base64, ≥ 128 bits of entropy) for
    /// [`EmailKind::has_token`] kinds; empty otherwise. Only its keyed hash is stored elsewhere.
    pub token: String,
    /// The link's lifetime in minutes at issue (the "valid for" line of the templates); 0 for
    /// kinds without a link.
    pub ttl_minutes: u32,
}

impl std::fmt::Debug for EmailPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailPayload")
            .field("kind", &self.kind)
            .field("token", &"[REDACTED]")
            .field("ttl_minutes", &self.ttl_minutes)
            .finish()
    }
}

impl EmailPayload {
    /// The bytes to seal.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "e1:{}:{}:{}",
            self.kind.as_str(),
            self.ttl_minutes,
            self.token
        )
        .into_bytes()
    }

    /// Parses opened bytes; `None` for anything else (another payload kind).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        let rest = s.strip_prefix("e1:")?;
        let mut parts = rest.splitn(3, ':');
        let kind = EmailKind::parse(parts.next()?)?;
        let ttl_minutes = parts.next()?.parse().ok()?;
        let token = parts.next()?.to_owned();
        if kind.has_token() == token.is_empty() {
            return None;
        }
        Some(Self {
            kind,
            token,
            ttl_minutes,
        })
    }
}

/// An email ready for a transport. `Debug` hides the bodies (they hold links with tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Stable id of the message, the same on every retry (`kg-42`: market and outbox row); SMTP
    /// transports derive the `Message-ID` from it so a retried send is recognisable.
    pub id: String,
    /// Market of the recipient.
    pub market: Market,
    /// Language of the text (the market's).
    pub language: Language,
    /// What the email says.
    pub kind: EmailKind,
    /// Recipient address (as stored: trimmed, domain lower-cased).
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (no external resources).
    pub html: String,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("id", &self.id)
            .field("market", &self.market)
            .field("kind", &self.kind)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &"[REDACTED]")
            .field("html", &"[REDACTED]")
            .finish()
    }
}

/// A mail transport (`console`, `smtp`).
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync {
    /// Transport name for logs, metrics and the stored `provider` column.
    fn name(&self) -> &'static str;

    /// Hands one email to the transport.
    ///
    /// Errors: [`DeliveryError::Transient`] (connection failures, SMTP 4xx replies: retried with
    /// backoff) or [`DeliveryError::Permanent`] (SMTP 5xx replies such as 550 no such user,
    /// rejected credentials: dead letter).
    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, DeliveryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_refuses_other_kinds() {
        for kind in EmailKind::ALL {
            let p = EmailPayload {
                kind,
                token: if kind.has_token() {
                    "tok:en".into()
                } else {
                    String::new()
                },
                ttl_minutes: if kind.has_token() { 1440 } else { 0 },
            };
            assert_eq!(EmailPayload::decode(&p.encode()), Some(p.clone()));
            assert!(!format!("{p:?}").contains("tok:en"));
        }
        assert_eq!(EmailPayload::decode(b"v1:login:10:123456"), None);
        assert_eq!(EmailPayload::decode(b"e1:verify:1440:"), None);
        assert_eq!(EmailPayload::decode(b"e1:changed:0:x"), None);
    }
}

//! Refresh tokens and session lifetime rules.
//!
//! Refresh tokens are opaque: `mrt_<market>_<43 base64url characters>` carrying 256 bits from
//! the CSPRNG; the market prefix routes a refresh to the right database. Only their SHA-256 is
//! stored (the token has full entropy, so no key or slow hash is needed). Each use rotates the
//! token; presenting a rotated token again is treated as theft and revokes the whole session
//! (RFC 6819 §5.2.2.3; OAuth 2.0 Security BCP, RFC 9700 §4.14.2) — except within a short grace
//! window, where a client's concurrent retry gets the same successor instead of a logout.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use marque_markets::Market;
use sha2::{Digest, Sha256};

use crate::RandomSource;

const PREFIX: &str = "mrt_";

/// A new refresh token for `market`: its text (given to the client once) and its hash (stored).
pub fn generate(market: Market, rng: &dyn RandomSource) -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let token = format!(
        "{PREFIX}{}_{}",
        market.code(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash(&token);
    (token, hash)
}

/// SHA-256 of a refresh token's text.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The market named by a refresh token, if it is shaped like one of ours.
pub fn market_of(token: &str) -> Option<Market> {
    let rest = token.strip_prefix(PREFIX)?;
    let (market, secret) = rest.split_once('_')?;
    if secret.len() != 43
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    market.parse().ok()
}

/// When a session ends unless refreshed again: `idle` after `now`, but never later than
/// `max_lifetime` after it began.
pub fn session_deadline(
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    idle: Duration,
    max_lifetime: Duration,
) -> DateTime<Utc> {
    (now + idle).min(created_at + max_lifetime)
}

/// What the store knows about a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState {
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// When it was rotated, if it was.
    pub rotated_at: Option<DateTime<Utc>>,
    /// Whether its successor exists, is itself unrotated, and its sealed text is kept.
    pub successor_replayable: bool,
}

/// What the store knows about the token's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    /// Revoked (logout, reuse, deletion).
    pub revoked: bool,
    /// When the session ends unless refreshed.
    pub expires_at: DateTime<Utc>,
}

/// The verdict on a refresh attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshJudgement {
    /// Unused token of a live session: rotate it.
    Rotate,
    /// Rotated within the grace window and its successor is unused: hand out that successor.
    Replay,
    /// Rotated token presented again: revoke the session.
    Reuse,
    /// Unknown token, or its session or itself has ended.
    Invalid,
}

/// Judges a refresh at `now`.
pub fn judge(
    token: Option<&RefreshState>,
    session: Option<&SessionState>,
    now: DateTime<Utc>,
    grace: Duration,
) -> RefreshJudgement {
    let (Some(t), Some(s)) = (token, session) else {
        return RefreshJudgement::Invalid;
    };
    if s.revoked || now >= s.expires_at || now >= t.expires_at {
        return RefreshJudgement::Invalid;
    }
    match t.rotated_at {
        None => RefreshJudgement::Rotate,
        Some(at) if now - at <= grace && t.successor_replayable => RefreshJudgement::Replay,
        Some(_) => RefreshJudgement::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::OsRandom;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn tokens_carry_256_bits_and_their_market() {
        let (a, ha) = generate(Market::Kg, &OsRandom);
        let (b, _) = generate(Market::Kg, &OsRandom);
        assert_ne!(a, b);
        assert!(a.starts_with("mrt_kg_"));
        assert_eq!(market_of(&a), Some(Market::Kg));
        assert_eq!(hash(&a), ha);
        assert_eq!(ha.len(), 32);
        assert_eq!(
            market_of("mrt_fr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            None
        );
        assert_eq!(market_of("mrt_us_short"), None);
        assert_eq!(market_of("eyJhbGciOi..."), None);
    }

    #[test]
    fn deadline_is_idle_capped_by_max_lifetime() {
        let idle = Duration::days(30);
        let max = Duration::days(90);
        assert_eq!(session_deadline(t(0), t(0), idle, max), t(0) + idle);
        assert_eq!(
            session_deadline(t(0), t(0) + Duration::days(80), idle, max),
            t(0) + max
        );
    }

    #[test]
    fn rotation_replay_reuse_invalid() {
        let grace = Duration::seconds(10);
        let live = SessionState {
            revoked: false,
            expires_at: t(1000),
        };
        let fresh = RefreshState {
            expires_at: t(1000),
            rotated_at: None,
            successor_replayable: false,
        };
        assert_eq!(
            judge(Some(&fresh), Some(&live), t(1), grace),
            RefreshJudgement::Rotate
        );
        let rotated = RefreshState {
            rotated_at: Some(t(5)),
            successor_replayable: true,
            ..fresh
        };
        assert_eq!(
            judge(Some(&rotated), Some(&live), t(15), grace),
            RefreshJudgement::Replay
        );
        assert_eq!(
            judge(Some(&rotated), Some(&live), t(16), grace),
            RefreshJudgement::Reuse
        );
        let used_successor = RefreshState {
            successor_replayable: false,
            ..rotated
        };
        assert_eq!(
            judge(Some(&used_successor), Some(&live), t(6), grace),
            RefreshJudgement::Reuse
        );
        let revoked = SessionState {
            revoked: true,
            ..live
        };
        assert_eq!(
            judge(Some(&fresh), Some(&revoked), t(1), grace),
            RefreshJudgement::Invalid
        );
        assert_eq!(
            judge(Some(&fresh), Some(&live), t(1000), grace),
            RefreshJudgement::Invalid
        );
        assert_eq!(judge(None, None, t(1), grace), RefreshJudgement::Invalid);
    }
}

//! Refresh tokens and session lifetime rules.
//!
//! Refresh tokens are opaque: `mrt_<market>_<43 base64url characters>` carrying 256 bits from
//! the CSPRNG; the market prefix routes a refresh to the right database. Only their SHA-256 is
//! stored (the token has full entropy, so no key or slow hash is needed). Each use rotates the
//! token; presenting a rotated token again is treated as theft and revokes the whole session
//! (RFC 6819 §5.2.2.3; OAuth 2.0 Security BCP, RFC 9700 §4.14.2) — except within a short grace
//! window, where the same client's concurrent retry gets the same successor instead of a logout.
//!
//! Nothing reversible is kept (RFC 9700 §4.14.2; issue 12 item 6): the successor of a token is
//! not stored, sealed or otherwise, but recomputed from the presented token with a keyed MAC
//! ([`RefreshKeys::successor`]), so only a holder of the presented token *and* the server key can
//! produce it. The rotated row keeps a MAC of the client that rotated it
//! ([`RefreshKeys::client_binding`]: user agent and IP prefix — IPv4 /24, IPv6 /64), never the
//! address or agent themselves; a replay inside the grace window from another client is reuse.

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use marque_markets::Market;
use sha2::{Digest, Sha256};

use crate::RandomSource;

const PREFIX: &str = "mrt_";

/// A new refresh token for `market`: its text (given to the client once) and its hash (stored).
pub fn generate(market: Market, rng: &dyn RandomSource) -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let token = token_text(market, &bytes);
    let hash = hash(&token);
    (token, hash)
}

fn token_text(market: Market, bytes: &[u8]) -> String {
    format!(
        "{PREFIX}{}_{}",
        market.code(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The refresh-token MAC key (HMAC-SHA256, RFC 2104), derived from `SECRET_KEY` with HKDF under
/// `marque/refresh-mac/v1` ([`crate::keys::KeyRing`]).
#[derive(Clone)]
pub struct RefreshKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for RefreshKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKeys([REDACTED])")
    }
}

impl RefreshKeys {
    /// Keys from a 32-byte HMAC key.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, purpose: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any size"));
        mac.update(purpose);
        for part in parts {
            // Length-prefixed, so no two different inputs give the same MAC input.
            mac.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The successor of `presented` when it is rotated: `HMAC(key, presented)` as a token of
    /// `market`. Deterministic, so a retry within the grace window gets the same successor
    /// without any copy of it being kept (RFC 9700 §4.14.2); 256 bits, like [`generate`].
    pub fn successor(&self, market: Market, presented: &str) -> (String, Vec<u8>) {
        let token = token_text(
            market,
            &self.mac(b"marque-refresh-successor", &[presented.as_bytes()]),
        );
        let hash = hash(&token);
        (token, hash)
    }

    /// What identifies the client for a replay: a MAC of its user agent and IP prefix
    /// ([`ip_prefix`]). Keyed, so the stored value does not reveal the address or agent.
    pub fn client_binding(&self, ip: Option<&str>, user_agent: Option<&str>) -> Vec<u8> {
        let prefix = ip.map_or_else(String::new, ip_prefix);
        self.mac(
            b"marque-refresh-client",
            &[prefix.as_bytes(), user_agent.unwrap_or("").as_bytes()],
        )
        .to_vec()
    }
}

/// The network a client address belongs to for refresh replays: IPv4 /24, IPv6 /64 (an
/// IPv4-mapped IPv6 address counts as IPv4). A client retrying within seconds keeps its
/// address, or at most moves within its carrier's NAT pool or its own /64 (privacy addresses,
/// RFC 8981); a thief elsewhere does not share the prefix. Text that is not an address stands for
/// itself.
pub fn ip_prefix(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(|a| a.to_canonical()) {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Err(_) => ip.to_owned(),
    }
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
    /// Whether its successor exists and is itself unrotated.
    pub successor_replayable: bool,
    /// Whether this attempt comes from the client that rotated it ([`RefreshKeys::client_binding`]).
    pub same_client: bool,
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
    /// Rotated within the grace window, its successor is unused and the same client asks: hand
    /// out that successor again.
    Replay,
    /// Rotated token presented again (after the grace window, or by another client): revoke the
    /// session.
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
        Some(at) if now - at <= grace && t.successor_replayable && t.same_client => {
            RefreshJudgement::Replay
        }
        Some(_) => RefreshJudgement::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ThreadCsprng;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn tokens_carry_256_bits_and_their_market() {
        let (a, ha) = generate(Market::Kg, &ThreadCsprng);
        let (b, _) = generate(Market::Kg, &ThreadCsprng);
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
            same_client: true,
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

    /// Issue 12 item 6: a replay inside the grace window from another client is reuse.
    #[test]
    fn replay_only_for_the_same_client() {
        let grace = Duration::seconds(10);
        let live = SessionState {
            revoked: false,
            expires_at: t(1000),
        };
        let rotated = RefreshState {
            expires_at: t(1000),
            rotated_at: Some(t(5)),
            successor_replayable: true,
            same_client: false,
        };
        assert_eq!(
            judge(Some(&rotated), Some(&live), t(6), grace),
            RefreshJudgement::Reuse
        );
    }

    #[test]
    fn successor_is_a_keyed_function_of_the_presented_token() {
        let k = RefreshKeys::from_key([1; 32]);
        let (a, _) = generate(Market::Kg, &ThreadCsprng);
        let (s1, h1) = k.successor(Market::Kg, &a);
        let (s2, _) = k.successor(Market::Kg, &a);
        assert_eq!(s1, s2);
        assert_eq!(hash(&s1), h1);
        assert_eq!(market_of(&s1), Some(Market::Kg));
        assert_ne!(
            RefreshKeys::from_key([2; 32]).successor(Market::Kg, &a).0,
            s1
        );
        assert_ne!(k.successor(Market::Kg, &s1).0, s1);
    }

    #[test]
    fn client_binding_by_agent_and_prefix() {
        let k = RefreshKeys::from_key([1; 32]);
        let b = |ip: &str, ua: &str| k.client_binding(Some(ip), Some(ua));
        assert_eq!(b("203.0.113.7", "app/1"), b("203.0.113.200", "app/1"));
        assert_eq!(b("203.0.113.7", "app/1"), b("::ffff:203.0.113.9", "app/1"));
        assert_ne!(b("203.0.113.7", "app/1"), b("203.0.114.7", "app/1"));
        assert_ne!(b("203.0.113.7", "app/1"), b("203.0.113.7", "app/2"));
        assert_eq!(b("2001:db8:1:2::1", "a"), b("2001:db8:1:2:ffff::9", "a"));
        assert_ne!(b("2001:db8:1:2::1", "a"), b("2001:db8:1:3::1", "a"));
        assert_eq!(ip_prefix("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(ip_prefix("10.1.2.3"), "10.1.2.0/24");
    }
}

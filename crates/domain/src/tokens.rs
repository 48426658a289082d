//! Access tokens: JWT (RFC 7519) in the access-token profile of RFC 9068 (`typ: at+jwt`, `sub`
//! unique for the issuer, `aud` when `JWT_AUDIENCE` is set, `nbf`), always signed with EdDSA over
//! Ed25519 (RFC 8037) with a `kid` header and a published JWKS (RFC 7517), so other services
//! verify by public key and never hold a key that mints tokens (RFC 8725 §3.5). The signing key
//! is `JWT_SIGNING_KEY_FILE`'s, or else derived from `SECRET_KEY` with HKDF
//! ([`crate::keys::KeyRing::jwt_signing_key`]). Verification is `marque-verify`'s, the same code
//! other services link.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use marque_markets::Market;
pub use marque_verify::AccessClaims;
use marque_verify::{ACCESS_TOKEN_TYPE, Verifier, VerifyError};

use crate::{KeyRing, SessionId, UserId};

/// Typed views of [`AccessClaims`] fields.
pub trait ClaimsExt {
    /// The user id from `sub` (`<market>:<id>`).
    fn user_id(&self) -> Result<UserId, TokenError>;
    /// The market from `market`.
    fn market(&self) -> Result<Market, TokenError>;
    /// The session id from `sid`.
    fn session_id(&self) -> SessionId;
    /// `exp` as a timestamp.
    fn expires_at(&self) -> DateTime<Utc>;
}

impl ClaimsExt for AccessClaims {
    fn user_id(&self) -> Result<UserId, TokenError> {
        self.local_user_id().map(UserId).ok_or(TokenError::Invalid)
    }

    fn market(&self) -> Result<Market, TokenError> {
        self.market.parse().map_err(|_| TokenError::Invalid)
    }

    fn session_id(&self) -> SessionId {
        SessionId(self.sid.clone())
    }

    fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or_default()
    }
}

/// Why a token was refused, or keys could not be loaded. Refusals are deliberately coarse:
/// clients get one `invalid_token` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, wrongly signed, unknown key, wrong issuer or algorithm.
    #[error("token is invalid")]
    Invalid,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// Key material is unusable (start-up configuration error).
    #[error("unusable signing key: {0}")]
    Key(String),
}

/// An Ed25519 key pair in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`) with its key id.
#[derive(Clone)]
pub struct Ed25519SigningKey {
    /// `kid` stamped in token headers and published in the JWKS.
    pub kid: String,
    /// `-----BEGIN PRIVATE KEY-----` PEM.
    pub private_pem: String,
}

impl std::fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A retired Ed25519 public key (SPKI PEM, `-----BEGIN PUBLIC KEY-----`): tokens it signed keep
/// verifying until they expire.
#[derive(Debug, Clone)]
pub struct Ed25519PublicKey {
    /// Its `kid`.
    pub kid: String,
    /// Public key PEM.
    pub public_pem: String,
}

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    header: Header,
    verifier: Verifier,
    jwks: JwkSet,
    issuer: String,
    audience: Option<String>,
    ttl: Duration,
    /// Tokens `verifier` has already checked (shared by clones, which keep the same keys).
    verified: Arc<VerifiedTokens>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("algorithm", &self.header.alg)
            .field("kid", &self.header.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn okp_jwk(kid: &str, public: &[u8; 32]) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
        }),
    }
}

impl TokenService {
    /// EdDSA with the Ed25519 key derived from `SECRET_KEY` ([`KeyRing::jwt_signing_key`]),
    /// used when no `JWT_SIGNING_KEY_FILE` is configured: every instance with the same secret
    /// signs with the same key, and the JWKS always publishes its public half.
    pub fn derived(keys: &KeyRing, issuer: impl Into<String>, ttl: Duration) -> Self {
        Self::ed25519(&keys.jwt_signing_key(), &[], issuer, ttl)
            .unwrap_or_else(|e| unreachable!("a derived Ed25519 key is always usable: {e}"))
    }

    /// EdDSA: signs with `signing`, verifies tokens of `signing` and of every `retired` key, and
    /// publishes all their public keys in [`TokenService::jwks`].
    ///
    /// Errors: [`TokenError::Key`] for unreadable PEM or duplicate key ids.
    pub fn ed25519(
        signing: &Ed25519SigningKey,
        retired: &[Ed25519PublicKey],
        issuer: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, TokenError> {
        let issuer = issuer.into();
        let key_err = |kid: &str, e: &dyn std::fmt::Display| TokenError::Key(format!("{kid}: {e}"));
        let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(&signing.private_pem)
            .map_err(|e| key_err(&signing.kid, &e))?;
        let encoding = EncodingKey::from_ed_pem(signing.private_pem.as_bytes())
            .map_err(|e| key_err(&signing.kid, &e))?;
        let mut publics = vec![(signing.kid.clone(), sk.verifying_key().to_bytes())];
        for r in retired {
            let vk = ed25519_dalek::VerifyingKey::from_public_key_pem(&r.public_pem)
                .map_err(|e| key_err(&r.kid, &e))?;
            if publics.iter().any(|(k, _)| *k == r.kid) {
                return Err(TokenError::Key(format!("duplicate key id `{}`", r.kid)));
            }
            publics.push((r.kid.clone(), vk.to_bytes()));
        }
        let jwks = JwkSet {
            keys: publics.iter().map(|(kid, pk)| okp_jwk(kid, pk)).collect(),
        };
        let verifier = Verifier::from_jwks(&jwks, issuer.clone())
            .map_err(|e| TokenError::Key(e.to_string()))?
            .with_max_lifetime(ttl.num_seconds());
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signing.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        Ok(Self {
            encoding,
            header,
            verifier,
            jwks,
            issuer,
            audience: None,
            ttl,
            verified: Arc::new(VerifiedTokens::new(VERIFIED_TOKENS_CAPACITY)),
        })
    }

    /// Stamps `aud` with `audience` (`JWT_AUDIENCE`, RFC 7519 §4.1.3) and accepts only tokens
    /// carrying it; `None` leaves `aud` out and unchecked.
    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        if let Some(aud) = &audience {
            self.verifier = self.verifier.with_audience(aud.clone());
        }
        // What the old verifier accepted, this one may not.
        self.verified = Arc::new(VerifiedTokens::new(VERIFIED_TOKENS_CAPACITY));
        self.audience = audience;
        self
    }

    /// Lifetime of issued tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The public verification keys (`GET /.well-known/jwks.json`).
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs a token for `user` in `market` bound to `session`, issued at `now`.
    pub fn issue(
        &self,
        user: UserId,
        market: Market,
        session: &SessionId,
        jti: String,
        now: DateTime<Utc>,
    ) -> (String, AccessClaims) {
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: AccessClaims::subject(market.code(), user.0),
            market: market.code().to_owned(),
            sid: session.0.clone(),
            jti,
            iat,
            nbf: iat,
            exp: (now + self.ttl).timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .unwrap_or_else(|e| unreachable!("signing with a validated key cannot fail: {e}"));
        (token, claims)
    }

    /// Checks signature, algorithm, key id, `typ`, issuer, audience (when configured), `nbf`,
    /// expiry (at `now`, no leeway), that `exp - iat` is within the configured lifetime, and that
    /// `sub` and `market` name a user of one of our markets.
    ///
    /// A token seen before skips the signature check ([`VerifiedTokens`]); the time checks run
    /// on every call.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError> {
        let refused = |e| match e {
            VerifyError::Expired => TokenError::Expired,
            VerifyError::Invalid | VerifyError::Key(_) => TokenError::Invalid,
        };
        let (claims, seen) = match self.verified.get(token) {
            Some(claims) => (claims, true),
            None => (self.verifier.verify_signed(token).map_err(refused)?, false),
        };
        let claims = self
            .verifier
            .check_at(claims, now.timestamp())
            .map_err(refused)?
            .claims;
        claims.market()?;
        if !seen {
            self.verified.insert(token, &claims, now.timestamp());
        }
        Ok(claims)
    }
}

/// How many verified access tokens [`TokenService::verify`] remembers: ~600 bytes each (token and
/// claims), so at most ~2.5 MB.
pub const VERIFIED_TOKENS_CAPACITY: usize = 4096;

/// Access tokens whose signature and time-independent claims were already checked, by token
/// text (issue 13: the Ed25519 verification was ~12 % of a profile read's CPU). A token presented
/// again skips only that: the time checks run on every use, and whether its **session** is still
/// active is read from the database on every request ([`crate::AuthService::signed_in`]), so
/// logout, password change and admin revocation refuse it at once on every instance, cached or
/// not (RFC 9700 §2.2.2 asks nothing less of revocation). Only tokens that passed every check are
/// kept, so nobody can fill it with invented ones; a token differing in any byte (a forged
/// signature on known claims) is a different key and is verified in full. When full, expired
/// entries go, and if that frees nothing, all of them (the next uses verify again).
#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    capacity: usize,
    by_token: RwLock<HashMap<Box<str>, AccessClaims>>,
}

impl VerifiedTokens {
    /// An empty set remembering at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            by_token: RwLock::new(HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified before (a poisoned lock counts as a miss).
    fn get(&self, token: &str) -> Option<AccessClaims> {
        self.by_token.read().ok()?.get(token).cloned()
    }

    /// Remembers `token`, verified with `claims`, at `now` (seconds since the Unix epoch).
    fn insert(&self, token: &str, claims: &AccessClaims, now: i64) {
        let Ok(mut map) = self.by_token.write() else {
            return;
        };
        if map.len() >= self.capacity {
            map.retain(|_, c| c.exp > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(token.into(), claims.clone());
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_token.read().map_or(0, |m| m.len())
    }

    /// Whether none is.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

    use super::*;

    fn svc(secret: &[u8]) -> TokenService {
        TokenService::derived(&KeyRing::derive(secret), "marque", Duration::minutes(30))
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    pub(crate) fn ed_key(seed: u8, kid: &str) -> (Ed25519SigningKey, Ed25519PublicKey) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let private_pem = sk.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public_pem = sk
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (
            Ed25519SigningKey {
                kid: kid.into(),
                private_pem,
            },
            Ed25519PublicKey {
                kid: kid.into(),
                public_pem,
            },
        )
    }

    #[test]
    fn issue_verify_and_expire() {
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let (tok, claims) = s.issue(
            UserId(7),
            Market::Kg,
            &SessionId("s1".into()),
            "j".into(),
            now(),
        );
        assert_eq!(claims.exp - claims.iat, 1800);
        let back = s.verify(&tok, now() + Duration::minutes(29)).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.user_id().unwrap(), UserId(7));
        assert_eq!(
            s.verify(&tok, now() + Duration::minutes(30)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            svc(b"another-secret-another-secret-xx").verify(&tok, now()),
            Err(TokenError::Invalid)
        );
        assert_eq!(s.verify("not.a.token", now()), Err(TokenError::Invalid));
        let other_iss = TokenService::derived(
            &KeyRing::derive(b"0123456789abcdef0123456789abcdef"),
            "x",
            Duration::minutes(30),
        );
        let (tok2, _) = other_iss.issue(
            UserId(7),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        assert_eq!(s.verify(&tok2, now()), Err(TokenError::Invalid));
        // The derived key's public half is always published (marque-verify always works).
        assert_eq!(s.jwks().keys.len(), 1);
    }

    /// Issue 13: a token seen before skips the signature check but never the clock, a token
    /// differing in one byte is verified in full, and a verifier with other rules (an audience)
    /// does not inherit what the old one accepted.
    #[test]
    fn verified_tokens_are_remembered_but_still_expire_and_forgeries_are_not() {
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let session = SessionId("s1".into());
        let (tok, claims) = s.issue(UserId(7), Market::Kg, &session, "j".into(), now());
        assert!(s.verified.is_empty());
        assert_eq!(s.verify(&tok, now()), Ok(claims.clone()));
        assert_eq!(s.verified.len(), 1, "remembered");
        assert_eq!(s.verify(&tok, now() + Duration::minutes(1)), Ok(claims));
        assert_eq!(s.verified.len(), 1);
        // Expiry and not-before are checked on every use.
        assert_eq!(
            s.verify(&tok, now() + Duration::minutes(30)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            s.verify(&tok, now() - Duration::minutes(5)),
            Err(TokenError::Invalid)
        );
        // The same header and claims with another signature.
        let (head, sig) = tok.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{head}.{flipped}{}", &sig[1..]);
        assert_eq!(s.verify(&forged, now()), Err(TokenError::Invalid));
        assert_eq!(s.verified.len(), 1, "refused tokens are not remembered");
        // An audience makes a new verifier: the token without `aud` is refused.
        let strict = s.clone().with_audience(Some("shop".into()));
        assert_eq!(strict.verify(&tok, now()), Err(TokenError::Invalid));
        // Clones with the same keys share what was verified.
        assert_eq!(s.clone().verified.len(), 1);
    }

    #[test]
    fn verified_tokens_stay_within_capacity() {
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let cache = VerifiedTokens::new(2);
        let token = |sid: &str, at: DateTime<Utc>| {
            s.issue(
                UserId(1),
                Market::Us,
                &SessionId(sid.into()),
                "j".into(),
                at,
            )
        };
        let (t1, c1) = token("a", now());
        let (t2, c2) = token("b", now() + Duration::minutes(20));
        let (t3, c3) = token("c", now() + Duration::minutes(20));
        let at = (now() + Duration::minutes(31)).timestamp();
        cache.insert(&t1, &c1, at);
        cache.insert(&t2, &c2, at);
        // Full: the expired one goes first.
        cache.insert(&t3, &c3, at);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&t1).is_none());
        assert_eq!(cache.get(&t3), Some(c3));
        // Full of live tokens: emptied, then the new one kept.
        cache.insert(&t1, &c1, at);
        assert_eq!(cache.len(), 1);
    }

    /// Issue 12 item 5: `sub` unique for the issuer, `typ: at+jwt`, `nbf`, `aud`.
    #[test]
    fn claims_follow_rfc9068() {
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let (kg, c) = s.issue(
            UserId(1),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        let (us, _) = s.issue(
            UserId(1),
            Market::Us,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        assert_eq!(c.sub, "kg:1");
        assert_eq!(c.nbf, c.iat);
        assert_eq!(c.aud, None);
        assert_ne!(
            s.verify(&kg, now()).unwrap().sub,
            s.verify(&us, now()).unwrap().sub
        );
        let header = jsonwebtoken::decode_header(&kg).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, Algorithm::EdDSA);

        let shop = svc(b"0123456789abcdef0123456789abcdef").with_audience(Some("shop".into()));
        let (for_shop, c) = shop.issue(
            UserId(1),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        assert_eq!(c.aud.as_deref(), Some("shop"));
        assert!(shop.verify(&for_shop, now()).is_ok());
        // A service with an audience refuses tokens without it, or for another one.
        assert_eq!(shop.verify(&kg, now()), Err(TokenError::Invalid));
        let bank = svc(b"0123456789abcdef0123456789abcdef").with_audience(Some("bank".into()));
        assert_eq!(bank.verify(&for_shop, now()), Err(TokenError::Invalid));
    }

    /// Issue 12 item 5: a token living longer than the configured lifetime is refused, even when
    /// signed with our key.
    #[test]
    fn a_longer_lived_token_is_refused() {
        let keys = KeyRing::derive(b"0123456789abcdef0123456789abcdef");
        let long = TokenService::derived(&keys, "marque", Duration::hours(24));
        let (tok, _) = long.issue(
            UserId(1),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        let s = TokenService::derived(&keys, "marque", Duration::minutes(30));
        assert_eq!(s.verify(&tok, now()), Err(TokenError::Invalid));
        assert!(long.verify(&tok, now()).is_ok());
    }

    #[test]
    fn none_algorithm_is_refused() {
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let (tok, _) = s.issue(
            UserId(1),
            Market::Us,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        let payload = tok.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(s.verify(&forged, now()), Err(TokenError::Invalid));
    }

    #[test]
    fn eddsa_rotation_keeps_retired_keys_verifying() {
        let (old_sk, old_pk) = ed_key(1, "2026-01");
        let (new_sk, _) = ed_key(2, "2026-02");
        let ttl = Duration::minutes(30);
        let before = TokenService::ed25519(&old_sk, &[], "marque", ttl).unwrap();
        let (old_tok, _) = before.issue(
            UserId(3),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        let after = TokenService::ed25519(&new_sk, &[old_pk], "marque", ttl).unwrap();
        let (new_tok, _) = after.issue(
            UserId(3),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        assert!(
            after.verify(&old_tok, now()).is_ok(),
            "retired key still verifies"
        );
        assert!(after.verify(&new_tok, now()).is_ok());
        assert_eq!(
            before.verify(&new_tok, now()),
            Err(TokenError::Invalid),
            "unknown kid"
        );
        let kids: Vec<_> = after
            .jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids, ["2026-02", "2026-01"]);
        let json = serde_json::to_value(after.jwks()).unwrap();
        assert_eq!(json["keys"][0]["kty"], "OKP");
        assert_eq!(json["keys"][0]["crv"], "Ed25519");
        assert!(!json.to_string().contains("PRIVATE"));
        // An HS256 token is not accepted, whatever its secret.
        let mut hs_header = Header::new(Algorithm::HS256);
        hs_header.typ = Some(ACCESS_TOKEN_TYPE.into());
        let (_, claims) = after.issue(
            UserId(3),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now(),
        );
        let hs = jsonwebtoken::encode(&hs_header, &claims, &EncodingKey::from_secret(b"secret"))
            .unwrap();
        assert_eq!(after.verify(&hs, now()), Err(TokenError::Invalid));
        let bad = Ed25519SigningKey {
            kid: "x".into(),
            private_pem: "nope".into(),
        };
        assert!(matches!(
            TokenService::ed25519(&bad, &[], "marque", ttl),
            Err(TokenError::Key(_))
        ));
    }
}

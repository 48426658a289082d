//! Verify Marque Auth access tokens in other Rust services, by public key only.
//!
//! Marque signs access tokens (JWT, RFC 7519) with Ed25519 keys (EdDSA, RFC 8037) whose public
//! halves it publishes at `GET /.well-known/jwks.json` (RFC 7517). There is no shared-secret
//! mode: a service that can verify a token cannot mint one (RFC 8725 §3.5). A [`Verifier`] checks,
//! following the JWT profile for access tokens (RFC 9068) and the JWT BCP (RFC 8725):
//! - the algorithm (`EdDSA` only, never the token's choice) and a known `kid`;
//! - the `typ` header, `at+jwt` (RFC 9068 §2.1, RFC 8725 §3.11), so no other JWT passes as one;
//! - the issuer, and the audience when [`Verifier::with_audience`] names one;
//! - `nbf` and `exp` against the clock, and, with [`Verifier::with_max_lifetime`], that
//!   `exp - iat` is not longer than the issuer's configured lifetime;
//! - `sub` in the issuer-wide form `<market>:<user id>` agreeing with the `market` claim.
//!
//! ```
//! use marque_verify::Verifier;
//!
//! // With the JWKS document fetched from https://auth.example/.well-known/jwks.json:
//! let jwks = r#"{"keys": []}"#;
//! let verifier = Verifier::from_jwks_json(jwks, "marque").unwrap().with_audience("shop");
//! assert!(verifier.verify("not-a-token").is_err());
//! ```
//!
//! A valid signature says the token was issued and has not expired; it does not say the user
//! has not logged out since. Where that matters (payments, account changes), ask Marque:
//! `GET /api/v1/auth/verify-token` checks the session too.
//!
//! This crate depends on `jsonwebtoken`, `serde`, `serde_json` and `thiserror` only; the market is
//! plain text here (`kg`, `us`), typed by Marque's own crates.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The `typ` header of a Marque access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Seconds of clock difference tolerated between the issuing and the verifying machine for `nbf`
/// and `iat` (not for `exp`: an expired token stays expired).
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// The claims of a Marque access token, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Subject, unique for the issuer (RFC 9068 §2.2): `<market>:<user id>`, e.g. `kg:1`.
    pub sub: String,
    /// The market whose database holds the user (`kg`, `us`).
    pub market: String,
    /// Session id (UUID); the session must be active for Marque to accept the token.
    pub sid: String,
    /// Unique token id (UUID v4).
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch (= `iat`).
    pub nbf: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Issuer (Marque's `JWT_ISSUER`, default `marque`).
    pub iss: String,
    /// Audience (Marque's `JWT_AUDIENCE`), absent when none is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl AccessClaims {
    /// The issuer-wide subject for user `user_id` of `market` (`kg:1`).
    pub fn subject(market: &str, user_id: i64) -> String {
        format!("{market}:{user_id}")
    }

    /// The user id within `market`, if `sub` is `<market>:<decimal id>` for this token's market.
    pub fn local_user_id(&self) -> Option<i64> {
        let (market, id) = self.sub.split_once(':')?;
        if market != self.market || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok()
    }
}

/// A verified token, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// User id within `market`.
    pub user_id: i64,
    /// The user's market code (`kg`, `us`).
    pub market: String,
    /// Session id.
    pub session_id: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    /// All claims as signed.
    pub claims: AccessClaims,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Malformed, wrong signature, unknown key id, wrong algorithm, type, issuer or audience,
    /// not yet valid, longer-lived than allowed, bad claims.
    #[error("token is invalid")]
    Invalid,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// The key material given to the verifier is unusable.
    #[error("unusable key: {0}")]
    Key(String),
}

/// Checks Marque access tokens against a set of Ed25519 public keys.
#[derive(Clone)]
pub struct Verifier {
    /// EdDSA public keys by `kid`.
    ed: HashMap<String, DecodingKey>,
    issuer: String,
    audience: Option<String>,
    max_lifetime: Option<i64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("eddsa_kids", &self.ed.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

impl Verifier {
    /// A verifier for EdDSA tokens whose keys are in `jwks` (the JSON of Marque's
    /// `/.well-known/jwks.json`). Keys other than Ed25519 `OKP` keys with a `kid` are ignored.
    pub fn from_jwks_json(jwks: &str, issuer: impl Into<String>) -> Result<Self, VerifyError> {
        let set: JwkSet =
            serde_json::from_str(jwks).map_err(|e| VerifyError::Key(format!("JWKS: {e}")))?;
        Self::from_jwks(&set, issuer)
    }

    /// Like [`Verifier::from_jwks_json`], from a parsed set.
    pub fn from_jwks(set: &JwkSet, issuer: impl Into<String>) -> Result<Self, VerifyError> {
        let mut ed = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p)) =
                (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            if p.curve != jsonwebtoken::jwk::EllipticCurve::Ed25519 {
                continue;
            }
            let key = DecodingKey::from_ed_components(&p.x)
                .map_err(|e| VerifyError::Key(format!("JWK {kid}: {e}")))?;
            ed.insert(kid.clone(), key);
        }
        Ok(Self {
            ed,
            issuer: issuer.into(),
            audience: None,
            max_lifetime: None,
        })
    }

    /// Adds an Ed25519 public key (raw 32 bytes) under `kid`.
    pub fn with_ed25519_key(mut self, kid: impl Into<String>, public_key: &[u8; 32]) -> Self {
        self.ed
            .insert(kid.into(), DecodingKey::from_ed_der(public_key));
        self
    }

    /// Accepts only tokens whose `aud` is `audience` (RFC 7519 §4.1.3; RFC 9068 §4: the
    /// resource server checks that it is the intended audience). Without it, `aud` is not
    /// checked.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Refuses tokens whose `exp - iat` exceeds `seconds` (the issuer's configured access token
    /// lifetime): a token minted with a longer life is not one the issuer's policy allows.
    pub fn with_max_lifetime(mut self, seconds: i64) -> Self {
        self.max_lifetime = Some(seconds);
        self
    }

    /// Verifies `token` now (system clock).
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(token, now)
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch). The token is expired from its
    /// `exp` second on (no leeway); `nbf` and `iat` may lie up to [`CLOCK_SKEW_SECONDS`] ahead.
    /// [`Verifier::verify_signed`] then [`Verifier::check_at`].
    pub fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, VerifyError> {
        self.check_at(self.verify_signed(token)?, now)
    }

    /// Every check of `token` that does not depend on the time: algorithm, `typ`, known `kid`,
    /// signature, issuer, audience, the lifetime `exp - iat` and the `sub`/`market` agreement.
    /// The claims it returns are not yet checked against the clock: pass them to
    /// [`Verifier::check_at`] each time the token is presented. A caller may keep the result
    /// for a token it sees again (its signature cannot change), as long as it keeps this
    /// verifier's keys.
    ///
    /// Errors: [`VerifyError::Invalid`].
    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        let is_access_token = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if header.alg != Algorithm::EdDSA || !is_access_token {
            return Err(VerifyError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.ed.get(kid))
            .ok_or(VerifyError::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Time claims are checked by `check_at` against a given `now`, so callers can inject a
        // clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut required = vec!["exp", "nbf", "iss", "sub"];
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud.as_str()]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.required_spec_claims = required.iter().map(|s| (*s).to_owned()).collect();
        validation.set_issuer(&[self.issuer.as_str()]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|_| VerifyError::Invalid)?
            .claims;
        let too_long = self
            .max_lifetime
            .is_some_and(|max| claims.exp.saturating_sub(claims.iat) > max);
        if too_long || claims.local_user_id().is_none() {
            return Err(VerifyError::Invalid);
        }
        Ok(claims)
    }

    /// The time checks of claims from [`Verifier::verify_signed`] at `now` (seconds since the
    /// Unix epoch): expired from the `exp` second on; `nbf` and `iat` at most
    /// [`CLOCK_SKEW_SECONDS`] ahead.
    ///
    /// Errors: [`VerifyError::Expired`], [`VerifyError::Invalid`].
    pub fn check_at(&self, claims: AccessClaims, now: i64) -> Result<VerifiedToken, VerifyError> {
        if now >= claims.exp {
            return Err(VerifyError::Expired);
        }
        if claims.nbf > now.saturating_add(CLOCK_SKEW_SECONDS)
            || claims.iat > now.saturating_add(CLOCK_SKEW_SECONDS)
        {
            return Err(VerifyError::Invalid);
        }
        let user_id = claims.local_user_id().ok_or(VerifyError::Invalid)?;
        Ok(VerifiedToken {
            user_id,
            market: claims.market.clone(),
            session_id: claims.sid.clone(),
            expires_at: claims.exp,
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: "us:42".into(),
            market: "us".into(),
            sid: "s-1".into(),
            jti: "j-1".into(),
            iat: 1_000,
            nbf: 1_000,
            exp,
            iss: "marque".into(),
            aud: None,
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn sign_with(claims: &AccessClaims, kid: &str, typ: Option<&str>) -> String {
        let der = key().to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }

    fn sign(claims: &AccessClaims) -> String {
        sign_with(claims, "k1", Some(ACCESS_TOKEN_TYPE))
    }

    fn verifier() -> Verifier {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(key().verifying_key().to_bytes());
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"k1","use":"sig","alg":"EdDSA"}}]}}"#
        );
        Verifier::from_jwks_json(&jwks, "marque").unwrap()
    }

    #[test]
    fn eddsa_via_jwks_expiry_issuer_and_unknown_kid() {
        let v = verifier();
        let tok = sign(&claims(2_000));
        let t = v.verify_at(&tok, 1_500).unwrap();
        assert_eq!(
            (t.user_id, t.market.as_str(), t.session_id.as_str()),
            (42, "us", "s-1")
        );
        assert_eq!(v.verify_at(&tok, 2_000), Err(VerifyError::Expired));
        let other = Verifier {
            issuer: "someone-else".into(),
            ..verifier()
        };
        assert_eq!(other.verify_at(&tok, 1_500), Err(VerifyError::Invalid));
        let tok2 = sign_with(&claims(2_000), "k2", Some(ACCESS_TOKEN_TYPE));
        assert_eq!(v.verify_at(&tok2, 1_500), Err(VerifyError::Invalid));
    }

    /// Issue 12 item 3: there is no shared-secret mode; an HS256 token — even one whose
    /// "secret" is the public key itself (algorithm confusion, RFC 8725 §2.1) — is refused.
    #[test]
    fn hs256_tokens_are_refused() {
        let v = verifier();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        for secret in [&b"k"[..], &key().verifying_key().to_bytes()[..]] {
            let hs =
                jsonwebtoken::encode(&header, &claims(2_000), &EncodingKey::from_secret(secret))
                    .unwrap();
            assert_eq!(v.verify_at(&hs, 1_500), Err(VerifyError::Invalid));
        }
    }

    /// Issue 12 item 5: `typ: at+jwt` (RFC 9068 §2.1) is required.
    #[test]
    fn typ_must_be_at_jwt() {
        let v = verifier();
        assert!(
            v.verify_at(
                &sign_with(&claims(2_000), "k1", Some("application/at+jwt")),
                1_500
            )
            .is_ok()
        );
        for typ in [None, Some("JWT")] {
            let tok = sign_with(&claims(2_000), "k1", typ);
            assert_eq!(
                v.verify_at(&tok, 1_500),
                Err(VerifyError::Invalid),
                "{typ:?}"
            );
        }
    }

    /// Issue 12 item 5: the audience is checked when the verifier names one.
    #[test]
    fn audience_checked_when_set() {
        let shop = verifier().with_audience("shop");
        let none = sign(&claims(2_000));
        assert_eq!(shop.verify_at(&none, 1_500), Err(VerifyError::Invalid));
        let for_shop = sign(&AccessClaims {
            aud: Some("shop".into()),
            ..claims(2_000)
        });
        let for_bank = sign(&AccessClaims {
            aud: Some("bank".into()),
            ..claims(2_000)
        });
        assert!(shop.verify_at(&for_shop, 1_500).is_ok());
        assert_eq!(shop.verify_at(&for_bank, 1_500), Err(VerifyError::Invalid));
        // Without a configured audience, `aud` is not checked.
        assert!(verifier().verify_at(&for_bank, 1_500).is_ok());
    }

    /// Issue 12 item 5: `nbf` is required and checked; `exp - iat` is bounded.
    #[test]
    fn nbf_and_lifetime() {
        let v = verifier();
        let later = sign(&AccessClaims {
            nbf: 1_800,
            ..claims(2_000)
        });
        assert_eq!(v.verify_at(&later, 1_500), Err(VerifyError::Invalid));
        assert!(v.verify_at(&later, 1_800).is_ok());
        #[derive(Serialize)]
        struct NoNbf<'a> {
            sub: &'a str,
            market: &'a str,
            sid: &'a str,
            jti: &'a str,
            iat: i64,
            exp: i64,
            iss: &'a str,
        }
        let no_nbf = {
            let der = key().to_pkcs8_der().unwrap();
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some("k1".into());
            header.typ = Some(ACCESS_TOKEN_TYPE.into());
            let c = NoNbf {
                sub: "us:42",
                market: "us",
                sid: "s",
                jti: "j",
                iat: 1_000,
                exp: 2_000,
                iss: "marque",
            };
            jsonwebtoken::encode(&header, &c, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
        };
        assert_eq!(v.verify_at(&no_nbf, 1_500), Err(VerifyError::Invalid));
        let limited = verifier().with_max_lifetime(1_000);
        assert!(limited.verify_at(&sign(&claims(2_000)), 1_500).is_ok());
        assert_eq!(
            limited.verify_at(&sign(&claims(2_001)), 1_500),
            Err(VerifyError::Invalid)
        );
    }

    /// Issue 12 item 5: `sub` is `<market>:<id>` and agrees with `market`.
    #[test]
    fn subject_is_unique_for_the_issuer() {
        let v = verifier();
        for sub in ["42", "kg:42", "us:", "us:4x", "us:-1"] {
            let tok = sign(&AccessClaims {
                sub: sub.into(),
                ..claims(2_000)
            });
            assert_eq!(v.verify_at(&tok, 1_500), Err(VerifyError::Invalid), "{sub}");
        }
        assert_eq!(AccessClaims::subject("kg", 1), "kg:1");
    }
}

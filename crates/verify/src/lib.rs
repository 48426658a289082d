//! Verify Marque Auth access tokens in other Rust services.
//!
//! Marque signs access tokens (JWT, RFC 7519) either with a shared HS256 secret or with Ed25519
//! keys (EdDSA, RFC 8037) whose public halves it publishes at `GET /.well-known/jwks.json`
//! (RFC 7517). A [`Verifier`] checks the signature, algorithm, issuer and expiry and returns the
//! typed claims:
//!
//! ```
//! use marque_verify::Verifier;
//!
//! // With the JWKS document fetched from https://auth.example/.well-known/jwks.json:
//! let jwks = r#"{"keys": []}"#;
//! let verifier = Verifier::from_jwks_json(jwks, "marque").unwrap();
//! assert!(verifier.verify("not-a-token").is_err());
//! ```
//!
//! A valid signature says the token was issued and has not expired; it does not say the user
//! has not logged out since. Where that matters (payments, account changes), ask Marque:
//! `GET /api/v1/auth/verify-token` checks the session too.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use marque_markets::Market;
use serde::{Deserialize, Serialize};

/// The claims of a Marque access token, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Subject: the user id within `market`, as decimal text.
    pub sub: String,
    /// The market whose database holds the user (`kg`, `us`).
    pub market: Market,
    /// Session id (UUID); the session must be active for Marque to accept the token.
    pub sid: String,
    /// Unique token id (UUID v4).
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Issuer (Marque's `JWT_ISSUER`, default `marque`).
    pub iss: String,
}

/// A verified token, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// User id within `market`.
    pub user_id: i64,
    /// The user's market.
    pub market: Market,
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
    /// Malformed, wrong signature, unknown key id, wrong algorithm or issuer, bad claims.
    #[error("token is invalid")]
    Invalid,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// The key material given to the verifier is unusable.
    #[error("unusable key: {0}")]
    Key(String),
}

/// Checks Marque access tokens against a set of keys.
#[derive(Clone)]
pub struct Verifier {
    /// HS256 key, used for tokens without `kid`.
    hmac: Option<DecodingKey>,
    /// EdDSA public keys by `kid`.
    ed: HashMap<String, DecodingKey>,
    issuer: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hmac.is_some())
            .field("eddsa_kids", &self.ed.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Verifier {
    /// A verifier for HS256 tokens signed with `secret` (Marque's `SECRET_KEY`) by `issuer`.
    pub fn hs256(secret: &[u8], issuer: impl Into<String>) -> Self {
        Self {
            hmac: Some(DecodingKey::from_secret(secret)),
            ed: HashMap::new(),
            issuer: issuer.into(),
        }
    }

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
            hmac: None,
            ed,
            issuer: issuer.into(),
        })
    }

    /// Adds an Ed25519 public key (raw 32 bytes) under `kid`.
    pub fn with_ed25519_key(mut self, kid: impl Into<String>, public_key: &[u8; 32]) -> Self {
        self.ed
            .insert(kid.into(), DecodingKey::from_ed_der(public_key));
        self
    }

    /// Verifies `token` now (system clock).
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(token, now)
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch), without leeway: the token is
    /// expired from its `exp` second on.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        let key = match (header.alg, header.kid.as_deref()) {
            (Algorithm::HS256, None) => self.hmac.as_ref(),
            (Algorithm::EdDSA, Some(kid)) => self.ed.get(kid),
            _ => None,
        }
        .ok_or(VerifyError::Invalid)?;
        let mut validation = Validation::new(header.alg);
        // Expiry is checked below against `now`, so callers can inject a clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "iss", "sub"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        validation.set_issuer(&[self.issuer.as_str()]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|_| VerifyError::Invalid)?
            .claims;
        if now >= claims.exp {
            return Err(VerifyError::Expired);
        }
        let user_id = claims.sub.parse().map_err(|_| VerifyError::Invalid)?;
        Ok(VerifiedToken {
            user_id,
            market: claims.market,
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
            sub: "42".into(),
            market: Market::Us,
            sid: "s-1".into(),
            jti: "j-1".into(),
            iat: 1_000,
            exp,
            iss: "marque".into(),
        }
    }

    #[test]
    fn hs256_round_trip_expiry_and_issuer() {
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let tok = jsonwebtoken::encode(&Header::default(), &claims(2_000), &key).unwrap();
        let v = Verifier::hs256(b"0123456789abcdef0123456789abcdef", "marque");
        let t = v.verify_at(&tok, 1_999).unwrap();
        assert_eq!(
            (t.user_id, t.market, t.session_id.as_str()),
            (42, Market::Us, "s-1")
        );
        assert_eq!(v.verify_at(&tok, 2_000), Err(VerifyError::Expired));
        let other = Verifier::hs256(b"0123456789abcdef0123456789abcdef", "someone-else");
        assert_eq!(other.verify_at(&tok, 1_500), Err(VerifyError::Invalid));
        assert_eq!(
            Verifier::hs256(b"x", "marque").verify_at(&tok, 1_500),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn eddsa_via_jwks_and_unknown_kid() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let der = sk.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let tok = jsonwebtoken::encode(
            &header,
            &claims(2_000),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap();
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.verifying_key().to_bytes());
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"k1","use":"sig","alg":"EdDSA"}}]}}"#
        );
        let v = Verifier::from_jwks_json(&jwks, "marque").unwrap();
        assert_eq!(v.verify_at(&tok, 1_500).unwrap().user_id, 42);
        let mut header2 = Header::new(Algorithm::EdDSA);
        header2.kid = Some("k2".into());
        let tok2 = jsonwebtoken::encode(
            &header2,
            &claims(2_000),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify_at(&tok2, 1_500), Err(VerifyError::Invalid));
        // An HS256 token is refused by a JWKS-only verifier (no algorithm confusion).
        let hs = jsonwebtoken::encode(
            &Header::default(),
            &claims(2_000),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(v.verify_at(&hs, 1_500), Err(VerifyError::Invalid));
    }
}

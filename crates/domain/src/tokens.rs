//! Access tokens: JWT (RFC 7519) signed with HS256 (RFC 7518 §3.2).

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use marque_markets::Market;
use serde::{Deserialize, Serialize};

use crate::{SessionId, UserId};

/// The claims of a Marque access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Subject: the user id within `market`, as decimal text.
    pub sub: String,
    /// The market whose database holds the user (`kg`, `us`).
    pub market: Market,
    /// Session id; the session must be active for the token to be accepted.
    pub sid: String,
    /// Unique token id (UUID v4).
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Issuer (`JWT_ISSUER`, default `marque`).
    pub iss: String,
}

impl AccessClaims {
    /// The user id from `sub`.
    pub fn user_id(&self) -> Result<UserId, TokenError> {
        self.sub
            .parse()
            .map(UserId)
            .map_err(|_| TokenError::Invalid)
    }

    /// The session id from `sid`.
    pub fn session_id(&self) -> SessionId {
        SessionId(self.sid.clone())
    }

    /// `exp` as a timestamp.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or_default()
    }
}

/// Why a token was refused. Deliberately coarse: clients get one `invalid_token` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, wrongly signed, wrong issuer or algorithm.
    #[error("token is invalid")]
    Invalid,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
}

/// Signs and verifies access tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service signing with `secret` (use at least 32 random bytes), stamping `issuer`, and
    /// issuing tokens valid for `ttl`.
    pub fn hs256(secret: &[u8], issuer: impl Into<String>, ttl: Duration) -> Self {
        let issuer = issuer.into();
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the injected clock in `verify`, not the system clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "iss", "sub"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        validation.set_issuer(&[issuer.as_str()]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer,
            ttl,
        }
    }

    /// Lifetime of issued tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
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
        let claims = AccessClaims {
            sub: user.to_string(),
            market,
            sid: session.0.clone(),
            jti,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
            iss: self.issuer.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_else(|e| unreachable!("HS256 signing of plain claims cannot fail: {e}"));
        (token, claims)
    }

    /// Checks signature, algorithm, issuer and expiry (at `now`, no leeway) of `token`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if now.timestamp() >= data.claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn svc(secret: &[u8]) -> TokenService {
        TokenService::hs256(secret, "marque", Duration::minutes(30))
    }

    #[test]
    fn issue_verify_and_expire() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let (tok, claims) = s.issue(
            UserId(7),
            Market::Kg,
            &SessionId("s1".into()),
            "j".into(),
            now,
        );
        assert_eq!(claims.exp - claims.iat, 1800);
        let back = s.verify(&tok, now + Duration::minutes(29)).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.user_id().unwrap(), UserId(7));
        assert_eq!(
            s.verify(&tok, now + Duration::minutes(30)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            svc(b"another-secret-another-secret-xx").verify(&tok, now),
            Err(TokenError::Invalid)
        );
        assert_eq!(s.verify("not.a.token", now), Err(TokenError::Invalid));
        let other_iss = TokenService::hs256(
            b"0123456789abcdef0123456789abcdef",
            "x",
            Duration::minutes(30),
        );
        let (tok2, _) = other_iss.issue(
            UserId(7),
            Market::Kg,
            &SessionId("s".into()),
            "j".into(),
            now,
        );
        assert_eq!(s.verify(&tok2, now), Err(TokenError::Invalid));
    }

    #[test]
    fn none_algorithm_is_refused() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = svc(b"0123456789abcdef0123456789abcdef");
        let (tok, _) = s.issue(
            UserId(1),
            Market::Us,
            &SessionId("s".into()),
            "j".into(),
            now,
        );
        let mut parts = tok.split('.');
        let _header = parts.next();
        let payload = parts.next().unwrap();
        // {"alg":"none","typ":"JWT"}
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(s.verify(&forged, now), Err(TokenError::Invalid));
    }
}

//! Accounts, roles and territorial scopes.
//!
//! People sign in with a password (argon2id) and get a bearer token (the web pages get it
//! as an HttpOnly session cookie instead, see `access`); machines (sensor
//! gateways, integrations) get long-lived API tokens with their own role and scope. A
//! token is `v1.<hex payload>.<hex MAC>`: the payload (who, role, department, scope,
//! expiry) is authenticated with keyed BLAKE2b under the server's secret, so a forged or
//! altered token fails, and an expired one is refused — no token table to look up.
//!
//! Architecture Invariant: every request's principal comes from here; handlers never
//! trust a role, department or scope the client states.

use crate::http::error::{ApiError, Problem};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;
use cityos_core::time::Millis;
use cityos_core::Role;
use serde::{Deserialize, Serialize};

type Mac256 = Blake2bMac<blake2::digest::consts::U32>;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    #[serde(rename = "u")]
    pub name: String,
    #[serde(rename = "r")]
    pub role: Role,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Region code the principal is confined to (`None` = the whole territory).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Machine tokens name the intake channel they report on (sensor, data).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(rename = "exp")]
    pub expires_at: Millis,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct TokenKey {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl TokenKey {
    pub fn new(key: [u8; 32]) -> TokenKey {
        TokenKey { key }
    }

    /// A fresh random key.
    pub fn random() -> TokenKey {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the OS provides randomness");
        TokenKey { key }
    }

    /// The key as hex (to persist it).
    pub fn to_hex(&self) -> String {
        hex(&self.key)
    }

    pub fn from_hex(s: &str) -> Option<TokenKey> {
        let v = unhex(s.trim())?;
        Some(TokenKey {
            key: v.try_into().ok()?,
        })
    }

    fn mac(&self) -> Mac256 {
        <Mac256 as KeyInit>::new_from_slice(&self.key).expect("32-byte key")
    }

    pub fn sign(&self, p: &Principal) -> String {
        let payload = serde_json::to_vec(p).expect("principal serialises");
        let mut m = self.mac();
        m.update(&payload);
        format!("v1.{}.{}", hex(&payload), hex(&m.finalize().into_bytes()))
    }

    /// A short keyed tag of a message (16 hex digits): unguessable handles such as the
    /// Open311 token of a report.
    pub fn tag(&self, msg: &str) -> String {
        let mut m = self.mac();
        m.update(b"tag:");
        m.update(msg.as_bytes());
        hex(&m.finalize().into_bytes()[..8])
    }

    /// The full keyed tag of a message (64 hex digits): what authenticates one node to
    /// another (an engine step).
    pub fn tag_full(&self, msg: &str) -> String {
        let mut m = self.mac();
        m.update(b"tag256:");
        m.update(msg.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// Checks a token: well-formed, authentic, not expired at `now`.
    pub fn verify(&self, token: &str, now: Millis) -> Result<Principal, ApiError> {
        let bad = || {
            ApiError::new(
                Problem::InvalidToken,
                "the bearer token is malformed or was not issued by this server",
            )
        };
        let mut parts = token.split('.');
        let (Some("v1"), Some(p), Some(t), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (payload, tag) = (unhex(p).ok_or_else(bad)?, unhex(t).ok_or_else(bad)?);
        let mut m = self.mac();
        m.update(&payload);
        m.verify_slice(&tag).map_err(|_| bad())?;
        let principal: Principal = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if principal.expires_at <= now {
            return Err(ApiError::new(
                Problem::ExpiredToken,
                "the bearer token has expired; sign in again",
            ));
        }
        Ok(principal)
    }
}

/// Hashes a password (argon2id, random salt) into a PHC string.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the OS provides randomness");
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt encodes");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing succeeds with default parameters")
        .to_string()
}

/// Checks a password against a PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Reads `Authorization: Bearer …`, or else the web pages' session cookie
/// ([`crate::http::access::SESSION_COOKIE`]); `Ok(None)` when neither is there (an anonymous
/// caller).
pub fn principal_from(
    headers: &axum::http::HeaderMap,
    key: &TokenKey,
    now: Millis,
) -> Result<Option<Principal>, ApiError> {
    let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
        return match crate::http::access::session_cookie(headers) {
            Some(token) => key.verify(token, now).map(Some),
            None => Ok(None),
        };
    };
    let v = v.to_str().map_err(|_| {
        ApiError::new(
            Problem::InvalidToken,
            "the Authorization header is not text",
        )
    })?;
    let token = v.strip_prefix("Bearer ").ok_or_else(|| {
        ApiError::new(Problem::InvalidToken, "use `Authorization: Bearer <token>`")
    })?;
    key.verify(token.trim(), now).map(Some)
}

//! Request extractors: a JSON body parsed into our problem format ([`Body`]), a query
//! string ([`Q`]), and the signed-in caller.

use crate::http::auth::{principal_from, Principal};
use crate::http::error::{ApiError, Problem};
use crate::AppState;
use crate::BODY_LIMIT;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

/// A JSON body parsed by us, so bad input gets our problem format; keeps the raw bytes
/// (for idempotency fingerprints).
pub struct Body<T> {
    pub value: T,
    pub raw: Bytes,
}

/// The query string as `T`; a query that does not fit is a problem+json 400 that names
/// the parameter (instead of axum's plain-text rejection).
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Q)
            .map_err(|e| {
                ApiError::new(
                    Problem::InvalidParameter,
                    format!("the query string does not fit: {e}"),
                )
            })
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !ct.starts_with("application/json") {
            return Err(ApiError::new(
                Problem::UnsupportedMediaType,
                format!("send JSON with `Content-Type: application/json` (got {ct:?})"),
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    Problem::PayloadTooLarge,
                    format!("the body is larger than {BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::new(Problem::UnreadableBody, e.body_text())
            }
        })?;
        let value: T = serde_json::from_slice(&raw).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                    Problem::InvalidJson,
                    format!("the body is not valid JSON: {e}"),
                ),
                Category::Data => {
                    ApiError::new(Problem::InvalidBody, format!("the body does not fit: {e}"))
                }
            }
        })?;
        refuse_control_characters(&raw)?;
        Ok(Body { value, raw })
    }
}

/// Refuses a body whose strings (or keys) hold a control character other than a line
/// break or tab: a NUL cannot be stored in PostgreSQL text, and none of them belongs in a
/// report. Only bodies that may hold one (an escape, or a raw DEL or C1 control) are
/// parsed again; the problem names the field.
fn refuse_control_characters(raw: &[u8]) -> Result<(), ApiError> {
    // Escapes (`\u0000`, `\b`, `\f`), or DEL and C1 controls, which JSON allows raw.
    let suspect = raw.contains(&0x7f)
        || raw.windows(2).any(|w| {
            (w[0] == b'\\' && matches!(w[1], b'u' | b'b' | b'f'))
                || (w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
        });
    if !suspect {
        return Ok(());
    }
    fn bad(s: &str) -> Option<char> {
        s.chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<(String, char)> {
        match v {
            serde_json::Value::String(s) => bad(s).map(|c| (path.to_string(), c)),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match bad(k) {
                    Some(c) => Some((p, c)),
                    None => walk(x, &p),
                }
            }),
            _ => None,
        }
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return Ok(());
    };
    match walk(&v, "") {
        None => Ok(()),
        Some((field, c)) => Err(ApiError::new(
            Problem::ControlCharacter,
            format!(
                "{} contains the control character U+{:04X}; only line breaks and tabs are allowed in text",
                if field.is_empty() { "the body".to_string() } else { format!("field `{field}`") },
                c as u32
            ),
        )),
    }
}

/// The signed-in caller (401 when there is none, or when the token is bad).
pub struct SignedIn(pub Principal);

/// A signed-in caller who is not a citizen (401 when no one is signed in, 403 for the
/// citizen role): the staff-only reads such as the vital signs, alerts and datasets.
/// Machine tokens pass here; the machine guard limits them to their channel's endpoints.
pub struct Staff(pub Principal);

/// The caller, or `None` for an anonymous one (endpoints open to anyone); a token that
/// is there but bad is still 401.
pub struct MaybeSignedIn(pub Option<Principal>);

/// The caller as the headers name them, checked only when the handler asks — after its
/// JSON body has been read, so that a bad body is answered before a missing sign-in.
pub struct Caller(Result<Option<Principal>, ApiError>);

impl Caller {
    /// The signed-in caller (401 when there is none).
    pub fn signed_in(self) -> Result<Principal, ApiError> {
        require(self.0?)
    }

    /// The caller, or `None` when anonymous.
    pub fn maybe(self) -> Result<Option<Principal>, ApiError> {
        self.0
    }
}

/// 401 unless someone is signed in.
pub fn require(p: Option<Principal>) -> Result<Principal, ApiError> {
    p.ok_or_else(|| {
        ApiError::new(
            Problem::MissingToken,
            "sign in first: `Authorization: Bearer <token>`",
        )
    })
}

fn caller_of(
    parts: &axum::http::request::Parts,
    st: &AppState,
) -> Result<Option<Principal>, ApiError> {
    principal_from(&parts.headers, &st.0.key, st.now())
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, ApiError> {
        require(caller_of(parts, st)?).map(SignedIn)
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, ApiError> {
        let p = require(caller_of(parts, st)?)?;
        if p.role == cityos_core::Role::Citizen {
            return Err(ApiError::forbidden(
                "staff only: the citizen role does not read this".to_string(),
            ));
        }
        Ok(Staff(p))
    }
}

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, ApiError> {
        caller_of(parts, st).map(MaybeSignedIn)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Caller(caller_of(parts, st)))
    }
}

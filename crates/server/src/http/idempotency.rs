//! Idempotent POSTs: one answer per `Idempotency-Key` (per caller), recorded by the
//! engine in the same transaction as the writes it answers.

use crate::http::error::{ApiError, Problem};
use crate::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use blake2::{Blake2b512, Digest};
use cityos_core::time::Millis;
use cityos_engine::store::IdempotentAnswer;
use cityos_engine::{CaseStore, StoreError};
use serde_json::Value;
use std::future::Future;

type ApiResult = Result<Response, ApiError>;

/// Runs a POST at most once per `Idempotency-Key` (per caller): a retry with the same key
/// and body gets the first answer; the same key with another body is refused.
///
/// `f` gets the key to hand to the engine (`Request::Keyed`, see [`keyed`]): the first
/// successful answer is recorded in the same transaction as the case it created or
/// changed, so a retry after a crash finds either both or neither.
pub async fn idempotent<F, Fut>(
    st: &AppState,
    headers: &HeaderMap,
    caller: &str,
    route: &str,
    raw: &[u8],
    f: F,
) -> ApiResult
where
    F: FnOnce(Option<IdemKey>) -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        let (status, v) = f(None).await?;
        return Ok((status, Json(v)).into_response());
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::new(
                Problem::InvalidIdempotencyKey,
                "Idempotency-Key must be 1–200 visible ASCII characters",
            )
        })?;
    let full = format!("{caller}|{key}");
    let hash = request_hash(route, raw);
    let lock = st.idem_lock(&full);
    let _guard = lock.lock().await;
    let k2 = full.clone();
    if let Some(a) = st.0.reads.run(move |s| recorded(s, &k2)).await?? {
        return replay(a, &hash);
    }
    let (status, v) = f(Some(IdemKey {
        key: full.clone(),
        request_hash: hash,
        created_at: st.now(),
    }))
    .await?;
    // Another node may have recorded this key first (its insert won): its answer stands.
    let stored = st.0.reads.run(move |s| recorded(s, &full)).await??;
    let text = v.to_string();
    if let Some(a) = stored.filter(|a| a.body != text) {
        return replay(a, "");
    }
    Ok((status, Json(v)).into_response())
}

/// The fingerprint of a request under an `Idempotency-Key`: its route and raw body.
pub fn request_hash(route: &str, raw: &[u8]) -> String {
    let mut h = Blake2b512::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(raw);
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An idempotency key on its way to the engine.
pub struct IdemKey {
    pub key: String,
    pub request_hash: String,
    pub created_at: Millis,
}

pub fn replay(a: IdempotentAnswer, hash: &str) -> ApiResult {
    if !hash.is_empty() && a.request_hash != hash {
        return Err(ApiError::new(
            Problem::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request",
        ));
    }
    let status = StatusCode::from_u16(a.status as u16).unwrap_or(StatusCode::OK);
    let mut r = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        a.body,
    )
        .into_response();
    r.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(r)
}

/// The answer recorded under an idempotency key, if any.
fn recorded(s: &mut dyn CaseStore, key: &str) -> Result<Option<IdempotentAnswer>, StoreError> {
    s.idempotent(key)
}

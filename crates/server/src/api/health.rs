//! Health of the service: liveness (`/healthz`, no round trip) and readiness
//! (`/readyz`, a round trip to the store through the read pool).

use super::ApiResult;
use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use cityos_engine::{StoreConnection, StoreError};
use serde_json::json;

/// Liveness, cheap and truthful: no round trip, but a read connection that lost the
/// database says so (503 `store_unavailable` until it has reconnected).
pub async fn healthz(State(st): State<AppState>) -> ApiResult {
    if st.0.reads.healthy() {
        Ok(Json(json!({"status": "ok", "store": "ok"})).into_response())
    } else {
        Err(ApiError::from(cityos_engine::StoreError::Unavailable(
            "a read connection lost the database".into(),
        )))
    }
}

/// Readiness: a round trip to the store through the read pool, at most 2 s.
pub async fn readyz(State(st): State<AppState>) -> ApiResult {
    let ping = st.0.reads.run(|s| round_trip(s));
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(r) => {
            r??;
            Ok(Json(json!({"status": "ready", "store": "ok"})).into_response())
        }
        Err(_) => Err(ApiError::from(cityos_engine::StoreError::Unavailable(
            "the readiness round trip took over 2 s".into(),
        ))),
    }
}

/// One round trip to the store: all readiness asks of a connection.
fn round_trip(s: &mut dyn StoreConnection) -> Result<(), StoreError> {
    s.ping()
}

//! The inspector's end: photo uploads from the field (the mobile app) — stored through
//! [`crate::cases::media`], answered with the `media_url` a report or a transition carries.

use crate::cases::media::store_photo;
use crate::http::error::ApiError;
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// `POST /api/v1/media` — a signed-in caller (an inspector in the field, staff) uploads a
/// photo; the answer's `media_url` goes into a report's `media` or a transition's
/// `attachments`.
pub async fn upload(
    State(st): State<AppState>,
    headers: HeaderMap,
    _: SignedIn,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let v = store_photo(&st, &headers, body).await?;
    Ok((StatusCode::CREATED, axum::Json(v[0].clone())).into_response())
}

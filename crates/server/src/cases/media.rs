//! Photos attached to cases: stored once (the type sniffed from the bytes, at most 2 MiB)
//! in the `media` table by a hash of their content, served at `/media/{id}.{ext}`;
//! reports carry their photos' addresses, inspectors attach them as evidence. Every room
//! that takes a photo (the inspector's upload, Open311) stores and checks it here.

use crate::http::error::{ApiError, Problem};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cityos_engine::store::Media;
use cityos_engine::{MediaStore, StoreError};
use serde_json::{json, Value};

/// Largest photo accepted.
pub const MEDIA_LIMIT: usize = 2 * 1024 * 1024;

/// The image types accepted, with the bytes each file starts with.
fn sniff(content_type: &str, b: &[u8]) -> Option<&'static str> {
    match content_type {
        "image/jpeg" if b.starts_with(&[0xFF, 0xD8, 0xFF]) => Some("jpg"),
        "image/png" if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) => {
            Some("png")
        }
        "image/webp" if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" => Some("webp"),
        _ => None,
    }
}

fn content_type_of(ext: &str) -> Option<&'static str> {
    match ext {
        "jpg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost")
        .to_string()
}

/// Stores the photo a request body carries; answers its address. Used by
/// `POST /api/v1/media` and Open311's `POST media.{json|xml}`.
pub async fn store_photo(
    st: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(ct.as_str(), "image/jpeg" | "image/png" | "image/webp") {
        return Err(ApiError::new(
            Problem::UnsupportedMediaType,
            format!("photos must be image/jpeg, image/png or image/webp, not {ct:?}"),
        ));
    }
    let host = host(headers);
    let too_big = || {
        ApiError::new(
            Problem::PayloadTooLarge,
            format!("a photo may be at most {} MiB", MEDIA_LIMIT / (1024 * 1024)),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MEDIA_LIMIT)
    {
        return Err(too_big());
    }
    let bytes = axum::body::to_bytes(body, MEDIA_LIMIT)
        .await
        .map_err(|_| too_big())?;
    if bytes.is_empty() {
        return Err(ApiError::new(Problem::EmptyPhoto, "the photo is empty"));
    }
    let ext = sniff(&ct, &bytes).ok_or_else(|| {
        ApiError::new(
            Problem::UnsupportedMediaType,
            format!("the bytes are not a {ct} image"),
        )
    })?;
    // What the photo says about its taker (EXIF GPS, XMP, text chunks) is removed before
    // it is stored; the image data is kept byte for byte.
    let bytes = crate::cases::metadata::strip(ext, &bytes).map_err(|m| {
        ApiError::new(
            Problem::MalformedPhoto,
            format!("the {ct} photo cannot be read: {m}"),
        )
    })?;
    use blake2::{Blake2b512, Digest};
    let digest = Blake2b512::digest(&bytes);
    let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let m = cityos_engine::store::Media {
        id: id.clone(),
        content_type: ct.clone(),
        bytes,
        created_at: st.now(),
    };
    let size = m.bytes.len();
    st.0.reads.write(move |s| put_photo(s, &m)).await??;
    Ok(json!([{
        "media_id": id,
        "media_url": format!("http://{host}/media/{id}.{ext}"),
        "content_type": ct,
        "size": size,
    }]))
}

/// A `media_url` given with a request: only one of this server's photos,
/// `http(s)://{host}/media/{id}.{ext}` as the upload answered it, naming a stored photo
/// of that type. When the request names its `Host`, the address must use it too; other
/// addresses (another site, a path outside `/media/`) are refused as `invalid_media_url`,
/// a photo never uploaded as `unknown_media`.
pub async fn check_media_url(
    st: &AppState,
    host: Option<&str>,
    u: &str,
) -> Result<String, ApiError> {
    let not_ours = || {
        ApiError::new(
            Problem::InvalidMediaUrl,
            format!(
                "media_url {:?} is not one of this server's photos: upload the photo to /api/v1/media (or Open311's media.json) and send the media_url it answers",
                u.chars().take(100).collect::<String>()
            ),
        )
    };
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .filter(|_| u.len() <= 500)
        .ok_or_else(not_ours)?;
    let (authority, path) = rest.split_once('/').ok_or_else(not_ours)?;
    let file = path.strip_prefix("media/").ok_or_else(not_ours)?;
    let (id, ext) = file.split_once('.').ok_or_else(not_ours)?;
    let ct = content_type_of(ext).ok_or_else(not_ours)?;
    if id.len() != 32 || !id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(not_ours());
    }
    if authority.is_empty()
        || host.is_some_and(|h| !h.eq_ignore_ascii_case(authority))
        || !authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(not_ours());
    }
    let key = id.to_string();
    let found =
        st.0.reads
            .run(move |s| photo(s, &key))
            .await?
            .map_err(ApiError::from)?;
    if found.is_none_or(|m| m.content_type != ct) {
        return Err(ApiError::new(
            Problem::UnknownMedia,
            format!("media_url {u:?} names no uploaded photo; upload it first"),
        ));
    }
    Ok(u.to_string())
}

/// The `Host` a request named, for [`check_media_url`].
pub fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// `GET /media/{id}.{ext}` — an uploaded photo.
pub async fn get_media(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let not_found = || ApiError::not_found(&format!("the photo {file:?}")).into_response();
    let Some((id, ext)) = file.split_once('.') else {
        return not_found();
    };
    if content_type_of(ext).is_none() || id.len() != 32 {
        return not_found();
    }
    let id = id.to_string();
    match st.0.reads.run(move |s| photo(s, &id)).await {
        Ok(Ok(Some(m))) if content_type_of(ext) == Some(m.content_type.as_str()) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, m.content_type.clone()),
                (
                    header::CACHE_CONTROL,
                    "public, max-age=31536000, immutable".into(),
                ),
                (
                    header::HeaderName::from_static("x-content-type-options"),
                    "nosniff".into(),
                ),
            ],
            m.bytes,
        )
            .into_response(),
        Ok(Ok(_)) => not_found(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Stores a photo (once: its id is its digest).
fn put_photo(s: &mut dyn MediaStore, m: &Media) -> Result<(), StoreError> {
    s.put_media(m)
}

/// The photo `id`, if it was uploaded.
fn photo(s: &mut dyn MediaStore, id: &str) -> Result<Option<Media>, StoreError> {
    s.media(id)
}

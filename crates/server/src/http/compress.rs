//! Compression of answers: pages, scripts, stylesheets, JSON and CSV are sent gzipped when
//! the client says it accepts gzip (`Accept-Encoding`), with `Vary: Accept-Encoding`.
//! Only whole bodies of known size are compressed (1 KiB up to [`MAX`]); streams (the live
//! event stream), photos, workbooks and answers already encoded pass through untouched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::io::Write;

/// Bodies smaller than this are not worth a gzip header.
const MIN: u64 = 1024;
/// Bodies larger than this are sent as they are (never buffered whole here).
const MAX: u64 = 32 << 20;

/// Whether `accept` (an `Accept-Encoding` value) admits gzip: named (or `*`) without `q=0`.
pub fn accepts_gzip(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim();
        let zero = it.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !zero
    })
}

/// Whether a content type is text that compresses well.
fn compressible(ct: &str) -> bool {
    let ct = ct.split(';').next().unwrap_or("").trim();
    ct.starts_with("text/") && ct != "text/event-stream"
        || ct == "application/json"
        || ct == "application/problem+json"
        || ct == "application/geo+json"
        || ct == "application/xml"
        || ct == "image/svg+xml"
}

/// The middleware: gzips the answer when the request accepts it and the answer fits.
pub async fn gzip(req: Request, next: Next) -> Response {
    let wants = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let resp = next.run(req).await;
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !compressible(ct) || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let size = axum::body::HttpBody::size_hint(&body).exact();
    if !wants || !size.is_some_and(|n| (MIN..=MAX).contains(&n)) {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX as usize).await {
        Ok(b) => b,
        Err(_) => {
            // The answer could not be read whole: say so rather than send a short body
            // under the old Content-Length.
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.status = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            return Response::from_parts(parts, Body::empty());
        }
    };
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::fast(),
    );
    let zipped = enc.write_all(&bytes).and_then(|_| enc.finish());
    match zipped {
        Ok(z) if z.len() < bytes.len() => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Response::from_parts(parts, Body::from(z))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_accept_encoding() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn compresses_text_only() {
        assert!(compressible("application/json"));
        assert!(compressible("text/html; charset=utf-8"));
        assert!(!compressible("text/event-stream"));
        assert!(!compressible("image/jpeg"));
    }
}

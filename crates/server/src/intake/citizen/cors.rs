//! CORS for the public ends (`/open311/`, `/cap/`, `/media/`): any origin, no
//! credentials, preflight `OPTIONS` answered; never `/api/v1`.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Paths a browser app on another origin may use: Open311, the public CAP feed and the
/// photos. The signed-in API (`/api/v1`, cookies and tokens) is not among them.
fn cross_origin(path: &str) -> bool {
    ["/open311/", "/cap/", "/media/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Middleware: CORS for the public ends — `Access-Control-Allow-Origin: *` on their
/// answers (no credentials), and preflight `OPTIONS` answered 204 with the methods and
/// headers a client may use.
pub async fn cors(req: Request, next: axum::middleware::Next) -> Response {
    use axum::http::{HeaderValue, Method};
    if !cross_origin(req.uri().path()) {
        return next.run(req).await;
    }
    let methods = if req.uri().path().starts_with("/open311/") {
        "GET, POST, OPTIONS"
    } else {
        "GET, HEAD, OPTIONS"
    };
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Accept, Accept-Language"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        h.insert(header::ALLOW, HeaderValue::from_static(methods));
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
    resp
}

//! The router composition: every room's routes, in the order of the OpenAPI table, and
//! the layers around them (machine guard, metrics, body limits, refusals log, CSRF,
//! security headers, CORS, gzip).

use crate::cases::media;
use crate::http::error::{ApiError, Problem};
use crate::http::{access, auth, log, metrics};
use crate::intake::{citizen as open311, data, sensor as sensing};
use crate::runtime::openapi;
use crate::{api, ui, AppState, BODY_LIMIT};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::Router;

/// `GET /ui/meals.html` — the elder's page, with its first screen's data (the canteens
/// and the signed-in citizen's own elders, [`crate::meals::api::first_screen`]) rendered
/// in, so the first screen needs no API round trip; anyone else, or a bad or expired
/// cookie, gets the plain page, which asks the API.
async fn meals_page(
    axum::extract::State(st): axum::extract::State<crate::AppState>,
    caller: crate::http::extract::Caller,
) -> axum::response::Response {
    let (data, elsewhere) = match caller.maybe() {
        Ok(Some(p)) => {
            let data = crate::meals::api::first_screen(&st, &p).await;
            // Several nodes: a citizen's first screen is in the meal book, which only the
            // holder of the singleton lease keeps — the forwarding layer sends the page
            // request there (this plain page is the answer when it cannot).
            let elsewhere = data.is_none()
                && p.role == cityos_core::Role::Citizen
                && crate::http::node::singleton_epoch(&st) == Some(None);
            (data, elsewhere)
        }
        _ => (None, false),
    };
    let mut r = ui::page(&st, "meals.html", data.as_ref().map(|d| ("meals-first", d)));
    if elsewhere {
        r.extensions_mut().insert(crate::http::error::NotOwner(
            cityos_engine::engine::SINGLETON.to_string(),
        ));
    }
    r
}

/// The API router: one route per entry of [`openapi::ENDPOINTS`].
pub fn app(state: AppState) -> Router {
    let mut r = Router::new();
    for e in openapi::ENDPOINTS {
        r = r.route(e.path, openapi::handler(e.id));
    }
    r.merge(open311::routes())
        .route("/media/{file}", axum::routing::get(media::get_media))
        .route(
            "/metrics",
            axum::routing::get(crate::runtime::metrics::metrics),
        )
        // Several nodes: the engine steps another node sends (`cases::remote`).
        .route(
            crate::cases::remote::PATH,
            axum::routing::post(crate::cases::remote::serve),
        )
        .route("/", axum::routing::get(ui::root))
        .route("/ui/places.json", axum::routing::get(ui::places))
        .route("/ui/meals.html", axum::routing::get(meals_page))
        .route("/ui/{file}", axum::routing::get(ui::file))
        .route(
            "/favicon.ico",
            axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .fallback(api::not_found)
        // After the fallback, so that requests matching no route count (as `unmatched`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::machine_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_refusals,
        ))
        .layer(axum::middleware::from_fn(access::csrf_guard))
        .layer(axum::middleware::from_fn(access::security_headers))
        .layer(axum::middleware::from_fn(open311::cors))
        // Several nodes: a request for a partition another node holds goes there.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::runtime::cluster::forward,
        ))
        // Outermost: what every other layer answered, gzipped when the client accepts it.
        .layer(axum::middleware::from_fn(crate::http::compress::gzip))
        .with_state(state)
}

/// The largest body a path accepts: photos, readings and datasets have their own limits,
/// Open311 takes photos; everything else [`BODY_LIMIT`].
pub fn body_limit(path: &str) -> usize {
    if path == "/api/v1/media" || path.starts_with("/open311/") {
        media::MEDIA_LIMIT
    } else if path == "/api/v1/readings" {
        sensing::READINGS_LIMIT
    } else if path.starts_with("/api/v1/datasets/") {
        data::DATASET_LIMIT
    } else if path.starts_with("/api/v1/assistance/sources/") {
        crate::assistance::api::SOURCE_LIMIT
    } else if path.starts_with("/api/v1/life-circle/") {
        crate::lifecircle::UPLOAD_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Answers 413 at once when the declared `Content-Length` exceeds the path's limit, before
/// reading a byte of the body (a client announcing 2^62 bytes gets its answer now).
async fn guard_body(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = body_limit(req.uri().path());
    if declared.is_some_and(|n| n > limit as u64) {
        use axum::response::IntoResponse;
        if req.uri().path() == "/api/v1/readings" {
            // Counted with the readings refused (reason too_large), like a body found
            // too large while it is read.
            crate::intake::sensor::count_too_large(&st);
        }
        return ApiError::new(
            Problem::PayloadTooLarge,
            format!("the body may be at most {limit} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Logs every refused request (401, 403, 404 on a known endpoint, 409, 422) with its caller.
async fn log_refusals(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let caller = auth::principal_from(req.headers(), &st.0.key, st.now())
        .ok()
        .flatten()
        .map_or_else(
            || "anonymous".to_string(),
            |p| format!("{}({})", p.name, p.role),
        );
    let resp = next.run(req).await;
    let status = resp.status();
    if matches!(status.as_u16(), 401 | 403 | 404 | 409 | 422) {
        log::event(
            "refused",
            &[
                ("status", &status.as_u16()),
                ("method", &method),
                ("path", &path),
                ("caller", &caller),
            ],
        );
    }
    resp
}

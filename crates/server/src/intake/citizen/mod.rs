//! The citizens' end as Open311 GeoReport v2 (`/open311/v2/…`): discovery, services and
//! their definitions, creating requests (form-encoded), following them, tokens — in
//! JSON and XML, with the specification's field names, `open`/`closed` statuses and
//! `{code, description}` error lists.
//!
//! A service is a public category of the taxonomy; a service request is the case a report
//! became or joined (`service_request_id` is the case number, so reports merged into one
//! case follow the same request). Only public categories are listed or answered:
//! welfare checks and other non-public cases never appear here.
//!
//! A request's `description` is the citizen's full text (the first report of the case,
//! with the answers to the service's questions), not the case's 60-character title; an
//! `address_string` sent with the coordinates is kept as the report's last line
//! (`地址：…`) and answered as `address` (otherwise `address` names the regions).
//! This server cannot geocode: a request needs `lat` and `long`, and an address alone is
//! answered 400 saying so. An unknown `service_code` is 404; an anonymous address over its
//! limit gets 429 with `Retry-After`; `GET requests` answers at most 1,000 requests.
//! The public ends (`/open311/`, `/cap/`, `/media/`) answer browsers on any origin (CORS,
//! no credentials); the signed-in API under `/api/v1` does not.
//!
//! Files by what they hold: `discovery` (discovery, services), `views` (following
//! requests), `requests` (creating them), `rating`, `reply` (JSON/XML answers and error
//! lists), `cors`. Anonymous creates are counted in the crate root's `anonymous_reports`
//! window, which `POST /api/v1/reports` shares.

mod cors;
mod discovery;
mod rating;
mod reply;
mod requests;
mod views;

pub use cors::cors;

use discovery::{get_service, get_top};
use rating::post_rating;
use requests::post_top;
use views::{get_request, get_token};

use crate::AppState;
use axum::routing::{get, post};
use axum::Router;
use cityos_core::time::{Millis, DAY};

/// Anonymous requests one address may create per window (shared with
/// `POST /api/v1/reports`).
pub use crate::{ANONYMOUS_LIMIT, ANONYMOUS_WINDOW};
/// The widest `start_date`–`end_date` span, and the default look-back.
const MAX_SPAN: Millis = 90 * DAY;
/// The most requests one `GET requests` answers (newest first; narrow the dates for more).
pub const MAX_RESULTS: usize = 1000;
/// The line that carries a request's `address_string` in its report text.
const ADDRESS_LINE: &str = "地址：";

/// The Open311 routes (merged into the service's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/{file}", get(get_top).post(post_top))
        .route("/open311/v2/services/{file}", get(get_service))
        .route("/open311/v2/requests/{file}", get(get_request))
        .route("/open311/v2/tokens/{file}", get(get_token))
        .route("/open311/v2/requests/{id}/{file}", post(post_rating))
}

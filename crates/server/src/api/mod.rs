//! The handlers of `/api/v1`. Each one: who is calling (auth) → what they may see or do
//! (role and territorial scope) → the engine or a read connection → the wire shape.
//!
//! Architecture Invariant: a case outside the caller's scope answers exactly like a case
//! that does not exist (404), so scopes never leak existence.
//!
//! Files by what they hold: `cases` (report, list, get, transitions, inbox), `reference`
//! (regions, locate, categories, departments), `stats`, `stream` (the event stream), `triage` (the 待分拨 queue),
//! (regions, locate, categories, departments), `stats`, `topics` (hot topics), `stream` (the event stream),
//! `auth` (sign-in, sign-out), `health` (liveness, readiness).

mod auth;
mod cases;
mod health;
mod reference;
mod stats;
mod stream;
mod topics;
mod triage;

pub use auth::{login, logout};
pub use cases::{
    actions_now, get_case, inbox, list_cases, post_report, post_transition, ListParams,
    MAX_LIST_VALUES,
};
pub use health::{healthz, readyz};
pub use reference::{categories, departments, locate, regions, LocateParams, RegionParams};
pub use stats::stats;
pub use stream::{events_stream, StreamParams};
pub use topics::{hot_topics_handler as hot_topics, TopicParams};
pub use triage::{triage_queue, TriageParams};

use crate::http::error::{ApiError, Problem};
use axum::response::Response;

type ApiResult = Result<Response, ApiError>;

/// The fallback: an unknown path is 404 `no_such_endpoint`.
pub async fn not_found() -> ApiError {
    ApiError::new(
        Problem::NoSuchEndpoint,
        "there is no such endpoint; see /api/openapi.json",
    )
}

/// The api room's state: fixed windows per key (see [`crate::http::access::Window`]).
pub struct ApiLimits {
    /// Failed sign-ins per account ([`crate::LOGIN_FAILURES`] in [`crate::LOGIN_WINDOW`]).
    pub login_accounts: crate::http::access::Window,
    /// Failed sign-ins per peer address ([`crate::LOGIN_PEER_FAILURES`]).
    pub login_peers: crate::http::access::Window,
    /// Anonymous lookups of cases by number per peer address ([`crate::PUBLIC_LOOKUPS`]
    /// a minute).
    pub public_lookups: crate::http::access::Window,
    /// The hot topics' answers of the last minute.
    pub hot_topics: topics::TopicCache,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        use crate::http::access::Window;
        use crate::{LOGIN_FAILURES, LOGIN_PEER_FAILURES, LOGIN_WINDOW, PUBLIC_LOOKUPS};
        ApiLimits {
            login_accounts: Window::new(LOGIN_FAILURES, LOGIN_WINDOW),
            login_peers: Window::new(LOGIN_PEER_FAILURES, LOGIN_WINDOW),
            public_lookups: Window::new(PUBLIC_LOOKUPS, cityos_core::time::MINUTE),
            hot_topics: topics::TopicCache::default(),
        }
    }
}

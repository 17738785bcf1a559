//! Errors as the API speaks them: RFC 9457 `application/problem+json` with a stable
//! snake_case `code` from the one table of problems ([`Problem`]), the HTTP status and a message a person understands. One exhaustive
//! table maps every engine and request error to its status and code; internal errors are
//! logged and answered with a generic message, never leaked.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use cityos_core::territory::TerritoryError;
use cityos_core::workflow::WorkflowError;
use cityos_engine::EngineError;

pub use crate::http::problems::Problem;

#[derive(Debug, Clone)]
pub struct ApiError {
    /// The problem, from the one table ([`Problem`]); `status` and `code` are its.
    pub problem: Problem,
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for a `Retry-After` header (503 under back-pressure, 429).
    pub retry_after: Option<u32>,
    /// Every problem found in a submitted document (`"line:column: message"`), answered as
    /// the extension member `problems` when not empty.
    pub problems: Vec<String>,
    /// Several nodes: the request's partition, held by another node — the answer carries
    /// it as a [`NotOwner`] extension, so the forwarding layer can send the request on.
    pub partition: Option<String>,
}

/// A response extension (never sent): the engine refused the request because another
/// node holds this partition (`runtime::cluster::forward` sends it there).
#[derive(Debug, Clone)]
pub struct NotOwner(pub String);

impl ApiError {
    pub fn new(problem: Problem, detail: impl Into<String>) -> ApiError {
        ApiError {
            problem,
            status: problem.status(),
            code: problem.code(),
            detail: detail.into(),
            retry_after: None,
            problems: Vec::new(),
            partition: None,
        }
    }
    /// Names every problem found in a submitted document (the `problems` member).
    pub fn with_problems(mut self, problems: Vec<String>) -> ApiError {
        self.problems = problems;
        self
    }
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(Problem::NotFound, format!("{what} was not found"))
    }
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(Problem::Forbidden, detail)
    }
    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        crate::http::log::event("internal_error", &[("error", &what)]);
        ApiError::new(
            Problem::Internal,
            "an internal error occurred; it has been logged",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "type": format!("/problems/{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "code": self.code,
            // No unmasked personal data in any error message: a phone or ID number that
            // came in with a bad request is not repeated back (or into a log).
            "detail": cityos_core::privacy::mask_personal(&self.detail),
        });
        if !self.problems.is_empty() {
            let masked: Vec<String> = self
                .problems
                .iter()
                .map(|p| cityos_core::privacy::mask_personal(p))
                .collect();
            body["problems"] = serde_json::json!(masked);
        }
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if let Some(p) = self.partition {
            r.extensions_mut().insert(NotOwner(p));
        }
        r
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let msg = e.to_string();
        match e {
            EngineError::Workflow(w) => match w {
                WorkflowError::NotAllowedInState { .. } => {
                    ApiError::new(Problem::TransitionNotAllowed, msg)
                }
                WorkflowError::RoleNotAllowed { .. } | WorkflowError::NoDepartment => {
                    ApiError::new(Problem::Forbidden, msg)
                }
                WorkflowError::NotYourTask { .. } => ApiError::new(Problem::NotYourTask, msg),
                // Out of scope answers as if the case did not exist.
                WorkflowError::OutOfScope => ApiError::not_found("the case"),
                WorkflowError::VersionConflict { .. } => {
                    ApiError::new(Problem::VersionConflict, msg)
                }
                WorkflowError::UnknownCategory(_) => ApiError::new(Problem::UnknownCategory, msg),
                WorkflowError::UnknownDepartment(_) => {
                    ApiError::new(Problem::UnknownDepartment, msg)
                }
                WorkflowError::Invalid(_) => ApiError::new(Problem::InvalidArgument, msg),
                WorkflowError::Routing(_) => ApiError::new(Problem::NoRoute, msg),
            },
            EngineError::Territory(t) => match t {
                TerritoryError::Outside { .. } => ApiError::new(Problem::OutsideTerritory, msg),
                TerritoryError::InvalidPoint { .. } => ApiError::new(Problem::InvalidPoint, msg),
                other => ApiError::internal(other),
            },
            EngineError::NotFound(_) => ApiError::new(Problem::NotFound, msg),
            EngineError::Invalid(_) => ApiError::new(Problem::InvalidArgument, msg),
            EngineError::Stopped => ApiError::new(Problem::Unavailable, msg),
            // Reaches the client only when no node holds the partition at the moment (a
            // takeover under way) or the owner cannot be reached: try again shortly.
            EngineError::NotOwner { partition } => {
                let mut e = ApiError::new(
                    Problem::Unavailable,
                    format!("{msg}; it is moving between nodes — nothing was written, try again shortly"),
                )
                .retry_after(1);
                e.partition = Some(partition);
                e
            }
            EngineError::Store(s) => s.into(),
        }
    }
}

impl From<cityos_engine::StoreError> for ApiError {
    /// A store that cannot be reached or cancelled a slow statement is a 503 to retry
    /// (`store_unavailable`, `store_timeout`, with `Retry-After`); a full disk is a 507
    /// (`insufficient_storage`); anything else is internal.
    fn from(e: cityos_engine::StoreError) -> ApiError {
        use cityos_engine::StoreError as E;
        match e {
            E::Unavailable(_) => {
                crate::http::log::event("store_unavailable", &[("error", &e)]);
                ApiError::new(
                    Problem::StoreUnavailable,
                    "the database cannot be reached at the moment; nothing was lost, try again shortly",
                )
                .retry_after(2)
            }
            E::Timeout(_) => {
                crate::http::log::event("store_timeout", &[("error", &e)]);
                ApiError::new(
                    Problem::StoreTimeout,
                    "the request took the database too long and was cancelled; narrow it or try again later",
                )
                .retry_after(5)
            }
            E::Full(_) => {
                crate::http::log::event("insufficient_storage", &[("error", &e)]);
                ApiError::new(
                    Problem::InsufficientStorage,
                    "the database has no room left to store this; nothing was changed, and reading still works",
                )
            }
            // Several nodes: the partition moved while the request was decided; nothing
            // was written and its new owner takes the retry.
            E::Fenced { ref partition, .. } => {
                crate::http::log::event("fenced", &[("error", &e)]);
                let mut a = ApiError::new(
                    Problem::StoreUnavailable,
                    "this part of the district just moved to another node; nothing was written, try again shortly",
                )
                .retry_after(1);
                // The forwarding layer sends it on to the partition's new owner.
                a.partition = Some(partition.clone());
                a
            }
            other => ApiError::internal(other),
        }
    }
}

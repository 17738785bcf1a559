//! The reporter's rating (回访): `POST requests/{id}/rating` with the keyed report token.

use super::discovery::public_category;
use super::reply::{render, render_error, split_format, Format, Open311Error};
use super::requests::{form_value, read_form};
use crate::cases::report_of_token;
use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use cityos_core::case::{Case, Report, ReportId};
use cityos_engine::engine::{Request as EngineRequest, Response as EngineResponse};
use cityos_engine::{CaseStore, StoreError};
use serde_json::{json, Value};

/// `POST /open311/v2/requests/{id}/rating.{json|xml}` (cityos extension, 回访): the
/// reporter rates the result of a closed request — form fields `token` (from the
/// create answer), `satisfaction` 1–5 and an optional `comment`.
pub(super) async fn post_rating(
    State(st): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(("rating", fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found(format!("there is no resource {file:?} under a request")),
        );
    };
    match rate(&st, &id, req).await {
        Ok(v) => render(fmt, StatusCode::OK, "ratings", &v),
        Err(e) => render_error(fmt, e),
    }
}

pub(super) async fn rate(st: &AppState, number: &str, req: Request) -> Result<Value, Open311Error> {
    let pairs = read_form(req).await?;
    let one = |k: &str| form_value(&pairs, k);
    let token = one("token")
        .ok_or_else(|| Open311Error::bad("token is required: the one the create answer gave"))?;
    let score: u8 = one("satisfaction")
        .and_then(|v| v.parse().ok())
        .filter(|v| (1..=5).contains(v))
        .ok_or_else(|| Open311Error::bad("satisfaction must be a whole number from 1 to 5"))?;
    let comment = one("comment").unwrap_or_default();
    if comment.chars().count() > 500 {
        return Err(Open311Error::bad("comment must be at most 500 characters"));
    }
    let forbidden = || {
        Open311Error::new(
            StatusCode::FORBIDDEN,
            "the token does not belong to this request",
        )
    };
    let report = report_of_token(st, &token).ok_or_else(forbidden)?;
    let n = number.to_string();
    let (case, report) =
        st.0.reads
            .run(move |s| case_and_report(s, &n, report))
            .await?
            .map_err(ApiError::from)?;
    let case = case
        .filter(|c| public_category(st, &c.category).is_some())
        .ok_or_else(|| Open311Error::not_found(format!("there is no request {number:?}")))?;
    if report
        .as_ref()
        .is_none_or(|r| !case.reports.contains(&r.id))
    {
        return Err(forbidden());
    }
    let command = cityos_core::workflow::Command::new(
        cityos_core::workflow::Action::Evaluate {
            score,
            comment: comment.clone(),
        },
        cityos_core::workflow::Actor {
            // The report, never the token: the log is read by staff and the stream.
            id: format!("open311:report-{}", report.map_or(0, |r| r.id)),
            role: cityos_core::Role::Citizen,
            department: None,
            scope: None,
        },
    );
    let now = st.now();
    match crate::cases::engine_call(
        st,
        EngineRequest::Transition {
            case: case.id,
            command,
            now,
        },
    )
    .await?
    {
        EngineResponse::Transition(o) => Ok(json!([{
            "service_request_id": o.case.number,
            "satisfaction": score,
            "comment": comment,
            "status": if o.case.state.is_open() { "open" } else { "closed" },
        }])),
        other => Err(Open311Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected engine answer {other:?}"),
        )),
    }
}

/// The case numbered `number` and the report a rating token names.
fn case_and_report(
    s: &mut dyn CaseStore,
    number: &str,
    report: ReportId,
) -> Result<(Option<Case>, Option<Report>), StoreError> {
    Ok((s.load_case_by_number(number)?, s.load_report(report)?))
}

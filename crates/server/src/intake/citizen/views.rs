//! Following requests: the request views (the first report's full text, the address
//! line split off), `GET requests` (at most [`super::MAX_RESULTS`], within
//! [`super::MAX_SPAN`]), `GET requests/{id}` and `GET tokens/{token}`.

use super::discovery::public_category;
use super::reply::{
    check_jurisdiction, query_params, render, render_error, split_format, Format, Open311Error,
};
use super::{ADDRESS_LINE, MAX_RESULTS, MAX_SPAN};
use crate::cases::report_of_token;
use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use cityos_core::case::{Case, ReportId};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis};
use cityos_engine::query::{CaseQuery, Page, Sort};
use cityos_engine::{CaseStore, StoreError};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A report's text split into the citizen's description and the `address_string` they
/// gave (kept as the text's last line).
fn split_address(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once('\n') {
        Some((d, last)) if last.starts_with(ADDRESS_LINE) => (
            d,
            Some(&last[ADDRESS_LINE.len()..]).filter(|a| !a.is_empty()),
        ),
        _ => (text, None),
    }
}

/// The full text of each case's first report (the case's own title when it has none).
async fn first_texts(st: &AppState, cases: &[Case]) -> Result<Vec<String>, Open311Error> {
    let firsts: Vec<(Option<i64>, String)> = cases
        .iter()
        .map(|c| (c.reports.first().copied(), c.title.clone()))
        .collect();
    Ok(st
        .0
        .reads
        .run(move |s| first_report_texts(s, firsts))
        .await?
        .map_err(ApiError::from)?)
}

/// Cases as GeoReport v2 service requests, with their full descriptions.
async fn request_views(st: &AppState, cases: &[Case]) -> Result<Value, Open311Error> {
    let texts = first_texts(st, cases).await?;
    Ok(Value::Array(
        cases
            .iter()
            .zip(&texts)
            .map(|(c, t)| request_view(st, c, t))
            .collect(),
    ))
}

/// A case as a GeoReport v2 service request, as the public sees it (`text` is its first
/// report's text): phone numbers, ID numbers and e-mail addresses in the description
/// and the address are masked.
fn request_view(st: &AppState, c: &Case, text: &str) -> Value {
    let mut v = request_fields(st, c, text);
    for field in ["description", "address"] {
        if let Some(Value::String(d)) = v.get_mut(field) {
            *d = cityos_core::privacy::mask_personal(d);
        }
    }
    v
}

fn request_fields(st: &AppState, c: &Case, text: &str) -> Value {
    let cfg = &st.0.cfg;
    let t = &cfg.territory;
    let (description, given_address) = split_address(text);
    let regions: String = [
        &c.regions.district,
        &c.regions.subdistrict,
        &c.regions.community,
    ]
    .into_iter()
    .flatten()
    .filter_map(|code| t.by_code(code).map(|id| t.region(id).name_zh.clone()))
    .collect::<Vec<_>>()
    .join("");
    let address = given_address.map_or(regions, str::to_string);
    let agency = c
        .lead_task()
        .and_then(|task| cfg.taxonomy.department(&task.department))
        .map(|d| d.name_zh.clone());
    let expected = c
        .deadline(cityos_core::Step::Handle)
        .map(|d| d.due)
        .or_else(|| c.due());
    json!({
        "service_request_id": c.number,
        "status": if c.state.is_open() { "open" } else { "closed" },
        "status_notes": format!("{} {}", c.state.name_zh(), c.state.as_str().replace('_', " ")),
        "service_name": cfg.taxonomy.category(&c.category).map(|x| x.name_zh.clone()),
        "service_code": c.category,
        "description": description,
        "agency_responsible": agency,
        "service_notice": Value::Null,
        "requested_datetime": format_rfc3339(c.created_at),
        "updated_datetime": format_rfc3339(c.updated_at),
        "expected_datetime": expected.map(format_rfc3339),
        "address": address,
        "address_id": Value::Null,
        "zipcode": Value::Null,
        "lat": c.lat,
        "long": c.lon,
        "media_url": c.media.first(),
    })
}

pub(super) async fn list_requests(
    st: &AppState,
    params: &HashMap<String, String>,
) -> Result<Value, Open311Error> {
    let nonempty = |k: &str| params.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    // service_request_id overrides every other filter.
    if let Some(ids) = nonempty("service_request_id") {
        let ids: Vec<String> = ids
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .take(MAX_RESULTS)
            .collect();
        let cases =
            st.0.reads
                .run(move |s| cases_by_number(s, &ids))
                .await?
                .map_err(ApiError::from)?;
        let cases: Vec<Case> = cases
            .into_iter()
            .flatten()
            .filter(|c| crate::cases::publicly_followable(st, c))
            .collect();
        return request_views(st, &cases).await;
    }
    let date = |k: &str| -> Result<Option<Millis>, Open311Error> {
        nonempty(k)
            .map(|s| {
                parse_datetime(s).ok_or_else(|| {
                    Open311Error::bad(format!(
                        "{k} {s:?} is not a W3C datetime such as 2026-11-26T09:30:00+08:00"
                    ))
                })
            })
            .transpose()
    };
    let now = st.now();
    let (start, end) = (date("start_date")?, date("end_date")?);
    let (from, to) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, (s + MAX_SPAN).min(now + 1).max(s)),
        (None, Some(e)) => (e - MAX_SPAN, e),
        // The specification's default: the last 90 days.
        (None, None) => (now + 1 - MAX_SPAN, now + 1),
    };
    if to < from {
        return Err(Open311Error::bad("end_date is before start_date"));
    }
    if to - from > MAX_SPAN {
        return Err(Open311Error::bad(
            "start_date and end_date may be at most 90 days apart",
        ));
    }
    let categories = match nonempty("service_code") {
        Some(code) => {
            let mut v = code
                .split(',')
                .map(|c| {
                    public_category(st, c.trim())
                        .map(|c| c.code.clone())
                        .ok_or_else(|| Open311Error::bad(format!("unknown service_code {c:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Repeats are one value: the query stays as small as the taxonomy.
            v.sort();
            v.dedup();
            v
        }
        None => {
            st.0.cfg
                .taxonomy
                .categories
                .iter()
                .filter(|c| c.public)
                .map(|c| c.code.clone())
                .collect()
        }
    };
    let states = match nonempty("status") {
        None => Vec::new(),
        Some(s) => {
            let mut open = false;
            let mut closed = false;
            for x in s.split(',') {
                match x.trim() {
                    "open" => open = true,
                    "closed" => closed = true,
                    other => {
                        return Err(Open311Error::bad(format!(
                            "unknown status {other:?}: use open or closed"
                        )))
                    }
                }
            }
            cityos_core::case::State::ALL
                .into_iter()
                .filter(|st| if st.is_open() { open } else { closed })
                .filter(|st| *st != cityos_core::case::State::Merged)
                .collect()
        }
    };
    let q = CaseQuery {
        states,
        categories,
        created_from: Some(from),
        created_to: Some(to),
        sort: Sort::Created,
        descending: true,
        limit: MAX_RESULTS,
        now,
        ..Default::default()
    };
    let page =
        st.0.reads
            .run(move |s| page_of(s, &q))
            .await?
            .map_err(ApiError::from)?;
    request_views(st, &page.cases).await
}

/// `GET /open311/v2/requests/{id}.{json|xml}`
pub(super) async fn get_request(
    State(st): State<AppState>,
    Path(file): Path<String>,
    uri: Uri,
) -> Response {
    let Some((id, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the request with .json or .xml"),
        );
    };
    let id = id.to_string();
    let r = async {
        check_jurisdiction(&st, &query_params(&uri)?)?;
        let number = id.clone();
        let case =
            st.0.reads
                .run(move |s| case_by_number(s, &number))
                .await?
                .map_err(ApiError::from)?
                .filter(|c| crate::cases::publicly_followable(&st, c))
                .ok_or_else(|| Open311Error::not_found(format!("there is no request {id:?}")))?;
        request_views(&st, std::slice::from_ref(&case)).await
    }
    .await;
    match r {
        Ok(v) => render(fmt, StatusCode::OK, "service_requests", &v),
        Err(e) => render_error(fmt, e),
    }
}

/// `GET /open311/v2/tokens/{token}.{json|xml}` — the token is the report's number.
pub(super) async fn get_token(
    State(st): State<AppState>,
    Path(file): Path<String>,
    uri: Uri,
) -> Response {
    let Some((token, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the token with .json or .xml"),
        );
    };
    let token = token.to_string();
    let r = async {
        check_jurisdiction(&st, &query_params(&uri)?)?;
        let unknown = || Open311Error::not_found(format!("there is no token {token:?}"));
        let id = report_of_token(&st, &token).ok_or_else(unknown)?;
        let case =
            st.0.reads
                .run(move |s| case_of_report(s, id))
                .await?
                .map_err(ApiError::from)?
                .filter(|c| crate::cases::publicly_followable(&st, c))
                .ok_or_else(unknown)?;
        Ok::<_, Open311Error>(json!([{"service_request_id": case.number, "token": token}]))
    }
    .await;
    match r {
        Ok(v) => render(fmt, StatusCode::OK, "service_requests", &v),
        Err(e) => render_error(fmt, e),
    }
}

/// The text of each case's first report (`None`, or a report gone: the title instead).
fn first_report_texts(
    s: &mut dyn CaseStore,
    firsts: Vec<(Option<i64>, String)>,
) -> Result<Vec<String>, StoreError> {
    firsts
        .into_iter()
        .map(|(r, title)| {
            Ok(match r {
                Some(r) => s.load_report(r)?.map_or(title, |r| r.text),
                None => title,
            })
        })
        .collect()
}

/// The cases numbered `numbers`, in order (`None` for a number no case has).
fn cases_by_number(
    s: &mut dyn CaseStore,
    numbers: &[String],
) -> Result<Vec<Option<Case>>, StoreError> {
    numbers.iter().map(|n| s.load_case_by_number(n)).collect()
}

/// A page of the cases a query selects.
fn page_of(s: &mut dyn CaseStore, q: &CaseQuery) -> Result<Page, StoreError> {
    s.list_cases(q)
}

/// The case numbered `number`.
fn case_by_number(s: &mut dyn CaseStore, number: &str) -> Result<Option<Case>, StoreError> {
    s.load_case_by_number(number)
}

/// The case a report belongs to.
fn case_of_report(s: &mut dyn CaseStore, report: ReportId) -> Result<Option<Case>, StoreError> {
    match s.load_report(report)? {
        Some(r) => s.load_case(r.case_id),
        None => Ok(None),
    }
}

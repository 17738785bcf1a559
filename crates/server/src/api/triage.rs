//! The 待分拨 queue (智能分拨, issue 14): the open cases in the `triage` category — reports
//! whose text gave no confident category — oldest first, each with the whole first report
//! (officers read citizens' words as written), its place, the model's suggestion and the
//! deadline to pick a category. Staff pick through the transition endpoint (`classify`).

use super::ApiResult;
use crate::cases::wire;
use crate::cases::{scope_query, set_region_level};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use cityos_core::case::{Case, Report};
use cityos_core::time::format_rfc3339;
use cityos_core::workflow::{rule, TRIAGE};
use cityos_core::Role;
use cityos_engine::query::{CaseQuery, Cursor, Sort};
use cityos_engine::{CaseStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/triage` — the district officer sees the whole queue, a sub-district
/// officer the cases in their sub-district; everyone else is refused (403).
pub async fn triage_queue(
    State(st): State<AppState>,
    crate::Q(params): crate::Q<TriageParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    if !matches!(p.role, Role::DistrictOfficer | Role::SubdistrictOfficer) {
        return Err(ApiError::forbidden(format!(
            "role {} does not work the 待分拨 triage queue (command-centre officers do)",
            p.role
        )));
    }
    let bad = |m: String| ApiError::new(Problem::InvalidParameter, m);
    let limit = match params.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| bad(format!("limit must be 1–200, not {l:?}")))?,
    };
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            Cursor::decode(c)
                .ok_or_else(|| bad(format!("cursor {c:?} is not one this server returned")))
        })
        .transpose()?;
    let now = st.now();
    let mut q = CaseQuery {
        // The states in which a case can still be classified.
        states: rule("classify")
            .map(|r| r.from.to_vec())
            .unwrap_or_default(),
        categories: vec![TRIAGE.to_string()],
        now,
        sort: Sort::Created,
        descending: false,
        limit,
        after,
        ..Default::default()
    };
    if !scope_query(&st, &p, &mut q) {
        return Ok(Json(json!({"cases": [], "next_cursor": null})).into_response());
    }
    set_region_level(&st, &mut q);
    let (page, firsts) = st.0.reads.run(move |s| queue(s, &q)).await??;
    let cfg = &st.0.cfg;
    let items: Vec<Value> = page
        .cases
        .iter()
        .zip(&firsts)
        .map(|(c, r)| item(c, r.as_ref(), cfg, now))
        .collect();
    Ok(Json(json!({
        "cases": items,
        "next_cursor": page.next.map(|c| c.encode()),
    }))
    .into_response())
}

/// A page of the queue and each case's first report.
fn queue(
    s: &mut dyn CaseStore,
    q: &CaseQuery,
) -> Result<(cityos_engine::query::Page, Vec<Option<Report>>), StoreError> {
    let page = s.list_cases(q)?;
    let mut firsts = Vec::with_capacity(page.cases.len());
    for c in &page.cases {
        let first = c.reports.first().copied();
        firsts.push(
            s.reports_of(c.id)?
                .into_iter()
                .min_by_key(|r| (Some(r.id) != first, r.at, r.id)),
        );
    }
    Ok((page, firsts))
}

/// One case of the queue as the triage desk reads it.
fn item(c: &Case, first: Option<&Report>, cfg: &cityos_engine::config::Config, now: i64) -> Value {
    let v = wire::case_view_for(c, cfg, now, Some(Role::DistrictOfficer));
    json!({
        "id": c.id,
        "number": c.number,
        "title": v.title,
        "text": first.map(|r| r.text.clone()).unwrap_or_else(|| c.title.clone()),
        "channel": v.channel,
        "priority": v.priority,
        "state": v.state,
        "state_name": v.state_name,
        "created_at": format_rfc3339(c.created_at),
        "reporters": v.reporters,
        "lon": c.lon,
        "lat": c.lat,
        "subdistrict": v.subdistrict,
        "community": v.community,
        "grid": v.grid,
        "suggestion": c.suggestion.as_deref().map(|s| wire::suggestion_view(s, cfg)),
        "due": v.due,
        "time_left_ms": v.time_left_ms,
        "overdue": v.overdue,
        "version": c.version,
    })
}

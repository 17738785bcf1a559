//! Case statistics in the caller's scope, narrowed by the case-list parameters.

use super::cases::{check_text_search, to_query, ListParams};
use super::ApiResult;
use crate::cases::{scope_query, set_region_level};
use crate::http::error::ApiError;
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use cityos_core::time::local_date;
use cityos_engine::query::{CaseQuery, Stats};
use cityos_engine::{CaseStore, StoreError};
use serde_json::json;

pub async fn stats(
    State(st): State<AppState>,
    crate::Q(params): crate::Q<ListParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    check_text_search(&params, p.role)?;
    let mut q = to_query(&st, &params)?;
    if !scope_query(&st, &p, &mut q) {
        return Err(ApiError::forbidden("nothing is visible to this account"));
    }
    // Counts only: restricted categories stay counted (the same whether or not the
    // maintained counts answer); their cases are never listed here.
    q.exclude_categories.clear();
    set_region_level(&st, &mut q);
    let today = local_date(q.now).local_midnight();
    let s =
        st.0.reads
            .run(move |store| stats_of(store, &q, today))
            .await??;
    let tax = &st.0.cfg.taxonomy;
    let map = |v: &[(String, i64)]| {
        v.iter()
            .map(|(k, n)| (k.clone(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
    };
    Ok(Json(json!({
        "total": s.total,
        "by_state": map(&s.by_state),
        "by_domain": map(&s.by_domain),
        "by_subdistrict": map(&s.by_subdistrict),
        "by_department": s.by_department.iter().map(|(d, h, o)| json!({
            "department": d, "name_zh": tax.department(d).map(|x| x.name_zh.clone()),
            "handled": h, "on_time": o, "on_time_rate": if *h > 0 { Some(*o as f64 / *h as f64) } else { None },
        })).collect::<Vec<_>>(),
        "overdue": s.overdue,
        "today_intake": s.today_intake,
        "on_time_rate": s.on_time_rate(),
    }))
    .into_response())
}

/// The statistics of the cases a query selects (`today` = local midnight, in ms).
fn stats_of(s: &mut dyn CaseStore, q: &CaseQuery, today: i64) -> Result<Stats, StoreError> {
    s.stats(q, today)
}

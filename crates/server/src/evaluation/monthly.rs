//! The scheduled monthly report (考核月报): once a month has ended, the district's report
//! for it — the departments' ranking, the sub-districts' ranking, the district's trend —
//! is generated once and saved in the store (`evaluation_reports`) as XLSX, CSV and HTML
//! for download. `runtime::tickers::evaluation` calls [`ensure`] every few minutes; a
//! month already saved is left alone, so a restart or a second node does no harm.

use super::api::report;
use super::export::{self, Report};
use super::Reach;
use crate::http::error::ApiError;
use crate::AppState;
use cityos_core::evaluation::{Dim, Period};
use cityos_engine::SavedReport;

/// The month before the one holding `now`.
pub fn last_month(now: cityos_core::time::Millis) -> Period {
    Period::month_of(now).previous()
}

/// The district report of a month: the departments' and the sub-districts' rankings.
pub async fn build(st: &AppState, month: &Period) -> Result<Report, ApiError> {
    let mut r = report(st, month, Dim::Department, None, &Reach::All).await?;
    let subs = report(st, month, Dim::Subdistrict, None, &Reach::All).await?;
    r.title = format!("{} · 月报 · {month}", r.scheme);
    r.sections.insert(1, subs.sections[0].clone());
    Ok(r)
}

/// Saves last month's report unless it is saved already; answers its name when it saved.
pub async fn ensure(st: &AppState) -> Result<Option<String>, ApiError> {
    let month = last_month(st.now());
    let name = month.to_string();
    let n = name.clone();
    if st
        .0
        .reads
        .run(move |s| s.evaluation_report(&n))
        .await??
        .is_some()
    {
        return Ok(None);
    }
    let r = build(st, &month).await?;
    let saved = SavedReport {
        name: name.clone(),
        created_at: st.now(),
        xlsx: export::xlsx(&r).map_err(ApiError::internal)?,
        csv: export::csv(&r),
        html: export::html(&r),
    };
    st.0.reads
        .write(move |s| s.put_evaluation_report(&saved))
        .await??;
    Ok(Some(name))
}

//! The demo's pool: a small synthetic district (no real persons: ID numbers of province
//! 99, names 「某」, 模拟路) imported as one delivery, so the demo adviser finds explained
//! candidates waiting.

use crate::http::error::ApiError;
use crate::AppState;
use cityos_core::assistance::generate::{self, Community, Spec};
use cityos_core::time::{local_date, Date, Millis};
use cityos_core::Level;
use serde_json::Value;

/// Households of the demo's district (the full-size one is `cityos assistance eval`'s).
pub const DEMO_HOUSEHOLDS: usize = 8000;
/// The demo adviser's sub-district (天平路), whose communities are drawn more often so
/// the adviser has a morning's work waiting.
pub const DEMO_SUBDISTRICT: &str = "310104003";
/// How much more often.
const WEIGHT: usize = 12;

/// Imports the synthetic district as of yesterday unless the pool already holds imports.
/// Answers the cases opened.
pub async fn seed(
    st: &AppState,
    households: usize,
    seed: u64,
    now: Millis,
) -> Result<Vec<String>, ApiError> {
    if super::room(st).await?.imports > 0 {
        return Ok(Vec::new());
    }
    let t = &st.0.cfg.territory;
    let communities: Vec<Community> = t
        .regions()
        .filter(|(_, r)| r.level == Level::Community)
        .map(|(_, r)| Community {
            code: r.code.clone(),
            subdistrict: r
                .parent
                .map(|p| t.region(p).code.clone())
                .unwrap_or_default(),
        })
        .collect();
    let mine: Vec<Community> = communities
        .iter()
        .filter(|c| c.subdistrict == DEMO_SUBDISTRICT)
        .cloned()
        .collect();
    let mut communities = communities;
    for _ in 1..WEIGHT {
        communities.extend(mine.iter().cloned());
    }
    let as_of = Date::from_days(local_date(now).days() - 1);
    let d = generate::generate(
        &communities,
        &Spec {
            households,
            seed,
            as_of,
        },
    );
    let (decl, _) = super::shipped();
    let m = decl.membership();
    let mut files: Vec<&(&str, String)> = d.files.iter().collect();
    files.sort_by_key(|(s, _)| decl.source(s) != Some(m));
    let n = files.len();
    let mut opened = Vec::new();
    for (i, (source, text)) in files.into_iter().enumerate() {
        let v: Value = super::import(
            st,
            source,
            &format!("{source} {as_of}（演示）"),
            as_of,
            text,
            i + 1 < n,
            now,
        )
        .await?;
        opened.extend(
            v["cases_opened"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from)),
        );
    }
    Ok(opened)
}

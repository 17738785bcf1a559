//! Hot topics (热点问题, issue 14): what many citizens have been saying lately, clustered
//! by [`cityos_core::classify::topics`] from the latest citizen and staff reports.
//!
//! Who: the district officer (everything), a sub-district officer (their sub-district
//! only), the analyst (everything); anonymous callers 401, every other role 403. Labels are
//! always masked (phone and ID numbers inside a message never show). Answers are cached
//! for [`CACHE_MS`] per (days, region, limit): the clustering reads up to
//! [`MAX_MESSAGES`] reports.

use super::ApiResult;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use cityos_core::classify::topics::{hot_topics, Message, Options};
use cityos_core::time::{format_rfc3339, Millis, DAY};
use cityos_core::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The newest reports a clustering reads at most.
pub const MAX_MESSAGES: i64 = 20_000;
/// How long an answer is reused.
pub const CACHE_MS: Millis = 60_000;
/// The longest window, in days.
pub const MAX_DAYS: u32 = 30;
/// The most topics one answer holds.
pub const MAX_LIMIT: usize = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicParams {
    pub days: Option<u32>,
    pub limit: Option<usize>,
    pub region: Option<String>,
}

/// What an answer is cached by: (days, region code or "", limit).
type CacheKey = (u32, String, usize);

/// Answers by [`CacheKey`], with when they were made.
#[derive(Default)]
pub struct TopicCache(Mutex<HashMap<CacheKey, (Millis, Value)>>);

pub async fn hot_topics_handler(
    State(st): State<AppState>,
    crate::Q(params): crate::Q<TopicParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    match p.role {
        Role::DistrictOfficer | Role::SubdistrictOfficer | Role::Analyst => {}
        r => {
            return Err(ApiError::forbidden(format!(
                "role {r} does not see the hot topics (officers and analysts do)"
            )))
        }
    }
    let days = params.days.unwrap_or(7);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!("days must be 1 to {MAX_DAYS}, not {days}"),
        ));
    }
    let limit = params.limit.unwrap_or(10);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!("limit must be 1 to {MAX_LIMIT}, not {limit}"),
        ));
    }
    let t = st.0.cfg.territory.clone();
    let region = match params.region.as_deref().filter(|s| !s.is_empty()) {
        Some(code) => Some(t.by_code(code).ok_or_else(|| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("there is no region {code:?}"),
            )
        })?),
        None => None,
    };
    // A caller confined to a region sees inside it only.
    let region = match p.scope.as_deref().and_then(|s| t.by_code(s)) {
        Some(scope) => match region {
            Some(r) if t.is_within(r, scope) => Some(r),
            Some(_) => {
                return Err(ApiError::forbidden(
                    "the region is outside the area this account may see",
                ))
            }
            None => Some(scope),
        },
        None if p.scope.is_some() => {
            return Err(ApiError::forbidden("nothing is visible to this account"))
        }
        None => region,
    };
    let key = (
        days,
        region.map_or_else(String::new, |r| t.region(r).code.clone()),
        limit,
    );
    let now = st.now();
    if let Some((at, v)) = st.0.api.hot_topics.0.lock().expect("cache").get(&key) {
        if now - at < CACHE_MS && now >= *at {
            return Ok(Json(v.clone()).into_response());
        }
    }
    let since = now - Millis::from(days) * DAY;
    let rows =
        st.0.reads
            .run(move |s| s.recent_reports(since, MAX_MESSAGES))
            .await??;
    let read = rows.len();
    let tax = st.0.cfg.taxonomy.clone();
    let v = tokio::task::spawn_blocking(move || {
        let messages: Vec<Message> = rows
            .into_iter()
            .filter_map(|(r, number)| {
                // Restricted categories (a household's circumstances) are no topic.
                if tax.category(&r.category).is_some_and(|c| c.restricted) {
                    return None;
                }
                let chain = t.locate(r.lon, r.lat).ok()?;
                if let Some(want) = region {
                    if !chain.0.contains(&Some(want)) {
                        return None;
                    }
                }
                let place = t.codes(chain).subdistrict.unwrap_or_default();
                Some(Message {
                    report: r.id,
                    case: r.case_id,
                    number,
                    category: r.category,
                    lon: r.lon,
                    lat: r.lat,
                    place,
                    at: r.at,
                    text: r.text,
                })
            })
            .collect();
        let topics = hot_topics(
            &messages,
            &Options {
                limit,
                ..Options::default()
            },
        );
        let name = |code: &str| t.by_code(code).map(|id| t.region(id).name_zh.clone());
        json!({
            "days": days,
            "region": region.map(|r| t.region(r).code.clone()),
            "since": format_rfc3339(since),
            "generated_at": format_rfc3339(now),
            "messages": messages.len(),
            "truncated": read as i64 >= MAX_MESSAGES,
            "topics": topics.iter().enumerate().map(|(i, x)| json!({
                "rank": i + 1,
                "label": x.label,
                "count": x.count,
                "cases": x.cases,
                "category": x.category,
                "category_name_zh": tax.category(&x.category).map(|c| c.name_zh.clone()),
                "places": x.places.iter().map(|(code, n)| json!({
                    "code": code, "name_zh": name(code), "count": n,
                })).collect::<Vec<_>>(),
                "first_seen": format_rfc3339(x.first_seen),
                "last_seen": format_rfc3339(x.last_seen),
                "samples": x.samples,
            })).collect::<Vec<_>>(),
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("hot topics: {e}")))?;
    {
        let mut c = st.0.api.hot_topics.0.lock().expect("cache");
        if c.len() > 200 {
            c.retain(|_, (at, _)| now - *at < CACHE_MS);
        }
        c.insert(key, (now, v.clone()));
    }
    Ok(Json(v).into_response())
}

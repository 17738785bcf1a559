//! Vital signs in the service: each indicator's latest value and warning level per region
//! (the district and each sub-district), kept current — readings-fed indicators through
//! sliding windows as readings arrive, case statistics when asked, external ones when
//! pushed. Reading a level is constant time.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::indicators::{Indicator, Source, WarnLevel};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis, HOUR};
use cityos_core::windows::Sliding;
use cityos_core::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct Latest {
    pub value: f64,
    pub level: WarnLevel,
    pub at: Millis,
}

#[derive(Debug, Default)]
pub struct VitalsState {
    latest: HashMap<(usize, String), Latest>,
    windows: HashMap<(usize, String), Sliding>,
    /// (device kind, metric) → readings-fed indicators.
    by_reading: HashMap<(String, String), Vec<usize>>,
    /// Per device: the district and sub-district codes it lies in.
    device_regions: Vec<Vec<String>>,
}

impl VitalsState {
    pub fn new(cfg: &cityos_engine::demo::Config) -> VitalsState {
        let mut by_reading: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, ind) in cfg.indicators.iter().enumerate() {
            if let Source::Readings {
                device_kind,
                metric,
                ..
            } = &ind.source
            {
                by_reading
                    .entry((device_kind.clone(), metric.clone()))
                    .or_default()
                    .push(i);
            }
        }
        let t = &cfg.territory;
        let device_regions = cfg
            .sensing
            .devices
            .iter()
            .map(|d| match t.locate(d.lon, d.lat) {
                Ok(chain) => {
                    let codes = t.codes(chain);
                    [codes.district, codes.subdistrict]
                        .into_iter()
                        .flatten()
                        .collect()
                }
                Err(_) => Vec::new(),
            })
            .collect();
        VitalsState {
            by_reading,
            device_regions,
            ..Default::default()
        }
    }

    fn set(&mut self, ind: &Indicator, i: usize, region: &str, value: f64, at: Millis) {
        set_latest(&mut self.latest, ind, i, region, value, at);
    }

    /// A reading taken by the sensing end.
    pub fn reading(
        &mut self,
        indicators: &[Indicator],
        device: usize,
        kind: &str,
        metric: &str,
        value: f64,
        at: Millis,
    ) {
        let VitalsState {
            latest,
            windows,
            by_reading,
            device_regions,
        } = self;
        let Some(list) = by_reading.get(&(kind.to_string(), metric.to_string())) else {
            return;
        };
        let Some(regions) = device_regions.get(device) else {
            return;
        };
        for &i in list {
            let ind = &indicators[i];
            let Source::Readings {
                func, window_ms, ..
            } = ind.source
            else {
                continue;
            };
            for r in regions {
                let w = windows
                    .entry((i, r.clone()))
                    .or_insert_with(|| Sliding::new(window_ms));
                if w.push(at, value).is_err() {
                    continue; // late for this window
                }
                if let Some(v) = w.value(func) {
                    set_latest(latest, ind, i, r, v, at);
                }
            }
        }
    }

    pub fn latest(&self, i: usize, region: &str) -> Option<Latest> {
        self.latest.get(&(i, region.to_string())).copied()
    }
}

/// A new value of an indicator in a region; its level moves with hysteresis.
fn set_latest(
    latest: &mut HashMap<(usize, String), Latest>,
    ind: &Indicator,
    i: usize,
    region: &str,
    value: f64,
    at: Millis,
) {
    let key = (i, region.to_string());
    let prev = latest.get(&key).map_or(WarnLevel::Normal, |l| l.level);
    let level = ind
        .thresholds
        .map_or(WarnLevel::Normal, |t| t.next(prev, value));
    latest.insert(key, Latest { value, level, at });
}

/// Vital signs are kept for the district and its sub-districts.
fn vital_region(st: &AppState, code: &str) -> bool {
    let t = &st.0.cfg.territory;
    t.by_code(code).is_some_and(|id| {
        matches!(
            t.region(id).level,
            cityos_core::Level::District | cityos_core::Level::Subdistrict
        )
    })
}

fn view(ind: &Indicator, region: &str, l: Option<Latest>) -> Value {
    json!({
        "code": ind.code,
        "name_zh": ind.name_zh,
        "name_en": ind.name_en,
        "domain": ind.domain.as_str(),
        "unit": ind.unit,
        "source": match &ind.source { Source::Readings { .. } => "readings", Source::Cases { .. } => "cases", Source::Dataset { .. } => "dataset", Source::External => "external" },
        "region": region,
        "value": l.map(|l| l.value),
        "level": l.map_or("normal", |l| l.level.as_str()),
        "level_zh": l.map_or("正常", |l| l.level.name_zh()),
        "at": l.map(|l| format_rfc3339(l.at)),
        "thresholds": ind.thresholds.map(|t| json!({"direction": t.direction, "blue": t.at[0], "yellow": t.at[1], "orange": t.at[2], "red": t.at[3], "hysteresis": t.hysteresis})),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    domain: Option<String>,
    region: Option<String>,
}

/// Case statistics for one region: (stat → value); domains for `open_cases_in_domain`.
async fn case_stats(
    st: &AppState,
    region: Option<String>,
) -> Result<(HashMap<&'static str, f64>, HashMap<String, f64>), ApiError> {
    use cityos_core::case::State as S;
    let now = st.now();
    let open: Vec<S> = S::ALL.into_iter().filter(|s| s.is_open()).collect();
    let level = region
        .as_ref()
        .and_then(|r| st.0.cfg.territory.by_code(r))
        .map(|id| st.0.cfg.territory.region(id).level);
    let base = cityos_engine::query::CaseQuery {
        region: region.clone(),
        region_level: level,
        now,
        ..Default::default()
    };
    let q_open = cityos_engine::query::CaseQuery {
        states: open,
        ..base.clone()
    };
    let q_hour = cityos_engine::query::CaseQuery {
        created_from: Some(now - HOUR),
        ..base.clone()
    };
    let (all, open, hour) =
        st.0.reads
            .run(move |s| -> Result<_, cityos_engine::StoreError> {
                Ok((
                    s.stats(&base, now)?,
                    s.stats(&q_open, now)?,
                    s.stats(&q_hour, now)?,
                ))
            })
            .await??;
    let mut m = HashMap::new();
    m.insert("open_cases", open.total as f64);
    m.insert(
        "overdue_rate",
        if open.total > 0 {
            100.0 * open.overdue as f64 / open.total as f64
        } else {
            0.0
        },
    );
    m.insert(
        "on_time_rate",
        all.on_time_rate().map_or(100.0, |r| 100.0 * r),
    );
    m.insert("reports_per_hour", hour.total as f64);
    let domains = open
        .by_domain
        .iter()
        .map(|(d, n)| (d.clone(), *n as f64))
        .collect();
    Ok((m, domains))
}

/// `GET /api/v1/indicators?domain=&region=` — each indicator's latest value and level.
pub async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    crate::Q(p): crate::Q<ListParams>,
) -> Result<Response, ApiError> {
    crate::api::signed_in(&st, &headers)?;
    let t = &st.0.cfg.territory;
    let district = t.region(t.root()).code.clone();
    let region = p.region.unwrap_or_else(|| district.clone());
    if !vital_region(&st, &region) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("region {region:?} is not the district or one of its sub-districts"),
        ));
    }
    if let Some(d) = &p.domain {
        if cityos_core::Domain::parse(d).is_none() {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("unknown domain {d:?}"),
            ));
        }
    }
    let (stats, domains) = case_stats(&st, (region != district).then(|| region.clone())).await?;
    let now = st.now();
    let inds = st.0.cfg.indicators.clone();
    let mut out = Vec::new();
    let mut v = st.0.vitals.lock().expect("vitals lock");
    for (i, ind) in inds.iter().enumerate() {
        if p.domain
            .as_deref()
            .is_some_and(|d| d != ind.domain.as_str())
        {
            continue;
        }
        if let Source::Cases { stat } = &ind.source {
            let value = if stat == "open_cases_in_domain" {
                domains.get(ind.domain.as_str()).copied().unwrap_or(0.0)
            } else {
                stats.get(stat.as_str()).copied().unwrap_or(0.0)
            };
            v.set(ind, i, &region, value, now);
        }
        out.push(view(ind, &region, v.latest(i, &region)));
    }
    Ok(Json(json!({"region": region, "indicators": out})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushIn {
    value: f64,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    at: Option<String>,
}

/// `POST /api/v1/indicators/{code}/values` — a value of an external indicator.
pub async fn push(
    State(st): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: crate::Body<PushIn>,
) -> Result<Response, ApiError> {
    let p = crate::api::signed_in(&st, &headers)?;
    if !matches!(p.role, Role::System | Role::Admin | Role::DistrictOfficer) {
        return Err(ApiError::forbidden(format!(
            "role {} does not push indicator values",
            p.role
        )));
    }
    let inds = st.0.cfg.indicators.clone();
    let Some(i) = inds.iter().position(|x| x.code == code) else {
        return Err(ApiError::not_found(&format!("indicator {code:?}")));
    };
    let ind = &inds[i];
    if ind.source != Source::External {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_external",
            format!("indicator {code} is computed by cityos, not pushed"),
        ));
    }
    let b = body.value;
    if !b.value.is_finite()
        || ind
            .range
            .is_some_and(|(lo, hi)| b.value < lo || b.value > hi)
    {
        return Err(ApiError::unprocessable(
            "out_of_range",
            format!("{} is outside the possible range of {code}", b.value),
        ));
    }
    let t = &st.0.cfg.territory;
    let region = b.region.unwrap_or_else(|| t.region(t.root()).code.clone());
    if !vital_region(&st, &region) {
        return Err(ApiError::unprocessable(
            "invalid_argument",
            format!("region {region:?} is not the district or one of its sub-districts"),
        ));
    }
    let now = st.now();
    let at = match b.at.as_deref() {
        None => now,
        Some(s) => parse_datetime(s).ok_or_else(|| {
            ApiError::unprocessable("invalid_argument", format!("at {s:?} is not a datetime"))
        })?,
    };
    if at > now + crate::sensing::MAX_AHEAD {
        return Err(ApiError::unprocessable(
            "invalid_argument",
            "at is in the future",
        ));
    }
    let latest = {
        let mut v = st.0.vitals.lock().expect("vitals lock");
        v.set(ind, i, &region, b.value, at);
        v.latest(i, &region)
    };
    Ok(Json(view(ind, &region, latest)).into_response())
}

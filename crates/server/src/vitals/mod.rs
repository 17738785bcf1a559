//! Vital signs in the service: each indicator's latest value and warning level per region
//! (the district and each sub-district), kept current — readings-fed indicators through
//! sliding windows as readings arrive, case statistics when asked, external ones when
//! pushed. Reading a level is constant time.

pub mod alerts;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Staff};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::alerting::Alerting;
use cityos_core::case::CaseId;
use cityos_core::indicators::{Indicator, Source, WarnLevel};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis, HOUR, MINUTE};
use cityos_core::windows::{Acc, Sliding};
use cityos_core::Role;
use cityos_engine::store::Rollup;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct Latest {
    pub value: f64,
    pub level: WarnLevel,
    pub at: Millis,
}

/// An indicator's level moved in a region (for the live stream).
#[derive(Debug, Clone)]
pub struct LevelChange {
    pub indicator: usize,
    pub region: String,
    pub from: WarnLevel,
    pub to: WarnLevel,
    pub value: f64,
    pub at: Millis,
}

/// One indicator in one region: its latest value and the 1-minute rollup in progress.
#[derive(Debug, Clone, Copy)]
struct Entry {
    latest: Latest,
    bucket: Millis,
    acc: Acc,
    /// Time of the newest value in `acc`.
    acc_at: Millis,
}

const NONE: u32 = u32::MAX;

/// The vital signs' live state. Regions are the district (index 0) and its
/// sub-districts. Readings reach their windows through per-device feed groups (one per
/// device kind and sub-district), so the hot path touches no strings but the metric.
#[derive(Debug, Default)]
pub struct VitalsState {
    entries: HashMap<(usize, u16), Entry>,
    /// Region codes by index; 0 is the district.
    pub regions: Vec<String>,
    region_idx: HashMap<String, u16>,
    windows: Vec<Sliding>,
    /// Per window: (indicator, region).
    window_key: Vec<(usize, u16)>,
    dirty: Vec<bool>,
    dirty_list: Vec<u32>,
    metrics: Vec<String>,
    /// Feed groups: (metric index, window index) pairs.
    feeds: Vec<Vec<(u16, u32)>>,
    /// Per device: its feed group, or NONE.
    device_feed: Vec<u32>,
    /// Finished 1-minute rollups not yet stored.
    finished: Vec<Rollup>,
    /// Level changes not yet announced.
    changes: Vec<LevelChange>,
    /// Alert rules' states, silences and the cases and CAP messages they raised.
    pub alerting: Alerting,
    pub alert_cases: HashMap<String, CaseId>,
    /// The CAP messages sent so far per alert fingerprint: (identifier, sent).
    pub cap_last: HashMap<String, Vec<(String, Millis)>>,
    /// Each alert as last written to the store (state, level, told): a tick writes only
    /// the alerts that differ from it, and deletes those gone.
    pub alerts_kept: HashMap<String, (cityos_core::alerting::AlertState, WarnLevel, bool)>,
    /// Alerts restored at start, waiting (until the time given) for a value.
    pub restored: HashMap<String, Millis>,
    /// When the case statistics were last computed.
    pub stats_at: Option<Millis>,
    /// Devices per (kind, region): the denominators of `per_100_devices` statistics.
    pub devices_in: HashMap<(String, u16), usize>,
}

impl VitalsState {
    pub fn new(cfg: &cityos_engine::config::Config) -> VitalsState {
        let t = &cfg.territory;
        let mut regions = vec![t.region(t.root()).code.clone()];
        regions.extend(
            t.children(t.root())
                .iter()
                .filter(|&&id| t.region(id).level == cityos_core::Level::Subdistrict)
                .map(|&id| t.region(id).code.clone()),
        );
        let region_idx: HashMap<String, u16> = regions
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();
        let mut v = VitalsState {
            regions,
            region_idx,
            ..Default::default()
        };
        let mut group_of: HashMap<(String, u16), u32> = HashMap::new();
        let mut window_of: HashMap<(usize, u16), u32> = HashMap::new();
        v.device_feed = Vec::with_capacity(cfg.sensing.devices.len());
        let mut placed: HashMap<(u64, u64), Option<u16>> = HashMap::new();
        for d in &cfg.sensing.devices {
            let sub = *placed
                .entry((d.lon.to_bits(), d.lat.to_bits()))
                .or_insert_with(|| {
                    t.locate(d.lon, d.lat)
                        .ok()
                        .and_then(|chain| t.codes(chain).subdistrict)
                        .and_then(|c| v.region_idx.get(&c).copied())
                });
            for r in std::iter::once(0).chain(sub) {
                *v.devices_in.entry((d.kind.clone(), r)).or_default() += 1;
            }
            let key = (d.kind.clone(), sub.unwrap_or(0));
            if let Some(&g) = group_of.get(&key) {
                v.device_feed.push(g);
                continue;
            }
            let mut feed = Vec::new();
            for (i, ind) in cfg.indicators.iter().enumerate() {
                let Source::Readings {
                    device_kind,
                    metric,
                    window_ms,
                    ..
                } = &ind.source
                else {
                    continue;
                };
                if *device_kind != d.kind {
                    continue;
                }
                let m = match v.metrics.iter().position(|x| x == metric) {
                    Some(m) => m,
                    None => {
                        v.metrics.push(metric.clone());
                        v.metrics.len() - 1
                    }
                } as u16;
                for r in std::iter::once(0).chain(sub) {
                    let w = *window_of.entry((i, r)).or_insert_with(|| {
                        v.windows.push(Sliding::new(*window_ms));
                        v.window_key.push((i, r));
                        v.dirty.push(false);
                        (v.windows.len() - 1) as u32
                    });
                    feed.push((m, w));
                }
            }
            let g = if feed.is_empty() {
                NONE
            } else {
                v.feeds.push(feed);
                (v.feeds.len() - 1) as u32
            };
            group_of.insert(key, g);
            v.device_feed.push(g);
        }
        v
    }

    /// Live bytes per device: its feed group (the windows are per indicator and region,
    /// not per device).
    pub fn bytes_per_device(&self) -> f64 {
        let n = self.device_feed.len().max(1) as f64;
        (self.device_feed.capacity() * 4) as f64 / n
    }

    pub fn region_index(&self, code: &str) -> Option<u16> {
        self.region_idx.get(code).copied()
    }

    /// A new value of indicator `i` in region `r` (non-finite values are ignored; one
    /// older than the latest counts in the rollup but does not replace the latest).
    pub fn set(&mut self, ind: &Indicator, i: usize, r: u16, value: f64, at: Millis) {
        if !value.is_finite() {
            return;
        }
        let key = (i, r);
        let e = self.entries.entry(key).or_insert(Entry {
            latest: Latest {
                value,
                level: WarnLevel::Normal,
                at,
            },
            bucket: floor(at, MINUTE),
            acc: Acc::default(),
            acc_at: Millis::MIN,
        });
        let b = floor(at, MINUTE);
        if b > e.bucket {
            if e.acc.count > 0 {
                self.finished
                    .push(rollup(ind, &self.regions[r as usize], e));
            }
            e.bucket = b;
            e.acc = Acc::default();
            e.acc_at = Millis::MIN;
        }
        let last = e.acc.last;
        e.acc.push(value);
        if at >= e.acc_at {
            e.acc_at = at;
        } else {
            e.acc.last = last;
        }
        if at < e.latest.at {
            return;
        }
        let prev = e.latest.level;
        let level = ind
            .thresholds
            .map_or(WarnLevel::Normal, |t| t.next(prev, value));
        e.latest = Latest { value, level, at };
        if level != prev {
            self.changes.push(LevelChange {
                indicator: i,
                region: self.regions[r as usize].clone(),
                from: prev,
                to: level,
                value,
                at,
            });
        }
    }

    /// Indicator `i` has no value in region `r` any more (its window emptied): the
    /// minute in progress is kept, the latest value is gone.
    fn clear(&mut self, ind: &Indicator, i: usize, r: u16) {
        if let Some(e) = self.entries.remove(&(i, r)) {
            if e.acc.count > 0 {
                self.finished
                    .push(rollup(ind, &self.regions[r as usize], &e));
            }
            if e.latest.level != WarnLevel::Normal {
                self.changes.push(LevelChange {
                    indicator: i,
                    region: self.regions[r as usize].clone(),
                    from: e.latest.level,
                    to: WarnLevel::Normal,
                    value: f64::NAN,
                    at: e.latest.at,
                });
            }
        }
    }

    /// A reading taken by the sensing end (the hot path: no allocation, no level yet —
    /// [`VitalsState::settle`] turns the touched windows into values once per batch).
    #[inline]
    pub fn reading(&mut self, device: usize, metric: &str, value: f64, at: Millis) {
        let g = self.device_feed.get(device).copied().unwrap_or(NONE);
        if g == NONE {
            return;
        }
        for &(m, w) in &self.feeds[g as usize] {
            if self.metrics[m as usize] != metric {
                continue;
            }
            let w = w as usize;
            if self.windows[w].push(at, value).is_ok() && !self.dirty[w] {
                self.dirty[w] = true;
                self.dirty_list.push(w as u32);
            }
        }
    }

    /// Turns the windows readings touched into values and levels.
    pub fn settle(&mut self, indicators: &[Indicator]) {
        let list = std::mem::take(&mut self.dirty_list);
        for &w in &list {
            let w = w as usize;
            self.dirty[w] = false;
            self.settle_window(indicators, w);
        }
        self.dirty_list = list;
        self.dirty_list.clear();
    }

    fn settle_window(&mut self, indicators: &[Indicator], w: usize) {
        let (i, r) = self.window_key[w];
        let ind = &indicators[i];
        let Source::Readings { func, .. } = ind.source else {
            return;
        };
        let at = self.windows[w].head_time();
        match self.windows[w].value(func) {
            Some(v) => self.set(ind, i, r, v, at),
            None => self.clear(ind, i, r),
        }
    }

    /// Time passes for every readings window (counts and rates fall when readings stop).
    pub fn advance(&mut self, indicators: &[Indicator], now: Millis) {
        for w in 0..self.windows.len() {
            if self.windows[w].head_time() < now {
                self.windows[w].advance(now);
                self.settle_window(indicators, w);
            }
        }
    }

    pub fn latest(&self, i: usize, r: u16) -> Option<Latest> {
        self.entries.get(&(i, r)).map(|e| e.latest)
    }

    /// The 1-minute rollup in progress for indicator `i` in region `r`.
    pub fn current_rollup(&self, ind: &Indicator, i: usize, r: u16) -> Option<Rollup> {
        let e = self.entries.get(&(i, r))?;
        (e.acc.count > 0).then(|| rollup(ind, &self.regions[r as usize], e))
    }

    /// Rollups a failed store write gave back, for the next round.
    pub fn keep_rollups(&mut self, r: Vec<Rollup>) {
        // Only the minutes: their hours are derived again when they are taken.
        self.finished.extend(r.into_iter().filter(|x| x.step == 60));
    }

    /// Level changes since the last call.
    pub fn take_changes(&mut self) -> Vec<LevelChange> {
        std::mem::take(&mut self.changes)
    }

    /// Finished 1-minute rollups (and those whose minute is over at `now`), with the
    /// 1-hour rollups they add to.
    pub fn take_rollups(&mut self, indicators: &[Indicator], now: Millis) -> Vec<Rollup> {
        let mut out = std::mem::take(&mut self.finished);
        let cur = floor(now, MINUTE);
        for (&(i, r), e) in self.entries.iter_mut() {
            if e.acc.count > 0 && e.bucket < cur {
                out.push(rollup(&indicators[i], &self.regions[r as usize], e));
                e.acc = Acc::default();
                e.acc_at = Millis::MIN;
            }
        }
        let mut hours: HashMap<(String, String, Millis), Rollup> = HashMap::new();
        for m in &out {
            let b = floor(m.bucket, HOUR);
            let h = hours
                .entry((m.indicator.clone(), m.region.clone(), b))
                .or_insert_with(|| Rollup {
                    step: 3600,
                    bucket: b,
                    n: 0,
                    sum: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    last: m.last,
                    last_at: Millis::MIN,
                    ..m.clone()
                });
            merge(h, m);
        }
        out.extend(hours.into_values());
        out
    }
}

fn floor(t: Millis, step: Millis) -> Millis {
    t.div_euclid(step) * step
}

fn rollup(ind: &Indicator, region: &str, e: &Entry) -> Rollup {
    Rollup {
        indicator: ind.code.clone(),
        region: region.to_string(),
        step: 60,
        bucket: e.bucket,
        n: e.acc.count as i64,
        sum: e.acc.sum,
        min: e.acc.min,
        max: e.acc.max,
        last: e.acc.last,
        last_at: e.acc_at,
    }
}

/// Adds `m` into `into` (counts and sums add, the newer last wins).
pub fn merge(into: &mut Rollup, m: &Rollup) {
    into.n += m.n;
    into.sum += m.sum;
    into.min = into.min.min(m.min);
    into.max = into.max.max(m.max);
    if m.last_at >= into.last_at {
        into.last = m.last;
        into.last_at = m.last_at;
    }
}

/// Vital signs are kept for the district and its sub-districts: the region's index.
pub fn vital_region(st: &AppState, code: &str) -> Result<u16, ApiError> {
    st.0.vitals
        .state
        .lock()
        .expect("vitals lock")
        .region_index(code)
        .ok_or_else(|| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("region {code:?} is not the district or one of its sub-districts"),
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

/// Case statistics for one region: (stat → value); domains for `open_cases_in_domain`;
/// per indicator with a [`cityos_core::indicators::CaseRate`], the cases it counts.
async fn case_stats(
    st: &AppState,
    region: Option<String>,
) -> Result<
    (
        HashMap<&'static str, f64>,
        HashMap<String, f64>,
        HashMap<usize, i64>,
    ),
    ApiError,
> {
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
    let q_rates: Vec<(usize, cityos_engine::query::CaseQuery)> =
        st.0.cfg
            .indicators
            .iter()
            .enumerate()
            .filter_map(|(i, ind)| match &ind.source {
                Source::Cases {
                    rate: Some(rate), ..
                } => Some((
                    i,
                    cityos_engine::query::CaseQuery {
                        categories: rate.categories.clone(),
                        created_from: Some(now - rate.window_ms),
                        ..base.clone()
                    },
                )),
                _ => None,
            })
            .collect();
    let (all, open, hour, counted) =
        st.0.reads
            .run(move |s| -> Result<_, cityos_engine::StoreError> {
                let mut counted = HashMap::new();
                for (i, q) in &q_rates {
                    counted.insert(*i, s.stats(q, now)?.total);
                }
                Ok((
                    s.stats(&base, now)?,
                    s.stats(&q_open, now)?,
                    s.stats(&q_hour, now)?,
                    counted,
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
    Ok((m, domains, counted))
}

/// Computes the dataset-sourced indicators of dataset `name` from its rows (district-wide):
/// `count` counts rows whose column holds a value other than a "no" (否, no, false, 0);
/// the other functions take the column's numbers (numeric text counts).
pub fn apply_dataset(
    st: &AppState,
    name: &str,
    rows: &[serde_json::Map<String, Value>],
    at: Millis,
) {
    use cityos_core::indicators::Func;
    let inds = st.0.cfg.indicators.clone();
    let mut v = st.0.vitals.state.lock().expect("vitals lock");
    for (i, ind) in inds.iter().enumerate() {
        let Source::Dataset {
            dataset,
            column,
            func,
        } = &ind.source
        else {
            continue;
        };
        if dataset != name {
            continue;
        }
        let cells = rows.iter().filter_map(|r| r.get(column));
        let value = if *func == Func::Count {
            Some(
                cells
                    .filter(|c| match c {
                        Value::Null => false,
                        Value::Bool(b) => *b,
                        Value::Number(n) => n.as_f64() != Some(0.0),
                        Value::String(s) => {
                            let s = s.trim().to_lowercase();
                            !s.is_empty()
                                && !matches!(s.as_str(), "否" | "no" | "n" | "false" | "0")
                        }
                        _ => true,
                    })
                    .count() as f64,
            )
        } else {
            let mut acc = Acc::default();
            for c in cells {
                let n = match c {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                if let Some(n) = n.filter(|n| n.is_finite()) {
                    acc.push(n);
                }
            }
            acc.value(*func, 1000)
        };
        if let Some(value) = value {
            v.set(ind, i, 0, value, at);
        }
    }
}

/// Computes every dataset-sourced indicator from the stored datasets (at start).
pub async fn load_datasets(st: &AppState) -> Result<(), ApiError> {
    let all = st.0.reads.run(|s| s.datasets()).await??;
    for d in all {
        let rows: Vec<serde_json::Map<String, Value>> =
            serde_json::from_str(&d.rows).unwrap_or_default();
        apply_dataset(st, &d.name, &rows, d.imported_at);
    }
    Ok(())
}

/// Computes the case-statistics indicators of region `r` now.
pub async fn refresh_case_stats(st: &AppState, r: u16) -> Result<(), ApiError> {
    let region = (r != 0)
        .then(|| st.0.vitals.state.lock().expect("vitals lock").regions[r as usize].clone());
    let (stats, domains, counted) = case_stats(st, region).await?;
    let now = st.now();
    let inds = st.0.cfg.indicators.clone();
    let mut v = st.0.vitals.state.lock().expect("vitals lock");
    for (i, ind) in inds.iter().enumerate() {
        if let Source::Cases { stat, rate } = &ind.source {
            let value = if let Some(rate) = rate {
                // Per 100 devices of the kind in the region; none there → no value.
                let Some(&n) = v.devices_in.get(&(rate.device_kind.clone(), r)) else {
                    continue;
                };
                counted.get(&i).copied().unwrap_or(0) as f64 * 100.0 / n as f64
            } else if stat == "open_cases_in_domain" {
                domains.get(ind.domain.as_str()).copied().unwrap_or(0.0)
            } else {
                stats.get(stat.as_str()).copied().unwrap_or(0.0)
            };
            v.set(ind, i, r, value, now);
        }
    }
    Ok(())
}

/// `GET /api/v1/indicators?domain=&region=` — each indicator's latest value and level.
pub async fn list(
    State(st): State<AppState>,
    crate::Q(p): crate::Q<ListParams>,
    _: Staff,
) -> Result<Response, ApiError> {
    let t = &st.0.cfg.territory;
    let district = t.region(t.root()).code.clone();
    let region = p.region.unwrap_or_else(|| district.clone());
    let r = vital_region(&st, &region)?;
    if let Some(d) = &p.domain {
        if cityos_core::Domain::parse(d).is_none() {
            return Err(ApiError::new(
                Problem::InvalidParameter,
                format!("unknown domain {d:?}"),
            ));
        }
    }
    refresh_case_stats(&st, r).await?;
    let inds = st.0.cfg.indicators.clone();
    let mut out = Vec::new();
    let v = st.0.vitals.state.lock().expect("vitals lock");
    for (i, ind) in inds.iter().enumerate() {
        if p.domain
            .as_deref()
            .is_some_and(|d| d != ind.domain.as_str())
        {
            continue;
        }
        out.push(view(ind, &region, v.latest(i, r)));
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
    caller: Caller,
    body: crate::Body<PushIn>,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
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
            Problem::NotExternal,
            format!("indicator {code} is computed by cityos, not pushed"),
        ));
    }
    let b = body.value;
    let (lo, hi) = ind.range;
    if !(b.value >= lo && b.value <= hi) {
        st.0.vitals
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::http::log::event(
            "indicator_value_refused",
            &[("indicator", &code), ("value", &b.value)],
        );
        return Err(ApiError::new(
            Problem::ValueOutOfRange,
            format!(
                "{} is outside the plausible range of {code} ({}): [{lo}, {hi}] {}",
                b.value, ind.name_en, ind.unit
            ),
        ));
    }
    let t = &st.0.cfg.territory;
    let region = b.region.unwrap_or_else(|| t.region(t.root()).code.clone());
    let r = vital_region(&st, &region)
        .map_err(|e| ApiError::new(Problem::InvalidArgument, e.detail))?;
    let now = st.now();
    let at = match b.at.as_deref() {
        None => now,
        Some(s) => parse_datetime(s).ok_or_else(|| {
            ApiError::new(
                Problem::InvalidArgument,
                format!("at {s:?} is not a datetime"),
            )
        })?,
    };
    if at > now + crate::MAX_AHEAD {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "at is in the future",
        ));
    }
    let latest = {
        let mut v = st.0.vitals.state.lock().expect("vitals lock");
        v.set(ind, i, r, b.value, at);
        v.latest(i, r)
    };
    Ok(Json(view(ind, &region, latest)).into_response())
}

pub use crate::bus::VitalEvent;

/// The vitals room's state, owned here and composed into the service.
pub struct Vitals {
    /// Latest values and levels of the vital signs.
    pub state: std::sync::Mutex<VitalsState>,
    /// External indicator values refused as outside their range.
    pub refused: std::sync::atomic::AtomicU64,
}

impl Vitals {
    pub fn new(cfg: &cityos_engine::config::Config) -> Vitals {
        Vitals {
            state: std::sync::Mutex::new(VitalsState::new(cfg)),
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// One batch of readings fed to the vital-sign windows under one lock
/// ([`crate::ports::Ports::readings`]).
struct Feed<'a> {
    state: std::sync::MutexGuard<'a, VitalsState>,
    indicators: &'a [Indicator],
}

impl crate::ports::ReadingBatch for Feed<'_> {
    fn reading(&mut self, device: usize, metric: &str, value: f64, at: Millis) {
        self.state.reading(device, metric, value, at);
    }

    fn settle(mut self: Box<Self>) {
        self.state.settle(self.indicators);
    }
}

/// A device registered at run time ([`crate::ports::Ports::device_added`]): fed to the
/// windows of `like` (a device of its kind in its sub-district), else to none.
pub fn device_added(st: &AppState, index: usize, like: Option<usize>) {
    let mut v = st.0.vitals.state.lock().expect("vitals lock");
    if v.device_feed.len() <= index {
        v.device_feed.resize(index + 1, NONE);
    }
    let g = like
        .and_then(|l| v.device_feed.get(l).copied())
        .unwrap_or(NONE);
    v.device_feed[index] = g;
}

/// An indicator's district-wide latest value and level ([`crate::ports::Ports::indicator`]).
pub fn district_value(st: &AppState, code: &str) -> Option<(f64, WarnLevel)> {
    let i = st.0.cfg.indicators.iter().position(|x| x.code == code)?;
    let v = st.0.vitals.state.lock().expect("vitals lock");
    v.latest(i, 0).map(|l| (l.value, l.level))
}

/// Sets an external indicator's value for the district or a sub-district — the
/// `indicator_value` port, by which a room (the meal service, the life circle) feeds the
/// vital signs it computes. Refused, with the reason, for an unknown indicator, one cityos
/// computes itself, a region that is not the district or a sub-district, or a value
/// outside the indicator's plausible range.
pub fn set_external(
    st: &AppState,
    code: &str,
    region: &str,
    value: f64,
    at: Millis,
) -> Result<(), String> {
    let inds = &st.0.cfg.indicators;
    let Some(i) = inds.iter().position(|x| x.code == code) else {
        return Err(format!("indicator {code:?} is not declared"));
    };
    let ind = &inds[i];
    if ind.source != Source::External {
        return Err(format!(
            "indicator {code} is computed by cityos, not pushed"
        ));
    }
    let (lo, hi) = ind.range;
    if !(value >= lo && value <= hi) {
        return Err(format!(
            "{value} is outside the plausible range of {code}: [{lo}, {hi}] {}",
            ind.unit
        ));
    }
    let mut v = st.0.vitals.state.lock().expect("vitals lock");
    let Some(r) = v.region_index(region) else {
        return Err(format!(
            "region {region:?} is not the district or one of its sub-districts"
        ));
    };
    v.set(ind, i, r, value, at);
    Ok(())
}

/// Opens a batch of readings for the vital-sign windows.
pub fn readings(st: &AppState) -> Box<dyn crate::ports::ReadingBatch + '_> {
    Box::new(Feed {
        state: st.0.vitals.state.lock().expect("vitals lock"),
        indicators: &st.0.cfg.indicators,
    })
}

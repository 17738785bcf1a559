//! The sensing end in the service: readings in (HTTP NDJSON), alarm rules applied per
//! (device, rule), alarms out as cases — at most one open case per device and rule: a
//! repeat is noted on that case, and when the readings return to normal its log says so.
//! Every refused reading is counted by reason and reported back with its line.
//!
//! Each alarm's state and case live in the store too (`alarm_states`), written on its
//! transitions only (normal → pending → firing → normal, and when its case is filed) —
//! after a batch, in one write, never per reading; [`restore`] puts them back at start,
//! so a device firing before a restart files no second case after it.

pub mod devindex;
pub mod mqtt;

use crate::cases::{file_report, note_case, still_open};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::case::{CaseId, Channel};
use cityos_core::sensing::{AlarmChange, AlarmState, Condition};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis};
use cityos_core::workflow::NewReport;
use cityos_core::Role;
use cityos_engine::store::AlarmRow;
use cityos_engine::{SensingStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest NDJSON body accepted in one request.
pub const READINGS_LIMIT: usize = 8 * 1024 * 1024;
pub use crate::MAX_AHEAD;

/// Why readings were refused, counted since the start.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Refused {
    pub malformed: u64,
    pub unknown_device: u64,
    /// A metric the device's kind is not declared for (no alarm rule, indicator or data
    /// rule of that kind reads it).
    pub undeclared_metric: u64,
    pub out_of_range: u64,
    pub future: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    state: AlarmState,
    case: Option<CaseId>,
}

/// The sensing end's live state. Per device it holds a few bytes: its last reading time,
/// its place in `by_id`, and one slot per alarm rule that applies to it (flat: device
/// `d`'s slots are `slots[start[d]..start[d + 1]]`, for the rules in `rule_of` there).
#[derive(Debug, Default)]
pub struct SensingState {
    slots: Vec<Slot>,
    rule_of: Vec<u16>,
    start: Vec<u32>,
    /// Last reading per device (registration time until the first).
    last: Vec<Millis>,
    by_id: crate::intake::sensor::devindex::DeviceIndex,
    /// Each device's kind (an index into `metrics_of_kind`).
    kind_of: Vec<u16>,
    /// The metrics each device kind is declared for: those its alarm rules and reading
    /// indicators read, and those the catalogue of scenario packs lists for the kind.
    metrics_of_kind: Vec<Vec<String>>,
    pub accepted: u64,
    pub refused: Refused,
    /// Slots whose state or case changed since they were last written to the store.
    dirty: Vec<u32>,
}

impl SensingState {
    /// The device index of an id.
    pub fn device(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).map(|d| d as usize)
    }

    /// Is device `d` declared for `metric`?
    pub fn declares(&self, d: usize, metric: &str) -> bool {
        self.kind_of
            .get(d)
            .and_then(|&k| self.metrics_of_kind.get(k as usize))
            .is_some_and(|m| m.iter().any(|x| x == metric))
    }
}

impl SensingState {
    pub fn new(cfg: &cityos_engine::config::Config, now: Millis) -> SensingState {
        let devices = &cfg.sensing.devices;
        let mut st = SensingState {
            last: vec![now; devices.len()],
            ..Default::default()
        };
        st.by_id = crate::intake::sensor::devindex::DeviceIndex::new(
            devices.iter().map(|d| d.id.as_str()),
        );
        let mut kinds: Vec<&str> = Vec::new();
        for d in devices {
            let k = match kinds.iter().position(|k| *k == d.kind) {
                Some(k) => k,
                None => {
                    kinds.push(&d.kind);
                    kinds.len() - 1
                }
            };
            st.kind_of.push(k as u16);
        }
        let catalogue =
            cityos_core::scenario::Catalogue::from_toml(cityos_engine::demo::CATALOGUE_TOML)
                .expect("the embedded catalogue is valid (tested)");
        st.metrics_of_kind = kinds
            .iter()
            .map(|kind| {
                let mut m: Vec<String> = Vec::new();
                let rules = cfg.sensing.rules.iter().filter(|r| r.kind == *kind);
                let feeds = cfg.indicators.iter().filter_map(|i| match &i.source {
                    cityos_core::indicators::Source::Readings {
                        device_kind,
                        metric,
                        ..
                    } if device_kind == kind => Some(metric.as_str()),
                    _ => None,
                });
                let catalogued = catalogue
                    .device_kinds
                    .get(*kind)
                    .into_iter()
                    .flatten()
                    .map(String::as_str);
                for x in rules
                    .map(|r| r.metric.as_str())
                    .chain(feeds)
                    .chain(catalogued)
                {
                    if !x.is_empty() && !m.iter().any(|y| y == x) {
                        m.push(x.to_string());
                    }
                }
                m
            })
            .collect();
        st.start.reserve(devices.len() + 1);
        for d in devices {
            st.start.push(st.rule_of.len() as u32);
            for (k, rule) in cfg.sensing.rules.iter().enumerate() {
                if rule.applies_to(d) {
                    st.rule_of.push(k as u16);
                    st.slots.push(Slot::default());
                }
            }
        }
        st.start.push(st.rule_of.len() as u32);
        st
    }

    /// The range of device `d`'s slots.
    fn range(&self, d: usize) -> std::ops::Range<usize> {
        self.start[d] as usize..self.start[d + 1] as usize
    }

    fn slot_index(&self, d: usize, k: usize) -> Option<usize> {
        let r = self.range(d);
        let j = self.rule_of[r.clone()]
            .iter()
            .position(|&x| x as usize == k)?;
        Some(r.start + j)
    }

    fn slot_mut(&mut self, d: usize, k: usize) -> Option<&mut Slot> {
        let j = self.slot_index(d, k)?;
        Some(&mut self.slots[j])
    }

    /// The device of slot `j`.
    fn device_of(&self, j: usize) -> usize {
        self.start.partition_point(|&x| x as usize <= j) - 1
    }

    pub fn firing(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, AlarmState::Firing { .. }))
            .count()
    }

    /// Live bytes per device: the slots, rule list, offsets, last times and id map.
    pub fn bytes_per_device(&self) -> f64 {
        let n = self.last.len().max(1) as f64;
        let slots = self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.rule_of.capacity() * 2
            + self.start.capacity() * 4
            + self.last.capacity() * 8
            + self.kind_of.capacity() * 2;
        (slots + self.by_id.bytes()) as f64 / n
    }
}

/// One reading as sent: strings are borrowed from the body unless they hold escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reading<'a> {
    #[serde(borrow)]
    pub device: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub metric: std::borrow::Cow<'a, str>,
    pub value: f64,
    #[serde(default, borrow)]
    pub at: Option<std::borrow::Cow<'a, str>>,
}

/// An alarm change to act on: (device index, rule index, change, value).
type Pending = (usize, usize, AlarmChange, Option<f64>);

fn may_send(p: &crate::http::auth::Principal) -> bool {
    match p.role {
        Role::System => p.channel.as_deref().is_none_or(|c| c == "sensor"),
        Role::Admin | Role::DistrictOfficer => true,
        _ => false,
    }
}

/// `POST /api/v1/readings` — newline-delimited JSON readings
/// `{"device": "WL-001", "metric": "depth_cm", "value": 18.5, "at": "…+08:00"}`.
pub async fn post_readings(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if !may_send(&p) {
        return Err(ApiError::forbidden(format!(
            "role {} does not send sensor readings",
            p.role
        )));
    }
    let waiting = &st.0.sensor.ingest_waiting;
    if waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= MAX_WAITING {
        waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        return Err(busy(&st));
    }
    let _waiting = Waiting(waiting);
    let bytes = axum::body::to_bytes(body, READINGS_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                Problem::PayloadTooLarge,
                format!(
                    "send at most {} MiB of readings per request",
                    READINGS_LIMIT >> 20
                ),
            )
        })?;
    if let Some(scope) = p.scope.as_ref().filter(|_| p.role == Role::System) {
        outside_scope(&st, scope, &bytes)?;
    }
    let out = ingest(&st, bytes, Some(INGEST_WAIT)).await?;
    Ok((StatusCode::OK, Json(out)).into_response())
}

/// A machine token confined to a region sends readings of the devices inside it only:
/// the first device outside (or unknown) refuses the whole batch, nothing applied.
fn outside_scope(st: &AppState, scope: &str, bytes: &[u8]) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    struct Line {
        device: Option<String>,
    }
    let t = &st.0.cfg.territory;
    let inside: std::collections::HashSet<&str> =
        st.0.cfg
            .sensing
            .devices
            .iter()
            .filter(|d| {
                t.locate(d.lon, d.lat).ok().is_some_and(|chain| {
                    cityos_core::Level::ALL
                        .iter()
                        .filter_map(|l| chain.at(*l))
                        .any(|id| t.region(id).code == scope)
                })
            })
            .map(|d| d.id.as_str())
            .collect();
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(Line { device: Some(d) }) = serde_json::from_slice::<Line>(line) else {
            continue; // the ingest names lines that do not parse
        };
        if !inside.contains(d.as_str()) {
            return Err(ApiError::forbidden(format!(
                "device {d:?} is not inside region {scope}, the only one this token reports on; nothing was applied"
            )));
        }
    }
    Ok(())
}

/// How long an HTTP batch waits for its turn before the sender is told to come back.
pub const INGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What one batch did: counts, the first problems, and alarm changes to act on.
pub struct Batch {
    pub accepted: u64,
    pub refused: Refused,
    pub errors: Vec<Value>,
    pending: Vec<Pending>,
}

impl Batch {
    /// Alarm changes the batch raised.
    pub fn changes(&self) -> usize {
        self.pending.len()
    }
}

/// Takes NDJSON readings (the HTTP endpoint, the demo's simulated devices, the MQTT
/// bridge): applies the rules and acts on the alarms; answers what was taken and refused.
/// One batch is applied at a time, off the async threads; a batch that cannot start within
/// `wait` (when given) is refused with 503 and Retry-After — back-pressure for a flood,
/// so memory stays bounded and the case API keeps its threads.
pub async fn ingest(
    st: &AppState,
    bytes: axum::body::Bytes,
    wait: Option<std::time::Duration>,
) -> Result<Value, ApiError> {
    let gate = st.0.sensor.ingest_gate.clone();
    let permit = match wait {
        None => gate.acquire_owned().await.map_err(ApiError::internal)?,
        Some(w) => match tokio::time::timeout(w, gate.acquire_owned()).await {
            Ok(p) => p.map_err(ApiError::internal)?,
            Err(_) => return Err(busy(st)),
        },
    };
    // Applied and acted on in a task of its own: a caller that goes away cannot leave a
    // batch half done (alarms whose state moved but whose cases were never filed).
    let st2 = st.clone();
    // Several nodes: once applied, the batch (its rollups, its alarms' states) must never
    // be re-run whole on another node; the case requests go on carrying the mark.
    let fx = crate::runtime::cluster::effects();
    let task = tokio::spawn(async move {
        let now = st2.now();
        let st3 = st2.clone();
        let b = tokio::task::spawn_blocking(move || {
            let _permit = permit; // held until the batch is applied
            apply(&st3, &bytes, now)
        })
        .await
        .map_err(ApiError::internal)?;
        if let Some(fx) = &fx {
            fx.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let alarms = act(&st2, b.pending, now).await;
        keep_alarms(&st2).await;
        let scenarios = (st2.0.ports.scenario_flush)(&st2).await;
        let alarms = alarms?;
        Ok::<_, ApiError>(json!({
            "accepted": b.accepted,
            "refused": b.refused,
            "errors": b.errors,
            "alarms": alarms,
            "scenarios": scenarios,
        }))
    });
    task.await.map_err(ApiError::internal)?
}

/// Batches that may wait for the gate (or be read while they wait) at once; more are
/// refused before their bodies are read, so waiting bodies stay within 8 × 8 MiB.
pub const MAX_WAITING: usize = 8;

fn busy(st: &AppState) -> ApiError {
    st.0.sensor
        .ingest_busy
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ApiError::new(
        Problem::Busy,
        "readings are arriving faster than they can be applied; send again shortly",
    )
    .retry_after(1)
}

/// Counts a waiting HTTP batch while it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Applies a batch of NDJSON readings under the sensing and vitals locks: parse, device
/// lookup, range checks, vital-sign windows, alarm rules. The hot path of `bench ingest`.
pub fn apply(st: &AppState, bytes: &[u8], now: Millis) -> Batch {
    let cfg = &st.0.cfg;
    let sensing = &cfg.sensing;
    let mut errors: Vec<Value> = Vec::new();
    let mut refused = Refused::default();
    let mut accepted = 0u64;
    let mut pending: Vec<Pending> = Vec::new();
    let mut guard = st.0.sensor.sensing.lock().expect("sensing lock");
    let mut vitals = (st.0.ports.readings)(st);
    let mut scenarios = (st.0.ports.scenario_readings)(st);
    let s = &mut *guard;
    // Lines are parsed a group ahead and their table lines prefetched, so that the device
    // lookups of a group overlap their memory waits instead of taking them one by one.
    const GROUP: usize = 64;
    let mut group: Vec<(usize, Result<Reading, serde_json::Error>, u64)> =
        Vec::with_capacity(GROUP);
    let mut lines = bytes.split(|b| *b == b'\n').enumerate();
    loop {
        group.clear();
        for (i, line) in lines.by_ref() {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let r = serde_json::from_slice::<Reading>(line);
            let h = match &r {
                Ok(r) => {
                    let h = s.by_id.hash(&r.device);
                    s.by_id.prefetch(h);
                    h
                }
                Err(_) => 0,
            };
            group.push((i + 1, r, h));
            if group.len() == GROUP {
                break;
            }
        }
        if group.is_empty() {
            break;
        }
        for (line_no, r, h) in group.drain(..) {
            let mut refuse = |kind: &mut u64, problem: String| {
                *kind += 1;
                if errors.len() < 20 {
                    errors.push(json!({"line": line_no, "problem": problem}));
                }
            };
            let r: Reading = match r {
                Ok(r) => r,
                Err(e) => {
                    refuse(&mut refused.malformed, format!("not a reading: {e}"));
                    continue;
                }
            };
            let Some(d) = s.by_id.get_hashed(&r.device, h) else {
                refuse(
                    &mut refused.unknown_device,
                    format!("unknown device {:?}", r.device),
                );
                continue;
            };
            let d = d as usize;
            if !s.declares(d, &r.metric) {
                refuse(
                    &mut refused.undeclared_metric,
                    format!(
                        "device {:?} is not declared for metric {:?}",
                        r.device, r.metric
                    ),
                );
                continue;
            }
            let at = match r.at.as_deref().map(parse_datetime) {
                None => now,
                Some(Some(t)) => t,
                Some(None) => {
                    refuse(
                        &mut refused.malformed,
                        format!(
                            "at {:?} is not a datetime such as 2026-11-26T09:30:00+08:00",
                            r.at.unwrap_or_default()
                        ),
                    );
                    continue;
                }
            };
            if at > now + MAX_AHEAD {
                refuse(
                    &mut refused.future,
                    format!("at {} is in the future", format_rfc3339(at)),
                );
                continue;
            }
            let range = s.range(d);
            if let Some(&k) = s.rule_of[range.clone()].iter().find(|&&k| {
                let rule = &sensing.rules[k as usize];
                rule.metric == r.metric && !rule.in_range(r.value)
            }) {
                refuse(
                    &mut refused.out_of_range,
                    format!(
                        "{} = {} is outside the possible range of {}",
                        r.metric, r.value, sensing.rules[k as usize].code
                    ),
                );
                continue;
            }
            if !r.value.is_finite() {
                refuse(
                    &mut refused.out_of_range,
                    "the value is not a finite number".into(),
                );
                continue;
            }
            accepted += 1;
            s.last[d] = s.last[d].max(at);
            vitals.reading(d, &r.metric, r.value, at);
            scenarios.reading(d, &r.metric, r.value, at);
            for j in range {
                let k = s.rule_of[j] as usize;
                let rule = &sensing.rules[k];
                let silent = matches!(rule.condition, Condition::Silent { .. });
                if !silent && rule.metric != r.metric {
                    continue;
                }
                let slot = &mut s.slots[j];
                let (next, change) = rule.observe(slot.state, r.value, at);
                if next != slot.state {
                    // A transition (rare): written to the store after the batch.
                    slot.state = next;
                    s.dirty.push(j as u32);
                }
                if let Some(c) = change {
                    pending.push((d, k, c, Some(r.value)));
                }
            }
        }
    }
    vitals.settle();
    scenarios.settle();
    s.accepted += accepted;
    let t = &mut s.refused;
    t.malformed += refused.malformed;
    t.unknown_device += refused.unknown_device;
    t.undeclared_metric += refused.undeclared_metric;
    t.out_of_range += refused.out_of_range;
    t.future += refused.future;
    Batch {
        accepted,
        refused,
        errors,
        pending,
    }
}

/// Time passes for every alarm: pending conditions that held long enough fire, silent
/// devices fire. Called by the service's ticker (and by tests with a hand-set clock).
pub async fn tick(st: &AppState) -> Result<Vec<Value>, ApiError> {
    let now = st.now();
    let sensing = &st.0.cfg.sensing;
    let mut pending = Vec::new();
    {
        let mut guard = st.0.sensor.sensing.lock().expect("sensing lock");
        let s = &mut *guard;
        for d in 0..sensing.devices.len() {
            let last = s.last[d];
            for j in s.range(d) {
                let k = s.rule_of[j] as usize;
                let rule = &sensing.rules[k];
                let slot = &mut s.slots[j];
                let (next, change) = rule.tick(slot.state, last, now);
                if next != slot.state {
                    slot.state = next;
                    s.dirty.push(j as u32);
                }
                if let Some(c) = change {
                    pending.push((d, k, c, None));
                }
            }
        }
    }
    let out = act(st, pending, now).await;
    keep_alarms(st).await;
    out
}

fn state_row(state: AlarmState) -> (&'static str, Millis) {
    match state {
        AlarmState::Normal => ("normal", 0),
        AlarmState::Pending { since } => ("pending", since),
        AlarmState::Firing { since } => ("firing", since),
    }
}

/// Writes the alarms that changed since they were last written, in one store write
/// (one at a time, so a later state is never overwritten by an earlier one). A write
/// that fails leaves them to the next batch or tick.
pub async fn keep_alarms(st: &AppState) {
    let _turn = st.0.sensor.keeping.lock().await;
    let (slots, rows) = {
        let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
        if s.dirty.is_empty() {
            return;
        }
        let mut slots = std::mem::take(&mut s.dirty);
        slots.sort_unstable();
        slots.dedup();
        let sensing = &st.0.cfg.sensing;
        let rows: Vec<AlarmRow> = slots
            .iter()
            .map(|&j| {
                let j = j as usize;
                let (state, since) = state_row(s.slots[j].state);
                AlarmRow {
                    device: sensing.devices[s.device_of(j)].id.clone(),
                    rule: sensing.rules[s.rule_of[j] as usize].code.clone(),
                    state: state.into(),
                    since,
                    case_id: s.slots[j].case,
                }
            })
            .collect();
        (slots, rows)
    };
    let stored = st.0.reads.run(move |s| s.put_alarm_states(&rows)).await;
    if let Some(e) = match stored {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.detail),
    } {
        crate::http::log::event("alarm_states_failed", &[("error", &e)]);
        let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
        s.dirty.extend(slots);
    }
}

/// Puts back the alarm states kept in the store (at start, before any reading). Rows of
/// devices or rules no longer configured are passed over.
pub fn restore(st: &AppState, store: &mut (impl SensingStore + ?Sized)) -> Result<(), StoreError> {
    let rows = store.alarm_states()?;
    let sensing = &st.0.cfg.sensing;
    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
    for r in rows {
        let (Some(d), Some(k)) = (
            s.device(&r.device),
            sensing.rules.iter().position(|x| x.code == r.rule),
        ) else {
            continue;
        };
        let state = match r.state.as_str() {
            "pending" => AlarmState::Pending { since: r.since },
            "firing" => AlarmState::Firing { since: r.since },
            _ => AlarmState::Normal,
        };
        if let Some(x) = s.slot_mut(d, k) {
            x.state = state;
            x.case = r.case_id;
        }
    }
    Ok(())
}

/// Turns alarm changes into cases and notes.
async fn act(st: &AppState, pending: Vec<Pending>, now: Millis) -> Result<Vec<Value>, ApiError> {
    // Several nodes: an alarm whose case belongs to a partition another node holds does
    // not stop the others' cases from being filed here; the first such refusal is the
    // answer (the batch is never re-run elsewhere: see `runtime::cluster`).
    let mut out = Vec::new();
    let mut refused = None;
    for p in pending {
        match act_each(st, vec![p], now).await {
            Ok(v) => out.extend(v),
            Err(e) if e.partition.is_some() => {
                refused.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

async fn act_each(
    st: &AppState,
    pending: Vec<Pending>,
    now: Millis,
) -> Result<Vec<Value>, ApiError> {
    let sensing = &st.0.cfg.sensing;
    let mut out = Vec::new();
    for (d, k, change, value) in pending {
        let (device, rule) = (&sensing.devices[d], &sensing.rules[k]);
        let text = rule.describe(device, value);
        let open_case = {
            let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
            s.slot_mut(d, k).and_then(|x| x.case)
        };
        let open_case = still_open(st, open_case).await?;
        let (kind, note) = match change {
            AlarmChange::Fired { .. } => ("fired", format!("报警：{text}")),
            AlarmChange::Cleared => ("cleared", format!("报警解除，读数恢复正常：{text}")),
        };
        let number = match (change, open_case) {
            // A repeat, or the all-clear: noted on the alarm's open case.
            (_, Some(case)) => note_case(st, case, note, now).await?,
            (AlarmChange::Fired { .. }, None) => {
                let report = NewReport {
                    channel: Channel::Sensor,
                    category: rule.category.clone(),
                    lon: device.lon,
                    lat: device.lat,
                    text: text.clone(),
                    contact: None,
                    at: now,
                    media: Vec::new(),
                    priority: None,
                    playbook: None,
                    suggestion: None,
                };
                let (id, number) = file_report(st, report).await?;
                let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
                if let Some(j) = s.slot_index(d, k) {
                    s.slots[j].case = Some(id);
                    s.dirty.push(j as u32);
                }
                Some(number)
            }
            // Cleared after its case was closed: nothing to write.
            (AlarmChange::Cleared, None) => None,
        };
        st.0.bus.publish(crate::bus::BusEvent::SensingAlarm {
            device: device.id.clone(),
            rule: rule.code.clone(),
            change: kind,
            case: number.clone(),
        });
        out.push(json!({"device": device.id, "rule": rule.code, "change": kind, "case": number}));
    }
    Ok(out)
}

/// `GET /api/v1/readings/stats` — what the sensing end has taken and refused.
pub async fn readings_stats(State(st): State<AppState>, _: SignedIn) -> Result<Response, ApiError> {
    let s = st.0.sensor.sensing.lock().expect("sensing lock");
    Ok(Json(json!({
        "devices": st.0.cfg.sensing.devices.len(),
        "rules": st.0.cfg.sensing.rules.len(),
        "accepted": s.accepted,
        "refused": s.refused,
        "alarms_firing": s.firing(),
    }))
    .into_response())
}

/// The sensor room's state, owned here and composed into the service.
pub struct SensorState {
    /// Alarm states and reading counters of the sensing end.
    pub sensing: std::sync::Mutex<SensingState>,
    /// One readings batch is applied at a time (back-pressure for floods).
    pub ingest_gate: std::sync::Arc<tokio::sync::Semaphore>,
    /// HTTP reading batches waiting for the gate (bounded: see [`MAX_WAITING`]).
    pub ingest_waiting: std::sync::atomic::AtomicUsize,
    /// Reading batches turned away because the gate stayed shut.
    pub ingest_busy: std::sync::atomic::AtomicU64,
    /// One write of alarm states at a time.
    pub keeping: tokio::sync::Mutex<()>,
}

impl SensorState {
    pub fn new(cfg: &cityos_engine::config::Config, now: Millis) -> SensorState {
        SensorState {
            sensing: std::sync::Mutex::new(SensingState::new(cfg, now)),
            ingest_gate: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            ingest_waiting: std::sync::atomic::AtomicUsize::new(0),
            ingest_busy: std::sync::atomic::AtomicU64::new(0),
            keeping: tokio::sync::Mutex::new(()),
        }
    }
}

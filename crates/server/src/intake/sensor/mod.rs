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
pub mod registry;

use crate::cases::{file_report_once, note_case, still_open};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::case::{CaseId, Channel};
use cityos_core::payload::{Reason, Shape};
use cityos_core::sensing::{AlarmChange, AlarmState, Condition, Device};
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

/// Why readings were refused, counted since the start (one field per
/// [`Reason`], named by its code).
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Refused {
    pub malformed: u64,
    pub unknown_device: u64,
    /// A metric the device's kind is not declared for (no alarm rule, indicator or data
    /// rule of that kind reads it).
    pub undeclared_metric: u64,
    pub out_of_range: u64,
    pub future: u64,
    pub no_name: u64,
    pub bad_time: u64,
    pub unit_mismatch: u64,
    pub not_numeric: u64,
    pub mapping_missing: u64,
    pub no_mapping: u64,
    pub too_large: u64,
}

impl Refused {
    fn field(&mut self, r: Reason) -> &mut u64 {
        match r {
            Reason::Malformed => &mut self.malformed,
            Reason::UnknownDevice => &mut self.unknown_device,
            Reason::UndeclaredMetric => &mut self.undeclared_metric,
            Reason::OutOfRange => &mut self.out_of_range,
            Reason::Future => &mut self.future,
            Reason::NoName => &mut self.no_name,
            Reason::BadTime => &mut self.bad_time,
            Reason::UnitMismatch => &mut self.unit_mismatch,
            Reason::NotNumeric => &mut self.not_numeric,
            Reason::MappingMissing => &mut self.mapping_missing,
            Reason::NoMapping => &mut self.no_mapping,
            Reason::TooLarge => &mut self.too_large,
        }
    }

    pub fn get(&self, r: Reason) -> u64 {
        *self.clone().field(r)
    }

    pub fn total(&self) -> u64 {
        Reason::ALL.iter().map(|r| self.get(*r)).sum()
    }

    fn add(&mut self, other: &Refused) {
        for r in Reason::ALL {
            *self.field(r) += other.get(r);
        }
    }
}

/// Readings older than this when they arrive are *late*: taken into the windows, the
/// vital signs and the scenario packs' history, but not judged by the alarm rules (a
/// backfill cannot fire or clear alarms, nor make a silent device look alive); counted.
pub const LATE_AFTER: Millis = 5 * cityos_core::time::MINUTE;

/// Largest MQTT message taken; a larger one is refused whole as `too_large`.
pub const MESSAGE_LIMIT: usize = 256 * 1024;

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
    /// The registry in service: the configuration's seed, then the devices registered at
    /// run time (indices only grow; a decommissioned device keeps its index).
    pub devices: Vec<Device>,
    /// Decommissioned devices: their readings are refused, no alarm is judged.
    pub retired: Vec<bool>,
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
    /// Device kinds by index (`kind_of`), for the counters' labels.
    pub kinds: Vec<String>,
    /// Refused readings per kind index (the last entry: device unknown).
    pub refused_by_kind: Vec<Refused>,
    /// Alarms raised and cleared per rule index (a rule watches one kind).
    pub raised: Vec<u64>,
    pub cleared: Vec<u64>,
    /// Readings taken late (see [`LATE_AFTER`]).
    pub late: u64,
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
        // Kinds without a seed device yet, so that the registry can add one of them.
        for k in cfg
            .sensing
            .rules
            .iter()
            .map(|r| r.kind.as_str())
            .chain(catalogue.device_kinds.keys().map(String::as_str))
        {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
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
        st.kinds = kinds.iter().map(|k| k.to_string()).collect();
        st.refused_by_kind = vec![Refused::default(); kinds.len() + 1];
        st.raised = vec![0; cfg.sensing.rules.len()];
        st.cleared = vec![0; cfg.sensing.rules.len()];
        st.start.reserve(devices.len() + 1);
        st.start.push(0);
        for d in devices {
            st.push_slots(d, &cfg.sensing.rules);
        }
        st.devices = devices.clone();
        st.retired = vec![false; devices.len()];
        st
    }

    /// Appends device `d`'s alarm slots (one per rule that applies to it).
    fn push_slots(&mut self, d: &Device, rules: &[cityos_core::sensing::AlarmRule]) {
        for (k, rule) in rules.iter().enumerate() {
            if rule.applies_to(d) {
                self.rule_of.push(k as u16);
                self.slots.push(Slot::default());
            }
        }
        self.start.push(self.rule_of.len() as u32);
    }

    /// The kind index of a kind name (every kind of the seed, the rules and the catalogue).
    pub fn kind_index(&self, kind: &str) -> Option<u16> {
        self.kinds.iter().position(|k| k == kind).map(|k| k as u16)
    }

    /// Registers a device at run time (issue 22): a new index at the end, its alarm slots,
    /// its kind's declared metrics; the id table is rebuilt. The caller has checked the id
    /// is new and the kind known. Its last-seen time starts `now` (silence counts from
    /// registration).
    pub fn add_device(
        &mut self,
        d: Device,
        rules: &[cityos_core::sensing::AlarmRule],
        now: Millis,
    ) -> usize {
        let k = self.kind_index(&d.kind).expect("a known kind (checked)");
        self.push_slots(&d, rules);
        self.kind_of.push(k);
        self.last.push(now);
        self.devices.push(d);
        self.retired.push(false);
        self.reindex();
        self.devices.len() - 1
    }

    /// Rebuilds the id table from the devices in service (a retired one is looked up
    /// too, so that its readings are refused by name).
    fn reindex(&mut self) {
        self.by_id = crate::intake::sensor::devindex::DeviceIndex::new(
            self.devices.iter().map(|d| d.id.as_str()),
        );
    }

    /// A device of the same kind as device `i` in the same sub-district (the first one).
    pub fn like(&self, territory: &cityos_core::Territory, i: usize) -> Option<usize> {
        let sub = |d: &Device| {
            territory
                .locate(d.lon, d.lat)
                .ok()
                .and_then(|c| territory.codes(c).subdistrict)
        };
        let me = &self.devices[i];
        let mine = sub(me)?;
        (0..self.devices.len()).find(|&j| {
            j != i
                && self.devices[j].kind == me.kind
                && sub(&self.devices[j]).as_ref() == Some(&mine)
        })
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

/// How `POST /api/v1/readings` is told the payload's shape.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ShapeQuery {
    /// native (NDJSON, the default), senml, telemetry or mapped.
    pub payload: Option<String>,
    /// The device the payload is from (telemetry; or any device: its kind's shape).
    pub device: Option<String>,
    /// The device kind whose mapping reads the payload.
    pub kind: Option<String>,
}

/// `POST /api/v1/readings` — newline-delimited JSON readings
/// `{"device": "WL-001", "metric": "depth_cm", "value": 18.5, "at": "…+08:00"}`; or, with
/// `?payload=senml|telemetry|mapped` (and `device` / `kind`), or `?device=` alone (that
/// device kind's declared shape), or `Content-Type: application/senml+json`, one payload
/// in that shape.
pub async fn post_readings(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if !may_send(&p) {
        return Err(ApiError::forbidden(format!(
            "role {} does not send sensor readings",
            p.role
        )));
    }
    // Several nodes: readings are applied on the holder of the singleton lease only; the
    // forwarding layer sends the request there (nothing was applied here).
    if !ensure_current(&st).await? {
        let mut e = ApiError::new(
            Problem::Unavailable,
            "readings are applied by another node, which cannot be reached at the moment; nothing was applied, try again shortly",
        )
        .retry_after(1);
        e.partition = Some(cityos_engine::engine::SINGLETON.to_string());
        return Err(e);
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
            count_too_large(&st);
            ApiError::new(
                Problem::PayloadTooLarge,
                format!(
                    "too_large: send at most {} MiB of readings per request; nothing was applied",
                    READINGS_LIMIT >> 20
                ),
            )
        })?;
    let q: ShapeQuery = match query.as_deref() {
        None | Some("") => ShapeQuery::default(),
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::new(Problem::InvalidParameter, format!("query: {e}")))?,
    };
    let senml_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/senml+json"));
    let shape = match (q.payload.as_deref(), senml_type) {
        (None, true) => Some(Some(Shape::Senml)),
        (None, false) if q.device.is_some() => Some(None),
        (None, false) => None,
        (Some(name), _) => match Shape::parse(name) {
            Some(Shape::Native) if q.device.is_none() => None,
            Some(x) => Some(Some(x)),
            None => {
                return Err(ApiError::new(
                    Problem::InvalidParameter,
                    format!("payload {name:?} is not native, senml, telemetry or mapped"),
                ))
            }
        },
    };
    if shape == Some(Some(Shape::Mapped)) && q.kind.is_none() && q.device.is_none() {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            "payload=mapped needs kind (the device kind whose mapping reads it) or device",
        ));
    }
    if shape == Some(Some(Shape::Telemetry)) && q.device.is_none() {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            "payload=telemetry needs device (the shape does not name one)",
        ));
    }
    let scope = p.scope.as_ref().filter(|_| p.role == Role::System);
    let input = match shape {
        None => {
            if let Some(scope) = scope {
                outside_scope(&st, scope, &bytes)?;
            }
            Input::Ndjson(bytes)
        }
        Some(shape) => {
            if scope.is_some() {
                return Err(ApiError::forbidden(
                    "a token confined to a region sends cityos's own NDJSON only; nothing was applied",
                ));
            }
            Input::Messages(vec![Message {
                shape,
                device: q.device,
                kind: q.kind,
                payload: bytes,
                heard: None,
            }])
        }
    };
    let out = ingest_input(&st, input, Some(INGEST_WAIT)).await?;
    Ok((StatusCode::OK, Json(out)).into_response())
}

/// A readings body over [`READINGS_LIMIT`]: counted as refused (`too_large`; the kind is
/// not known, the body is not read).
pub fn count_too_large(st: &AppState) {
    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
    s.refused.too_large += 1;
    if let Some(last) = s.refused_by_kind.last_mut() {
        last.too_large += 1;
    }
}

/// A machine token confined to a region sends readings of the devices inside it only:
/// the first device outside (or unknown) refuses the whole batch, nothing applied.
fn outside_scope(st: &AppState, scope: &str, bytes: &[u8]) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    struct Line {
        device: Option<String>,
    }
    let t = &st.0.cfg.territory;
    let devices =
        st.0.sensor
            .sensing
            .lock()
            .expect("sensing lock")
            .devices
            .clone();
    let inside: std::collections::HashSet<&str> = devices
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
    ingest_input(st, Input::Ndjson(bytes), wait).await
}

/// [`ingest`] for any [`Input`]: NDJSON or messages in the other shapes.
pub async fn ingest_input(
    st: &AppState,
    input: Input,
    wait: Option<std::time::Duration>,
) -> Result<Value, ApiError> {
    ingest_with(st, input, wait, None).await?
}

/// A batch from the readings work queue (several nodes): the queue's mark to raise with
/// the alarm states the batch changed, in one fenced transaction.
pub struct Queued {
    pub mark: cityos_engine::store::QueueMark,
    /// The singleton lease's epoch the batch was pulled under: the write is fenced by it.
    pub epoch: i64,
    /// Fault injection for the tests (`CITYOS_FAULT_READINGS_ABORT=before_mark:N` or
    /// `stop_before_mark:N`): once the batch's cases are filed, before the mark is written,
    /// the process aborts (like `kill -9`) or the batch waits there while the file
    /// `CITYOS_FAULT_GATE` exists (the test freezes the process with `SIGSTOP` meanwhile).
    pub halt_before_mark: Option<Halt>,
}

/// How a test's fault halts the process (see [`Queued::halt_before_mark`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Halt {
    Abort,
    Stop,
}

/// [`ingest_input`] for a batch of the readings work queue: `Err` when its mark (and
/// alarm states) could not be written — the batch must not be acknowledged — else the
/// batch's answer as [`ingest_input`] gives it.
pub async fn ingest_queued(
    st: &AppState,
    input: Input,
    queued: Queued,
) -> Result<Result<Value, ApiError>, ApiError> {
    ingest_with(st, input, None, Some(queued)).await
}

async fn ingest_with(
    st: &AppState,
    input: Input,
    wait: Option<std::time::Duration>,
    queued: Option<Queued>,
) -> Result<Result<Value, ApiError>, ApiError> {
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
    let fx = crate::http::node::effects();
    let task = tokio::spawn(async move {
        let now = st2.now();
        let st3 = st2.clone();
        let b = tokio::task::spawn_blocking(move || {
            let _permit = permit; // held until the batch is applied
            apply_input(&st3, input, now)
        })
        .await
        .map_err(ApiError::internal)?;
        if let Some(fx) = &fx {
            fx.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let alarms = act(&st2, b.pending, now).await;
        match queued {
            None => keep_alarms(&st2).await,
            Some(q) => {
                match q.halt_before_mark {
                    Some(Halt::Abort) => {
                        let n = alarms.as_ref().map_or(0, Vec::len);
                        crate::http::log::event(
                            "fault_abort_before_mark",
                            &[("seq", &q.mark.seq), ("alarms", &n)],
                        );
                        std::process::abort();
                    }
                    Some(Halt::Stop) => {
                        // What was applied and marked before this batch (this process's
                        // count), for the test to count the rest exactly.
                        let before = st2.0.sensor.sensing.lock().expect("sensing lock").accepted
                            - b.accepted;
                        crate::http::log::event(
                            "fault_stop_before_mark",
                            &[
                                ("seq", &q.mark.seq),
                                ("marked", &before),
                                ("batch", &b.accepted),
                            ],
                        );
                        // Parked until the test's gate file is gone (the test freezes
                        // the whole process meanwhile with SIGSTOP, and lets it go on).
                        if let Ok(gate) = std::env::var("CITYOS_FAULT_GATE") {
                            while std::path::Path::new(&gate).exists() {
                                std::thread::sleep(std::time::Duration::from_millis(20));
                            }
                        }
                    }
                    None => {}
                }
                keep_alarms_marked(&st2, Some((q.mark, q.epoch))).await?;
            }
        }
        let scenarios = (st2.0.ports.scenario_flush)(&st2).await;
        Ok::<_, ApiError>(alarms.map(|alarms| {
            json!({
                "accepted": b.accepted,
                "refused": b.refused,
                "errors": b.errors,
                "alarms": alarms,
                "scenarios": scenarios,
            })
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

/// What a batch holds: cityos's own NDJSON (each line names its device), or messages in
/// the other shapes (the MQTT bridge, `POST /api/v1/readings?payload=…`).
pub enum Input {
    Ndjson(axum::body::Bytes),
    Messages(Vec<Message>),
}

/// One payload and where it came from.
pub struct Message {
    /// `None`: the shape declared for the device's kind (`{prefix}/readings/{device}`).
    pub shape: Option<Shape>,
    /// The device the topic or request names (SenML names may name others).
    pub device: Option<String>,
    /// The kind whose mapping reads it (`{prefix}/mapped/{kind}`).
    pub kind: Option<String>,
    pub payload: axum::body::Bytes,
    /// When the MQTT bridge heard it, when that was before it is applied (the readings
    /// work queue carries it beside the message): the time of a reading whose payload
    /// names none, so that a backlog applied later is judged late, not current.
    pub heard: Option<Millis>,
}

/// A device's reading in cityos's own shape on its own topic: `{"metric", "value", "at"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnReading {
    metric: String,
    value: f64,
    #[serde(default)]
    at: Option<String>,
}

/// When a reading was taken, as sent.
enum At<'a> {
    Arrival,
    Text(&'a str),
    Millis(Millis),
}

/// The per-batch tallies `take` adds to.
struct Tally {
    errors: Vec<Value>,
    refused: Refused,
    by_kind: Vec<Refused>,
    accepted: u64,
    late: u64,
    pending: Vec<Pending>,
}

impl Tally {
    fn refuse(&mut self, kind: Option<u16>, reason: Reason, place: Value, problem: String) {
        *self.refused.field(reason) += 1;
        let k = kind.map_or(self.by_kind.len() - 1, |k| k as usize);
        *self.by_kind[k].field(reason) += 1;
        if self.errors.len() < 20 {
            let mut e = json!({"reason": reason.code(), "problem": problem});
            if let (Some(o), Value::Object(p)) = (e.as_object_mut(), place) {
                o.extend(p);
            }
            self.errors.push(e);
        }
    }
}

/// Judges one reading: device, unit, declared metric, time, range; then the windows, the
/// packs and (unless late) the alarm rules.
#[allow(clippy::too_many_arguments)]
fn take(
    s: &mut SensingState,
    sensing: &cityos_engine::config::Sensing,
    vitals: &mut (dyn crate::ports::ReadingBatch + '_),
    scenarios: &mut (dyn crate::ports::ReadingBatch + '_),
    t: &mut Tally,
    place: &dyn Fn() -> Value,
    device: &str,
    h: Option<u64>,
    metric: &str,
    value: f64,
    at: At<'_>,
    unit: Option<&str>,
    now: Millis,
) {
    let found = match h {
        Some(h) => s.by_id.get_hashed(device, h),
        None => s.by_id.get(device),
    };
    let Some(d) = found else {
        t.refuse(
            None,
            Reason::UnknownDevice,
            place(),
            format!("unknown device {device:?}"),
        );
        return;
    };
    let d = d as usize;
    let kind = Some(s.kind_of[d]);
    if s.retired[d] {
        t.refuse(
            kind,
            Reason::UnknownDevice,
            place(),
            format!("device {device:?} is decommissioned"),
        );
        return;
    }
    if let Some(u) = unit {
        if let Err(m) = sensing.payloads.unit_ok(metric, u) {
            t.refuse(
                kind,
                Reason::UnitMismatch,
                place(),
                format!("device {device:?}: {m}"),
            );
            return;
        }
    }
    if !s.declares(d, metric) {
        t.refuse(
            kind,
            Reason::UndeclaredMetric,
            place(),
            format!("device {device:?} is not declared for metric {metric:?}"),
        );
        return;
    }
    let at = match at {
        At::Arrival => now,
        At::Millis(ms) => ms,
        At::Text(text) => match parse_datetime(text) {
            Some(ms) => ms,
            None => {
                t.refuse(
                    kind,
                    Reason::Malformed,
                    place(),
                    format!("at {text:?} is not a datetime such as 2026-11-26T09:30:00+08:00"),
                );
                return;
            }
        },
    };
    if at > now + MAX_AHEAD {
        t.refuse(
            kind,
            Reason::Future,
            place(),
            format!("at {} is in the future", format_rfc3339(at)),
        );
        return;
    }
    let range = s.range(d);
    if let Some(&k) = s.rule_of[range.clone()].iter().find(|&&k| {
        let rule = &sensing.rules[k as usize];
        rule.metric == metric && !rule.in_range(value)
    }) {
        t.refuse(
            kind,
            Reason::OutOfRange,
            place(),
            format!(
                "{metric} = {value} is outside the possible range of {}",
                sensing.rules[k as usize].code
            ),
        );
        return;
    }
    if !value.is_finite() {
        t.refuse(
            kind,
            Reason::OutOfRange,
            place(),
            "the value is not a finite number".into(),
        );
        return;
    }
    t.accepted += 1;
    vitals.reading(d, metric, value, at);
    scenarios.reading(d, metric, value, at);
    if at < now - LATE_AFTER {
        // Late: history only. The device's last-seen time still moves (offline detection
        // is judged on reading time), but no alarm is judged on a reading from the past.
        t.late += 1;
        s.last[d] = s.last[d].max(at);
        return;
    }
    s.last[d] = s.last[d].max(at);
    for j in range {
        let k = s.rule_of[j] as usize;
        let rule = &sensing.rules[k];
        let silent = matches!(rule.condition, Condition::Silent { .. });
        if !silent && rule.metric != metric {
            continue;
        }
        let slot = &mut s.slots[j];
        let (next, change) = rule.observe(slot.state, value, at);
        if next != slot.state {
            // A transition (rare): written to the store after the batch — a firing once
            // `act` has acted on it (its case filed or noted), so a state stored by a
            // concurrent write never says "firing" without its case.
            slot.state = next;
            if !matches!(change, Some(AlarmChange::Fired { .. })) {
                s.dirty.push(j as u32);
            }
        }
        if let Some(c) = change {
            t.pending.push((d, k, c, Some(value)));
        }
    }
}

/// Applies a batch of NDJSON readings (see [`apply_input`]).
pub fn apply(st: &AppState, bytes: &[u8], now: Millis) -> Batch {
    apply_input(
        st,
        Input::Ndjson(axum::body::Bytes::copy_from_slice(bytes)),
        now,
    )
}

/// Applies a batch under the sensing and vitals locks: decode, device lookup, unit and
/// range checks, vital-sign windows, alarm rules. The hot path of `bench ingest`.
pub fn apply_input(st: &AppState, input: Input, now: Millis) -> Batch {
    let cfg = &st.0.cfg;
    let sensing = &cfg.sensing;
    let mut guard = st.0.sensor.sensing.lock().expect("sensing lock");
    let mut vitals = (st.0.ports.readings)(st);
    let mut scenarios = (st.0.ports.scenario_readings)(st);
    let s = &mut *guard;
    let mut t = Tally {
        errors: Vec::new(),
        refused: Refused::default(),
        by_kind: vec![Refused::default(); s.kinds.len() + 1],
        accepted: 0,
        late: 0,
        pending: Vec::new(),
    };
    match input {
        Input::Ndjson(bytes) => {
            // Lines are parsed a group ahead and their table lines prefetched, so that the
            // device lookups of a group overlap their memory waits instead of taking them
            // one by one.
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
                    let place = || json!({ "line": line_no });
                    let r: Reading = match r {
                        Ok(r) => r,
                        Err(e) => {
                            t.refuse(
                                None,
                                Reason::Malformed,
                                place(),
                                format!("not a reading: {e}"),
                            );
                            continue;
                        }
                    };
                    let at = match r.at.as_deref() {
                        None => At::Arrival,
                        Some(x) => At::Text(x),
                    };
                    take(
                        s,
                        sensing,
                        &mut *vitals,
                        &mut *scenarios,
                        &mut t,
                        &place,
                        &r.device,
                        Some(h),
                        &r.metric,
                        r.value,
                        at,
                        None,
                        now,
                    );
                }
            }
        }
        Input::Messages(messages) => {
            let mut items = Vec::new();
            for (m, msg) in messages.into_iter().enumerate() {
                let message = m + 1;
                let kind_of_dev = |s: &SensingState, id: &str| s.device(id).map(|d| s.kind_of[d]);
                // The kind decoding refusals are counted under: the topic's device's, or
                // the mapping's (a record whose device cannot be read has no other).
                let topic_kind = msg
                    .device
                    .as_deref()
                    .and_then(|id| kind_of_dev(s, id))
                    .or_else(|| msg.kind.as_deref().and_then(|k| s.kind_index(k)));
                if msg.payload.len() > MESSAGE_LIMIT {
                    t.refuse(
                        topic_kind,
                        Reason::TooLarge,
                        json!({ "message": message }),
                        format!(
                            "message of {} bytes is over the limit of {} KiB",
                            msg.payload.len(),
                            MESSAGE_LIMIT >> 10
                        ),
                    );
                    continue;
                }
                let shape = match msg.shape {
                    Some(x) => x,
                    None => match topic_kind {
                        Some(k) => sensing.payloads.shape_of(&s.kinds[k as usize]),
                        None => {
                            t.refuse(
                                None,
                                Reason::UnknownDevice,
                                json!({ "message": message }),
                                format!("unknown device {:?}", msg.device.as_deref().unwrap_or("")),
                            );
                            continue;
                        }
                    },
                };
                items.clear();
                match shape {
                    Shape::Native => native_items(&msg.payload, &mut items),
                    Shape::Senml => cityos_core::payload::senml(
                        &msg.payload,
                        msg.heard.unwrap_or(now),
                        &mut items,
                    ),
                    Shape::Telemetry => cityos_core::payload::telemetry(&msg.payload, &mut items),
                    Shape::Mapped => {
                        let kind = msg
                            .kind
                            .clone()
                            .or_else(|| topic_kind.map(|k| s.kinds[k as usize].clone()));
                        match kind.as_deref().and_then(|k| sensing.payloads.mapping_of(k)) {
                            Some(mapping) => {
                                cityos_core::payload::mapped(mapping, &msg.payload, &mut items)
                            }
                            None => {
                                t.refuse(
                                    topic_kind,
                                    Reason::NoMapping,
                                    json!({ "message": message }),
                                    format!(
                                        "no payload mapping is declared for device kind {:?}",
                                        kind.unwrap_or_default()
                                    ),
                                );
                                continue;
                            }
                        }
                    }
                }
                for item in items.drain(..) {
                    match item {
                        Err(e) => {
                            let place = json!({ "message": message, "record": e.record });
                            t.refuse(topic_kind, e.reason, place, e.problem);
                        }
                        Ok(r) => {
                            let device = match (r.device.as_deref(), msg.device.as_deref()) {
                                (Some(d), _) | (None, Some(d)) => d,
                                (None, None) => {
                                    t.refuse(
                                        None,
                                        Reason::NoName,
                                        json!({ "message": message }),
                                        format!("no device named for {:?}", r.metric),
                                    );
                                    continue;
                                }
                            };
                            let place = || json!({ "message": message });
                            let at = match (r.at, msg.heard) {
                                (Some(ms), _) | (None, Some(ms)) => At::Millis(ms),
                                (None, None) => At::Arrival,
                            };
                            take(
                                s,
                                sensing,
                                &mut *vitals,
                                &mut *scenarios,
                                &mut t,
                                &place,
                                device,
                                None,
                                &r.metric,
                                r.value,
                                at,
                                r.unit.as_deref(),
                                now,
                            );
                        }
                    }
                }
            }
        }
    }
    vitals.settle();
    scenarios.settle();
    s.accepted += t.accepted;
    s.late += t.late;
    s.refused.add(&t.refused);
    for (k, r) in t.by_kind.iter().enumerate() {
        if let Some(x) = s.refused_by_kind.get_mut(k) {
            x.add(r);
        }
    }
    Batch {
        accepted: t.accepted,
        refused: t.refused,
        errors: t.errors,
        pending: t.pending,
    }
}

/// cityos's own shape on a device's topic: one `{"metric","value","at"?}` or an array.
fn native_items(payload: &[u8], out: &mut Vec<cityos_core::payload::Item>) {
    use cityos_core::payload::{Decoded, Refusal};
    let one = |r: OwnReading| {
        let at = match r.at.as_deref().map(parse_datetime) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => {
                return Err(Refusal {
                    record: 1,
                    reason: Reason::Malformed,
                    problem: format!(
                        "at {:?} is not a datetime such as 2026-11-26T09:30:00+08:00",
                        r.at.unwrap_or_default()
                    ),
                })
            }
        };
        Ok(Decoded {
            device: None,
            metric: r.metric,
            value: r.value,
            at,
            unit: None,
        })
    };
    if payload.trim_ascii_start().first() == Some(&b'[') {
        match serde_json::from_slice::<Vec<OwnReading>>(payload) {
            Ok(v) => out.extend(v.into_iter().map(one)),
            Err(e) => out.push(Err(Refusal {
                record: 0,
                reason: Reason::Malformed,
                problem: format!("not a reading: {e}"),
            })),
        }
    } else {
        match serde_json::from_slice::<OwnReading>(payload) {
            Ok(r) => out.push(one(r)),
            Err(e) => out.push(Err(Refusal {
                record: 0,
                reason: Reason::Malformed,
                problem: format!("not a reading: {e}"),
            })),
        }
    }
}

/// Time passes for every alarm: pending conditions that held long enough fire, silent
/// devices fire. Called by the service's ticker (and by tests with a hand-set clock).
pub async fn tick(st: &AppState) -> Result<Vec<Value>, ApiError> {
    if !ensure_current(st).await? {
        return Ok(Vec::new());
    }
    let now = st.now();
    let sensing = &st.0.cfg.sensing;
    let mut pending = Vec::new();
    {
        let mut guard = st.0.sensor.sensing.lock().expect("sensing lock");
        let s = &mut *guard;
        for d in 0..s.devices.len() {
            if s.retired[d] {
                continue;
            }
            let last = s.last[d];
            for j in s.range(d) {
                let k = s.rule_of[j] as usize;
                let rule = &sensing.rules[k];
                let slot = &mut s.slots[j];
                let (next, change) = rule.tick(slot.state, last, now);
                if next != slot.state {
                    // A firing is written once `act` has acted on it (see `take`).
                    slot.state = next;
                    if !matches!(change, Some(AlarmChange::Fired { .. })) {
                        s.dirty.push(j as u32);
                    }
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

/// When a change happened (the alarm's `since` when it fired).
fn since_of(c: AlarmChange) -> Millis {
    match c {
        AlarmChange::Fired { since } => since,
        AlarmChange::Cleared => 0,
    }
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
    let _ = keep_alarms_marked(st, None).await;
}

/// [`keep_alarms`], writing the readings work queue's mark in the same transaction
/// (written even when no alarm changed), fenced by the epoch the queue's batch was pulled
/// under. Several nodes: written only while this node holds the singleton lease at that
/// epoch (else the one it believes it holds) — checked in the transaction, so a holder
/// paused past its lease writes nothing when it wakes. A node that no longer holds the
/// lease drops what it changed in memory (it rebuilds from the store when it holds the
/// lease again); a fenced write keeps it for the next write, like a failed one.
pub async fn keep_alarms_marked(
    st: &AppState,
    mark: Option<(cityos_engine::store::QueueMark, i64)>,
) -> Result<(), ApiError> {
    let _turn = st.0.sensor.keeping.lock().await;
    let (mark, pulled_at) = match mark {
        Some((m, e)) => (Some(m), Some(e)),
        None => (None, None),
    };
    let fence = match st.0.cluster.get() {
        None => None,
        Some(c) => match crate::http::node::singleton_epoch(st) {
            Some(Some(epoch)) if pulled_at.is_none_or(|p| p == epoch) => {
                Some(cityos_engine::store::Fence {
                    node: c.node.clone(),
                    leases: vec![(cityos_engine::engine::SINGLETON.to_string(), epoch)],
                })
            }
            _ => {
                // Not the holder (any more), or not at the epoch the batch was pulled
                // under: not this node's to write.
                let dropped = {
                    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
                    let n = s.dirty.len();
                    s.dirty.clear();
                    n
                };
                let e = StoreError::Fenced {
                    partition: cityos_engine::engine::SINGLETON.to_string(),
                    epoch: pulled_at.unwrap_or(-1),
                };
                if dropped > 0 || mark.is_some() {
                    crate::http::log::event("alarm_states_fenced", &[("error", &e)]);
                }
                return Err(e.into());
            }
        },
    };
    let (slots, rows) = {
        let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
        if s.dirty.is_empty() && mark.is_none() {
            return Ok(());
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
                    device: s.devices[s.device_of(j)].id.clone(),
                    rule: sensing.rules[s.rule_of[j] as usize].code.clone(),
                    state: state.into(),
                    since,
                    case_id: s.slots[j].case,
                }
            })
            .collect();
        (slots, rows)
    };
    let stored =
        st.0.reads
            .write(move |s| match &fence {
                Some(f) => s.put_alarm_states_fenced(&rows, mark.as_ref(), f),
                None => s.put_alarm_states(&rows),
            })
            .await;
    let e = match stored {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e @ StoreError::Fenced { .. })) => {
            // The lease moved (or lapsed and was renewed at the same epoch): kept for the
            // next write; a takeover elsewhere rebuilds this node's state when it holds
            // the lease again, and a node that is no longer the holder drops it.
            crate::http::log::event("alarm_states_fenced", &[("error", &e)]);
            ApiError::from(e)
        }
        Ok(Err(e)) => ApiError::from(e),
        Err(e) => e,
    };
    crate::http::log::event("alarm_states_failed", &[("error", &e.detail)]);
    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
    s.dirty.extend(slots);
    Err(e)
}

/// Puts back the alarm states kept in the store (at start, before any reading). Rows of
/// devices or rules no longer configured are passed over.
pub fn restore(st: &AppState, store: &mut (impl SensingStore + ?Sized)) -> Result<(), StoreError> {
    let rows = store.alarm_states()?;
    let sensing = &st.0.cfg.sensing;
    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
    // What another node may have changed since: the store's rows are the whole truth.
    for x in s.slots.iter_mut() {
        *x = Slot::default();
    }
    s.dirty.clear();
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

/// Several nodes: whether this node applies readings now (it holds the singleton lease;
/// always alone). The first call after the node gained the lease rebuilds the alarm
/// state from the store — the slots the last holder wrote (state, since, open case) and
/// the device registry — so a takeover continues open alarms instead of raising them
/// again or forgetting them; each device's last reading time becomes the takeover's
/// (a device that went silent just before is judged silent one `no_data` window later).
pub async fn ensure_current(st: &AppState) -> Result<bool, ApiError> {
    if !crate::http::node::runs_jobs(st) {
        return Ok(false);
    }
    let gained = crate::http::node::singleton_gained(st);
    let mut rebuilt = st.0.sensor.rebuilt_for.lock().await;
    if *rebuilt == gained {
        return Ok(true);
    }
    let st2 = st.clone();
    let now = st.now();
    let open =
        st.0.reads
            .run(move |s| -> Result<usize, StoreError> {
                registry::restore(&st2, s, now)?;
                restore(&st2, s)?;
                let mut g = st2.0.sensor.sensing.lock().expect("sensing lock");
                for t in g.last.iter_mut() {
                    *t = (*t).max(now);
                }
                Ok(g.slots.iter().filter(|x| x.case.is_some()).count())
            })
            .await?
            .map_err(ApiError::from)?;
    *rebuilt = gained;
    crate::http::log::event("sensing_taken_over", &[("alarms_with_case", &open)]);
    Ok(true)
}

/// Makes the next [`ensure_current`] rebuild the alarm state from the store again (the
/// readings work queue's new holder, once the last holder's unacknowledged batch was
/// waited out: what that holder wrote meanwhile is in the store).
pub async fn rebuild_again(st: &AppState) {
    *st.0.sensor.rebuilt_for.lock().await = u64::MAX;
}

/// Turns alarm changes into cases and notes.
async fn act(st: &AppState, pending: Vec<Pending>, now: Millis) -> Result<Vec<Value>, ApiError> {
    // Several nodes: an alarm whose case belongs to a partition another node holds does
    // not stop the others' cases from being filed here; the first such refusal is the
    // answer (the batch is never re-run elsewhere: see `runtime::cluster`).
    // An alarm whose firing could not be acted on (its case not filed) is put back to
    // normal in memory — never stored as firing without its case — so that its next
    // reading fires it again and files the case then (the report joins the case if the
    // first one was filed after all).
    let mut out = Vec::new();
    let mut refused = None;
    let mut failed = None;
    for p in pending {
        let (d, k, fired) = (p.0, p.1, matches!(p.2, AlarmChange::Fired { .. }));
        if failed.is_some() {
            if fired {
                unfire(st, d, k);
            }
            continue;
        }
        match act_each(st, vec![p], now).await {
            Ok(v) => out.extend(v),
            Err(e) => {
                if fired {
                    unfire(st, d, k);
                }
                if e.partition.is_some() {
                    refused.get_or_insert(e);
                } else {
                    failed = Some(e);
                }
            }
        }
    }
    match failed.or(refused) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Puts a firing alarm without a case back to normal (its filing failed).
fn unfire(st: &AppState, d: usize, k: usize) {
    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
    if let Some(j) = s.slot_index(d, k) {
        if s.slots[j].case.is_none() && matches!(s.slots[j].state, AlarmState::Firing { .. }) {
            s.slots[j].state = AlarmState::Normal;
        }
    }
}

async fn act_each(
    st: &AppState,
    pending: Vec<Pending>,
    now: Millis,
) -> Result<Vec<Value>, ApiError> {
    let sensing = &st.0.cfg.sensing;
    let mut out = Vec::new();
    if !pending.is_empty() {
        let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
        for (_, k, change, _) in &pending {
            match change {
                AlarmChange::Fired { .. } => s.raised[*k] += 1,
                AlarmChange::Cleared => s.cleared[*k] += 1,
            }
        }
    }
    for (d, k, change, value) in pending {
        let device = {
            let s = st.0.sensor.sensing.lock().expect("sensing lock");
            s.devices[d].clone()
        };
        let (device, rule) = (&device, &sensing.rules[k]);
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
            // A repeat, or the all-clear: noted on the alarm's open case (a firing's state
            // is written from here on).
            (_, Some(case)) => {
                let n = note_case(st, case, note, now).await?;
                if matches!(change, AlarmChange::Fired { .. }) {
                    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
                    if let Some(j) = s.slot_index(d, k) {
                        s.dirty.push(j as u32);
                    }
                }
                n
            }
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
                // Keyed by the alarm and when it fired: a batch applied again (its
                // holder died before its alarm states were written) files no second case.
                let key = format!(
                    "sensing-alarm:{}:{}:{}",
                    device.id,
                    rule.code,
                    since_of(change)
                );
                // A case found closed since (the same reading came again after the
                // all-clear) is followed by a new one, keyed by the closed one — a chain,
                // so that a batch applied again joins the same case each time.
                let mut key = key;
                let mut hops = 0;
                let (id, number) = loop {
                    let (id, number) = file_report_once(st, report.clone(), &key, now).await?;
                    let id = match id {
                        Some(id) => Some(id),
                        None => crate::cases::find_case(st, &number).await?.map(|c| c.id),
                    };
                    match id {
                        Some(c) if hops < 32 && still_open(st, Some(c)).await?.is_none() => {
                            key = format!("{key}:after:{c}");
                            hops += 1;
                        }
                        _ => break (id, number),
                    }
                };
                // Linked (and its firing written from here on) once its case is known.
                let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
                if let Some(j) = s.slot_index(d, k) {
                    s.slots[j].case = id;
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
    let sensing = &st.0.cfg.sensing;
    let mut by_kind = serde_json::Map::new();
    for (k, r) in s.refused_by_kind.iter().enumerate() {
        if r.total() == 0 {
            continue;
        }
        let name = s.kinds.get(k).map_or("unknown", String::as_str);
        let counts: serde_json::Map<String, Value> = Reason::ALL
            .iter()
            .filter(|x| r.get(**x) > 0)
            .map(|x| (x.code().to_string(), json!(r.get(*x))))
            .collect();
        by_kind.insert(name.to_string(), Value::Object(counts));
    }
    let alarms: Vec<Value> = sensing
        .rules
        .iter()
        .enumerate()
        .map(|(k, r)| json!({"rule": r.code, "kind": r.kind, "raised": s.raised[k], "cleared": s.cleared[k]}))
        .collect();
    Ok(Json(json!({
        "devices": s.devices.len() - s.retired.iter().filter(|r| **r).count(),
        "rules": sensing.rules.len(),
        "accepted": s.accepted,
        "late": s.late,
        "refused": s.refused,
        "refused_by_kind": by_kind,
        "alarms": alarms,
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
    /// One change of the device registry at a time.
    pub registering: tokio::sync::Mutex<()>,
    /// Several nodes: the singleton gain ([`crate::http::node::singleton_gained`]) the
    /// alarm state was last rebuilt from the store for (see [`ensure_current`]).
    pub rebuilt_for: tokio::sync::Mutex<u64>,
}

impl SensorState {
    pub fn new(cfg: &cityos_engine::config::Config, now: Millis) -> SensorState {
        SensorState {
            sensing: std::sync::Mutex::new(SensingState::new(cfg, now)),
            ingest_gate: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            ingest_waiting: std::sync::atomic::AtomicUsize::new(0),
            ingest_busy: std::sync::atomic::AtomicU64::new(0),
            keeping: tokio::sync::Mutex::new(()),
            registering: tokio::sync::Mutex::new(()),
            rebuilt_for: tokio::sync::Mutex::new(0),
        }
    }
}

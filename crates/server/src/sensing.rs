//! The sensing end in the service: readings in (HTTP NDJSON), alarm rules applied per
//! (device, rule), alarms out as cases — at most one open case per device and rule: a
//! repeat is noted on that case, and when the readings return to normal its log says so.
//! Every refused reading is counted by reason and reported back with its line.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::case::{CaseId, Channel};
use cityos_core::sensing::{AlarmChange, AlarmState, Condition};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::Role;
use cityos_engine::engine::{Request as EngineRequest, Response as EngineResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Largest NDJSON body accepted in one request.
pub const READINGS_LIMIT: usize = 8 * 1024 * 1024;
/// Readings stamped further ahead than this are refused.
pub const MAX_AHEAD: Millis = 5 * MINUTE;

/// Why readings were refused, counted since the start.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Refused {
    pub malformed: u64,
    pub unknown_device: u64,
    pub out_of_range: u64,
    pub future: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    state: AlarmState,
    case: Option<CaseId>,
}

/// The sensing end's live state.
#[derive(Debug, Default)]
pub struct SensingState {
    slots: HashMap<(usize, usize), Slot>,
    /// Last reading per device (registration time until the first).
    last: Vec<Millis>,
    by_id: HashMap<String, usize>,
    /// Per device: the rules that apply to it (by kind and tags).
    rules_of: Vec<Vec<usize>>,
    pub accepted: u64,
    pub refused: Refused,
    /// Water-meter flows (`flow_m3`) of the last hours per device, oldest first, for the
    /// data end's consumption rules.
    pub flows: HashMap<usize, std::collections::VecDeque<(Millis, f64)>>,
}

/// How long water-meter flows are kept.
pub const FLOW_HISTORY: Millis = 13 * cityos_core::time::HOUR;

impl SensingState {
    /// The device index of an id.
    pub fn device(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Total flow of a device in `(now - window, now]`, if its readings cover the window.
    pub fn consumption(&self, device: usize, window: Millis, now: Millis) -> Option<f64> {
        let f = self.flows.get(&device)?;
        let first = f.front()?.0;
        (first <= now - window).then(|| {
            f.iter()
                .filter(|(at, _)| *at > now - window && *at <= now)
                .map(|(_, v)| v)
                .sum()
        })
    }
}

impl SensingState {
    pub fn new(cfg: &cityos_engine::demo::Config, now: Millis) -> SensingState {
        let devices = &cfg.sensing.devices;
        SensingState {
            by_id: devices
                .iter()
                .enumerate()
                .map(|(i, d)| (d.id.clone(), i))
                .collect(),
            last: vec![now; devices.len()],
            rules_of: devices
                .iter()
                .map(|d| {
                    (0..cfg.sensing.rules.len())
                        .filter(|&k| cfg.sensing.rules[k].applies_to(d))
                        .collect()
                })
                .collect(),
            ..Default::default()
        }
    }

    pub fn firing(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s.state, AlarmState::Firing { .. }))
            .count()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reading {
    device: String,
    metric: String,
    value: f64,
    #[serde(default)]
    at: Option<String>,
}

/// An alarm change to act on: (device index, rule index, change, value).
type Pending = (usize, usize, AlarmChange, Option<f64>);

fn may_send(p: &crate::auth::Principal) -> bool {
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
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let p = crate::api::signed_in(&st, &headers)?;
    if !may_send(&p) {
        return Err(ApiError::forbidden(format!(
            "role {} does not send sensor readings",
            p.role
        )));
    }
    let bytes = axum::body::to_bytes(body, READINGS_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "send at most {} MiB of readings per request",
                    READINGS_LIMIT >> 20
                ),
            )
        })?;
    Ok((StatusCode::OK, Json(ingest(&st, &bytes).await?)).into_response())
}

/// Takes NDJSON readings (the HTTP endpoint, the demo's simulated devices, the MQTT
/// bridge): applies the rules, acts on the alarms; answers what was taken and refused.
pub async fn ingest(st: &AppState, bytes: &[u8]) -> Result<Value, ApiError> {
    let now = st.now();
    let cfg = &st.0.cfg;
    let sensing = &cfg.sensing;
    let mut errors: Vec<Value> = Vec::new();
    let mut refused = Refused::default();
    let mut accepted = 0u64;
    let mut pending: Vec<Pending> = Vec::new();
    {
        let mut guard = st.0.sensing.lock().expect("sensing lock");
        let mut vitals = st.0.vitals.lock().expect("vitals lock");
        let s = &mut *guard;
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line_no = i + 1;
            let text = String::from_utf8_lossy(line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let mut refuse = |kind: &mut u64, problem: String| {
                *kind += 1;
                if errors.len() < 20 {
                    errors.push(json!({"line": line_no, "problem": problem}));
                }
            };
            let r: Reading = match serde_json::from_str(text) {
                Ok(r) => r,
                Err(e) => {
                    refuse(&mut refused.malformed, format!("not a reading: {e}"));
                    continue;
                }
            };
            let Some(&d) = s.by_id.get(&r.device) else {
                refuse(
                    &mut refused.unknown_device,
                    format!("unknown device {:?}", r.device),
                );
                continue;
            };
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
            let device = &sensing.devices[d];
            let rules = &s.rules_of[d];
            if let Some(k) = rules.iter().copied().find(|&k| {
                let rule = &sensing.rules[k];
                rule.metric == r.metric && !rule.in_range(r.value)
            }) {
                refuse(
                    &mut refused.out_of_range,
                    format!(
                        "{} = {} is outside the possible range of {}",
                        r.metric, r.value, sensing.rules[k].code
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
            vitals.reading(&cfg.indicators, d, &device.kind, &r.metric, r.value, at);
            if r.metric == "flow_m3" {
                let f = s.flows.entry(d).or_default();
                f.push_back((at, r.value));
                while f.front().is_some_and(|(t, _)| *t < now - FLOW_HISTORY) && f.len() > 1 {
                    f.pop_front();
                }
            }
            for &k in rules {
                let rule = &sensing.rules[k];
                let silent = matches!(rule.condition, Condition::Silent { .. });
                if !silent && rule.metric != r.metric {
                    continue;
                }
                let slot = s.slots.entry((d, k)).or_default();
                let (next, change) = rule.observe(slot.state, r.value, at);
                slot.state = next;
                if let Some(c) = change {
                    pending.push((d, k, c, Some(r.value)));
                }
            }
        }
        drop(vitals);
        let s = &mut *guard;
        s.accepted += accepted;
        let t = &mut s.refused;
        t.malformed += refused.malformed;
        t.unknown_device += refused.unknown_device;
        t.out_of_range += refused.out_of_range;
        t.future += refused.future;
    }
    let alarms = act(st, pending, now).await?;
    Ok(json!({
        "accepted": accepted,
        "refused": refused,
        "errors": errors,
        "alarms": alarms,
    }))
}

/// The demo's devices: every gauge reports a normal value; now and then one water-level
/// gauge floods for a few minutes, or a manhole cover tilts, so that alarms fire, become
/// cases and clear. Runs until `stop`.
pub async fn simulate_devices(
    st: AppState,
    seed: u64,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mqtt: Option<String>,
) {
    // Over MQTT when a broker is given (the bridge takes them in), else the embedded path.
    let publisher = match mqtt.as_deref().map(crate::mqtt::parse_url) {
        Some(Ok((host, port))) => {
            let opts = rumqttc::MqttOptions::new(
                format!("cityos-demo-devices-{}", std::process::id()),
                host,
                port,
            );
            let (client, mut events) = rumqttc::AsyncClient::new(opts, 1000);
            tokio::spawn(async move {
                loop {
                    if events.poll().await.is_err() {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            });
            Some(client)
        }
        _ => None,
    };
    let mut rng = cityos_core::rng::Rng::new(seed ^ 0x5e45);
    let devices = st.0.cfg.sensing.devices.clone();
    // (device index, rounds left) of the incident under way.
    let mut incident: Option<(usize, u32)> = None;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        if incident.is_none() && rng.chance(0.2) {
            let candidates: Vec<usize> = (0..devices.len())
                .filter(|&i| matches!(devices[i].kind.as_str(), "water_level" | "manhole_tilt"))
                .collect();
            if !candidates.is_empty() {
                let i = candidates[rng.below(candidates.len() as u64) as usize];
                incident = Some((i, 12 + rng.below(12) as u32));
            }
        }
        let mut lines = String::new();
        for (i, d) in devices.iter().enumerate() {
            let hot = incident.is_some_and(|(x, _)| x == i);
            let (metric, value) = match d.kind.as_str() {
                "water_level" if hot => ("depth_cm", rng.range_f64(18.0, 40.0)),
                "water_level" => ("depth_cm", rng.range_f64(0.0, 4.0)),
                "manhole_tilt" if hot => ("tilt_deg", rng.range_f64(12.0, 30.0)),
                "manhole_tilt" => ("tilt_deg", rng.range_f64(0.0, 1.5)),
                "smoke" => ("obscuration_pct", rng.range_f64(0.0, 1.0)),
                // One elder's tap stays shut: after 12 hours the data end's rule asks the
                // community to visit.
                "water_meter" if d.id == "WM-007" => ("flow_m3", 0.0),
                "water_meter" => ("flow_m3", rng.range_f64(0.0, 0.05)),
                _ => continue,
            };
            let value = (value * 100.0).round() / 100.0;
            if let Some(c) = &publisher {
                let payload = format!("{{\"metric\":\"{metric}\",\"value\":{value}}}");
                let topic = format!("cityos/readings/{}", d.id);
                if c.publish(topic, rumqttc::QoS::AtMostOnce, false, payload)
                    .await
                    .is_err()
                {
                    crate::log::event("sensing_demo_publish_failed", &[("device", &d.id)]);
                }
                continue;
            }
            lines.push_str(&format!(
                "{{\"device\":\"{}\",\"metric\":\"{metric}\",\"value\":{value}}}\n",
                d.id
            ));
        }
        if let Some((i, left)) = incident {
            incident = (left > 1).then_some((i, left - 1));
        }
        if lines.is_empty() {
        } else if let Err(e) = ingest(&st, lines.as_bytes()).await {
            crate::log::event("sensing_demo_failed", &[("error", &e.detail)]);
        }
        tokio::time::sleep(every).await;
    }
}

/// The demo's water meters' last `hours` of readings (hourly), so that the data end's
/// 12-hour rule has history to judge at once; WM-007's elder used no water.
pub async fn backfill_meters(st: &AppState, hours: i64, seed: u64) -> Result<Value, ApiError> {
    let mut rng = cityos_core::rng::Rng::new(seed ^ 0xa7e7);
    let now = st.now();
    let mut lines = String::new();
    for k in (1..=hours).rev() {
        let at = format_rfc3339(now - k * cityos_core::time::HOUR);
        for d in
            st.0.cfg
                .sensing
                .devices
                .iter()
                .filter(|d| d.kind == "water_meter")
        {
            let v = if d.id == "WM-007" {
                0.0
            } else {
                (rng.range_f64(0.01, 0.08) * 1000.0).round() / 1000.0
            };
            lines.push_str(&format!(
                "{{\"device\":\"{}\",\"metric\":\"flow_m3\",\"value\":{v},\"at\":\"{at}\"}}\n",
                d.id
            ));
        }
    }
    ingest(st, lines.as_bytes()).await
}

/// Runs [`tick`] and the data rules every `every` until `stop` (silent devices, pending
/// conditions, datasets on a schedule).
pub async fn ticker(
    st: AppState,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        if let Err(e) = tick(&st).await {
            crate::log::event("sensing_tick_failed", &[("error", &e.detail)]);
        }
        if let Err(e) = crate::data::run_rules(&st).await {
            crate::log::event("data_rules_failed", &[("error", &e.detail)]);
        }
    }
}

/// Time passes for every alarm: pending conditions that held long enough fire, silent
/// devices fire. Called by the service's ticker (and by tests with a hand-set clock).
pub async fn tick(st: &AppState) -> Result<Vec<Value>, ApiError> {
    let now = st.now();
    let sensing = &st.0.cfg.sensing;
    let mut pending = Vec::new();
    {
        let mut s = st.0.sensing.lock().expect("sensing lock");
        for (d, device) in sensing.devices.iter().enumerate() {
            let last = s.last[d];
            for (k, rule) in sensing.rules.iter().enumerate() {
                if !rule.applies_to(device) {
                    continue;
                }
                let slot = s.slots.entry((d, k)).or_default();
                let (next, change) = rule.tick(slot.state, last, now);
                slot.state = next;
                if let Some(c) = change {
                    pending.push((d, k, c, None));
                }
            }
        }
    }
    act(st, pending, now).await
}

/// Turns alarm changes into cases and notes.
async fn act(st: &AppState, pending: Vec<Pending>, now: Millis) -> Result<Vec<Value>, ApiError> {
    let sensing = &st.0.cfg.sensing;
    let mut out = Vec::new();
    for (d, k, change, value) in pending {
        let (device, rule) = (&sensing.devices[d], &sensing.rules[k]);
        let text = rule.describe(device, value);
        let open_case = {
            let s = st.0.sensing.lock().expect("sensing lock");
            s.slots.get(&(d, k)).and_then(|x| x.case)
        };
        let open_case = match open_case {
            Some(id) => {
                st.0.reads
                    .run(move |s| s.load_case(id))
                    .await??
                    .filter(|c| c.state.is_open())
                    .map(|c| c.id)
            }
            None => None,
        };
        let (kind, note) = match change {
            AlarmChange::Fired { .. } => ("fired", format!("报警：{text}")),
            AlarmChange::Cleared => ("cleared", format!("报警解除，读数恢复正常：{text}")),
        };
        let number = match (change, open_case) {
            // A repeat, or the all-clear: noted on the alarm's open case.
            (_, Some(case)) => {
                let mut command = Command::new(Action::Note, Actor::system());
                command.note = note;
                match crate::api::engine_call(st, EngineRequest::Transition { case, command, now })
                    .await?
                {
                    EngineResponse::Transition(o) => Some(o.case.number),
                    _ => None,
                }
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
                };
                match crate::api::engine_call(st, EngineRequest::Report(report)).await? {
                    EngineResponse::Intake(o) => {
                        let mut s = st.0.sensing.lock().expect("sensing lock");
                        s.slots.entry((d, k)).or_default().case = Some(o.case.id);
                        Some(o.case.number)
                    }
                    _ => None,
                }
            }
            // Cleared after its case was closed: nothing to write.
            (AlarmChange::Cleared, None) => None,
        };
        out.push(json!({"device": device.id, "rule": rule.code, "change": kind, "case": number}));
    }
    Ok(out)
}

/// `GET /api/v1/readings/stats` — what the sensing end has taken and refused.
pub async fn readings_stats(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    crate::api::signed_in(&st, &headers)?;
    let s = st.0.sensing.lock().expect("sensing lock");
    Ok(Json(json!({
        "devices": st.0.cfg.sensing.devices.len(),
        "rules": st.0.cfg.sensing.rules.len(),
        "accepted": s.accepted,
        "refused": s.refused,
        "alarms_firing": s.firing(),
    }))
    .into_response())
}

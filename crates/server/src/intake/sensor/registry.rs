//! The runtime device registry (issue 22): `GET/POST /api/v1/devices`,
//! `GET/PATCH/DELETE /api/v1/devices/{id}`. The configuration's device file is the seed;
//! what the API registers, changes or decommissions is written to the store
//! (`DeviceStore`, table `device_registry`) first, then takes effect in the sensing
//! state at once — no restart — and is written to the audit trail.
//!
//! Who may: administrators, for every device; a department's staff for the devices their
//! department owns (registering one makes their department its owner). Others 403,
//! anonymous 401.
//!
//! Architecture Invariant: device indices only grow. A decommissioned device keeps its
//! index and its id (ids are never reused), so alarm slots, the vital signs' feed groups
//! and the scenario packs' per-device arrays never shift. A change of kind or tags is a
//! new device (retire, register under a new id): it would change which rules apply.
//!
//! Not (yet) followed by a device registered at run time: the scenario packs' facts and
//! the vital-sign feed groups of a kind and sub-district that had no seed device (a new
//! device joins the feed group of a seed device of its kind in its sub-district).

use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::sensing::Device;
use cityos_core::time::Millis;
use cityos_core::Role;
use cityos_engine::store::DeviceRow;
use cityos_engine::{DeviceStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest bulk import (CSV or GeoJSON) accepted.
pub const IMPORT_LIMIT: usize = 4 * 1024 * 1024;

/// Most devices one bulk import may hold (split larger deliveries).
pub const IMPORT_ROWS: usize = 10_000;

/// The department whose devices `p` manages: a handler's own. Officers, inspectors and
/// analysts read the vital signs but do not register or retire devices (retiring a smoke
/// detector stops its alarms being judged).
fn department_of(p: &Principal) -> Option<&str> {
    match p.role {
        Role::Handler => p.department.as_deref(),
        _ => None,
    }
}

/// May `p` see or change a device owned by `owner`?
fn may_manage(p: &Principal, owner: Option<&str>) -> bool {
    p.role == Role::Admin || department_of(p).is_some_and(|d| owner == Some(d))
}

/// May `p` use the registry at all?
fn may_use(p: &Principal) -> Result<(), ApiError> {
    if p.role == Role::Admin || department_of(p).is_some() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "role {} does not manage devices (administrators and the owning department do)",
            p.role
        )))
    }
}

fn view(d: &Device, retired: bool) -> Value {
    json!({
        "id": d.id,
        "kind": d.kind,
        "lon": d.lon,
        "lat": d.lat,
        "owner": d.owner,
        "tags": d.tags,
        "status": if retired { "retired" } else { "active" },
    })
}

fn row(d: &Device, retired: bool, actor: &str, at: Millis) -> DeviceRow {
    DeviceRow {
        id: d.id.clone(),
        kind: d.kind.clone(),
        lon: d.lon,
        lat: d.lat,
        owner: d.owner.clone(),
        tags: d.tags.join(";"),
        status: if retired { "retired" } else { "active" }.into(),
        actor: actor.into(),
        at,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub kind: Option<String>,
    pub status: Option<String>,
}

/// `GET /api/v1/devices` — the registry in service (a department: its own devices).
pub async fn list_devices(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    may_use(&p)?;
    if let Some(s) = q.status.as_deref() {
        if s != "active" && s != "retired" {
            return Err(ApiError::new(
                Problem::InvalidParameter,
                format!("status {s:?} is not active or retired"),
            ));
        }
    }
    let s = st.0.sensor.sensing.lock().expect("sensing lock");
    let items: Vec<Value> = s
        .devices
        .iter()
        .zip(&s.retired)
        .filter(|(d, _)| may_manage(&p, d.owner.as_deref()))
        .filter(|(d, _)| q.kind.as_deref().is_none_or(|k| d.kind == k))
        .filter(|(_, r)| q.status.as_deref().is_none_or(|x| (x == "retired") == **r))
        .map(|(d, r)| view(d, *r))
        .collect();
    Ok(Json(json!({"total": items.len(), "items": items})).into_response())
}

/// `GET /api/v1/devices/{id}`.
pub async fn get_device(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    may_use(&p)?;
    let s = st.0.sensor.sensing.lock().expect("sensing lock");
    let Some(d) = s.device(&id) else {
        return Err(ApiError::not_found(&format!("device {id:?}")));
    };
    if !may_manage(&p, s.devices[d].owner.as_deref()) {
        return Err(ApiError::not_found(&format!("device {id:?}")));
    }
    Ok(Json(view(&s.devices[d], s.retired[d])).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDevice {
    id: String,
    kind: String,
    lon: f64,
    lat: f64,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Checks a device to register: id letters/digits/`-_.`, not in use (nor retired), a
/// known kind, a position inside the territory, an owner the caller may give.
fn check(
    st: &AppState,
    p: &Principal,
    d: &Device,
    taken: &dyn Fn(&str) -> bool,
) -> Result<(), (Problem, String)> {
    let bad = |m: String| Err((Problem::InvalidBody, m));
    if d.id.is_empty()
        || d.id.len() > 64
        || !d
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return bad(format!(
            "device id {:?} must be 1–64 letters, digits, '-', '_' or '.'",
            d.id
        ));
    }
    if taken(&d.id) {
        return Err((
            Problem::DeviceExists,
            format!(
                "device id {:?} is already registered (ids are never reused)",
                d.id
            ),
        ));
    }
    {
        let s = st.0.sensor.sensing.lock().expect("sensing lock");
        if s.kind_index(&d.kind).is_none() {
            return bad(format!(
                "device kind {:?} is not known (not in the catalogue or any alarm rule)",
                d.kind
            ));
        }
    }
    if !(d.lon.is_finite() && d.lat.is_finite()) || st.0.cfg.territory.locate(d.lon, d.lat).is_err()
    {
        return bad(format!(
            "device {} at ({}, {}) lies outside the territory",
            d.id, d.lon, d.lat
        ));
    }
    if let Some(t) = d
        .tags
        .iter()
        .find(|t| t.is_empty() || t.contains([';', ',']))
    {
        return bad(format!("tag {t:?} is empty or holds ';' or ','"));
    }
    if !may_manage(p, d.owner.as_deref()) {
        return Err((
            Problem::Forbidden,
            format!(
                "a department registers devices it owns; owner {:?} is not yours",
                d.owner
            ),
        ));
    }
    Ok(())
}

/// Writes the rows, then puts the devices in service (one change at a time).
async fn register(st: &AppState, p: &Principal, devices: Vec<Device>) -> Result<(), ApiError> {
    if devices.is_empty() {
        return Ok(());
    }
    let now = st.now();
    let rows: Vec<DeviceRow> = devices
        .iter()
        .map(|d| row(d, false, &p.name, now))
        .collect();
    st.0.reads
        .write(move |s| s.put_devices(&rows))
        .await?
        .map_err(ApiError::from)?;
    let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
    for d in devices {
        if s.device(&d.id).is_none() {
            let index = s.add_device(d, &st.0.cfg.sensing.rules, now);
            let like = s.like(&st.0.cfg.territory, index);
            drop(s);
            (st.0.ports.device_added)(st, index, like);
            s = st.0.sensor.sensing.lock().expect("sensing lock");
        }
    }
    Ok(())
}

/// `POST /api/v1/devices` — one device as JSON (`{id, kind, lon, lat, owner?, tags?}`),
/// or many: `text/csv` (the seed file's columns `id,kind,lon,lat[,owner[,tags]]`) or
/// `application/geo+json` (Point features whose properties hold id, kind, owner, tags).
/// One device: 201, or the problem (409 `device_exists` for an id in use). Many: every
/// good row registered, every bad one named by line or feature — nothing else lost.
pub async fn post_devices(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    may_use(&p)?;
    let bytes = axum::body::to_bytes(body, IMPORT_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                Problem::PayloadTooLarge,
                format!(
                    "send at most {} MiB of devices per request",
                    IMPORT_LIMIT >> 20
                ),
            )
        })?;
    let ctype = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::new(Problem::InvalidBody, "the body is not UTF-8"))?;
    let own = department_of(&p).map(String::from);
    let _turn = st.0.sensor.registering.lock().await;
    let taken = |id: &str| {
        let s = st.0.sensor.sensing.lock().expect("sensing lock");
        s.device(id).is_some()
    };
    if ctype.starts_with("application/json") || ctype.is_empty() {
        let mut n: NewDevice = serde_json::from_str(text)
            .map_err(|e| ApiError::new(Problem::InvalidJson, format!("not a device: {e}")))?;
        if n.owner.is_none() {
            n.owner = own;
        }
        let d = Device {
            id: n.id,
            kind: n.kind,
            lon: n.lon,
            lat: n.lat,
            owner: n.owner,
            tags: n.tags,
        };
        check(&st, &p, &d, &taken).map_err(|(pr, m)| ApiError::new(pr, m))?;
        register(&st, &p, vec![d.clone()]).await?;
        st.0.audit
            .record(&st, &p.name, "device_registered", &d.id, view(&d, false))
            .await?;
        return Ok((StatusCode::CREATED, Json(view(&d, false))).into_response());
    }
    let (candidates, mut problems): Candidates = if ctype.starts_with("text/csv") {
        csv_devices(text, own.as_deref())
    } else if ctype.starts_with("application/geo+json") {
        geojson_devices(text, own.as_deref())?
    } else {
        return Err(ApiError::new(
            Problem::UnsupportedMediaType,
            "send application/json (one device), text/csv or application/geo+json",
        ));
    };
    if candidates.len() > IMPORT_ROWS {
        return Err(ApiError::new(
            Problem::PayloadTooLarge,
            format!(
                "{} devices in one import; at most {IMPORT_ROWS} — split the file",
                candidates.len()
            ),
        ));
    }
    let mut good: Vec<Device> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (place, d) in candidates {
        let twice = !seen.insert(d.id.clone());
        let res = if twice {
            Err((
                Problem::DeviceExists,
                format!("device id {:?} is registered twice in this import", d.id),
            ))
        } else {
            check(&st, &p, &d, &taken)
        };
        match res {
            Ok(()) => good.push(d),
            Err((pr, m)) => problems.push(json!({"at": place, "code": pr.code(), "problem": m})),
        }
    }
    let ids: Vec<String> = good.iter().map(|d| d.id.clone()).collect();
    register(&st, &p, good).await?;
    if !ids.is_empty() {
        st.0.audit
            .record(
                &st,
                &p.name,
                "devices_imported",
                &format!("{} devices", ids.len()),
                json!({"ids": ids, "refused": problems.len()}),
            )
            .await?;
    }
    Ok(Json(json!({"registered": ids, "problems": problems})).into_response())
}

/// Devices read from an import, each with its place (line or feature), and the problems.
type Candidates = (Vec<(String, Device)>, Vec<Value>);

/// The seed file's CSV: each row a candidate (with its line), or a problem.
fn csv_devices(text: &str, own: Option<&str>) -> Candidates {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with("id,kind") {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() < 4 || f.len() > 6 {
            problems.push(json!({"at": format!("line {line}"), "code": "invalid_body", "problem": format!("expected id,kind,lon,lat[,owner[,tags]], got {} fields", f.len())}));
            continue;
        }
        let (Ok(lon), Ok(lat)) = (f[2].parse::<f64>(), f[3].parse::<f64>()) else {
            problems.push(json!({"at": format!("line {line}"), "code": "invalid_body", "problem": format!("lon {:?} / lat {:?} are not numbers", f[2], f[3])}));
            continue;
        };
        let owner = f
            .get(4)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
            .or_else(|| own.map(String::from));
        let tags = f
            .get(5)
            .map(|t| {
                t.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            format!("line {line}"),
            Device {
                id: f[0].to_string(),
                kind: f[1].to_string(),
                lon,
                lat,
                owner,
                tags,
            },
        ));
    }
    (out, problems)
}

/// A GeoJSON FeatureCollection of points.
fn geojson_devices(text: &str, own: Option<&str>) -> Result<Candidates, ApiError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(Problem::InvalidJson, format!("not GeoJSON: {e}")))?;
    let Some(features) = v.get("features").and_then(Value::as_array) else {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "a GeoJSON FeatureCollection with features is expected",
        ));
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, f) in features.iter().enumerate() {
        let at = format!("feature {}", i + 1);
        let mut bad =
            |m: &str| problems.push(json!({"at": at, "code": "invalid_body", "problem": m}));
        let coords = f
            .pointer("/geometry/coordinates")
            .and_then(Value::as_array)
            .filter(|_| f.pointer("/geometry/type").and_then(Value::as_str) == Some("Point"));
        let Some([lon, lat]) = coords
            .and_then(|c| c.get(..2))
            .map(|c| [c[0].as_f64(), c[1].as_f64()])
        else {
            bad("not a Point with coordinates [lon, lat]");
            continue;
        };
        let (Some(lon), Some(lat)) = (lon, lat) else {
            bad("coordinates are not numbers");
            continue;
        };
        let prop = |k: &str| f.pointer(&format!("/properties/{k}"));
        let (Some(id), Some(kind)) = (
            prop("id").and_then(Value::as_str),
            prop("kind").and_then(Value::as_str),
        ) else {
            bad("properties id and kind (texts) are required");
            continue;
        };
        let tags = match prop("tags") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(s)) => s
                .split(';')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        };
        let owner = prop("owner")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| own.map(String::from));
        out.push((
            at.clone(),
            Device {
                id: id.into(),
                kind: kind.into(),
                lon,
                lat,
                owner,
                tags,
            },
        ));
    }
    Ok((out, problems))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicePatch {
    lon: Option<f64>,
    lat: Option<f64>,
    owner: Option<String>,
    kind: Option<String>,
    tags: Option<Vec<String>>,
}

/// `PATCH /api/v1/devices/{id}` — moves a device (`lon`, `lat`) or gives it to another
/// department (`owner`, administrators only). A decommissioned device is not changed;
/// kind and tags are not changed (retire it and register a new id).
pub async fn patch_device(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    may_use(&p)?;
    let patch: DevicePatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(Problem::InvalidJson, format!("not a device change: {e}")))?;
    let _turn = st.0.sensor.registering.lock().await;
    let (index, mut d, retired) = current(&st, &p, &id)?;
    if retired {
        return Err(ApiError::new(
            Problem::InvalidBody,
            format!("device {id:?} is decommissioned; it is not changed"),
        ));
    }
    if patch.kind.is_some() || patch.tags.is_some() {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "kind and tags decide which alarm rules apply: decommission the device and register a new id",
        ));
    }
    if let Some(o) = patch.owner {
        if p.role != Role::Admin {
            return Err(ApiError::forbidden(
                "only administrators give a device to another department",
            ));
        }
        d.owner = (!o.is_empty()).then_some(o);
    }
    d.lon = patch.lon.unwrap_or(d.lon);
    d.lat = patch.lat.unwrap_or(d.lat);
    if !(d.lon.is_finite() && d.lat.is_finite()) || st.0.cfg.territory.locate(d.lon, d.lat).is_err()
    {
        return Err(ApiError::new(
            Problem::InvalidBody,
            format!("({}, {}) lies outside the territory", d.lon, d.lat),
        ));
    }
    let r = row(&d, false, &p.name, st.now());
    st.0.reads
        .write(move |s| s.put_devices(&[r]))
        .await?
        .map_err(ApiError::from)?;
    st.0.sensor.sensing.lock().expect("sensing lock").devices[index] = d.clone();
    st.0.audit
        .record(&st, &p.name, "device_changed", &id, view(&d, false))
        .await?;
    Ok(Json(view(&d, false)).into_response())
}

/// The device `id` as the caller may see it: (index, device, retired) or 404.
fn current(st: &AppState, p: &Principal, id: &str) -> Result<(usize, Device, bool), ApiError> {
    let s = st.0.sensor.sensing.lock().expect("sensing lock");
    match s.device(id) {
        Some(i) if may_manage(p, s.devices[i].owner.as_deref()) => {
            Ok((i, s.devices[i].clone(), s.retired[i]))
        }
        Some(_) if p.role != Role::Admin => Err(ApiError::forbidden(format!(
            "device {id:?} belongs to another department"
        ))),
        _ => Err(ApiError::not_found(&format!("device {id:?}"))),
    }
}

/// `DELETE /api/v1/devices/{id}` — decommissions a device: its readings are refused from
/// now on, its alarms no longer judged (a firing alarm's open case stays open for people
/// to close), its row kept with status `retired`.
pub async fn delete_device(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    may_use(&p)?;
    let _turn = st.0.sensor.registering.lock().await;
    let (index, d, retired) = current(&st, &p, &id)?;
    if retired {
        return Ok(Json(view(&d, true)).into_response());
    }
    let r = row(&d, true, &p.name, st.now());
    st.0.reads
        .write(move |s| s.put_devices(&[r]))
        .await?
        .map_err(ApiError::from)?;
    st.0.sensor.sensing.lock().expect("sensing lock").retired[index] = true;
    st.0.audit
        .record(&st, &p.name, "device_retired", &id, json!({"kind": d.kind}))
        .await?;
    Ok(Json(view(&d, true)).into_response())
}

/// Puts the registry kept in the store back over the seed (at start, before the alarm
/// states): registered devices added, changed positions and owners applied, retired
/// devices retired. A row whose kind is no longer known is passed over.
pub fn restore(
    st: &AppState,
    store: &mut (impl DeviceStore + ?Sized),
    now: Millis,
) -> Result<(), StoreError> {
    let rows = store.registered_devices()?;
    let mut added = Vec::new();
    {
        let mut s = st.0.sensor.sensing.lock().expect("sensing lock");
        for r in rows {
            let d = Device {
                id: r.id.clone(),
                kind: r.kind.clone(),
                lon: r.lon,
                lat: r.lat,
                owner: r.owner.clone(),
                tags: r
                    .tags
                    .split(';')
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect(),
            };
            let retired = r.status == "retired";
            let i = match s.device(&r.id) {
                Some(i) => {
                    s.devices[i].lon = d.lon;
                    s.devices[i].lat = d.lat;
                    s.devices[i].owner = d.owner;
                    i
                }
                None if s.kind_index(&d.kind).is_some() => {
                    let i = s.add_device(d, &st.0.cfg.sensing.rules, now);
                    added.push((i, s.like(&st.0.cfg.territory, i)));
                    i
                }
                None => continue,
            };
            s.retired[i] = retired;
        }
    }
    for (i, like) in added {
        (st.0.ports.device_added)(st, i, like);
    }
    Ok(())
}

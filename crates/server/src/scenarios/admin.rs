//! The scenarios room's API: the packs listed and shown to signed-in staff; enabled,
//! disabled and reloaded by administrators and the district officer; each pack's audit
//! trail. A change is written to the store (state and audit entry in one transaction)
//! before it takes effect; a refused reload is audited too and leaves the running pack.

use super::{check, Entry, Origin};
use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use cityos_core::scenario::Playbook;
use cityos_core::time::format_rfc3339;
use cityos_core::Role;
use cityos_engine::store::{ScenarioAuditRow, ScenarioPackRow};
use cityos_engine::ScenarioStore;
use serde_json::{json, Value};
use std::sync::Arc;

/// Staff: every signed-in person but citizens (machines are kept out by the machine guard).
fn staff(p: &Principal) -> Result<(), ApiError> {
    match p.role {
        Role::Citizen | Role::System => Err(ApiError::forbidden(format!(
            "role {} does not see scenario packs",
            p.role
        ))),
        _ => Ok(()),
    }
}

/// Who may change packs: administrators and the district officer.
fn may_change(p: &Principal) -> Result<(), ApiError> {
    match p.role {
        Role::Admin | Role::DistrictOfficer => Ok(()),
        _ => Err(ApiError::forbidden(format!(
            "role {} does not change scenario packs",
            p.role
        ))),
    }
}

fn unknown(name: &str) -> ApiError {
    ApiError::new(
        Problem::UnknownScenario,
        format!("there is no scenario pack {name:?}"),
    )
}

/// A playbook in brief (the list) or whole (one pack).
fn playbook_view(b: &Playbook, whole: bool) -> Value {
    let mut v = json!({
        "category": b.category.name,
        "priority": b.priority.as_str(),
        "lead": b.lead.name,
        "joint": b.joint.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "notify": b.notify.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "cap_category": b.cap,
    });
    if whole {
        v["deadlines"] = b
            .deadlines
            .iter()
            .map(|(s, l)| (s.as_str().to_string(), json!(l.to_string())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        v["checklist"] = b
            .checklist
            .iter()
            .map(|c| json!({"role": c.role, "items": c.items}))
            .collect();
        v["cap_level"] = json!(b.cap_level.map(|l| l.as_str()));
        v["stand_down_after_seconds"] = json!(b.stand_down_after / 1000);
    }
    v
}

fn view(st: &AppState, who: &Principal, name: &str, e: &Entry, whole: bool) -> Value {
    let p = &e.pack;
    // A region-scoped caller counts the hits inside its region (of the last 500 kept);
    // a non-officer does not count the hits it may not see.
    let officer = who.role.is_officer();
    let hits = match who.scope.as_deref() {
        None if officer => super::runtime::pack_hits(st, name).0,
        scope => super::runtime::hits(st, Some(name), scope, officer, super::runtime::KEEP_HITS)
            .iter()
            .filter(|h| h["kind"] != "stand_down")
            .count() as u64,
    };
    let last = super::runtime::hits(st, Some(name), who.scope.as_deref(), officer, 1)
        .into_iter()
        .next();
    let mut v = json!({
        "name": name,
        "status": if e.enabled { "enabled" } else { "disabled" },
        "version": p.version,
        "owner": p.owner.name,
        "name_zh": p.name_zh,
        "name_en": p.name_en,
        "origin": e.origin.as_str(),
        "loaded_at": format_rfc3339(e.loaded_at),
        "problems": e.problems,
        "playbook": playbook_view(&p.playbook, whole),
        "hits": hits,
        "last_hit": last,
    });
    if whole {
        v["text"] = json!(e.text);
    }
    v
}

/// `GET /api/v1/scenarios` — every pack: status, version, owner, names, playbook in brief,
/// the problems of its last refused reload.
pub async fn list(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    staff(&p)?;
    let packs: Vec<Value> =
        st.0.scenarios
            .all()
            .iter()
            .map(|(n, e)| view(&st, &p, n, e, false))
            .collect();
    Ok(Json(json!({ "scenarios": packs })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitsQuery {
    pack: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/scenarios/hits?pack=&limit=` — the packs' last hits, repeats and
/// stand-downs, newest first (at most 500); a caller confined to a region sees those
/// inside it.
pub async fn hits(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<HitsQuery>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    staff(&p)?;
    if let Some(name) = &q.pack {
        st.0.scenarios.get(name).ok_or_else(|| unknown(name))?;
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=super::runtime::KEEP_HITS).contains(&limit) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!("limit must be 1 to {}", super::runtime::KEEP_HITS),
        ));
    }
    let hits = super::runtime::hits(
        &st,
        q.pack.as_deref(),
        p.scope.as_deref(),
        p.role.is_officer(),
        limit,
    );
    Ok(Json(json!({ "hits": hits })))
}

/// `GET /api/v1/scenarios/{name}` — one pack with its running text and whole playbook.
pub async fn get(
    State(st): State<AppState>,
    Path(name): Path<String>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    staff(&p)?;
    let e = st.0.scenarios.get(&name).ok_or_else(|| unknown(&name))?;
    Ok(Json(view(&st, &p, &name, &e, true)))
}

/// Writes a change to the store: the pack's new state (if any) and its audit entry.
async fn record(
    st: &AppState,
    pack: Option<ScenarioPackRow>,
    audit: ScenarioAuditRow,
) -> Result<(), ApiError> {
    let entry = (
        audit.actor.clone(),
        format!("scenario_{}", audit.action),
        format!("scenario:{}", audit.pack),
        json!({"version": audit.version, "ok": audit.ok, "problems": serde_json::from_str::<Value>(&audit.problems).unwrap_or(Value::Null)}),
    );
    st.0.reads
        .write(move |s| keep(s, pack.as_ref(), &audit))
        .await??;
    // The pack's own trail stays; the change is also chained in the service's trail.
    st.0.audit
        .record(st, &entry.0, &entry.1, &entry.2, entry.3)
        .await?;
    Ok(())
}

fn keep(
    s: &mut dyn ScenarioStore,
    pack: Option<&ScenarioPackRow>,
    audit: &ScenarioAuditRow,
) -> Result<(), cityos_engine::StoreError> {
    s.record_scenario(pack, audit)
}

fn audit_row(
    st: &AppState,
    p: &Principal,
    name: &str,
    action: &str,
    version: &str,
    problems: &[String],
) -> ScenarioAuditRow {
    ScenarioAuditRow {
        id: 0,
        at: st.now(),
        actor: p.name.clone(),
        pack: name.to_string(),
        action: action.to_string(),
        version: version.to_string(),
        ok: problems.is_empty(),
        problems: serde_json::to_string(problems).expect("strings serialise"),
    }
}

/// The stored state of a pack as it will be after a change.
fn pack_row(name: &str, e: &Entry, now: i64) -> ScenarioPackRow {
    let reloaded = e.origin == Origin::Reload;
    ScenarioPackRow {
        name: name.to_string(),
        enabled: e.enabled,
        text: reloaded.then(|| e.text.clone()),
        updated_at: if reloaded { e.loaded_at } else { now },
    }
}

async fn set_enabled(
    st: AppState,
    name: String,
    p: Principal,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    may_change(&p)?;
    let reg = &st.0.scenarios;
    let _one = reg.changes.lock().await;
    let mut e = reg.get(&name).ok_or_else(|| unknown(&name))?;
    e.enabled = enabled;
    let action = if enabled { "enable" } else { "disable" };
    let audit = audit_row(&st, &p, &name, action, &e.pack.version, &[]);
    record(&st, Some(pack_row(&name, &e, st.now())), audit).await?;
    reg.update(&name, |x| x.enabled = enabled);
    Ok(Json(view(&st, &p, &name, &e, false)))
}

/// `POST /api/v1/scenarios/{name}/enable`
pub async fn enable(
    State(st): State<AppState>,
    Path(name): Path<String>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    set_enabled(st, name, p, true).await
}

/// `POST /api/v1/scenarios/{name}/disable`
pub async fn disable(
    State(st): State<AppState>,
    Path(name): Path<String>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    set_enabled(st, name, p, false).await
}

/// The value of a top-level `key = "…"` line and its line number, read plainly (for a
/// text that may not parse).
fn top_value(text: &str, key: &str) -> Option<(usize, String)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| (i + 1, v.trim().trim_matches('"').to_string()))
    })
}

/// `PUT /api/v1/scenarios/{name}` with the pack's TOML (`application/toml` or
/// `text/plain`): parsed and validated against the running configuration. A refused
/// pack is answered 422 with every problem (the running one stays); the same version as
/// the running one is 409; a good one replaces it. Either way the attempt is audited.
pub async fn reload(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    may_change(&p)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/toml") && !ct.starts_with("text/plain") {
        return Err(ApiError::new(
            Problem::UnsupportedMediaType,
            "send a scenario pack as application/toml or text/plain",
        ));
    }
    let bytes = axum::body::to_bytes(body, crate::BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                Problem::PayloadTooLarge,
                format!(
                    "a scenario pack may be at most {} KiB",
                    crate::BODY_LIMIT >> 10
                ),
            )
        })?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(Problem::UnreadableBody, "the pack is not UTF-8 text"))?;
    let reg = &st.0.scenarios;
    let _one = reg.changes.lock().await;
    let running = reg.get(&name).ok_or_else(|| unknown(&name))?;
    let offered = top_value(&text, "version")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let checked = check(&st.0.cfg, reg.catalogue(), &text).and_then(|pack| {
        if pack.code == name {
            Ok(pack)
        } else {
            let line = top_value(&text, "code").map_or(1, |(l, _)| l);
            Err(vec![format!(
                "{line}:1: the pack's code {:?} is not the name in the address {name:?}",
                pack.code
            )])
        }
    });
    let pack = match checked {
        Err(problems) => {
            record(
                &st,
                None,
                audit_row(&st, &p, &name, "reload", &offered, &problems),
            )
            .await?;
            let detail = problems.join("; ");
            reg.update(&name, |e| e.problems = problems.clone());
            return Err(ApiError::new(
                Problem::InvalidScenarioPack,
                format!(
                    "pack {name:?} is refused; version {} keeps running: {detail}",
                    running.pack.version
                ),
            )
            .with_problems(problems));
        }
        Ok(pack) if pack.version == running.pack.version => {
            let problems = vec![format!("version {} is already running", pack.version)];
            record(
                &st,
                None,
                audit_row(&st, &p, &name, "reload", &offered, &problems),
            )
            .await?;
            return Err(ApiError::new(
                Problem::ScenarioVersionUnchanged,
                format!(
                    "pack {name:?} version {} is already running; a reload needs a new version",
                    pack.version
                ),
            ));
        }
        Ok(pack) => pack,
    };
    let now = st.now();
    let next = Entry {
        text,
        pack: Arc::new(pack),
        origin: Origin::Reload,
        enabled: running.enabled,
        loaded_at: now,
        problems: Vec::new(),
    };
    let audit = audit_row(&st, &p, &name, "reload", &next.pack.version, &[]);
    record(&st, Some(pack_row(&name, &next, now)), audit).await?;
    let shown = view(&st, &p, &name, &next, false);
    reg.update(&name, |e| *e = next);
    Ok(Json(shown))
}

/// `GET /api/v1/scenarios/{name}/audit` — every change of a pack, oldest first.
pub async fn audit(
    State(st): State<AppState>,
    Path(name): Path<String>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    staff(&p)?;
    if st.0.scenarios.get(&name).is_none() {
        return Err(unknown(&name));
    }
    let pack = name.clone();
    let rows = st.0.reads.run(move |s| trail(s, &pack)).await??;
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": format_rfc3339(r.at),
                "actor": r.actor,
                "action": r.action,
                "version": r.version,
                "ok": r.ok,
                "problems": serde_json::from_str::<Value>(&r.problems).unwrap_or(json!([])),
            })
        })
        .collect();
    Ok(Json(json!({ "name": name, "audit": entries })))
}

fn trail(
    s: &mut dyn ScenarioStore,
    pack: &str,
) -> Result<Vec<ScenarioAuditRow>, cityos_engine::StoreError> {
    s.scenario_audit(pack)
}

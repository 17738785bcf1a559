//! Alert rules over the vital signs, in the service — "events trigger command": every few
//! seconds each rule is judged in the district and each sub-district; a firing alert at
//! the levels its rule names becomes a case in the rule's category and region, with a
//! snapshot of the indicators as evidence; level changes and the all-clear are written
//! into that case's log. Public rules publish CAP 1.2 warnings (Alert, Update, Cancel with
//! `references`) at `/cap/alerts/{id}.xml` and on the Atom feed `/cap/feed.atom`.
//! Alerts, level changes and CAP messages go out on the live stream. Also here: the
//! alerts and silences APIs, and the rollups' trip to the store.
//!
//! The alerts' state lives in the store too, written on change only: each alert as it
//! turns pending, firing, changes level or ends (`alert_states`), silences as they are
//! made and ended, the case each alert filed, and the CAP chain (read back from
//! `cap_messages`); [`restore`] puts it back at start, so a restart continues exactly.

use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, SignedIn, Staff};
use crate::vitals::VitalEvent;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::alerting::{Alert, AlertRule, AlertState, Notice, Sample, Silence};
use cityos_core::cap::{CapAlert, MsgType, Reference};
use cityos_core::case::Channel;
use cityos_core::indicators::{Indicator, WarnLevel};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis, HOUR, MINUTE};
use cityos_core::workflow::NewReport;
use cityos_core::Role;
use cityos_engine::store::{AlertRow, CapMessage, SilenceRow};
use cityos_engine::{StoreError, VitalsStore};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// How often case statistics are recomputed by the ticker.
pub const STATS_EVERY: Millis = 30_000;
/// How long a CAP Alert or Update stays in force unless updated.
pub const CAP_EXPIRES: Millis = 6 * HOUR;
/// How long an alert restored at start waits for its indicators' values to come back
/// before their absence resolves it (the latest values are not kept across a restart).
pub const RESTORED_WAIT: Millis = 10 * MINUTE;

/// One round: case statistics (when due), windows moved to now, every rule judged in
/// every region, notices acted on, level changes announced, finished rollups stored.
/// Answers what the notices did. Called by the ticker, and by tests with a hand-set clock.
pub async fn tick(st: &AppState) -> Result<Vec<Value>, ApiError> {
    let now = st.now();
    let due = {
        let v = st.0.vitals.state.lock().expect("vitals lock");
        v.stats_at.is_none_or(|t| now - t >= STATS_EVERY)
    };
    if due {
        // A store that fails here must not stop the rules from being judged.
        let first =
            st.0.vitals
                .state
                .lock()
                .expect("vitals lock")
                .stats_at
                .is_none();
        if first {
            if let Err(e) = crate::vitals::load_datasets(st).await {
                crate::http::log::event("vitals_datasets_failed", &[("error", &e.detail)]);
            }
        }
        let n = st.0.vitals.state.lock().expect("vitals lock").regions.len();
        for r in 0..n {
            if let Err(e) = crate::vitals::refresh_case_stats(st, r as u16).await {
                crate::http::log::event("vitals_case_stats_failed", &[("error", &e.detail)]);
                break;
            }
        }
        st.0.vitals.state.lock().expect("vitals lock").stats_at = Some(now);
    }
    let inds = st.0.cfg.indicators.clone();
    let rules = st.0.cfg.alert_rules.clone();
    let index: HashMap<&str, usize> = inds
        .iter()
        .enumerate()
        .map(|(i, x)| (x.code.as_str(), i))
        .collect();
    let mut notices = Vec::new();
    let (changes, rollups) = {
        let mut v = st.0.vitals.state.lock().expect("vitals lock");
        v.advance(&inds, now);
        for (k, rule) in rules.iter().enumerate() {
            for r in 0..v.regions.len() {
                let sample = {
                    let look = |code: &str| {
                        let i = *index.get(code)?;
                        v.latest(i, r as u16).map(|l| (l.value, l.level))
                    };
                    rule.sample(&look)
                };
                let region = v.regions[r].clone();
                // No value any more (a window emptied): an alert there resolves — unless
                // it was restored at start and its values have not come back yet.
                let sample = match sample {
                    Some(s) => {
                        if !v.restored.is_empty() {
                            v.restored
                                .remove(&cityos_core::alerting::fingerprint(&rule.code, &region));
                        }
                        s
                    }
                    None => {
                        let fp = cityos_core::alerting::fingerprint(&rule.code, &region);
                        if !v.alerting.has(&fp) {
                            continue;
                        }
                        if let Some(&until) = v.restored.get(&fp) {
                            if now < until {
                                continue;
                            }
                            v.restored.remove(&fp);
                        }
                        Sample {
                            breach: false,
                            level: WarnLevel::Normal,
                            value: f64::NAN,
                        }
                    }
                };
                if let Some(n) = v.alerting.evaluate(&rules, rule, &region, sample, now) {
                    notices.push((k, r as u16, n, sample));
                }
            }
        }
        (v.take_changes(), v.take_rollups(&inds, now))
    };
    keep_alerts(st).await;
    for c in changes {
        let ind = &inds[c.indicator];
        announce(
            st,
            "level_changed",
            &c.region,
            json!({"indicator": ind.code, "name_zh": ind.name_zh, "name_en": ind.name_en, "region": c.region,
                   "from": c.from.as_str(), "to": c.to.as_str(), "level_zh": c.to.name_zh(), "value": c.value, "at": format_rfc3339(c.at)}),
        );
    }
    if !rollups.is_empty() {
        let kept = rollups.clone();
        let stored = st.0.reads.write(move |s| s.put_rollups(&rollups)).await;
        if let Some(e) = match stored {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.detail),
        } {
            // Kept for the next round: the minutes are not lost.
            crate::http::log::event("vitals_rollups_failed", &[("error", &e)]);
            st.0.vitals
                .state
                .lock()
                .expect("vitals lock")
                .keep_rollups(kept);
        }
    }
    // Each notice is acted on by itself: one that fails is logged, the others go on.
    let mut out = Vec::new();
    for (k, r, notice, sample) in notices {
        match act(st, &rules[k], r, notice, sample, &inds, &index, now).await {
            Ok(v) => out.push(v),
            Err(e) => crate::http::log::event(
                "alert_action_failed",
                &[("rule", &rules[k].code), ("error", &e.detail)],
            ),
        }
    }
    Ok(out)
}

fn announce(st: &AppState, kind: &'static str, region: &str, data: Value) {
    // No subscriber is fine: the live stream is for whoever is watching.
    st.0.bus
        .publish(crate::bus::BusEvent::Vital(Arc::new(VitalEvent {
            kind,
            region: region.to_string(),
            data: data.to_string(),
            officers_only: false,
        })));
}

fn region_name(st: &AppState, code: &str) -> String {
    let t = &st.0.cfg.territory;
    t.by_code(code)
        .map_or_else(|| code.to_string(), |id| t.region(id).name_zh.clone())
}

/// The evidence: each indicator the rule reads, its value, colour and thresholds.
fn snapshot(
    st: &AppState,
    rule: &AlertRule,
    r: u16,
    inds: &[Indicator],
    index: &HashMap<&str, usize>,
    now: Millis,
) -> String {
    let v = st.0.vitals.state.lock().expect("vitals lock");
    let mut parts = Vec::new();
    for code in rule.expr.indicators() {
        let Some(&i) = index.get(code) else { continue };
        let ind = &inds[i];
        let l = v.latest(i, r);
        let value = l.map_or("无数据".to_string(), |l| {
            format!("{} {}", l.value, ind.unit)
        });
        let level = l.map_or("正常", |l| l.level.name_zh());
        let lines = ind.thresholds.map_or(String::new(), |t| {
            format!(
                "（阈值 蓝{} 黄{} 橙{} 红{}）",
                t.at[0], t.at[1], t.at[2], t.at[3]
            )
        });
        parts.push(format!("{} = {value}，{level}{lines}", ind.name_zh));
    }
    format!(
        "规则 {}：{}；{}；时间 {}",
        rule.code,
        rule.name_zh,
        parts.join("；"),
        format_rfc3339(now)
    )
}

#[allow(clippy::too_many_arguments)]
async fn act(
    st: &AppState,
    rule: &AlertRule,
    r: u16,
    notice: Notice,
    sample: Sample,
    inds: &[Indicator],
    index: &HashMap<&str, usize>,
    now: Millis,
) -> Result<Value, ApiError> {
    let region = st.0.vitals.state.lock().expect("vitals lock").regions[r as usize].clone();
    let place = region_name(st, &region);
    let snap = snapshot(st, rule, r, inds, index, now);
    let (kind, level, fp) = match &notice {
        Notice::Fired {
            fingerprint, level, ..
        } => ("alert_fired", *level, fingerprint.clone()),
        Notice::LevelChanged {
            fingerprint, to, ..
        } => ("alert_level_changed", *to, fingerprint.clone()),
        Notice::Resolved { fingerprint, .. } => {
            ("alert_resolved", WarnLevel::Normal, fingerprint.clone())
        }
    };
    let open_case = {
        let v = st.0.vitals.state.lock().expect("vitals lock");
        v.alert_cases.get(&fp).copied()
    };
    let open_case = crate::cases::still_open(st, open_case).await?;
    let heading = format!("【体征告警】{place}{}", rule.name_zh);
    let case_number = match (&notice, open_case) {
        (Notice::Resolved { .. }, Some(case)) => {
            let note = format!("告警解除：{heading}已恢复正常。{snap}");
            crate::cases::note_case(st, case, note, now).await?
        }
        (Notice::Resolved { .. }, None) => None,
        (_, Some(case)) => {
            let note = format!(
                "告警{}：{heading}，{}。{snap}",
                if matches!(notice, Notice::Fired { .. }) {
                    "再次触发"
                } else {
                    "级别变化"
                },
                level.name_zh()
            );
            crate::cases::note_case(st, case, note, now).await?
        }
        (_, None) if rule.opens_case(level) => {
            let t = &st.0.cfg.territory;
            let [lon, lat] = t.interior_point(t.by_code(&region).unwrap_or(t.root()));
            let report = NewReport {
                channel: Channel::Data,
                category: rule.category.clone(),
                lon,
                lat,
                text: format!("{heading}，{}。{snap}", level.name_zh()),
                contact: None,
                at: now,
                media: Vec::new(),
                priority: None,
                playbook: None,
                suggestion: None,
            };
            let (id, number) = crate::cases::file_report(st, report).await?;
            st.0.vitals
                .state
                .lock()
                .expect("vitals lock")
                .alert_cases
                .insert(fp.clone(), id);
            let key = fp.clone();
            if let Err(e) = flatten(st.0.reads.write(move |s| s.put_alert_case(&key, id)).await) {
                crate::http::log::event("alert_case_link_failed", &[("alert", &fp), ("error", &e)]);
            }
            Some(number)
        }
        (_, None) => None,
    };
    let cap = match rule.public {
        Some(category) => {
            publish(
                st, rule, category, &region, &place, &notice, level, &snap, now,
            )
            .await?
        }
        None => None,
    };
    let out = json!({
        "kind": kind, "fingerprint": fp, "rule": rule.code, "name_zh": rule.name_zh, "name_en": rule.name_en,
        "region": region, "region_name": place, "level": level.as_str(), "level_zh": level.name_zh(),
        "value": sample.value, "case": case_number, "cap": cap, "at": format_rfc3339(now),
    });
    announce(st, kind, &region, out.clone());
    Ok(out)
}

/// The sender named in CAP messages.
pub fn cap_sender(st: &AppState) -> String {
    let t = &st.0.cfg.territory;
    cityos_core::cap::sender(&t.region(t.root()).code)
}

/// Publishes the CAP message for a notice of a public rule; answers its identifier.
#[allow(clippy::too_many_arguments)]
async fn publish(
    st: &AppState,
    rule: &AlertRule,
    category: &'static str,
    region: &str,
    place: &str,
    notice: &Notice,
    level: WarnLevel,
    snap: &str,
    now: Millis,
) -> Result<Option<String>, ApiError> {
    let fp = cityos_core::alerting::fingerprint(&rule.code, region);
    let sender = cap_sender(st);
    let earlier: Vec<(String, Millis)> = {
        let v = st.0.vitals.state.lock().expect("vitals lock");
        v.cap_last.get(&fp).cloned().unwrap_or_default()
    };
    let msg_type = match notice {
        // Nothing was published: nothing to cancel.
        Notice::Resolved { .. } if earlier.is_empty() => return Ok(None),
        Notice::Resolved { .. } => MsgType::Cancel,
        _ if earlier.is_empty() => MsgType::Alert,
        _ => MsgType::Update,
    };
    let identifier =
        cityos_core::cap::identifier(&format!("{fp}-{now}-{}", msg_type.as_str().to_lowercase()));
    let t = &st.0.cfg.territory;
    let polygon = t
        .by_code(region)
        .and_then(|id| {
            t.region(id)
                .polygons
                .iter()
                .max_by_key(|p| p.rings.first().map_or(0, Vec::len))
                .and_then(|p| p.rings.first().cloned())
        })
        .map(|ring| {
            // At most about 100 points: CAP readers need the shape, not every vertex.
            let step = (ring.len() / 100).max(1);
            ring.into_iter().step_by(step).collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let (headline, description) = match msg_type {
        MsgType::Cancel => (
            format!("{place}{}预警解除", rule.name_zh),
            format!("{place}{}已恢复正常。{snap}", rule.name_zh),
        ),
        _ => (
            format!("{place}{}{}预警", rule.name_zh, level.name_zh()),
            snap.to_string(),
        ),
    };
    let alert = CapAlert {
        identifier: identifier.clone(),
        sender: sender.clone(),
        sent: now,
        msg_type,
        references: earlier
            .iter()
            .map(|(id, sent)| Reference {
                sender: sender.clone(),
                identifier: id.clone(),
                sent: *sent,
            })
            .collect(),
        category,
        event: rule.name_zh.clone(),
        level,
        headline: headline.clone(),
        description,
        instruction: match msg_type {
            MsgType::Cancel => String::new(),
            _ => "请关注官方发布的信息，远离危险区域，听从现场工作人员指挥。".into(),
        },
        sender_name: format!(
            "{}城市运行管理中心",
            region_name(st, &t.region(t.root()).code)
        ),
        area_desc: place.to_string(),
        polygon,
        expires: (msg_type != MsgType::Cancel).then_some(now + CAP_EXPIRES),
    };
    let m = CapMessage {
        identifier: identifier.clone(),
        fingerprint: fp.clone(),
        msg_type: msg_type.as_str().to_string(),
        sent: now,
        headline,
        xml: alert.to_xml(),
    };
    st.0.reads.write(move |s| s.put_cap(&m)).await??;
    {
        let mut v = st.0.vitals.state.lock().expect("vitals lock");
        if msg_type == MsgType::Cancel {
            v.cap_last.remove(&fp);
        } else {
            v.cap_last
                .entry(fp)
                .or_default()
                .push((identifier.clone(), now));
        }
    }
    Ok(Some(identifier))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    region: Option<String>,
}

/// May `p` see alerts of `region`? A caller with a scope sees the district's own alerts
/// and those within its scope; a scoped role without a scope sees none.
fn sees_region(st: &AppState, p: &Principal, region: &str) -> bool {
    let t = &st.0.cfg.territory;
    let Some(scope) = &p.scope else {
        return !matches!(p.role, Role::SubdistrictOfficer | Role::Inspector);
    };
    let (Some(rid), Some(sid)) = (t.by_code(region), t.by_code(scope)) else {
        return false;
    };
    rid == t.root() || t.is_within(rid, sid)
}

/// `GET /api/v1/alerts?state=&region=` — alerts pending and firing, each with its silence
/// or inhibition, its case and its group; and the groups' summary. Scoped: a sub-district
/// officer sees the district's alerts and its sub-district's, and a `region` outside that
/// answers 404 like a missing one; an alert's `case` is null unless the caller may see
/// that case (`cases::can_see`).
pub async fn list(
    State(st): State<AppState>,
    crate::Q(p): crate::Q<AlertParams>,
    Staff(who): Staff,
) -> Result<Response, ApiError> {
    if let Some(s) = &p.state {
        if !matches!(s.as_str(), "pending" | "firing") {
            return Err(ApiError::new(
                Problem::InvalidParameter,
                format!("state {s:?} is not pending or firing"),
            ));
        }
    }
    if let Some(r) = &p.region {
        crate::vitals::vital_region(&st, r)?;
        if !sees_region(&st, &who, r) {
            return Err(ApiError::not_found(&format!("region {r}")));
        }
    }
    let now = st.now();
    let rules = st.0.cfg.alert_rules.clone();
    let (rows, cases) = {
        let v = st.0.vitals.state.lock().expect("vitals lock");
        let rows: Vec<_> = v
            .alerting
            .alerts()
            .filter(|(_, a)| p.region.as_ref().is_none_or(|r| a.region.starts_with(r)))
            .filter(|(_, a)| sees_region(&st, &who, &a.region))
            .map(|(fp, a)| {
                (
                    fp.clone(),
                    a.clone(),
                    v.alerting.silenced(&a.rule, &a.region, now),
                    v.alerting.inhibited(&rules, &a.rule, &a.region),
                )
            })
            .collect();
        let cases: HashMap<String, i64> = v.alert_cases.clone().into_iter().collect();
        (rows, cases)
    };
    let mut alerts = Vec::new();
    let mut groups: std::collections::BTreeMap<String, (usize, usize, WarnLevel)> =
        Default::default();
    for (fp, a, silenced, inhibited) in rows {
        let Some(rule) = rules.iter().find(|r| r.code == a.rule) else {
            continue;
        };
        let (state, since) = match a.state {
            AlertState::Pending { since } => ("pending", since),
            AlertState::Firing { since, .. } => ("firing", since),
        };
        if p.state.as_deref().is_some_and(|s| s != state) {
            continue;
        }
        let case = match cases.get(&fp) {
            Some(&id) => {
                st.0.reads
                    .run(move |s| s.load_case(id))
                    .await??
                    .filter(|c| crate::cases::can_see(&st, &who, c))
                    .map(|c| json!({"id": c.id, "number": c.number, "state": c.state}))
            }
            None => None,
        };
        let g = groups.entry(rule.group.clone()).or_default();
        g.0 += 1;
        if state == "firing" {
            g.1 += 1;
            g.2 = g.2.max(a.level);
        }
        alerts.push(json!({
            "fingerprint": fp, "rule": rule.code, "name_zh": rule.name_zh, "name_en": rule.name_en,
            "group": rule.group, "region": a.region, "region_name": region_name(&st, &a.region),
            "state": state, "since": format_rfc3339(since), "level": a.level.as_str(), "level_zh": a.level.name_zh(),
            "value": a.value, "silenced": silenced, "inhibited": inhibited, "public": rule.public.is_some(),
            "case": case,
        }));
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, (n, firing, level))| json!({"group": g, "alerts": n, "firing": firing, "level": level.as_str()}))
        .collect();
    Ok(Json(json!({"alerts": alerts, "groups": groups})).into_response())
}

/// `GET /api/v1/alert-rules` — the rules, with their expressions.
pub async fn rules(State(st): State<AppState>, _: Staff) -> Result<Response, ApiError> {
    let v: Vec<Value> = st
        .0
        .cfg
        .alert_rules
        .iter()
        .map(|r| {
            json!({
                "code": r.code, "name_zh": r.name_zh, "name_en": r.name_en, "indicators": r.expr.indicators(),
                "for_seconds": r.for_ms / 1000, "level": r.level.map(WarnLevel::as_str),
                "case_levels": r.case_levels.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
                "category": r.category, "group": r.group, "cap_category": r.public, "inhibits": r.inhibits,
            })
        })
        .collect();
    Ok(Json(json!({"rules": v})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceIn {
    rule: String,
    /// The district by default.
    #[serde(default)]
    region: Option<String>,
    reason: String,
    /// An end time, or…
    #[serde(default)]
    ends_at: Option<String>,
    /// …a length such as "2h".
    #[serde(default)]
    duration: Option<String>,
}

fn silence_json(st: &AppState, s: &cityos_core::alerting::Silence) -> Value {
    json!({"id": s.id, "rule": s.rule, "region": s.region, "region_name": region_name(st, &s.region),
           "owner": s.owner, "reason": s.reason, "ends_at": format_rfc3339(s.ends_at)})
}

fn may_silence(p: &crate::http::auth::Principal) -> Result<(), ApiError> {
    match p.role {
        Role::Admin | Role::DistrictOfficer | Role::SubdistrictOfficer => Ok(()),
        r => Err(ApiError::forbidden(format!(
            "role {r} does not silence alerts"
        ))),
    }
}

/// `POST /api/v1/silences` — mutes a rule's notices in a region (and inside it) until
/// the silence ends; the alert's state is still kept and shown.
pub async fn create_silence(
    State(st): State<AppState>,
    caller: Caller,
    body: crate::Body<SilenceIn>,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    may_silence(&p)?;
    let b = body.value;
    let bad = |m: String| ApiError::new(Problem::InvalidArgument, m);
    if !st.0.cfg.alert_rules.iter().any(|r| r.code == b.rule) {
        return Err(bad(format!("unknown alert rule {:?}", b.rule)));
    }
    let t = &st.0.cfg.territory;
    let region = b.region.unwrap_or_else(|| t.region(t.root()).code.clone());
    crate::vitals::vital_region(&st, &region).map_err(|e| bad(e.detail))?;
    if let Some(scope) = &p.scope {
        if !region.starts_with(scope.as_str()) {
            return Err(ApiError::forbidden(format!(
                "region {region} is outside this account's scope"
            )));
        }
    }
    let now = st.now();
    let ends_at = match (b.ends_at.as_deref(), b.duration.as_deref()) {
        (Some(e), None) => {
            parse_datetime(e).ok_or_else(|| bad(format!("ends_at {e:?} is not a datetime")))?
        }
        (None, Some(d)) => cityos_core::sensing::parse_duration(d)
            .and_then(|x| now.checked_add(x))
            .ok_or_else(|| bad(format!("duration {d:?} is not a length such as \"2h\"")))?,
        _ => return Err(bad("give either ends_at or duration".into())),
    };
    if ends_at > now + 30 * 24 * HOUR {
        return Err(bad("a silence lasts at most 30 days".into()));
    }
    let s = {
        let mut v = st.0.vitals.state.lock().expect("vitals lock");
        let id = v
            .alerting
            .silence(&b.rule, &region, &p.name, &b.reason, ends_at, now)
            .map_err(bad)?;
        let added = v
            .alerting
            .silences(now)
            .find(|s| s.id == id)
            .cloned()
            .expect("just added");
        added
    };
    let id = s.id;
    let row = silence_row(&s);
    let kept = match st.0.reads.write(move |x| x.put_silence(&row)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = kept {
        // Not kept, so not in force: a silence holds only if it survives a restart.
        let mut v = st.0.vitals.state.lock().expect("vitals lock");
        v.alerting.expire(id, now);
        return Err(e);
    }
    crate::http::log::event(
        "silence_created",
        &[("id", &id), ("rule", &b.rule), ("owner", &p.name)],
    );
    Ok((StatusCode::CREATED, Json(silence_json(&st, &s))).into_response())
}

/// `GET /api/v1/silences` — silences in force.
pub async fn list_silences(State(st): State<AppState>, _: Staff) -> Result<Response, ApiError> {
    let now = st.now();
    let v = st.0.vitals.state.lock().expect("vitals lock");
    let all: Vec<Value> = v
        .alerting
        .silences(now)
        .map(|s| silence_json(&st, s))
        .collect();
    Ok(Json(json!({"silences": all})).into_response())
}

/// `DELETE /api/v1/silences/{id}` — ends a silence now.
pub async fn expire_silence(
    State(st): State<AppState>,
    Path(id): Path<String>,
    SignedIn(p): SignedIn,
) -> Result<Response, ApiError> {
    may_silence(&p)?;
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            Problem::InvalidParameter,
            format!("{id:?} is not a silence id"),
        )
    })?;
    let now = st.now();
    let Some(found) =
        st.0.vitals
            .state
            .lock()
            .expect("vitals lock")
            .alerting
            .silence_in_force(id, now)
            .cloned()
    else {
        return Err(ApiError::not_found(&format!("silence {id} in force")));
    };
    if let Some(scope) = &p.scope {
        if !found.region.starts_with(scope.as_str()) {
            return Err(ApiError::forbidden(format!(
                "silence {id} covers {}, outside this account's scope",
                found.region
            )));
        }
    }
    // Ended in the store first: a silence ended here stays ended after a restart.
    let row = SilenceRow {
        ends_at: now,
        ..silence_row(&found)
    };
    st.0.reads.write(move |x| x.put_silence(&row)).await??;
    st.0.vitals
        .state
        .lock()
        .expect("vitals lock")
        .alerting
        .expire(id, now);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The public base URL of links in the feed, from the request's Host.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /cap/feed.atom` — the newest public warnings (public: no sign-in).
pub async fn feed(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let msgs = st.0.reads.run(|s| s.cap_messages(50)).await??;
    let base = base_url(&headers);
    let t = &st.0.cfg.territory;
    let district = t.region(t.root());
    let updated = msgs.first().map_or(st.now(), |m| m.sent);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"zh-CN\">\n");
    x.push_str(&format!(
        "  <id>urn:cityos:cap:{}:feed</id>\n  <title>{}城市运行公共预警 (CAP 1.2)</title>\n  <updated>{}</updated>\n  <author><name>{}</name></author>\n  <link rel=\"self\" href=\"{base}/cap/feed.atom\"/>\n",
        xml_escape(&cap_sender(&st)),
        xml_escape(&district.name_zh),
        format_rfc3339(updated),
        xml_escape(&cap_sender(&st)),
    ));
    for m in &msgs {
        let url = format!("{base}/cap/alerts/{}.xml", m.identifier);
        x.push_str(&format!(
            "  <entry>\n    <id>urn:cityos:cap:{}:{}</id>\n    <title>{}</title>\n    <updated>{}</updated>\n    <category term=\"{}\"/>\n    <link rel=\"alternate\" type=\"application/cap+xml\" href=\"{url}\"/>\n    <summary>{}</summary>\n  </entry>\n",
            xml_escape(&cap_sender(&st)),
            xml_escape(&m.identifier),
            xml_escape(&m.headline),
            format_rfc3339(m.sent),
            xml_escape(&m.msg_type),
            xml_escape(&m.headline),
        ));
    }
    x.push_str("</feed>\n");
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        x,
    )
        .into_response())
}

/// `GET /cap/alerts/{identifier}.xml` — one CAP message as sent.
pub async fn cap_alert(
    State(st): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let Some(id) = file.strip_suffix(".xml") else {
        return Err(ApiError::not_found(&format!("CAP message {file:?}")));
    };
    let id = id.to_string();
    let key = id.clone();
    match st.0.reads.run(move |s| s.cap_message(&key)).await?? {
        Some(m) => Ok((
            [(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")],
            m.xml,
        )
            .into_response()),
        None => Err(ApiError::not_found(&format!("CAP message {id:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    #[serde(default)]
    region: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    step: Option<String>,
}

/// Points a history answers at most.
pub const HISTORY_POINTS: i64 = 10_000;

/// `GET /api/v1/indicators/{code}/history?region=&from=&to=&step=` — the indicator's
/// values per step (a multiple of 1 minute; whole hours read the hourly rollups), from
/// the stored rollups and the minute in progress: count, avg, min, max and last.
pub async fn history(
    State(st): State<AppState>,
    Path(code): Path<String>,
    crate::Q(p): crate::Q<HistoryParams>,
    _: Staff,
) -> Result<Response, ApiError> {
    let inds = st.0.cfg.indicators.clone();
    let Some(i) = inds.iter().position(|x| x.code == code) else {
        return Err(ApiError::not_found(&format!("indicator {code:?}")));
    };
    let t = &st.0.cfg.territory;
    let region = p.region.unwrap_or_else(|| t.region(t.root()).code.clone());
    let r = crate::vitals::vital_region(&st, &region)?;
    let bad = |m: String| ApiError::new(Problem::InvalidParameter, m);
    let now = st.now();
    let time = |name: &str, v: Option<&str>, default: Millis| match v {
        None => Ok(default),
        Some(s) => parse_datetime(s).ok_or_else(|| bad(format!("{name} {s:?} is not a datetime"))),
    };
    let to = time("to", p.to.as_deref(), now + 1)?;
    let from = time("from", p.from.as_deref(), to - 24 * HOUR)?;
    if from >= to {
        return Err(bad("from must be before to".into()));
    }
    let step = match p.step.as_deref() {
        None => {
            if to - from > 2 * 24 * HOUR {
                HOUR
            } else {
                5 * MINUTE
            }
        }
        Some(s) => cityos_core::sensing::parse_duration(s)
            .filter(|d| {
                (MINUTE..HOUR).contains(d) && d % MINUTE == 0
                    || (HOUR..=31 * 24 * HOUR).contains(d) && d % HOUR == 0
            })
            .ok_or_else(|| {
                bad(format!(
                    "step {s:?} is not whole minutes under an hour or whole hours up to 31 days, such as \"5m\", \"1h\" or \"1d\""
                ))
            })?,
    };
    if (to - from) / step > HISTORY_POINTS {
        return Err(bad(format!(
            "{} points asked; at most {HISTORY_POINTS}: widen the step or narrow the range",
            (to - from) / step
        )));
    }
    // Whole-hour steps read the hourly rollups; shorter ones the minutes, at most a
    // week of them per question.
    let base = if step % HOUR == 0 { HOUR } else { MINUTE };
    if base == MINUTE && to - from > 7 * 24 * HOUR {
        return Err(bad(
            "steps under an hour cover at most 7 days; use a step of whole hours for longer ranges"
                .into(),
        ));
    }
    // Buckets align to local midnight (a day is a Beijing day).
    let off = cityos_core::time::LOCAL_OFFSET;
    let bucket_of = |t: Millis| (t + off).div_euclid(step) * step - off;
    let (c, rg) = (code.clone(), region.clone());
    let (lo, hi) = (bucket_of(from), to);
    let base_s = base / 1000;
    let mut rows =
        st.0.reads
            .run(move |s| s.rollups(&c, &rg, base_s, lo, hi))
            .await??;
    // The minute (and hour) in progress, not stored yet.
    if let Some(cur) =
        st.0.vitals
            .state
            .lock()
            .expect("vitals lock")
            .current_rollup(&inds[i], i, r)
    {
        if cur.bucket >= lo && cur.bucket < hi {
            rows.push(cur);
        }
    }
    let mut points: std::collections::BTreeMap<Millis, cityos_engine::store::Rollup> =
        Default::default();
    for row in rows {
        let b = bucket_of(row.bucket);
        match points.get_mut(&b) {
            Some(p) => crate::vitals::merge(p, &row),
            None => {
                points.insert(b, cityos_engine::store::Rollup { bucket: b, ..row });
            }
        }
    }
    let pts: Vec<Value> = points
        .values()
        .map(|p| {
            json!({"t": format_rfc3339(p.bucket), "n": p.n, "avg": p.sum / p.n.max(1) as f64,
                   "min": p.min, "max": p.max, "last": p.last})
        })
        .collect();
    let ind = &inds[i];
    Ok(Json(json!({
        "code": ind.code, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit,
        "region": region, "from": format_rfc3339(from), "to": format_rfc3339(to),
        "step_seconds": step / 1000, "points": pts,
        "thresholds": ind.thresholds.map(|t| json!({"direction": t.direction, "blue": t.at[0], "yellow": t.at[1], "orange": t.at[2], "red": t.at[3]})),
    }))
    .into_response())
}

fn flatten<T>(r: Result<Result<T, StoreError>, ApiError>) -> Result<T, String> {
    match r {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.detail),
    }
}

fn silence_row(s: &Silence) -> SilenceRow {
    SilenceRow {
        id: s.id as i64,
        rule: s.rule.clone(),
        region: s.region.clone(),
        owner: s.owner.clone(),
        reason: s.reason.clone(),
        ends_at: s.ends_at,
    }
}

fn alert_row(fp: &str, a: &Alert) -> AlertRow {
    let (state, since) = match a.state {
        AlertState::Pending { since } => ("pending", since),
        AlertState::Firing { since, .. } => ("firing", since),
    };
    AlertRow {
        fingerprint: fp.to_string(),
        rule: a.rule.clone(),
        region: a.region.clone(),
        state: state.into(),
        since,
        level: a.level.as_str().into(),
        value: a.value.is_finite().then_some(a.value),
        told: a.told,
    }
}

/// Writes the alerts that changed since they were last written (state, level, told —
/// not every new value) and deletes those that ended. A write that fails is tried again
/// at the next round (what was kept is only updated on success).
async fn keep_alerts(st: &AppState) {
    let (up, gone) = {
        let v = st.0.vitals.state.lock().expect("vitals lock");
        let up: Vec<AlertRow> = v
            .alerting
            .alerts()
            .filter(|(fp, a)| v.alerts_kept.get(*fp) != Some(&(a.state, a.level, a.told)))
            .map(|(fp, a)| alert_row(fp, a))
            .collect();
        let gone: Vec<String> = v
            .alerts_kept
            .keys()
            .filter(|fp| !v.alerting.has(fp))
            .cloned()
            .collect();
        (up, gone)
    };
    if up.is_empty() && gone.is_empty() {
        return;
    }
    let (u, g) = (up.clone(), gone.clone());
    match flatten(st.0.reads.write(move |s| s.put_alert_states(&u, &g)).await) {
        Ok(()) => {
            let mut v = st.0.vitals.state.lock().expect("vitals lock");
            for fp in &gone {
                v.alerts_kept.remove(fp);
            }
            for a in up {
                let kept = (alert_state(&a), level_of(&a.level), a.told);
                v.alerts_kept.insert(a.fingerprint, kept);
            }
        }
        Err(e) => crate::http::log::event("alert_states_failed", &[("error", &e)]),
    }
}

fn level_of(s: &str) -> WarnLevel {
    WarnLevel::ALL
        .into_iter()
        .find(|l| l.as_str() == s)
        .unwrap_or(WarnLevel::Normal)
}

fn alert_state(a: &AlertRow) -> AlertState {
    match a.state.as_str() {
        "pending" => AlertState::Pending { since: a.since },
        _ => AlertState::Firing {
            since: a.since,
            level: level_of(&a.level),
        },
    }
}

/// Puts back what the alerts kept in the store (at start, before the first round): the
/// alerts pending and firing, the silences (and the largest id given), the case of each
/// alert, and each alert's open CAP chain — so a still-breaching alert neither fires
/// again nor files a second case, and its next CAP message references the earlier ones.
pub fn restore(
    st: &AppState,
    s: &mut (impl VitalsStore + ?Sized),
    now: Millis,
) -> Result<(), StoreError> {
    let (alerts, silences) = (s.alert_states()?, s.silences()?);
    let (cases, chains) = (s.alert_cases()?, s.cap_chains()?);
    let mut v = st.0.vitals.state.lock().expect("vitals lock");
    for a in alerts {
        let state = alert_state(&a);
        let level = level_of(&a.level);
        v.alerts_kept
            .insert(a.fingerprint.clone(), (state, level, a.told));
        v.restored
            .insert(a.fingerprint.clone(), now + RESTORED_WAIT);
        v.alerting.restore_alert(
            a.fingerprint,
            Alert {
                rule: a.rule,
                region: a.region,
                state,
                value: a.value.unwrap_or(f64::NAN),
                level,
                told: a.told,
            },
        );
    }
    for x in silences {
        v.alerting.restore_silence(
            Silence {
                id: x.id as u64,
                rule: x.rule,
                region: x.region,
                owner: x.owner,
                reason: x.reason,
                ends_at: x.ends_at,
            },
            now,
        );
    }
    v.alert_cases.extend(cases);
    for (fp, id, sent) in chains {
        v.cap_last.entry(fp).or_default().push((id, sent));
    }
    Ok(())
}

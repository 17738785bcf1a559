//! The precision-assistance room's endpoints under `/api/v1/assistance`: the declared
//! sources and their imports, importing a source file, the adviser's cases (masked), one
//! case's explanation, the purpose-bound personal view (audited), recording the visit,
//! and the analysts' counts by sub-district and policy (cells under 5 suppressed). Lists
//! and counts also as CSV (`format=csv`): the export follows the same rules.

use super::{
    import, may_import, room, standing, AssistCase, Room, Standing, Visit, MIN_CELL, OUTCOMES,
};
use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::Staff;
use crate::{AppState, Q};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::privacy::{mask_field, Personal};
use cityos_core::time::{format_rfc3339, Date};
use cityos_core::workflow::{Action, Actor, Command};
use cityos_core::Role;
use cityos_engine::engine::{Request, Response as EngineResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The sub-district or policy code of a total row (every sub-district, every policy).
pub use cityos_core::privacy::ALL;

/// The largest source file accepted at once.
pub const SOURCE_LIMIT: usize = 64 * 1024 * 1024;

fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_response(name: &str, lines: Vec<Vec<String>>) -> Response {
    let mut out = String::from("\u{FEFF}");
    for l in lines {
        out.push_str(&l.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

fn region_name(st: &AppState, code: &str) -> String {
    let t = &st.0.cfg.territory;
    t.by_code(code)
        .map(|r| t.region(r).name_zh.clone())
        .unwrap_or_default()
}

/// GET /api/v1/assistance/sources — the declared sources and what was imported (the
/// civil-affairs line, officers, administrators).
pub async fn sources(State(st): State<AppState>, Staff(p): Staff) -> Result<Json<Value>, ApiError> {
    let ok = match p.role {
        Role::Admin | Role::DistrictOfficer => true,
        Role::SubdistrictOfficer => p.scope.is_some(),
        Role::Handler => p
            .department
            .as_deref()
            .and_then(|d| st.0.cfg.taxonomy.department(d))
            .is_some_and(|d| d.line == super::LINE),
        _ => false,
    };
    if !ok {
        return Err(ApiError::forbidden(
            "the pool's sources are for the civil-affairs line, officers and administrators / 数据源仅限民政条线、指挥人员与管理员",
        ));
    }
    let r = room(&st).await?;
    let sources: Vec<Value> = r
        .decl
        .sources
        .iter()
        .map(|s| {
            let imports: Vec<Value> = r
                .import_log
                .iter()
                .filter(|i| i.0 == s.name)
                .map(|i| json!({"label": i.1, "as_of": i.2, "rows": i.3, "accepted": i.4}))
                .collect();
            json!({
                "name": s.name, "title": s.title, "owner": s.owner, "membership": s.membership,
                "columns": s.columns.iter().map(|c| json!({"name": c.name, "personal": c.personal || matches!(c.ty, cityos_core::assistance::sources::ColType::Person | cityos_core::assistance::sources::ColType::Household)})).collect::<Vec<_>>(),
                "imports": imports,
            })
        })
        .collect();
    Ok(Json(json!({
        "sources": sources,
        "households": r.pool.households(),
        "persons": r.pool.persons(),
        "as_of": r.ev.as_ref().map(|e| e.as_of.to_string()),
        "policies": r.book.policies.iter().map(|p| json!({"code": p.code, "name": p.name, "name_en": p.name_en})).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct ImportQ {
    as_of: Option<String>,
    label: Option<String>,
    /// More files of the same delivery follow: fuse and keep, raise nothing yet.
    #[serde(default)]
    hold: bool,
}

/// POST /api/v1/assistance/sources/{source} — one source file (text/csv) as of a date.
pub async fn import_source(
    State(st): State<AppState>,
    Staff(p): Staff,
    Path(source): Path<String>,
    Q(q): Q<ImportQ>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    if !may_import(&st, &p) {
        return Err(ApiError::forbidden(
            "only the district civil-affairs bureau and administrators import the pool's sources / 仅区民政局与管理员可导入数据源",
        ));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("text/csv") {
        return Err(ApiError::new(
            Problem::UnsupportedMediaType,
            "send a source file as text/csv",
        ));
    }
    let now = st.now();
    let as_of = match q.as_of.as_deref() {
        None => cityos_core::time::local_date(now),
        Some(s) => Date::parse(s).ok_or_else(|| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("as_of: {s:?} is not a date (YYYY-MM-DD)"),
            )
        })?,
    };
    let label = q
        .label
        .unwrap_or_else(|| format!("{source} {as_of}"))
        .chars()
        .take(80)
        .collect::<String>();
    let bytes = axum::body::to_bytes(body, SOURCE_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                Problem::PayloadTooLarge,
                format!("a source file may be at most {} MiB", SOURCE_LIMIT >> 20),
            )
        })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::new(Problem::InvalidDataset, "the file is not UTF-8 text"))?;
    let v = import(&st, &source, &label, as_of, text, q.hold, now).await?;
    st.0.audit
        .record(
            &st,
            &p.name,
            "assistance_import",
            &format!("assistance_source:{source}"),
            json!({"label": label, "as_of": as_of.to_string(), "rows": v["rows"], "refused": v["refused"], "cases": v["cases_opened"].as_array().map_or(0, |a| a.len())}),
        )
        .await?;
    Ok(Json(v))
}

/// The household's members: (position, relation, age, person hash).
fn members(r: &Room, household: &str) -> Vec<(usize, Option<String>, Option<i32>, u128)> {
    let Some(h) = u128::from_str_radix(household, 16)
        .ok()
        .and_then(|h| r.pool.household_of_hash(h))
    else {
        return Vec::new();
    };
    let as_of = r.ev.as_ref().map(|e| e.as_of);
    let rel = r.decl.field("relation");
    let birth = r.decl.field("birth_date");
    r.pool.members[h as usize]
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            let relation = rel.and_then(|f| {
                r.pool
                    .resolve(&r.decl, f, m)
                    .and_then(|c| r.decl.fields[f].ty.codes().get(c.value as usize).cloned())
            });
            let age = birth.zip(as_of).and_then(|(f, at)| {
                r.pool.resolve(&r.decl, f, m).map(|c| {
                    let b = Date::from_days(i64::from(c.value));
                    let mut a = at.year - b.year;
                    if (at.month, at.day) < (b.month, b.day) {
                        a -= 1;
                    }
                    a
                })
            });
            (i + 1, relation, age, r.pool.person_hash[m as usize])
        })
        .collect()
}

fn outcome_zh(o: &str) -> &'static str {
    match o {
        "enrolled" => "已纳入救助",
        "not_eligible" => "经核实不符合",
        "declined" => "本人拒绝",
        "unreachable" => "无法联系",
        _ => "",
    }
}

/// A case as a list row: masked values only.
fn list_row(st: &AppState, r: &Room, c: &AssistCase) -> Value {
    let ms = members(r, &c.household);
    let head = ms.first().and_then(|m| r.persons.get(&m.3));
    json!({
        "number": c.number,
        "household": &c.household[..12],
        "policies": c.policies,
        "policy_names": c.policies.iter().filter_map(|p| r.book.policy(p).map(|k| r.book.policies[k].name.clone())).collect::<Vec<_>>(),
        "subdistrict": c.subdistrict,
        "subdistrict_name": region_name(st, &c.subdistrict),
        "community": c.community,
        "community_name": region_name(st, &c.community),
        "hardship": c.hardship,
        "score": c.score,
        "members": ms.len(),
        "head_name": head.map(|p| mask_field(Personal::Name, &p.name)),
        "address": head.map(|p| mask_field(Personal::Address, &p.address)),
        "raised_at": format_rfc3339(c.raised_at),
        "visit_by": format_rfc3339(c.visit_by),
        "outcome": c.visit.as_ref().map(|v| v.outcome.clone()),
        "outcome_zh": c.visit.as_ref().map(|v| outcome_zh(&v.outcome)),
        "open": c.visit.is_none(),
    })
}

#[derive(Deserialize)]
pub struct ListQ {
    format: Option<String>,
    open: Option<bool>,
}

fn visible(st: &AppState, p: &Principal, c: &AssistCase) -> Standing {
    standing(st, p, &c.subdistrict)
}

/// May the caller use the case lists at all (the adviser's line, officers)?
fn lister(st: &AppState, p: &Principal) -> Result<(), ApiError> {
    let ok = match p.role {
        Role::DistrictOfficer => true,
        Role::SubdistrictOfficer => p.scope.is_some(),
        Role::Handler => p
            .department
            .as_deref()
            .and_then(|d| st.0.cfg.taxonomy.department(d))
            .is_some_and(|d| d.line == super::LINE),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "assistance cases are for the civil-affairs advisers and officers; analysts see /api/v1/assistance/summary / 救助个案仅限社区救助顾问与指挥人员",
        ))
    }
}

/// GET /api/v1/assistance/cases — the caller's assistance cases, masked.
pub async fn list_cases(
    State(st): State<AppState>,
    Staff(p): Staff,
    Q(q): Q<ListQ>,
) -> Result<Response, ApiError> {
    lister(&st, &p)?;
    let r = room(&st).await?;
    let mut rows: Vec<Value> = r
        .cases
        .values()
        .rev()
        .filter(|c| visible(&st, &p, c) != Standing::None)
        .filter(|c| q.open.is_none_or(|o| o == c.visit.is_none()))
        .map(|c| list_row(&st, &r, c))
        .collect();
    rows.sort_by(|a, b| {
        b["open"]
            .as_bool()
            .cmp(&a["open"].as_bool())
            .then(b["score"].as_u64().cmp(&a["score"].as_u64()))
    });
    if q.format.as_deref() == Some("csv") {
        let mut lines = vec![[
            "number",
            "household",
            "policies",
            "subdistrict",
            "community",
            "hardship",
            "score",
            "members",
            "head_name",
            "address",
            "raised_at",
            "visit_by",
            "outcome",
        ]
        .map(String::from)
        .to_vec()];
        for v in &rows {
            let s = |k: &str| match &v[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                other => other.to_string(),
            };
            lines.push(vec![
                s("number"),
                s("household"),
                s("policies"),
                s("subdistrict_name"),
                s("community_name"),
                s("hardship"),
                s("score"),
                s("members"),
                s("head_name"),
                s("address"),
                s("raised_at"),
                s("visit_by"),
                s("outcome"),
            ]);
        }
        return Ok(csv_response("assistance-cases", lines));
    }
    Ok(Json(json!({"cases": rows})).into_response())
}

fn find<'a>(
    st: &AppState,
    p: &Principal,
    r: &'a Room,
    number: &str,
) -> Result<(&'a AssistCase, Standing), ApiError> {
    lister(st, p)?;
    let c = r
        .cases
        .get(number)
        .ok_or_else(|| ApiError::not_found("the assistance case"))?;
    match visible(st, p, c) {
        Standing::None => Err(ApiError::not_found("the assistance case")),
        s => Ok((c, s)),
    }
}

/// GET /api/v1/assistance/cases/{number} — the case with its explanation: members by
/// position, relation and age; the facts with their source and import; no personal data.
pub async fn get_case(
    State(st): State<AppState>,
    Staff(p): Staff,
    Path(number): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = room(&st).await?;
    let (c, s) = find(&st, &p, &r, &number)?;
    let mut v = list_row(&st, &r, c);
    v["explanations"] = json!(c.explanations);
    v["member_list"] = json!(members(&r, &c.household)
        .iter()
        .map(|(i, rel, age, _)| json!({"position": i, "relation": rel, "age": age}))
        .collect::<Vec<_>>());
    // The adviser's own words whole for the adviser's line; for officers through the
    // personal-data mask (a phone number typed into a note).
    let words = |w: &str| {
        if s == Standing::Adviser {
            w.to_string()
        } else {
            cityos_core::privacy::mask_personal(w)
        }
    };
    v["visit"] = match &c.visit {
        None => Value::Null,
        Some(x) => {
            json!({"outcome": x.outcome, "outcome_zh": outcome_zh(&x.outcome), "reason": words(&x.reason), "note": words(&x.note), "by": x.by, "at": format_rfc3339(x.at)})
        }
    };
    v["may_open"] = json!(s == Standing::Adviser);
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct PurposeQ {
    purpose: Option<String>,
}

/// GET /api/v1/assistance/cases/{number}/personal?purpose=… — the members' names, ID
/// numbers and addresses: whole for the adviser with a stated purpose (written to the
/// audit trail), masked for officers.
pub async fn personal(
    State(st): State<AppState>,
    Staff(p): Staff,
    Path(number): Path<String>,
    Q(q): Q<PurposeQ>,
) -> Result<Json<Value>, ApiError> {
    let r = room(&st).await?;
    let (c, s) = find(&st, &p, &r, &number)?;
    // Whole values only for the adviser of the household's sub-district as it is now
    // (a household that moved away is masked for the old one), while the case is open
    // or within `personal_after_visit_days` of the visit.
    let now = st.now();
    let current = super::household_subdistrict(&st, &r, &c.household);
    let days = super::param(&r, "personal_after_visit_days", 7.0);
    let within = c
        .visit
        .as_ref()
        .is_none_or(|v| (now - v.at) as f64 <= days * cityos_core::time::DAY as f64);
    let here = current
        .as_deref()
        .is_some_and(|sub| standing(&st, &p, sub) == Standing::Adviser);
    let lapsed = s == Standing::Adviser && !(within && here);
    let whole = s == Standing::Adviser && within && here;
    if whole && !st.0.audit.is_enabled() {
        return Err(ApiError::new(
            Problem::Unavailable,
            "the audit trail is off: personal values are shown only when each view is written to it / 审计日志未开启，不能查看个人信息",
        ));
    }
    let purpose = q.purpose.as_deref().map(str::trim).unwrap_or("");
    if whole && (purpose.chars().count() < 4 || purpose.chars().count() > 200) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            "purpose: state why you open this household's personal data, in 4 to 200 characters / 请说明查看目的（4–200 字）",
        ));
    }
    let ms = members(&r, &c.household);
    let list: Vec<Value> = ms
        .iter()
        .map(|(i, rel, age, h)| {
            let x = r.persons.get(h);
            let f = |k: Personal, v: Option<&String>| {
                let v = v.map_or("", |s| s.as_str());
                if whole {
                    v.to_string()
                } else {
                    mask_field(k, v)
                }
            };
            json!({
                "position": i, "relation": rel, "age": age,
                "name": f(Personal::Name, x.map(|x| &x.name)),
                "id_number": f(Personal::IdNumber, x.map(|x| &x.id_number)),
                "address": f(Personal::Address, x.map(|x| &x.address)),
            })
        })
        .collect();
    // Written before the answer leaves (a personal view is never unrecorded).
    let audit = if whole {
        Some(
            st.0.audit
                .record(
                    &st,
                    &p.name,
                    "assistance_personal_view",
                    &format!("assistance_household:{}", &c.household[..12]),
                    json!({"case": c.number, "purpose": purpose, "members": ms.len()}),
                )
                .await?,
        )
    } else {
        None
    };
    Ok(Json(json!({
        "number": c.number,
        "household": &c.household[..12],
        "masked": !whole,
        "lapsed": lapsed,
        "members": list,
        "audit_seq": audit,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitIn {
    outcome: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

/// POST /api/v1/assistance/cases/{number}/visit — the adviser records the home visit's
/// outcome; the room's case closes, the engine's case is handled (the sub-district centre
/// verifies and closes it).
pub async fn record_visit(
    State(st): State<AppState>,
    Staff(p): Staff,
    Path(number): Path<String>,
    body: crate::Body<VisitIn>,
) -> Result<Json<Value>, ApiError> {
    let v = body.value;
    let now = st.now();
    let mut g = room(&st).await?;
    let (c, s) = find(&st, &p, &g, &number)?;
    if s != Standing::Adviser {
        return Err(ApiError::forbidden(
            "only the household's adviser (the sub-district civil-affairs line) or the district civil-affairs bureau records a visit / 仅社区救助顾问可记录上门结果",
        ));
    }
    if !OUTCOMES.contains(&v.outcome.as_str()) {
        return Err(ApiError::new(
            Problem::InvalidBody,
            format!(
                "outcome: {:?} is not one of {}",
                v.outcome,
                OUTCOMES.join(", ")
            ),
        ));
    }
    let reason = v.reason.trim().to_string();
    if v.outcome == "not_eligible" && reason.chars().count() < 2 {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "reason: say why the household is not eligible / 请填写不符合的原因",
        ));
    }
    if reason.chars().count() > 500 || v.note.chars().count() > 1000 {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "reason (500) or note (1000 characters) is too long",
        ));
    }
    if c.visit.is_some() {
        return Err(ApiError::new(
            Problem::TransitionNotAllowed,
            "the visit of this case is already recorded / 该个案已记录上门结果",
        ));
    }
    let mut c = c.clone();
    // The engine's case log gets the outcome only: the reason and the adviser's note
    // (free text about a household) stay in the room.
    let note = format!("上门核实结果：{}（{}）", outcome_zh(&v.outcome), v.outcome);
    c.visit = Some(Visit {
        outcome: v.outcome.clone(),
        reason,
        note: v.note.trim().to_string(),
        by: p.name.clone(),
        at: now,
    });
    super::write(&st, vec![super::row("case", &number, &c, now)]).await?;
    g.cases.insert(number.clone(), c.clone());
    drop(g);
    // The engine's case: the adviser's department acknowledges and handles it; anyone
    // else (the district bureau) leaves a note.
    let case = crate::cases::find_case(&st, &number).await?;
    let mut state = None;
    if let Some(case) = case {
        let actor = Actor {
            id: p.name.clone(),
            role: p.role,
            department: p.department.clone(),
            scope: p.scope.clone(),
        };
        let mine = p
            .department
            .as_deref()
            .is_some_and(|d| case.task(d).is_some());
        let steps: Vec<Action> = if mine {
            vec![Action::Acknowledge, Action::Handle]
        } else {
            vec![Action::Note]
        };
        for a in steps {
            let is_ack = matches!(a, Action::Acknowledge);
            let mut cmd = Command::new(a, if mine { actor.clone() } else { Actor::system() });
            cmd.note = note.clone();
            match crate::cases::engine_call(
                &st,
                Request::Transition {
                    case: case.id,
                    command: cmd,
                    now,
                },
            )
            .await
            {
                Ok(EngineResponse::Transition(o)) => {
                    state = Some(o.case.state.as_str().to_string())
                }
                Ok(_) => {}
                // Several nodes: the case's partition is another node's. Not hidden: the
                // forwarding layer sends the whole visit there (the visit's row above is
                // written again, the same), or the client is told to try again (503).
                Err(e) if e.partition.is_some() => return Err(e),
                // Already acknowledged: go on to handle.
                Err(_) if is_ack => {}
                // The visit is recorded; the case's workflow stays for the centre.
                Err(e) => {
                    crate::http::log::event(
                        "assistance_visit_case_step_refused",
                        &[("case", &number), ("error", &e.detail)],
                    );
                    break;
                }
            }
        }
    }
    crate::http::log::event(
        "assistance_visit",
        &[("case", &number), ("outcome", &v.outcome)],
    );
    Ok(Json(json!({
        "number": number,
        "outcome": v.outcome,
        "outcome_zh": outcome_zh(&v.outcome),
        "open": false,
        "case_state": state,
    })))
}

pub use cityos_core::privacy::suppressed;

#[derive(Deserialize)]
pub struct SummaryQ {
    format: Option<String>,
}

/// GET /api/v1/assistance/summary — households found and cases by sub-district and
/// policy, any cell under 5 households suppressed (with complementary suppression, see
/// [`suppressed`]) (analysts, officers, the civil-affairs
/// line, administrators).
pub async fn summary(
    State(st): State<AppState>,
    Staff(p): Staff,
    Q(q): Q<SummaryQ>,
) -> Result<Response, ApiError> {
    let ok = matches!(
        p.role,
        Role::Analyst | Role::Admin | Role::DistrictOfficer | Role::SubdistrictOfficer
    ) || (p.role == Role::Handler
        && p.department
            .as_deref()
            .and_then(|d| st.0.cfg.taxonomy.department(d))
            .is_some_and(|d| d.line == super::LINE));
    if !ok {
        return Err(ApiError::forbidden(
            "the assistance counts are for analysts, officers and the civil-affairs line",
        ));
    }
    let r = room(&st).await?;
    // (subdistrict, policy) → [found, cases, open, enrolled]
    let mut cells: BTreeMap<(String, String), [usize; 4]> = BTreeMap::new();
    let t = &st.0.cfg.territory;
    if let Some(ev) = &r.ev {
        for (h, res) in ev.results.iter().enumerate() {
            if res.candidates == 0 {
                continue;
            }
            let Some(sub) = super::community_of(&r, h as u32)
                .and_then(|c| t.by_code(&c))
                .and_then(|c| t.region(c).parent)
                .map(|s| t.region(s).code.clone())
            else {
                continue;
            };
            for (k, pol) in r.book.policies.iter().enumerate() {
                if res.candidates & (1 << k) != 0 {
                    cells.entry((sub.clone(), pol.code.clone())).or_default()[0] += 1;
                }
            }
            // Households found for any policy: per sub-district and district-wide.
            cells.entry((sub, ALL.into())).or_default()[0] += 1;
            cells.entry((ALL.into(), ALL.into())).or_default()[0] += 1;
        }
    }
    for c in r.cases.values() {
        let keys = c
            .policies
            .iter()
            .map(|p| (c.subdistrict.clone(), p.clone()))
            .chain([
                (c.subdistrict.clone(), ALL.to_string()),
                (ALL.to_string(), ALL.to_string()),
            ]);
        for key in keys {
            let e = cells.entry(key).or_default();
            e[1] += 1;
            if c.visit.is_none() {
                e[2] += 1;
            }
            if c.visit.as_ref().is_some_and(|v| v.outcome == "enrolled") {
                e[3] += 1;
            }
        }
    }
    let hidden = suppressed(&cells);
    let rows: Vec<Value> = cells
        .iter()
        .map(|(key, n)| {
            let (s, pol) = key;
            let sup = |k: usize| {
                if hidden.contains(&(key.clone(), k)) {
                    Value::Null
                } else {
                    json!(n[k])
                }
            };
            json!({
                "subdistrict": s,
                "subdistrict_name": if s == ALL { "全区 / district".to_string() } else { region_name(&st, s) },
                "policy": pol,
                "policy_name": if pol == ALL { Some("全部政策 / all policies".to_string()) } else { r.book.policy(pol).map(|k| r.book.policies[k].name.clone()) },
                "found": sup(0), "cases": sup(1), "open": sup(2), "enrolled": sup(3),
            })
        })
        .collect();
    if q.format.as_deref() == Some("csv") {
        let cell = |v: &Value| v.as_u64().map_or("<5".to_string(), |n| n.to_string());
        let mut lines = vec![[
            "subdistrict",
            "policy",
            "found",
            "cases",
            "open",
            "enrolled",
        ]
        .map(String::from)
        .to_vec()];
        for v in &rows {
            lines.push(vec![
                v["subdistrict_name"].as_str().unwrap_or("").to_string(),
                v["policy_name"].as_str().unwrap_or("").to_string(),
                cell(&v["found"]),
                cell(&v["cases"]),
                cell(&v["open"]),
                cell(&v["enrolled"]),
            ]);
        }
        return Ok(csv_response("assistance-summary", lines));
    }
    Ok(Json(json!({
        "min_cell": MIN_CELL,
        "as_of": r.ev.as_ref().map(|e| e.as_of.to_string()),
        "rows": rows,
        "policies": r.book.policies.iter().map(|p| json!({"code": p.code, "name": p.name, "name_en": p.name_en})).collect::<Vec<_>>(),
    }))
    .into_response())
}

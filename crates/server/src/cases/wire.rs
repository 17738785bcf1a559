//! The JSON shapes of the API. Core types are not wire types: this module alone decides
//! how a case, a task or a deadline looks on the wire (names resolved, times as RFC 3339
//! in Beijing time, time left computed at `now`).

use cityos_core::case::{Case, LogEntry, Report, State};
use cityos_core::time::{format_rfc3339, Millis};
use cityos_core::{Level, Role, Step};
use cityos_engine::config::Config;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct RegionRef {
    pub code: String,
    pub name_zh: String,
    /// The pinyin name where the territory has one (English pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TaskView {
    pub department: String,
    pub department_name: String,
    pub lead: bool,
    pub state: &'static str,
    pub since: String,
}

#[derive(Debug, Serialize)]
pub struct DeadlineView {
    pub step: &'static str,
    pub step_zh: &'static str,
    pub due: String,
    pub met: Option<String>,
    pub on_time: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct CaseView {
    pub id: i64,
    pub number: String,
    pub category: String,
    pub category_name: String,
    /// The category's English name (English pages).
    pub category_name_en: String,
    pub domain: &'static str,
    pub priority: &'static str,
    pub state: &'static str,
    pub state_name: &'static str,
    pub lon: f64,
    pub lat: f64,
    pub subdistrict: Option<RegionRef>,
    pub community: Option<RegionRef>,
    pub grid: Option<RegionRef>,
    pub title: String,
    pub channel: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub reporters: u32,
    pub tasks: Vec<TaskView>,
    pub deadlines: Vec<DeadlineView>,
    /// The current deadline, if a step is running.
    pub due: Option<String>,
    /// Milliseconds until `due` (negative when overdue).
    pub time_left_ms: Option<i64>,
    pub overdue: bool,
    pub returns: u32,
    pub reworks: u32,
    pub escalations: u32,
    pub escalated_to: Option<String>,
    pub postponement_pending: bool,
    pub suspended: bool,
    pub merged_into: Option<i64>,
    pub evaluation: Option<u8>,
    /// Photos sent with the reports.
    pub media: Vec<String>,
    pub version: u64,
    /// The scenario playbook (cases opened by a scenario pack only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<Value>,
    /// What reading the report's text suggested (officers only; see [`suggestion_view`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Value>,
}

fn region(cfg: &Config, code: &Option<String>) -> Option<RegionRef> {
    let code = code.as_ref()?;
    let id = cfg.territory.by_code(code)?;
    Some(RegionRef {
        code: code.clone(),
        name_zh: cfg.territory.region(id).name_zh.clone(),
        name_en: cfg.territory.region(id).name_en.clone(),
    })
}

/// A case as `viewer` may see it: the command centres (officers) read the title as
/// written; everyone else (other staff, citizens, anonymous callers) with phone numbers,
/// ID numbers and e-mail addresses masked.
pub fn case_view_for(c: &Case, cfg: &Config, now: Millis, viewer: Option<Role>) -> CaseView {
    let mut v = case_view(c, cfg, now);
    if !viewer.is_some_and(Role::is_officer) {
        v.title = cityos_core::privacy::mask_title(&v.title);
    } else if let Some(s) = &c.suggestion {
        // The places and cues come from the citizen's words: the command centres only.
        v.suggestion = Some(suggestion_view(s, cfg));
    }
    v
}

/// What reading a report's text suggested, as the triage desk reads it: the pick and up
/// to three candidates with their names (zh, en) and calibrated scores, why intake routed
/// or held the case, the places named and the urgency cues found.
pub fn suggestion_view(s: &cityos_core::case::Suggestion, cfg: &Config) -> Value {
    let tax = &cfg.taxonomy;
    let names = |code: &str| match tax.category(code) {
        Some(c) => (c.name_zh.clone(), c.name_en.clone()),
        None => (code.to_string(), code.to_string()),
    };
    let mut top: Vec<(String, f32)> = s
        .top
        .iter()
        .map(|t| (t.category.clone(), t.score))
        .collect();
    if top.is_empty() {
        top.push((s.category.clone(), s.score));
    }
    top.truncate(3);
    let (zh, en) = names(&s.category);
    serde_json::json!({
        "category": s.category,
        "name_zh": zh,
        "name_en": en,
        "score": round3(s.score),
        "line": s.line,
        "department": s.department,
        "top": top.iter().map(|(c, score)| {
            let (zh, en) = names(c);
            serde_json::json!({"category": c, "name_zh": zh, "name_en": en, "score": round3(*score)})
        }).collect::<Vec<_>>(),
        "model": s.model,
        "routed": s.routed,
        "reason": s.reason,
        "places": s.places.iter().map(|p| serde_json::json!({
            "word": p.word,
            "kind": p.kind,
            "region": p.region,
            "region_name": p.region.as_ref().and_then(|r| cfg.territory.by_code(r)).map(|id| cfg.territory.region(id).name_zh.clone()),
        })).collect::<Vec<_>>(),
        "located_by_text": s.located_by_text,
        "cues": s.cues,
    })
}

/// A score as the wire shows it: three decimals (0.617, not 0.61699998).
fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// A case as written (officers' view; see [`case_view_for`]).
pub fn case_view(c: &Case, cfg: &Config, now: Millis) -> CaseView {
    let tax = &cfg.taxonomy;
    CaseView {
        id: c.id,
        number: c.number.clone(),
        category: c.category.clone(),
        category_name: tax
            .category(&c.category)
            .map(|x| x.name_zh.clone())
            .unwrap_or_default(),
        category_name_en: tax
            .category(&c.category)
            .map(|x| x.name_en.clone())
            .unwrap_or_default(),
        domain: c.domain.as_str(),
        priority: c.priority.as_str(),
        state: c.state.as_str(),
        state_name: c.state.name_zh(),
        lon: c.lon,
        lat: c.lat,
        subdistrict: region(cfg, &c.regions.subdistrict),
        community: region(cfg, &c.regions.community),
        grid: region(cfg, &c.regions.grid),
        title: c.title.clone(),
        channel: c.channel.as_str(),
        created_at: format_rfc3339(c.created_at),
        updated_at: format_rfc3339(c.updated_at),
        reporters: c.reporter_count(),
        tasks: c
            .tasks
            .iter()
            .map(|t| TaskView {
                department: t.department.clone(),
                department_name: tax
                    .department(&t.department)
                    .map(|d| d.name_zh.clone())
                    .unwrap_or_default(),
                lead: t.lead,
                state: t.state.as_str(),
                since: format_rfc3339(t.since),
            })
            .collect(),
        deadlines: c
            .deadlines
            .iter()
            .map(|d| DeadlineView {
                step: d.step.as_str(),
                step_zh: d.step.name_zh(),
                due: format_rfc3339(d.due),
                met: d.met.map(format_rfc3339),
                on_time: d.on_time(),
            })
            .collect(),
        due: c.due().map(format_rfc3339),
        time_left_ms: c.time_left(now),
        overdue: c.due().is_some_and(|d| d < now),
        returns: c.returns,
        reworks: c.reworks,
        escalations: c.escalations,
        escalated_to: c.escalated_to.clone(),
        postponement_pending: c.postponement.is_some(),
        suspended: c.suspended.is_some(),
        merged_into: c.merged_into,
        evaluation: c.evaluation.as_ref().map(|e| e.score),
        media: c.media.clone(),
        version: c.version,
        playbook: c.playbook.as_deref().map(playbook_view),
        suggestion: None,
    }
}

/// A case's playbook as the case page shows it: the pack, its lines, and each checklist
/// item with when and by whom it was ticked off.
fn playbook_view(p: &cityos_core::case::CasePlaybook) -> Value {
    serde_json::json!({
        "scenario": p.scenario,
        "version": p.version,
        "lead": p.lead,
        "joint": p.joint,
        "deadlines": p.limits.iter().map(|(s, l)| (s.as_str().to_string(), Value::String(l.to_string()))).collect::<serde_json::Map<_, _>>(),
        "checklist": p.checklist.iter().map(|r| serde_json::json!({
            "role": r.role,
            "items": r.items.iter().enumerate().map(|(k, i)| serde_json::json!({
                "item": k,
                "text": i.text,
                "done_at": i.done_at.map(format_rfc3339),
                "done_by": i.done_by,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// What an anonymous citizen following a case by its number may see: no location, no
/// reports, notes or contacts, and the title with phone numbers, ID numbers and e-mail
/// addresses masked ([`cityos_core::privacy::mask_personal`]).
#[derive(Debug, Serialize)]
pub struct PublicCaseView {
    pub number: String,
    pub category_name: String,
    pub state: &'static str,
    pub state_name: &'static str,
    pub title: String,
    pub created_at: String,
    pub due: Option<String>,
    /// When the whole case should be done (not just the current step): the latest open
    /// step's deadline, then the category's limits for the steps still to come on the
    /// working-day calendar ([`expected_done`]).
    pub expected_done: Option<String>,
    pub closed: bool,
    pub can_evaluate: bool,
}

/// The steps one after the other (acknowledging runs inside handling, so it adds nothing).
const CHAIN: [Step; 5] = [
    Step::File,
    Step::Dispatch,
    Step::Handle,
    Step::Verify,
    Step::Close,
];

/// When the whole case should be done at `now`: from the furthest step with an open
/// deadline (its due, or `now` when overdue), each later step's limit is added on the
/// working calendar, scaled by the priority as the workflow does (a playbook's own limits
/// first). None for a finished or suspended case.
pub fn expected_done(c: &Case, cfg: &Config, now: Millis) -> Option<Millis> {
    if c.suspended.is_some() || !c.state.is_open() {
        return None;
    }
    let cat = cfg.taxonomy.category(&c.category)?;
    let (at, mut t) = CHAIN.iter().enumerate().rev().find_map(|(i, s)| {
        c.deadline(*s)
            .filter(|d| d.met.is_none())
            .map(|d| (i, d.due.max(now)))
    })?;
    for step in &CHAIN[at + 1..] {
        t = match c.playbook.as_ref().and_then(|p| p.limits.get(step)) {
            Some(limit) => limit.deadline(&cfg.calendar, t, 1.0),
            None => cat.limit(*step).deadline(
                &cfg.calendar,
                t,
                cfg.taxonomy.relative_factor(cat, c.priority),
            ),
        };
    }
    Some(t)
}

pub fn public_view(c: &Case, cfg: &Config, now: Millis) -> PublicCaseView {
    PublicCaseView {
        number: c.number.clone(),
        category_name: cfg
            .taxonomy
            .category(&c.category)
            .map(|x| x.name_zh.clone())
            .unwrap_or_default(),
        state: c.state.as_str(),
        state_name: c.state.name_zh(),
        title: cityos_core::privacy::mask_title(&c.title),
        created_at: format_rfc3339(c.created_at),
        due: c.due().map(format_rfc3339),
        expected_done: expected_done(c, cfg, now).map(format_rfc3339),
        closed: matches!(c.state, State::Closed | State::Evaluated),
        can_evaluate: c.state == State::Closed,
    }
}

#[derive(Debug, Serialize)]
pub struct LogView {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    /// The account's display name when the actor is a staff account (for the signed-in
    /// case page; machines and departments are named by the page's dictionary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    /// That account's department, if it has one (its name in English pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_department: Option<String>,
    pub role: &'static str,
    pub action: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub note: String,
    pub attachments: Vec<String>,
    pub changes: serde_json::Value,
}

/// A log entry; `full` = as written (officers), else its note with personal data masked.
pub fn log_view(e: &LogEntry, full: bool) -> LogView {
    LogView {
        seq: e.seq,
        at: format_rfc3339(e.at),
        actor: e.actor.clone(),
        actor_name: None,
        actor_department: None,
        role: e.role.as_str(),
        action: e.action.clone(),
        from: e.from.map(|s| s.as_str()),
        to: e.to.as_str(),
        note: if full {
            e.note.clone()
        } else {
            cityos_core::privacy::mask_personal(&e.note)
        },
        attachments: e.attachments.clone(),
        changes: {
            let mut v = serde_json::to_value(&e.changes).unwrap_or_default();
            if !full {
                mask_strings(&mut v);
            }
            v
        },
    }
}

/// Masks personal data in every string of a JSON value (a log entry's changes carry the
/// case as created, title included).
fn mask_strings(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = cityos_core::privacy::mask_title(s),
        Value::Array(a) => a.iter_mut().for_each(mask_strings),
        Value::Object(m) => m.values_mut().for_each(mask_strings),
        _ => {}
    }
}

#[derive(Debug, Serialize)]
pub struct ReportView {
    pub id: i64,
    pub channel: &'static str,
    pub text: String,
    pub contact: Option<String>,
    pub at: String,
}

/// Contacts are personal data: shown to the command centres (officers) only, masked
/// whole for everyone else (no characters kept, every length the same mask). The free
/// text likewise: others see it with phones, ID numbers and e-mails masked.
pub fn report_view(r: &Report, viewer: Role) -> ReportView {
    let full = viewer.is_officer();
    let contact = r.contact.as_ref().map(|c| {
        if full {
            c.clone()
        } else {
            cityos_core::privacy::CONTACT_MASK.to_string()
        }
    });
    ReportView {
        id: r.id,
        channel: r.channel.as_str(),
        text: if full {
            r.text.clone()
        } else {
            cityos_core::privacy::mask_personal(&r.text)
        },
        contact,
        at: format_rfc3339(r.at),
    }
}

/// `POST /api/v1/reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportIn {
    /// Omitted or empty: the text is read (智能分拨) — a suggested category routes the
    /// case, or it waits in the 待分拨 triage queue.
    #[serde(default)]
    pub category: Option<String>,
    /// Required with a category; without one, a place named in the text may stand in.
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
    pub text: String,
    #[serde(default)]
    pub contact: Option<String>,
    /// Defaults to the caller's channel; a caller may only name its own.
    #[serde(default)]
    pub channel: Option<String>,
    /// Photo addresses (from `POST /api/v1/media`), at most 9.
    #[serde(default)]
    pub media: Vec<String>,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    pub username: String,
    pub password: String,
}

pub fn level_of(s: &str) -> Option<Level> {
    Level::parse(s)
}

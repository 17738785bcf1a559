//! `cityos whatif`: the period's real reports and the staff's actions on their cases,
//! replayed from the store through the engine under candidate rules (a taxonomy — routing,
//! deadlines, escalation — and optionally a calendar) in a scratch in-memory store, and the
//! measures of both side by side.
//!
//! The replay walks the period's events in time order: each report is submitted at its
//! time (routing, dedup and deadlines by the candidate rules), each logged staff action is
//! repeated at its time on the case its first report became — a department's action by the
//! department that now holds the same share (the lead, or an assisting one) — and the
//! escalation timer ticks every 5 minutes of event time and at the end. Actions the new
//! rules refuse (a case already closed, no such task) are counted, not fatal. Both sides
//! are measured at the period's end, so the figures depend on the rules only: the same
//! rules give the same figures.

use cityos_core::case::{Change, LogEntry, Report, TaskState};
use cityos_core::evaluation::measures::{figures, CaseFacts, Dim, Figures, Measure};
use cityos_core::time::{Millis, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_engine::config::Config;
use cityos_engine::engine::{Request, Response};
use cityos_engine::store::sqlite::SqliteStore;
use cityos_engine::Store;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What a replay produced.
pub struct WhatIf {
    pub from: Millis,
    pub to: Millis,
    pub reports: usize,
    /// Staff actions repeated, and those the candidate rules refused.
    pub actions: usize,
    pub refused: usize,
    pub actual: Vec<CaseFacts>,
    /// The same replay under the current rules: what the replay itself changes (timer
    /// granularity, actions the replay cannot repeat), so that `whatif − baseline` is the
    /// rules' effect alone.
    pub baseline: Vec<CaseFacts>,
    pub whatif: Vec<CaseFacts>,
}

/// The action a log entry records, to repeat it; `None` for what is not repeated (intake,
/// escalations — the timer makes its own —, notes, merges, splits, checklists).
pub fn action_of(e: &LogEntry) -> Option<Action> {
    let why = |fallback: &str| {
        if e.note.trim().is_empty() {
            fallback.to_string()
        } else {
            e.note.clone()
        }
    };
    Some(match e.action.as_str() {
        "file" => Action::File,
        "reject" => Action::Reject {
            reason: why("不予立案（回放）"),
        },
        "dispatch" => Action::Dispatch {
            departments: Vec::new(),
        },
        "acknowledge" => Action::Acknowledge,
        "start" => Action::Start,
        "handle" => Action::Handle,
        "verify" => Action::Verify,
        "reject_verification" => Action::RejectVerification,
        "close" => Action::Close,
        "evaluate" => e.changes.iter().find_map(|c| match c {
            Change::Evaluated { evaluation } => Some(Action::Evaluate {
                score: evaluation.score,
                comment: String::new(),
            }),
            _ => None,
        })?,
        "return" => Action::Return {
            reason: why("退单（回放）"),
        },
        "request_postponement" => e.changes.iter().find_map(|c| match c {
            Change::Postponement { pending: Some(p) } => Some(Action::RequestPostponement {
                extra: p.extra.clone(),
                reason: p.reason.clone(),
            }),
            _ => None,
        })?,
        "grant_postponement" => Action::GrantPostponement,
        "refuse_postponement" => Action::RefusePostponement,
        "suspend" => Action::Suspend {
            reason: why("挂账（回放）"),
        },
        "resume" => Action::Resume,
        "reopen" => Action::Reopen {
            reason: why("重新办理（回放）"),
        },
        "classify" => e.changes.iter().find_map(|c| match c {
            Change::Categorised { category, .. } => Some(Action::Classify {
                category: category.clone(),
            }),
            _ => None,
        })?,
        _ => return None,
    })
}

enum Event<'a> {
    Report(&'a Report),
    Act(&'a LogEntry),
}

/// Replays `[from, to)` of `store` under the current rules and under `candidate`; measures
/// the three sides (what happened, the replay under the current rules, the replay under
/// the candidate) at `to`.
pub fn replay(
    store: &mut dyn Store,
    actual_cfg: &Config,
    candidate: &Config,
    from: Millis,
    to: Millis,
) -> Result<WhatIf, String> {
    let (baseline, ..) = replay_under(store, actual_cfg, from, to)?;
    let (whatif, reports, actions, refused) = replay_under(store, candidate, from, to)?;
    let actual = cityos_server::evaluation::load(store, &actual_cfg.calendar, from, to, to)
        .map_err(|e| e.to_string())?;
    Ok(WhatIf {
        from,
        to,
        reports,
        actions,
        refused,
        actual,
        baseline,
        whatif,
    })
}

/// One replay of `[from, to)` under `rules` in a scratch in-memory store: the replayed
/// cases' facts at `to`, the reports, the staff actions repeated and those refused.
pub fn replay_under(
    store: &mut dyn Store,
    rules: &Config,
    from: Millis,
    to: Millis,
) -> Result<(Vec<CaseFacts>, usize, usize, usize), String> {
    let candidate = rules;
    let reports = store.cohort_reports(from, to).map_err(|e| e.to_string())?;
    let mut logs: HashMap<i64, Vec<LogEntry>> = HashMap::new();
    store
        .cohort_logs(from, to, &mut |log| {
            if let Some(f) = log.first() {
                logs.insert(f.case_id, log);
            }
        })
        .map_err(|e| e.to_string())?;
    let mut events: Vec<(Millis, u8, i64, u64, Event)> = Vec::new();
    for r in &reports {
        events.push((r.at, 0, r.id, 0, Event::Report(r)));
    }
    for log in logs.values() {
        // What the engine did by itself (intake's filing and dispatch of trusted reports,
        // escalations, closing) it does again by itself.
        for e in log
            .iter()
            .filter(|e| e.role != cityos_core::Role::System && action_of(e).is_some())
        {
            events.push((e.at, 1, e.case_id, e.seq, Event::Act(e)));
        }
    }
    events.sort_by_key(|(at, k, id, seq, _)| (*at, *k, *id, *seq));
    let mut scratch = SqliteStore::in_memory().map_err(|e| e.to_string())?;
    // The scratch store is written by the replay and read once at its end (the cohort's
    // folds by creation, the citizen cases by creation, cases by id, each case's last log
    // entry): the secondary indexes that serve the lists, the stream and the statistics
    // only slow its writes down, so they go.
    scratch
        .connection()
        .execute_batch(SCRATCH_DROPPED_INDEXES)
        .map_err(|e| e.to_string())?;
    let mut eng = candidate
        .engine(Box::new(scratch))
        .map_err(|e| e.to_string())?;
    // original case → the scratch case its first report became; the original lead.
    let mut map: HashMap<i64, i64> = HashMap::new();
    let mut lead: HashMap<i64, String> = HashMap::new();
    // The requests are decided one by one (each sees what the ones before it did, as
    // separate requests would) into one batch of up to GROUP requests, written in one
    // transaction: a case acted on several times within the group is serialised, its log
    // chained and its fold stepped once, not once per action.
    let mut batch = eng.begin();
    let (mut actions, mut refused) = (0usize, 0usize);
    let tick_every = 5 * MINUTE;
    let mut next_tick = from + tick_every;
    let flush = |eng: &mut cityos_engine::Engine,
                 batch: &mut cityos_engine::engine::Prepared|
     -> Result<(), String> {
        let mut p = std::mem::replace(batch, eng.begin());
        eng.seal(&mut p);
        if p.writes() {
            p.commit(eng.store()).map_err(|e| e.to_string())?;
        }
        eng.committed(p.seq);
        Ok(())
    };
    for (at, _, _, _, ev) in &events {
        while next_tick <= *at {
            eng.add(&mut batch, Request::Tick { now: next_tick });
            next_tick += tick_every;
        }
        match ev {
            Event::Report(r) => {
                let answer = eng.add(
                    &mut batch,
                    Request::Report(NewReport {
                        channel: r.channel,
                        category: r.category.clone(),
                        lon: r.lon,
                        lat: r.lat,
                        text: r.text.clone(),
                        contact: r.contact.clone(),
                        at: r.at,
                        media: Vec::new(),
                        priority: None,
                        playbook: None,
                        suggestion: None,
                    }),
                );
                if let Ok(Response::Intake(o)) = answer {
                    map.entry(r.case_id).or_insert(o.case.id);
                }
            }
            Event::Act(e) => {
                // The original lead before this entry (for a department's share).
                let orig_lead = lead.get(&e.case_id).cloned();
                for c in &e.changes {
                    match c {
                        Change::TaskAdded {
                            department,
                            lead: true,
                        } => {
                            lead.insert(e.case_id, department.clone());
                        }
                        Change::TasksCleared => {
                            lead.remove(&e.case_id);
                        }
                        _ => {}
                    }
                }
                let Some(&id) = map.get(&e.case_id) else {
                    continue;
                };
                let Some(action) = action_of(e) else { continue };
                actions += 1;
                let needs_department = matches!(
                    action,
                    Action::Acknowledge
                        | Action::Start
                        | Action::Handle
                        | Action::Return { .. }
                        | Action::RequestPostponement { .. }
                );
                let department = if needs_department {
                    let orig = e
                        .changes
                        .iter()
                        .find_map(|c| match c {
                            Change::TaskState { department, .. } => Some(department.clone()),
                            _ => None,
                        })
                        .or(orig_lead.clone());
                    let was_lead = orig.is_some() && orig == orig_lead;
                    let case = eng.case(id).map_err(|e| e.to_string())?;
                    // The same department when it has a task under the new rules, else
                    // the task of the same share (lead or assisting) in a state to act.
                    let fits = |s: TaskState| match action {
                        Action::Acknowledge => s == TaskState::Dispatched,
                        Action::Start => s == TaskState::Acknowledged,
                        Action::Handle | Action::RequestPostponement { .. } => {
                            matches!(s, TaskState::Acknowledged | TaskState::InProgress)
                        }
                        _ => matches!(s, TaskState::Dispatched | TaskState::Acknowledged),
                    };
                    let pick = case.and_then(|c| {
                        c.tasks
                            .iter()
                            .find(|t| orig.as_deref() == Some(t.department.as_str()))
                            .or_else(|| {
                                c.tasks.iter().find(|t| t.lead == was_lead && fits(t.state))
                            })
                            .map(|t| t.department.clone())
                    });
                    match pick {
                        Some(d) => Some(d),
                        None => {
                            refused += 1;
                            if std::env::var("CITYOS_WHATIF_DEBUG").is_ok() {
                                eprintln!("refused {} {}: no task", e.action, e.case_id);
                            }
                            continue;
                        }
                    }
                } else {
                    None
                };
                let mut cmd = Command::new(
                    action,
                    Actor {
                        id: e.actor.clone(),
                        role: e.role,
                        department,
                        scope: None,
                    },
                );
                cmd.note = if e.note.trim().is_empty() {
                    "（回放）".into()
                } else {
                    e.note.clone()
                };
                cmd.attachments = e.attachments.clone();
                let answer = eng.add(
                    &mut batch,
                    Request::Transition {
                        case: id,
                        command: cmd,
                        now: e.at,
                    },
                );
                if let Err(err) = answer {
                    refused += 1;
                    if std::env::var("CITYOS_WHATIF_DEBUG").is_ok() {
                        eprintln!("refused {} {}: {:?}", e.action, e.case_id, err);
                    }
                }
            }
        }
        if batch.requests.len() >= GROUP {
            flush(&mut eng, &mut batch)?;
        }
    }
    while next_tick <= to {
        eng.add(&mut batch, Request::Tick { now: next_tick });
        next_tick += tick_every;
    }
    flush(&mut eng, &mut batch)?;
    let facts = cityos_server::evaluation::load(eng.store(), &candidate.calendar, from, to, to)
        .map_err(|e| e.to_string())?;
    Ok((facts, reports.len(), actions, refused))
}

/// Requests decided into one batch and committed together in the scratch store (in
/// memory: nothing to fsync). The bigger the group, the more of a case's actions share
/// one write: 16,384 requests span about a day of a busy month's events.
const GROUP: usize = 16_384;

/// The scratch store's indexes the replay does not read.
const SCRATCH_DROPPED_INDEXES: &str = "DROP INDEX IF EXISTS cases_community; DROP INDEX IF EXISTS cases_grid; DROP INDEX IF EXISTS cases_updated; DROP INDEX IF EXISTS cases_due_key; DROP INDEX IF EXISTS cases_sub_due; DROP INDEX IF EXISTS cases_state_key; DROP INDEX IF EXISTS cases_sub_created; DROP INDEX IF EXISTS case_log_gseq; DROP INDEX IF EXISTS tasks_department; DROP INDEX IF EXISTS reports_at;";

/// The measures compared side by side.
pub const COMPARED: [Measure; 7] = [
    Measure::Received,
    Measure::AckOnTime,
    Measure::HandleOnTime,
    Measure::CloseOnTime,
    Measure::OverdueEver,
    Measure::Escalations,
    Measure::ReturnRate,
];

fn fig_json(f: &Figures) -> Value {
    Value::Object(
        COMPARED
            .iter()
            .map(|m| {
                let v = f.get(*m);
                (
                    m.code().to_string(),
                    json!({"value": v.value, "samples": v.samples}),
                )
            })
            .collect(),
    )
}

/// The comparison as JSON: the district and every department on either side.
pub fn to_json(w: &WhatIf, cfg: &Config) -> Value {
    let district = cfg.territory.region(cfg.territory.root()).code.clone();
    let side = |f: &[CaseFacts], dim: Dim| figures(f, dim, &district);
    let (ad, bd, wd) = (
        side(&w.actual, Dim::District),
        side(&w.baseline, Dim::District),
        side(&w.whatif, Dim::District),
    );
    let (a, base, b) = (
        side(&w.actual, Dim::Department),
        side(&w.baseline, Dim::Department),
        side(&w.whatif, Dim::Department),
    );
    let mut units: Vec<&String> = a.keys().chain(b.keys()).collect();
    units.sort();
    units.dedup();
    let empty = Figures::default();
    json!({
        "from": cityos_core::time::format_rfc3339(w.from), "to": cityos_core::time::format_rfc3339(w.to),
        "reports": w.reports, "actions": w.actions, "refused": w.refused,
        "district": {"actual": fig_json(ad.get(&district).unwrap_or(&empty)), "baseline": fig_json(bd.get(&district).unwrap_or(&empty)), "whatif": fig_json(wd.get(&district).unwrap_or(&empty))},
        "departments": units.iter().map(|u| json!({
            "code": u, "name_zh": cfg.taxonomy.department(u).map(|d| d.name_zh.clone()),
            "actual": fig_json(a.get(*u).unwrap_or(&empty)), "baseline": fig_json(base.get(*u).unwrap_or(&empty)), "whatif": fig_json(b.get(*u).unwrap_or(&empty)),
        })).collect::<Vec<_>>(),
    })
}

fn cell(f: &Value, m: Measure) -> String {
    let v = &f[m.code()]["value"];
    match (v.as_f64(), m.kind()) {
        (None, _) => "—".into(),
        (Some(x), cityos_core::evaluation::measures::Kind::Rate) => format!("{:.1}%", x * 100.0),
        (Some(x), _) => format!("{x}"),
    }
}

/// The comparison as a table: each measure as actual | replayed under the current rules →
/// under the candidate rules.
pub fn table(j: &Value) -> String {
    let mut o = format!(
        "what-if {} … {}: {} reports, {} staff actions repeated ({} refused under the candidate rules)\neach cell: what happened | replayed under the current rules → under the candidate rules\n",
        j["from"].as_str().unwrap_or(""),
        j["to"].as_str().unwrap_or(""),
        j["reports"],
        j["actions"],
        j["refused"]
    );
    o.push_str(&format!("{:<40}", "unit"));
    for m in COMPARED {
        o.push_str(&format!(" {:>26}", m.code()));
    }
    o.push('\n');
    let row = |o: &mut String, name: &str, v: &Value| {
        o.push_str(&format!(
            "{:<40}",
            name.chars().take(38).collect::<String>()
        ));
        for m in COMPARED {
            o.push_str(&format!(
                " {:>26}",
                format!(
                    "{} | {} → {}",
                    cell(&v["actual"], m),
                    cell(&v["baseline"], m),
                    cell(&v["whatif"], m)
                )
            ));
        }
        o.push('\n');
    };
    row(&mut o, "district", &j["district"]);
    for d in j["departments"].as_array().into_iter().flatten() {
        let name = d["name_zh"]
            .as_str()
            .unwrap_or(d["code"].as_str().unwrap_or(""));
        row(
            &mut o,
            &format!("{} {}", d["code"].as_str().unwrap_or(""), name),
            d,
        );
    }
    o
}

/// What `cityos whatif` is asked for.
pub struct Options {
    pub from: String,
    pub to: String,
    pub taxonomy: std::path::PathBuf,
    pub calendar: Option<std::path::PathBuf>,
    pub db: Option<String>,
    pub data: std::path::PathBuf,
    pub json: bool,
}

/// `cityos whatif`: loads the candidate rules (every problem named), opens the store,
/// replays and prints the comparison (a table, or JSON with `--json`).
pub fn run(o: Options) -> Result<(), String> {
    use cityos_core::time::Date;
    let day = |s: &str, what: &str| {
        Date::parse(s)
            .filter(|_| s.len() == 10)
            .ok_or_else(|| format!("--{what} {s:?} is not a date (YYYY-MM-DD)"))
    };
    let (first, last) = (day(&o.from, "from")?, day(&o.to, "to")?);
    if last < first {
        return Err(format!(
            "the period {}..{} ends before it starts",
            o.from, o.to
        ));
    }
    let (from, to) = (first.local_midnight(), last.succ().local_midnight());
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let taxonomy = read(&o.taxonomy)?;
    let calendar = match &o.calendar {
        Some(p) => read(p)?,
        None => cityos_engine::demo::CALENDAR_CSV.to_string(),
    };
    let actual = Config::xuhui();
    let candidate =
        Config::from_texts(cityos_engine::demo::TERRITORY_GEOJSON, &taxonomy, &calendar).map_err(
            |e| {
                format!(
                    "the candidate rules do not load ({}): {e}",
                    o.taxonomy.display()
                )
            },
        )?;
    let url = match &o.db {
        Some(u) => u.clone(),
        None => o.data.join("cityos.db").display().to_string(),
    };
    if o.db.is_none() && !o.data.join("cityos.db").exists() {
        return Err(format!("no store at {url} (give --data DIR or --db URL)"));
    }
    let mut store = cityos_engine::open_store(&url).map_err(|e| e.to_string())?;
    let w = replay(store.as_mut(), &actual, &candidate, from, to)?;
    let j = to_json(&w, &candidate);
    if o.json {
        println!("{j}");
    } else {
        print!("{}", table(&j));
    }
    Ok(())
}

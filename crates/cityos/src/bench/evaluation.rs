//! `cityos bench evaluation`: a month's evaluation (考核评价, issue 17) over a store of many
//! cases, and a what-if replay of many reports.
//!
//! The store (SQLite, kept in `--dir` or a temporary directory) is filled once with
//! `--cases` reports spread evenly over the `--months` months ending with November 2026
//! (one by default) through the real engine — decided one by one into groups of 16,384
//! requests (`Engine::begin`/`add`/`seal`), so a case's whole history is written once —,
//! each case then taken through the loop by staff — filed, dispatched, acknowledged;
//! seven in ten handled, verified and closed, some late; a few rated — so the logs look
//! like a district's. `month_s` times what `GET /api/v1/evaluation?period=…` does for
//! the middle month of the fill (2026-11 for one month, 2026-06 for twelve): the cohort's
//! kept folds read, repeats marked, every dimension figured, the departments scored and
//! ranked. `whatif_s` times one replay of that month's first `--whatif-reports` reports'
//! days under the current rules (`cityos whatif`'s work for one side). The last line
//! with `--json`:
//! `{"bench":"evaluation","cases":…,"month_s":…,"whatif_reports":…,"whatif_s":…}`.

use cityos_core::case::Channel;
use cityos_core::evaluation::measures::{figures, Dim};
use cityos_core::evaluation::Period;
use cityos_core::rng::Rng;
use cityos_core::time::{local, Date, Millis, HOUR, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::Role;
use cityos_engine::config::Config;
use cityos_engine::engine::{Prepared, Request, Response};
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use cityos_engine::Store;
use std::path::PathBuf;
use std::time::Instant;

/// This process's CPU time (user + system) in seconds, from `/proc/self/stat` (Linux;
/// 0 elsewhere): on a shared machine the wall clock says little, the CPU time more.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let (u, k): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}

fn actor(role: Role, department: Option<String>) -> Actor {
    Actor {
        id: format!("bench-{}", role.as_str()),
        role,
        department,
        scope: None,
    }
}

/// Requests decided into one batch of the fill and committed together: a case's whole
/// history (its report and the staff's actions, decided one after the other) is written
/// once, not once per action.
const GROUP: usize = 16_384;

fn flush(e: &mut cityos_engine::Engine, batch: &mut Prepared) -> Result<(), String> {
    let mut p = std::mem::replace(batch, e.begin());
    e.seal(&mut p);
    if p.writes() {
        p.commit(e.store()).map_err(|e| e.to_string())?;
    }
    e.committed(p.seq);
    Ok(())
}

/// The first day of the fill: `months` calendar months ending with November 2026.
fn fill_start(months: u32) -> Date {
    let m0 = 2026 * 12 + 10 - (months.max(1) as i32 - 1);
    Date::new(m0 / 12, (m0 % 12 + 1) as u8, 1).expect("a month's first day")
}

/// The month evaluated: the middle one of the fill (November 2026 for one month).
fn middle_month(months: u32) -> String {
    let m = 2026 * 12 + 10 - (months.max(1) as i32 - 1) + months.max(1) as i32 / 2;
    format!("{}-{:02}", m / 12, m % 12 + 1)
}

/// Fills the store with `n` reports spread evenly over the `months` months ending with
/// November 2026, each case taken through the loop by staff right after its report.
fn fill(e: &mut cityos_engine::Engine, cfg: &Config, n: usize, months: u32) -> Result<(), String> {
    let cats: Vec<_> = cfg
        .taxonomy
        .categories
        .iter()
        .filter(|c| !c.group && c.code != "triage")
        .collect();
    let pts = super::points(cfg, 20_000, 5);
    let mut rng = Rng::new(17);
    let start = local(fill_start(months), 0, 0);
    let span = local(Date::new(2026, 12, 1).expect("date"), 0, 0) - start;
    let mut batch = e.begin();
    let officer = actor(Role::DistrictOfficer, None);
    for i in 0..n {
        let at = start + (i as Millis) * span / n as Millis;
        let cat = cats[rng.below(cats.len() as u64) as usize];
        let p = pts[rng.below(pts.len() as u64) as usize];
        let channel = if rng.chance(0.5) {
            Channel::Citizen
        } else {
            Channel::Inspector
        };
        let created = match e.add(
            &mut batch,
            Request::Report(NewReport {
                channel,
                category: cat.code.clone(),
                lon: p[0],
                lat: p[1],
                text: format!("{}（基准 {i}）", cat.name_zh),
                contact: None,
                at,
                media: Vec::new(),
                priority: None,
                playbook: None,
                suggestion: None,
            }),
        ) {
            Ok(Response::Intake(o)) if !o.merged => Some(o.case.id),
            _ => None,
        };
        if let Some(id) = created {
            let mut t = at + 10 * MINUTE;
            let act = |e: &mut cityos_engine::Engine,
                       batch: &mut Prepared,
                       a: Action,
                       who: Actor,
                       t: Millis| {
                let mut c = Command::new(a, who);
                c.note = "基准".into();
                c.attachments = vec!["bench.jpg".into()];
                e.add(
                    batch,
                    Request::Transition {
                        case: id,
                        command: c,
                        now: t,
                    },
                );
            };
            let state = e.case(id).ok().flatten().map(|c| c.state);
            if state == Some(cityos_core::State::Reported) {
                act(e, &mut batch, Action::File, officer.clone(), t);
                t += 20 * MINUTE;
                act(
                    e,
                    &mut batch,
                    Action::Dispatch {
                        departments: vec![],
                    },
                    officer.clone(),
                    t,
                );
            }
            let case = e.case(id).ok().flatten();
            if let Some(c) = case.filter(|c| c.state == cityos_core::State::Dispatched) {
                t += (rng.below(6) as Millis + 1) * HOUR;
                for task in &c.tasks {
                    act(
                        e,
                        &mut batch,
                        Action::Acknowledge,
                        actor(Role::Handler, Some(task.department.clone())),
                        t,
                    );
                }
                if rng.chance(0.7) {
                    t += (rng.below(72) as Millis + 1) * HOUR;
                    for task in &c.tasks {
                        act(
                            e,
                            &mut batch,
                            Action::Handle,
                            actor(Role::Handler, Some(task.department.clone())),
                            t,
                        );
                    }
                    t += 3 * HOUR;
                    act(
                        e,
                        &mut batch,
                        Action::Verify,
                        actor(Role::Inspector, None),
                        t,
                    );
                    t += HOUR;
                    act(e, &mut batch, Action::Close, officer.clone(), t);
                    if channel == Channel::Citizen && rng.chance(0.4) {
                        act(
                            e,
                            &mut batch,
                            Action::Evaluate {
                                score: 1 + rng.below(5) as u8,
                                comment: String::new(),
                            },
                            officer.clone(),
                            t + HOUR,
                        );
                    }
                }
            }
        }
        if batch.requests.len() >= GROUP {
            flush(e, &mut batch)?;
        }
        if (i + 1).is_multiple_of(100_000) {
            eprintln!("  filled {} reports", i + 1);
        }
    }
    flush(e, &mut batch)?;
    // The timer's escalations up to the end of the fill.
    let mut t = start;
    while t <= start + span {
        e.add(&mut batch, Request::Tick { now: t });
        t += HOUR;
        if batch.requests.len() >= 256 {
            flush(e, &mut batch)?;
        }
    }
    flush(e, &mut batch)
}

pub fn evaluation(
    cases: usize,
    months: u32,
    whatif_reports: usize,
    dir: Option<PathBuf>,
    json: bool,
) -> Result<(), String> {
    let cfg = Config::xuhui();
    let (dir, keep) = match dir {
        Some(d) => (d, true),
        None => (
            std::env::temp_dir().join(format!("cityos-bench-evaluation-{cases}")),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("cityos.db");
    let store = SqliteStore::open(&path, Durability::Normal).map_err(|e| e.to_string())?;
    let mut e = cfg.engine(Box::new(store)).map_err(|e| e.to_string())?;
    let have = e.store().counts().map_err(|e| e.to_string())?.cases as usize;
    if have < cases * 8 / 10 {
        if have > 0 {
            return Err(format!(
                "{} holds {have} cases, not about {cases}: remove it or give another --dir",
                path.display()
            ));
        }
        let t = Instant::now();
        fill(&mut e, &cfg, cases, months)?;
        println!(
            "filled {} with {cases} reports over {months} month(s) in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let stored = e.store().counts().map_err(|e| e.to_string())?.cases as usize;
    let month_name = middle_month(months);
    let month = Period::parse(
        &month_name,
        local(Date::new(2026, 12, 6).expect("date"), 12, 0),
    )
    .map_err(|e| e.to_string())?;
    let now = month.to();
    let scheme = cityos_server::evaluation::parse_scheme(&cfg, cityos_engine::demo::SCORING_TOML)
        .map_err(|e| e.to_string())?;
    let district = cfg.territory.region(cfg.territory.root()).code.clone();
    let store: &mut dyn Store = e.store();
    // A month's evaluation, best of three.
    let mut month_s = f64::MAX;
    let mut month_cpu_s = f64::MAX;
    let mut cohort = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let c0 = cpu_s();
        let facts =
            cityos_server::evaluation::load(store, &cfg.calendar, month.from(), month.to(), now)
                .map_err(|e| e.to_string())?;
        let mut units = 0;
        for dim in Dim::ALL {
            let f = figures(&facts, dim, &district);
            if dim == Dim::Department {
                for v in f.values() {
                    std::hint::black_box(scheme.score(v));
                }
            }
            units += f.len();
        }
        std::hint::black_box(units);
        cohort = facts.len();
        month_s = month_s.min(t.elapsed().as_secs_f64());
        month_cpu_s = month_cpu_s.min(cpu_s() - c0);
    }
    println!(
        "month {month_name}: {cohort} cases of {stored} stored, evaluated in {month_s:.3} s (best of 3; CPU {month_cpu_s:.2} s)"
    );
    // A what-if replay of the first `whatif_reports` reports' days.
    let reports = store
        .cohort_reports(month.from(), month.to())
        .map_err(|e| e.to_string())?;
    let upto = reports
        .get(whatif_reports.min(reports.len()).saturating_sub(1))
        .map_or(month.from(), |r| r.at + 1);
    let t = Instant::now();
    let c0 = cpu_s();
    let (_, replayed, actions, refused) =
        crate::whatif::replay_under(store, &cfg, month.from(), upto)?;
    let whatif_s = t.elapsed().as_secs_f64();
    let whatif_cpu_s = cpu_s() - c0;
    println!("what-if: {replayed} reports and {actions} staff actions ({refused} refused) replayed in {whatif_s:.2} s (CPU {whatif_cpu_s:.2} s)");
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "evaluation", "cases": stored, "month": month_name, "month_cases": cohort, "month_s": (month_s * 1000.0).round() / 1000.0, "month_cpu_s": (month_cpu_s * 100.0).round() / 100.0, "whatif_reports": replayed, "whatif_actions": actions, "whatif_cpu_s": (whatif_cpu_s * 100.0).round() / 100.0, "whatif_s": (whatif_s * 100.0).round() / 100.0})
        );
    }
    Ok(())
}

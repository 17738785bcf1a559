//! Store stories — evaluation (考核评价, issue 17): over a random history, the measures
//! computed from the folds the store keeps per case (`EvaluationStore::cohort_folds`,
//! written in the batch transactions; each checked equal to a fresh fold of the case's
//! whole log by `cityos_core::evaluation`) agree with an independent count: the stored projections'
//! deadlines, the log's actions and actors, a brute-force repeat search — for every
//! dimension, unit and measure, for the whole history and for a period cut inside it.

use super::*;
use cityos_core::case::{Case, Change, LogEntry};
use cityos_core::evaluation::measures::{
    distance_m, facts_of, figures, fold_of, mark_repeats, p90, CaseFold,
};
use cityos_core::evaluation::{Dim, Measure};
use cityos_core::taxonomy::Step;
use cityos_core::time::DAY;
use std::collections::BTreeMap;

type Key = (Dim, String, Measure);

#[derive(Default)]
struct Oracle {
    sums: BTreeMap<Key, (f64, u64)>,
    hours: BTreeMap<(Dim, String), Vec<f64>>,
}

impl Oracle {
    fn add(&mut self, dim: Dim, unit: &str, m: Measure, v: f64) {
        let e = self
            .sums
            .entry((dim, unit.to_string(), m))
            .or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
        if m == Measure::HandleHoursP90 {
            self.hours
                .entry((dim, unit.to_string()))
                .or_default()
                .push(v);
        }
    }
}

/// The lead department after entry `i`, read from the actions: a dispatch names it, a
/// lead's return (the case goes to `returned`) or a reopen clears it.
fn lead_after(log: &[LogEntry], i: usize) -> Option<String> {
    let mut lead = None;
    for e in &log[..=i] {
        match e.action.as_str() {
            "dispatch" => {
                lead = e.changes.iter().find_map(|c| match c {
                    Change::TaskAdded {
                        department,
                        lead: true,
                    } => Some(department.clone()),
                    _ => None,
                })
            }
            "return" if e.to == State::Returned => lead = None,
            "reopen" => lead = None,
            _ => {}
        }
    }
    lead
}

/// The index of the entry that met a deadline of `step` at `at`.
fn meeting(log: &[LogEntry], step: Step, at: Millis) -> usize {
    log.iter()
        .position(|e| {
            e.at == at
                && e.changes
                    .iter()
                    .any(|c| matches!(c, Change::DeadlineMet { step: s } if *s == step))
        })
        .expect("a met deadline has its entry")
}

fn b(x: bool) -> f64 {
    if x {
        1.0
    } else {
        0.0
    }
}

/// Counts one case into the oracle, independently of `cityos_core::evaluation`.
fn count(
    o: &mut Oracle,
    c: &Case,
    log: &[LogEntry],
    all: &[Case],
    cal: &cityos_core::WorkCalendar,
    now: Millis,
    district: &str,
) {
    let running = c.state.is_open() && c.suspended.is_none();
    let first_met = |step: Step| {
        c.deadlines
            .iter()
            .find(|d| d.step == step && d.met.is_some())
    };
    let unmet_passed = |step: Step| {
        running
            && c.deadlines
                .iter()
                .any(|d| d.step == step && d.met.is_none() && d.due < now)
    };
    let last = log.len() - 1;
    // (on time, department) of the acknowledgement and the handling.
    let judge = |step: Step| -> Option<(bool, Option<String>, Option<Millis>)> {
        match first_met(step) {
            Some(d) => {
                let met = d.met.unwrap();
                Some((
                    met <= d.due,
                    lead_after(log, meeting(log, step, met)),
                    Some(met),
                ))
            }
            None if unmet_passed(step) => Some((false, lead_after(log, last), None)),
            None => None,
        }
    };
    let ack = judge(Step::Acknowledge);
    let handle = judge(Step::Handle);
    let dispatched = log.iter().find(|e| e.action == "dispatch").map(|e| e.at);
    let hours = match (dispatched, handle.as_ref().and_then(|h| h.2)) {
        (Some(a), Some(h)) => Some(cal.working_between(a, h) as f64 / HOUR as f64),
        _ => None,
    };
    let overdue_now = running && c.deadlines.iter().any(|d| d.met.is_none() && d.due < now);
    let overdue_ever = overdue_now
        || c.deadlines.iter().any(|d| d.met.is_some_and(|m| m > d.due))
        || log
            .iter()
            .flat_map(|e| &e.changes)
            .any(|ch| matches!(ch, Change::Overdue { overdue: true }));
    let closed = log.iter().any(|e| e.to == State::Closed);
    let handled = first_met(Step::Handle).is_some();
    let grants = log
        .iter()
        .filter(|e| e.action == "grant_postponement")
        .count();
    let escalations: Vec<String> = log
        .iter()
        .flat_map(|e| &e.changes)
        .filter_map(|ch| match ch {
            Change::Escalated { to, .. } => Some(to.clone()),
            _ => None,
        })
        .collect();
    let repeat = c.channel == Channel::Citizen
        && all.iter().any(|x| {
            x.id != c.id
                && x.channel == Channel::Citizen
                && x.category == c.category
                && x.created_at >= c.created_at - 30 * DAY
                && (x.created_at < c.created_at || (x.created_at == c.created_at && x.id < c.id))
                && distance_m((x.lon, x.lat), (c.lon, c.lat)) <= 100.0
        });
    let mut leads: Vec<String> = Vec::new();
    for (i, e) in log.iter().enumerate() {
        if e.action == "dispatch" {
            if let Some(l) = lead_after(log, i) {
                leads.retain(|x| x != &l);
                leads.push(l);
            }
        }
    }
    let returners: Vec<String> = log
        .iter()
        .filter(|e| e.action == "return" && e.to == State::Returned)
        .map(|e| e.actor.strip_prefix("h-").unwrap().to_string())
        .collect();
    let whole = |o: &mut Oracle, dim: Dim, u: &str| {
        if closed {
            o.add(dim, u, Measure::CloseOnTime, b(!overdue_ever));
        }
        if handled {
            o.add(dim, u, Measure::ReworkRate, b(c.reworks > 0));
        }
        if grants > 0 {
            o.add(dim, u, Measure::Postponements, grants as f64);
        }
        if overdue_now {
            o.add(dim, u, Measure::OverdueNow, 1.0);
        }
        if overdue_ever {
            o.add(dim, u, Measure::OverdueEver, 1.0);
        }
        if c.channel == Channel::Citizen {
            o.add(dim, u, Measure::RepeatRate, b(repeat));
        }
        if let Some(e) = &c.evaluation {
            o.add(dim, u, Measure::Satisfaction, b(e.score >= 4));
        }
    };
    // The departments.
    for d in &leads {
        o.add(Dim::Department, d, Measure::Received, 1.0);
        o.add(
            Dim::Department,
            d,
            Measure::ReturnRate,
            b(returners.contains(d)),
        );
    }
    if let Some((t, Some(d), _)) = &ack {
        o.add(Dim::Department, d, Measure::AckOnTime, b(*t));
    }
    if let Some((t, Some(d), _)) = &handle {
        o.add(Dim::Department, d, Measure::HandleOnTime, b(*t));
        if let Some(h) = hours {
            o.add(Dim::Department, d, Measure::HandleHoursMean, h);
            o.add(Dim::Department, d, Measure::HandleHoursP90, h);
        }
    }
    if let Some(d) = leads.last() {
        whole(o, Dim::Department, d);
    }
    for to in &escalations {
        o.add(Dim::Department, to, Measure::Escalations, 1.0);
    }
    // One unit per case in every other dimension.
    for (dim, unit) in [
        (Dim::District, Some(district.to_string())),
        (Dim::Subdistrict, c.regions.subdistrict.clone()),
        (Dim::Community, c.regions.community.clone()),
        (Dim::Category, Some(c.category.clone())),
        (Dim::Domain, Some(c.domain.as_str().to_string())),
    ] {
        let Some(u) = unit else { continue };
        o.add(dim, &u, Measure::Received, 1.0);
        o.add(dim, &u, Measure::ReturnRate, b(!returners.is_empty()));
        if let Some((t, _, _)) = &ack {
            o.add(dim, &u, Measure::AckOnTime, b(*t));
        }
        if let Some((t, _, _)) = &handle {
            o.add(dim, &u, Measure::HandleOnTime, b(*t));
        }
        if let Some(h) = hours {
            o.add(dim, &u, Measure::HandleHoursMean, h);
            o.add(dim, &u, Measure::HandleHoursP90, h);
        }
        whole(o, dim, &u);
        if !escalations.is_empty() {
            o.add(dim, &u, Measure::Escalations, escalations.len() as f64);
        }
    }
}

/// A random history: reports over three days, then random actions by plausible actors
/// with time jumps that let some deadlines pass, and the escalation timer now and then.
fn history(e: &mut Engine, seed: u64) -> Millis {
    history_by(e, seed, &mut |e, r| {
        e.execute(vec![r]).pop().expect("one answer")
    })
}

type Run<'a> = dyn FnMut(&mut Engine, Request) -> Result<Response, EngineError> + 'a;

/// [`history`], each request run by `run`.
fn history_by(e: &mut Engine, seed: u64, run: &mut Run<'_>) -> Millis {
    let mut rng = Rng::new(seed);
    let cats: Vec<String> = e
        .taxonomy()
        .categories
        .iter()
        .filter(|c| !c.group)
        .map(|c| c.code.clone())
        .take(12)
        .collect();
    let mut now = t0();
    let mut ids = Vec::new();
    for i in 0..90 {
        now += 40 * MINUTE;
        let cat = &cats[rng.below(cats.len() as u64) as usize];
        let ch = [
            Channel::Citizen,
            Channel::Citizen,
            Channel::Inspector,
            Channel::Sensor,
        ][i % 4];
        // Few places, so that repeats (same place and category) happen.
        let o = match run(
            e,
            Request::Report(report(cat, spot(rng.below(6) as usize), ch, now)),
        ) {
            Ok(Response::Intake(o)) => o,
            other => panic!("a report is taken in: {other:?}"),
        };
        if !ids.contains(&o.case.id) {
            ids.push(o.case.id);
        }
    }
    let actions = [
        Action::File,
        Action::Dispatch {
            departments: vec![],
        },
        Action::Acknowledge,
        Action::Start,
        Action::Handle,
        Action::Verify,
        Action::RejectVerification,
        Action::Close,
        Action::Return {
            reason: "错派".into(),
        },
        Action::RequestPostponement {
            extra: "1wd".into(),
            reason: "需协调".into(),
        },
        Action::GrantPostponement,
        Action::RefusePostponement,
        Action::Evaluate {
            score: 0,
            comment: String::new(),
        },
        Action::Suspend {
            reason: "挂账".into(),
        },
        Action::Resume,
    ];
    for _ in 0..2500 {
        now += if rng.chance(0.05) {
            rng.below(10) as Millis * HOUR
        } else {
            rng.below(20) as Millis * MINUTE
        };
        let id = ids[rng.below(ids.len() as u64) as usize];
        let c = e.case(id).unwrap().unwrap();
        // Mostly the natural next step, so that cases get through; otherwise anything.
        let natural = match c.state {
            State::Reported => Some(0),
            State::Filed | State::Returned => Some(1),
            State::Dispatched => Some(2),
            State::Acknowledged | State::InProgress | State::Rework => Some(4),
            State::Handled => Some(5),
            State::Verified => Some(7),
            State::Closed => Some(12),
            State::Suspended => Some(14),
            _ => None,
        };
        let pick = match natural {
            Some(n) if rng.chance(0.6) => n,
            _ => rng.below(actions.len() as u64) as usize,
        };
        let mut a = actions[pick].clone();
        if let Action::Evaluate { score, .. } = &mut a {
            *score = 1 + rng.below(5) as u8;
        }
        let actor = match &a {
            Action::Acknowledge
            | Action::Start
            | Action::Handle
            | Action::Return { .. }
            | Action::RequestPostponement { .. } => {
                match c.tasks.get(rng.below(c.tasks.len().max(1) as u64) as usize) {
                    Some(t) => handler(&t.department),
                    None => continue,
                }
            }
            Action::Verify | Action::RejectVerification => inspector(),
            _ => Actor {
                scope: None,
                ..officer()
            },
        };
        let _ = run(
            e,
            Request::Transition {
                case: id,
                command: cmd(a, actor),
                now,
            },
        );
        if rng.chance(0.05) {
            run(e, Request::Tick { now }).unwrap();
        }
    }
    now
}

fn check(store: &mut dyn Store, from: Millis, to: Millis, now: Millis) -> usize {
    let c = config();
    let cal = &c.calendar;
    let district = c.territory.region(c.territory.root()).code.clone();
    // Under test: the cohort's folds kept by the store in the batch transactions
    // (`case_facts`), each equal to a fresh fold of the case's whole log.
    let mut kept = Vec::new();
    store
        .cohort_folds(from, to, &mut |id, text| kept.push((id, text)))
        .unwrap();
    let mut fresh = Vec::new();
    store
        .cohort_logs(from, to, &mut |log| {
            let f = fold_of(&log).unwrap();
            assert_eq!(
                Some(f.facts(cal, now)),
                facts_of(&log, cal, now),
                "facts_of is the fold's facts"
            );
            fresh.push(f)
        })
        .unwrap();
    assert_eq!(
        kept.len(),
        fresh.len(),
        "a fold for every case of the cohort"
    );
    let mut facts = Vec::new();
    for ((id, text), fresh) in kept.iter().zip(&fresh) {
        let text = text.as_deref().expect("every case keeps its fold");
        let k: CaseFold = serde_json::from_str(text).expect("a kept fold parses");
        assert_eq!(k.id(), *id);
        assert_eq!(
            &k, fresh,
            "case {id}: the kept fold equals a fresh fold of its log"
        );
        facts.push(k.facts(cal, now));
    }
    let earlier = store.citizen_cases(from - 30 * DAY, to).unwrap();
    mark_repeats(&mut facts, &earlier);
    // The oracle: every case and its log, one by one.
    let all = store.load_all_cases().unwrap();
    let mut o = Oracle::default();
    let mut n = 0;
    for x in all
        .iter()
        .filter(|x| x.created_at >= from && x.created_at < to)
    {
        let log = store.load_log(x.id).unwrap();
        count(&mut o, x, &log, &all, cal, now, &district);
        n += 1;
    }
    assert_eq!(facts.len(), n, "the cohort's size");
    for dim in Dim::ALL {
        let got = figures(&facts, dim, &district);
        let units: std::collections::BTreeSet<&String> =
            o.sums.keys().filter(|k| k.0 == dim).map(|k| &k.1).collect();
        assert_eq!(
            got.keys().collect::<std::collections::BTreeSet<_>>(),
            units,
            "the units of {dim:?}"
        );
        for (unit, f) in &got {
            for m in Measure::ALL {
                let v = f.get(*m);
                let (sum, k) = o
                    .sums
                    .get(&(dim, unit.clone(), *m))
                    .copied()
                    .unwrap_or((0.0, 0));
                assert_eq!(v.samples, k, "{dim:?} {unit} {}: samples", m.code());
                assert!(
                    (v.numerator - sum).abs() < 1e-9,
                    "{dim:?} {unit} {}: {} ≠ {sum}",
                    m.code(),
                    v.numerator
                );
                if *m == Measure::HandleHoursP90 {
                    let want = o.hours.get(&(dim, unit.clone())).and_then(|h| p90(h));
                    assert_eq!(v.value, want, "{dim:?} {unit} p90");
                }
            }
        }
    }
    n
}

story!(measures_agree_with_an_independent_count);
fn measures_agree_with_an_independent_count(b: &Backend) {
    let mut e = b.engine();
    let now = history(&mut e, 17);
    let store = e.store();
    // The whole history, then a period cut inside it (the second day only).
    let n = check(store, t0() - DAY, now + 1, now);
    assert!(n >= 40, "{n} cases");
    let day2 = local(Date::new(2026, 11, 26).unwrap(), 0, 0);
    let m = check(store, day2, day2 + DAY, now);
    assert!(m > 0 && m < n, "{m} of {n}");
    // The history is rich enough to test something.
    let mut facts = Vec::new();
    store
        .cohort_logs(t0() - DAY, now + 1, &mut |log| {
            facts.push(facts_of(&log, &config().calendar, now).unwrap())
        })
        .unwrap();
    let c = config();
    let district = c.territory.region(c.territory.root()).code.clone();
    let f = figures(&facts, Dim::District, &district);
    let d = f.values().next().unwrap();
    for m in [
        Measure::AckOnTime,
        Measure::HandleOnTime,
        Measure::CloseOnTime,
        Measure::ReturnRate,
        Measure::Satisfaction,
        Measure::OverdueEver,
    ] {
        assert!(d.get(m).samples > 0, "{} never judged", m.code());
    }
}

story!(a_batch_built_request_by_request_writes_what_separate_requests_write);
/// The bulk writers' path (`Engine::begin`, `add`, `seal`: the what-if replay and the
/// benchmark's fill) against the server's: the same random history, once request by
/// request in batches of its own and once decided into groups of random size, leaves the
/// same cases, the same logs (all but the event numbers, given out per group), the same
/// kept folds and so the same measures.
fn a_batch_built_request_by_request_writes_what_separate_requests_write(b: &Backend) {
    let mut one = b.engine();
    let now = history(&mut one, 23);
    let other = match b {
        Backend::Sqlite(_) => Backend::sqlite("grouped"),
        Backend::Postgres { .. } => Backend::postgres("grouped").expect("PostgreSQL"),
    };
    let mut grouped = other.engine();
    let mut rng = Rng::new(5);
    let mut batch = grouped.begin();
    let mut groups = 0;
    let flush = |e: &mut Engine, batch: &mut cityos_engine::engine::Prepared| {
        let mut p = std::mem::replace(batch, e.begin());
        e.seal(&mut p);
        if p.writes() {
            p.commit(e.store()).unwrap();
        }
        e.committed(p.seq);
    };
    let now2 = history_by(&mut grouped, 23, &mut |e, r| {
        let answer = match e.add(&mut batch, r) {
            Ok(r) => Ok(r.clone()),
            Err(err) => Err(EngineError::Invalid(err.to_string())),
        };
        if rng.chance(0.02) {
            flush(e, &mut batch);
            groups += 1;
        }
        answer
    });
    flush(&mut grouped, &mut batch);
    assert_eq!(now, now2);
    assert!(groups > 10, "{groups} groups");
    let (a, b2) = (one.store(), grouped.store());
    let max = a.max_ids().unwrap();
    assert_eq!(max, b2.max_ids().unwrap(), "the same cases and reports");
    assert!(max.0 >= 40, "{max:?}");
    for id in 1..=max.0 {
        let (x, y) = (a.load_case(id).unwrap(), b2.load_case(id).unwrap());
        assert_eq!(x, y, "case {id}");
        assert_eq!(
            a.load_log(id).unwrap(),
            b2.load_log(id).unwrap(),
            "case {id}'s log"
        );
    }
    let folds = |s: &mut dyn Store| {
        let mut v = Vec::new();
        s.cohort_folds(t0() - DAY, now + 1, &mut |id, text| v.push((id, text)))
            .unwrap();
        v
    };
    assert_eq!(folds(a), folds(b2), "the same kept folds");
    assert_eq!(a.counts().unwrap(), b2.counts().unwrap(), "the same counts");
    let n = check(b2, t0() - DAY, now + 1, now);
    assert!(n >= 40, "{n} cases");
}

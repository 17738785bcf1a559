//! The live demo: keeps reports arriving and staff acting in real time through the
//! running service's engine (the same run loop the API uses), so that lists, statistics
//! and escalations move every few seconds.

use cityos_core::case::{Case, Channel, State, TaskState};
use cityos_core::rng::Rng;
use cityos_core::territory::RegionId;
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::{Level, Role};
use cityos_engine::config::Config;
use cityos_engine::engine::Request;
use cityos_engine::runloop::EngineHandle;
use cityos_server::{AppState, Clock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Starts the live simulator; it stops when `stop` is set or the engine stops.
///
/// Many citizens' reports come as text alone (half of those about the demo model's
/// categories, a tenth of the others) (no category; half of them
/// without a position: the text names the community) and are read as the API reads them
/// (`cityos_server::smart::read`), so the demo shows cases routed on a suggestion and
/// cases waiting in the 待分拨 queue.
pub fn start(
    st: AppState,
    clock: Arc<dyn Clock>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> std::thread::JoinHandle<()> {
    let h: EngineHandle = st.0.engine.clone();
    let cfg: Config = st.0.cfg.clone();
    std::thread::Builder::new()
        .name("cityos-live".into())
        .spawn(move || {
            let mut rng = Rng::new(seed);
            let grids: Vec<_> = cfg
                .territory
                .regions()
                .filter(|(_, r)| r.level == Level::Grid)
                .map(|(id, _)| id)
                .collect();
            // The simulated day's category mix (lift cases rare: the demo's lifts are
            // its 60 connected ones, whose faults the scenario packs report).
            let weights: Vec<f64> = cfg
                .taxonomy
                .categories
                .iter()
                .map(|c| crate::simulate::category_weight(&c.code))
                .collect();
            while !stop.load(Ordering::SeqCst) {
                let now = clock.now();
                for _ in 0..1 + rng.below(3) {
                    let cat = &cfg.taxonomy.categories[rng.weighted(&weights)];
                    let g = grids[rng.below(grids.len() as u64) as usize];
                    let p = cfg.territory.interior_point(g);
                    let channel = if !cat.public {
                        Channel::Sensor
                    } else if rng.chance(0.6) {
                        Channel::Citizen
                    } else {
                        Channel::Inspector
                    };
                    let mut r = NewReport {
                        channel,
                        category: cat.code.clone(),
                        lon: p[0] + rng.range_f64(-0.0003, 0.0003),
                        lat: p[1] + rng.range_f64(-0.0003, 0.0003),
                        text: format!("{}（实时演示）", cat.name_zh),
                        contact: (channel == Channel::Citizen)
                            .then(|| format!("1380000{:04}", rng.below(10_000))),
                        at: now,
                        media: Vec::new(),
                        priority: None,
                        playbook: None,
                        suggestion: None,
                    };
                    // Text alone: mostly about what the demo's model knows, now and
                    // then about something it does not (that one waits in triage).
                    let known = cityos_core::classify::generate::DEMO_CATEGORIES
                        .contains(&cat.code.as_str());
                    if channel == Channel::Citizen && rng.chance(if known { 0.5 } else { 0.1 }) {
                        text_only(&st, &mut r, g, &mut rng);
                    }
                    if h.call(Request::Report(r)).is_err() {
                        return;
                    }
                }
                let Ok(open) = h.with(|e| {
                    let mut v: Vec<Case> = e.open_cases().cloned().collect();
                    v.sort_by_key(|c| c.id);
                    v
                }) else {
                    return;
                };
                let picked: Vec<&Case> = open.iter().filter(|_| rng.chance(0.08)).take(6).collect();
                for c in picked {
                    for (action, actor) in next_steps(c, &mut rng) {
                        let mut cmd = Command::new(action, actor);
                        cmd.note = "实时演示".into();
                        let _ = h.call(Request::Transition {
                            case: c.id,
                            command: cmd,
                            now: clock.now(),
                        });
                    }
                }
                for _ in 0..20 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        })
        .expect("spawn live simulator")
}

/// Turns a report into one of text alone: a generated message about its category naming
/// the grid's community, read by the smart room (position kept or left to the text).
fn text_only(st: &AppState, r: &mut NewReport, grid: RegionId, rng: &mut Rng) {
    let cfg = &st.0.cfg;
    let Some(cat) = cfg.taxonomy.category(&r.category) else {
        return;
    };
    let t = &cfg.territory;
    let place = t.region(grid).parent.map(|c| t.region(c).name_zh.clone());
    let text = cityos_core::classify::generate::message(rng, cat, place.as_deref());
    let position = rng.chance(0.5).then_some((r.lon, r.lat));
    if let Ok(x) = cityos_server::smart::read(st, &text, position) {
        r.category = x.category;
        r.lon = x.lon;
        r.lat = x.lat;
        r.priority = x.priority;
        r.suggestion = Some(Box::new(x.suggestion));
        r.text = text;
    }
}

fn officer(c: &Case) -> Actor {
    Actor {
        id: "live-officer".into(),
        role: Role::SubdistrictOfficer,
        department: None,
        scope: c.regions.subdistrict.clone(),
    }
}

fn handler(d: &str) -> Actor {
    Actor {
        id: format!("live-{d}"),
        role: Role::Handler,
        department: Some(d.into()),
        scope: None,
    }
}

/// What the staff would do next on this case.
fn next_steps(c: &Case, rng: &mut Rng) -> Vec<(Action, Actor)> {
    match c.state {
        State::Reported => vec![(Action::File, officer(c))],
        State::Filed | State::Returned => vec![(
            Action::Dispatch {
                departments: vec![],
            },
            officer(c),
        )],
        State::Dispatched | State::Acknowledged | State::InProgress | State::Rework => c
            .tasks
            .iter()
            .filter_map(|t| {
                let a = match t.state {
                    TaskState::Dispatched if t.lead && rng.chance(0.05) => Action::Return {
                        reason: "非本单位职责".into(),
                    },
                    TaskState::Dispatched => Action::Acknowledge,
                    TaskState::Acknowledged if t.lead => Action::Start,
                    TaskState::Acknowledged | TaskState::InProgress => Action::Handle,
                    _ => return None,
                };
                Some((a, handler(&t.department)))
            })
            .collect(),
        State::Handled => {
            let inspector = Actor {
                id: "live-inspector".into(),
                role: Role::Inspector,
                department: None,
                scope: None,
            };
            if c.reworks == 0 && rng.chance(0.1) {
                vec![(Action::RejectVerification, inspector)]
            } else {
                vec![(Action::Verify, inspector)]
            }
        }
        State::Verified => vec![(Action::Close, officer(c))],
        _ => vec![],
    }
}

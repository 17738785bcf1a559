//! `cityos simulate`: one synthetic day of Xuhui through the real engine.
//!
//! A discrete-event simulation on a simulated clock: reports arrive over the day with a
//! diurnal profile and a realistic category and channel mix, spread over the territory's
//! grids with a share of repeat reports of the same problem (which dedup merges); staff
//! and departments act with randomised delays — officers file and dispatch, departments
//! acknowledge, handle (some late, some returning a mis-dispatch, some asking for more
//! time), inspectors verify (some rework), officers close, citizens evaluate; the
//! escalation timer ticks every five simulated minutes. Same seed, same result.

use cityos_core::case::{CaseId, Channel, State, TaskState};
use cityos_core::rng::Rng;
use cityos_core::taxonomy::Step;
use cityos_core::time::{local, Date, Millis, DAY, HOUR, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::{Level, Role};
use cityos_engine::engine::{Engine, EngineError, TransitionOutcome};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Reports over the day (Xuhui: a few thousand a day).
    pub reports: usize,
    pub day: Date,
    /// How long departments keep working after the day's intake ends.
    pub tail_days: u32,
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            reports: 3000,
            day: Date::new(2026, 11, 25).expect("valid date"),
            tail_days: 2,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    FileOrReject,
    Dispatch,
    Acknowledge,
    Start,
    Handle,
    RequestPostponement,
    DecidePostponement,
    Verify,
    Close,
    Evaluate,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Report(usize),
    Act(CaseId, Kind, Option<String>),
    Tick,
}

/// Relative frequency of categories seen by a district centre (higher = more reports).
pub(crate) fn category_weight(code: &str) -> f64 {
    match code {
        "exposed_garbage" | "illegal_parking" | "street_vending" => 8.0,
        "noise" | "shop_encroachment" | "non_motor_parking" => 6.0,
        "road_damage" | "streetlight_fault" | "illegal_construction" => 4.0,
        "food_safety" | "price_complaint" | "property_dispute" => 3.0,
        // The demo district's lifts are its 60 connected ones (the lift-fault rate counts
        // lift cases per 100 of them): a lift case is a rare event there.
        "lift_entrapment" | "lift_fault" => 0.02,
        "gas_alarm" | "waterlogging" | "crowd_overlimit" => 1.0,
        // The 待分拨 queue is where reports without a category land, not a category
        // anyone reports under.
        "triage" => 0.0,
        _ => 1.5,
    }
}

const HOURLY: [f64; 24] = [
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.6, 1.4, 2.4, 3.0, 3.2, 2.8, 2.0, 2.4, 3.0, 3.1, 2.9, 2.4, 1.8,
    1.6, 1.4, 1.1, 0.8, 0.5,
];

/// What happened, for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub reports: usize,
    pub cases: usize,
    pub merged_reports: usize,
    pub refused_reports: usize,
    pub by_state: BTreeMap<String, usize>,
    pub transitions: usize,
    pub skipped_actions: usize,
    pub escalations: usize,
    pub overdue_open: usize,
    pub returns: u32,
    pub reworks: u32,
    pub postponements: usize,
    /// department → (handled, handled on time)
    pub departments: BTreeMap<String, (u32, u32)>,
    /// department code → Chinese name
    pub department_names: BTreeMap<String, String>,
    pub evaluations: u32,
    pub mean_score: f64,
    /// A digest of every stored case (same seed ⇒ same digest).
    pub digest: u64,
}

impl Summary {
    pub fn on_time_rate(&self) -> f64 {
        let (h, o) = self
            .departments
            .values()
            .fold((0, 0), |(h, o), (a, b)| (h + a, o + b));
        if h == 0 {
            0.0
        } else {
            o as f64 / h as f64
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "reports {}  → cases {}  (merged into existing cases: {}, refused: {})",
            self.reports, self.cases, self.merged_reports, self.refused_reports
        )?;
        writeln!(
            f,
            "transitions {}  escalations {}  skipped actions {}",
            self.transitions, self.escalations, self.skipped_actions
        )?;
        writeln!(f, "\ncases by state 案件状态")?;
        for (s, n) in &self.by_state {
            let zh = State::parse(s).map(|x| x.name_zh()).unwrap_or("");
            writeln!(f, "  {s:<14} {zh:<6} {n:>6}")?;
        }
        writeln!(
            f,
            "\nreturns 退单 {}  reworks 返工 {}  postponements 延期 {}  overdue now 超期 {}",
            self.returns, self.reworks, self.postponements, self.overdue_open
        )?;
        writeln!(
            f,
            "evaluations 评价 {}  mean score {:.2}",
            self.evaluations, self.mean_score
        )?;
        writeln!(
            f,
            "\non-time handling by lead department 按时处置率 (overall {:.1}%)",
            100.0 * self.on_time_rate()
        )?;
        let mut depts: Vec<_> = self.departments.iter().collect();
        depts.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        for (d, (h, o)) in depts.iter().take(15) {
            let name = self
                .department_names
                .get(*d)
                .map(String::as_str)
                .unwrap_or("");
            // Chinese characters take two columns on a terminal.
            let pad = 32usize.saturating_sub(name.chars().count() * 2);
            writeln!(
                f,
                "  {name}{:pad$} handled {h:>5}  on time {:>5.1}%  ({d})",
                "",
                100.0 * *o as f64 / (*h).max(1) as f64
            )?;
        }
        if depts.len() > 15 {
            writeln!(f, "  … and {} more departments", depts.len() - 15)?;
        }
        write!(f, "digest {:016x}", self.digest)
    }
}

struct Sim<'e> {
    engine: &'e mut Engine,
    rng: Rng,
    queue: BinaryHeap<Reverse<(Millis, u64, Ev)>>,
    seq: u64,
    reports: Vec<NewReport>,
    speed: HashMap<String, f64>,
    s: Summary,
}

impl Sim<'_> {
    fn at(&mut self, t: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    fn speed(&mut self, dept: &str) -> f64 {
        if let Some(s) = self.speed.get(dept) {
            return *s;
        }
        let h = dept.bytes().fold(1469598103934665603u64, |h, b| {
            (h ^ b as u64).wrapping_mul(1099511628211)
        });
        let s = 0.55 + (h % 1000) as f64 / 1000.0 * 0.8;
        self.speed.insert(dept.to_string(), s);
        s
    }

    fn officer(scope: Option<String>) -> Actor {
        Actor {
            id: "sim-officer".into(),
            role: Role::SubdistrictOfficer,
            department: None,
            scope,
        }
    }

    fn handler(dept: &str) -> Actor {
        Actor {
            id: format!("sim-{dept}"),
            role: Role::Handler,
            department: Some(dept.to_string()),
            scope: None,
        }
    }

    fn act(
        &mut self,
        case: CaseId,
        action: Action,
        actor: Actor,
        note: &str,
        now: Millis,
    ) -> Option<TransitionOutcome> {
        let mut cmd = Command::new(action, actor);
        cmd.note = note.to_string();
        match self.engine.transition(case, cmd, now) {
            Ok(o) => {
                self.s.transitions += 1;
                Some(o)
            }
            Err(EngineError::Store(e)) => panic!("store failed during simulation: {e}"),
            Err(_) => {
                self.s.skipped_actions += 1;
                None
            }
        }
    }

    /// Schedules what departments do after a dispatch.
    fn plan_tasks(&mut self, case: &cityos_core::Case, now: Millis) {
        let span = case
            .deadline(Step::Acknowledge)
            .map(|d| d.due - now)
            .unwrap_or(HOUR)
            .max(10 * MINUTE);
        for t in case
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Dispatched)
        {
            let sp = self.speed(&t.department);
            let delay = (self.rng.exp(0.35 * sp) * span as f64) as Millis + MINUTE;
            self.at(
                now + delay,
                Ev::Act(case.id, Kind::Acknowledge, Some(t.department.clone())),
            );
        }
    }

    fn plan_handle(&mut self, case: &cityos_core::Case, dept: &str, now: Millis, rework: bool) {
        let due = case
            .deadline(Step::Handle)
            .map(|d| d.due)
            .unwrap_or(now + DAY);
        let span = (due - now).max(15 * MINUTE) as f64;
        let sp = self.speed(dept);
        let mean = if rework { 0.3 } else { 0.5 } * sp;
        let delay = (self.rng.exp(mean) * span) as Millis + 5 * MINUTE;
        self.at(
            now + delay,
            Ev::Act(case.id, Kind::Handle, Some(dept.to_string())),
        );
    }

    fn step(&mut self, now: Millis, ev: Ev) {
        match ev {
            Ev::Tick => {
                let fired = self.engine.tick(now).expect("tick");
                self.s.escalations += fired.len();
            }
            Ev::Report(i) => {
                let r = self.reports[i].clone();
                match self.engine.submit(r) {
                    Ok(o) if o.merged => self.s.merged_reports += 1,
                    Ok(o) => {
                        self.s.cases += 1;
                        match o.case.state {
                            State::Reported => {
                                let d = (self.rng.exp(15.0) * MINUTE as f64) as Millis + MINUTE;
                                self.at(now + d, Ev::Act(o.case.id, Kind::FileOrReject, None));
                            }
                            State::Dispatched => self.plan_tasks(&o.case, now),
                            _ => {}
                        }
                    }
                    Err(EngineError::Store(e)) => panic!("store failed during simulation: {e}"),
                    Err(_) => self.s.refused_reports += 1,
                }
            }
            Ev::Act(id, kind, dept) => self.act_kind(id, kind, dept, now),
        }
    }

    fn act_kind(&mut self, id: CaseId, kind: Kind, dept: Option<String>, now: Millis) {
        let Some(case) = self.engine.case(id).ok().flatten() else {
            return;
        };
        let task_department = || dept.expect("task department");
        match kind {
            Kind::FileOrReject => self.file_or_reject(&case, now),
            Kind::Dispatch => self.dispatch(&case, now),
            Kind::Acknowledge => self.acknowledge(&case, task_department(), now),
            Kind::Start => self.start(id, task_department(), now),
            Kind::RequestPostponement => self.request_postponement(id, task_department(), now),
            Kind::DecidePostponement => self.decide_postponement(&case, now),
            Kind::Handle => self.handle(id, task_department(), now),
            Kind::Verify => self.verify(&case, now),
            Kind::Close => self.close(&case, now),
            Kind::Evaluate => self.evaluate(id, now),
        }
    }

    /// The centre files a new report as a case (a few it rejects).
    fn file_or_reject(&mut self, case: &cityos_core::Case, now: Millis) {
        let id = case.id;
        let scope = case.regions.subdistrict.clone();
        if self.rng.chance(0.03) {
            self.act(
                id,
                Action::Reject {
                    reason: "经核实不属于受理范围".into(),
                },
                Self::officer(scope),
                "",
                now,
            );
        } else if self
            .act(id, Action::File, Self::officer(scope), "", now)
            .is_some()
        {
            let d = (self.rng.exp(12.0) * MINUTE as f64) as Millis + MINUTE;
            self.at(now + d, Ev::Act(id, Kind::Dispatch, None));
        }
    }

    /// The centre dispatches by routing (again after a return).
    fn dispatch(&mut self, case: &cityos_core::Case, now: Millis) {
        let id = case.id;
        let scope = case.regions.subdistrict.clone();
        if let Some(o) = self.act(
            id,
            Action::Dispatch {
                departments: vec![],
            },
            Self::officer(scope),
            "",
            now,
        ) {
            self.plan_tasks(&o.case, now);
        }
    }

    /// A department signs for its task, or (the lead, once) returns a mis-dispatch.
    fn acknowledge(&mut self, case: &cityos_core::Case, dept: String, now: Millis) {
        let id = case.id;
        let lead = case.task(&dept).is_some_and(|t| t.lead);
        if lead && case.returns == 0 && self.rng.chance(0.05) {
            let reason = "非本单位职责，申请退回重新派遣";
            if self
                .act(
                    id,
                    Action::Return {
                        reason: reason.into(),
                    },
                    Self::handler(&dept),
                    reason,
                    now,
                )
                .is_some()
            {
                let d = (self.rng.exp(25.0) * MINUTE as f64) as Millis + MINUTE;
                self.at(now + d, Ev::Act(id, Kind::Dispatch, None));
            }
            return;
        }
        if let Some(o) = self.act(id, Action::Acknowledge, Self::handler(&dept), "已签收", now) {
            if lead {
                let d = (self.rng.exp(20.0) * MINUTE as f64) as Millis + MINUTE;
                self.at(now + d, Ev::Act(id, Kind::Start, Some(dept)));
            } else {
                self.plan_handle(&o.case, &dept, now, false);
            }
        }
    }

    /// The lead department starts work (a few ask for more time later).
    fn start(&mut self, id: CaseId, dept: String, now: Millis) {
        if let Some(o) = self.act(id, Action::Start, Self::handler(&dept), "", now) {
            self.plan_handle(&o.case, &dept, now, false);
            if self.rng.chance(0.04) {
                let d = (self.rng.exp(2.0) * HOUR as f64) as Millis;
                self.at(now + d, Ev::Act(id, Kind::RequestPostponement, Some(dept)));
            }
        }
    }

    /// A department asks for more time.
    fn request_postponement(&mut self, id: CaseId, dept: String, now: Millis) {
        let a = Action::RequestPostponement {
            extra: "2wd".into(),
            reason: "需协调产权单位，申请延期".into(),
        };
        if self.act(id, a, Self::handler(&dept), "", now).is_some() {
            self.s.postponements += 1;
            self.at(now + HOUR, Ev::Act(id, Kind::DecidePostponement, None));
        }
    }

    /// The centre grants or refuses a postponement.
    fn decide_postponement(&mut self, case: &cityos_core::Case, now: Millis) {
        let id = case.id;
        let scope = case.regions.subdistrict.clone();
        let a = if self.rng.chance(0.8) {
            Action::GrantPostponement
        } else {
            Action::RefusePostponement
        };
        self.act(id, a, Self::officer(scope), "", now);
    }

    /// A department reports its task handled; the last one sends the case to verification.
    fn handle(&mut self, id: CaseId, dept: String, now: Millis) {
        if let Some(o) = self.act(
            id,
            Action::Handle,
            Self::handler(&dept),
            "已处置完毕，现场已恢复",
            now,
        ) {
            if o.case.state == State::Handled {
                let span = o
                    .case
                    .deadline(Step::Verify)
                    .map(|d| d.due - now)
                    .unwrap_or(4 * HOUR)
                    .max(30 * MINUTE);
                let d = (self.rng.exp(0.4) * span as f64) as Millis + 5 * MINUTE;
                self.at(now + d, Ev::Act(id, Kind::Verify, None));
            }
        }
    }

    /// The grid inspector verifies on site (some sent back for rework).
    fn verify(&mut self, case: &cityos_core::Case, now: Millis) {
        let id = case.id;
        let inspector = Actor {
            id: "sim-inspector".into(),
            role: Role::Inspector,
            department: None,
            scope: case.regions.grid.clone(),
        };
        if case.reworks == 0 && self.rng.chance(0.08) {
            if let Some(o) = self.act(
                id,
                Action::RejectVerification,
                inspector,
                "现场核查未处置到位，需返工",
                now,
            ) {
                for t in o.case.tasks.clone() {
                    self.plan_handle(&o.case, &t.department, now, true);
                }
            }
        } else if self
            .act(id, Action::Verify, inspector, "现场核查已处置", now)
            .is_some()
        {
            let d = (self.rng.exp(30.0) * MINUTE as f64) as Millis + MINUTE;
            self.at(now + d, Ev::Act(id, Kind::Close, None));
        }
    }

    /// The centre closes a verified case; some citizens rate it later.
    fn close(&mut self, case: &cityos_core::Case, now: Millis) {
        let id = case.id;
        let scope = case.regions.subdistrict.clone();
        if self
            .act(id, Action::Close, Self::officer(scope), "", now)
            .is_some()
            && case.channel == Channel::Citizen
            && self.rng.chance(0.6)
        {
            let d = (self.rng.exp(3.0) * HOUR as f64) as Millis;
            self.at(now + d, Ev::Act(id, Kind::Evaluate, None));
        }
    }

    /// The citizen rates a closed case.
    fn evaluate(&mut self, id: CaseId, now: Millis) {
        let score = [5, 5, 5, 4, 4, 3, 2][self.rng.below(7) as usize];
        let citizen = Actor {
            id: "citizen".into(),
            role: Role::Citizen,
            department: None,
            scope: None,
        };
        self.act(
            id,
            Action::Evaluate {
                score,
                comment: String::new(),
            },
            citizen,
            "",
            now,
        );
    }
}

/// Builds the day's reports (deterministic for a seed).
fn make_reports(engine: &Engine, rng: &mut Rng, o: &Options) -> Vec<NewReport> {
    let tax = engine.taxonomy().clone();
    let terr = engine.territory().clone();
    let grids: Vec<_> = terr
        .regions()
        .filter(|(_, r)| r.level == Level::Grid)
        .map(|(id, _)| id)
        .collect();
    let leaves: Vec<_> = if grids.is_empty() {
        terr.regions()
            .filter(|(id, _)| terr.children(*id).is_empty())
            .map(|(id, _)| id)
            .collect()
    } else {
        grids
    };
    let weights: Vec<f64> = tax
        .categories
        .iter()
        .map(|c| category_weight(&c.code))
        .collect();
    let start = local(o.day, 0, 0);
    let mut out: Vec<NewReport> = Vec::with_capacity(o.reports);
    for i in 0..o.reports {
        // A repeat of an earlier problem (another citizen, the same place)?
        if i > 10 && rng.chance(0.15) {
            let prev = out[rng.below(out.len() as u64) as usize].clone();
            let mut r = prev;
            r.at += (rng.exp(1.5) * HOUR as f64) as Millis + MINUTE;
            r.lon += rng.range_f64(-0.00012, 0.00012);
            r.lat += rng.range_f64(-0.0001, 0.0001);
            r.channel = Channel::Citizen;
            r.contact = Some(format!("1390000{:04}", rng.below(10_000)));
            if terr.locate(r.lon, r.lat).is_ok() && r.at < start + DAY {
                out.push(r);
                continue;
            }
        }
        let cat = &tax.categories[rng.weighted(&weights)];
        let hour = rng.weighted(&HOURLY);
        let at = start + hour as Millis * HOUR + rng.below(HOUR as u64) as Millis;
        let region = leaves[rng.below(leaves.len() as u64) as usize];
        let r = terr.region(region);
        let mut pt = terr.interior_point(region);
        for _ in 0..30 {
            let x = rng.range_f64(r.bbox[0], r.bbox[2]);
            let y = rng.range_f64(r.bbox[1], r.bbox[3]);
            if r.contains(x, y) && terr.locate(x, y).is_ok() {
                pt = [x, y];
                break;
            }
        }
        let channel = if !cat.public {
            if cat.code.contains("elder") || cat.code.contains("group_renting") {
                Channel::Data
            } else {
                Channel::Sensor
            }
        } else if rng.chance(0.55) {
            Channel::Citizen
        } else {
            Channel::Inspector
        };
        let community = terr
            .chain_of(region)
            .at(Level::Community)
            .map(|c| terr.region(c).name_zh.clone())
            .unwrap_or_default();
        let text = match channel {
            Channel::Citizen => format!(
                "{community}附近发现{}，影响居民生活，请尽快处理。",
                cat.name_zh
            ),
            Channel::Inspector => format!("巡查发现：{community}辖区{}，已拍照上报。", cat.name_zh),
            Channel::Sensor => format!("物联感知报警：{}（{community}）", cat.name_zh),
            _ => format!("数据规则触发：{}（{community}）", cat.name_zh),
        };
        out.push(NewReport {
            channel,
            category: cat.code.clone(),
            lon: pt[0],
            lat: pt[1],
            text,
            contact: (channel == Channel::Citizen)
                .then(|| format!("1380000{:04}", rng.below(10_000))),
            at,
            media: Vec::new(),
            priority: None,
            playbook: None,
            suggestion: None,
        });
    }
    out
}

/// Runs the simulated day on `engine` and summarises what is stored afterwards.
pub fn run(engine: &mut Engine, o: &Options) -> Result<Summary, EngineError> {
    let mut rng = Rng::new(o.seed);
    let reports = make_reports(engine, &mut rng, o);
    let start = local(o.day, 0, 0);
    let end = start + DAY * (1 + o.tail_days as Millis);
    let mut sim = Sim {
        engine,
        rng,
        queue: BinaryHeap::new(),
        seq: 0,
        reports,
        speed: HashMap::new(),
        s: Summary::default(),
    };
    sim.s.reports = sim.reports.len();
    for i in 0..sim.reports.len() {
        let t = sim.reports[i].at;
        sim.at(t, Ev::Report(i));
    }
    let mut t = start;
    while t <= end {
        sim.at(t, Ev::Tick);
        t += 5 * MINUTE;
    }
    let bar = if o.progress {
        let b = indicatif::ProgressBar::new(((end - start) / MINUTE) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} simulated minutes  {msg}",
            )
            .expect("valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    while let Some(Reverse((now, _, ev))) = sim.queue.pop() {
        if now > end {
            break;
        }
        if matches!(ev, Ev::Tick) {
            bar.set_position(((now - start) / MINUTE) as u64);
            bar.set_message(format!("{} cases", sim.s.cases));
        }
        sim.step(now, ev);
    }
    bar.finish_and_clear();
    let mut s = sim.s;
    summarise(sim.engine, &mut s, end)?;
    Ok(s)
}

fn summarise(engine: &mut Engine, s: &mut Summary, now: Millis) -> Result<(), EngineError> {
    let cases = engine.store().load_all_cases()?;
    let mut all = Vec::new();
    let mut scores = 0u32;
    for c in &cases {
        *s.by_state.entry(c.state.as_str().to_string()).or_default() += 1;
        s.returns += c.returns;
        s.reworks += c.reworks;
        if cityos_core::escalation::is_overdue(c, now) {
            s.overdue_open += 1;
        }
        if let Some(e) = &c.evaluation {
            s.evaluations += 1;
            scores += e.score as u32;
        }
        if let (Some(t), Some(d)) = (
            c.lead_task(),
            c.deadlines
                .iter()
                .rev()
                .find(|d| d.step == Step::Handle && d.met.is_some()),
        ) {
            let e = s.departments.entry(t.department.clone()).or_default();
            e.0 += 1;
            e.1 += d.on_time().unwrap_or(false) as u32;
        }
        all.extend_from_slice(serde_json::to_string(c).expect("serialises").as_bytes());
    }
    let tax = engine.taxonomy().clone();
    for d in s.departments.keys() {
        if let Some(dept) = tax.department(d) {
            s.department_names.insert(d.clone(), dept.name_zh.clone());
        }
    }
    s.mean_score = if s.evaluations > 0 {
        scores as f64 / s.evaluations as f64
    } else {
        0.0
    };
    s.digest = cityos_core::rng::fnv1a(&all);
    Ok(())
}

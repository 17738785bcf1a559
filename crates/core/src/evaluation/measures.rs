//! The measures (考核指标): each defined once here — code, Chinese and English name and
//! definition, whether higher is better, and how it adds up — and computed from the case
//! log alone.
//!
//! A period's cohort is the cases *received* (created) in it. `facts_of` folds one
//! case's log into [`CaseFacts`]; `hits` turns the facts into per-unit contributions
//! (one [`Hit`] per unit, measure and judged item); [`Figures`] adds them up. Drill-down
//! and explanation filter the same hits, so they always sum to the figure.
//!
//! Attribution to departments: a case is *received* by every department that held its
//! lead task; an acknowledgement or handling deadline is judged against the department
//! that held the lead task when it was met (or, missed and still unmet, holds it now); a
//! return is charged to the lead department that returned the case; escalations to the
//! command centre they went to; everything judged on the whole case (closing on time,
//! rework, postponements, overdue, satisfaction, repeats) to the last lead department.

use crate::calendar::WorkCalendar;
use crate::case::{Case, CaseId, Change, Channel, LogEntry, State};
use crate::taxonomy::{Domain, Step};
use crate::time::{Millis, DAY, HOUR};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a measure adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number of things.
    Count,
    /// A share: contributions are 1 (yes) or 0 (no); the value is their mean.
    Rate,
    /// Working hours: the mean of the contributions.
    MeanHours,
    /// Working hours: the 90th percentile (nearest rank) of the contributions.
    P90Hours,
}

macro_rules! measures {
    ($( $v:ident = $code:literal, $kind:ident, $higher:literal, $zh:literal, $en:literal, $def_zh:literal, $def_en:literal; )*) => {
        /// The measures of issue 17, in report order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Measure { $( $v, )* }

        impl Measure {
            pub const ALL: &'static [Measure] = &[ $( Measure::$v, )* ];
            pub fn code(self) -> &'static str { match self { $( Measure::$v => $code, )* } }
            pub fn kind(self) -> Kind { match self { $( Measure::$v => Kind::$kind, )* } }
            /// True when a higher value is better.
            pub fn higher_is_better(self) -> bool { match self { $( Measure::$v => $higher, )* } }
            pub fn name_zh(self) -> &'static str { match self { $( Measure::$v => $zh, )* } }
            pub fn name_en(self) -> &'static str { match self { $( Measure::$v => $en, )* } }
            pub fn definition_zh(self) -> &'static str { match self { $( Measure::$v => $def_zh, )* } }
            pub fn definition_en(self) -> &'static str { match self { $( Measure::$v => $def_en, )* } }
        }
    };
}

measures! {
    Received = "received", Count, true, "受理量", "Received",
        "考核期内受理（立案前登记）的案件数；部门口径为期内案件中由该部门牵头承办过的案件数。",
        "Cases received (created) in the period; for a department, the period's cases whose lead task it held.";
    AckOnTime = "ack_on_time", Rate, true, "按期签收率", "Acknowledged on time",
        "签收时限已到或已签收的案件中，在签收时限内签收的比例；计入签收时的牵头部门（超时未签收计入当前牵头部门）。",
        "Of the cases whose acknowledgement deadline was met or has passed, the share acknowledged by the deadline; charged to the lead department at acknowledgement (or, if still unacknowledged, the current one).";
    HandleOnTime = "handle_on_time", Rate, true, "按期处置率", "Handled on time",
        "处置时限已到或已处置的案件中，首次处置反馈在处置时限（含批准的延期）内的比例。",
        "Of the cases whose handling deadline (including granted postponements) was met or has passed, the share first reported handled by the deadline.";
    CloseOnTime = "close_on_time", Rate, true, "按期结案率", "Closed on time",
        "已结案案件中，没有任何环节超时（从未超期）的比例。",
        "Of the closed cases, the share that never missed a step's deadline (never overdue).";
    ReturnRate = "return_rate", Rate, false, "退单率", "Returned",
        "受理案件中被牵头部门退单的比例；部门口径为该部门牵头的案件中由其退回的比例。",
        "Of the cases received, the share returned by a lead department; for a department, the share of the cases it led that it returned.";
    ReworkRate = "rework_rate", Rate, false, "返工率", "Rework",
        "已处置反馈的案件中，核查不通过被退回返工至少一次的比例。",
        "Of the cases reported handled, the share sent back for rework at least once after a failed verification.";
    Postponements = "postponements", Count, false, "延期次数", "Postponements granted",
        "期内案件获批延期的次数（每次批准计一次）。",
        "Postponements granted on the period's cases (each grant counts once).";
    OverdueNow = "overdue_now", Count, false, "当前超期", "Overdue now",
        "评价时仍未办结、未挂账且有环节时限已过的案件数。",
        "Cases still open, not suspended, with a step's deadline passed at the time of evaluation.";
    OverdueEver = "overdue_ever", Count, false, "曾超期", "Overdue ever",
        "曾有环节超时（时限后完成、被计时器标记超期、或当前超期）的案件数。",
        "Cases that ever missed a deadline: a step done after its deadline, marked overdue by the timer, or overdue now.";
    HandleHoursMean = "handle_hours_mean", MeanHours, false, "平均处置时长", "Mean handling time",
        "从首次派遣到首次处置反馈的工作时长（按工作日历，小时）的平均值。",
        "Mean working hours (on the working calendar) from the first dispatch to the first report of handling.";
    HandleHoursP90 = "handle_hours_p90", P90Hours, false, "处置时长P90", "Handling time p90",
        "同上处置工作时长的第90百分位（最近秩）。",
        "The 90th percentile (nearest rank) of the same handling working hours.";
    RepeatRate = "repeat_rate", Rate, false, "重复投诉率", "Repeated complaints",
        "市民来源案件中，前30天内同一地点（100米内）同一类别已有市民案件的比例。",
        "Of the citizen cases, the share with an earlier citizen case of the same category within 100 m in the 30 days before.";
    Satisfaction = "satisfaction", Rate, true, "满意率", "Satisfaction",
        "有评价的案件中评分为4或5（满意、非常满意）的比例；评价数即分母。",
        "Of the rated cases, the share rated 4 or 5 (satisfied, very satisfied); the number of ratings is the denominator.";
    Escalations = "escalations", Count, false, "升级次数", "Escalations received",
        "期内案件超时升级的次数；部门口径为升级到该指挥中心的次数。",
        "Escalations of the period's cases; for a department, the escalations sent to it (a command centre).";
}

impl Measure {
    pub fn parse(code: &str) -> Option<Measure> {
        Measure::ALL.iter().copied().find(|m| m.code() == code)
    }
}

/// The measures as a Markdown table (docs/evaluation.md holds exactly this; a test
/// checks it).
pub fn markdown_table() -> String {
    let mut o = String::from("| code | 指标 | measure | kind | better | 定义 | definition |\n|---|---|---|---|---|---|---|\n");
    for m in Measure::ALL {
        let kind = match m.kind() {
            Kind::Count => "count",
            Kind::Rate => "rate",
            Kind::MeanHours => "mean working hours",
            Kind::P90Hours => "p90 working hours",
        };
        o.push_str(&format!(
            "| `{}` | {} | {} | {kind} | {} | {} | {} |\n",
            m.code(),
            m.name_zh(),
            m.name_en(),
            if m.higher_is_better() {
                "higher"
            } else {
                "lower"
            },
            m.definition_zh(),
            m.definition_en()
        ));
    }
    o
}

/// The repeat window and radius of `repeat_rate`.
pub const REPEAT_WINDOW: Millis = 30 * DAY;
pub const REPEAT_RADIUS_M: f64 = 100.0;

/// The dimension a unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    District,
    Department,
    Subdistrict,
    Community,
    Category,
    Domain,
}

impl Dim {
    pub const ALL: [Dim; 6] = [
        Dim::District,
        Dim::Department,
        Dim::Subdistrict,
        Dim::Community,
        Dim::Category,
        Dim::Domain,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::District => "district",
            Dim::Department => "department",
            Dim::Subdistrict => "subdistrict",
            Dim::Community => "community",
            Dim::Category => "category",
            Dim::Domain => "domain",
        }
    }
    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == s)
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Dim::District => "全区",
            Dim::Department => "部门",
            Dim::Subdistrict => "街道",
            Dim::Community => "社区",
            Dim::Category => "类别",
            Dim::Domain => "领域",
        }
    }
}

/// One deadline judged: on time or not, and the department it is charged to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub on_time: bool,
    pub department: Option<String>,
}

/// What one case's log says, as far as the measures are concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFacts {
    pub id: CaseId,
    pub number: String,
    pub category: String,
    pub domain: Domain,
    pub subdistrict: Option<String>,
    pub community: Option<String>,
    pub channel: Channel,
    pub created_at: Millis,
    pub lon: f64,
    pub lat: f64,
    pub state: State,
    /// Departments that held the lead task, in order of first holding it.
    pub leads: Vec<String>,
    /// Lead departments that returned the case (退单).
    pub returned_by: Vec<String>,
    pub ack: Option<Judged>,
    pub handle: Option<Judged>,
    /// Working hours from the first dispatch to the first report of handling.
    pub handle_hours: Option<f64>,
    pub handled_ever: bool,
    pub closed: bool,
    pub reworks: u32,
    pub postponements: u32,
    pub overdue_ever: bool,
    pub overdue_now: bool,
    pub rating: Option<u8>,
    /// Where each escalation went (a command centre's department code).
    pub escalations: Vec<String>,
    /// Set by [`mark_repeats`].
    pub repeat: bool,
}

impl CaseFacts {
    /// The last department to hold the lead task.
    pub fn last_lead(&self) -> Option<&str> {
        self.leads.last().map(String::as_str)
    }
}

/// One case's log folded so far, kept incrementally: the store writes it beside the case
/// in the batch transaction (migration 24, `case_facts`) and a period's evaluation reads
/// these rows instead of replaying every log. Everything here is independent of the
/// calendar and of `now`; [`CaseFold::facts`] adds those at reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseFold {
    // Folded from the entries.
    #[serde(default)]
    lead: Option<String>,
    #[serde(default)]
    leads: Vec<String>,
    #[serde(default)]
    returned_by: Vec<String>,
    #[serde(default)]
    ack: Option<Judged>,
    #[serde(default)]
    handle: Option<Judged>,
    #[serde(default)]
    first_dispatch: Option<Millis>,
    /// When the handling deadline was first met (the end of `handle_hours`).
    #[serde(default)]
    handled_at: Option<Millis>,
    #[serde(default)]
    handled_ever: bool,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    postponements: u32,
    #[serde(default)]
    overdue_ever: bool,
    #[serde(default)]
    escalations: Vec<String>,
    /// The case's deadlines after the last entry folded.
    #[serde(default)]
    deadlines: Vec<crate::case::Deadline>,
    // The case as it stands after the last entry ([`CaseFold::snapshot`]).
    id: CaseId,
    number: String,
    category: String,
    domain: Domain,
    subdistrict: Option<String>,
    community: Option<String>,
    channel: Channel,
    created_at: Millis,
    lon: f64,
    lat: f64,
    state: State,
    suspended: bool,
    reworks: u32,
    rating: Option<u8>,
}

impl CaseFold {
    /// A fold started from the case's creation entry (`None` if `first` does not create
    /// the case).
    pub fn start(first: &LogEntry) -> Option<CaseFold> {
        let Some(Change::Created { case }) = first.changes.first() else {
            return None;
        };
        let mut f = CaseFold {
            lead: None,
            leads: Vec::new(),
            returned_by: Vec::new(),
            ack: None,
            handle: None,
            first_dispatch: None,
            handled_at: None,
            handled_ever: false,
            closed: false,
            postponements: 0,
            overdue_ever: false,
            escalations: Vec::new(),
            deadlines: Vec::new(),
            id: case.id,
            number: String::new(),
            category: String::new(),
            domain: case.domain,
            subdistrict: None,
            community: None,
            channel: case.channel,
            created_at: case.created_at,
            lon: 0.0,
            lat: 0.0,
            state: case.state,
            suspended: false,
            reworks: 0,
            rating: None,
        };
        f.snapshot(case);
        Some(f)
    }

    /// Folds one more log entry (entries in order, each once).
    pub fn step(&mut self, e: &LogEntry) {
        if e.action == "grant_postponement" {
            self.postponements += 1;
        }
        let assisting_return = e.changes.iter().any(|ch| {
            matches!(
                ch,
                Change::TaskState {
                    to: crate::case::TaskState::Returned,
                    ..
                }
            )
        });
        for ch in &e.changes {
            match ch {
                Change::TaskAdded {
                    department,
                    lead: true,
                } => {
                    self.lead = Some(department.clone());
                    self.leads.retain(|d| d != department);
                    self.leads.push(department.clone());
                    self.first_dispatch.get_or_insert(e.at);
                }
                Change::TasksCleared => self.lead = None,
                Change::Returned if !assisting_return => {
                    if let Some(d) = &self.lead {
                        if !self.returned_by.contains(d) {
                            self.returned_by.push(d.clone());
                        }
                    }
                }
                Change::DeadlineMet { step } => {
                    if let Some(d) = self
                        .deadlines
                        .iter()
                        .find(|d| d.step == *step && d.met.is_none())
                    {
                        let late = e.at > d.due;
                        self.overdue_ever |= late;
                        let judged = Judged {
                            on_time: !late,
                            department: self.lead.clone(),
                        };
                        match step {
                            Step::Acknowledge if self.ack.is_none() => self.ack = Some(judged),
                            Step::Handle if self.handle.is_none() => {
                                self.handle = Some(judged);
                                self.handled_ever = true;
                                // Hours only from a dispatch before it.
                                self.handled_at = self.first_dispatch.map(|_| e.at);
                            }
                            _ => {}
                        }
                    }
                }
                Change::Overdue { overdue: true } => self.overdue_ever = true,
                Change::Escalated { to, .. } => self.escalations.push(to.clone()),
                Change::State { to: State::Closed } => self.closed = true,
                _ => {}
            }
            crate::case::apply_deadlines(&mut self.deadlines, ch, e.at);
        }
    }

    /// Takes the case's standing fields from the case as it is after the entries folded.
    pub fn snapshot(&mut self, c: &Case) {
        self.id = c.id;
        self.number.clone_from(&c.number);
        self.category.clone_from(&c.category);
        self.domain = c.domain;
        self.subdistrict.clone_from(&c.regions.subdistrict);
        self.community.clone_from(&c.regions.community);
        self.channel = c.channel;
        self.created_at = c.created_at;
        self.lon = c.lon;
        self.lat = c.lat;
        self.state = c.state;
        self.suspended = c.suspended.is_some();
        self.reworks = c.reworks;
        self.rating = c.evaluation.as_ref().map(|e| e.score);
        self.deadlines.clone_from(&c.deadlines);
    }

    pub fn id(&self) -> CaseId {
        self.id
    }

    pub fn created_at(&self) -> Millis {
        self.created_at
    }

    /// The case's facts at time `now` (what is overdue now), hours on `cal`.
    pub fn facts(&self, cal: &WorkCalendar, now: Millis) -> CaseFacts {
        let handle_hours = match (self.first_dispatch, self.handled_at) {
            (Some(s), Some(h)) => Some(cal.working_between(s, h) as f64 / HOUR as f64),
            _ => None,
        };
        let mut ack = self.ack.clone();
        let mut handle = self.handle.clone();
        // Deadlines still unmet and passed now.
        let running = self.state.is_open() && !self.suspended;
        let passed = |step: Step| {
            running
                && self
                    .deadlines
                    .iter()
                    .any(|d| d.step == step && d.met.is_none() && d.due < now)
        };
        if ack.is_none() && passed(Step::Acknowledge) {
            ack = Some(Judged {
                on_time: false,
                department: self.lead.clone(),
            });
        }
        if handle.is_none() && passed(Step::Handle) {
            handle = Some(Judged {
                on_time: false,
                department: self.lead.clone(),
            });
        }
        let overdue_now = running
            && self
                .deadlines
                .iter()
                .any(|d| d.met.is_none() && d.due < now);
        CaseFacts {
            id: self.id,
            number: self.number.clone(),
            category: self.category.clone(),
            domain: self.domain,
            subdistrict: self.subdistrict.clone(),
            community: self.community.clone(),
            channel: self.channel,
            created_at: self.created_at,
            lon: self.lon,
            lat: self.lat,
            state: self.state,
            leads: self.leads.clone(),
            returned_by: self.returned_by.clone(),
            ack,
            handle,
            handle_hours,
            handled_ever: self.handled_ever,
            closed: self.closed,
            reworks: self.reworks,
            postponements: self.postponements,
            overdue_ever: self.overdue_ever || overdue_now,
            overdue_now,
            rating: self.rating,
            escalations: self.escalations.clone(),
            repeat: false,
        }
    }
}

/// Folds one case's whole log (replaying the case beside it), `None` for a log that does
/// not start with the case's creation.
pub fn fold_of(log: &[LogEntry]) -> Option<CaseFold> {
    let first = log.first()?;
    let mut f = CaseFold::start(first)?;
    let Some(Change::Created { case }) = first.changes.first() else {
        return None;
    };
    let mut c: Case = (**case).clone();
    for e in log {
        f.step(e);
        crate::case::apply_entry(&mut c, e);
    }
    f.snapshot(&c);
    Some(f)
}

/// Folds one case's log into its facts, at time `now` (what is overdue now). `None` for
/// a log that does not start with the case's creation.
pub fn facts_of(log: &[LogEntry], cal: &WorkCalendar, now: Millis) -> Option<CaseFacts> {
    fold_of(log).map(|f| f.facts(cal, now))
}

/// A citizen case as the repeat test sees it: (id, category, lon, lat, created_at).
pub type RepeatKey = (CaseId, String, f64, f64, Millis);

/// Distance in metres between two WGS-84 points (equirectangular; fine under a km).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let k = 111_320.0;
    let dx = (a.0 - b.0) * k * ((a.1 + b.1) / 2.0).to_radians().cos();
    let dy = (a.1 - b.1) * 110_540.0;
    (dx * dx + dy * dy).sqrt()
}

/// Marks the citizen cases with an earlier citizen case of the same category within
/// [`REPEAT_RADIUS_M`] in the [`REPEAT_WINDOW`] before them. `earlier` holds every
/// citizen case received from `REPEAT_WINDOW` before the period up to its end (it may
/// include the cohort itself).
pub fn mark_repeats(facts: &mut [CaseFacts], earlier: &[RepeatKey]) {
    let mut by_cat: BTreeMap<&str, Vec<&RepeatKey>> = BTreeMap::new();
    for k in earlier {
        by_cat.entry(k.1.as_str()).or_default().push(k);
    }
    for v in by_cat.values_mut() {
        v.sort_by_key(|k| k.4);
    }
    for f in facts.iter_mut() {
        if f.channel != Channel::Citizen {
            continue;
        }
        let Some(list) = by_cat.get(f.category.as_str()) else {
            continue;
        };
        let lo = list.partition_point(|k| k.4 < f.created_at - REPEAT_WINDOW);
        f.repeat = list[lo..]
            .iter()
            .take_while(|k| k.4 < f.created_at || (k.4 == f.created_at && k.0 < f.id))
            .any(|k| k.0 != f.id && distance_m((k.2, k.3), (f.lon, f.lat)) <= REPEAT_RADIUS_M);
    }
}

/// One contribution of one case to one unit's measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub unit: String,
    pub measure: Measure,
    /// 1/0 for rates, the number for counts, hours for handling time.
    pub value: f64,
}

/// The units of a dimension a case belongs to (regions, category, domain: one each;
/// departments: those named in its hits).
pub fn hits(f: &CaseFacts, dim: Dim, district: &str) -> Vec<Hit> {
    let mut out = Vec::new();
    let mut push = |unit: &str, measure: Measure, value: f64| {
        out.push(Hit {
            unit: unit.to_string(),
            measure,
            value,
        })
    };
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    if dim == Dim::Department {
        for d in &f.leads {
            push(d, Measure::Received, 1.0);
            push(d, Measure::ReturnRate, b(f.returned_by.contains(d)));
        }
        for (j, m) in [
            (&f.ack, Measure::AckOnTime),
            (&f.handle, Measure::HandleOnTime),
        ] {
            if let Some(Judged {
                on_time,
                department: Some(d),
            }) = j
            {
                push(d, m, b(*on_time));
                if m == Measure::HandleOnTime {
                    if let Some(h) = f.handle_hours.filter(|_| f.handled_ever) {
                        push(d, Measure::HandleHoursMean, h);
                        push(d, Measure::HandleHoursP90, h);
                    }
                }
            }
        }
        if let Some(d) = f.last_lead() {
            whole_case(f, d, &mut push);
        }
        for to in &f.escalations {
            push(to, Measure::Escalations, 1.0);
        }
        return out;
    }
    let unit = match dim {
        Dim::District => Some(district),
        Dim::Subdistrict => f.subdistrict.as_deref(),
        Dim::Community => f.community.as_deref(),
        Dim::Category => Some(f.category.as_str()),
        Dim::Domain => Some(f.domain.as_str()),
        Dim::Department => unreachable!(),
    };
    let Some(u) = unit else { return out };
    push(u, Measure::Received, 1.0);
    push(u, Measure::ReturnRate, b(!f.returned_by.is_empty()));
    if let Some(j) = &f.ack {
        push(u, Measure::AckOnTime, b(j.on_time));
    }
    if let Some(j) = &f.handle {
        push(u, Measure::HandleOnTime, b(j.on_time));
    }
    if let Some(h) = f.handle_hours.filter(|_| f.handled_ever) {
        push(u, Measure::HandleHoursMean, h);
        push(u, Measure::HandleHoursP90, h);
    }
    whole_case(f, u, &mut push);
    if !f.escalations.is_empty() {
        push(u, Measure::Escalations, f.escalations.len() as f64);
    }
    out
}

/// The measures judged on the whole case, charged to one unit.
fn whole_case(f: &CaseFacts, u: &str, push: &mut impl FnMut(&str, Measure, f64)) {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    if f.closed {
        push(u, Measure::CloseOnTime, b(!f.overdue_ever));
    }
    if f.handled_ever {
        push(u, Measure::ReworkRate, b(f.reworks > 0));
    }
    if f.postponements > 0 {
        push(u, Measure::Postponements, f.postponements as f64);
    }
    if f.overdue_now {
        push(u, Measure::OverdueNow, 1.0);
    }
    if f.overdue_ever {
        push(u, Measure::OverdueEver, 1.0);
    }
    if f.channel == Channel::Citizen {
        push(u, Measure::RepeatRate, b(f.repeat));
    }
    if let Some(r) = f.rating {
        push(u, Measure::Satisfaction, b(r >= 4));
    }
}

/// One measure's figure: the value (None without anything to judge), and for rates and
/// hours the number of judged items (the denominator) and the sum (the numerator).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub value: Option<f64>,
    pub numerator: f64,
    pub samples: u64,
}

/// The figures of one unit: every measure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    sums: BTreeMap<Measure, (f64, u64)>,
    hours: Vec<f64>,
}

impl Figures {
    pub fn add(&mut self, h: &Hit) {
        let e = self.sums.entry(h.measure).or_insert((0.0, 0));
        e.0 += h.value;
        e.1 += 1;
        if h.measure == Measure::HandleHoursP90 {
            self.hours.push(h.value);
        }
    }

    pub fn get(&self, m: Measure) -> Value {
        let (sum, n) = self.sums.get(&m).copied().unwrap_or((0.0, 0));
        let value = match m.kind() {
            Kind::Count => Some(sum),
            Kind::Rate | Kind::MeanHours => (n > 0).then(|| sum / n as f64),
            Kind::P90Hours => p90(&self.hours),
        };
        Value {
            value,
            numerator: sum,
            samples: n,
        }
    }
}

/// The 90th percentile by nearest rank.
pub fn p90(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((0.9 * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

/// Every unit's figures in one dimension.
pub fn figures(facts: &[CaseFacts], dim: Dim, district: &str) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for f in facts {
        for h in hits(f, dim, district) {
            out.entry(h.unit.clone()).or_default().add(&h);
        }
    }
    out
}

/// The cases behind one unit's figure: (case, its contribution), in case order.
pub fn behind<'a>(
    facts: &'a [CaseFacts],
    dim: Dim,
    district: &str,
    unit: &str,
    measure: Measure,
) -> Vec<(&'a CaseFacts, f64)> {
    let mut out = Vec::new();
    for f in facts {
        for h in hits(f, dim, district) {
            if h.unit == unit && h.measure == measure {
                out.push((f, h.value));
            }
        }
    }
    out
}

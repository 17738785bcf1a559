//! The case (案件/工单) and its log: the data model of the closed loop, the typed changes a
//! transition makes, and the one function that applies a change to a case.
//!
//! Event sourcing: every transition produces a [`LogEntry`] holding the [`Change`]s it
//! made; the case's current state is `fold(apply)` over its log. The engine applies the
//! same changes to the in-memory case that it appends to the log, so the stored
//! projection and a replay of the log agree by construction — and a test checks it.
//!
//! Architecture Invariant: `apply` never fails and never consults anything outside the
//! case and the change — replay needs no taxonomy, territory or clock.

use crate::calendar::TimeLimit;
use crate::taxonomy::{Domain, Priority, Step};
pub use crate::territory::RegionCodes;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::fmt;

pub type CaseId = i64;
pub type ReportId = i64;

/// States of the closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// 上报: reported, awaiting filing.
    Reported,
    /// 立案: accepted for handling, awaiting dispatch.
    Filed,
    /// 不予立案: not accepted.
    Rejected,
    /// 合并: merged into another case.
    Merged,
    /// 派遣: dispatched to department(s).
    Dispatched,
    /// 签收: the lead department acknowledged.
    Acknowledged,
    /// 处置中: work under way.
    InProgress,
    /// 处置反馈: every department reported its work done.
    Handled,
    /// 返工: verification failed, back to the departments.
    Rework,
    /// 核查通过: verified on site.
    Verified,
    /// 结案: closed.
    Closed,
    /// 评价: evaluated by the reporter or staff.
    Evaluated,
    /// 退单: returned by the lead department (wrong dispatch), awaiting re-dispatch.
    Returned,
    /// 挂账: suspended; deadlines paused.
    Suspended,
}

impl State {
    pub const ALL: [State; 14] = [
        State::Reported,
        State::Filed,
        State::Rejected,
        State::Merged,
        State::Dispatched,
        State::Acknowledged,
        State::InProgress,
        State::Handled,
        State::Rework,
        State::Verified,
        State::Closed,
        State::Evaluated,
        State::Returned,
        State::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Reported => "reported",
            State::Filed => "filed",
            State::Rejected => "rejected",
            State::Merged => "merged",
            State::Dispatched => "dispatched",
            State::Acknowledged => "acknowledged",
            State::InProgress => "in_progress",
            State::Handled => "handled",
            State::Rework => "rework",
            State::Verified => "verified",
            State::Closed => "closed",
            State::Evaluated => "evaluated",
            State::Returned => "returned",
            State::Suspended => "suspended",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            State::Reported => "待立案",
            State::Filed => "待派遣",
            State::Rejected => "不予立案",
            State::Merged => "已合并",
            State::Dispatched => "待签收",
            State::Acknowledged => "已签收",
            State::InProgress => "处置中",
            State::Handled => "待核查",
            State::Rework => "返工",
            State::Verified => "待结案",
            State::Closed => "已结案",
            State::Evaluated => "已评价",
            State::Returned => "已退单",
            State::Suspended => "挂账",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still needs work: not closed, evaluated, rejected or merged.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Evaluated | State::Rejected | State::Merged
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a report came from: the four ends and staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 市民端: 12345 hotline, app, Open311.
    Citizen,
    /// 移动端: grid inspectors.
    Inspector,
    /// 感知端: sensors.
    Sensor,
    /// 数据端: data rules.
    Data,
    /// Entered by command-centre staff.
    Staff,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Citizen,
        Channel::Inspector,
        Channel::Sensor,
        Channel::Data,
        Channel::Staff,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Citizen => "citizen",
            Channel::Inspector => "inspector",
            Channel::Sensor => "sensor",
            Channel::Data => "data",
            Channel::Staff => "staff",
        }
    }
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Reports from these channels are filed without an officer's review.
    pub fn is_trusted(self) -> bool {
        !matches!(self, Channel::Citizen)
    }
}

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    DistrictOfficer,
    SubdistrictOfficer,
    Handler,
    Inspector,
    Analyst,
    Admin,
    Citizen,
    /// cityos itself: intake, dedup, timers.
    System,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::DistrictOfficer,
        Role::SubdistrictOfficer,
        Role::Handler,
        Role::Inspector,
        Role::Analyst,
        Role::Admin,
        Role::Citizen,
        Role::System,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DistrictOfficer => "district_officer",
            Role::SubdistrictOfficer => "subdistrict_officer",
            Role::Handler => "handler",
            Role::Inspector => "inspector",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Citizen => "citizen",
            Role::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
    pub fn is_officer(self) -> bool {
        matches!(self, Role::DistrictOfficer | Role::SubdistrictOfficer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One report (上报): a citizen message, an inspector finding, a sensor alarm, a data-rule hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: ReportId,
    pub case_id: CaseId,
    pub channel: Channel,
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    pub text: String,
    pub contact: Option<String>,
    pub at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Dispatched,
    Acknowledged,
    InProgress,
    Handled,
    Returned,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Dispatched => "dispatched",
            TaskState::Acknowledged => "acknowledged",
            TaskState::InProgress => "in_progress",
            TaskState::Handled => "handled",
            TaskState::Returned => "returned",
        }
    }
}

/// One department's share of a case (联勤联动: one lead, any number of assistants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub department: String,
    pub lead: bool,
    pub state: TaskState,
    pub since: Millis,
}

/// The time limit of one step and when it was met.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    pub step: Step,
    pub due: Millis,
    pub met: Option<Millis>,
}

impl Deadline {
    pub fn on_time(&self) -> Option<bool> {
        self.met.map(|m| m <= self.due)
    }
}

/// A suggested or chosen department with the routing reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub department: String,
    pub lead: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Postponement {
    pub requested_at: Millis,
    pub by: String,
    /// Extra time asked for, e.g. "2wd".
    pub extra: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// 1 (very dissatisfied) … 5 (very satisfied).
    pub score: u8,
    pub comment: String,
    pub by_role: Role,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A case: the projection of its log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: CaseId,
    /// Human-facing case number, e.g. `XH2611260000123`.
    pub number: String,
    pub category: String,
    pub domain: Domain,
    pub priority: Priority,
    pub state: State,
    pub lon: f64,
    pub lat: f64,
    pub regions: RegionCodes,
    /// Short description (from the first report).
    pub title: String,
    pub channel: Channel,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub reports: Vec<ReportId>,
    /// Photos from the reports (URLs), first report's first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<String>,
    /// Latest report time (dedup window anchor).
    pub last_report_at: Millis,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<Assignment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deadlines: Vec<Deadline>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returns: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reworks: u32,
    /// How many escalations have fired for the current deadline.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub escalations: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_to: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub overdue: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postponement: Option<Postponement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<(State, Millis)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<CaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// What a scenario pack's playbook gave the case (cases opened by a pack only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<Box<CasePlaybook>>,
    /// What reading the report's text suggested at intake (reports filed without a
    /// category: the model's pick, places and urgency cues found in the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Box<Suggestion>>,
    /// Number of log entries; the next entry gets `seq = version + 1`.
    pub version: u64,
}

/// What reading a report's free text suggested (智能分拨, issue 14): the category the
/// model picked with its calibrated score and runners-up, whether intake routed on it or
/// left the case in the 待分拨 triage queue and why, the places named in the text, and
/// the urgency cues found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The suggested category's code (a category of the taxonomy).
    pub category: String,
    /// The functional line (条线) the model named, when its labels are lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The lead department routing would pick for the suggested category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Calibrated confidence in 0..=1.
    pub score: f32,
    /// The best categories in order (the first is `category`), at most 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<Scored>,
    /// The model that suggested (its id and version); empty when there was none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// True when intake routed the case on this suggestion (score over the district's
    /// threshold, or an urgency cue that skips triage); false when it waits in triage.
    pub routed: bool,
    /// Why, in words staff read: e.g. "模型建议 0.83 ≥ 阈值 0.70", "无模型：…".
    pub reason: String,
    /// Places named in the text, most specific first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub places: Vec<PlaceMatch>,
    /// True when the case's position came from the text (the report had none).
    #[serde(default, skip_serializing_if = "is_false")]
    pub located_by_text: bool,
    /// Urgency cue words found in the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cues: Vec<String>,
}

/// A category and its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub category: String,
    pub score: f32,
}

/// A place name found in a report's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceMatch {
    /// The words as they appear in the text.
    pub word: String,
    /// "subdistrict", "community", "road", "landmark", ...
    pub kind: String,
    /// The region code it names (or the region a road or landmark lies in), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A scenario pack's playbook as it travels with a case (应用场景 → 工单): the pack and
/// version that opened it, the lines that respond together (联勤联动: lead and joint,
/// overriding the category's), the per-step time limits that override the category's, and
/// the checklist per role, each item ticked off in the case's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePlaybook {
    /// The pack's code.
    pub scenario: String,
    pub version: String,
    /// The lead line (a department line of the taxonomy).
    pub lead: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joint: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub limits: std::collections::BTreeMap<Step, TimeLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<ChecklistRole>,
}

/// One role's checklist on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistRole {
    pub role: String,
    pub items: Vec<ChecklistItem>,
}

/// One item of a checklist: done when ticked (when, by whom).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
}

impl Case {
    /// Unmet deadlines, earliest first.
    pub fn open_deadlines(&self) -> impl Iterator<Item = &Deadline> {
        self.deadlines.iter().filter(|d| d.met.is_none())
    }

    /// The earliest unmet deadline, unless the case is suspended or finished.
    pub fn due(&self) -> Option<Millis> {
        if self.suspended.is_some() || !self.state.is_open() {
            return None;
        }
        self.open_deadlines().map(|d| d.due).min()
    }

    /// Time left until the current deadline at `now` (negative when overdue).
    pub fn time_left(&self, now: Millis) -> Option<Millis> {
        self.due().map(|d| d - now)
    }

    pub fn deadline(&self, step: Step) -> Option<&Deadline> {
        self.deadlines.iter().rev().find(|d| d.step == step)
    }

    pub fn lead_task(&self) -> Option<&Task> {
        self.tasks.iter().find(|t| t.lead)
    }

    pub fn task(&self, department: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.department == department)
    }

    pub fn reporter_count(&self) -> u32 {
        self.reports.len() as u32
    }
}

/// What one transition did to a case. `apply` is the only interpreter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Created {
        case: Box<Case>,
    },
    State {
        to: State,
    },
    Priority {
        to: Priority,
    },
    ReportAttached {
        report: ReportId,
        at: Millis,
        /// Photos the report brought (URLs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        media: Vec<String>,
    },
    ReportDetached {
        report: ReportId,
    },
    Route {
        assignments: Vec<Assignment>,
    },
    TaskAdded {
        department: String,
        lead: bool,
    },
    TaskState {
        department: String,
        to: TaskState,
    },
    TasksCleared,
    DeadlineSet {
        step: Step,
        due: Millis,
    },
    DeadlineMet {
        step: Step,
    },
    DeadlineDropped {
        step: Step,
    },
    Returned,
    Reworked,
    Escalated {
        count: u32,
        to: String,
    },
    Overdue {
        overdue: bool,
    },
    Postponement {
        pending: Option<Postponement>,
    },
    Suspended {
        from: State,
    },
    Resumed,
    MergedInto {
        case: CaseId,
    },
    Evaluated {
        evaluation: Evaluation,
    },
    /// A scenario pack's playbook joins the case (a hit whose report joined a case that
    /// had none: its checklist and deadlines apply from here on).
    Playbook {
        playbook: Box<CasePlaybook>,
    },
    /// A checklist item of the case's playbook ticked off (role and item by position).
    Ticked {
        role: usize,
        item: usize,
        by: String,
    },
    /// What reading the text suggested (intake of a report without a category).
    Suggested {
        suggestion: Box<Suggestion>,
    },
    /// The case's category set anew (staff picking it in the triage queue, or
    /// correcting it); the domain follows the category.
    Categorised {
        category: String,
        domain: Domain,
    },
}

/// One immutable entry of a case's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub case_id: CaseId,
    pub seq: u64,
    pub at: Millis,
    pub actor: String,
    pub role: Role,
    pub action: String,
    pub from: Option<State>,
    pub to: State,
    pub note: String,
    pub attachments: Vec<String>,
    pub changes: Vec<Change>,
}

/// Applies one change at time `at`.
pub fn apply(case: &mut Case, change: &Change, at: Millis) {
    case.updated_at = case.updated_at.max(at);
    match change {
        Change::Created { case: c } => *case = (**c).clone(),
        Change::State { to } => {
            if *to != case.state {
                // A new state starts a fresh escalation ladder.
                case.escalations = 0;
                case.escalated_to = None;
            }
            case.state = *to;
        }
        Change::Priority { to } => case.priority = *to,
        Change::ReportAttached { report, at, media } => {
            if !case.reports.contains(report) {
                case.reports.push(*report);
            }
            for m in media {
                if !case.media.contains(m) {
                    case.media.push(m.clone());
                }
            }
            case.last_report_at = case.last_report_at.max(*at);
        }
        Change::ReportDetached { report } => case.reports.retain(|r| r != report),
        Change::Route { assignments } => case.route = assignments.clone(),
        Change::TaskAdded { department, lead } => {
            case.tasks.retain(|t| &t.department != department);
            case.tasks.push(Task {
                department: department.clone(),
                lead: *lead,
                state: TaskState::Dispatched,
                since: at,
            });
        }
        Change::TaskState { department, to } => {
            if let Some(t) = case.tasks.iter_mut().find(|t| &t.department == department) {
                t.state = *to;
                t.since = at;
            }
        }
        Change::TasksCleared => case.tasks.clear(),
        Change::DeadlineSet { .. }
        | Change::DeadlineMet { .. }
        | Change::DeadlineDropped { .. } => {
            apply_deadlines(&mut case.deadlines, change, at);
            if !matches!(change, Change::DeadlineDropped { .. }) {
                case.overdue = false;
            }
        }
        Change::Returned => case.returns += 1,
        Change::Reworked => case.reworks += 1,
        Change::Escalated { count, to } => {
            case.escalations = *count;
            case.escalated_to = Some(to.clone());
        }
        Change::Overdue { overdue } => case.overdue = *overdue,
        Change::Postponement { pending } => case.postponement = pending.clone(),
        Change::Suspended { from } => case.suspended = Some((*from, at)),
        Change::Resumed => case.suspended = None,
        Change::MergedInto { case: into } => case.merged_into = Some(*into),
        Change::Evaluated { evaluation } => case.evaluation = Some(evaluation.clone()),
        Change::Playbook { playbook } => case.playbook = Some(playbook.clone()),
        Change::Ticked { role, item, by } => {
            if let Some(i) = case
                .playbook
                .as_mut()
                .and_then(|p| p.checklist.get_mut(*role))
                .and_then(|r| r.items.get_mut(*item))
            {
                i.done_at = Some(at);
                i.done_by = Some(by.clone());
            }
        }
        Change::Suggested { suggestion } => case.suggestion = Some(suggestion.clone()),
        Change::Categorised { category, domain } => {
            case.category = category.clone();
            case.domain = *domain;
        }
    }
}

/// What a change does to a case's deadlines (the one definition: `apply` and the
/// evaluation's incremental fold both use it).
pub fn apply_deadlines(deadlines: &mut Vec<Deadline>, change: &Change, at: Millis) {
    match change {
        Change::DeadlineSet { step, due } => {
            deadlines.retain(|d| !(d.step == *step && d.met.is_none()));
            deadlines.push(Deadline {
                step: *step,
                due: *due,
                met: None,
            });
        }
        Change::DeadlineMet { step } => {
            if let Some(d) = deadlines
                .iter_mut()
                .find(|d| d.step == *step && d.met.is_none())
            {
                d.met = Some(at);
            }
        }
        Change::DeadlineDropped { step } => {
            deadlines.retain(|d| !(d.step == *step && d.met.is_none()))
        }
        Change::Created { case } => *deadlines = case.deadlines.clone(),
        _ => {}
    }
}

/// Applies a whole log entry.
pub fn apply_entry(case: &mut Case, entry: &LogEntry) {
    for ch in &entry.changes {
        apply(case, ch, entry.at);
    }
    case.version = entry.seq;
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReplayError {
    #[error("the log is empty")]
    Empty,
    #[error("the first entry does not create the case")]
    NoCreation,
    #[error("entry seq {found} where {expected} was expected")]
    Gap { expected: u64, found: u64 },
}

/// Rebuilds a case from its log alone.
pub fn replay(entries: &[LogEntry]) -> Result<Case, ReplayError> {
    let first = entries.first().ok_or(ReplayError::Empty)?;
    let Some(Change::Created { case }) = first.changes.first() else {
        return Err(ReplayError::NoCreation);
    };
    let mut c = (**case).clone();
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as u64 + 1 {
            return Err(ReplayError::Gap {
                expected: i as u64 + 1,
                found: e.seq,
            });
        }
        apply_entry(&mut c, e);
    }
    Ok(c)
}

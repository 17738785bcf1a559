//! The closed loop as an explicit state machine: which action may move a case from which
//! state, by which role, and what it records — [`RULES`] is the table, [`decide`] the
//! function that checks a command against it and returns the changes to log.
//!
//! Intake of a new report ([`open_case`], [`merge_report`]) lives here too: creating a
//! case is the first entry of its log.
//!
//! Architecture Invariant: pure — `decide(case, command, ctx)` reads nothing else and
//! writes nothing; the engine persists the changes and applies them with `case::apply`.

use crate::calendar::{TimeLimit, WorkCalendar};
use crate::case::{
    Assignment, Case, CaseId, Change, Channel, Evaluation, Postponement, RegionCodes, ReportId,
    Role, State, TaskState,
};
use crate::escalation;
use crate::routing::{route, RoutingError};
use crate::taxonomy::{Category, Priority, Step, Taxonomy};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// The category of cases that wait for staff to pick their category (待分拨诉求): intake
/// files a report there when reading its text gave no confident category.
pub const TRIAGE: &str = "triage";

/// A case's title is the first this many characters of its first report's text.
pub const TITLE_CHARS: usize = 60;

/// A department named in a dispatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchTo {
    pub department: String,
    #[serde(default)]
    pub lead: bool,
}

/// What an actor asks to do to a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    File,
    Reject {
        reason: String,
    },
    Merge {
        into: CaseId,
    },
    Dispatch {
        #[serde(default)]
        departments: Vec<DispatchTo>,
    },
    Acknowledge,
    Start,
    Handle,
    Verify,
    RejectVerification,
    Close,
    Evaluate {
        score: u8,
        #[serde(default)]
        comment: String,
    },
    Return {
        reason: String,
    },
    RequestPostponement {
        extra: String,
        reason: String,
    },
    GrantPostponement,
    RefusePostponement,
    Suspend {
        reason: String,
    },
    Resume,
    Reopen {
        reason: String,
    },
    Split {
        report: ReportId,
    },
    Escalate,
    /// A note (and photos) on the record; nothing else changes.
    Note,
    /// A checklist item of the case's playbook done: the role as the checklist names it,
    /// and the item's position in that role's list (from 0).
    Tick {
        role: String,
        item: usize,
    },
    /// 分拨: command-centre staff pick the case's category (a case waiting in the 待分拨
    /// triage queue, or a correction of the category intake chose).
    Classify {
        category: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::File => "file",
            Action::Reject { .. } => "reject",
            Action::Merge { .. } => "merge",
            Action::Dispatch { .. } => "dispatch",
            Action::Acknowledge => "acknowledge",
            Action::Start => "start",
            Action::Handle => "handle",
            Action::Verify => "verify",
            Action::RejectVerification => "reject_verification",
            Action::Close => "close",
            Action::Evaluate { .. } => "evaluate",
            Action::Return { .. } => "return",
            Action::RequestPostponement { .. } => "request_postponement",
            Action::GrantPostponement => "grant_postponement",
            Action::RefusePostponement => "refuse_postponement",
            Action::Suspend { .. } => "suspend",
            Action::Resume => "resume",
            Action::Reopen { .. } => "reopen",
            Action::Split { .. } => "split",
            Action::Escalate => "escalate",
            Action::Note => "note",
            Action::Tick { .. } => "tick",
            Action::Classify { .. } => "classify",
        }
    }
}

/// Who is acting, with their scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: Role,
    /// The department a handler acts for.
    pub department: Option<String>,
    /// The region (any level) the actor may act in; `None` = the whole territory.
    pub scope: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            id: "cityos".into(),
            role: Role::System,
            department: None,
            scope: None,
        }
    }
}

/// A command: action + actor + what they say.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub action: Action,
    pub actor: Actor,
    pub note: String,
    pub attachments: Vec<String>,
    /// Optimistic concurrency: refuse if the case has moved on since the caller read it.
    pub expected_version: Option<u64>,
}

impl Command {
    pub fn new(action: Action, actor: Actor) -> Command {
        Command {
            action,
            actor,
            note: String::new(),
            attachments: Vec::new(),
            expected_version: None,
        }
    }
}

/// One row of the transition table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub action: &'static str,
    pub from: &'static [State],
    /// The resulting state, as a description (some actions keep the state).
    pub to: &'static str,
    pub roles: &'static [Role],
    pub records: &'static str,
}

use Role::{Citizen, DistrictOfficer as DO, Handler, Inspector, SubdistrictOfficer as SO, System};
use State::*;

const ACTIVE: &[State] = &[Dispatched, Acknowledged, InProgress, Rework];
const ESCALATABLE: &[State] = &[
    Reported,
    Filed,
    Returned,
    Dispatched,
    Acknowledged,
    InProgress,
    Handled,
    Rework,
    Verified,
];

/// States in which a playbook's checklist can still be worked through.
const TICKABLE: &[State] = &[
    Reported,
    Filed,
    Returned,
    Dispatched,
    Acknowledged,
    InProgress,
    Handled,
    Rework,
    Verified,
    Suspended,
];

/// The transition table. `decide` enforces exactly this; docs/workflow.md is generated
/// from it (a test keeps them equal).
pub const RULES: &[Rule] = &[
    Rule { action: "file", from: &[Reported], to: "filed", roles: &[DO, SO, System], records: "立案; file deadline met, dispatch deadline set" },
    Rule { action: "reject", from: &[Reported], to: "rejected", roles: &[DO, SO], records: "不予立案 with reason; deadlines dropped" },
    Rule { action: "merge", from: &[Reported, Filed], to: "merged", roles: &[DO, SO, System], records: "merged into another open case, which takes over the reports" },
    Rule { action: "classify", from: &[Reported, Filed, Returned], to: "unchanged", roles: &[DO, SO], records: "分拨: the category staff pick (from the triage queue or correcting intake's), its default priority unless a cue or escalation raised the case's higher, a fresh route, the current step's deadline by the new category; the note names the pick and the model's suggestion" },
    Rule { action: "dispatch", from: &[Filed, Returned], to: "dispatched", roles: &[DO, SO, System], records: "派遣: one task per department (one lead), routing reasons; acknowledge and handle deadlines set" },
    Rule { action: "acknowledge", from: ACTIVE, to: "acknowledged (when the lead acknowledges)", roles: &[Handler], records: "签收 of the actor's department task; acknowledge deadline met by the lead" },
    Rule { action: "start", from: &[Acknowledged, InProgress, Rework, Dispatched], to: "in_progress (when the lead starts)", roles: &[Handler], records: "the department's task in progress" },
    Rule { action: "handle", from: ACTIVE, to: "handled (when every task is handled)", roles: &[Handler], records: "处置反馈 with note and photos; handle deadline met and verify deadline set when all tasks are done" },
    Rule { action: "return", from: &[Dispatched, Acknowledged], to: "returned (lead) / unchanged (assistant)", roles: &[Handler], records: "退单 with reason, counted; the lead's return clears all tasks for re-dispatch" },
    Rule { action: "request_postponement", from: &[Acknowledged, InProgress, Rework], to: "unchanged", roles: &[Handler], records: "延期申请: extra time and reason, before the handle deadline" },
    Rule { action: "grant_postponement", from: &[Acknowledged, InProgress, Rework], to: "unchanged", roles: &[DO, SO], records: "handle deadline extended by the requested time" },
    Rule { action: "refuse_postponement", from: &[Acknowledged, InProgress, Rework], to: "unchanged", roles: &[DO, SO], records: "the request is refused; deadline unchanged" },
    Rule { action: "verify", from: &[Handled], to: "verified", roles: &[Inspector, DO, SO], records: "核查通过 with photos; verify deadline met, close deadline set" },
    Rule { action: "reject_verification", from: &[Handled], to: "rework", roles: &[Inspector, DO, SO], records: "核查不通过: rework counted, tasks back in progress, new handle deadline" },
    Rule { action: "close", from: &[Verified], to: "closed", roles: &[DO, SO, System], records: "结案; close deadline met" },
    Rule { action: "evaluate", from: &[Closed], to: "evaluated", roles: &[Citizen, DO, SO], records: "评价: score 1–5 and comment" },
    Rule { action: "suspend", from: &[Reported, Filed, Returned, Dispatched, Acknowledged, InProgress, Rework], to: "suspended", roles: &[DO, SO], records: "挂账 with reason; deadlines paused" },
    Rule { action: "resume", from: &[Suspended], to: "the state before suspension", roles: &[DO, SO], records: "deadlines moved by the time suspended" },
    Rule { action: "reopen", from: &[Closed, Evaluated, Rejected], to: "filed", roles: &[DO, SO], records: "reason; tasks cleared, dispatch deadline set" },
    Rule { action: "split", from: ESCALATABLE, to: "unchanged (a new case is opened)", roles: &[DO, SO], records: "a merged report leaves the case and becomes its own case" },
    Rule { action: "escalate", from: ESCALATABLE, to: "unchanged", roles: &[System], records: "overdue: escalated to the next supervisor on the ladder, priority raised" },
    Rule { action: "tick", from: TICKABLE, to: "unchanged", roles: &[DO, SO, Handler, Inspector], records: "a checklist item of the scenario playbook done (who, when); each item once" },
    Rule { action: "note", from: &State::ALL, to: "unchanged", roles: &[DO, SO, Handler, Inspector, System], records: "备注: a note and photos on the record (e.g. a sensor alarm repeating or clearing); nothing else changes" },
];

pub fn rule(action: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.action == action)
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkflowError {
    #[error("action {action:?} is not allowed while the case is {state} ({})", state.name_zh())]
    NotAllowedInState { action: &'static str, state: State },
    #[error("role {role} may not {action}")]
    RoleNotAllowed { action: &'static str, role: Role },
    #[error("the case is outside the actor's scope")]
    OutOfScope,
    #[error("department {department:?} has no task on this case that it can {action}")]
    NotYourTask {
        action: &'static str,
        department: String,
    },
    #[error("a handler must act for a department")]
    NoDepartment,
    #[error("the case changed since you read it (version {actual}, you had {expected}); reload and try again")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("category {0:?} is not in the taxonomy")]
    UnknownCategory(String),
    #[error("department {0:?} does not exist")]
    UnknownDepartment(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

/// What `decide` needs besides the case: configuration and the time.
pub struct Ctx<'a> {
    pub tax: &'a Taxonomy,
    pub cal: &'a WorkCalendar,
    pub now: Millis,
}

impl Ctx<'_> {
    /// The deadline of `step` starting at `start`: the case's playbook limit when its pack
    /// set one (taken as written, whatever the priority), else the category's, scaled by
    /// the case's priority.
    fn deadline(&self, case: &Case, cat: &Category, step: Step, start: Millis) -> Change {
        let due = match case.playbook.as_ref().and_then(|p| p.limits.get(&step)) {
            Some(limit) => limit.deadline(self.cal, start, 1.0),
            None => cat.limit(step).deadline(
                self.cal,
                start,
                self.tax.relative_factor(cat, case.priority),
            ),
        };
        Change::DeadlineSet { step, due }
    }
}

/// The routing of a case: the category's lines, or its playbook's lead and joint lines.
fn route_case(
    tax: &Taxonomy,
    cat: &Category,
    case: &Case,
) -> Result<Vec<Assignment>, WorkflowError> {
    match &case.playbook {
        None => Ok(route(tax, cat, &case.regions)?),
        Some(p) => {
            let mut c = cat.clone();
            c.lead = p.lead.clone();
            c.assist = p.joint.clone();
            Ok(route(tax, &c, &case.regions)?)
        }
    }
}

/// The outcome of a decision: the resulting state and the changes to log and apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: &'static str,
    pub to: State,
    pub changes: Vec<Change>,
    /// What the log entry says when the caller said nothing (a tick names its item).
    pub note: Option<String>,
}

fn state_change(changes: &mut Vec<Change>, from: State, to: State) {
    if from != to {
        changes.push(Change::State { to });
    }
}

/// Checks a command against the table and the case, and returns what it changes.
pub fn decide(case: &Case, cmd: &Command, cx: &Ctx) -> Result<Decision, WorkflowError> {
    let name = cmd.action.name();
    let rule = rule(name).expect("every action has a rule");
    if let Some(v) = cmd.expected_version {
        if v != case.version {
            return Err(WorkflowError::VersionConflict {
                expected: v,
                actual: case.version,
            });
        }
    }
    let role = cmd.actor.role;
    if !rule.roles.contains(&role) {
        return Err(WorkflowError::RoleNotAllowed { action: name, role });
    }
    if let Some(scope) = &cmd.actor.scope {
        if !case.regions.contains(scope) {
            return Err(WorkflowError::OutOfScope);
        }
    }
    if !rule.from.contains(&case.state) {
        return Err(WorkflowError::NotAllowedInState {
            action: name,
            state: case.state,
        });
    }
    let cat = cx
        .tax
        .category(&case.category)
        .ok_or_else(|| WorkflowError::UnknownCategory(case.category.clone()))?;
    let now = cx.now;
    let from = case.state;
    let mut ch = Vec::new();
    let mut to = from;
    let mut note = None;
    let my_task = |ok: &[TaskState]| -> Result<(String, bool), WorkflowError> {
        let dept = cmd
            .actor
            .department
            .clone()
            .ok_or(WorkflowError::NoDepartment)?;
        match case.task(&dept) {
            Some(t) if ok.contains(&t.state) => Ok((dept, t.lead)),
            _ => Err(WorkflowError::NotYourTask {
                action: name,
                department: dept,
            }),
        }
    };
    match &cmd.action {
        Action::File => {
            to = Filed;
            ch.push(Change::DeadlineMet { step: Step::File });
            ch.push(cx.deadline(case, cat, Step::Dispatch, now));
        }
        Action::Reject { reason } => {
            need_text(reason, "reason")?;
            to = Rejected;
            ch.extend(drop_open_deadlines(case));
        }
        Action::Merge { into } => {
            if *into == case.id {
                return Err(WorkflowError::Invalid(
                    "a case cannot be merged into itself".into(),
                ));
            }
            to = Merged;
            ch.push(Change::MergedInto { case: *into });
            ch.extend(drop_open_deadlines(case));
        }
        Action::Dispatch { departments } => {
            let assignments = if departments.is_empty() {
                route_case(cx.tax, cat, case)?
            } else {
                explicit_assignments(cx.tax, departments)?
            };
            to = Dispatched;
            if assignments != case.route {
                ch.push(Change::Route {
                    assignments: assignments.clone(),
                });
            }
            ch.push(Change::TasksCleared);
            for a in &assignments {
                ch.push(Change::TaskAdded {
                    department: a.department.clone(),
                    lead: a.lead,
                });
            }
            ch.push(Change::DeadlineMet {
                step: Step::Dispatch,
            });
            ch.push(cx.deadline(case, cat, Step::Acknowledge, now));
            ch.push(cx.deadline(case, cat, Step::Handle, now));
        }
        Action::Acknowledge => {
            let (dept, lead) = my_task(&[TaskState::Dispatched])?;
            ch.push(Change::TaskState {
                department: dept,
                to: TaskState::Acknowledged,
            });
            if lead {
                if from == Dispatched {
                    to = Acknowledged;
                }
                ch.push(Change::DeadlineMet {
                    step: Step::Acknowledge,
                });
            }
        }
        Action::Start => {
            let (dept, lead) = my_task(&[TaskState::Acknowledged])?;
            ch.push(Change::TaskState {
                department: dept,
                to: TaskState::InProgress,
            });
            if lead && matches!(from, Acknowledged | Dispatched) {
                to = InProgress;
            }
        }
        Action::Handle => {
            let (dept, _) = my_task(&[TaskState::Acknowledged, TaskState::InProgress])?;
            ch.push(Change::TaskState {
                department: dept.clone(),
                to: TaskState::Handled,
            });
            let all_done = case.tasks.iter().all(|t| {
                t.department == dept || matches!(t.state, TaskState::Handled | TaskState::Returned)
            });
            if all_done {
                to = Handled;
                ch.push(Change::DeadlineMet { step: Step::Handle });
                if case
                    .deadline(Step::Acknowledge)
                    .is_some_and(|d| d.met.is_none())
                {
                    ch.push(Change::DeadlineMet {
                        step: Step::Acknowledge,
                    });
                }
                ch.push(cx.deadline(case, cat, Step::Verify, now));
            }
        }
        Action::Return { reason } => {
            need_text(reason, "reason")?;
            let (dept, lead) = my_task(&[TaskState::Dispatched, TaskState::Acknowledged])?;
            ch.push(Change::Returned);
            if lead {
                to = Returned;
                ch.push(Change::TasksCleared);
                ch.push(Change::DeadlineDropped {
                    step: Step::Acknowledge,
                });
                ch.push(Change::DeadlineDropped { step: Step::Handle });
                ch.push(cx.deadline(case, cat, Step::Dispatch, now));
            } else {
                ch.push(Change::TaskState {
                    department: dept.clone(),
                    to: TaskState::Returned,
                });
                let rest_done = case.tasks.iter().all(|t| {
                    t.department == dept
                        || matches!(t.state, TaskState::Handled | TaskState::Returned)
                });
                if rest_done {
                    to = Handled;
                    ch.push(Change::DeadlineMet { step: Step::Handle });
                    ch.push(cx.deadline(case, cat, Step::Verify, now));
                }
            }
        }
        Action::RequestPostponement { extra, reason } => {
            need_text(reason, "reason")?;
            let (dept, lead) = my_task(&[TaskState::Acknowledged, TaskState::InProgress])?;
            if !lead {
                return Err(WorkflowError::Invalid(
                    "only the lead department may request a postponement".into(),
                ));
            }
            TimeLimit::parse(extra).map_err(WorkflowError::Invalid)?;
            if case.postponement.is_some() {
                return Err(WorkflowError::Invalid(
                    "a postponement request is already pending".into(),
                ));
            }
            if case
                .deadline(Step::Handle)
                .is_some_and(|d| d.met.is_none() && now > d.due)
            {
                return Err(WorkflowError::Invalid(
                    "a postponement must be requested before the handle deadline (延期须在时限前申请)".into(),
                ));
            }
            ch.push(Change::Postponement {
                pending: Some(Postponement {
                    requested_at: now,
                    by: dept,
                    extra: extra.clone(),
                    reason: reason.clone(),
                }),
            });
        }
        Action::GrantPostponement | Action::RefusePostponement => {
            let p = case.postponement.as_ref().ok_or_else(|| {
                WorkflowError::Invalid("no postponement request is pending".into())
            })?;
            if matches!(cmd.action, Action::GrantPostponement) {
                let extra = TimeLimit::parse(&p.extra).map_err(WorkflowError::Invalid)?;
                if let Some(d) = case.deadline(Step::Handle).filter(|d| d.met.is_none()) {
                    ch.push(Change::DeadlineSet {
                        step: Step::Handle,
                        due: extra.deadline(cx.cal, d.due, 1.0),
                    });
                }
            }
            ch.push(Change::Postponement { pending: None });
        }
        Action::Verify => {
            to = Verified;
            ch.push(Change::DeadlineMet { step: Step::Verify });
            ch.push(cx.deadline(case, cat, Step::Close, now));
        }
        Action::RejectVerification => {
            need_text(&cmd.note, "note (why verification failed)")?;
            to = Rework;
            ch.push(Change::Reworked);
            ch.push(Change::DeadlineDropped { step: Step::Verify });
            for t in case.tasks.iter().filter(|t| t.state == TaskState::Handled) {
                ch.push(Change::TaskState {
                    department: t.department.clone(),
                    to: TaskState::InProgress,
                });
            }
            ch.push(cx.deadline(case, cat, Step::Handle, now));
        }
        Action::Close => {
            to = Closed;
            ch.push(Change::DeadlineMet { step: Step::Close });
        }
        Action::Evaluate { score, comment } => {
            if !(1..=5).contains(score) {
                return Err(WorkflowError::Invalid(format!(
                    "score {score} must be 1 (very dissatisfied) to 5 (very satisfied)"
                )));
            }
            to = Evaluated;
            ch.push(Change::Evaluated {
                evaluation: Evaluation {
                    score: *score,
                    comment: comment.clone(),
                    by_role: role,
                },
            });
        }
        Action::Suspend { reason } => {
            need_text(reason, "reason")?;
            to = Suspended;
            ch.push(Change::Suspended { from });
        }
        Action::Resume => {
            let (prev, since) = case
                .suspended
                .ok_or_else(|| WorkflowError::Invalid("the case is not suspended".into()))?;
            to = prev;
            let paused = (now - since).max(0);
            for d in case.open_deadlines() {
                ch.push(Change::DeadlineSet {
                    step: d.step,
                    due: d.due + paused,
                });
            }
            ch.push(Change::Resumed);
        }
        Action::Reopen { reason } => {
            need_text(reason, "reason")?;
            to = Filed;
            ch.push(Change::TasksCleared);
            ch.extend(drop_open_deadlines(case));
            ch.push(cx.deadline(case, cat, Step::Dispatch, now));
        }
        Action::Split { report } => {
            if !case.reports.contains(report) {
                return Err(WorkflowError::Invalid(format!(
                    "report {report} is not part of case {}",
                    case.number
                )));
            }
            if case.reports.len() < 2 {
                return Err(WorkflowError::Invalid(
                    "the case has only one report; there is nothing to split".into(),
                ));
            }
            ch.push(Change::ReportDetached { report: *report });
        }
        Action::Note => {
            if is_blank(&cmd.note) && cmd.attachments.is_empty() {
                return Err(WorkflowError::Invalid("a note needs text or photos".into()));
            }
        }
        Action::Tick { role, item } => {
            let p = case.playbook.as_ref().ok_or_else(|| {
                WorkflowError::Invalid("the case has no scenario playbook to tick off".into())
            })?;
            let (r, list) = p
                .checklist
                .iter()
                .enumerate()
                .find(|(_, c)| &c.role == role)
                .ok_or_else(|| {
                    WorkflowError::Invalid(format!(
                        "the playbook has no checklist for role {role:?} (it has {})",
                        p.checklist
                            .iter()
                            .map(|c| format!("{:?}", c.role))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            let it = list.items.get(*item).ok_or_else(|| {
                WorkflowError::Invalid(format!(
                    "role {role:?} has {} checklist items; there is no item {item}",
                    list.items.len()
                ))
            })?;
            if it.done_at.is_some() {
                return Err(WorkflowError::Invalid(format!(
                    "{:?} was already ticked off by {}",
                    it.text,
                    it.done_by.as_deref().unwrap_or("someone")
                )));
            }
            note = Some(format!("☑ {role}：{}", it.text));
            ch.push(Change::Ticked {
                role: r,
                item: *item,
                by: cmd.actor.id.clone(),
            });
        }
        Action::Classify { category } => {
            let (changes, n) = classify(case, cat, category, cmd, cx)?;
            ch.extend(changes);
            note = Some(n);
        }
        Action::Escalate => {
            let (at, count, target) = escalation::next_escalation(cx.tax, cx.cal, case)
                .ok_or_else(|| WorkflowError::Invalid("no escalation is pending".into()))?;
            if now < at {
                return Err(WorkflowError::Invalid(format!(
                    "the next escalation is not due until {}",
                    crate::time::format_local(at)
                )));
            }
            if !case.overdue {
                ch.push(Change::Overdue { overdue: true });
            }
            ch.push(Change::Escalated { count, to: target });
            if case.priority != Priority::Urgent {
                ch.push(Change::Priority {
                    to: case.priority.raised(),
                });
            }
        }
    }
    state_change(&mut ch, from, to);
    Ok(Decision {
        action: name,
        to,
        changes: ch,
        note,
    })
}

/// The changes and the log note of 分拨: the case takes `target` as its category.
fn classify(
    case: &Case,
    old: &Category,
    target: &str,
    cmd: &Command,
    cx: &Ctx,
) -> Result<(Vec<Change>, String), WorkflowError> {
    let target = target.trim();
    if target == TRIAGE {
        return Err(WorkflowError::Invalid(format!(
            "category {TRIAGE:?} (待分拨诉求) is the queue itself: pick the category the case belongs to"
        )));
    }
    if let Some(g) = cx.tax.group(target) {
        return Err(WorkflowError::Invalid(format!(
            "category {target:?} ({}) is a group, not a category a case can have: pick one of its categories",
            g.name_zh
        )));
    }
    let cat = cx
        .tax
        .category(target)
        .ok_or_else(|| WorkflowError::UnknownCategory(target.to_string()))?;
    if cat.code == case.category {
        return Err(WorkflowError::Invalid(format!(
            "the case is already in category {:?} ({})",
            cat.code, cat.name_zh
        )));
    }
    let mut ch = vec![Change::Categorised {
        category: cat.code.clone(),
        domain: cat.domain,
    }];
    // The new category's priority, unless the case's was raised above the old
    // category's (an urgency cue in the text, a merge threshold, an escalation) and is
    // higher: that is kept.
    let mut next = case.clone();
    next.category = cat.code.clone();
    next.domain = cat.domain;
    let raised = case.priority.rank() > old.priority.rank();
    let priority = if raised && case.priority.rank() > cat.priority.rank() {
        case.priority
    } else {
        cat.priority
    };
    if priority != case.priority {
        next.priority = priority;
        ch.push(Change::Priority { to: priority });
    }
    let assignments = route_case(cx.tax, cat, &next)?;
    if assignments != case.route {
        ch.push(Change::Route { assignments });
    }
    for d in case
        .open_deadlines()
        .filter(|d| matches!(d.step, Step::File | Step::Dispatch))
    {
        ch.push(Change::DeadlineDropped { step: d.step });
    }
    let step = if case.state == State::Reported {
        Step::File
    } else {
        Step::Dispatch
    };
    ch.push(cx.deadline(&next, cat, step, cx.now));
    let name = |code: &str| {
        cx.tax
            .category(code)
            .map(|c| c.name_zh.clone())
            .unwrap_or_else(|| code.to_string())
    };
    let model = match case.suggestion.as_deref() {
        Some(s) if s.category == cat.code => {
            format!(
                "模型建议 {} {:.2}，采纳建议 / suggestion taken",
                name(&s.category),
                s.score
            )
        }
        Some(s) => format!(
            "模型建议 {} {:.2}，更正建议 / suggestion corrected",
            name(&s.category),
            s.score
        ),
        None => "无模型建议 / no suggestion".to_string(),
    };
    let mut note = format!(
        "分拨：{} → {} {}（人工 {}；{model}）",
        old.name_zh, cat.name_zh, cat.code, cmd.actor.id
    );
    if !is_blank(&cmd.note) {
        note.push('；');
        note.push_str(cmd.note.trim());
    }
    Ok((ch, note))
}

/// Text that says nothing: empty, or only whitespace and invisible characters (zero-width
/// space, non-joiner and joiner U+200B–U+200D, word joiner U+2060, BOM U+FEFF, soft
/// hyphen U+00AD, and other format characters that render as nothing).
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}'
            )
    })
}

fn need_text(s: &str, what: &str) -> Result<(), WorkflowError> {
    if is_blank(s) {
        Err(WorkflowError::Invalid(format!("a {what} is required")))
    } else {
        Ok(())
    }
}

fn drop_open_deadlines(case: &Case) -> Vec<Change> {
    case.open_deadlines()
        .map(|d| Change::DeadlineDropped { step: d.step })
        .collect()
}

fn explicit_assignments(
    tax: &Taxonomy,
    to: &[DispatchTo],
) -> Result<Vec<Assignment>, WorkflowError> {
    let leads = to.iter().filter(|d| d.lead).count();
    if leads > 1 {
        return Err(WorkflowError::Invalid(
            "a dispatch names exactly one lead department".into(),
        ));
    }
    let mut out: Vec<Assignment> = Vec::new();
    for (i, d) in to.iter().enumerate() {
        let dept = tax
            .department(&d.department)
            .ok_or_else(|| WorkflowError::UnknownDepartment(d.department.clone()))?;
        if out.iter().any(|a| a.department == dept.code) {
            return Err(WorkflowError::Invalid(format!(
                "department {:?} is named twice",
                dept.code
            )));
        }
        let lead = d.lead || (leads == 0 && i == 0);
        out.push(Assignment {
            department: dept.code.clone(),
            lead,
            reason: format!(
                "{}: {}（{}）— 由值班人员指定",
                if lead { "lead" } else { "assist" },
                dept.name_zh,
                dept.code
            ),
        });
    }
    Ok(out)
}

/// A new report as the intake ends deliver it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewReport {
    pub channel: Channel,
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    pub text: String,
    pub contact: Option<String>,
    pub at: Millis,
    /// Photos (URLs) sent with the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<String>,
    /// A priority other than the category's (a scenario pack's playbook says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// The playbook of the scenario pack that raised the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<Box<crate::case::CasePlaybook>>,
    /// What reading the text suggested (a report that came without a category); the
    /// case records it in a `Suggested` change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Box<crate::case::Suggestion>>,
}

/// The first log entry's changes for a new case made from one report.
pub fn open_case(
    id: CaseId,
    number: String,
    report: ReportId,
    r: &NewReport,
    regions: RegionCodes,
    cx: &Ctx,
) -> Result<Vec<Change>, WorkflowError> {
    let cat = cx
        .tax
        .category(&r.category)
        .ok_or_else(|| WorkflowError::UnknownCategory(r.category.clone()))?;
    let title: String = r.text.chars().take(TITLE_CHARS).collect();
    let case = Case {
        id,
        number,
        category: cat.code.clone(),
        domain: cat.domain,
        priority: cat.priority,
        state: State::Reported,
        lon: r.lon,
        lat: r.lat,
        regions,
        title,
        channel: r.channel,
        created_at: r.at,
        updated_at: r.at,
        reports: vec![report],
        media: r.media.clone(),
        last_report_at: r.at,
        route: Vec::new(),
        tasks: Vec::new(),
        deadlines: Vec::new(),
        returns: 0,
        reworks: 0,
        escalations: 0,
        escalated_to: None,
        overdue: false,
        postponement: None,
        suspended: None,
        merged_into: None,
        evaluation: None,
        playbook: r.playbook.clone(),
        suggestion: None,
        version: 0,
    };
    let mut case = case;
    if let Some(p) = r.priority {
        case.priority = p;
    }
    let assignments = route_case(cx.tax, cat, &case)?;
    let file = cx.deadline(&case, cat, Step::File, r.at);
    let mut changes = vec![
        Change::Created {
            case: Box::new(case),
        },
        Change::Route { assignments },
        file,
    ];
    if let Some(s) = &r.suggestion {
        changes.push(Change::Suggested {
            suggestion: s.clone(),
        });
    }
    Ok(changes)
}

/// The changes when a duplicate report joins an open case: the report is attached and the
/// priority raised when the reporter count reaches one of the category's thresholds.
pub fn merge_report(case: &Case, report: &NewReport, id: ReportId, tax: &Taxonomy) -> Vec<Change> {
    let mut ch = vec![Change::ReportAttached {
        report: id,
        at: report.at,
        media: report.media.clone(),
    }];
    let count = case.reporter_count() + 1;
    let mut priority = case.priority;
    if let Some(cat) = tax.category(&case.category) {
        if cat.merge_priority_at.contains(&count) && case.priority != Priority::Urgent {
            priority = case.priority.raised();
        }
    }
    // A scenario hit that joins a case brings its playbook (when the case has none) and
    // at least its priority.
    if let (Some(p), None) = (&report.playbook, &case.playbook) {
        ch.push(Change::Playbook {
            playbook: p.clone(),
        });
    }
    if let Some(p) = report.priority.filter(|p| p.rank() > priority.rank()) {
        priority = p;
    }
    if priority != case.priority {
        ch.push(Change::Priority { to: priority });
    }
    ch
}

/// The transition table as Markdown (docs/workflow.md embeds it; a test keeps them equal).
pub fn markdown_table() -> String {
    let mut s = String::from("| action | from | to | roles | records |\n|---|---|---|---|---|\n");
    for r in RULES {
        let from: Vec<&str> = r.from.iter().map(|s| s.as_str()).collect();
        let roles: Vec<&str> = r.roles.iter().map(|r| r.as_str()).collect();
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.action,
            from.join(", "),
            r.to,
            roles.join(", "),
            r.records
        ));
    }
    s
}

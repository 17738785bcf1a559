//! The closed loop: every action × every state × every role against the table, and the
//! paths through it (joint tasks, returns, rework, postponement, suspension, replay).

use super::fixture::{self, Fx};
use cityos_core::case::{apply_entry, replay, Change, LogEntry, State, TaskState};
use cityos_core::taxonomy::Step;
use cityos_core::time::{format_local, Millis, DAY, HOUR, MINUTE};
use cityos_core::workflow::{decide, rule, Action, Actor, Command, Ctx, WorkflowError, RULES};
use cityos_core::{Case, Role};

const LEAD: &str = "um-310001";

struct Walk<'a> {
    f: &'a Fx,
    case: Case,
    log: Vec<LogEntry>,
    now: Millis,
}

impl<'a> Walk<'a> {
    fn new(f: &'a Fx, category: &str) -> Walk<'a> {
        let (case, log) = fixture::new_case(f, category, fixture::t0());
        Walk {
            f,
            case,
            log,
            now: fixture::t0(),
        }
    }

    fn cmd(action: Action, role: Role, dept: Option<&str>) -> Command {
        let mut c = Command::new(
            action,
            Actor {
                id: format!("{role}-1"),
                role,
                department: dept.map(String::from),
                scope: None,
            },
        );
        c.note = "测试说明".into();
        c
    }

    fn try_do(&mut self, cmd: &Command) -> Result<(), WorkflowError> {
        let d = decide(
            &self.case,
            cmd,
            &Ctx {
                tax: &self.f.tax,
                cal: &self.f.cal,
                now: self.now,
            },
        )?;
        let entry = LogEntry {
            case_id: self.case.id,
            seq: self.case.version + 1,
            at: self.now,
            actor: cmd.actor.id.clone(),
            role: cmd.actor.role,
            action: d.action.into(),
            from: Some(self.case.state),
            to: d.to,
            note: cmd.note.clone(),
            attachments: vec![],
            changes: d.changes,
        };
        apply_entry(&mut self.case, &entry);
        assert_eq!(self.case.state, d.to);
        self.log.push(entry);
        Ok(())
    }

    fn ok(&mut self, action: Action, role: Role, dept: Option<&str>) -> &mut Self {
        let cmd = Self::cmd(action.clone(), role, dept);
        self.try_do(&cmd)
            .unwrap_or_else(|e| panic!("{action:?} by {role} in {}: {e}", self.case.state));
        self
    }

    fn later(&mut self, ms: Millis) -> &mut Self {
        self.now += ms;
        self
    }
}

use Role::*;

/// Brings a single-task case (street_vending, lead um-310001) into `state`.
fn reach(f: &Fx, state: State) -> Walk<'_> {
    let mut w = Walk::new(f, "street_vending");
    let file = |w: &mut Walk| {
        w.ok(Action::File, SubdistrictOfficer, None);
    };
    let dispatch = |w: &mut Walk| {
        file(w);
        w.ok(
            Action::Dispatch {
                departments: vec![],
            },
            SubdistrictOfficer,
            None,
        );
    };
    let handled = |w: &mut Walk| {
        dispatch(w);
        w.ok(Action::Acknowledge, Handler, Some(LEAD))
            .ok(Action::Start, Handler, Some(LEAD))
            .ok(Action::Handle, Handler, Some(LEAD));
    };
    match state {
        State::Reported => {}
        State::Filed => file(&mut w),
        State::Rejected => {
            w.ok(
                Action::Reject {
                    reason: "不属实".into(),
                },
                SubdistrictOfficer,
                None,
            );
        }
        State::Merged => {
            w.ok(Action::Merge { into: 99 }, SubdistrictOfficer, None);
        }
        State::Dispatched => dispatch(&mut w),
        State::Acknowledged => {
            dispatch(&mut w);
            w.ok(Action::Acknowledge, Handler, Some(LEAD));
        }
        State::InProgress => {
            dispatch(&mut w);
            w.ok(Action::Acknowledge, Handler, Some(LEAD))
                .ok(Action::Start, Handler, Some(LEAD));
        }
        State::Handled => handled(&mut w),
        State::Rework => {
            handled(&mut w);
            w.ok(Action::RejectVerification, Inspector, None);
        }
        State::Verified => {
            handled(&mut w);
            w.ok(Action::Verify, Inspector, None);
        }
        State::Closed => {
            handled(&mut w);
            w.ok(Action::Verify, Inspector, None)
                .ok(Action::Close, SubdistrictOfficer, None);
        }
        State::Evaluated => {
            handled(&mut w);
            w.ok(Action::Verify, Inspector, None)
                .ok(Action::Close, SubdistrictOfficer, None)
                .ok(
                    Action::Evaluate {
                        score: 5,
                        comment: String::new(),
                    },
                    Citizen,
                    None,
                );
        }
        State::Returned => {
            dispatch(&mut w);
            w.ok(
                Action::Return {
                    reason: "非本部门职责".into(),
                },
                Handler,
                Some(LEAD),
            );
        }
        State::Suspended => {
            file(&mut w);
            w.ok(
                Action::Suspend {
                    reason: "待协调".into(),
                },
                SubdistrictOfficer,
                None,
            );
        }
    }
    assert_eq!(w.case.state, state);
    w
}

fn sample_actions() -> Vec<Action> {
    vec![
        Action::File,
        Action::Reject { reason: "r".into() },
        Action::Merge { into: 99 },
        Action::Dispatch {
            departments: vec![],
        },
        Action::Acknowledge,
        Action::Start,
        Action::Handle,
        Action::Verify,
        Action::RejectVerification,
        Action::Close,
        Action::Evaluate {
            score: 4,
            comment: "好".into(),
        },
        Action::Return { reason: "r".into() },
        Action::RequestPostponement {
            extra: "1wd".into(),
            reason: "r".into(),
        },
        Action::GrantPostponement,
        Action::RefusePostponement,
        Action::Suspend { reason: "r".into() },
        Action::Resume,
        Action::Reopen { reason: "r".into() },
        Action::Split { report: 2 },
        Action::Escalate,
        Action::Tick {
            role: "r".into(),
            item: 0,
        },
        Action::Note,
        Action::Classify {
            category: "road_damage".into(),
        },
    ]
}

/// Preconditions beyond state and role that the single-task walk satisfies.
fn precondition_holds(state: State, action: &Action) -> bool {
    use State::*;
    match action {
        Action::Acknowledge => state == Dispatched,
        Action::Start => state == Acknowledged,
        Action::Handle => matches!(state, Acknowledged | InProgress | Rework),
        _ => true,
    }
}

#[test]
fn every_action_in_every_state_by_every_role() {
    let f = fixture::fx();
    let actions = sample_actions();
    assert_eq!(actions.len(), RULES.len(), "the matrix covers every rule");
    let mut allowed = 0;
    let mut refused = 0;
    for state in State::ALL {
        for action in &actions {
            for role in Role::ALL {
                let mut w = reach(&f, state);
                // Set up what some actions need.
                match action {
                    Action::GrantPostponement | Action::RefusePostponement
                        if matches!(
                            state,
                            State::Acknowledged | State::InProgress | State::Rework
                        ) =>
                    {
                        w.ok(
                            Action::RequestPostponement {
                                extra: "1wd".into(),
                                reason: "材料未到".into(),
                            },
                            Handler,
                            Some(LEAD),
                        );
                    }
                    Action::Split { .. } => {
                        let at = w.now;
                        cityos_core::case::apply(
                            &mut w.case,
                            &Change::ReportAttached {
                                report: 2,
                                at,
                                media: vec![],
                            },
                            at,
                        );
                    }
                    Action::Escalate => {
                        w.later(30 * DAY);
                    }
                    Action::Tick { .. } => {
                        let at = w.now;
                        let playbook = cityos_core::case::CasePlaybook {
                            scenario: "s".into(),
                            version: "1".into(),
                            lead: "roads".into(),
                            joint: vec![],
                            limits: Default::default(),
                            checklist: vec![cityos_core::case::ChecklistRole {
                                role: "r".into(),
                                items: vec![cityos_core::case::ChecklistItem {
                                    text: "t".into(),
                                    done_at: None,
                                    done_by: None,
                                }],
                            }],
                        };
                        cityos_core::case::apply(
                            &mut w.case,
                            &Change::Playbook {
                                playbook: Box::new(playbook),
                            },
                            at,
                        );
                    }
                    _ => {}
                }
                let dept = (role == Handler).then_some(LEAD);
                let mut cmd = Walk::cmd(action.clone(), role, dept);
                if matches!(action, Action::Note) {
                    cmd.note = "设备报警再次触发".into();
                }
                let r = rule(action.name()).unwrap();
                let res = w.try_do(&cmd);
                let role_ok = r.roles.contains(&role);
                let state_ok = r.from.contains(&state);
                match (&res, role_ok, state_ok) {
                    (Err(WorkflowError::RoleNotAllowed { .. }), false, _) => refused += 1,
                    (Err(WorkflowError::NotAllowedInState { .. }), true, false) => refused += 1,
                    (Ok(()), true, true) if precondition_holds(state, action) => allowed += 1,
                    (Err(WorkflowError::NotYourTask { .. }), true, true) if !precondition_holds(state, action) => refused += 1,
                    _ => panic!("{} in {state} by {role}: got {res:?} (role_ok {role_ok}, state_ok {state_ok})", action.name()),
                }
            }
        }
    }
    assert!(allowed > 60, "{allowed} allowed");
    assert!(refused > 1500, "{refused} refused");
}

#[test]
fn the_whole_loop_with_joint_tasks_and_rework() {
    let f = fixture::fx();
    let mut w = Walk::new(&f, "road_damage");
    w.ok(Action::File, SubdistrictOfficer, None)
        .later(10 * MINUTE);
    w.ok(
        Action::Dispatch {
            departments: vec![],
        },
        SubdistrictOfficer,
        None,
    );
    assert_eq!(w.case.tasks.len(), 2);
    assert_eq!(w.case.lead_task().unwrap().department, "roads");
    // The assistant acknowledges first: the case waits for the lead.
    w.ok(Action::Acknowledge, Handler, Some("water"));
    assert_eq!(w.case.state, State::Dispatched);
    w.ok(Action::Acknowledge, Handler, Some("roads"));
    assert_eq!(w.case.state, State::Acknowledged);
    assert!(w
        .case
        .deadline(Step::Acknowledge)
        .unwrap()
        .on_time()
        .unwrap());
    w.ok(Action::Start, Handler, Some("roads")).later(HOUR);
    // The lead finishes first: not handled until every task is.
    w.ok(Action::Handle, Handler, Some("roads"));
    assert_eq!(w.case.state, State::InProgress);
    w.ok(Action::Handle, Handler, Some("water"));
    assert_eq!(w.case.state, State::Handled);
    // Verification fails: back to both departments, counted.
    w.ok(Action::RejectVerification, Inspector, None);
    assert_eq!(w.case.state, State::Rework);
    assert_eq!(w.case.reworks, 1);
    assert!(w
        .case
        .tasks
        .iter()
        .all(|t| t.state == TaskState::InProgress));
    w.ok(Action::Handle, Handler, Some("water"))
        .ok(Action::Handle, Handler, Some("roads"));
    w.ok(Action::Verify, Inspector, None)
        .ok(Action::Close, DistrictOfficer, None);
    w.ok(
        Action::Evaluate {
            score: 4,
            comment: "满意".into(),
        },
        Citizen,
        None,
    );
    assert_eq!(w.case.state, State::Evaluated);
    assert_eq!(w.case.evaluation.as_ref().unwrap().score, 4);
    assert!(w.case.due().is_none());
    // Every step's deadline was met exactly once (handle twice: rework).
    for step in Step::ALL {
        assert!(
            w.case
                .deadlines
                .iter()
                .any(|d| d.step == step && d.met.is_some()),
            "{step:?}"
        );
    }
    // The log alone rebuilds the case.
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

#[test]
fn return_by_the_lead_goes_back_for_redispatch() {
    let f = fixture::fx();
    let mut w = reach(&f, State::Dispatched);
    // An assistant-less case: returning requires a reason.
    let no_reason = Walk::cmd(Action::Return { reason: " ".into() }, Handler, Some(LEAD));
    assert!(matches!(
        w.try_do(&no_reason),
        Err(WorkflowError::Invalid(_))
    ));
    // Another department cannot return someone else's task.
    let wrong = Walk::cmd(
        Action::Return { reason: "x".into() },
        Handler,
        Some("um-310002"),
    );
    assert!(matches!(
        w.try_do(&wrong),
        Err(WorkflowError::NotYourTask { .. })
    ));
    w.ok(
        Action::Return {
            reason: "不属于本中队".into(),
        },
        Handler,
        Some(LEAD),
    );
    assert_eq!(w.case.state, State::Returned);
    assert_eq!(w.case.returns, 1);
    assert!(w.case.tasks.is_empty());
    assert!(w.case.deadline(Step::Handle).is_none());
    // Officer re-dispatches to a department they name.
    let to = vec![cityos_core::workflow::DispatchTo {
        department: "um".into(),
        lead: true,
    }];
    w.ok(Action::Dispatch { departments: to }, DistrictOfficer, None);
    assert_eq!(w.case.lead_task().unwrap().department, "um");
    let bad = vec![cityos_core::workflow::DispatchTo {
        department: "nope".into(),
        lead: true,
    }];
    let mut w2 = reach(&f, State::Filed);
    let e = w2.try_do(&Walk::cmd(
        Action::Dispatch { departments: bad },
        DistrictOfficer,
        None,
    ));
    assert_eq!(e, Err(WorkflowError::UnknownDepartment("nope".into())));
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

#[test]
fn postponement_extends_the_handle_deadline_on_the_calendar() {
    let f = fixture::fx();
    let mut w = reach(&f, State::InProgress);
    let due = w.case.deadline(Step::Handle).unwrap().due;
    assert_eq!(
        format_local(due),
        "2026-11-26 10:00",
        "1 working day from Wed 10:00"
    );
    w.ok(
        Action::RequestPostponement {
            extra: "2wd".into(),
            reason: "需采购材料".into(),
        },
        Handler,
        Some(LEAD),
    );
    let twice = Walk::cmd(
        Action::RequestPostponement {
            extra: "1wd".into(),
            reason: "x".into(),
        },
        Handler,
        Some(LEAD),
    );
    assert!(
        matches!(w.try_do(&twice), Err(WorkflowError::Invalid(m)) if m.contains("already pending"))
    );
    w.ok(Action::GrantPostponement, SubdistrictOfficer, None);
    assert_eq!(
        format_local(w.case.deadline(Step::Handle).unwrap().due),
        "2026-11-30 10:00",
        "+2 wd skips the weekend"
    );
    assert!(w.case.postponement.is_none());
    // After the deadline a request is refused.
    w.later(10 * DAY);
    let late = Walk::cmd(
        Action::RequestPostponement {
            extra: "1wd".into(),
            reason: "x".into(),
        },
        Handler,
        Some(LEAD),
    );
    assert!(
        matches!(w.try_do(&late), Err(WorkflowError::Invalid(m)) if m.contains("before the handle deadline"))
    );
    let bad = Walk::cmd(
        Action::RequestPostponement {
            extra: "soon".into(),
            reason: "x".into(),
        },
        Handler,
        Some(LEAD),
    );
    let mut w2 = reach(&f, State::InProgress);
    assert!(matches!(w2.try_do(&bad), Err(WorkflowError::Invalid(_))));
    // Refusal keeps the deadline.
    w2.ok(
        Action::RequestPostponement {
            extra: "2wd".into(),
            reason: "x".into(),
        },
        Handler,
        Some(LEAD),
    );
    let before = w2.case.deadline(Step::Handle).unwrap().due;
    w2.ok(Action::RefusePostponement, SubdistrictOfficer, None);
    assert_eq!(w2.case.deadline(Step::Handle).unwrap().due, before);
}

#[test]
fn suspension_pauses_deadlines() {
    let f = fixture::fx();
    let mut w = reach(&f, State::InProgress);
    let due = w.case.deadline(Step::Handle).unwrap().due;
    w.ok(
        Action::Suspend {
            reason: "等待产权单位".into(),
        },
        SubdistrictOfficer,
        None,
    );
    assert_eq!(w.case.due(), None, "no deadline runs while suspended");
    w.later(3 * HOUR);
    w.ok(Action::Resume, SubdistrictOfficer, None);
    assert_eq!(w.case.state, State::InProgress);
    assert_eq!(w.case.deadline(Step::Handle).unwrap().due, due + 3 * HOUR);
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

#[test]
fn reopen_and_split_and_merge() {
    let f = fixture::fx();
    let mut w = reach(&f, State::Closed);
    w.ok(
        Action::Reopen {
            reason: "问题复发".into(),
        },
        DistrictOfficer,
        None,
    );
    assert_eq!(w.case.state, State::Filed);
    assert!(w.case.tasks.is_empty());
    let mut w = reach(&f, State::Filed);
    let split = Walk::cmd(Action::Split { report: 1 }, DistrictOfficer, None);
    assert!(
        matches!(w.try_do(&split), Err(WorkflowError::Invalid(m)) if m.contains("only one report"))
    );
    let split = Walk::cmd(Action::Split { report: 7 }, DistrictOfficer, None);
    assert!(
        matches!(w.try_do(&split), Err(WorkflowError::Invalid(m)) if m.contains("not part of case"))
    );
    let me = Walk::cmd(Action::Merge { into: 1 }, DistrictOfficer, None);
    assert!(matches!(w.try_do(&me), Err(WorkflowError::Invalid(m)) if m.contains("itself")));
    let bad_score = Walk::cmd(
        Action::Evaluate {
            score: 9,
            comment: String::new(),
        },
        Citizen,
        None,
    );
    let mut closed = reach(&f, State::Closed);
    assert!(
        matches!(closed.try_do(&bad_score), Err(WorkflowError::Invalid(m)) if m.contains("score 9"))
    );
}

#[test]
fn version_and_scope_are_checked() {
    let f = fixture::fx();
    let mut w = reach(&f, State::Reported);
    let mut stale = Walk::cmd(Action::File, SubdistrictOfficer, None);
    stale.expected_version = Some(0);
    assert_eq!(
        w.try_do(&stale),
        Err(WorkflowError::VersionConflict {
            expected: 0,
            actual: 1
        })
    );
    stale.expected_version = Some(1);
    w.try_do(&stale).unwrap();
    let mut other = Walk::cmd(
        Action::Dispatch {
            departments: vec![],
        },
        SubdistrictOfficer,
        None,
    );
    other.actor.scope = Some("310002".into());
    assert_eq!(w.try_do(&other), Err(WorkflowError::OutOfScope));
    other.actor.scope = Some("310001".into());
    w.try_do(&other).unwrap();
    // A handler without a department cannot act.
    let nodept = Walk::cmd(Action::Acknowledge, Handler, None);
    assert_eq!(w.try_do(&nodept), Err(WorkflowError::NoDepartment));
}

#[test]
fn merge_report_raises_priority_at_thresholds() {
    let f = fixture::fx();
    let w = reach(&f, State::Filed);
    let another = cityos_core::workflow::NewReport {
        channel: cityos_core::case::Channel::Citizen,
        category: w.case.category.clone(),
        lon: w.case.lon,
        lat: w.case.lat,
        text: "又一位市民".into(),
        contact: None,
        at: w.now,
        media: vec!["https://example.org/a.jpg".into()],
        priority: None,
        playbook: None,
        suggestion: None,
    };
    let ch = cityos_core::workflow::merge_report(&w.case, &another, 2, &f.tax);
    assert!(
        ch.contains(&Change::Priority {
            to: cityos_core::Priority::High
        }),
        "2 reporters: raised"
    );
    let mut c = w.case.clone();
    for x in &ch {
        cityos_core::case::apply(&mut c, x, w.now);
    }
    assert_eq!(c.media, vec!["https://example.org/a.jpg".to_string()]);
    let ch = cityos_core::workflow::merge_report(&c, &another, 3, &f.tax);
    assert!(
        ch.contains(&Change::Priority {
            to: cityos_core::Priority::Urgent
        }),
        "3 reporters: raised again"
    );
}

#[test]
fn workflow_doc_matches_the_table() {
    let doc = include_str!("../../../../docs/workflow.md");
    let table = cityos_core::workflow::markdown_table();
    assert!(doc.contains(&table), "docs/workflow.md is out of date; regenerate with `cityos workflow-table` and paste:\n{table}");
}

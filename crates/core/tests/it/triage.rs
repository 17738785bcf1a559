//! 分拨 (classify): staff pick the category of a case waiting in the 待分拨 triage queue,
//! or correct the one intake chose — who may, in which states, which targets are refused
//! (named in the error), the priority kept when higher, the route and the current step's
//! deadline replaced, the log note naming the pick and the model's suggestion, and replay.

use super::fixture::{self, Fx};
use cityos_core::case::{apply, apply_entry, replay, Change, LogEntry, Scored, Suggestion};
use cityos_core::taxonomy::{Priority, Step};
use cityos_core::time::{Millis, MINUTE};
use cityos_core::workflow::{decide, Action, Actor, Command, Ctx, Decision, WorkflowError};
use cityos_core::{Case, Role, State};

struct W<'a> {
    f: &'a Fx,
    case: Case,
    log: Vec<LogEntry>,
    now: Millis,
}

fn actor(role: Role) -> Actor {
    Actor {
        id: format!("{role}-1"),
        role,
        department: (role == Role::Handler).then(|| "um-310001".to_string()),
        scope: None,
    }
}

impl<'a> W<'a> {
    fn new(f: &'a Fx, category: &str) -> W<'a> {
        let (case, log) = fixture::new_case(f, category, fixture::t0());
        W {
            f,
            case,
            log,
            now: fixture::t0(),
        }
    }

    fn decide(&self, action: Action, role: Role) -> Result<Decision, WorkflowError> {
        let cmd = Command::new(action, actor(role));
        let cx = Ctx {
            tax: &self.f.tax,
            cal: &self.f.cal,
            now: self.now,
        };
        decide(&self.case, &cmd, &cx)
    }

    fn act(&mut self, action: Action, role: Role) -> Result<Decision, WorkflowError> {
        let d = self.decide(action, role)?;
        let entry = LogEntry {
            case_id: self.case.id,
            seq: self.case.version + 1,
            at: self.now,
            actor: format!("{role}-1"),
            role,
            action: d.action.into(),
            from: Some(self.case.state),
            to: d.to,
            note: d.note.clone().unwrap_or_default(),
            attachments: vec![],
            changes: d.changes.clone(),
        };
        apply_entry(&mut self.case, &entry);
        self.log.push(entry);
        Ok(d)
    }

    /// A change that is not a transition (intake's suggestion, a raised priority), logged
    /// as the system's so that replay sees it.
    fn system(&mut self, change: Change) {
        let entry = LogEntry {
            case_id: self.case.id,
            seq: self.case.version + 1,
            at: self.now,
            actor: "cityos".into(),
            role: Role::System,
            action: "note".into(),
            from: Some(self.case.state),
            to: self.case.state,
            note: String::new(),
            attachments: vec![],
            changes: vec![change],
        };
        apply_entry(&mut self.case, &entry);
        self.log.push(entry);
    }
}

fn classify(category: &str) -> Action {
    Action::Classify {
        category: category.into(),
    }
}

fn suggestion(category: &str, score: f32) -> Change {
    Change::Suggested {
        suggestion: Box::new(Suggestion {
            category: category.into(),
            line: None,
            department: None,
            score,
            top: vec![Scored {
                category: category.into(),
                score,
            }],
            model: "test".into(),
            routed: false,
            reason: "模型建议 低于阈值".into(),
            places: vec![],
            located_by_text: false,
            cues: vec![],
        }),
    }
}

#[test]
fn a_triage_case_takes_the_picked_category_route_and_file_deadline() {
    let f = fixture::fx();
    let mut w = W::new(&f, "triage");
    w.system(suggestion("street_vending", 0.62));
    let triage_due = w.case.deadline(Step::File).unwrap().due;
    assert_eq!(w.case.route[0].department, "dist-ccc");
    w.now += 20 * MINUTE;
    let d = w
        .act(classify("street_vending"), Role::SubdistrictOfficer)
        .unwrap();
    assert_eq!(d.to, State::Reported, "the state does not move");
    let c = &w.case;
    assert_eq!(c.category, "street_vending");
    assert_eq!(c.domain.as_str(), "construction");
    assert_eq!(c.priority, Priority::Normal);
    assert_eq!(c.route.len(), 1);
    assert_eq!(c.route[0].department, "um-310001");
    // One open deadline: the new category's 30-minute file limit from the pick.
    let open: Vec<_> = c.open_deadlines().collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].step, Step::File);
    assert_eq!(open[0].due, w.now + 30 * MINUTE);
    assert_ne!(open[0].due, triage_due);
    assert_eq!(
        d.note.as_deref().unwrap(),
        "分拨：待分拨诉求 → 无照游商 street_vending（人工 subdistrict_officer-1；模型建议 无照游商 0.62，采纳建议 / suggestion taken）"
    );
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

#[test]
fn a_correction_names_the_suggestion_it_overrides() {
    let f = fixture::fx();
    let mut w = W::new(&f, "triage");
    w.system(suggestion("street_vending", 0.41));
    let d = w
        .act(classify("road_damage"), Role::DistrictOfficer)
        .unwrap();
    let note = d.note.unwrap();
    assert!(note.contains("→ 道路破损 road_damage"), "{note}");
    assert!(
        note.contains("模型建议 无照游商 0.41，更正建议 / suggestion corrected"),
        "{note}"
    );
    assert_eq!(w.case.route[0].department, "roads");
    assert_eq!(w.case.route.len(), 2, "road damage has an assisting line");
    // Without a suggestion the note says so.
    let mut w = W::new(&f, "triage");
    let note = w
        .act(classify("road_damage"), Role::DistrictOfficer)
        .unwrap()
        .note
        .unwrap();
    assert!(
        note.ends_with("（人工 district_officer-1；无模型建议 / no suggestion）"),
        "{note}"
    );
}

#[test]
fn a_filed_or_returned_case_gets_the_new_dispatch_deadline() {
    let f = fixture::fx();
    // Intake routed on the model (street vending), an officer filed it, and the pick is
    // corrected before dispatch.
    let mut w = W::new(&f, "street_vending");
    w.system(suggestion("street_vending", 0.9));
    w.act(Action::File, Role::SubdistrictOfficer).unwrap();
    w.now += 5 * MINUTE;
    w.act(classify("lone_elder"), Role::SubdistrictOfficer)
        .unwrap();
    let c = &w.case;
    assert_eq!(c.state, State::Filed);
    assert_eq!(
        c.priority,
        Priority::High,
        "the new category's higher priority"
    );
    let open: Vec<_> = c.open_deadlines().collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].step, Step::Dispatch);
    // lone_elder: 15 minutes (its own priority, factor 1).
    assert_eq!(open[0].due, w.now + 15 * MINUTE);
    assert_eq!(c.route[0].department, "rc-310001001");
    // Dispatched to the wrong line, returned, re-categorised, then dispatched anew.
    w.act(
        Action::Dispatch {
            departments: vec![],
        },
        Role::SubdistrictOfficer,
    )
    .unwrap();
    let lead = w.case.lead_task().unwrap().department.clone();
    let mut cmd = Command::new(
        Action::Return {
            reason: "非本部门职责".into(),
        },
        Actor {
            id: "h".into(),
            role: Role::Handler,
            department: Some(lead),
            scope: None,
        },
    );
    cmd.note = "x".into();
    let cx = Ctx {
        tax: &f.tax,
        cal: &f.cal,
        now: w.now,
    };
    let d = decide(&w.case, &cmd, &cx).unwrap();
    for c in &d.changes {
        apply(&mut w.case, c, w.now);
    }
    w.case.version += 1;
    w.log.push(LogEntry {
        case_id: 1,
        seq: w.case.version,
        at: w.now,
        actor: "h".into(),
        role: Role::Handler,
        action: "return".into(),
        from: Some(State::Dispatched),
        to: d.to,
        note: String::new(),
        attachments: vec![],
        changes: d.changes,
    });
    assert_eq!(w.case.state, State::Returned);
    w.act(classify("street_vending"), Role::DistrictOfficer)
        .unwrap();
    assert_eq!(w.case.category, "street_vending");
    assert_eq!(
        w.case.priority,
        Priority::Normal,
        "the wrong category's priority goes with it (nothing had raised it)"
    );
    let open: Vec<_> = w.case.open_deadlines().collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].step, Step::Dispatch);
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

#[test]
fn a_priority_raised_by_urgency_cues_is_kept() {
    let f = fixture::fx();
    let mut w = W::new(&f, "triage");
    w.system(Change::Priority {
        to: Priority::Urgent,
    });
    let d = w
        .act(classify("street_vending"), Role::DistrictOfficer)
        .unwrap();
    assert!(!d
        .changes
        .iter()
        .any(|c| matches!(c, Change::Priority { .. })));
    assert_eq!(w.case.priority, Priority::Urgent);
    // The file deadline is the category's, scaled for the urgent priority: shorter.
    let due = w.case.deadline(Step::File).unwrap().due;
    assert!(due < w.now + 30 * MINUTE, "{due}");
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

#[test]
fn only_officers_classify_and_only_before_dispatch() {
    let f = fixture::fx();
    for role in Role::ALL {
        let w = W::new(&f, "triage");
        let r = w.decide(classify("street_vending"), role);
        match role {
            Role::DistrictOfficer | Role::SubdistrictOfficer => assert!(r.is_ok(), "{role}: {r:?}"),
            _ => assert_eq!(
                r.unwrap_err(),
                WorkflowError::RoleNotAllowed {
                    action: "classify",
                    role
                }
            ),
        }
    }
    let mut w = W::new(&f, "street_vending");
    w.act(Action::File, Role::DistrictOfficer).unwrap();
    w.act(
        Action::Dispatch {
            departments: vec![],
        },
        Role::DistrictOfficer,
    )
    .unwrap();
    let e = w
        .decide(classify("road_damage"), Role::DistrictOfficer)
        .unwrap_err();
    assert_eq!(
        e,
        WorkflowError::NotAllowedInState {
            action: "classify",
            state: State::Dispatched
        }
    );
    assert!(e.to_string().contains("待签收"), "{e}");
}

#[test]
fn the_target_must_be_a_category_a_case_can_have() {
    let f = fixture::fx();
    let w = W::new(&f, "triage");
    let err = |c: &str| {
        w.decide(classify(c), Role::DistrictOfficer)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("no_such"),
        "category \"no_such\" is not in the taxonomy"
    );
    let e = err("street");
    assert!(e.contains("\"street\"") && e.contains("is a group"), "{e}");
    let e = err("triage");
    assert!(e.contains("\"triage\"") && e.contains("queue"), "{e}");
    let w = W::new(&f, "street_vending");
    let e = w
        .decide(classify("street_vending"), Role::DistrictOfficer)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already in category \"street_vending\""), "{e}");
}

#[test]
fn the_triage_default_priority_gives_way_to_the_picked_category() {
    let mut f = fixture::fx();
    // A low-priority category: the triage desk's "normal" is no reason to keep normal.
    let i = f
        .tax
        .categories
        .iter()
        .position(|c| c.code == "street_vending")
        .unwrap();
    f.tax.categories[i].priority = Priority::Low;
    let mut w = W::new(&f, "triage");
    assert_eq!(w.case.priority, Priority::Normal);
    w.act(classify("street_vending"), Role::DistrictOfficer)
        .unwrap();
    assert_eq!(w.case.priority, Priority::Low);
    // Raised by a cue above the triage default: kept over the category's low.
    let mut w = W::new(&f, "triage");
    w.system(Change::Priority { to: Priority::High });
    w.act(classify("street_vending"), Role::DistrictOfficer)
        .unwrap();
    assert_eq!(w.case.priority, Priority::High);
    assert_eq!(replay(&w.log).unwrap(), w.case);
}

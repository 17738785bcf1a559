//! Store stories — a case's whole life against the store: the full loop across a restart, trusted channels dispatched with joint tasks.

use super::*;

story!(full_loop_survives_restart);
fn full_loop_survives_restart(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("street_vending", spot(0), Channel::Citizen, t0()))
        .unwrap();
    assert!(!o.merged);
    assert_eq!(o.case.state, State::Reported);
    assert!(o.case.number.starts_with("XH261125"), "{}", o.case.number);
    let id = o.case.id;
    let log = e.log(id).unwrap();
    assert!(log[0].note.contains("routed"), "{}", log[0].note);
    let mut now = t0();
    let mut step = |e: &mut Engine, a: Action, actor: Actor| {
        now += 10 * MINUTE;
        e.transition(id, cmd(a, actor), now).unwrap().case
    };
    step(&mut e, Action::File, officer());
    let c = step(
        &mut e,
        Action::Dispatch {
            departments: vec![],
        },
        officer(),
    );
    let lead = c.lead_task().unwrap().department.clone();
    assert!(
        lead.ends_with("310104003"),
        "street-level unit of 天平路: {lead}"
    );
    step(&mut e, Action::Acknowledge, handler(&lead));
    step(&mut e, Action::Start, handler(&lead));
    step(&mut e, Action::Handle, handler(&lead));
    // Restart in the middle: the engine reloads open cases from the store.
    drop(e);
    let mut e = b.engine();
    let c = e.case(id).unwrap().unwrap();
    assert_eq!(c.state, State::Handled);
    step(&mut e, Action::Verify, inspector());
    step(&mut e, Action::Close, officer());
    let c = step(
        &mut e,
        Action::Evaluate {
            score: 5,
            comment: "很满意".into(),
        },
        Actor {
            id: "citizen".into(),
            role: Role::Citizen,
            department: None,
            scope: None,
        },
    );
    assert_eq!(c.state, State::Evaluated);
    assert_eq!(e.log(id).unwrap().len(), 9);
    assert_eq!(e.open_cases().count(), 0);
    assert_replay(e.store());
    let by_number = e.store().load_case_by_number(&c.number).unwrap().unwrap();
    assert_eq!(by_number, c);
}

story!(trusted_channels_are_dispatched_with_joint_tasks);
fn trusted_channels_are_dispatched_with_joint_tasks(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("waterlogging", spot(1), Channel::Sensor, t0()))
        .unwrap();
    assert_eq!(o.case.state, State::Dispatched);
    let cat = e.taxonomy().category("waterlogging").unwrap().clone();
    assert_eq!(
        o.case.tasks.len(),
        1 + cat.assist.len(),
        "one task per line"
    );
    assert_eq!(o.case.tasks.iter().filter(|t| t.lead).count(), 1);
    let log = e.log(o.case.id).unwrap();
    assert_eq!(
        log.iter().map(|l| l.action.as_str()).collect::<Vec<_>>(),
        ["report", "file", "dispatch"]
    );
    // Every task must be handled before the case is.
    let mut now = t0();
    let tasks = o.case.tasks.clone();
    for (i, t) in tasks.iter().enumerate() {
        now += MINUTE;
        e.transition(
            o.case.id,
            cmd(Action::Acknowledge, handler(&t.department)),
            now,
        )
        .unwrap();
        now += MINUTE;
        let c = e
            .transition(o.case.id, cmd(Action::Handle, handler(&t.department)), now)
            .unwrap()
            .case;
        let last = i == tasks.len() - 1;
        assert_eq!(
            c.state == State::Handled,
            last,
            "after {} of {} tasks",
            i + 1,
            tasks.len()
        );
    }
    assert_replay(e.store());
}

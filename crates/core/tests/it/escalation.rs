//! The escalation policy: the ladder of command centres above the handling level, and
//! when the next escalation is due.

use super::fixture;
use cityos_core::escalation::{ladder, next_escalation};
use cityos_core::time::{format_local, MINUTE};
use cityos_core::workflow::{decide, Action, Actor, Command, Ctx};
use cityos_core::Role;

fn act(
    f: &fixture::Fx,
    case: &mut cityos_core::Case,
    action: Action,
    role: Role,
    dept: Option<&str>,
    now: i64,
) {
    let cmd = Command::new(
        action,
        Actor {
            id: "t".into(),
            role,
            department: dept.map(String::from),
            scope: None,
        },
    );
    let d = decide(
        case,
        &cmd,
        &Ctx {
            tax: &f.tax,
            cal: &f.cal,
            now,
        },
    )
    .unwrap();
    for c in &d.changes {
        cityos_core::case::apply(case, c, now);
    }
    case.version += 1;
}

#[test]
fn escalation_ladder_and_timing() {
    let f = fixture::fx();
    let t0 = fixture::t0(); // Wed 10:00
                            // Community-level case: sub-district centre first, then the district.
    let (mut c, _) = fixture::new_case(&f, "lone_elder", t0);
    act(&f, &mut c, Action::File, Role::SubdistrictOfficer, None, t0);
    act(
        &f,
        &mut c,
        Action::Dispatch {
            departments: vec![],
        },
        Role::SubdistrictOfficer,
        None,
        t0,
    );
    assert_eq!(
        ladder(&f.tax, &c),
        vec!["sub-ccc-310001".to_string(), "dist-ccc".to_string()]
    );
    // Acknowledge deadline: 30 min (natural) → first escalation at 10:30.
    let (at, rung, to) = next_escalation(&f.tax, &f.cal, &c).unwrap();
    assert_eq!(
        (format_local(at).as_str(), rung, to.as_str()),
        ("2026-11-25 10:30", 1, "sub-ccc-310001")
    );
    // Not due yet: refused.
    let early = Command::new(Action::Escalate, Actor::system());
    assert!(decide(
        &c,
        &early,
        &Ctx {
            tax: &f.tax,
            cal: &f.cal,
            now: t0 + 10 * MINUTE
        }
    )
    .is_err());
    act(&f, &mut c, Action::Escalate, Role::System, None, at);
    assert!(c.overdue);
    assert_eq!(c.escalations, 1);
    assert_eq!(
        c.priority,
        cityos_core::Priority::Urgent,
        "raised from high"
    );
    // Second rung 4 working hours later: 10:30 + 4wh = 15:30.
    let (at2, rung2, to2) = next_escalation(&f.tax, &f.cal, &c).unwrap();
    assert_eq!(
        (format_local(at2).as_str(), rung2, to2.as_str()),
        ("2026-11-25 15:30", 2, "dist-ccc")
    );
    act(&f, &mut c, Action::Escalate, Role::System, None, at2);
    assert_eq!(
        next_escalation(&f.tax, &f.cal, &c),
        None,
        "the district is the top"
    );
    // Moving on starts a new ladder.
    act(
        &f,
        &mut c,
        Action::Acknowledge,
        Role::Handler,
        Some("rc-310001001"),
        at2,
    );
    assert_eq!(c.escalations, 0);
    assert!(!c.overdue);

    // A sub-district-level case before dispatch escalates straight to the district.
    let (c2, _) = fixture::new_case(&f, "street_vending", t0);
    assert_eq!(ladder(&f.tax, &c2), vec!["dist-ccc".to_string()]);
}

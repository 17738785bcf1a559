//! Store stories — escalation: a due escalation fires once, also across a restart.

use super::*;

story!(escalation_fires_once_across_restart);
fn escalation_fires_once_across_restart(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("lift_entrapment", spot(6), Channel::Sensor, t0()))
        .unwrap();
    assert_eq!(o.case.state, State::Dispatched);
    let due = o.case.due().unwrap();
    assert_eq!(
        e.next_timer(),
        Some(due),
        "the timer index knows the first escalation"
    );
    assert!(
        e.tick(due - 1).unwrap().is_empty(),
        "not before the deadline"
    );
    drop(e);
    // The server was down across the deadline; after restart the tick fires once.
    let mut e = b.engine();
    assert_eq!(e.next_timer(), Some(due), "timers are rebuilt at start");
    let fired = e.tick(due + MINUTE).unwrap();
    assert_eq!(fired.len(), 1);
    assert!(
        e.next_timer().is_none_or(|t| t > due + MINUTE),
        "no rung is due again"
    );
    assert_eq!(fired[0].rung, 1);
    let c = e.case(o.case.id).unwrap().unwrap();
    assert!(c.overdue);
    assert_eq!(c.escalated_to.as_deref(), Some("dist-ccc"));
    assert!(e.tick(due + 2 * MINUTE).unwrap().is_empty(), "exactly once");
    drop(e);
    let mut e = b.engine();
    assert!(
        e.tick(due + 3 * MINUTE).unwrap().is_empty(),
        "exactly once, even after another restart"
    );
    let log = e.log(o.case.id).unwrap();
    assert_eq!(log.iter().filter(|l| l.action == "escalate").count(), 1);
    assert_replay(e.store());
}

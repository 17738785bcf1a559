//! Alert lifecycle with `for`, fingerprints, silences and inhibition.

use cityos_core::alerting::{AlertRule, AlertState, Alerting, Notice};
use cityos_core::indicators::WarnLevel::{self, *};

const M: i64 = 60_000;

fn rule(code: &str, at_least: WarnLevel, for_ms: i64, inhibits: &[&str]) -> AlertRule {
    AlertRule {
        code: code.into(),
        indicator: "x".into(),
        at_least,
        for_ms,
        case_levels: vec![Orange, Red],
        category: "waterlogging".into(),
        public: false,
        inhibits: inhibits.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn pending_firing_resolved_with_for_and_one_alert_per_fingerprint() {
    let r = rule("flood", Yellow, 5 * M, &[]);
    let rules = vec![r.clone()];
    let mut a = Alerting::default();
    let sub = "310104003";
    assert_eq!(
        a.evaluate(&rules, &r, sub, Blue, 8.0, 0),
        None,
        "below the rule's level"
    );
    assert_eq!(
        a.evaluate(&rules, &r, sub, Yellow, 21.0, 0),
        None,
        "pending"
    );
    assert!(matches!(
        a.alerts().next().unwrap().1.state,
        AlertState::Pending { since: 0 }
    ));
    assert_eq!(
        a.evaluate(&rules, &r, sub, Orange, 31.0, 4 * M),
        None,
        "not yet 5 minutes"
    );
    let n = a.evaluate(&rules, &r, sub, Orange, 32.0, 5 * M);
    assert_eq!(
        n,
        Some(Notice::Fired {
            fingerprint: "flood@310104003".into(),
            level: Orange,
            value: 32.0
        })
    );
    assert!(r.opens_case(Orange) && !r.opens_case(Yellow));
    // The same rule and region again: the same alert (no second notice), a level change.
    assert_eq!(a.evaluate(&rules, &r, sub, Orange, 33.0, 6 * M), None);
    assert!(matches!(
        a.evaluate(&rules, &r, sub, Red, 45.0, 7 * M),
        Some(Notice::LevelChanged {
            from: Orange,
            to: Red,
            ..
        })
    ));
    assert_eq!(a.alerts().count(), 1);
    // Another region is another alert.
    a.evaluate(&rules, &r, "310104004", Red, 50.0, 7 * M);
    assert_eq!(a.alerts().count(), 2);
    // Back to normal: resolved.
    assert!(matches!(
        a.evaluate(&rules, &r, sub, Normal, 3.0, 8 * M),
        Some(Notice::Resolved { .. })
    ));
    assert_eq!(a.alerts().count(), 1);
    // A pending alert that recovers resolves silently.
    a.evaluate(&rules, &r, "310104005", Yellow, 21.0, 8 * M);
    assert_eq!(a.evaluate(&rules, &r, "310104005", Blue, 12.0, 9 * M), None);
}

#[test]
fn silences_mute_notices_until_they_end() {
    let r = rule("crowd", Orange, 0, &[]);
    let rules = vec![r.clone()];
    let mut a = Alerting::default();
    assert!(
        a.silence("crowd", "310104", "zhang", "", 10 * M, 0)
            .is_err(),
        "a reason is required"
    );
    assert!(
        a.silence("crowd", "310104", "zhang", "演练", 0, 0).is_err(),
        "ends in the future"
    );
    let id = a
        .silence("crowd", "310104", "zhang", "武康大楼跨年演练", 10 * M, 0)
        .unwrap();
    assert_eq!(a.silences(0).count(), 1);
    // Silenced inside the district: the state is kept, the notice is not given.
    assert_eq!(a.evaluate(&rules, &r, "310104003", Red, 9000.0, M), None);
    assert!(matches!(
        a.alerts().next().unwrap().1.state,
        AlertState::Firing { .. }
    ));
    // Expired: the next change is told.
    assert!(a.expire(id, 2 * M));
    assert!(!a.expire(id, 3 * M), "already over");
    assert!(matches!(
        a.evaluate(&rules, &r, "310104003", Normal, 10.0, 3 * M),
        Some(Notice::Resolved { .. })
    ));
}

#[test]
fn a_district_power_outage_mutes_streetlight_alerts_inside_it() {
    let outage = rule("power_outage", Orange, 0, &["streetlight_out"]);
    let light = rule("streetlight_out", Blue, 0, &[]);
    let rules = vec![outage.clone(), light.clone()];
    let mut a = Alerting::default();
    assert!(a
        .evaluate(&rules, &outage, "310104003", Red, 1.0, 0)
        .is_some());
    assert_eq!(
        a.evaluate(&rules, &light, "310104003012", Orange, 40.0, M),
        None,
        "inside: muted"
    );
    assert!(
        a.evaluate(&rules, &light, "310104016001", Orange, 40.0, M)
            .is_some(),
        "outside: told"
    );
    // The outage resolves: the streetlights speak again.
    a.evaluate(&rules, &outage, "310104003", Normal, 0.0, 2 * M);
    assert!(matches!(
        a.evaluate(&rules, &light, "310104003012", Red, 80.0, 3 * M),
        Some(Notice::LevelChanged { .. })
    ));
}

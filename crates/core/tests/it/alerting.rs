//! Alert lifecycle with `for`, fingerprints, silences and inhibition; alerts and silences
//! put back after a restart.

use cityos_core::alerting::{
    parse_alert_rules, Alert, AlertRule, AlertState, Alerting, Expr, Notice, Sample, Silence,
};
use cityos_core::indicators::parse_indicators;
use cityos_core::indicators::WarnLevel::{self, *};

const M: i64 = 60_000;

fn rule(code: &str, at_least: WarnLevel, for_ms: i64, inhibits: &[&str]) -> AlertRule {
    AlertRule {
        code: code.into(),
        name_zh: code.into(),
        name_en: code.into(),
        expr: Expr::parse(&format!("x >= {}", at_least.as_str())).unwrap(),
        for_ms,
        level: None,
        case_levels: vec![Orange, Red],
        category: "waterlogging".into(),
        group: code.into(),
        public: None,
        inhibits: inhibits.iter().map(|s| s.to_string()).collect(),
    }
}

/// What a rule over indicator `x` sees when `x` is at `level` with `value`.
fn at(r: &AlertRule, level: WarnLevel, value: f64) -> Sample {
    r.sample(&|_| Some((value, level))).unwrap()
}

#[test]
fn pending_firing_resolved_with_for_and_one_alert_per_fingerprint() {
    let r = rule("flood", Yellow, 5 * M, &[]);
    let rules = vec![r.clone()];
    let mut a = Alerting::default();
    let sub = "310104003";
    assert_eq!(
        a.evaluate(&rules, &r, sub, at(&r, Blue, 8.0), 0),
        None,
        "below the rule's level"
    );
    assert_eq!(
        a.evaluate(&rules, &r, sub, at(&r, Yellow, 21.0), 0),
        None,
        "pending"
    );
    assert!(matches!(
        a.alerts().next().unwrap().1.state,
        AlertState::Pending { since: 0 }
    ));
    assert_eq!(
        a.evaluate(&rules, &r, sub, at(&r, Orange, 31.0), 4 * M),
        None,
        "not yet 5 minutes"
    );
    let n = a.evaluate(&rules, &r, sub, at(&r, Orange, 32.0), 5 * M);
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
    assert_eq!(
        a.evaluate(&rules, &r, sub, at(&r, Orange, 33.0), 6 * M),
        None
    );
    assert!(matches!(
        a.evaluate(&rules, &r, sub, at(&r, Red, 45.0), 7 * M),
        Some(Notice::LevelChanged {
            from: Orange,
            to: Red,
            ..
        })
    ));
    assert_eq!(a.alerts().count(), 1);
    // Another region is another alert.
    a.evaluate(&rules, &r, "310104004", at(&r, Red, 50.0), 7 * M);
    assert_eq!(a.alerts().count(), 2);
    // Back to normal: resolved.
    assert!(matches!(
        a.evaluate(&rules, &r, sub, at(&r, Normal, 3.0), 8 * M),
        Some(Notice::Resolved { .. })
    ));
    assert_eq!(a.alerts().count(), 1);
    // A pending alert that recovers resolves silently.
    a.evaluate(&rules, &r, "310104005", at(&r, Yellow, 21.0), 8 * M);
    assert_eq!(
        a.evaluate(&rules, &r, "310104005", at(&r, Blue, 12.0), 9 * M),
        None
    );
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
    assert_eq!(
        a.evaluate(&rules, &r, "310104003", at(&r, Red, 9000.0), M),
        None
    );
    assert!(matches!(
        a.alerts().next().unwrap().1.state,
        AlertState::Firing { .. }
    ));
    // Expired: still firing, it is news now — told as a firing.
    assert!(a.expire(id, 2 * M));
    assert!(!a.expire(id, 3 * M), "already over");
    assert!(matches!(
        a.evaluate(&rules, &r, "310104003", at(&r, Red, 9000.0), 3 * M),
        Some(Notice::Fired { level: Red, .. })
    ));
    // A firing that was told is always resolved aloud, even under a new silence.
    a.silence("crowd", "310104", "zhang", "演练", 10 * M, 3 * M)
        .unwrap();
    assert!(matches!(
        a.evaluate(&rules, &r, "310104003", at(&r, Normal, 10.0), 4 * M),
        Some(Notice::Resolved { .. })
    ));
    // One that was never told resolves silently.
    assert_eq!(
        a.evaluate(&rules, &r, "310104004", at(&r, Red, 9000.0), 5 * M),
        None
    );
    assert_eq!(
        a.evaluate(&rules, &r, "310104004", at(&r, Normal, 1.0), 6 * M),
        None
    );
}

#[test]
fn a_district_power_outage_mutes_streetlight_alerts_inside_it() {
    let outage = rule("power_outage", Orange, 0, &["streetlight_out"]);
    let light = rule("streetlight_out", Blue, 0, &[]);
    let rules = vec![outage.clone(), light.clone()];
    let mut a = Alerting::default();
    assert!(a
        .evaluate(&rules, &outage, "310104003", at(&outage, Red, 1.0), 0)
        .is_some());
    assert_eq!(
        a.evaluate(&rules, &light, "310104003012", at(&light, Orange, 40.0), M),
        None,
        "inside: muted"
    );
    assert!(
        a.evaluate(&rules, &light, "310104016001", at(&light, Orange, 40.0), M)
            .is_some(),
        "outside: told"
    );
    // The outage resolves: the streetlights speak again — their firing is news now.
    a.evaluate(
        &rules,
        &outage,
        "310104003",
        at(&outage, Normal, 0.0),
        2 * M,
    );
    assert!(matches!(
        a.evaluate(&rules, &light, "310104003012", at(&light, Red, 80.0), 3 * M),
        Some(Notice::Fired { level: Red, .. })
    ));
}

#[test]
fn expressions_parse_and_hold_over_values_and_levels() {
    let e =
        Expr::parse("river_water_level >= yellow and (rainfall_mm_h > 30 or typhoon_wind >= 10)")
            .unwrap();
    assert_eq!(
        e.indicators(),
        vec!["river_water_level", "rainfall_mm_h", "typhoon_wind"]
    );
    let look = |rain: f64| {
        move |c: &str| match c {
            "river_water_level" => Some((4.3, Yellow)),
            "rainfall_mm_h" => Some((rain, Normal)),
            _ => None, // no wind reading: that comparison does not hold
        }
    };
    assert!(e.holds(&look(31.0)));
    assert!(!e.holds(&look(30.0)), "> is strict");
    let neg = Expr::parse("water_supply_pressure < -0.5").unwrap();
    assert!(neg.holds(&|_| Some((-1.0, Normal))));
    for (bad, says) in [
        ("", "expected an indicator"),
        ("x >", "expected a number or a level"),
        ("x > purple", "neither a number nor a level"),
        ("x 3", "expected a comparison"),
        ("(x > 3", "expected \")\""),
        ("x > 3 y", "after a complete expression"),
        ("x > 3 & y < 2", "unexpected character '&'"),
        ("x > 1.2.3", "not a number"),
    ] {
        let err = Expr::parse(bad).unwrap_err();
        assert!(err.contains(says), "{bad:?}: {err}");
    }
}

#[test]
fn a_rule_with_a_fixed_level_fires_at_it_on_a_value_threshold() {
    let inds = parse_indicators(
        r#"
[[indicator]]
code = "power_out"
name_zh = "停电户数"
name_en = "Households without power"
domain = "livelihood"
source = "external"
range = [0, 1000000]
"#,
    )
    .unwrap();
    let rules = parse_alert_rules(
        r#"
[[rule]]
code = "outage"
name_zh = "大面积停电"
name_en = "Wide power outage"
expr = "power_out > 500"
level = "red"
category = "power_outage"
"#,
        &inds,
        &|c| c == "power_outage",
    )
    .unwrap();
    let r = &rules[0];
    assert_eq!(
        r.case_levels,
        vec![Orange, Red],
        "orange and red by default"
    );
    assert_eq!(r.sample(&|_| Some((800.0, Normal))).unwrap().level, Red);
    let calm = r.sample(&|_| Some((20.0, Normal))).unwrap();
    assert!(!calm.breach && calm.level == Normal);
    assert!(r.sample(&|_| None).is_none(), "no value, nothing to judge");
}

#[test]
fn bad_rules_are_named_at_load_time() {
    let inds = parse_indicators(
        r#"
[[indicator]]
code = "depth"
name_zh = "积水"
name_en = "Depth"
domain = "safety"
source = "external"
direction = "up"
levels = [10, 20, 30, 50]
range = [0, 500]

[[indicator]]
code = "plain"
name_zh = "无阈值"
name_en = "No thresholds"
domain = "safety"
source = "external"
range = [0, 100]
"#,
    )
    .unwrap();
    let text = r#"
[[rule]]
code = "a"
name_zh = "a"
name_en = "a"
expr = "depth >= orange and nowhere > 3"
category = "waterlogging"

[[rule]]
code = "b"
name_zh = "b"
name_en = "b"
expr = "depth >="
category = "waterlogging"

[[rule]]
code = "c"
name_zh = "c"
name_en = "c"
expr = "plain >= red"
category = "waterlogging"

[[rule]]
code = "d"
name_zh = "d"
name_en = "d"
expr = "plain > 3"
category = "waterlogging"

[[rule]]
code = "e"
name_zh = "e"
name_en = "e"
expr = "depth > 3"
for = "five minutes"
category = "waterlogging"

[[rule]]
code = "f"
name_zh = "f"
name_en = "f"
expr = "depth > 3"
category = "no_such_category"
cap_category = "Weather"
inhibits = ["zzz"]

[[rule]]
code = "g"
name_zh = "g"
name_en = "g"
expr = "depth >= orange"
category = "waterlogging"

[[rule]]
code = "g"
name_zh = "g"
name_en = "g"
expr = "depth >= red"
category = "waterlogging"
"#;
    let errs = parse_alert_rules(text, &inds, &|c| c == "waterlogging").unwrap_err();
    let all = errs.join("\n");
    for says in [
        r#"alert rule "a": unknown indicator "nowhere""#,
        r#"alert rule "b": expression "depth >=" does not parse"#,
        r#"alert rule "c": indicator "plain" has no warning levels to compare"#,
        r#"alert rule "d": indicator "plain" has no warning levels: give the rule a level"#,
        r#"alert rule "e": for Some("five minutes") is not a duration"#,
        r#"alert rule "f": unknown category "no_such_category""#,
        r#"alert rule "f": cap_category "Weather" is not one of"#,
        r#"alert rule "f": inhibits unknown rule "zzz""#,
        r#"alert rule "g": the code is used twice"#,
    ] {
        assert!(all.contains(says), "missing {says:?} in:\n{all}");
    }
    assert!(
        parse_alert_rules("[[rule]]\ncode = 1", &inds, &|_| true).unwrap_err()[0]
            .starts_with("alert rules do not parse")
    );
}

#[test]
fn restored_alerts_and_silences_continue() {
    let r = rule("flood", Yellow, 5 * M, &[]);
    let rules = vec![r.clone()];
    let mut a = Alerting::default();
    let sub = "310104003";
    let fp = cityos_core::alerting::fingerprint("flood", sub);
    a.restore_alert(
        fp.clone(),
        Alert {
            rule: "flood".into(),
            region: sub.into(),
            state: AlertState::Firing {
                since: 0,
                level: Orange,
            },
            value: 30.0,
            level: Orange,
            told: true,
        },
    );
    // Still breaching at the same level: nothing new; its all-clear is told.
    assert_eq!(
        a.evaluate(&rules, &r, sub, at(&r, Orange, 31.0), 10 * M),
        None
    );
    assert_eq!(
        a.evaluate(&rules, &r, sub, at(&r, Normal, 1.0), 11 * M),
        Some(Notice::Resolved {
            fingerprint: fp,
            value: 1.0
        })
    );
    // Silences: an ended one is not put back, but its id is never given again.
    let silence = |id, ends_at| Silence {
        id,
        rule: "flood".into(),
        region: "310104".into(),
        owner: "zhang".into(),
        reason: "演练".into(),
        ends_at,
    };
    a.restore_silence(silence(2, 60 * M), 12 * M);
    a.restore_silence(silence(5, 12 * M), 12 * M);
    assert_eq!(
        a.silences(12 * M).map(|s| s.id).collect::<Vec<_>>(),
        vec![2]
    );
    assert!(a.silenced("flood", sub, 12 * M));
    assert_eq!(a.silence("flood", sub, "li", "x", 30 * M, 12 * M), Ok(6));
}

//! Alarm rules: thresholds with hysteresis, `for` durations, silence, and the files that
//! define devices and rules.

use super::fixture;
use cityos_core::sensing::{
    parse_devices_csv, parse_duration, parse_rules, AlarmChange, AlarmRule, AlarmState, Condition,
    Device,
};
use cityos_core::time::{HOUR, MINUTE};

fn rule(condition: Condition, for_ms: i64) -> AlarmRule {
    AlarmRule {
        code: "r".into(),
        name_zh: "测试".into(),
        kind: "water_level".into(),
        metric: "depth_cm".into(),
        condition,
        for_ms,
        category: "waterlogging".into(),
        tags: vec![],
        range: Some((0.0, 500.0)),
    }
}

/// Feeds (minute, value) readings; returns the changes with their minute.
fn run(r: &AlarmRule, readings: &[(i64, f64)]) -> Vec<(i64, AlarmChange)> {
    let mut s = AlarmState::Normal;
    let mut out = Vec::new();
    for &(m, v) in readings {
        let (n, c) = r.observe(s, v, m * MINUTE);
        s = n;
        if let Some(c) = c {
            out.push((m, c));
        }
    }
    out
}

#[test]
fn threshold_with_hysteresis_fires_once_and_clears_below_the_lower_line() {
    let r = rule(
        Condition::Above {
            on: 15.0,
            off: 10.0,
        },
        0,
    );
    let ch = run(
        &r,
        &[
            (0, 5.0),
            (1, 16.0),
            (2, 20.0),
            (3, 14.0),
            (4, 12.0),
            (5, 16.0),
            (6, 9.9),
            (7, 16.0),
        ],
    );
    assert_eq!(
        ch,
        vec![
            (1, AlarmChange::Fired { since: MINUTE }),
            (6, AlarmChange::Cleared),
            (7, AlarmChange::Fired { since: 7 * MINUTE }),
        ]
    );
    // Exactly at the lines: neither fires nor clears.
    assert_eq!(run(&r, &[(0, 15.0)]), vec![]);
    let (s, c) = r.observe(AlarmState::Firing { since: 0 }, 10.0, MINUTE);
    assert_eq!((s, c), (AlarmState::Firing { since: 0 }, None));
    // Below-rules mirror it.
    let low = rule(Condition::Below { on: 2.0, off: 3.0 }, 0);
    assert_eq!(
        run(&low, &[(0, 2.5), (1, 1.0), (2, 2.5), (3, 3.5)]),
        vec![
            (1, AlarmChange::Fired { since: MINUTE }),
            (3, AlarmChange::Cleared)
        ]
    );
}

#[test]
fn a_for_duration_must_hold_without_a_break() {
    let r = rule(
        Condition::Above {
            on: 15.0,
            off: 10.0,
        },
        5 * MINUTE,
    );
    // Breaks at minute 3: the pending restarts at 4, fires at 9 (not at 5).
    let ch = run(
        &r,
        &[
            (0, 16.0),
            (2, 17.0),
            (3, 14.0),
            (4, 16.0),
            (8, 16.0),
            (9, 16.0),
            (10, 18.0),
        ],
    );
    assert_eq!(ch, vec![(9, AlarmChange::Fired { since: 4 * MINUTE })]);
    // Time alone completes a pending condition (no further reading needed).
    let (s, _) = r.observe(AlarmState::Normal, 20.0, 0);
    assert_eq!(s, AlarmState::Pending { since: 0 });
    assert_eq!(r.tick(s, 0, 4 * MINUTE).1, None);
    assert_eq!(
        r.tick(s, 0, 5 * MINUTE),
        (
            AlarmState::Firing { since: 0 },
            Some(AlarmChange::Fired { since: 0 })
        )
    );
}

#[test]
fn silence_fires_after_the_gap_and_the_next_reading_clears_it() {
    let r = rule(Condition::Silent { after: 12 * HOUR }, 0);
    let s = AlarmState::Normal;
    assert_eq!(r.tick(s, 0, 12 * HOUR - 1), (s, None));
    let (s, c) = r.tick(s, 0, 13 * HOUR);
    assert_eq!(c, Some(AlarmChange::Fired { since: 12 * HOUR }));
    // Still silent: no second alarm.
    assert_eq!(r.tick(s, 0, 20 * HOUR).1, None);
    assert_eq!(
        r.observe(s, 0.001, 21 * HOUR),
        (AlarmState::Normal, Some(AlarmChange::Cleared))
    );
}

#[test]
fn rules_files_are_checked() {
    let known = |c: &str| c == "waterlogging" || c == "lone_elder";
    let good = r#"
[[rule]]
code = "underpass_water"
name_zh = "下立交积水"
kind = "water_level"
metric = "depth_cm"
above = 15
clear_below = 10
for = "2m"
category = "waterlogging"
range = [0, 500]

[[rule]]
code = "meter_silent"
name_zh = "独居老人用水异常"
kind = "water_meter"
no_data = "12h"
tags = ["lone_elder"]
category = "lone_elder"
"#;
    let rules = parse_rules(good, &known).unwrap();
    assert_eq!(
        rules[0].condition,
        Condition::Above {
            on: 15.0,
            off: 10.0
        }
    );
    assert_eq!(rules[0].for_ms, 2 * MINUTE);
    assert!(!rules[0].in_range(501.0) && !rules[0].in_range(f64::NAN) && rules[0].in_range(0.0));
    assert_eq!(rules[1].condition, Condition::Silent { after: 12 * HOUR });
    let elder = Device {
        id: "WM-1".into(),
        kind: "water_meter".into(),
        lon: 0.0,
        lat: 0.0,
        owner: None,
        tags: vec!["lone_elder".into()],
    };
    assert!(rules[1].applies_to(&elder));
    assert!(!rules[1].applies_to(&Device {
        tags: vec![],
        ..elder.clone()
    }));

    let bad = r#"
[[rule]]
code = "a"
name_zh = "x"
kind = "k"
metric = "m"
above = 10
clear_below = 12
category = "nope"

[[rule]]
code = "b"
name_zh = "x"
kind = "k"
above = 1
below = 2
category = "waterlogging"

[[rule]]
code = "c"
name_zh = "x"
kind = "k"
no_data = "soon"
category = "waterlogging"

[[rule]]
code = "d"
name_zh = "x"
kind = "k"
metric = "m"
below = 1
for = "5 minutes"
category = "waterlogging"
"#;
    let p = parse_rules(bad, &known).unwrap_err();
    for needle in [
        "rule \"a\": unknown category \"nope\"",
        "rule \"a\": clear_below 12 must not be above the threshold 10",
        "rule \"b\": give exactly one of above, below or no_data",
        "rule \"c\": no_data \"soon\" is not a duration",
        "rule \"d\": for \"5 minutes\" is not a duration",
    ] {
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:#?}");
    }
    assert!(parse_rules("[[rule]]\ncode = 1", &known).unwrap_err()[0].contains("do not parse"));
    assert_eq!(parse_duration("90s"), Some(90_000));
    assert_eq!(parse_duration("1d"), Some(24 * HOUR));
    assert_eq!(parse_duration("m"), None);
}

#[test]
fn device_files_keep_good_rows_and_name_bad_ones() {
    let f = fixture::fx();
    let t = &f.territory;
    let leaf = t
        .regions()
        .find(|(_, r)| r.level == cityos_core::Level::Grid)
        .unwrap()
        .0;
    let p = t.interior_point(leaf);
    let csv = format!(
        "id,kind,lon,lat,owner,tags\n\
         WL-1,water_level,{x},{y},drainage,underpass\n\
         WM-1,water_meter,{x},{y},,lone_elder;household\n\
         WL-1,water_level,{x},{y},,\n\
         XX-2,smoke,100.0,10.0,,\n\
         XX-3,smoke,east,{y},,\n\
         bad id,smoke,{x},{y},,\n\
         XX-4,smoke\n",
        x = p[0],
        y = p[1]
    );
    let (devices, errors) = parse_devices_csv(&csv, t);
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[1].tags, vec!["lone_elder", "household"]);
    assert_eq!(devices[0].owner.as_deref(), Some("drainage"));
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 5, 6, 7, 8], "{errors:?}");
    assert!(errors[0].message.contains("used twice"));
    assert!(errors[1].message.contains("outside the territory"));
    assert!(errors[2].message.contains("not numbers"));
    assert!(errors[4]
        .to_string()
        .starts_with("line 8: expected id,kind,lon,lat"));
}

//! Vital-sign levels: the four colours by direction, hysteresis on the way down, and the
//! registry's checks.

use cityos_core::indicators::{parse_indicators, Direction, Source, Thresholds, WarnLevel};
use WarnLevel::*;

#[test]
fn levels_by_direction_and_at_the_lines() {
    let up = Thresholds::new(Direction::Up, [10.0, 20.0, 30.0, 40.0], 0.0).unwrap();
    let got: Vec<WarnLevel> = [0.0, 9.99, 10.0, 25.0, 30.0, 39.9, 40.0, 1e9]
        .iter()
        .map(|v| up.level(*v))
        .collect();
    assert_eq!(
        got,
        vec![Normal, Normal, Blue, Yellow, Orange, Orange, Red, Red]
    );
    // Low is bad: EV chargers free.
    let down = Thresholds::new(Direction::Down, [500.0, 300.0, 100.0, 20.0], 0.0).unwrap();
    let got: Vec<WarnLevel> = [2068.0, 500.0, 301.0, 100.0, 20.0, 0.0]
        .iter()
        .map(|v| down.level(*v))
        .collect();
    assert_eq!(got, vec![Normal, Blue, Blue, Orange, Red, Red]);
}

#[test]
fn hysteresis_holds_a_level_until_the_value_is_clearly_back() {
    let t = Thresholds::new(Direction::Up, [10.0, 20.0, 30.0, 40.0], 2.0).unwrap();
    let mut l = Normal;
    let mut seen = Vec::new();
    for v in [
        31.0, 29.0, 28.5, 27.9, 41.0, 39.0, 38.1, 37.9, 5.0, 9.0, 10.0,
    ] {
        l = t.next(l, v);
        seen.push(l);
    }
    assert_eq!(
        seen,
        vec![Orange, Orange, Orange, Yellow, Red, Red, Red, Orange, Normal, Normal, Blue]
    );
    // Rising is immediate; a NaN changes nothing.
    assert_eq!(t.next(Blue, 45.0), Red);
    assert_eq!(t.next(Orange, f64::NAN), Orange);
}

#[test]
fn thresholds_in_the_wrong_order_are_refused() {
    let e = Thresholds::new(Direction::Up, [10.0, 30.0, 20.0, 40.0], 0.0).unwrap_err();
    assert!(e.contains("out of order for direction up"), "{e}");
    assert!(Thresholds::new(Direction::Down, [10.0, 20.0, 30.0, 40.0], 0.0).is_err());
    assert!(Thresholds::new(Direction::Up, [1.0, 2.0, 3.0, 4.0], -1.0).is_err());
}

#[test]
fn the_registry_is_checked() {
    let good = r#"
[[indicator]]
code = "underpass_water"
name_zh = "下立交积水深度"
name_en = "Underpass water depth"
domain = "safety"
unit = "cm"
source = "readings"
device_kind = "water_level"
metric = "depth_cm"
func = "max"
window = "1m"
direction = "up"
levels = [10, 20, 30, 50]
hysteresis = 2
range = [0, 500]

[[indicator]]
code = "overdue_rate"
name_zh = "超期率"
name_en = "Overdue rate"
domain = "livelihood"
unit = "%"
source = "cases"
stat = "overdue_rate"
direction = "up"
levels = [5, 10, 20, 30]
range = [0, 100]
"#;
    let all = parse_indicators(good).unwrap();
    assert_eq!(all.len(), 2);
    assert!(matches!(
        &all[0].source,
        Source::Readings {
            window_ms: 60_000,
            ..
        }
    ));
    assert_eq!(all[1].thresholds.unwrap().level(12.0), Yellow);
    let bad = r#"
[[indicator]]
code = "a"
name_zh = "x"
name_en = "x"
domain = "weather"
source = "external"

[[indicator]]
code = "b"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "readings"
device_kind = "water_level"

[[indicator]]
code = "c"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "cases"
stat = "happiness"

[[indicator]]
code = "d"
name_zh = "x"
name_en = "x"
domain = "market"
source = "external"
direction = "up"
levels = [4, 3, 2, 1]

[[indicator]]
code = "e"
name_zh = "x"
name_en = "x"
domain = "market"
source = "external"
levels = [1, 2, 3, 4]
"#;
    let p = parse_indicators(bad).unwrap_err();
    for needle in [
        "indicator \"a\": unknown domain \"weather\"",
        "indicator \"b\": a readings indicator names",
        "indicator \"c\": case statistic Some(\"happiness\")",
        "indicator \"d\": thresholds blue 4, yellow 3, orange 2, red 1 are out of order",
        "indicator \"e\": levels need a direction",
    ] {
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:#?}");
    }
}

/// Issue 11, item 20: every indicator declares a plausible range, its levels inside it.
#[test]
fn every_indicator_declares_its_range() {
    let missing = r#"
[[indicator]]
code = "river"
name_zh = "河道水位"
name_en = "River"
domain = "safety"
source = "external"
direction = "up"
levels = [3.8, 4.2, 4.5, 4.8]

[[indicator]]
code = "narrow"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "external"
direction = "up"
levels = [3.8, 4.2, 4.5, 4.8]
range = [0, 4]

[[indicator]]
code = "empty"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "external"
range = [5, 5]
"#;
    let p = parse_indicators(missing).unwrap_err();
    for needle in [
        "indicator \"river\": a range = [lowest, highest] of plausible values is required",
        "indicator \"narrow\": levels [3.8, 4.2, 4.5, 4.8] lie outside the range [0, 4]",
        "indicator \"empty\": range [5, 5] is empty",
    ] {
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:#?}");
    }
    let ok = parse_indicators(
        &missing
            .replace(
                "levels = [3.8, 4.2, 4.5, 4.8]\n\n",
                "levels = [3.8, 4.2, 4.5, 4.8]\nrange = [0, 10]\n\n",
            )
            .replace("range = [0, 4]", "range = [0, 5]")
            .replace("range = [5, 5]", "range = [5, 6]"),
    )
    .unwrap();
    assert_eq!(ok[0].range, (0.0, 10.0));
}

/// The `per_100_devices` case statistic (the lift-fault rate): categories, a window and
/// the device kind counted, each named when missing; categories on other stats refused.
#[test]
fn cases_per_100_devices_names_what_it_counts() {
    let good = r#"
[[indicator]]
code = "lift_fault_rate"
name_zh = "电梯故障率（30天每百台）"
name_en = "Lift faults per 100 lifts (30 days)"
domain = "safety"
source = "cases"
stat = "per_100_devices"
categories = ["lift_entrapment", "lift_fault"]
window = "30d"
device_kind = "lift_controller"
direction = "up"
levels = [2, 5, 10, 20]
range = [0, 10000]
"#;
    let all = parse_indicators(good).unwrap();
    let Source::Cases {
        stat,
        rate: Some(rate),
    } = &all[0].source
    else {
        panic!("{:?}", all[0].source)
    };
    assert_eq!(stat, "per_100_devices");
    assert_eq!(rate.categories, ["lift_entrapment", "lift_fault"]);
    assert_eq!(rate.window_ms, 30 * 24 * 3_600_000);
    assert_eq!(rate.device_kind, "lift_controller");
    let bad = r#"
[[indicator]]
code = "no_window"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "cases"
stat = "per_100_devices"
categories = ["lift_fault"]
device_kind = "lift_controller"
range = [0, 100]

[[indicator]]
code = "no_categories"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "cases"
stat = "per_100_devices"
categories = []
window = "30d"
device_kind = "lift_controller"
range = [0, 100]

[[indicator]]
code = "stray"
name_zh = "x"
name_en = "x"
domain = "safety"
source = "cases"
stat = "open_cases"
categories = ["lift_fault"]
range = [0, 100]
"#;
    let p = parse_indicators(bad).unwrap_err();
    for needle in [
        "indicator \"no_window\": the per_100_devices statistic names its categories",
        "indicator \"no_categories\": the per_100_devices statistic names its categories",
        "indicator \"stray\": categories are counted only by the per_100_devices statistic",
    ] {
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:#?}");
    }
}

//! Scenario packs: the seven Xuhui packs parse and validate; the condition language's
//! errors carry line and column; every construct evaluates, near misses included; bad packs
//! are refused with named problems.

use cityos_core::indicators::{parse_indicators, Indicator, WarnLevel};
use cityos_core::scenario::expr::{Agg, Facts, Held, Row, Scope, Value};
use cityos_core::scenario::{check_ring, parse_pack, validate, Catalogue, District, Pack};
use cityos_core::taxonomy::Problem;
use cityos_core::time::Millis;
use cityos_core::{Taxonomy, Territory};
use std::collections::BTreeMap;

const TERRITORY: &str = include_str!("../../../../data/xuhui/territory.geojson");
const TAXONOMY: &str = include_str!("../../../../data/xuhui/taxonomy.toml");
const INDICATORS: &str = include_str!("../../../../data/xuhui/indicators.toml");
const CATALOGUE: &str = include_str!("../../../../data/xuhui/catalogue.toml");

const PACKS: [(&str, &str); 7] = [
    (
        "lone_elder_water.toml",
        include_str!("../../../../data/xuhui/scenarios/lone_elder_water.toml"),
    ),
    (
        "lift_entrapment.toml",
        include_str!("../../../../data/xuhui/scenarios/lift_entrapment.toml"),
    ),
    (
        "flooding.toml",
        include_str!("../../../../data/xuhui/scenarios/flooding.toml"),
    ),
    (
        "manhole_cover.toml",
        include_str!("../../../../data/xuhui/scenarios/manhole_cover.toml"),
    ),
    (
        "gas_leak.toml",
        include_str!("../../../../data/xuhui/scenarios/gas_leak.toml"),
    ),
    (
        "group_renting.toml",
        include_str!("../../../../data/xuhui/scenarios/group_renting.toml"),
    ),
    (
        "crowd_fence.toml",
        include_str!("../../../../data/xuhui/scenarios/crowd_fence.toml"),
    ),
];

const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;

struct Xuhui {
    territory: Territory,
    taxonomy: Taxonomy,
    indicators: Vec<Indicator>,
    catalogue: Catalogue,
}

fn xuhui() -> Xuhui {
    let territory = Territory::from_geojson(&[TERRITORY]).expect("territory");
    let taxonomy = Taxonomy::from_toml(TAXONOMY, &territory).expect("taxonomy");
    Xuhui {
        indicators: parse_indicators(INDICATORS).expect("indicators"),
        catalogue: Catalogue::from_toml(CATALOGUE).expect("catalogue"),
        territory,
        taxonomy,
    }
}

fn check(x: &Xuhui, text: &str) -> Result<Pack, Vec<Problem>> {
    let pack = parse_pack(text)?;
    validate(
        &pack,
        &District {
            taxonomy: &x.taxonomy,
            indicators: &x.indicators,
            catalogue: &x.catalogue,
        },
    )?;
    Ok(pack)
}

fn pack(name: &str) -> Pack {
    let text = PACKS.iter().find(|p| p.0 == name).expect("a pack").1;
    check(&xuhui(), text).unwrap_or_else(|p| panic!("{name}: {p:?}"))
}

#[test]
fn the_seven_xuhui_packs_parse_and_validate() {
    let x = xuhui();
    let mut on_disk: Vec<String> = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/xuhui/scenarios"
    ))
    .expect("the scenarios folder")
    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
    .collect();
    on_disk.sort();
    let mut listed: Vec<String> = PACKS.iter().map(|p| p.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every pack on disk is tested here");
    let mut names = Vec::new();
    for (file, text) in PACKS {
        let p = check(&x, text).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!(format!("{}.toml", p.code), file);
        assert!(!p.playbook.checklist.is_empty(), "{file} has a checklist");
        names.push(p.name_zh);
    }
    assert_eq!(
        names,
        [
            "独居老人用水异常",
            "电梯困人",
            "积水内涝",
            "井盖异常",
            "燃气泄漏",
            "群租",
            "人群电子围栏"
        ]
    );
}

#[test]
fn playbooks_carry_their_deadlines_and_cap() {
    use cityos_core::calendar::TimeLimit;
    use cityos_core::Step;
    let lift = pack("lift_entrapment.toml");
    assert_eq!(
        lift.playbook.deadlines.get(&Step::Handle),
        Some(&TimeLimit::parse("30m").expect("limit"))
    );
    assert_eq!(lift.playbook.lead.name, "special_equipment");
    let elder = pack("lone_elder_water.toml");
    assert_eq!(
        elder.playbook.deadlines.get(&Step::Handle),
        Some(&TimeLimit::parse("2h").expect("limit"))
    );
    let crowd = pack("crowd_fence.toml");
    assert_eq!(crowd.playbook.cap, Some("Safety"));
    assert_eq!(crowd.playbook.cap_level, Some(WarnLevel::Red));
    assert_eq!(crowd.fences.len(), 3);
    let gas = pack("gas_leak.toml");
    assert_eq!(gas.playbook.joint.len(), 3);
}

#[test]
fn fences_lie_inside_xuhui() {
    let x = xuhui();
    for f in pack("crowd_fence.toml").fences {
        for p in &f.ring {
            assert!(
                x.territory.locate(p[0], p[1]).is_ok(),
                "fence {} point {p:?} is inside Xuhui",
                f.name
            );
        }
    }
}

/// A minimal pack around a condition on line 4, column 14 onwards.
fn with_condition(cond: &str) -> String {
    format!(
        r#"code = "t"
name_zh = "测试"
name_en = "Test"
condition = "{cond}"
owner = "dist-gas"
version = "1"

[needs]
devices = ["gas_lel"]

[[needs.dataset]]
name = "flats"
key = "meter"
columns = {{ address = "string", registered_occupants = "number" }}

[[trigger]]
reading = "gas_lel"

[[fence]]
name = "f"
name_zh = "围栏"
ring = [[121.43, 31.19], [121.44, 31.19], [121.44, 31.20], [121.43, 31.19]]

[playbook]
category = "gas_alarm"
priority = "high"
lead = "gas"
"#
    )
}

#[test]
fn condition_errors_name_line_and_column() {
    // (condition, column, message) — all on line 4; the condition starts at column 14.
    let cases: &[(&str, usize, &str)] = &[
        ("lel_pct", 14, "condition: a condition must be a bool, this is a number"),
        ("sum(lel_pct 12h) < 1", 26, "condition: expected \",\", found a duration"),
        ("lel_pct > red", 22, "condition: cannot compare a number with a level"),
        ("lel_pct > 1 and", 29, "condition: expected a value, found the end"),
        ("lel_pct + 1 > 2", 22, "condition: unexpected character '+'"),
        ("frob(lel_pct, 1h) > 1", 14, "condition: unknown function \"frob\" (sum, avg, min, max, count, rate, distinct, level, trend, inside)"),
        ("flats.address < 'x'", 30, "condition: unexpected character '\\''"),
        ("flats.address < \\\"x\\\"", 28, "condition: a string can only be compared with == or !="),
        ("flats.address == \\\"\\u00e9\\\" and 1", 46, "condition: \"and\" needs a bool, this is a number"),
        ("inside(g)", 21, "condition: no fence \"g\" in the pack"),
        ("homes.x == true", 14, "condition: dataset \"homes\" is not among the pack's needs"),
        ("flats.rooms > 1", 20, "condition: dataset \"flats\" has no column \"rooms\" in the pack's needs"),
        ("flats.registered_occupants == true", 41, "condition: cannot compare a number with a bool"),
        ("lel_pct > 1 for 1x", 30, "condition: \"1x\" is neither a number nor a duration such as \"10m\""),
        ("lel_pct > 1 for 5", 30, "condition: expected a duration such as \"10m\", found number 5"),
        ("trend(lel_pct, 10m) reaches purple within 1m", 42, "condition: expected a level or a number after \"reaches\", found \"purple\""),
        ("trend(lel_pct, 10m) reaches red in 1m", 46, "condition: expected \"within\", found \"in\""),
        ("not lel_pct", 18, "condition: \"not\" needs a bool, this is a number"),
        ("lel_pct > 1 and 2", 30, "condition: \"and\" needs a bool, this is a number"),
        ("lel_pct and true", 14, "condition: \"and\" needs a bool, this is a number"),
        ("true * 2 > 1", 14, "condition: only numbers multiply or divide, this is a bool"),
        ("(lel_pct > 1", 26, "condition: expected \")\", found the end"),
        ("lel_pct > 1 )", 26, "condition: unexpected \")\" after a complete condition"),
        ("sum(cases(noise), 30d) > 1", 18, "condition: cases can be counted (count, rate), not sum"),
        ("sum(lel_pct(1), 30d) > 1", 25, "condition: expected \",\", found \"(\""),
        ("avg(cases(noise), 30d) > 1", 18, "condition: cases can be counted (count, rate), not avg"),
        ("count(cases(noise), 30d, same street) > 1", 44, "condition: \"street\" is not address, building or area"),
        ("level(x) >= 3", 23, "condition: cannot compare a level with a number"),
    ];
    for (cond, column, message) in cases {
        let text = with_condition(cond);
        let got = parse_pack(&text).expect_err(cond);
        assert_eq!(
            got,
            vec![Problem {
                line: 4,
                column: *column,
                message: message.to_string()
            }],
            "{cond}"
        );
    }
}

#[test]
fn an_error_in_a_multi_line_condition_is_placed_on_its_line() {
    let text = with_condition("x").replace(
        "condition = \"x\"",
        "condition = \"\"\"\nlel_pct > 1\nor lel_pct >> 2\n\"\"\"",
    );
    let got = parse_pack(&text).expect_err("bad");
    assert_eq!(got[0].line, 6);
    assert_eq!(got[0].column, 13);
    assert!(got[0].message.contains("expected a value"), "{got:?}");
}

#[test]
fn bad_pack_structure_is_named_by_line_and_column() {
    let good = with_condition("lel_pct > 1");
    assert!(parse_pack(&good).is_ok());
    let cases: &[(&str, &str, usize, usize, &str)] = &[
        ("priority = \"high\"", "priority = \"asap\"", 26, 12, "priority \"asap\" is not low, normal, high or urgent"),
        (
            "[[trigger]]\nreading = \"gas_lel\"",
            "[[trigger]]\nreading = \"gas_lel\"\nalarm = \"gas_lel\"",
            16, 1, "a trigger names exactly one of reading, alarm, row, cases, level, every",
        ),
        (
            "[121.44, 31.20], [121.43, 31.19]]",
            "[121.44, 31.20]]",
            20, 8, "fence \"f\": a ring needs at least 4 points (closed), it has 3",
        ),
        (
            "[121.44, 31.20], [121.43, 31.19]]",
            "[121.44, 31.20], [121.431, 31.19]]",
            20, 8, "fence \"f\": a ring must be closed: its last point repeats its first",
        ),
        (
            "lead = \"gas\"",
            "lead = \"gas\"\n[playbook.deadlines]\nrescue = \"30m\"",
            29, 10, "deadlines: \"rescue\" is not a step (file, dispatch, acknowledge, handle, verify, close)",
        ),
        (
            "lead = \"gas\"",
            "lead = \"gas\"\n[playbook.deadlines]\nhandle = \"30x\"",
            29, 10, "deadlines.handle: time limit \"30x\" has unit \"x\"; use m, h (natural) or wh, wd (working)",
        ),
        (
            "lead = \"gas\"",
            "lead = \"gas\"\ncap_category = \"Loud\"",
            28, 16, "cap_category \"Loud\" is not one of Geo, Met, Safety, Security, Rescue, Fire, Health, Env, Transport, Infra, CBRNE, Other",
        ),
        ("registered_occupants = \"number\"", "registered_occupants = \"int\"", 14, 56, "column \"registered_occupants\": type \"int\" is not number, bool, level or string"),
    ];
    for (from, to, line, column, message) in cases {
        assert!(good.contains(from), "{from}");
        let got = parse_pack(&good.replace(from, to)).expect_err(to);
        assert_eq!(
            got,
            vec![Problem {
                line: *line,
                column: *column,
                message: message.to_string()
            }],
            "{to}"
        );
    }
    let missing = parse_pack(&good.replace("lead = \"gas\"\n", "")).expect_err("no lead");
    assert!(
        missing[0].message.contains("missing field `lead`"),
        "{missing:?}"
    );
    assert_eq!(missing[0].line, 24, "the [playbook] table");
}

#[test]
fn a_self_intersecting_ring_is_refused() {
    let bow = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]];
    assert_eq!(
        check_ring(&bow),
        Err("the ring intersects itself (edges 1 and 3)".into())
    );
    let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]];
    assert_eq!(check_ring(&square), Ok(()));
    assert!(check_ring(&[[0.0, 0.0], [200.0, 0.0], [1.0, 1.0], [0.0, 0.0]]).is_err());
}

#[test]
fn unknown_references_are_named_at_validation() {
    let x = xuhui();
    let elder = PACKS[0].1;
    let cases: &[(&str, &str, &str)] = &[
        ("owner = \"dist-civil-affairs\"", "owner = \"dist-nobody\"", "unknown department \"dist-nobody\""),
        ("category = \"lone_elder_welfare_check\"", "category = \"elder_party\"", "unknown category \"elder_party\""),
        ("lead = \"residents_committee\"", "lead = \"wizards\"", "unknown department line \"wizards\""),
        ("devices = [\"water_meter\"]", "devices = [\"water_meter\", \"tricorder\"]", "unknown device kind \"tricorder\""),
        ("reading = \"water_meter\"", "reading = \"hydrometer\"", "unknown device kind \"hydrometer\""),
        ("metrics = [\"flow_m3\"]", "metrics = [\"flow_l\"]", "device kind \"water_meter\" has no metric \"flow_l\""),
        ("lone_elder_households", "lonely_hearts", "unknown dataset \"lonely_hearts\""),
        ("key = \"meter\"", "key = \"household\"", "dataset \"lone_elder_households\" is keyed by \"meter\", not \"household\""),
        ("elder_alone = \"bool\"", "elder_alone = \"bool\", age = \"number\"", "dataset \"lone_elder_households\" has no column \"age\""),
        ("address = \"string\"", "address = \"number\"", "dataset \"lone_elder_households\": column \"address\" is a string, not a number"),
        ("[needs]", "[needs]\nindicators = [\"happiness\"]", "unknown indicator \"happiness\""),
        ("sum(flow_m3, 12h)", "sum(flow_l, 12h)", "condition: \"flow_l\" is neither a metric of the needed devices nor a needed indicator"),
        ("every = \"1h\"", "cases = [\"noise\", \"party\"]", "unknown category \"party\""),
    ];
    for (from, to, message) in cases {
        assert!(elder.contains(from), "{from}");
        let got = check(&x, &elder.replace(from, to)).expect_err(to);
        assert!(
            got.iter().any(|p| p.message == *message && p.line > 0),
            "{to}: {got:?}"
        );
    }
    let flood = PACKS[2]
        .1
        .replace("level(river_water_level)", "level(river_level)");
    let got = check(&x, &flood).expect_err("unknown indicator in level()");
    assert_eq!(
        got[0].message,
        "condition: level(river_level) names an indicator not among the pack's needs"
    );
    assert_eq!((got[0].line, got[0].column), (9, 1));
}

/// An in-memory [`Facts`]: series per metric, one joined row per dataset, cases and
/// registrations with their address, levels and thresholds, a position and fences.
#[derive(Default)]
struct Mem {
    now: Millis,
    series: BTreeMap<String, Vec<(Millis, f64)>>,
    rows: BTreeMap<String, Row>,
    /// (category, time, address)
    cases: Vec<(String, Millis, String)>,
    /// (dataset, column, value, time, address)
    seen: Vec<(String, String, String, Millis, String)>,
    address: String,
    levels: BTreeMap<String, WarnLevel>,
    thresholds: BTreeMap<(String, WarnLevel), f64>,
    position: Option<(f64, f64)>,
    fences: BTreeMap<String, Vec<[f64; 2]>>,
}

impl Mem {
    fn at(now: Millis) -> Mem {
        Mem {
            now,
            address: "吴兴路 78 弄 26 号".into(),
            ..Mem::default()
        }
    }
    fn push(&mut self, metric: &str, t: Millis, v: f64) {
        self.series.entry(metric.into()).or_default().push((t, v));
    }
    fn within(&self, t: Millis, window: Millis) -> bool {
        t > self.now - window && t <= self.now
    }
}

impl Facts for Mem {
    fn window(&self, metric: &str, window: Millis, agg: Agg) -> Option<f64> {
        let s = self.series.get(metric)?;
        // Covered: a point at or before the window's start.
        if s.first()?.0 > self.now - window {
            return None;
        }
        let v: Vec<f64> = s
            .iter()
            .filter(|p| self.within(p.0, window))
            .map(|p| p.1)
            .collect();
        let n = v.len() as f64;
        Some(match agg {
            Agg::Sum => v.iter().sum(),
            Agg::Avg => v.iter().sum::<f64>() / n,
            Agg::Min => v.iter().cloned().fold(f64::INFINITY, f64::min),
            Agg::Max => v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            Agg::Count => n,
            Agg::Rate => (v.last()? - v.first()?) * HOUR as f64 / window as f64,
        })
    }
    fn latest(&self, metric: &str) -> Option<f64> {
        self.series
            .get(metric)?
            .iter()
            .rev()
            .find(|p| p.0 <= self.now)
            .map(|p| p.1)
    }
    fn series(&self, metric: &str, window: Millis) -> Vec<(Millis, f64)> {
        self.series.get(metric).map_or(Vec::new(), |s| {
            s.iter()
                .filter(|p| self.within(p.0, window))
                .cloned()
                .collect()
        })
    }
    fn row(&self, dataset: &str) -> Option<&Row> {
        self.rows.get(dataset)
    }
    fn case_count(&self, categories: &[String], window: Millis, scope: Scope) -> u64 {
        self.cases
            .iter()
            .filter(|(c, t, a)| {
                categories.contains(c)
                    && self.within(*t, window)
                    && (scope != Scope::SameAddress || *a == self.address)
            })
            .count() as u64
    }
    fn distinct(&self, dataset: &str, column: &str, window: Millis, scope: Scope) -> u64 {
        let mut v: Vec<&String> = self
            .seen
            .iter()
            .filter(|(d, c, _, t, a)| {
                d == dataset
                    && c == column
                    && self.within(*t, window)
                    && (scope != Scope::SameAddress || *a == self.address)
            })
            .map(|s| &s.2)
            .collect();
        v.sort();
        v.dedup();
        v.len() as u64
    }
    fn level(&self, indicator: &str) -> Option<WarnLevel> {
        self.levels.get(indicator).copied()
    }
    fn threshold(&self, indicator: &str, level: WarnLevel) -> Option<f64> {
        self.thresholds
            .get(&(indicator.to_string(), level))
            .copied()
    }
    fn position(&self) -> Option<(f64, f64)> {
        self.position
    }
    fn fence(&self, name: &str) -> Option<&[[f64; 2]]> {
        self.fences.get(name).map(|f| f.as_slice())
    }
}

fn elder_facts(per_hour: f64, alone: bool) -> Mem {
    let mut m = Mem::at(24 * HOUR);
    for h in 0..=24 {
        m.push("flow_m3", h * HOUR, per_hour);
    }
    let mut row = Row::new();
    row.insert("elder_alone".into(), Value::Bool(alone));
    m.rows.insert("lone_elder_households".into(), row);
    m
}

#[test]
fn lone_elder_fires_below_a_hundredth_of_a_cubic_metre_in_12h() {
    let p = pack("lone_elder_water.toml");
    let mut held = Held::default();
    // 12 hourly readings in (12h, 24h]: 12 × 0.0008 = 0.0096 m³ < 0.01.
    assert!(p
        .condition
        .holds(&elder_facts(0.0008, true), 24 * HOUR, &mut held));
    // Near miss: 12 × 0.000917 ≈ 0.011 m³.
    assert!(!p
        .condition
        .holds(&elder_facts(0.011 / 12.0, true), 24 * HOUR, &mut held));
    // Not flagged as living alone; and a meter with no household row.
    assert!(!p
        .condition
        .holds(&elder_facts(0.0, false), 24 * HOUR, &mut held));
    let mut unjoined = elder_facts(0.0, true);
    unjoined.rows.clear();
    assert!(!p.condition.holds(&unjoined, 24 * HOUR, &mut held));
    // A window not yet covered by data does not fire.
    let mut young = Mem::at(24 * HOUR);
    young.push("flow_m3", 20 * HOUR, 0.0);
    young.rows = elder_facts(0.0, true).rows;
    assert!(!p.condition.holds(&young, 24 * HOUR, &mut held));
}

/// Replays (time, metric values) readings, answering whether the condition held after each.
fn replay(p: &Pack, steps: &[(Millis, &[(&str, f64)])]) -> Vec<bool> {
    let mut m = Mem::at(0);
    let mut held = Held::default();
    steps
        .iter()
        .map(|(t, vals)| {
            m.now = *t;
            for (k, v) in *vals {
                m.push(k, *t, *v);
            }
            p.condition.holds(&m, *t, &mut held)
        })
        .collect()
}

#[test]
fn lift_entrapment_needs_a_full_minute_between_floors_with_the_door_shut() {
    let p = pack("lift_entrapment.toml");
    let stuck: &[(&str, f64)] = &[
        ("between_floors", 1.0),
        ("running", 0.0),
        ("door_open", 0.0),
        ("alarm_button", 0.0),
    ];
    assert_eq!(
        replay(&p, &[(0, stuck), (30_000, stuck), (60_000, stuck)]),
        [false, false, true]
    );
    // Stuck 30 s, then it moves on: never fires.
    let moving: &[(&str, f64)] = &[("running", 1.0)];
    assert_eq!(
        replay(&p, &[(0, stuck), (30_000, moving), (90_000, moving)]),
        [false, false, false]
    );
    // Near miss: stopped at a floor with the door open, for ten minutes.
    let at_floor: &[(&str, f64)] = &[
        ("between_floors", 0.0),
        ("running", 0.0),
        ("door_open", 1.0),
        ("alarm_button", 0.0),
    ];
    assert_eq!(
        replay(&p, &[(0, at_floor), (10 * MIN, at_floor)]),
        [false, false]
    );
    // The alarm button held with the car stopped and shut, for a minute.
    let button: &[(&str, f64)] = &[
        ("between_floors", 0.0),
        ("running", 0.0),
        ("door_open", 0.0),
        ("alarm_button", 1.0),
    ];
    assert_eq!(replay(&p, &[(0, button), (MIN, button)]), [false, true]);
}

#[test]
fn gas_pre_alarm_is_sustained_and_the_alarm_is_immediate() {
    let p = pack("gas_leak.toml");
    assert_eq!(
        replay(
            &p,
            &[
                (0, &[("lel_pct", 12.0)]),
                (30_000, &[("lel_pct", 12.0)]),
                (30_001, &[("lel_pct", 4.0)]),
                (70_000, &[("lel_pct", 12.0)])
            ]
        ),
        [false, false, false, false]
    );
    assert_eq!(
        replay(
            &p,
            &[(0, &[("lel_pct", 12.0)]), (60_000, &[("lel_pct", 11.0)])]
        ),
        [false, true]
    );
    assert_eq!(replay(&p, &[(0, &[("lel_pct", 26.0)])]), [true]);
    assert_eq!(
        replay(&p, &[(0, &[("lel_pct", 9.9)]), (HOUR, &[("lel_pct", 9.9)])]),
        [false, false]
    );
}

#[test]
fn a_gauge_spike_shorter_than_for_does_not_flood() {
    let p = pack("flooding.toml");
    let d = |v| -> Vec<(&str, f64)> { vec![("depth_cm", v)] };
    let (hi, lo) = (d(20.0), d(5.0));
    assert_eq!(
        replay(&p, &[(0, &hi), (MIN, &hi), (MIN + 1, &lo), (3 * MIN, &hi)]),
        [false, false, false, false]
    );
    assert_eq!(replay(&p, &[(0, &hi), (2 * MIN, &hi)]), [false, true]);
    // River and rain levels together, held five minutes.
    let p2 = pack("flooding.toml");
    let mut m = Mem::at(0);
    m.levels.insert("river_water_level".into(), WarnLevel::Blue);
    m.levels.insert("rainfall_mm_h".into(), WarnLevel::Yellow);
    let mut held = Held::default();
    assert!(!p2.condition.holds(&m, 0, &mut held));
    assert!(p2.condition.holds(&m, 5 * MIN, &mut held));
    m.levels.insert("rainfall_mm_h".into(), WarnLevel::Blue);
    assert!(!p2.condition.holds(&m, 6 * MIN, &mut held));
}

#[test]
fn manhole_reports_at_the_same_address_count() {
    let p = pack("manhole_cover.toml");
    let mut m = Mem::at(10 * HOUR);
    m.cases
        .push(("manhole_cover_missing".into(), 9 * HOUR, m.address.clone()));
    m.cases
        .push(("manhole_cover_damage".into(), 8 * HOUR, "elsewhere".into()));
    let mut held = Held::default();
    assert!(!p.condition.holds(&m, m.now, &mut held));
    m.cases
        .push(("manhole_cover_damage".into(), 9 * HOUR, m.address.clone()));
    assert!(p.condition.holds(&m, m.now, &mut held));
    // A cover reported missing by its sensor fires at once.
    let mut s = Mem::at(0);
    s.push("missing", 0, 1.0);
    assert!(p.condition.holds(&s, 0, &mut Held::default()));
}

#[test]
fn group_renting_by_use_complaints_or_residents() {
    let p = pack("group_renting.toml");
    let day = 24 * HOUR;
    let base = || {
        let mut m = Mem::at(30 * day);
        let mut row = Row::new();
        row.insert("expected_water_m3_day".into(), Value::Number(0.3));
        row.insert("expected_kwh_day".into(), Value::Number(8.0));
        m.rows.insert("flats".into(), row);
        m
    };
    let use_of = |water: f64, kwh: f64| {
        let mut m = base();
        for d in 0..=30 {
            m.push("flow_m3", d * day, water);
            m.push("kwh", d * day, kwh);
        }
        m
    };
    let mut held = Held::default();
    assert!(p.condition.holds(&use_of(1.2, 30.0), 30 * day, &mut held));
    // Near miss: water high but electricity only 2.5 times what is expected.
    assert!(!p.condition.holds(&use_of(1.2, 20.0), 30 * day, &mut held));
    // Complaints at the same address within 30 days: two do not, three do.
    let mut m = base();
    for d in [3, 10] {
        m.cases.push(("noise".into(), d * day, m.address.clone()));
    }
    m.cases.push(("noise".into(), 20 * day, "隔壁".into()));
    assert!(!p.condition.holds(&m, 30 * day, &mut held));
    m.cases
        .push(("ebike_charging".into(), 29 * day, m.address.clone()));
    assert!(p.condition.holds(&m, 30 * day, &mut held));
    // Many distinct registered residents in a year.
    let mut r = base();
    for i in 0..12 {
        r.seen.push((
            "residence_registrations".into(),
            "person".into(),
            format!("P{}", i % 11),
            (i as Millis + 1) * day,
            r.address.clone(),
        ));
    }
    assert!(!p.condition.holds(&r, 30 * day, &mut held));
    r.seen.push((
        "residence_registrations".into(),
        "person".into(),
        "P99".into(),
        20 * day,
        r.address.clone(),
    ));
    assert!(p.condition.holds(&r, 30 * day, &mut held));
}

#[test]
fn crowd_fence_fires_on_orange_or_a_trend_to_red_inside_its_fence() {
    let p = pack("crowd_fence.toml");
    let inside_wukang = (121.4380, 31.2052);
    let mk = |pos: (f64, f64)| {
        let mut m = Mem::at(20 * MIN);
        m.position = Some(pos);
        for f in &p.fences {
            m.fences.insert(f.name.clone(), f.ring.clone());
        }
        m.thresholds
            .insert(("crowd_wukang".into(), WarnLevel::Red), 2000.0);
        m.levels.insert("crowd_wukang".into(), WarnLevel::Yellow);
        m
    };
    let mut held = Held::default();
    // Rising 50 a minute from 1000 to 1500 over 10 min: 2000 in 10 more minutes.
    let mut m = mk(inside_wukang);
    for i in 0..=10 {
        m.push("crowd_wukang", 10 * MIN + i * MIN, 1000.0 + 50.0 * i as f64);
    }
    assert!(p.condition.holds(&m, m.now, &mut held));
    // Near miss: rising 40 a minute reaches only 1800.
    let mut slow = mk(inside_wukang);
    for i in 0..=10 {
        slow.push("crowd_wukang", 10 * MIN + i * MIN, 1000.0 + 40.0 * i as f64);
    }
    assert!(!p.condition.holds(&slow, slow.now, &mut held));
    // Orange inside the fence fires; the same outside every fence does not.
    let mut orange = mk(inside_wukang);
    orange
        .levels
        .insert("crowd_wukang".into(), WarnLevel::Orange);
    assert!(p.condition.holds(&orange, orange.now, &mut held));
    let mut away = mk((121.40, 31.15));
    away.levels.insert("crowd_wukang".into(), WarnLevel::Red);
    assert!(!p.condition.holds(&away, away.now, &mut held));
    // The station forecourt: 2.5 people per m² held two minutes.
    let station = (121.4362, 31.1828);
    let mut s = mk(station);
    s.push("density_m2", 0, 3.0);
    let mut h2 = Held::default();
    assert!(!s.condition_holds(&p, 0, &mut h2));
    assert!(s.condition_holds(&p, 2 * MIN, &mut h2));
}

trait HoldsAt {
    fn condition_holds(&mut self, p: &Pack, now: Millis, held: &mut Held) -> bool;
}

impl HoldsAt for Mem {
    fn condition_holds(&mut self, p: &Pack, now: Millis, held: &mut Held) -> bool {
        self.now = now;
        p.condition.holds(self, now, held)
    }
}

#[test]
fn evaluation_is_deterministic_and_its_memory_is_plain_data() {
    let p = pack("lift_entrapment.toml");
    let stuck: &[(&str, f64)] = &[
        ("between_floors", 1.0),
        ("running", 0.0),
        ("door_open", 0.0),
        ("alarm_button", 0.0),
    ];
    let steps = [(0, stuck), (40_000, stuck), (70_000, stuck)];
    assert_eq!(replay(&p, &steps), replay(&p, &steps));
    let mut a = Held::default();
    let mut b = Held::default();
    let mut m = Mem::at(0);
    for (k, v) in stuck {
        m.push(k, 0, *v);
    }
    p.condition.holds(&m, 0, &mut a);
    p.condition.holds(&m, 0, &mut b);
    assert_eq!(a, b);
}

//! The embedded Xuhui demo files: territory (generated GeoJSON), taxonomy and departments
//! (TOML), the 2026 working calendar (CSV), the sensing end's devices and alarm rules, the
//! vital signs and their alert rules, the scenario catalogue and packs — compiled into the
//! binary so that the embedded default ([`crate::config::Config::xuhui`]) needs no files at all.

pub const TERRITORY_GEOJSON: &str = include_str!("../../../data/xuhui/territory.geojson");
pub const TAXONOMY_TOML: &str = include_str!("../../../data/xuhui/taxonomy.toml");
pub const CALENDAR_CSV: &str = include_str!("../../../data/calendar/cn-2026.csv");
pub const SENSING_TOML: &str = include_str!("../../../data/xuhui/sensing.toml");
pub const DEVICES_CSV: &str = include_str!("../../../data/xuhui/devices.csv");
pub const INDICATORS_TOML: &str = include_str!("../../../data/xuhui/indicators.toml");
pub const ALERT_RULES_TOML: &str = include_str!("../../../data/xuhui/alert_rules.toml");
/// Synthetic households for the data end's lone-elder rule (invented, no real persons).
pub const LONE_ELDER_CSV: &str = include_str!("../../../data/xuhui/lone_elder_households.csv");
/// Synthetic lift register of the lift-entrapment pack (`device` = a LIFT-* controller).
pub const LIFTS_CSV: &str = include_str!("../../../data/xuhui/lifts.csv");
/// Synthetic flats of the group-renting pack (`meter` = the flat's WM-1xx water meter;
/// its EM-1xx electricity meter stands at the same place).
pub const FLATS_CSV: &str = include_str!("../../../data/xuhui/flats.csv");
/// What the district offers scenario packs: device kinds with metrics, typed datasets.
/// Intake settings for reports without a category (threshold, cues, line labels) and the
/// gazetteer of roads and landmarks it names.
pub const INTAKE_TOML: &str = include_str!("../../../data/xuhui/intake.toml");
pub const GAZETTEER_CSV: &str = include_str!("../../../data/xuhui/gazetteer.csv");
/// The scoring scheme of the evaluation (考核办法): weights, deductions, classes.
pub const SCORING_TOML: &str = include_str!("../../../data/xuhui/scoring.toml");
pub const CATALOGUE_TOML: &str = include_str!("../../../data/xuhui/catalogue.toml");
/// The data catalogue's declarations: owners, descriptions, expected freshness and
/// completeness of each dataset.
pub const DATASETS_TOML: &str = include_str!("../../../data/xuhui/datasets.toml");
/// The seven Xuhui scenario packs (file name, text).
pub const SCENARIO_PACKS: [(&str, &str); 7] = [
    (
        "lone_elder_water.toml",
        include_str!("../../../data/xuhui/scenarios/lone_elder_water.toml"),
    ),
    (
        "lift_entrapment.toml",
        include_str!("../../../data/xuhui/scenarios/lift_entrapment.toml"),
    ),
    (
        "flooding.toml",
        include_str!("../../../data/xuhui/scenarios/flooding.toml"),
    ),
    (
        "manhole_cover.toml",
        include_str!("../../../data/xuhui/scenarios/manhole_cover.toml"),
    ),
    (
        "gas_leak.toml",
        include_str!("../../../data/xuhui/scenarios/gas_leak.toml"),
    ),
    (
        "group_renting.toml",
        include_str!("../../../data/xuhui/scenarios/group_renting.toml"),
    ),
    (
        "crowd_fence.toml",
        include_str!("../../../data/xuhui/scenarios/crowd_fence.toml"),
    ),
];
